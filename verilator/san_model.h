// SPDX-License-Identifier: MIT
// san_model.h: the C ABI of the Verilated SAN NIC model (libsanmodel.so). hw/sim loads the library
// with dlopen and calls only these functions. Bump SAN_MODEL_ABI on any incompatible change.
#ifndef SAN_MODEL_H
#define SAN_MODEL_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SAN_MODEL_ABI 1

// AXI response codes returned by the MMIO calls, and the harness's own failure.
#define SAN_RESP_OKAY 0
#define SAN_RESP_EXOKAY 1
#define SAN_RESP_SLVERR 2
#define SAN_RESP_DECERR 3
#define SAN_RESP_TIMEOUT (-1) // no handshake within the timeout; the model is wedged

typedef struct san_model san_model;

// Build facts of the library. The NIC's own build parameters are read through BAR0.
typedef struct san_model_info {
  uint32_t abi;                  // SAN_MODEL_ABI
  const char *verilator_version; // the Verilator that built the model
} san_model_info;

void san_model_get_info(san_model_info *info);

// san_model_new creates a model held in reset for reset_cycles, then released. NULL on failure.
san_model *san_model_new(uint32_t reset_cycles);
void san_model_free(san_model *m);

// san_model_reset asserts rst for the given cycles, then releases it; pending interrupts are
// dropped.
void san_model_reset(san_model *m, uint32_t cycles);

// san_model_step runs the core clock for n cycles.
void san_model_step(san_model *m, uint64_t n);

// san_model_cycles is the number of core-clock cycles run since san_model_new.
uint64_t san_model_cycles(const san_model *m);

// One AXI4-Lite transaction on BAR0, run to completion through the model's handshakes; gives
// up after timeout cycles. Returns an AXI response code or SAN_RESP_TIMEOUT.
int san_model_mmio_read32(san_model *m, uint32_t addr, uint32_t *data, uint32_t timeout);
int san_model_mmio_write32(san_model *m, uint32_t addr, uint32_t data, uint8_t strb,
                           uint32_t timeout);

// san_model_msix_pop takes the oldest MSI-X request the model raised; returns 1 and stores its
// vector, or 0 when none is pending.
int san_model_msix_pop(san_model *m, uint16_t *vector);

#ifdef __cplusplus
}
#endif

#endif // SAN_MODEL_H

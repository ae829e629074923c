// SPDX-License-Identifier: MIT
// san_dut.h: the C ABI of a Verilated RTL block under unit test (build/verilator/dut/NAME/
// libdut.so). The wrapper behind it is written by verilator/dutgen from the Verilated class's
// port list, so any module of hw/rtl can be driven port by port from Go (hw/sim/dut).
#ifndef SAN_DUT_H
#define SAN_DUT_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SAN_DUT_ABI 1

#define SAN_DUT_IN 0
#define SAN_DUT_OUT 1

typedef struct san_dut san_dut;

uint32_t san_dut_abi(void);
const char *san_dut_top(void);

// Ports, indexed 0..san_dut_port_count()-1. Width is in bits; values move as little-endian
// arrays of 32-bit words, (width+31)/32 of them.
uint32_t san_dut_port_count(void);
const char *san_dut_port_name(uint32_t idx);
uint32_t san_dut_port_width(uint32_t idx);
int san_dut_port_dir(uint32_t idx);

san_dut *san_dut_new(void);
void san_dut_free(san_dut *d);
// san_dut_set writes an input port (bits above its width are dropped); 0 on success, -1 for a
// bad index or an output port.
int san_dut_set(san_dut *d, uint32_t idx, const uint32_t *words);
// san_dut_get reads any port; 0 on success, -1 for a bad index.
int san_dut_get(san_dut *d, uint32_t idx, uint32_t *words);
// san_dut_eval settles combinational logic after inputs change.
void san_dut_eval(san_dut *d);
// san_dut_tick drives the clock port low then high (one rising edge), evaluating after each.
void san_dut_tick(san_dut *d, uint32_t clk_idx);

#ifdef __cplusplus
}
#endif

#endif  // SAN_DUT_H

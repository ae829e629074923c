// SPDX-License-Identifier: MIT
// san_model.h: the C ABI of the Verilated SAN NIC model (libsanmodel.so). hw/sim loads the library
// with dlopen and calls only these functions. Bump SAN_MODEL_ABI on any incompatible change.
//
// A model is one NIC together with its host: the host memory its DMA ports reach (with a
// PCIe-like timing model and a guard), its MSI-X requests, and its Ethernet port. NICs joined in
// a fabric share one clock: stepping any of them, or an MMIO access to any of them, advances all
// of them, and the links between them carry each transmitted beat to the peer's receive port;
// a shared segment carries each frame a member transmits to every other member.
#ifndef SAN_MODEL_H
#define SAN_MODEL_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SAN_MODEL_ABI 5

// AXI response codes returned by the MMIO calls, and the harness's own failure.
#define SAN_RESP_OKAY 0
#define SAN_RESP_EXOKAY 1
#define SAN_RESP_SLVERR 2
#define SAN_RESP_DECERR 3
#define SAN_RESP_TIMEOUT (-1) // no handshake within the timeout; the model is wedged

typedef struct san_model san_model;
typedef struct san_fabric san_fabric;
typedef struct san_segment san_segment;

// Build facts of the library. The NIC's own build parameters are read through BAR0.
typedef struct san_model_info {
  uint32_t abi;                  // SAN_MODEL_ABI
  const char *verilator_version; // the Verilator that built the model
  uint32_t data_width;           // DATA_WIDTH the model was built with
} san_model_info;

void san_model_get_info(san_model_info *info);

// How the simulated host and the MAC behave. Zero values are legal: ideal DMA, no stalls.
typedef struct san_model_config {
  uint32_t reset_cycles;   // reset held this long at creation (0: 1)
  uint32_t dma_rd_latency; // cycles from a read request to its first data beat
  uint32_t dma_rd_tags;    // reads in flight at most (0: 256)
  uint32_t dma_wr_latency; // cycles from a write's last beat to its completion
  uint32_t dma_stall_pct;  // percent of cycles the host withholds read data and write ready
  uint32_t link_stall_pct; // percent of cycles the MAC withholds transmit ready
  uint64_t seed;           // of the stall patterns
  uint8_t *host_mem;       // host memory the DMA ports reach: host_size bytes at host_iova
  uint64_t host_iova;
  uint64_t host_size;
} san_model_config;

// san_model_new creates a model, held in reset for reset_cycles, then released. NULL on failure.
san_model *san_model_new(const san_model_config *cfg);
void san_model_free(san_model *m);

// san_model_reset asserts rst for the given cycles, then releases it; pending interrupts, DMA
// in flight and frames in flight to or from this NIC are dropped.
void san_model_reset(san_model *m, uint32_t cycles);

// Time. The NIC's timers count the shell's time (s_time_tick, 1.024 us ticks) that the harness
// drives. A clock (a lone model's, or a fabric's) is deterministic by default: the shell's time
// is the cycles since the model's reset was released, at the build clock (as a board's shell
// counts it), so runs repeat bit for bit. In real time the shell's time follows the wall clock
// (CLOCK_MONOTONIC), however slowly the model runs, and never runs ahead of it.
//
// Quiescence: a clock is quiescent when, for every model on it, nothing outside the RTL is under
// way (no DMA, no frame on its ports or link, no stall patterns configured), its timer scans are
// parked (m_timers_parked), and one cycle changed none of its state (the whole Verilated state
// compared, bar the CSR's free-running cycle counter). With unchanged inputs nothing then changes
// until the shell's time reaches the earliest deadline the models announce (m_wake_tick). A
// deterministic clock moves over such stretches at once (its cycle counts and the cycle counters
// advance as if they had run), so skipping is exact; a real-time clock reports them instead.
//
// san_model_step runs the clock for n cycles, moving over quiescent stretches.
void san_model_step(san_model *m, uint64_t n);

// Why san_model_run stopped.
#define SAN_RUN_DONE 0  // ran max cycles
#define SAN_RUN_IRQ 1   // a model on the clock raised an MSI-X request in the last cycle run
#define SAN_RUN_QUIET 2 // quiescent: deterministic, with no deadline announced; real time, until
                        // wake_ns from now, or for ever when wake_ns < 0 (without input)

typedef struct san_run_result {
  int stop_irq;    // in: stop after a cycle in which an MSI-X request was raised
  int stop_quiet;  // in: deterministic clocks stop when quiescent with no deadline
  uint64_t budget; // in: cycles to run one by one at most (0: max); moving over one is free
  int why;         // out: SAN_RUN_*
  int64_t wake_ns; // out, real time: wall-clock ns from now to the earliest deadline, -1 none
} san_run_result;

// san_model_run runs m's clock for up to max cycles as step does, stopping early as res asks
// (and a real-time clock whenever it is quiescent). It returns the cycles run or moved over.
uint64_t san_model_run(san_model *m, uint64_t max, san_run_result *res);

// san_model_set_realtime puts m's clock (its fabric's, when in one) in real time (on != 0) or
// back to deterministic time. The shell's time goes on from where it is in either direction.
void san_model_set_realtime(san_model *m, int on);

// san_model_set_skip turns the moving over quiescent stretches of m's clock on (the default) or
// off (every cycle runs: for showing that skipping changes nothing).
void san_model_set_skip(san_model *m, int on);

// san_model_time_tick is the shell's time (1.024 us ticks) the model saw in its last cycle.
uint32_t san_model_time_tick(const san_model *m);

// san_model_skipped is the number of cycles m's clock moved over while quiescent.
uint64_t san_model_skipped(const san_model *m);

// san_model_cycles is the number of clock cycles run since san_model_new (for a model in a
// fabric: since the fabric was created, which is before its models joined).
uint64_t san_model_cycles(const san_model *m);

// One AXI4-Lite transaction on BAR0, run to completion through the model's handshakes; gives
// up after timeout cycles. Returns an AXI response code or SAN_RESP_TIMEOUT.
int san_model_mmio_read32(san_model *m, uint32_t addr, uint32_t *data, uint32_t timeout);
int san_model_mmio_write32(san_model *m, uint32_t addr, uint32_t data, uint8_t strb,
                           uint32_t timeout);
// san_model_last_write_cycle is the cycle in which the last MMIO write's data was taken by
// the NIC (its W handshake).
uint64_t san_model_last_write_cycle(const san_model *m);

// san_model_msix_pop takes the oldest MSI-X request the model raised; returns 1 and stores its
// vector, or 0 when none is pending.
int san_model_msix_pop(san_model *m, uint16_t *vector);

// The DMA guard: the NIC may only reach host memory the driver mapped. A read outside it is
// answered with an error (tuser), a write outside it is discarded and completed with an error,
// and both are recorded as faults.
int san_model_guard_map(san_model *m, uint64_t iova, uint64_t len); // 0, or -1 if outside host memory
int san_model_guard_unmap(san_model *m, uint64_t iova);            // 0, or -1 if not mapped

typedef struct san_dma_fault {
  uint64_t iova;
  uint64_t len;
  uint64_t cycle;
  uint8_t write;
} san_dma_fault;

// san_model_dma_faults returns the number of faults so far and stores the first in *first.
uint64_t san_model_dma_faults(const san_model *m, san_dma_fault *first);

// Frames. A frame injected with rx_push enters the NIC's receive port after the frames already
// queued there (bad != 0: the MAC flags it with tuser on its last beat). A model that is not
// linked queues what it transmits for tx_pop; with capture on, a linked model also queues a
// copy of each frame it transmits. Each popped frame carries the cycles of its first and last
// beat. tx_pop returns the frame's length (0: none; -1: cap too small, the frame stays).
int san_model_rx_push(san_model *m, const uint8_t *frame, uint32_t len, int bad);
void san_model_capture(san_model *m, int on);
int san_model_tx_pop(san_model *m, uint8_t *buf, uint32_t cap, uint64_t *first_cycle,
                     uint64_t *last_cycle);

// With capture_received on, a linked model also queues a copy of each frame its receive port
// takes from the link (after any link faults), with the cycles in which the port took its first
// and last beat, for received_pop (same returns as tx_pop). Injected frames are not recorded, nor,
// as with tx_pop, frames flagged bad on their last beat.
void san_model_capture_received(san_model *m, int on);
int san_model_received_pop(san_model *m, uint8_t *buf, uint32_t cap, uint64_t *first_cycle,
                           uint64_t *last_cycle);

// Fabrics: NICs on one clock, joined by links. A model joins at most one fabric and one link.
// Latency is in cycles beyond the one a beat takes to cross (0: the peer sees a beat in the
// cycle after it was sent).
san_fabric *san_fabric_new(void);
void san_fabric_free(san_fabric *f); // after its models are freed
int san_fabric_add(san_fabric *f, san_model *m); // 0, or -1 if m is already in a fabric
int san_fabric_link(san_fabric *f, san_model *a, san_model *b, uint32_t latency);
void san_fabric_step(san_fabric *f, uint64_t n);
uint64_t san_fabric_cycles(const san_fabric *f);

// Shared segments: a hub in a fabric that floods every frame a member transmits to every other
// member's receive port. It is store-and-forward: a frame whose last beat a member sends in
// cycle c is queued whole at each other member, behind what is queued there (frames of several
// members reach a receiver one after another, in the order they ended), presentable from cycle
// c + 1 + latency, one beat a cycle from lane 0; a frame flagged bad (tuser) arrives flagged.
// A member's transmitted frames are kept for tx_pop only with capture on, as on a link; its
// capture_received sees what the segment delivers. A model is on at most one segment and then
// has no link; a model reset loses the frame it was sending. Link faults do not apply.
// san_fabric_segment makes an empty segment, owned and freed by f.
san_segment *san_fabric_segment(san_fabric *f, uint32_t latency);
// san_segment_join puts m on s: 0, or -1 if m is not in s's fabric, is linked, or is on a
// segment already.
int san_segment_join(san_segment *s, san_model *m);

// Link faults, set per direction of a link (from's transmitter to to's receive port), for
// testing the reliable transport. Each frame of a faulty direction (one with a probability above
// 0) is stored whole, then judged, then delivered after the link latency: it reaches the peer
// latency + 1 cycles after its last beat was sent, one beat per cycle from lane 0, so it arrives
// later than a cut-through frame by its beats - 1. A direction with every probability 0 is cut-
// through exactly as without faults, and a frame keeps the mode it started in.
//
// Per frame, in this order: drop (the frame is lost, nothing else applies), corrupt, duplicate
// (delivered twice, back to back), reorder (held and delivered right after the next frame that
// ends on the direction, dropped or not; a frame that releases a held one is never held itself,
// so a run of reorders swaps pairs; a held frame that no next frame starts behind within
// reorder_hold cycles of its last beat is delivered then). A kind that fires applies to that
// frame and the next burst - 1 frames (a run), whatever else happens to them.
//
// Corruption flips 1 to 3 distinct bits inside one window of 4 bytes (fewer near the end) that
// only the RoCEv2 ICRC guards: from byte SAN_LINK_CORRUPT_FROM (the BTH's DestQP) to the end of
// the IPv4 datagram. The BTH's first five bytes are left alone because the receiver's opcode,
// TVer and P_Key checks come before its ICRC check, and byte 4 is masked out of the ICRC. A
// frame with no such byte is delivered intact and counted as uncorruptible. The length never
// changes.
//
// Randomness: one splitmix64 generator per direction, started from seed at every set_faults
// call (any seed, 0 included). Each judged frame draws exactly five numbers: one uniform in
// [0, 1) per kind in the order above, always, then one for the corruption (window, bit count,
// bits), so a kind's decisions do not move when another kind's probability changes.
#define SAN_LINK_CORRUPT_FROM 47

typedef struct san_link_fault {
  double p;       // probability, 0 to 1, that a frame starts a run of this fault
  uint32_t burst; // frames in a run (0: 1)
} san_link_fault;

typedef struct san_link_faults {
  san_link_fault drop, corrupt, duplicate, reorder;
  uint64_t seed;         // of the direction's generator
  uint32_t reorder_hold; // cycles a held frame waits for a next frame at most (0: 4096)
} san_link_faults;

// Counts of a direction since its link was made; set_faults keeps them.
typedef struct san_link_counts {
  uint64_t frames;        // frames the sender put on the link (cut-through ones included)
  uint64_t dropped;       // lost to drop faults
  uint64_t corrupted;     // delivered with bits flipped
  uint64_t uncorruptible; // chosen for corruption but without a byte to flip; delivered intact
  uint64_t duplicated;    // delivered twice
  uint64_t reordered;     // held behind the next frame (or until reorder_hold ran out)
  uint64_t delivered;     // copies handed to the peer's receive queue (a held frame is not yet)
} san_link_counts;

// san_fabric_set_faults replaces the faults of the direction from -> to of a link in f and
// restarts its generator and runs; a frame being stored or held stays so. Returns 0, -1 when
// from and to are not linked to each other in f, -2 when a probability is not in [0, 1].
int san_fabric_set_faults(san_fabric *f, san_model *from, san_model *to,
                          const san_link_faults *faults);
// san_fabric_fault_counts stores the counts of the direction from -> to: 0, or -1 as above.
int san_fabric_fault_counts(const san_fabric *f, const san_model *from, const san_model *to,
                            san_link_counts *counts);

// san_link_corrupt is the corruption a link applies, exported so that tests can hold it to its
// window: it flips 1 to 3 distinct bits of frame[0:len] inside one window chosen by r, stores the
// window's offset and width, and returns the bits flipped (0, frame untouched, when no byte is
// eligible).
int san_link_corrupt(uint8_t *frame, uint32_t len, uint64_t r, uint32_t *off, uint32_t *width);

#ifdef __cplusplus
}
#endif

#endif // SAN_MODEL_H

package sim

/*
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stdlib.h>
#include <stdint.h>
#include <sys/mman.h>
#include "../../verilator/san_model.h"

// The library's entry points, resolved once by san_lib_open.
typedef struct san_lib {
	void *handle;
	void (*get_info)(san_model_info *);
	san_model *(*new_)(const san_model_config *);
	void (*free_)(san_model *);
	void (*reset)(san_model *, uint32_t);
	void (*step)(san_model *, uint64_t);
	uint64_t (*cycles)(const san_model *);
	int (*read32)(san_model *, uint32_t, uint32_t *, uint32_t);
	int (*write32)(san_model *, uint32_t, uint32_t, uint8_t, uint32_t);
	uint64_t (*last_write_cycle)(const san_model *);
	int (*msix_pop)(san_model *, uint16_t *);
	int (*guard_map)(san_model *, uint64_t, uint64_t);
	int (*guard_unmap)(san_model *, uint64_t);
	uint64_t (*dma_faults)(const san_model *, san_dma_fault *);
	int (*rx_push)(san_model *, const uint8_t *, uint32_t, int);
	void (*capture)(san_model *, int);
	int (*tx_pop)(san_model *, uint8_t *, uint32_t, uint64_t *, uint64_t *);
	san_fabric *(*fabric_new)(void);
	void (*fabric_free)(san_fabric *);
	int (*fabric_add)(san_fabric *, san_model *);
	int (*fabric_link)(san_fabric *, san_model *, san_model *, uint32_t);
	void (*fabric_step)(san_fabric *, uint64_t);
	uint64_t (*fabric_cycles)(const san_fabric *);
	void (*capture_received)(san_model *, int);
	int (*received_pop)(san_model *, uint8_t *, uint32_t, uint64_t *, uint64_t *);
	int (*set_faults)(san_fabric *, san_model *, san_model *, const san_link_faults *);
	int (*fault_counts)(const san_fabric *, const san_model *, const san_model *, san_link_counts *);
	int (*corrupt)(uint8_t *, uint32_t, uint64_t, uint32_t *, uint32_t *);
	uint64_t (*run)(san_model *, uint64_t, san_run_result *);
	void (*set_realtime)(san_model *, int);
	uint32_t (*time_tick)(const san_model *);
	uint64_t (*skipped)(const san_model *);
	void (*set_skip)(san_model *, int);
	san_segment *(*fabric_segment)(san_fabric *, uint32_t);
	int (*segment_join)(san_segment *, san_model *);
} san_lib;

#define SAN_SYM(field, name) \
	*(void **)(&l->field) = dlsym(l->handle, name); \
	if (l->field == NULL) return dlerror();

// san_lib_open loads the library at path and finds its get_info, which says the ABI it speaks;
// on failure it returns dlerror's text.
static const char *san_lib_open(san_lib *l, const char *path) {
	l->handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (l->handle == NULL) return dlerror();
	SAN_SYM(get_info, "san_model_get_info");
	return NULL;
}

// san_lib_resolve finds the other entry points, once the ABI is known to match.
static const char *san_lib_resolve(san_lib *l) {
	SAN_SYM(new_, "san_model_new");
	SAN_SYM(free_, "san_model_free");
	SAN_SYM(reset, "san_model_reset");
	SAN_SYM(step, "san_model_step");
	SAN_SYM(cycles, "san_model_cycles");
	SAN_SYM(read32, "san_model_mmio_read32");
	SAN_SYM(write32, "san_model_mmio_write32");
	SAN_SYM(last_write_cycle, "san_model_last_write_cycle");
	SAN_SYM(msix_pop, "san_model_msix_pop");
	SAN_SYM(guard_map, "san_model_guard_map");
	SAN_SYM(guard_unmap, "san_model_guard_unmap");
	SAN_SYM(dma_faults, "san_model_dma_faults");
	SAN_SYM(rx_push, "san_model_rx_push");
	SAN_SYM(capture, "san_model_capture");
	SAN_SYM(tx_pop, "san_model_tx_pop");
	SAN_SYM(fabric_new, "san_fabric_new");
	SAN_SYM(fabric_free, "san_fabric_free");
	SAN_SYM(fabric_add, "san_fabric_add");
	SAN_SYM(fabric_link, "san_fabric_link");
	SAN_SYM(fabric_step, "san_fabric_step");
	SAN_SYM(fabric_cycles, "san_fabric_cycles");
	SAN_SYM(capture_received, "san_model_capture_received");
	SAN_SYM(received_pop, "san_model_received_pop");
	SAN_SYM(set_faults, "san_fabric_set_faults");
	SAN_SYM(fault_counts, "san_fabric_fault_counts");
	SAN_SYM(corrupt, "san_link_corrupt");
	SAN_SYM(run, "san_model_run");
	SAN_SYM(set_realtime, "san_model_set_realtime");
	SAN_SYM(time_tick, "san_model_time_tick");
	SAN_SYM(skipped, "san_model_skipped");
	SAN_SYM(set_skip, "san_model_set_skip");
	SAN_SYM(fabric_segment, "san_fabric_segment");
	SAN_SYM(segment_join, "san_segment_join");
	return NULL;
}
#undef SAN_SYM

static void call_get_info(san_lib *l, san_model_info *i) { l->get_info(i); }
static san_model *call_new(san_lib *l, const san_model_config *c) { return l->new_(c); }
static void call_free(san_lib *l, san_model *m) { l->free_(m); }
static void call_reset(san_lib *l, san_model *m, uint32_t c) { l->reset(m, c); }
static void call_step(san_lib *l, san_model *m, uint64_t n) { l->step(m, n); }
static uint64_t call_cycles(san_lib *l, san_model *m) { return l->cycles(m); }
static int call_read32(san_lib *l, san_model *m, uint32_t a, uint32_t *d, uint32_t t) {
	return l->read32(m, a, d, t);
}
static int call_write32(san_lib *l, san_model *m, uint32_t a, uint32_t d, uint8_t s, uint32_t t) {
	return l->write32(m, a, d, s, t);
}
static uint64_t call_last_write_cycle(san_lib *l, san_model *m) { return l->last_write_cycle(m); }
static int call_msix_pop(san_lib *l, san_model *m, uint16_t *v) { return l->msix_pop(m, v); }
static int call_guard_map(san_lib *l, san_model *m, uint64_t a, uint64_t n) { return l->guard_map(m, a, n); }
static int call_guard_unmap(san_lib *l, san_model *m, uint64_t a) { return l->guard_unmap(m, a); }
static uint64_t call_dma_faults(san_lib *l, san_model *m, san_dma_fault *f) { return l->dma_faults(m, f); }
static int call_rx_push(san_lib *l, san_model *m, const uint8_t *b, uint32_t n, int bad) {
	return l->rx_push(m, b, n, bad);
}
static void call_capture(san_lib *l, san_model *m, int on) { l->capture(m, on); }
static int call_tx_pop(san_lib *l, san_model *m, uint8_t *b, uint32_t cap, uint64_t *f, uint64_t *x) {
	return l->tx_pop(m, b, cap, f, x);
}
static san_fabric *call_fabric_new(san_lib *l) { return l->fabric_new(); }
static void call_fabric_free(san_lib *l, san_fabric *f) { l->fabric_free(f); }
static int call_fabric_add(san_lib *l, san_fabric *f, san_model *m) { return l->fabric_add(f, m); }
static int call_fabric_link(san_lib *l, san_fabric *f, san_model *a, san_model *b, uint32_t lat) {
	return l->fabric_link(f, a, b, lat);
}
static void call_fabric_step(san_lib *l, san_fabric *f, uint64_t n) { l->fabric_step(f, n); }
static uint64_t call_fabric_cycles(san_lib *l, san_fabric *f) { return l->fabric_cycles(f); }
static void call_capture_received(san_lib *l, san_model *m, int on) { l->capture_received(m, on); }
static int call_received_pop(san_lib *l, san_model *m, uint8_t *b, uint32_t cap, uint64_t *f, uint64_t *x) {
	return l->received_pop(m, b, cap, f, x);
}
static int call_set_faults(san_lib *l, san_fabric *f, san_model *a, san_model *b, const san_link_faults *c) {
	return l->set_faults(f, a, b, c);
}
static int call_fault_counts(san_lib *l, san_fabric *f, san_model *a, san_model *b, san_link_counts *c) {
	return l->fault_counts(f, a, b, c);
}
static int call_corrupt(san_lib *l, uint8_t *b, uint32_t n, uint64_t r, uint32_t *off, uint32_t *w) {
	return l->corrupt(b, n, r, off, w);
}

static uint64_t call_run(san_lib *l, san_model *m, uint64_t max, san_run_result *r) {
	return l->run(m, max, r);
}
static void call_set_realtime(san_lib *l, san_model *m, int on) { l->set_realtime(m, on); }
static uint32_t call_time_tick(san_lib *l, san_model *m) { return l->time_tick(m); }
static uint64_t call_skipped(san_lib *l, san_model *m) { return l->skipped(m); }
static void call_set_skip(san_lib *l, san_model *m, int on) { l->set_skip(m, on); }
static san_segment *call_fabric_segment(san_lib *l, san_fabric *f, uint32_t lat) {
	return l->fabric_segment(f, lat);
}
static int call_segment_join(san_lib *l, san_segment *s, san_model *m) { return l->segment_join(s, m); }

static void *host_mem_map(size_t n) {
	void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}
static void host_mem_unmap(void *p, size_t n) { munmap(p, n); }
*/
import "C"

import (
	"errors"
	"fmt"
	"sync"
	"time"
	"unsafe"
)

// AXI response codes from verilator/san_model.h.
const (
	respOkay    = int(C.SAN_RESP_OKAY)
	respExOkay  = int(C.SAN_RESP_EXOKAY)
	respTimeout = int(C.SAN_RESP_TIMEOUT)
)

// library is a loaded libsanmodel.so.
type library struct {
	path             string
	lib              C.san_lib
	abi              uint32
	verilatorVersion string
}

var (
	libsMu sync.Mutex
	libs   = map[string]*library{} // guarded by libsMu; loaded libraries are never unloaded
)

// errABI reports a library built for another harness ABI.
var errABI = errors.New("model library ABI mismatch")

// loadLibrary dlopens the model at path once per process.
func loadLibrary(path string) (*library, error) {
	libsMu.Lock()
	defer libsMu.Unlock()
	if l, ok := libs[path]; ok {
		return l, nil
	}
	l := &library{path: path}
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	if msg := C.san_lib_open(&l.lib, cpath); msg != nil {
		return nil, fmt.Errorf("load model %s: %s", path, C.GoString(msg))
	}
	var info C.san_model_info
	C.call_get_info(&l.lib, &info)
	l.abi = uint32(info.abi)
	l.verilatorVersion = C.GoString(info.verilator_version)
	if l.abi != uint32(C.SAN_MODEL_ABI) {
		return nil, fmt.Errorf("%w: %s has ABI %d, this package speaks %d; rebuild with make model",
			errABI, path, l.abi, int(C.SAN_MODEL_ABI))
	}
	if msg := C.san_lib_resolve(&l.lib); msg != nil {
		return nil, fmt.Errorf("load model %s: %s", path, C.GoString(msg))
	}
	libs[path] = l
	return l, nil
}

// model is one instance of the Verilated NIC with its host. It is not safe for concurrent use;
// the clock's lock serialises access.
type model struct {
	lib *library
	m   *C.san_model
	// linked: the model is linked or on a segment (guarded by its clock's lock).
	linked bool
}

// modelConfig is the harness's san_model_config in Go terms.
type modelConfig struct {
	resetCycles  uint32
	dma          DMAModel
	linkStallPct uint32
	seed         uint64
	host         *hostMemory
	hostIOVA     uint64
}

func newModel(l *library, mc modelConfig) (*model, error) {
	cfg := C.san_model_config{
		reset_cycles:   C.uint32_t(mc.resetCycles),
		dma_rd_latency: C.uint32_t(mc.dma.ReadLatency),
		dma_rd_tags:    C.uint32_t(mc.dma.ReadTags),
		dma_wr_latency: C.uint32_t(mc.dma.WriteLatency),
		dma_stall_pct:  C.uint32_t(mc.dma.StallPercent),
		link_stall_pct: C.uint32_t(mc.linkStallPct),
		seed:           C.uint64_t(mc.seed),
	}
	if mc.host != nil {
		cfg.host_mem = (*C.uint8_t)(mc.host.base)
		cfg.host_iova = C.uint64_t(mc.hostIOVA)
		cfg.host_size = C.uint64_t(len(mc.host.mem))
	}
	m := C.call_new(&l.lib, &cfg)
	if m == nil {
		return nil, errors.New("create model: allocation failed")
	}
	return &model{lib: l, m: m}, nil
}

func (m *model) free()               { C.call_free(&m.lib.lib, m.m); m.m = nil }
func (m *model) reset(cycles uint32) { C.call_reset(&m.lib.lib, m.m, C.uint32_t(cycles)) }
func (m *model) step(n uint64)       { C.call_step(&m.lib.lib, m.m, C.uint64_t(n)) }
func (m *model) cycles() uint64      { return uint64(C.call_cycles(&m.lib.lib, m.m)) }

// runResult is why model.run stopped.
type runResult struct {
	why    int           // runDone, runIRQ or runQuiet
	wakeIn time.Duration // real time, quiet: until the earliest deadline; < 0 none
}

const (
	runDone  = int(C.SAN_RUN_DONE)
	runIRQ   = int(C.SAN_RUN_IRQ)
	runQuiet = int(C.SAN_RUN_QUIET)
)

// run runs the model's clock for up to max cycles, budget of them one by one (see
// san_model_run).
func (m *model) run(max, budget uint64, stopIRQ, stopQuiet bool) (uint64, runResult) {
	var r C.san_run_result
	r.budget = C.uint64_t(budget)
	if stopIRQ {
		r.stop_irq = 1
	}
	if stopQuiet {
		r.stop_quiet = 1
	}
	n := uint64(C.call_run(&m.lib.lib, m.m, C.uint64_t(max), &r))
	return n, runResult{why: int(r.why), wakeIn: time.Duration(r.wake_ns)}
}

func (m *model) setRealTime(on bool) {
	v := C.int(0)
	if on {
		v = 1
	}
	C.call_set_realtime(&m.lib.lib, m.m, v)
}

func (m *model) timeTick() uint32 { return uint32(C.call_time_tick(&m.lib.lib, m.m)) }
func (m *model) skipped() uint64  { return uint64(C.call_skipped(&m.lib.lib, m.m)) }

func (m *model) setSkip(on bool) {
	v := C.int(0)
	if on {
		v = 1
	}
	C.call_set_skip(&m.lib.lib, m.m, v)
}
func (m *model) lastWriteCycle() uint64 {
	return uint64(C.call_last_write_cycle(&m.lib.lib, m.m))
}

func (m *model) read32(addr uint32, timeout uint32) (uint32, int) {
	var d C.uint32_t
	r := C.call_read32(&m.lib.lib, m.m, C.uint32_t(addr), &d, C.uint32_t(timeout))
	return uint32(d), int(r)
}

func (m *model) write32(addr, data uint32, strb uint8, timeout uint32) int {
	return int(C.call_write32(&m.lib.lib, m.m, C.uint32_t(addr), C.uint32_t(data), C.uint8_t(strb), C.uint32_t(timeout)))
}

func (m *model) msixPop() (uint16, bool) {
	var v C.uint16_t
	if C.call_msix_pop(&m.lib.lib, m.m, &v) == 0 {
		return 0, false
	}
	return uint16(v), true
}

func (m *model) guardMap(iova, n uint64) bool {
	return C.call_guard_map(&m.lib.lib, m.m, C.uint64_t(iova), C.uint64_t(n)) == 0
}

func (m *model) guardUnmap(iova uint64) bool {
	return C.call_guard_unmap(&m.lib.lib, m.m, C.uint64_t(iova)) == 0
}

func (m *model) dmaFaults() (uint64, DMAFault) {
	var f C.san_dma_fault
	n := uint64(C.call_dma_faults(&m.lib.lib, m.m, &f))
	return n, DMAFault{IOVA: uint64(f.iova), Len: uint64(f.len), Cycle: uint64(f.cycle), Write: f.write != 0}
}

func (m *model) rxPush(frame []byte, bad bool) bool {
	if len(frame) == 0 {
		return false
	}
	b := 0
	if bad {
		b = 1
	}
	p := C.CBytes(frame)
	defer C.free(p)
	return C.call_rx_push(&m.lib.lib, m.m, (*C.uint8_t)(p), C.uint32_t(len(frame)), C.int(b)) == 0
}

func (m *model) capture(on bool) {
	v := 0
	if on {
		v = 1
	}
	C.call_capture(&m.lib.lib, m.m, C.int(v))
}

func (m *model) captureReceived(on bool) {
	v := 0
	if on {
		v = 1
	}
	C.call_capture_received(&m.lib.lib, m.m, C.int(v))
}

// txPop takes the oldest frame the model queued; nil when there is none, and an error when the
// frame does not fit in buf (it stays queued).
func (m *model) txPop(buf []byte) (*Frame, error) {
	var first, last C.uint64_t
	n := C.call_tx_pop(&m.lib.lib, m.m, (*C.uint8_t)(unsafe.Pointer(&buf[0])), C.uint32_t(len(buf)), &first, &last)
	return popped(buf, n, first, last)
}

// receivedPop is txPop for the frames the model's receive port took from its link.
func (m *model) receivedPop(buf []byte) (*Frame, error) {
	var first, last C.uint64_t
	n := C.call_received_pop(&m.lib.lib, m.m, (*C.uint8_t)(unsafe.Pointer(&buf[0])), C.uint32_t(len(buf)), &first, &last)
	return popped(buf, n, first, last)
}

// popped turns a pop's result into a Frame.
func popped(buf []byte, n C.int, first, last C.uint64_t) (*Frame, error) {
	switch {
	case n == 0:
		return nil, nil
	case n < 0:
		return nil, fmt.Errorf("sim: a frame is longer than %d bytes", len(buf))
	}
	return &Frame{Bytes: append([]byte(nil), buf[:n]...), First: uint64(first), Last: uint64(last)}, nil
}

// fabric is the harness's shared clock for several models.
type fabric struct {
	lib *library
	f   *C.san_fabric
}

func newFabric(l *library) *fabric { return &fabric{lib: l, f: C.call_fabric_new(&l.lib)} }

func (f *fabric) free()             { C.call_fabric_free(&f.lib.lib, f.f); f.f = nil }
func (f *fabric) add(m *model) bool { return C.call_fabric_add(&f.lib.lib, f.f, m.m) == 0 }
func (f *fabric) link(a, b *model, latency uint32) bool {
	ok := C.call_fabric_link(&f.lib.lib, f.f, a.m, b.m, C.uint32_t(latency)) == 0
	a.linked, b.linked = a.linked || ok, b.linked || ok
	return ok
}
func (f *fabric) step(n uint64) { C.call_fabric_step(&f.lib.lib, f.f, C.uint64_t(n)) }

// segment makes a shared segment of the given models; false when one of them cannot join (it is
// linked or on a segment; callers check linked first, so that none joins when one cannot).
func (f *fabric) segment(latency uint32, ms []*model) bool {
	s := C.call_fabric_segment(&f.lib.lib, f.f, C.uint32_t(latency))
	for _, m := range ms {
		if C.call_segment_join(&f.lib.lib, s, m.m) != 0 {
			return false
		}
		m.linked = true
	}
	return true
}
func (f *fabric) cycles() uint64 { return uint64(C.call_fabric_cycles(&f.lib.lib, f.f)) }

// setFaults sets the faults of the direction from -> to: 0, -1 (not linked), -2 (refused).
// The caller has checked lf, so -2 is the harness disagreeing with the checks.
func (f *fabric) setFaults(from, to *model, lf LinkFaults) int {
	conv := func(x LinkFault) C.san_link_fault {
		return C.san_link_fault{p: C.double(x.P), burst: C.uint32_t(x.Burst)}
	}
	c := C.san_link_faults{drop: conv(lf.Drop), corrupt: conv(lf.Corrupt), duplicate: conv(lf.Duplicate),
		reorder: conv(lf.Reorder), seed: C.uint64_t(lf.Seed), reorder_hold: C.uint32_t(lf.ReorderHold)}
	return int(C.call_set_faults(&f.lib.lib, f.f, from.m, to.m, &c))
}

// faultCounts reads the counts of the direction from -> to; false when they are not linked.
func (f *fabric) faultCounts(from, to *model) (LinkCounts, bool) {
	var c C.san_link_counts
	if C.call_fault_counts(&f.lib.lib, f.f, from.m, to.m, &c) != 0 {
		return LinkCounts{}, false
	}
	return LinkCounts{Frames: uint64(c.frames), Dropped: uint64(c.dropped), Corrupted: uint64(c.corrupted),
		Uncorruptible: uint64(c.uncorruptible), Duplicated: uint64(c.duplicated), Reordered: uint64(c.reordered),
		Delivered: uint64(c.delivered)}, true
}

// corrupt runs the links' corruption on frame in place with the random value r; it returns the
// window it chose and the bits it flipped (0 when no byte was eligible).
func (l *library) corrupt(frame []byte, r uint64) (off, width, bits int) {
	var o, w C.uint32_t
	var p *C.uint8_t
	if len(frame) > 0 {
		p = (*C.uint8_t)(unsafe.Pointer(&frame[0]))
	}
	n := C.call_corrupt(&l.lib, p, C.uint32_t(len(frame)), C.uint64_t(r), &o, &w)
	return int(o), int(w), int(n)
}

// corruptFrom is the first byte a link's corruption may touch (the BTH's DestQP).
const corruptFrom = int(C.SAN_LINK_CORRUPT_FROM)

// hostMemory is the simulated host's DMA-able memory: an anonymous mapping outside the Go heap,
// so the model can read and write it directly.
type hostMemory struct {
	base unsafe.Pointer
	mem  []byte
}

func mapHostMemory(size int) (*hostMemory, error) {
	p := C.host_mem_map(C.size_t(size))
	if p == nil {
		return nil, fmt.Errorf("map %d bytes of host memory: mmap failed", size)
	}
	return &hostMemory{base: p, mem: unsafe.Slice((*byte)(p), size)}, nil
}

func (h *hostMemory) unmap() {
	if h.base != nil {
		C.host_mem_unmap(h.base, C.size_t(len(h.mem)))
		h.base, h.mem = nil, nil
	}
}

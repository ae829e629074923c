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
	san_model *(*new_)(uint32_t);
	void (*free_)(san_model *);
	void (*reset)(san_model *, uint32_t);
	void (*step)(san_model *, uint64_t);
	uint64_t (*cycles)(const san_model *);
	int (*read32)(san_model *, uint32_t, uint32_t *, uint32_t);
	int (*write32)(san_model *, uint32_t, uint32_t, uint8_t, uint32_t);
	int (*msix_pop)(san_model *, uint16_t *);
} san_lib;

// san_lib_open fills l from the library at path; on failure it returns dlerror's text.
static const char *san_lib_open(san_lib *l, const char *path) {
	l->handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (l->handle == NULL) return dlerror();
#define SAN_SYM(field, name) \
	*(void **)(&l->field) = dlsym(l->handle, name); \
	if (l->field == NULL) return dlerror();
	SAN_SYM(get_info, "san_model_get_info");
	SAN_SYM(new_, "san_model_new");
	SAN_SYM(free_, "san_model_free");
	SAN_SYM(reset, "san_model_reset");
	SAN_SYM(step, "san_model_step");
	SAN_SYM(cycles, "san_model_cycles");
	SAN_SYM(read32, "san_model_mmio_read32");
	SAN_SYM(write32, "san_model_mmio_write32");
	SAN_SYM(msix_pop, "san_model_msix_pop");
#undef SAN_SYM
	return NULL;
}

static void call_get_info(san_lib *l, san_model_info *i) { l->get_info(i); }
static san_model *call_new(san_lib *l, uint32_t rc) { return l->new_(rc); }
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
static int call_msix_pop(san_lib *l, san_model *m, uint16_t *v) { return l->msix_pop(m, v); }

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
	libs[path] = l
	return l, nil
}

// model is one instance of the Verilated NIC. It is not safe for concurrent use; NIC
// serialises access.
type model struct {
	lib *library
	m   *C.san_model
}

func newModel(l *library, resetCycles uint32) (*model, error) {
	m := C.call_new(&l.lib, C.uint32_t(resetCycles))
	if m == nil {
		return nil, errors.New("create model: allocation failed")
	}
	return &model{lib: l, m: m}, nil
}

func (m *model) free()               { C.call_free(&m.lib.lib, m.m); m.m = nil }
func (m *model) reset(cycles uint32) { C.call_reset(&m.lib.lib, m.m, C.uint32_t(cycles)) }
func (m *model) step(n uint64)       { C.call_step(&m.lib.lib, m.m, C.uint64_t(n)) }
func (m *model) cycles() uint64      { return uint64(C.call_cycles(&m.lib.lib, m.m)) }
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

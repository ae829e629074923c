package dut

/*
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stdlib.h>
#include <stdint.h>
#include "../../../verilator/san_dut.h"

typedef struct dut_lib {
	void *handle;
	uint32_t (*abi)(void);
	const char *(*top)(void);
	uint32_t (*port_count)(void);
	const char *(*port_name)(uint32_t);
	uint32_t (*port_width)(uint32_t);
	int (*port_dir)(uint32_t);
	san_dut *(*new_)(void);
	void (*free_)(san_dut *);
	int (*set)(san_dut *, uint32_t, const uint32_t *);
	int (*get)(san_dut *, uint32_t, uint32_t *);
	void (*eval)(san_dut *);
	void (*tick)(san_dut *, uint32_t);
} dut_lib;

static const char *dut_lib_open(dut_lib *l, const char *path) {
	l->handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (l->handle == NULL) return dlerror();
#define DUT_SYM(field, name) \
	*(void **)(&l->field) = dlsym(l->handle, name); \
	if (l->field == NULL) return dlerror();
	DUT_SYM(abi, "san_dut_abi");
	DUT_SYM(top, "san_dut_top");
	DUT_SYM(port_count, "san_dut_port_count");
	DUT_SYM(port_name, "san_dut_port_name");
	DUT_SYM(port_width, "san_dut_port_width");
	DUT_SYM(port_dir, "san_dut_port_dir");
	DUT_SYM(new_, "san_dut_new");
	DUT_SYM(free_, "san_dut_free");
	DUT_SYM(set, "san_dut_set");
	DUT_SYM(get, "san_dut_get");
	DUT_SYM(eval, "san_dut_eval");
	DUT_SYM(tick, "san_dut_tick");
#undef DUT_SYM
	return NULL;
}

static uint32_t c_abi(dut_lib *l) { return l->abi(); }
static const char *c_top(dut_lib *l) { return l->top(); }
static uint32_t c_port_count(dut_lib *l) { return l->port_count(); }
static const char *c_port_name(dut_lib *l, uint32_t i) { return l->port_name(i); }
static uint32_t c_port_width(dut_lib *l, uint32_t i) { return l->port_width(i); }
static int c_port_dir(dut_lib *l, uint32_t i) { return l->port_dir(i); }
static san_dut *c_new(dut_lib *l) { return l->new_(); }
static void c_free(dut_lib *l, san_dut *d) { l->free_(d); }
static int c_set(dut_lib *l, san_dut *d, uint32_t i, const uint32_t *v) { return l->set(d, i, v); }
static int c_get(dut_lib *l, san_dut *d, uint32_t i, uint32_t *v) { return l->get(d, i, v); }
static void c_eval(dut_lib *l, san_dut *d) { l->eval(d); }
static void c_tick(dut_lib *l, san_dut *d, uint32_t clk) { l->tick(d, clk); }
*/
import "C"

import (
	"fmt"
	"sync"
	"unsafe"
)

// library is a loaded libdut.so with its port table.
type library struct {
	lib   C.dut_lib
	top   string
	ports []Port
	index map[string]int
}

var (
	libsMu sync.Mutex
	libs   = map[string]*library{} // guarded by libsMu; never unloaded
)

func load(path string) (*library, error) {
	libsMu.Lock()
	defer libsMu.Unlock()
	if l, ok := libs[path]; ok {
		return l, nil
	}
	l := &library{index: map[string]int{}}
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	if msg := C.dut_lib_open(&l.lib, cpath); msg != nil {
		return nil, fmt.Errorf("load %s: %s", path, C.GoString(msg))
	}
	if abi := uint32(C.c_abi(&l.lib)); abi != uint32(C.SAN_DUT_ABI) {
		return nil, fmt.Errorf("load %s: ABI %d, want %d: rebuild with make duts", path, abi, int(C.SAN_DUT_ABI))
	}
	l.top = C.GoString(C.c_top(&l.lib))
	n := int(C.c_port_count(&l.lib))
	for i := 0; i < n; i++ {
		p := Port{
			Name:   C.GoString(C.c_port_name(&l.lib, C.uint32_t(i))),
			Width:  int(C.c_port_width(&l.lib, C.uint32_t(i))),
			Output: C.c_port_dir(&l.lib, C.uint32_t(i)) == C.SAN_DUT_OUT,
		}
		l.ports = append(l.ports, p)
		l.index[p.Name] = i
	}
	return l, nil
}

// instance is one model of the block.
type instance struct {
	lib *library
	d   *C.san_dut
}

func (l *library) newInstance() (*instance, error) {
	d := C.c_new(&l.lib)
	if d == nil {
		return nil, fmt.Errorf("create %s: allocation failed", l.top)
	}
	return &instance{lib: l, d: d}, nil
}

func (i *instance) free() { C.c_free(&i.lib.lib, i.d); i.d = nil }

func (i *instance) set(idx int, words []uint32) bool {
	return C.c_set(&i.lib.lib, i.d, C.uint32_t(idx), (*C.uint32_t)(unsafe.Pointer(&words[0]))) == 0
}

func (i *instance) get(idx int, words []uint32) bool {
	return C.c_get(&i.lib.lib, i.d, C.uint32_t(idx), (*C.uint32_t)(unsafe.Pointer(&words[0]))) == 0
}

func (i *instance) eval()        { C.c_eval(&i.lib.lib, i.d) }
func (i *instance) tick(clk int) { C.c_tick(&i.lib.lib, i.d, C.uint32_t(clk)) }

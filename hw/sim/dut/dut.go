package dut

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/sanoffload/san/hw/sim/internal/srcroot"
)

// Port describes one port of the block.
type Port struct {
	Name   string
	Width  int // bits
	Output bool
}

// ErrNotBuilt means the block's unit-test model is missing.
var ErrNotBuilt = errors.New("RTL unit-test model not built: run 'make duts' (make test builds it)")

// DUT is one Verilated RTL block. It is not safe for concurrent use; a test owns it.
type DUT struct {
	t      testing.TB
	inst   *instance
	clk    int
	cycles uint64
	words  []uint32 // scratch for single-word ports
}

// Path returns where `make duts` puts the model of the named block, found from the module
// root above the working directory.
func Path(name string) (string, error) {
	root, ok := srcroot.Find()
	if !ok {
		return "", fmt.Errorf("%s: %w (no source tree above the working directory)", name, ErrNotBuilt)
	}
	p := filepath.Join(root, "build", "verilator", "dut", name, "libdut.so")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("%s: %w", name, ErrNotBuilt)
	}
	return p, nil
}

// New loads the named block (a module of hw/rtl with a "clk" port) for test t, in reset
// state: "rst", if it has one, is held high for 4 cycles and released. The model is freed when
// the test ends. A missing model fails the test with a message saying to run make.
func New(t testing.TB, name string) *DUT {
	t.Helper()
	path, err := Path(name)
	if err != nil {
		t.Fatal(err)
	}
	lib, err := load(path)
	if err != nil {
		t.Fatal(err)
	}
	inst, err := lib.newInstance()
	if err != nil {
		t.Fatal(err)
	}
	clk, ok := lib.index["clk"]
	if !ok {
		inst.free()
		t.Fatalf("%s has no clk port", name)
	}
	d := &DUT{t: t, inst: inst, clk: clk, words: make([]uint32, 2)}
	t.Cleanup(inst.free)
	if _, ok := lib.index["rst"]; ok {
		d.Set("rst", 1)
		for i := 0; i < 4; i++ {
			d.Tick()
		}
		d.Set("rst", 0)
		d.Eval()
	}
	return d
}

// Ports lists the block's ports in declaration order.
func (d *DUT) Ports() []Port { return d.inst.lib.ports }

func (d *DUT) port(name string) (int, Port) {
	idx, ok := d.inst.lib.index[name]
	if !ok {
		d.t.Fatalf("%s has no port %q", d.inst.lib.top, name)
	}
	return idx, d.inst.lib.ports[idx]
}

// Set drives an input of up to 64 bits; bits above its width are dropped.
func (d *DUT) Set(name string, v uint64) {
	idx, p := d.port(name)
	if p.Output {
		d.t.Fatalf("%s.%s is an output", d.inst.lib.top, name)
	}
	words := make([]uint32, (p.Width+31)/32)
	words[0] = uint32(v)
	if len(words) > 1 {
		words[1] = uint32(v >> 32)
	}
	d.inst.set(idx, words)
}

// SetBytes drives an input of any width from little-endian bytes (byte 0 is bits 7:0).
func (d *DUT) SetBytes(name string, b []byte) {
	idx, p := d.port(name)
	if p.Output {
		d.t.Fatalf("%s.%s is an output", d.inst.lib.top, name)
	}
	words := make([]uint32, (p.Width+31)/32)
	for i, x := range b {
		if i/4 < len(words) {
			words[i/4] |= uint32(x) << (8 * uint(i%4))
		}
	}
	d.inst.set(idx, words)
}

// Get reads a port of up to 64 bits.
func (d *DUT) Get(name string) uint64 {
	idx, p := d.port(name)
	if p.Width > 64 {
		d.t.Fatalf("%s.%s is %d bits wide: use GetBytes", d.inst.lib.top, name, p.Width)
	}
	d.words[0], d.words[1] = 0, 0
	d.inst.get(idx, d.words)
	return uint64(d.words[1])<<32 | uint64(d.words[0])
}

// GetBytes reads a port of any width as little-endian bytes, (width+7)/8 of them.
func (d *DUT) GetBytes(name string) []byte {
	idx, p := d.port(name)
	words := make([]uint32, (p.Width+31)/32+1)
	d.inst.get(idx, words)
	out := make([]byte, (p.Width+7)/8)
	for i := range out {
		out[i] = byte(words[i/4] >> (8 * uint(i%4)))
	}
	return out
}

// Eval settles combinational logic after inputs change.
func (d *DUT) Eval() { d.inst.eval() }

// Tick runs one rising clock edge.
func (d *DUT) Tick() {
	d.inst.tick(d.clk)
	d.cycles++
}

// Cycles is the number of rising edges run, reset included.
func (d *DUT) Cycles() uint64 { return d.cycles }

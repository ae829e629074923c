package sim

import (
	"context"
	"errors"
	"fmt"

	"github.com/sanoffload/san/driver"
	"github.com/sanoffload/san/driver/iova"
	"github.com/sanoffload/san/driver/regs"
)

// Config sets up a simulated NIC. The zero value is usable.
type Config struct {
	// ModelPath is the model library; empty means FindModel's search.
	ModelPath string
	// HostMemory is the bytes of simulated host memory for DMA buffers; 0 means 64 MiB.
	HostMemory int
	// ResetCycles is how long reset is held; 0 means 16.
	ResetCycles uint32
	// MMIOTimeout is how many cycles a BAR access may take before the device counts as wedged;
	// 0 means 10000.
	MMIOTimeout uint32
	// IRQWaitCycles, when not 0, bounds how long WaitInterrupt waits, in cycles of the NIC's
	// clock, before it gives up with driver.ErrTimeout (a deterministic clock that has gone
	// quiescent with nothing due ends it at once). 0: as long as the caller's ctx allows.
	IRQWaitCycles uint64
	// Clock is the mode of a NIC's own clock (Open); NICs of a fabric follow the fabric's.
	Clock ClockMode
	// DMA is the host's timing; nil means PCIeDMA.
	DMA *DMAModel
	// LinkStallPercent is the share of cycles the MAC withholds transmit ready (backpressure).
	LinkStallPercent uint32
	// Seed seeds the DMA and link stall patterns.
	Seed uint64
}

// DMAModel is how the simulated host answers the NIC's DMA ports. The zero value is ideal DMA:
// read data in the cycle after the request, one beat per cycle, no stalls.
type DMAModel struct {
	ReadLatency  uint32 // cycles from a read request to its first data beat
	ReadTags     uint32 // reads in flight at most; 0 means 256
	WriteLatency uint32 // cycles from a write's last beat to its completion (writes are posted)
	StallPercent uint32 // share of cycles the host withholds read data and write ready
}

// PCIeDMA is the default host: a PCIe-like read latency of 150 cycles (about 1 us at
// 156.25 MHz), 32 reads in flight, posted writes.
var PCIeDMA = DMAModel{ReadLatency: 150, ReadTags: 32, WriteLatency: 150}

// DMAFault is a DMA access outside the memory the driver mapped: the guard refused it.
type DMAFault struct {
	IOVA, Len, Cycle uint64
	Write            bool
}

func (f DMAFault) String() string {
	op := "read"
	if f.Write {
		op = "write"
	}
	return fmt.Sprintf("DMA %s of %d bytes at 0x%x in cycle %d", op, f.Len, f.IOVA, f.Cycle)
}

// ErrDMAFault reports that the NIC reached for host memory the driver had not mapped.
var ErrDMAFault = errors.New("DMA outside mapped memory")

// Frame is an Ethernet frame (no FCS) the NIC transmitted or received, with the cycles of its
// first and last beat.
type Frame struct {
	Bytes       []byte
	First, Last uint64
}

// IOVABase is where simulated DMA memory starts in the device's address space. It is not zero
// so that a NIC using an unset address is caught rather than served.
const IOVABase = 0x1_0000_0000

// NIC is a simulated SAN NIC with its host. It implements driver.Device; all methods are safe
// for concurrent use.
type NIC struct {
	cfg Config
	lib *library
	clk *clock
	fab *Fabric // nil for a NIC on its own clock
	// cable, when plugged (guarded by clk.mu), takes the frames the NIC transmits; txBuf is
	// the buffer they are popped through.
	cable *Cable
	txBuf []byte
	mem   *hostMemory
	dma   *iova.Allocator

	barSize uint64 // read from BUILD_BAR0_SIZE at Open
	vectors int    // read from BUILD_N_MSIX at Open

	// All guarded by clk.mu.
	model    *model   // nil once closed
	wedged   bool     // an MMIO access timed out, cleared by Reset
	pending  []uint64 // MSI-X fires per vector not yet consumed by a wait
	spurious uint64   // MSI-X requests for vectors the NIC does not have
	faults   uint64   // DMA faults already reported
}

var _ driver.Device = (*NIC)(nil)

// Open loads the model and brings up one NIC out of reset, on a clock of its own.
func Open(cfg Config) (*NIC, error) {
	return openOn(cfg, newClock(cfg.Clock), nil)
}

func openOn(cfg Config, clk *clock, fab *Fabric) (*NIC, error) {
	if cfg.HostMemory == 0 {
		cfg.HostMemory = 64 << 20
	}
	if cfg.ResetCycles == 0 {
		cfg.ResetCycles = 16
	}
	if cfg.MMIOTimeout == 0 {
		cfg.MMIOTimeout = 10000
	}
	if cfg.HostMemory < 0 || cfg.HostMemory%iova.PageSize != 0 {
		return nil, fmt.Errorf("sim: host memory %d is not a positive multiple of %d", cfg.HostMemory, iova.PageSize)
	}
	path, err := FindModel(cfg.ModelPath)
	if err != nil {
		return nil, err
	}
	lib, err := loadLibrary(path)
	if err != nil {
		return nil, err
	}
	dma := PCIeDMA
	if cfg.DMA != nil {
		dma = *cfg.DMA
	}
	mem, err := mapHostMemory(cfg.HostMemory)
	if err != nil {
		return nil, err
	}
	clk.mu.Lock()
	defer clk.mu.Unlock()
	if fab == nil && cfg.Clock != Deterministic && cfg.Clock != RealTime {
		mem.unmap()
		return nil, fmt.Errorf("sim: clock mode %d is not one of Deterministic, RealTime", cfg.Clock)
	}
	if fab != nil && fab.f == nil {
		mem.unmap()
		return nil, fmt.Errorf("sim: fabric: %w", driver.ErrClosed)
	}
	m, err := newModel(lib, modelConfig{resetCycles: cfg.ResetCycles, dma: dma,
		linkStallPct: cfg.LinkStallPercent, seed: cfg.Seed, host: mem, hostIOVA: IOVABase})
	if err != nil {
		mem.unmap()
		return nil, err
	}
	if fab != nil {
		if err := fab.adopt(lib, m); err != nil {
			m.free()
			mem.unmap()
			return nil, err
		}
	}
	n := &NIC{cfg: cfg, lib: lib, clk: clk, fab: fab, model: m, mem: mem}
	// BAR0 is at least a page, so the header and build registers are always reachable.
	n.barSize = iova.PageSize
	fail := func(err error) (*NIC, error) {
		n.closeLocked()
		return nil, err
	}
	size, err := n.read32Locked(regs.NICBuildBar0Size)
	if err != nil {
		return fail(fmt.Errorf("sim: read BAR0 size: %w", err))
	}
	vectors, err := n.read32Locked(regs.NICBuildNMSIX)
	if err != nil {
		return fail(fmt.Errorf("sim: read MSI-X vector count: %w", err))
	}
	n.barSize, n.vectors = uint64(size), int(vectors)
	n.pending = make([]uint64, n.vectors)
	if n.dma, err = iova.New(IOVABase, uint64(cfg.HostMemory)); err != nil {
		return fail(err)
	}
	clk.nics = append(clk.nics, n)
	if clk.mode == RealTime {
		m.setRealTime(true)
	}
	if clk.noSkip {
		m.setSkip(false)
	}
	clk.startLocked()
	return n, nil
}

// ModelPath is the library the NIC runs.
func (n *NIC) ModelPath() string { return n.lib.path }

// VerilatorVersion is the Verilator that built the model.
func (n *NIC) VerilatorVersion() string { return n.lib.verilatorVersion }

// Cycles is the number of core-clock cycles the NIC has run.
func (n *NIC) Cycles() (uint64, error) {
	n.clk.mu.Lock()
	defer n.clk.mu.Unlock()
	if n.model == nil {
		return 0, driver.ErrClosed
	}
	return n.model.cycles(), nil
}

// Step runs the NIC's clock for cycles cycles.
func (n *NIC) Step(cycles uint64) error {
	n.clk.mu.Lock()
	defer n.clk.mu.Unlock()
	if n.model == nil {
		return driver.ErrClosed
	}
	return n.stepLocked(cycles)
}

// stepLocked runs the clock (of every NIC on it) and collects the interrupts raised meanwhile.
// It reports DMA faults that are new since the last report.
// Preconditions: n.clk.mu is held; n.model is not nil.
func (n *NIC) stepLocked(cycles uint64) error {
	n.model.step(cycles)
	n.clk.pokeLocked()
	var err error
	for _, x := range n.clk.nics {
		if x.model == nil {
			continue
		}
		x.collectLocked()
		if ferr := x.faultErrLocked(); ferr != nil && err == nil {
			err = ferr
		}
	}
	return err
}

// faultErrLocked returns an error for DMA faults not reported yet.
// Preconditions: n.clk.mu is held; n.model is not nil.
func (n *NIC) faultErrLocked() error {
	c, first := n.model.dmaFaults()
	if c == n.faults {
		return nil
	}
	n.faults = c
	return fmt.Errorf("sim: %w: %d so far, the first: %v", ErrDMAFault, c, first)
}

// DMAFaults reports how many DMA accesses the guard refused, and the first of them.
func (n *NIC) DMAFaults() (uint64, DMAFault) {
	n.clk.mu.Lock()
	defer n.clk.mu.Unlock()
	if n.model == nil {
		return n.faults, DMAFault{}
	}
	return n.model.dmaFaults()
}

// LastWriteCycle is the cycle in which the NIC took the data of the last BAR0 write.
func (n *NIC) LastWriteCycle() uint64 {
	n.clk.mu.Lock()
	defer n.clk.mu.Unlock()
	if n.model == nil {
		return 0
	}
	return n.model.lastWriteCycle()
}

// Inject queues a frame (Ethernet header on, no FCS) for the NIC's receive port, behind the
// frames already queued; bad marks it as the MAC would a frame with a bad FCS.
func (n *NIC) Inject(frame []byte, bad bool) error {
	n.clk.mu.Lock()
	defer n.clk.mu.Unlock()
	if n.model == nil {
		return driver.ErrClosed
	}
	if !n.model.rxPush(frame, bad) {
		return errors.New("sim: inject: empty frame")
	}
	n.clk.pokeLocked()
	return nil
}

// Capture makes a linked NIC keep a copy of every frame it transmits for Transmitted (an
// unlinked NIC always keeps them: it has nowhere else to send them).
func (n *NIC) Capture(on bool) error {
	n.clk.mu.Lock()
	defer n.clk.mu.Unlock()
	if n.model == nil {
		return driver.ErrClosed
	}
	n.model.capture(on)
	return nil
}

// Transmitted takes the frames the NIC has transmitted since the last call (see Capture). With
// link faults these are the frames as sent, before any fault.
func (n *NIC) Transmitted() ([]Frame, error) {
	n.clk.mu.Lock()
	defer n.clk.mu.Unlock()
	if n.model == nil {
		return nil, driver.ErrClosed
	}
	return popAll(n.model.txPop)
}

// CaptureReceived makes a linked NIC keep a copy of every frame its receive port takes from the
// link, as the link's faults left it, for Received. First and Last are the cycles in which the
// port took the frame's first and last beat. Frames from Inject are not kept.
func (n *NIC) CaptureReceived(on bool) error {
	n.clk.mu.Lock()
	defer n.clk.mu.Unlock()
	if n.model == nil {
		return driver.ErrClosed
	}
	n.model.captureReceived(on)
	return nil
}

// Received takes the frames the NIC has received from its link since the last call (see
// CaptureReceived).
func (n *NIC) Received() ([]Frame, error) {
	n.clk.mu.Lock()
	defer n.clk.mu.Unlock()
	if n.model == nil {
		return nil, driver.ErrClosed
	}
	return popAll(n.model.receivedPop)
}

// popAll takes every frame pop gives.
func popAll(pop func([]byte) (*Frame, error)) ([]Frame, error) {
	var out []Frame
	// A frame the NIC sends is at most 4165 bytes; a longer one (an RTL fault) is an error.
	buf := make([]byte, 16384)
	for {
		f, err := pop(buf)
		if f == nil || err != nil {
			return out, err
		}
		out = append(out, *f)
	}
}

// collectLocked moves MSI-X requests from the model to the pending counts, and the frames the
// NIC transmitted to its cable, if it has one.
// Preconditions: n.clk.mu is held; n.model is not nil.
func (n *NIC) collectLocked() {
	if n.cable != nil {
		if n.txBuf == nil {
			n.txBuf = make([]byte, 16384)
		}
		for {
			f, err := n.model.txPop(n.txBuf)
			if f == nil || err != nil {
				break
			}
			n.cable.takeLocked([]Frame{*f})
		}
	}
	for {
		v, ok := n.model.msixPop()
		if !ok {
			return
		}
		// The RTL must never raise a vector beyond BUILD_N_MSIX; such a request is counted
		// apart so that tests can assert there were none.
		if int(v) >= len(n.pending) {
			n.spurious++
			continue
		}
		n.pending[v]++
		// Whoever collects it (the clock's goroutine, or a BAR access of any caller), a waiter
		// on the vector looks again.
		for w := range n.clk.waits {
			if w.nic == n && w.vector == int(v) {
				close(w.ch)
				delete(n.clk.waits, w)
			}
		}
	}
}

// SpuriousInterrupts counts MSI-X requests the RTL raised for vectors it does not have.
func (n *NIC) SpuriousInterrupts() uint64 {
	n.clk.mu.Lock()
	defer n.clk.mu.Unlock()
	return n.spurious
}

// BARSize implements driver.Device. The NIC has one BAR, BAR0.
func (n *NIC) BARSize(bar int) (uint64, error) {
	if bar != 0 {
		return 0, fmt.Errorf("bar%d: %w", bar, driver.ErrNoBAR)
	}
	return n.barSize, nil
}

// access checks an MMIO access and that the NIC can take it.
// Preconditions: n.clk.mu is held.
func (n *NIC) accessLocked(op string, bar int, off uint64, width int) error {
	if bar != 0 {
		return &driver.AccessError{Op: op, BAR: bar, Offset: off, Width: width, Err: driver.ErrNoBAR}
	}
	if err := driver.CheckAccess(op, bar, off, width, n.barSize); err != nil {
		return err
	}
	if n.model == nil {
		return &driver.AccessError{Op: op, BAR: bar, Offset: off, Width: width, Err: driver.ErrClosed}
	}
	if n.wedged {
		return &driver.AccessError{Op: op, BAR: bar, Offset: off, Width: width,
			Err: fmt.Errorf("%w: an earlier access never completed; reset the device", driver.ErrTimeout)}
	}
	return nil
}

// respErr turns an AXI response into an error.
// Preconditions: n.clk.mu is held.
func (n *NIC) respErrLocked(op string, off uint64, width, resp int) error {
	n.clk.pokeLocked()
	switch resp {
	case respOkay, respExOkay:
		n.collectLocked()
		return nil
	case respTimeout:
		n.wedged = true
		return &driver.AccessError{Op: op, BAR: 0, Offset: off, Width: width,
			Err: fmt.Errorf("%w within %d cycles", driver.ErrTimeout, n.cfg.MMIOTimeout)}
	}
	n.collectLocked()
	return &driver.AccessError{Op: op, BAR: 0, Offset: off, Width: width,
		Err: fmt.Errorf("%w (AXI response %d)", driver.ErrBusError, resp)}
}

// Read32 implements driver.Device.
func (n *NIC) Read32(bar int, off uint64) (uint32, error) {
	n.clk.mu.Lock()
	defer n.clk.mu.Unlock()
	if err := n.accessLocked("read", bar, off, 4); err != nil {
		return 0, err
	}
	return n.read32Locked(off)
}

// read32Locked reads a BAR0 register whose offset has been checked.
// Preconditions: n.clk.mu is held; n.model is not nil.
func (n *NIC) read32Locked(off uint64) (uint32, error) {
	v, resp := n.model.read32(uint32(off), n.cfg.MMIOTimeout)
	if err := n.respErrLocked("read", off, 4, resp); err != nil {
		return 0, err
	}
	return v, nil
}

// Write32 implements driver.Device.
func (n *NIC) Write32(bar int, off uint64, v uint32) error {
	n.clk.mu.Lock()
	defer n.clk.mu.Unlock()
	if err := n.accessLocked("write", bar, off, 4); err != nil {
		return err
	}
	return n.respErrLocked("write", off, 4, n.model.write32(uint32(off), v, 0xf, n.cfg.MMIOTimeout))
}

// Read64 implements driver.Device: BAR0 is 32 bits wide, so low word then high word.
func (n *NIC) Read64(bar int, off uint64) (uint64, error) {
	n.clk.mu.Lock()
	defer n.clk.mu.Unlock()
	if err := n.accessLocked("read", bar, off, 8); err != nil {
		return 0, err
	}
	lo, resp := n.model.read32(uint32(off), n.cfg.MMIOTimeout)
	if err := n.respErrLocked("read", off, 8, resp); err != nil {
		return 0, err
	}
	hi, resp := n.model.read32(uint32(off+4), n.cfg.MMIOTimeout)
	if err := n.respErrLocked("read", off, 8, resp); err != nil {
		return 0, err
	}
	return uint64(hi)<<32 | uint64(lo), nil
}

// Write64 implements driver.Device: low word then high word.
func (n *NIC) Write64(bar int, off uint64, v uint64) error {
	n.clk.mu.Lock()
	defer n.clk.mu.Unlock()
	if err := n.accessLocked("write", bar, off, 8); err != nil {
		return err
	}
	if err := n.respErrLocked("write", off, 8, n.model.write32(uint32(off), uint32(v), 0xf, n.cfg.MMIOTimeout)); err != nil {
		return err
	}
	return n.respErrLocked("write", off, 8, n.model.write32(uint32(off+4), uint32(v>>32), 0xf, n.cfg.MMIOTimeout))
}

// AllocDMA implements driver.Device.
func (n *NIC) AllocDMA(size int) (*driver.DMABuffer, error) {
	if size <= 0 {
		return nil, fmt.Errorf("alloc dma %d bytes: size must be positive", size)
	}
	n.clk.mu.Lock()
	defer n.clk.mu.Unlock()
	if n.model == nil {
		return nil, driver.ErrClosed
	}
	base, err := n.dma.Alloc(uint64(size))
	if err != nil {
		return nil, fmt.Errorf("alloc dma %d bytes: %w: %v", size, driver.ErrNoMemory, err)
	}
	rounded, _ := n.dma.Size(base)
	off := base - IOVABase
	b := n.mem.mem[off : off+rounded : off+rounded]
	clear(b)
	// The guard admits exactly the bytes asked for, not the page rounding.
	if !n.model.guardMap(base, uint64(size)) {
		_ = n.dma.Free(base)
		return nil, fmt.Errorf("alloc dma %d bytes: %w: outside host memory", size, driver.ErrNoMemory)
	}
	return &driver.DMABuffer{IOVA: base, Bytes: b[:size:size]}, nil
}

// FreeDMA implements driver.Device.
func (n *NIC) FreeDMA(b *driver.DMABuffer) error {
	n.clk.mu.Lock()
	defer n.clk.mu.Unlock()
	if n.model == nil {
		return driver.ErrClosed
	}
	if b == nil || b.IOVA < IOVABase || len(b.Bytes) == 0 ||
		&b.Bytes[0] != &n.mem.mem[b.IOVA-IOVABase] {
		return fmt.Errorf("free dma: %w", driver.ErrNotMapped)
	}
	if err := n.dma.Free(b.IOVA); err != nil {
		return fmt.Errorf("free dma 0x%x: %w: %v", b.IOVA, driver.ErrNotMapped, err)
	}
	n.model.guardUnmap(b.IOVA)
	return nil
}

// NumVectors implements driver.Device.
func (n *NIC) NumVectors() int { return n.vectors }

// WaitInterrupt implements driver.Device. It blocks until the vector has fired, ctx ends, or
// (with Config.IRQWaitCycles) the clock has run that far without it: the clock's goroutine runs
// the clock while anyone waits (deterministic) or always (real time), so no caller steps it. A
// DMA fault of this NIC ends the wait with ErrDMAFault.
func (n *NIC) WaitInterrupt(ctx context.Context, vector int) (uint64, error) {
	if vector < 0 || vector >= n.vectors {
		return 0, fmt.Errorf("wait for vector %d of %d: %w", vector, n.vectors, driver.ErrNoVector)
	}
	c := n.clk
	c.mu.Lock()
	defer c.mu.Unlock()
	if n.model == nil {
		return 0, driver.ErrClosed
	}
	start := n.model.cycles()
	for {
		if n.model == nil {
			return 0, driver.ErrClosed
		}
		n.collectLocked()
		if got := n.pending[vector]; got > 0 {
			n.pending[vector] = 0
			return got, nil
		}
		if err := n.faultErrLocked(); err != nil {
			return 0, err
		}
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		if bound := n.cfg.IRQWaitCycles; bound > 0 {
			ran := n.model.cycles() - start
			if ran >= bound {
				return 0, fmt.Errorf("wait for vector %d: %w in %d cycles", vector, driver.ErrTimeout, ran)
			}
			if c.quiet && c.mode == Deterministic {
				return 0, fmt.Errorf("wait for vector %d: %w: the NIC is idle with no timer due, after %d cycles",
					vector, driver.ErrTimeout, ran)
			}
		}
		w := &irqWait{nic: n, vector: vector, ch: make(chan struct{})}
		if n.cfg.IRQWaitCycles > 0 {
			w.until = start + n.cfg.IRQWaitCycles
		}
		c.waits[w] = struct{}{}
		c.signal()
		c.mu.Unlock()
		select {
		case <-w.ch:
		case <-ctx.Done():
		}
		c.mu.Lock()
		delete(c.waits, w)
	}
}

// Reset implements driver.Device: the RTL's reset is asserted for ResetCycles cycles, pending
// interrupts are dropped, and a wedged bus is cleared. DMA buffers stay allocated.
func (n *NIC) Reset() error {
	n.clk.mu.Lock()
	defer n.clk.mu.Unlock()
	if n.model == nil {
		return driver.ErrClosed
	}
	n.model.reset(n.cfg.ResetCycles)
	n.wedged = false
	clear(n.pending)
	n.clk.pokeLocked()
	return nil
}

// Close implements driver.Device; closing twice is not an error.
func (n *NIC) Close() error {
	n.clk.mu.Lock()
	if n.model == nil {
		n.clk.mu.Unlock()
		return nil
	}
	cable := n.cable
	n.closeLocked()
	// A NIC's own clock ends with it; a fabric's with the fabric.
	stop := n.fab == nil && n.clk.stopLocked()
	n.clk.mu.Unlock()
	if stop {
		<-n.clk.done
	}
	if cable != nil {
		_ = cable.Close()
	}
	return nil
}

// closeLocked frees the model and the host memory and leaves the clock.
// Preconditions: n.clk.mu is held; n.model is not nil.
func (n *NIC) closeLocked() {
	n.faults, _ = n.model.dmaFaults()
	n.model.free()
	n.model = nil
	n.mem.unmap()
	// Its waiters look again and find it closed.
	for w := range n.clk.waits {
		if w.nic == n {
			close(w.ch)
			delete(n.clk.waits, w)
		}
	}
	for i, x := range n.clk.nics {
		if x == n {
			n.clk.nics = append(n.clk.nics[:i], n.clk.nics[i+1:]...)
			break
		}
	}
}

// TimeTick is the shell's time (1.024 us ticks) the NIC's timers saw in its last cycle.
func (n *NIC) TimeTick() (uint32, error) {
	n.clk.mu.Lock()
	defer n.clk.mu.Unlock()
	if n.model == nil {
		return 0, driver.ErrClosed
	}
	return n.model.timeTick(), nil
}

// SkippedCycles is how many cycles the NIC's clock has moved over while quiescent (at once and
// exactly), included in Cycles.
func (n *NIC) SkippedCycles() (uint64, error) {
	n.clk.mu.Lock()
	defer n.clk.mu.Unlock()
	if n.model == nil {
		return 0, driver.ErrClosed
	}
	return n.model.skipped(), nil
}

// ClockMode is the mode of the NIC's clock.
func (n *NIC) ClockMode() ClockMode {
	n.clk.mu.Lock()
	defer n.clk.mu.Unlock()
	return n.clk.mode
}

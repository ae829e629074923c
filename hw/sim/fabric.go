package sim

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/sanoffload/san/driver"
	"github.com/sanoffload/san/hw/wire"
)

// Fabric is several simulated NICs (each with its own host) on one clock, joined by links.
// Stepping the fabric, an MMIO access to any of its NICs, or a wait for an interrupt runs every
// NIC in lock-step, so runs are deterministic and cycle counts exact. Its methods are safe for
// concurrent use.
type Fabric struct {
	clk *clock
	lib *library // the model library every NIC of the fabric runs
	f   *fabric  // guarded by clk.mu; nil once closed
	// modelPath is lib's path, given to each NIC the fabric opens.
	modelPath string
}

// NewFabric makes an empty fabric; NICs join it with Open. modelPath chooses the model library
// as Config.ModelPath does.
func NewFabric(modelPath string) (*Fabric, error) {
	path, err := FindModel(modelPath)
	if err != nil {
		return nil, err
	}
	lib, err := loadLibrary(path)
	if err != nil {
		return nil, err
	}
	return &Fabric{clk: newClock(Deterministic), lib: lib, f: newFabric(lib), modelPath: path}, nil
}

// Open brings up a NIC on the fabric's clock. cfg.ModelPath is ignored: every NIC of a fabric
// runs the fabric's model library.
func (fb *Fabric) Open(cfg Config) (*NIC, error) {
	cfg.ModelPath = fb.modelPath
	return openOn(cfg, fb.clk, fb)
}

// adopt puts a new model on the fabric's clock.
// Preconditions: fb.clk.mu is held.
func (fb *Fabric) adopt(lib *library, m *model) error {
	if fb.f == nil {
		return fmt.Errorf("sim: fabric: %w", driver.ErrClosed)
	}
	if lib != fb.lib {
		return errors.New("sim: fabric: every NIC must run the fabric's model library")
	}
	if !fb.f.add(m) {
		return errors.New("sim: fabric: the model is on another clock")
	}
	return nil
}

// Link joins two NICs of the fabric with a cable: each beat one transmits reaches the other's
// receive port latency cycles after the cycle following its transmission. A NIC has one port.
func (fb *Fabric) Link(a, b *NIC, latency uint32) error {
	fb.clk.mu.Lock()
	defer fb.clk.mu.Unlock()
	if fb.f == nil || a.model == nil || b.model == nil {
		return fmt.Errorf("sim: link: %w", driver.ErrClosed)
	}
	if a.clk != fb.clk || b.clk != fb.clk {
		return errors.New("sim: link: both NICs must be on this fabric")
	}
	if !fb.f.link(a.model, b.model, latency) {
		return errors.New("sim: link: a NIC is already linked, or both ends are the same NIC")
	}
	return nil
}

// Segment joins NICs of the fabric on a shared segment, a hub: every frame one of them
// transmits reaches every other's receive port, whole (store-and-forward), latency cycles after
// the cycle following its last beat; frames of several senders queue one behind another at each
// receiver. At least two NICs, none of them linked or on a segment already; a NIC on a segment
// has no link. Link faults do not apply to segments.
func (fb *Fabric) Segment(latency uint32, nics ...*NIC) error {
	fb.clk.mu.Lock()
	defer fb.clk.mu.Unlock()
	if fb.f == nil {
		return fmt.Errorf("sim: segment: %w", driver.ErrClosed)
	}
	if len(nics) < 2 {
		return errors.New("sim: segment: needs at least two NICs")
	}
	ms := make([]*model, len(nics))
	seen := map[*NIC]bool{}
	for i, n := range nics {
		if n.model == nil {
			return fmt.Errorf("sim: segment: %w", driver.ErrClosed)
		}
		if n.clk != fb.clk {
			return errors.New("sim: segment: every NIC must be on this fabric")
		}
		if seen[n] {
			return errors.New("sim: segment: a NIC is named twice")
		}
		seen[n] = true
		ms[i] = n.model
	}
	for _, m := range ms {
		if m.linked {
			return errors.New("sim: segment: a NIC is already linked or on a segment")
		}
	}
	if !fb.f.segment(latency, ms) {
		return errors.New("sim: segment: a NIC is already linked or on a segment")
	}
	return nil
}

// Step runs the fabric's clock for n cycles. It fails with ErrDMAFault when a NIC reached for
// unmapped host memory.
func (fb *Fabric) Step(n uint64) error {
	fb.clk.mu.Lock()
	defer fb.clk.mu.Unlock()
	if fb.f == nil {
		return driver.ErrClosed
	}
	if len(fb.clk.nics) == 0 {
		fb.f.step(n)
		fb.clk.pokeLocked()
		return nil
	}
	return fb.clk.nics[0].stepLocked(n)
}

// Cycles is the number of cycles the fabric's clock has run.
func (fb *Fabric) Cycles() uint64 {
	fb.clk.mu.Lock()
	defer fb.clk.mu.Unlock()
	if fb.f == nil {
		return 0
	}
	return fb.f.cycles()
}

// SetClockMode puts the fabric's clock in deterministic or real time (see ClockMode); its time
// goes on from where it is.
func (fb *Fabric) SetClockMode(mode ClockMode) error {
	if mode != Deterministic && mode != RealTime {
		return fmt.Errorf("sim: clock mode %d is not one of Deterministic, RealTime", mode)
	}
	fb.clk.mu.Lock()
	defer fb.clk.mu.Unlock()
	if fb.f == nil {
		return driver.ErrClosed
	}
	fb.clk.mode = mode
	if len(fb.clk.nics) > 0 {
		fb.clk.nics[0].model.setRealTime(mode == RealTime)
	}
	fb.clk.quiet = false
	fb.clk.signal()
	return nil
}

// SetSkip turns off (or on again: the default) moving over quiescent stretches, so that a test
// can show that skipping them changes nothing. NICs opened later follow.
func (fb *Fabric) SetSkip(on bool) error {
	fb.clk.mu.Lock()
	defer fb.clk.mu.Unlock()
	if fb.f == nil {
		return driver.ErrClosed
	}
	fb.clk.noSkip = !on
	if len(fb.clk.nics) > 0 {
		fb.clk.nics[0].model.setSkip(on)
	}
	return nil
}

// SkippedCycles is how many cycles the fabric's clock has moved over while quiescent, at once
// and exactly, instead of running them (included in Cycles).
func (fb *Fabric) SkippedCycles() uint64 {
	fb.clk.mu.Lock()
	defer fb.clk.mu.Unlock()
	if fb.f == nil || len(fb.clk.nics) == 0 {
		return 0
	}
	return fb.clk.nics[0].model.skipped()
}

// Close closes every NIC of the fabric, then the fabric, and ends its clock's goroutine;
// closing twice is not an error.
func (fb *Fabric) Close() error {
	fb.clk.mu.Lock()
	if fb.f == nil {
		fb.clk.mu.Unlock()
		return nil
	}
	for len(fb.clk.nics) > 0 {
		fb.clk.nics[0].closeLocked()
	}
	fb.f.free()
	fb.f = nil
	stop := fb.clk.stopLocked()
	fb.clk.mu.Unlock()
	if stop {
		<-fb.clk.done
	}
	return nil
}

// WritePcap writes frames captured on one or more NICs as one pcap file, in the order their
// first beats were sent, stamped with simulated time at the given clock.
func WritePcap(w io.Writer, clkKHz uint32, frames ...[]Frame) error {
	var all []Frame
	for _, fs := range frames {
		all = append(all, fs...)
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].First < all[j].First })
	pw, err := wire.NewPcapWriter(w)
	if err != nil {
		return err
	}
	for _, f := range all {
		ts := time.Duration(f.First) * time.Second / time.Duration(uint64(clkKHz)*1000)
		if err := pw.WritePacket(ts, f.Bytes); err != nil {
			return err
		}
	}
	return nil
}

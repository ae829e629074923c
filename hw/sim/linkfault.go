package sim

import (
	"errors"
	"fmt"
	"math"

	"github.com/sanoffload/san/driver"
)

// LinkFault is one kind of fault on a direction of a link. The zero value never fires.
type LinkFault struct {
	// P is the probability, 0 to 1, that a frame starts a run of this fault.
	P float64
	// Burst is the frames in a run: the one that started it and the next Burst-1, whatever else
	// happens to them. 0 means 1.
	Burst int
}

// LinkFaults are the seeded faults of one direction of a link, for testing the reliable
// transport. The zero value is a healthy link.
//
// A direction with every P at 0 carries frames cut-through, exactly as a link without faults.
// Otherwise each frame is stored whole, judged, then delivered latency+1 cycles after its last
// beat was sent: later than a cut-through frame by its beats less one. A frame keeps the mode it
// started in, so faults may be changed at any time (Drop.P = 1 cuts the link, 0 heals it).
//
// Each frame is judged in this order: Drop (it is lost and nothing else applies), Corrupt (1 to
// 3 distinct bits flipped inside one 4-byte window that only the RoCEv2 ICRC guards: from the
// BTH's DestQP, byte 47, to the end of the IPv4 datagram; the length never changes; a frame with
// no such byte is delivered intact and counted Uncorruptible), Duplicate (delivered twice, back
// to back), Reorder (held and delivered right behind the next frame that ends on the direction,
// lost or not; the frame that releases a held one is never held itself, so a run of reorders
// swaps pairs; a held frame nothing starts behind within ReorderHold cycles is delivered then).
//
// The bytes the BTH starts with are spared because the receiver checks the opcode, TVer and
// P_Key before the ICRC, and the ICRC does not cover byte 4 (FECN, BECN): a flip there would be
// reported as another drop, or not be caught at all.
type LinkFaults struct {
	Drop, Corrupt, Duplicate, Reorder LinkFault
	// Seed starts the direction's generator (splitmix64; any value, 0 included). Every SetFaults
	// restarts it and ends runs in progress. Each judged frame draws five numbers, one per kind
	// always and one for the corruption, so one kind's decisions do not move when another
	// kind's P changes.
	Seed uint64
	// ReorderHold bounds, in cycles from its last beat, how long a held frame waits for a next
	// frame; 0 means 4096.
	ReorderHold uint32
}

// LinkCounts count what a direction of a link did since the link was made. Frames - Dropped +
// Duplicated = Delivered once no frame is held.
type LinkCounts struct {
	Frames        uint64 // frames the sender put on the link, cut-through ones included
	Dropped       uint64 // lost to Drop
	Corrupted     uint64 // delivered with bits flipped
	Uncorruptible uint64 // chosen by Corrupt but without a byte to flip: delivered intact
	Duplicated    uint64 // delivered twice
	Reordered     uint64 // held behind the next frame (or until ReorderHold ran out)
	Delivered     uint64 // copies handed to the receiver's port, latency cycles ahead
}

// FaultKinds are the names FaultsOfKind knows: one fault kind alone, or "mixed" for all four at
// once sharing the probability equally.
var FaultKinds = []string{"drop", "corrupt", "duplicate", "reorder", "mixed"}

// FaultsOfKind returns the faults of one named kind (see FaultKinds; "" is a clean link) at
// probability p, bursts of one, seeded with seed.
func FaultsOfKind(kind string, p float64, seed uint64) (LinkFaults, error) {
	f := LinkFaults{Seed: seed}
	one := LinkFault{P: p, Burst: 1}
	switch kind {
	case "":
	case "drop":
		f.Drop = one
	case "corrupt":
		f.Corrupt = one
	case "duplicate":
		f.Duplicate = one
	case "reorder":
		f.Reorder = one
	case "mixed":
		q := LinkFault{P: p / 4, Burst: 1}
		f.Drop, f.Corrupt, f.Duplicate, f.Reorder = q, q, q, q
	default:
		return f, &FaultConfigError{Field: "kind", Value: kind, Want: fmt.Sprintf("one of %v", FaultKinds)}
	}
	return f, f.check()
}

// ErrNotLinked reports a direction of a link that does not exist: from and to are not linked
// to each other on the fabric.
var ErrNotLinked = errors.New("the NICs are not linked to each other")

// FaultConfigError is a LinkFaults field SetFaults refused.
type FaultConfigError struct {
	Field string // as written in Go, such as "Drop.P" or "Reorder.Burst"
	Value string // the value given
	Want  string // what the field takes
}

func (e *FaultConfigError) Error() string {
	return fmt.Sprintf("sim: link faults: %s is %s, want %s", e.Field, e.Value, e.Want)
}

// check reports the first field of f out of range.
func (f LinkFaults) check() error {
	for _, k := range []struct {
		name string
		f    LinkFault
	}{{"Drop", f.Drop}, {"Corrupt", f.Corrupt}, {"Duplicate", f.Duplicate}, {"Reorder", f.Reorder}} {
		if !(k.f.P >= 0 && k.f.P <= 1) { // NaN too
			return &FaultConfigError{Field: k.name + ".P", Value: fmt.Sprint(k.f.P), Want: "0 to 1"}
		}
		if k.f.Burst < 0 || uint64(k.f.Burst) > math.MaxUint32 {
			return &FaultConfigError{Field: k.name + ".Burst", Value: fmt.Sprint(k.f.Burst),
				Want: fmt.Sprintf("0 to %d (0 means 1)", uint64(math.MaxUint32))}
		}
	}
	return nil
}

// SetFaults replaces the faults of the direction from -> to of a link of the fabric (see
// LinkFaults); the other direction is not affected. A refused configuration is a
// *FaultConfigError, and a direction that does not exist is ErrNotLinked.
func (fb *Fabric) SetFaults(from, to *NIC, f LinkFaults) error {
	if err := f.check(); err != nil {
		return err
	}
	fb.clk.mu.Lock()
	defer fb.clk.mu.Unlock()
	if err := fb.directionLocked(from, to); err != nil {
		return fmt.Errorf("sim: set faults: %w", err)
	}
	switch fb.f.setFaults(from.model, to.model, f) {
	case 0:
		return nil
	case -1:
		return fmt.Errorf("sim: set faults: %w", ErrNotLinked)
	}
	return fmt.Errorf("sim: set faults: the model refused %+v", f)
}

// FaultCounts reads the counts of the direction from -> to of a link of the fabric.
func (fb *Fabric) FaultCounts(from, to *NIC) (LinkCounts, error) {
	fb.clk.mu.Lock()
	defer fb.clk.mu.Unlock()
	if err := fb.directionLocked(from, to); err != nil {
		return LinkCounts{}, fmt.Errorf("sim: fault counts: %w", err)
	}
	c, ok := fb.f.faultCounts(from.model, to.model)
	if !ok {
		return LinkCounts{}, fmt.Errorf("sim: fault counts: %w", ErrNotLinked)
	}
	return c, nil
}

// directionLocked checks that from and to are open NICs of the fabric; the model checks that
// they are linked.
// Preconditions: fb.clk.mu is held.
func (fb *Fabric) directionLocked(from, to *NIC) error {
	if from == nil || to == nil {
		return ErrNotLinked
	}
	if fb.f == nil || from.model == nil || to.model == nil {
		return driver.ErrClosed
	}
	if from.clk != fb.clk || to.clk != fb.clk {
		return fmt.Errorf("%w: both NICs must be on this fabric", ErrNotLinked)
	}
	return nil
}

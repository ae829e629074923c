package ctrl

import (
	"bytes"
	"fmt"
	"math/rand"

	"github.com/sanoffload/san/driver/nic"
	"github.com/sanoffload/san/driver/regs"
	"github.com/sanoffload/san/hw/sim"
)

// LossOptions configures a one-way stream over a faulty link.
type LossOptions struct {
	Kind     string  // one of sim.FaultKinds, or "" for a clean link
	P        float64 // probability that a frame suffers the fault, each direction
	Messages int     // messages sent
	Size     int     // bytes per message; 0: random sizes up to 8 KiB
	Seed     int64   // seeds the faults and the message contents
}

// LossReport is what a loss run delivered.
type LossReport struct {
	Sent      int             `json:"sent"`
	Delivered int             `json:"delivered"` // exactly once, in order, byte-exact
	Bytes     int             `json:"bytes"`     // of the messages delivered
	Cycles    uint64          `json:"cycles"`    // from the first post to the last completion
	Link      sim.LinkCounts  `json:"link"`      // faults injected on the data direction
	Counters  [2]nic.Counters `json:"counters"`
}

// SimLoss streams messages from one simulated NIC to the other over a link with the given
// faults in both directions (data and acknowledgements), with receive buffers posted ahead, and
// counts the messages that arrive exactly once, in order and byte-exact. A run that stops making
// progress ends at a cycle budget with what it delivered.
func SimLoss(c SimConfig, o LossOptions) (rep LossReport, err error) {
	const slot = 8192
	if o.Messages <= 0 || o.Size < 0 || o.Size > slot {
		return rep, fmt.Errorf("loss run: %d messages of %d bytes: want at least one, of at most %d", o.Messages, o.Size, slot)
	}
	p, err := newSimPair(c, pairOptions{dma: &sim.DMAModel{}, entries: 128,
		psn: [2]uint32{0xFFFFF0, 0xFFFFE0}})
	if err != nil {
		return rep, err
	}
	defer func() {
		if cerr := p.fab.Close(); err == nil {
			err = cerr
		}
	}()
	for i := range p.dev {
		f, err := sim.FaultsOfKind(o.Kind, o.P, uint64(o.Seed)*2+uint64(i))
		if err != nil {
			return rep, err
		}
		if err := p.fab.SetFaults(p.dev[i], p.dev[1-i], f); err != nil {
			return rep, err
		}
	}
	rng := rand.New(rand.NewSource(o.Seed))
	src, err := p.dev[0].AllocDMA(o.Messages * slot)
	if err != nil {
		return rep, err
	}
	dst, err := p.dev[1].AllocDMA(o.Messages * slot)
	if err != nil {
		return rep, err
	}
	msgs := make([][]byte, o.Messages)
	for i := range msgs {
		n := o.Size
		if n == 0 {
			n = rng.Intn(slot + 1)
		}
		msgs[i] = src.Bytes[i*slot : i*slot+n]
		rng.Read(msgs[i])
	}
	rep.Sent = o.Messages
	posted, recvPosted, acked, next := 0, 0, 0, 0
	start := p.fab.Cycles()
	budget := uint64(o.Messages)*20_000 + 200_000
	for (acked < o.Messages || next < o.Messages) && p.fab.Cycles()-start < budget {
		for recvPosted < o.Messages && recvPosted-next < 64 {
			if err := p.qp[1].PostRecv(nic.RecvWR{WRID: uint64(recvPosted), Addr: dst.IOVA + uint64(recvPosted*slot), Length: slot}); err != nil {
				return rep, err
			}
			recvPosted++
		}
		for posted < o.Messages && posted-acked < 64 {
			if err := p.qp[0].PostSend(nic.SendWR{WRID: uint64(posted), Addr: src.IOVA + uint64(posted*slot),
				Length: uint32(len(msgs[posted])), Signaled: true}); err != nil {
				return rep, err
			}
			posted++
		}
		if err := p.fab.Step(256); err != nil {
			return rep, err
		}
		sends, err := p.qp[0].Poll(64)
		if err != nil {
			return rep, err
		}
		for _, s := range sends {
			if s.Status != regs.CQEStatusOk {
				return rep, fmt.Errorf("%w: send %d completed %v", ErrExchange, s.WRID, s.Status)
			}
			acked = int(s.WRID) + 1
		}
		recvs, err := p.qp[1].Poll(64)
		if err != nil {
			return rep, err
		}
		for _, r := range recvs {
			m := msgs[next]
			if r.Status == regs.CQEStatusOk && r.WRID == uint64(next) && int(r.ByteLen) == len(m) &&
				bytes.Equal(m, dst.Bytes[next*slot:next*slot+len(m)]) {
				rep.Delivered++
				rep.Bytes += len(m)
			}
			next++
		}
	}
	rep.Cycles = p.fab.Cycles() - start
	if rep.Link, err = p.fab.FaultCounts(p.dev[0], p.dev[1]); err != nil {
		return rep, err
	}
	for i := range p.nic {
		if rep.Counters[i], err = p.nic[i].Counters(); err != nil {
			return rep, err
		}
	}
	return rep, nil
}

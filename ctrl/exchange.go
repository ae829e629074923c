package ctrl

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"

	"github.com/sanoffload/san/driver/nic"
	"github.com/sanoffload/san/driver/regs"
	"github.com/sanoffload/san/hw/sim"
)

// ExchangeOptions configures a scripted exchange between two simulated NICs.
type ExchangeOptions struct {
	// Sizes are the message lengths each side sends, in order; nil means ExchangeSizes.
	Sizes []int
	// PMTU is the path MTU in bytes; 0 means 1024.
	PMTU int
	// Latency is the link's latency in cycles.
	Latency uint32
	// Pcap, when set, is the file the link's traffic is written to.
	Pcap string
	// Seed seeds the message contents and the link faults.
	Seed int64
	// Drop is the probability that the link loses a frame, in each direction; the NICs must
	// recover every loss (go-back-N), so the exchange still delivers everything.
	Drop float64
	// LateRecv delays the receivers' buffers by this many cycles after the sends are posted,
	// so the first messages meet an empty receive queue and are RNR NAKed and retried.
	LateRecv uint64
}

// ExchangeSizes are the default message sizes: the edges of segmentation at a 1 KiB path MTU.
var ExchangeSizes = []int{0, 1, 63, 64, 1023, 1024, 1025, 4096, 65536}

// ExchangeReport is what a scripted exchange did.
type ExchangeReport struct {
	Messages int    `json:"messages"`
	Bytes    int    `json:"bytes"`
	Frames   int    `json:"frames"`
	Cycles   uint64 `json:"cycles"`
	Pcap     string `json:"pcap,omitempty"`
	// What the reliable transport did: retransmit timeouts, PSN sequence NAKs and RNR NAKs the
	// senders acted on, and frames the link dropped (both sides summed).
	Timeouts uint32 `json:"timeouts"`
	SeqNAKs  uint32 `json:"seq_naks"`
	RNRNAKs  uint32 `json:"rnr_naks"`
	Dropped  uint64 `json:"dropped"`
}

// ErrExchange means a message of the exchange was lost, damaged or completed with an error.
var ErrExchange = errors.New("exchange failed")

// SimExchange runs two simulated NICs on one clock, joined by a link, connects them through the
// driver's test-only context load, and sends each message size both ways. Every message must
// arrive byte-exact with a good completion; the traffic goes to o.Pcap when set.
func SimExchange(c SimConfig, o ExchangeOptions) (rep ExchangeReport, err error) {
	if o.Sizes == nil {
		o.Sizes = ExchangeSizes
	}
	if o.PMTU == 0 {
		o.PMTU = 1024
	}
	p, err := newSimPair(c, pairOptions{pmtu: o.PMTU, latency: o.Latency, capture: o.Pcap != "",
		psn: [2]uint32{1000, 2000}})
	if err != nil {
		return rep, err
	}
	defer func() {
		if cerr := p.fab.Close(); err == nil {
			err = cerr
		}
	}()
	fab := p.fab
	if o.Drop < 0 || o.Drop >= 1 {
		return rep, fmt.Errorf("%w: drop probability %v: must be in [0, 1)", ErrExchange, o.Drop)
	}
	if o.Drop > 0 {
		for i := range p.dev {
			f := sim.LinkFaults{Drop: sim.LinkFault{P: o.Drop, Burst: 1}, Seed: uint64(o.Seed)*2 + uint64(i)}
			if err := fab.SetFaults(p.dev[i], p.dev[1-i], f); err != nil {
				return rep, err
			}
		}
	}

	// Each side sends every size; buffers are a slot per message.
	slot := 0
	for _, n := range o.Sizes {
		slot = max(slot, n)
	}
	slot = (slot + 4095) &^ 4095
	if slot == 0 {
		slot = 4096
	}
	rng := rand.New(rand.NewSource(o.Seed))
	msgs := make([][][]byte, 2)
	dst := make([][]byte, 2)
	late := [2][]nic.RecvWR{}
	for i := range p.dev {
		src, err := p.dev[i].AllocDMA(slot * len(o.Sizes))
		if err != nil {
			return rep, err
		}
		in, err := p.dev[1-i].AllocDMA(slot * len(o.Sizes))
		if err != nil {
			return rep, err
		}
		dst[1-i] = in.Bytes
		var sends []nic.SendWR
		var recvs []nic.RecvWR
		for k, n := range o.Sizes {
			m := make([]byte, n)
			rng.Read(m)
			copy(src.Bytes[k*slot:], m)
			msgs[i] = append(msgs[i], m)
			sends = append(sends, nic.SendWR{WRID: uint64(k), Addr: src.IOVA + uint64(k*slot), Length: uint32(n), Signaled: true})
			recvs = append(recvs, nic.RecvWR{WRID: uint64(k), Addr: in.IOVA + uint64(k*slot), Length: uint32(slot)})
		}
		if o.LateRecv > 0 {
			late[1-i] = recvs
		} else if err := p.qp[1-i].PostRecv(recvs...); err != nil {
			return rep, err
		}
		if err := p.qp[i].PostSend(sends...); err != nil {
			return rep, err
		}
	}

	// Run until each side has its sends and receives completed.
	want := 2 * len(o.Sizes)
	got := [2][]nic.Completion{}
	start := fab.Cycles()
	budget := uint64(200000+200*slot*len(o.Sizes)/8) + o.LateRecv
	if o.Drop > 0 {
		budget *= 10
	}
	for len(got[0]) < want || len(got[1]) < want {
		if late[0] != nil && fab.Cycles()-start >= o.LateRecv {
			for i, r := range late {
				if err := p.qp[i].PostRecv(r...); err != nil {
					return rep, err
				}
			}
			late = [2][]nic.RecvWR{}
		}
		if fab.Cycles()-start > budget {
			return rep, fmt.Errorf("%w: %d and %d of %d completions after %d cycles", ErrExchange, len(got[0]), len(got[1]), want, budget)
		}
		if err := fab.Step(256); err != nil {
			return rep, err
		}
		for i, q := range p.qp {
			cs, err := q.Poll(want - len(got[i]))
			if err != nil {
				return rep, err
			}
			got[i] = append(got[i], cs...)
		}
	}
	rep.Cycles = fab.Cycles() - start
	for i := range p.nic {
		c, err := p.nic[i].Counters()
		if err != nil {
			return rep, err
		}
		rep.Timeouts += c.Timeouts
		rep.SeqNAKs += c.SeqNAKs
		rep.RNRNAKs += c.RNRNAKs
		fc, err := fab.FaultCounts(p.dev[i], p.dev[1-i])
		if err != nil {
			return rep, err
		}
		rep.Dropped += fc.Dropped
	}
	for i := range p.qp {
		k := 0
		for _, c := range got[i] {
			if c.Status != regs.CQEStatusOk {
				return rep, fmt.Errorf("%w: side %d: completion %+v", ErrExchange, i, c)
			}
			if c.Opcode != regs.CQEOpcodeRecv {
				continue
			}
			m := msgs[1-i][k]
			if c.WRID != uint64(k) || int(c.ByteLen) != len(m) || !bytes.Equal(m, dst[i][k*slot:k*slot+len(m)]) {
				return rep, fmt.Errorf("%w: side %d: message %d (%d bytes) arrived wrong: %+v", ErrExchange, i, k, len(m), c)
			}
			rep.Messages++
			rep.Bytes += len(m)
			k++
		}
	}
	if o.Pcap == "" {
		return rep, nil
	}
	var frames [2][]sim.Frame
	for i, d := range p.dev {
		if frames[i], err = d.Transmitted(); err != nil {
			return rep, err
		}
		rep.Frames += len(frames[i])
	}
	if err := os.MkdirAll(filepath.Dir(o.Pcap), 0o755); err != nil {
		return rep, err
	}
	f, err := os.Create(o.Pcap)
	if err != nil {
		return rep, err
	}
	if err := sim.WritePcap(f, p.nic[0].Identity().ClockKHz, frames[0], frames[1]); err != nil {
		f.Close()
		return rep, err
	}
	rep.Pcap = o.Pcap
	return rep, f.Close()
}

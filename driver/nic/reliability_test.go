package nic_test

import (
	"bytes"
	"fmt"
	"math/rand"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sanoffload/san/driver"
	"github.com/sanoffload/san/driver/nic"
	"github.com/sanoffload/san/driver/regs"
	"github.com/sanoffload/san/hw/sim"
)

// lossyTransport keeps recovery quick in simulation: a retransmit timeout of 4.096 us x 2^2
// (2560 cycles at 156.25 MHz, above the time to send the largest message these tests post),
// unlimited RNR retries with the shortest RNR timer, and all 7 retries.
var lossyTransport = nic.Transport{RetryCount: 7, RNRRetry: 7, Timeout: 2, MinRNRTimer: 1}

// stream is one direction of a connection under test: messages posted in order on the
// sender, and the receive buffers they must land in, in the same order.
type stream struct {
	from, to   *nic.QP
	src, dst   *driver.DMABuffer
	slot       int
	msgs       [][]byte
	sent, recv int // completions seen
	posted     int // messages posted so far
	recvPosted int
}

const lossSlot = 8192

// lossSizes are the message lengths the loss tests draw from: the segmentation edges at PMTU
// 1024 and multi-packet messages up to the slot.
var lossSizes = []int{0, 1, 64, 1023, 1024, 1025, 3000, 4096, 8192}

func newStream(t *testing.T, rng *rand.Rand, from, to *host, qf, qt *nic.QP, n int) *stream {
	s := &stream{from: qf, to: qt, slot: lossSlot}
	s.src = alloc(t, from, n*lossSlot)
	s.dst = alloc(t, to, n*lossSlot)
	for i := 0; i < n; i++ {
		m := make([]byte, lossSizes[rng.Intn(len(lossSizes))])
		rng.Read(m)
		copy(s.src.Bytes[i*lossSlot:], m)
		s.msgs = append(s.msgs, m)
	}
	return s
}

// pump posts what the rings have room for.
func (s *stream) pump(t *testing.T) {
	for s.recvPosted < len(s.msgs) {
		_, recvs := s.to.Outstanding()
		if recvs >= 32 {
			break
		}
		i := s.recvPosted
		require.NoError(t, s.to.PostRecv(nic.RecvWR{WRID: uint64(1_000_000 + i), Addr: s.dst.IOVA + uint64(i*s.slot), Length: uint32(s.slot)}))
		s.recvPosted++
	}
	for s.posted < len(s.msgs) {
		sends, _ := s.from.Outstanding()
		if sends >= 32 {
			break
		}
		i := s.posted
		require.NoError(t, s.from.PostSend(nic.SendWR{WRID: uint64(i), Addr: s.src.IOVA + uint64(i*s.slot),
			Length: uint32(len(s.msgs[i])), Signaled: i%3 != 1 || i == len(s.msgs)-1}))
		s.posted++
	}
}

// sendCQE checks a send completion: OK, and in order (an unsignaled send completes silently
// with the next signaled one).
func (s *stream) sendCQE(t *testing.T, c nic.Completion) {
	require.Equal(t, regs.CQEStatusOk, c.Status, "send %d", c.WRID)
	require.GreaterOrEqual(t, int(c.WRID), s.sent, "send completions in order")
	s.sent = int(c.WRID) + 1
}

// recvCQE checks a receive completion: each message exactly once, in order, byte-exact.
func (s *stream) recvCQE(t *testing.T, c nic.Completion) {
	i := s.recv
	require.Less(t, i, len(s.msgs), "more messages than were sent (a duplicate delivered)")
	require.Equal(t, regs.CQEStatusOk, c.Status, "message %d", i)
	require.Equal(t, uint64(1_000_000+i), c.WRID, "messages in order, each exactly once")
	require.Equal(t, len(s.msgs[i]), int(c.ByteLen), "message %d length", i)
	got := s.dst.Bytes[i*s.slot : i*s.slot+len(s.msgs[i])]
	if !bytes.Equal(s.msgs[i], got) {
		first := 0
		for first < len(got) && got[first] == s.msgs[i][first] {
			first++
		}
		from := "unknown"
		if first+8 <= len(got) {
			for k, m := range s.msgs {
				if j := bytes.Index(m, got[first:first+8]); j >= 0 {
					from = fmt.Sprintf("message %d offset %d", k, j)
					break
				}
			}
		}
		t.Fatalf("message %d (%d bytes) corrupted from byte %d (those bytes are %s)", i, len(s.msgs[i]), first, from)
	}
	s.recv++
}

func (s *stream) done() bool { return s.recv == len(s.msgs) && s.sent == len(s.msgs) }

// lossCase is one cell of the loss matrix: a fault kind (sim.FaultKinds) at probability p.
type lossCase struct {
	kind string
	p    float64
}

// runLossy sends msgs messages each way on one connection over a link faulty in both
// directions and checks exact delivery; it returns the cycles the run took.
func runLossy(t *testing.T, seed int64, lc lossCase, msgs int) uint64 {
	rng := rand.New(rand.NewSource(seed))
	fab, hs := newPair(t, pairConfig{dma: &sim.DMAModel{}, pmtu: 1024, seed: uint64(seed)})
	// PSNs near the 24-bit wrap, so recovery crosses it.
	psn := [2]uint32{0xFFFFFF - uint32(rng.Intn(64)), 0xFFFFFF - uint32(rng.Intn(64))}
	qps := connectWith(t, hs, 2, nic.QPConfig{SQEntries: 64, RQEntries: 64}, psn, lossyTransport)
	if os.Getenv("SAN_DUMP") != "" {
		require.NoError(t, hs[0].dev.Capture(true))
		require.NoError(t, hs[1].dev.Capture(true))
	}
	for i := range hs {
		f, err := sim.FaultsOfKind(lc.kind, lc.p, uint64(seed)*2+uint64(i)+1)
		require.NoError(t, err)
		require.NoError(t, fab.SetFaults(hs[i].dev, hs[1-i].dev, f))
	}
	ab := newStream(t, rng, hs[0], hs[1], qps[0], qps[1], msgs)
	ba := newStream(t, rng, hs[1], hs[0], qps[1], qps[0], msgs)
	start := fab.Cycles()
	const budget = 4_000_000
	for !(ab.done() && ba.done()) {
		ab.pump(t)
		ba.pump(t)
		// Each QP's CQ holds both directions' completions: a send of one stream, a receive of
		// the other.
		for _, pair := range [][2]*stream{{ab, ba}, {ba, ab}} {
			cs, err := pair[0].from.Poll(64)
			require.NoError(t, err)
			for _, c := range cs {
				if c.Opcode == regs.CQEOpcodeRecv {
					pair[1].recvCQE(t, c)
					continue
				}
				if c.Status != regs.CQEStatusOk {
					for i, h := range hs {
						cs, _ := h.nic.Counters()
						t.Logf("host %d counters %+v", i, cs)
					}
					dumpFrames(t, hs)
				}
				pair[0].sendCQE(t, c)
			}
		}
		if fab.Cycles()-start > budget {
			for i, h := range hs {
				cs, _ := h.nic.Counters()
				st, _ := qps[i].State()
				sends, recvs := qps[i].Outstanding()
				t.Logf("host %d: state %+v, outstanding %d sends %d receives; counters %+v", i, st, sends, recvs, cs)
			}
			dumpFrames(t, hs)
			t.Fatalf("seed %d %s p=%.2f: stuck after %d cycles: a->b %d/%d delivered %d acked, b->a %d/%d delivered %d acked",
				seed, lc.kind, lc.p, budget, ab.recv, msgs, ab.sent, ba.recv, msgs, ba.sent)
		}
		require.NoError(t, fab.Step(256))
	}
	for i, h := range hs {
		st, err := qps[i].State()
		require.NoError(t, err)
		assert.Equal(t, nic.State{RTS: true}, st, "host %d", i)
		c, err := h.nic.Counters()
		require.NoError(t, err)
		fc, err := fab.FaultCounts(hs[i].dev, hs[1-i].dev)
		require.NoError(t, err)
		t.Logf("host %d: injected %+v; timeouts %d, seq NAKs %d, RNR NAKs %d, ACKs ignored %d, drops %v",
			i, fc, c.Timeouts, c.SeqNAKs, c.RNRNAKs, c.AcksIgnored, c.Drops)
	}
	return fab.Cycles() - start
}

// TestLossMatrix (R6: once on the SAN a connection never falls back, so the NIC recovers every
// loss itself): for each fault kind alone and all mixed, at p = 1 %, 5 % and 20 % in both
// directions (data and acknowledgements), every message arrives exactly once, in order and
// byte-exact, every send completes OK, and the run ends.
func TestLossMatrix(t *testing.T) {
	const seed = 5 // at 20 % each way a message can meet RetryCount+1 failed tries in a row; seed 4 does once the timer scan parks
	t.Logf("seed %d", seed)
	for ki, kind := range sim.FaultKinds {
		for pi, p := range []float64{0.01, 0.05, 0.20} {
			lc := lossCase{kind: kind, p: p}
			t.Run(fmt.Sprintf("%s/p%02.0f", kind, p*100), func(t *testing.T) {
				cycles := runLossy(t, seed*100+int64(ki*10+pi), lc, 40)
				t.Logf("%d cycles", cycles)
			})
		}
	}
}

// TestRetryExhaustion: on a dead link the sender retries RetryCount times after the first
// timeout, then completes the oldest send with RETRY_EXCEEDED and the connection is in error;
// the run ends.
func TestRetryExhaustion(t *testing.T) {
	fab, hs := newPair(t, pairConfig{dma: &sim.DMAModel{}, seed: 5})
	tr := nic.Transport{RetryCount: 3, Timeout: 1}
	qps := connectWith(t, hs, 2, nic.QPConfig{}, [2]uint32{100, 200}, tr)
	dead := sim.LinkFaults{Drop: sim.LinkFault{P: 1}}
	require.NoError(t, fab.SetFaults(hs[0].dev, hs[1].dev, dead))
	src := alloc(t, hs[0], 4096)
	require.NoError(t, qps[0].PostSend(nic.SendWR{WRID: 7, Addr: src.IOVA, Length: 2000, Signaled: true},
		nic.SendWR{WRID: 8, Addr: src.IOVA, Length: 10, Signaled: true}))
	// 4 timeouts of 1280 cycles (4.096 us x 2 at 156.25 MHz), plus the timer scan.
	got := collect(t, fab, 20_000, map[*nic.QP]int{qps[0]: 1})
	c := got[qps[0]][0]
	assert.Equal(t, uint64(7), c.WRID, "the oldest send fails")
	assert.Equal(t, regs.CQEStatusRetryExceeded, c.Status)
	st, err := qps[0].State()
	require.NoError(t, err)
	assert.Equal(t, nic.State{RTS: true, Error: true}, st)
	cnt, err := hs[0].nic.Counters()
	require.NoError(t, err)
	assert.Equal(t, uint32(tr.RetryCount)+1, cnt.Timeouts, "RetryCount retries, then the error")
	require.NoError(t, fab.Step(10_000))
	cs, err := qps[0].Poll(8)
	require.NoError(t, err)
	assert.Empty(t, cs, "nothing more completes (flushing is the connection manager's)")
	fc, err := fab.FaultCounts(hs[0].dev, hs[1].dev)
	require.NoError(t, err)
	assert.Equal(t, 3*(int(tr.RetryCount)+1), int(fc.Dropped), "each try sends the 2000-byte message's 2 packets and the next one's")
}

// TestRNR: with no receive posted the responder answers RNR NAKs and the sender waits and
// retries, delivering nothing, for as long as RNR retries last (7: without limit); once a
// receive is posted the messages go through in order. With a finite RNR retry count the
// oldest send fails with RNR_RETRY_EXCEEDED and the connection is in error.
func TestRNR(t *testing.T) {
	fab, hs := newPair(t, pairConfig{dma: &sim.DMAModel{}, seed: 6})
	qps := connectWith(t, hs, 2, nic.QPConfig{}, [2]uint32{0xFFFFFE, 5}, lossyTransport)
	src := alloc(t, hs[0], 3*4096)
	dst := alloc(t, hs[1], 3*4096)
	msgs := [][]byte{pattern(1, 100), pattern(2, 3000), pattern(3, 1)}
	for i, m := range msgs {
		copy(src.Bytes[i*4096:], m)
		require.NoError(t, qps[0].PostSend(nic.SendWR{WRID: uint64(i), Addr: src.IOVA + uint64(i*4096), Length: uint32(len(m)), Signaled: true}))
	}
	// The RNR timer code 1 is 10 us = 1563 cycles: in 40k cycles the sender tries ~20 times.
	require.NoError(t, fab.Step(40_000))
	cs, err := qps[0].Poll(8)
	require.NoError(t, err)
	assert.Empty(t, cs)
	c0, err := hs[0].nic.Counters()
	require.NoError(t, err)
	assert.Greater(t, c0.RNRNAKs, uint32(10), "the sender keeps waiting out RNR NAKs")
	c1, err := hs[1].nic.Counters()
	require.NoError(t, err)
	assert.Equal(t, c0.RNRNAKs, c1.Drops[regs.RxDropNoRecv], "one RNR NAK per refused first packet")
	for i := range msgs {
		require.NoError(t, qps[1].PostRecv(nic.RecvWR{WRID: uint64(10 + i), Addr: dst.IOVA + uint64(i*4096), Length: 4096}))
	}
	got := collect(t, fab, 100_000, map[*nic.QP]int{qps[0]: 3, qps[1]: 3})
	for i, m := range msgs {
		assert.Equal(t, regs.CQEStatusOk, got[qps[0]][i].Status)
		r := got[qps[1]][i]
		assert.Equal(t, uint64(10+i), r.WRID)
		assert.Equal(t, m, dst.Bytes[i*4096:i*4096+len(m)])
	}

	// Finite: 2 RNR retries, then the error.
	q2 := connectWith(t, hs, 3, nic.QPConfig{}, [2]uint32{0, 0}, nic.Transport{RetryCount: 7, RNRRetry: 2, Timeout: 2, MinRNRTimer: 1})
	before, err := hs[0].nic.Counters()
	require.NoError(t, err)
	require.NoError(t, q2[0].PostSend(nic.SendWR{WRID: 99, Addr: src.IOVA, Length: 10}))
	got = collect(t, fab, 50_000, map[*nic.QP]int{q2[0]: 1})
	assert.Equal(t, uint64(99), got[q2[0]][0].WRID, "an unsignaled send's error completes too")
	assert.Equal(t, regs.CQEStatusRNRRetryExceeded, got[q2[0]][0].Status)
	after, err := hs[0].nic.Counters()
	require.NoError(t, err)
	assert.Equal(t, uint32(2), after.RNRNAKs-before.RNRNAKs, "two RNR NAKs waited out, the third fails it")
	st, err := q2[0].State()
	require.NoError(t, err)
	assert.Equal(t, nic.State{RTS: true, Error: true}, st)
}

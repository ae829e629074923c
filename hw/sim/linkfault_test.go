package sim

import (
	"bytes"
	"encoding/binary"
	"math"
	"math/bits"
	"math/rand"
	"net"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sanoffload/san/driver"
	nicdrv "github.com/sanoffload/san/driver/nic"
	"github.com/sanoffload/san/driver/regs"
)

// The tests here drive real traffic through the driver: NIC a sends one-frame SEND messages to
// NIC b over a link with faults on a -> b. a captures what it transmits (before the faults), b
// what its receive port takes (after them), and b's port counters say what its checks made of
// it. The transport does not retransmit, so a lost frame stays lost and the receiver drops the
// rest of its connection for the PSN gap; the assertions lean only on the receive checks
// (RX_FRAMES, the ICRC drop counter), which come before the connection checks.

// linkPair is two simulated NICs on one fabric, linked, addressed and enabled.
type linkPair struct {
	fab     *Fabric
	a, b    *NIC
	da, db  *nicdrv.NIC
	latency uint32
}

func newLinkPair(t *testing.T, latency uint32) *linkPair {
	t.Helper()
	fab, err := NewFabric("")
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, fab.Close()) })
	p := &linkPair{fab: fab, latency: latency}
	devs := []**NIC{&p.a, &p.b}
	drvs := []**nicdrv.NIC{&p.da, &p.db}
	for i := range devs {
		n, err := fab.Open(Config{HostMemory: 16 << 20})
		require.NoError(t, err)
		d, err := nicdrv.Open(n)
		require.NoError(t, err)
		require.NoError(t, d.SetAddress(net.HardwareAddr{0x02, 0, 0, 0, 0, byte(i + 1)},
			netip.AddrFrom4([4]byte{10, 0, 0, byte(i + 1)})))
		require.NoError(t, d.SetPMTU(1024))
		require.NoError(t, d.Enable(true))
		*devs[i], *drvs[i] = n, d
	}
	require.NoError(t, fab.Link(p.a, p.b, latency))
	require.NoError(t, p.a.Capture(true))
	require.NoError(t, p.b.CaptureReceived(true))
	t.Cleanup(func() {
		for _, n := range []*NIC{p.a, p.b} {
			c, first := n.DMAFaults()
			assert.Zero(t, c, "DMA guard: first fault %v", first)
		}
	})
	return p
}

// connect loads connections 2, 3, ... (conns of them) between a and b, each ring with room for
// entries messages; it returns them as [a's, b's] pairs.
func (p *linkPair) connect(t *testing.T, conns, entries int) [][2]*nicdrv.QP {
	t.Helper()
	var qps [][2]*nicdrv.QP
	for num := 2; num < 2+conns; num++ {
		var pair [2]*nicdrv.QP
		for i, d := range []*nicdrv.NIC{p.da, p.db} {
			q, err := d.CreateQP(num, nicdrv.QPConfig{SQEntries: entries, RQEntries: entries})
			require.NoError(t, err)
			pair[i] = q
		}
		for i := range pair {
			require.NoError(t, pair[i].LoadForTest(nicdrv.Peer{QPN: pair[1-i].QPN(),
				MAC: net.HardwareAddr{0x02, 0, 0, 0, 0, byte(2 - i)}, IP: netip.AddrFrom4([4]byte{10, 0, 0, byte(2 - i)}),
				UDPSource: uint16(0xC000 + num), SendPSN: uint32(100 * num), ReceivePSN: uint32(100 * num),
				// Go-back-N on NAKs, but no retransmit timer: these tests count what the link
				// did to the frames that flowed, and a connection must not stop at its first NAK.
				Transport: nicdrv.Transport{RetryCount: 7, RNRRetry: 7}}))
		}
		qps = append(qps, pair)
	}
	return qps
}

// post queues perConn messages of 0 to 1024 bytes (one frame each at PMTU 1024) on every
// connection, with a receive buffer for each at b, and returns how many it posted.
func (p *linkPair) post(t *testing.T, rng *rand.Rand, qps [][2]*nicdrv.QP, perConn int) int {
	t.Helper()
	const slot = 1024
	n := len(qps) * perConn
	src, err := p.a.AllocDMA(n * slot)
	require.NoError(t, err)
	dst, err := p.b.AllocDMA(n * slot)
	require.NoError(t, err)
	rng.Read(src.Bytes)
	for i, q := range qps {
		var sends []nicdrv.SendWR
		var recvs []nicdrv.RecvWR
		for j := 0; j < perConn; j++ {
			off := uint64((i*perConn + j) * slot)
			sends = append(sends, nicdrv.SendWR{WRID: uint64(j), Addr: src.IOVA + off,
				Length: uint32(rng.Intn(slot + 1)), Signaled: true})
			recvs = append(recvs, nicdrv.RecvWR{WRID: uint64(j), Addr: dst.IOVA + off, Length: slot})
		}
		require.NoError(t, q[1].PostRecv(recvs...))
		require.NoError(t, q[0].PostSend(sends...))
	}
	return n
}

// run steps the clock until a has put frames frames on the link in all, then for settle more
// cycles, and returns the counts of the direction a -> b.
func (p *linkPair) run(t *testing.T, frames uint64, settle uint64) LinkCounts {
	t.Helper()
	start := p.fab.Cycles()
	for {
		c, err := p.fab.FaultCounts(p.a, p.b)
		require.NoError(t, err)
		if c.Frames >= frames {
			break
		}
		require.Less(t, p.fab.Cycles()-start, uint64(2_000_000), "a sent %d of %d frames", c.Frames, frames)
		require.NoError(t, p.fab.Step(256))
	}
	require.NoError(t, p.fab.Step(settle))
	c, err := p.fab.FaultCounts(p.a, p.b)
	require.NoError(t, err)
	t.Logf("a -> b: %+v", c)
	return c
}

// frames takes what a transmitted and what b received.
func (p *linkPair) frames(t *testing.T) (sent, got []Frame) {
	t.Helper()
	sent, err := p.a.Transmitted()
	require.NoError(t, err)
	got, err = p.b.Received()
	require.NoError(t, err)
	return sent, got
}

// counters reads b's port counters.
func (p *linkPair) counters(t *testing.T) nicdrv.Counters {
	t.Helper()
	c, err := p.db.Counters()
	require.NoError(t, err)
	return c
}

// settleCycles lets the last frame cross: latency, a whole frame stored then replayed, slack.
// Duplicates add beats the receive port takes one per cycle behind the sender's; copies adds
// time for that many frames.
func (p *linkPair) settleCycles(copies int) uint64 {
	return uint64(p.latency) + uint64(2+copies)*(4200/8) + 200
}

// order maps each received frame to the index of the sent frame with the same bytes.
func order(t *testing.T, sent, got []Frame) []int {
	t.Helper()
	at := map[string]int{}
	for i, f := range sent {
		_, dup := at[string(f.Bytes)]
		require.False(t, dup, "sent frame %d is not unique", i)
		at[string(f.Bytes)] = i
	}
	var seq []int
	for j, f := range got {
		i, ok := at[string(f.Bytes)]
		require.True(t, ok, "received frame %d was never sent", j)
		seq = append(seq, i)
	}
	return seq
}

// TestLinkWithoutFaultsIsCutThrough: a direction whose probabilities are all 0 (set, or set and
// cleared again) carries the same frames in the same cycles as a link whose faults were never
// touched: each beat reaches the peer latency+1 cycles after it was sent.
func TestLinkWithoutFaultsIsCutThrough(t *testing.T) {
	seed := int64(0x11AB)
	t.Logf("seed %d", seed)
	type result struct {
		sent, got []Frame
		counts    LinkCounts
	}
	runs := map[string]func(*testing.T, *linkPair){
		"untouched": func(*testing.T, *linkPair) {},
		"zero": func(t *testing.T, p *linkPair) {
			require.NoError(t, p.fab.SetFaults(p.a, p.b, LinkFaults{Seed: 7, ReorderHold: 10}))
		},
		"cleared": func(t *testing.T, p *linkPair) {
			require.NoError(t, p.fab.SetFaults(p.a, p.b, LinkFaults{Drop: LinkFault{P: 1}, Seed: 7}))
			require.NoError(t, p.fab.SetFaults(p.a, p.b, LinkFaults{}))
		},
		"other direction faulty": func(t *testing.T, p *linkPair) {
			require.NoError(t, p.fab.SetFaults(p.b, p.a, LinkFaults{Duplicate: LinkFault{P: 0.5}, Seed: 7}))
		},
	}
	results := map[string]result{}
	for _, name := range []string{"untouched", "zero", "cleared", "other direction faulty"} {
		t.Run(name, func(t *testing.T) {
			p := newLinkPair(t, 13)
			runs[name](t, p)
			qps := p.connect(t, 2, 64)
			n := p.post(t, rand.New(rand.NewSource(seed)), qps, 30)
			c := p.run(t, uint64(n), p.settleCycles(0))
			sent, got := p.frames(t)
			require.Len(t, sent, n)
			require.Len(t, got, n)
			for i := range sent {
				assert.Equal(t, sent[i].Bytes, got[i].Bytes, "frame %d", i)
				assert.Equal(t, sent[i].First+1+13, got[i].First, "frame %d: first beat latency+1 cycles later", i)
				assert.Equal(t, sent[i].Last+1+13, got[i].Last, "frame %d: last beat latency+1 cycles later", i)
			}
			assert.Equal(t, LinkCounts{Frames: uint64(n), Delivered: uint64(n)}, c)
			rc := p.counters(t)
			assert.Equal(t, uint32(n), rc.RxFrames)
			assert.Zero(t, rc.RxDrops, "drops: %v", rc.Drops)
			results[name] = result{sent, got, c}
		})
	}
	want := results["untouched"]
	for name, r := range results {
		assert.Equal(t, want, r, "%s: the same frames in the same cycles as a link never given faults", name)
	}
}

// TestLinkDrop: dropped frames never reach the receiver, which sees the rest in order; with a
// burst, drops come in runs of whole bursts. One message per connection and no retransmit
// timer, so the transport resends nothing and every frame on the link is a different one.
func TestLinkDrop(t *testing.T) {
	for _, c := range []struct {
		name  string
		fault LinkFault
	}{
		{"single", LinkFault{P: 0.1}},
		{"burst 4", LinkFault{P: 0.06, Burst: 4}},
	} {
		t.Run(c.name, func(t *testing.T) {
			seed := uint64(0xD209)
			t.Logf("seed %d", seed)
			p := newLinkPair(t, 20)
			require.NoError(t, p.fab.SetFaults(p.a, p.b, LinkFaults{Drop: c.fault, Seed: seed}))
			qps := p.connect(t, 200, 2)
			n := p.post(t, rand.New(rand.NewSource(int64(seed))), qps, 1)
			counts := p.run(t, uint64(n), p.settleCycles(0))
			assert.Equal(t, uint64(n), counts.Frames)
			assert.NotZero(t, counts.Dropped)
			assert.Equal(t, counts.Frames-counts.Dropped, counts.Delivered)
			assert.Equal(t, LinkCounts{Frames: counts.Frames, Dropped: counts.Dropped, Delivered: counts.Delivered}, counts,
				"no other fault")

			sent, got := p.frames(t)
			require.Len(t, sent, n)
			require.Len(t, got, int(counts.Delivered))
			seq := order(t, sent, got)
			kept := map[int]bool{}
			for j, i := range seq {
				if j > 0 {
					require.Greater(t, i, seq[j-1], "received in the order sent")
				}
				kept[i] = true
			}
			burst := max(c.fault.Burst, 1)
			var runs []int
			for i := 0; i < n; {
				if kept[i] {
					i++
					continue
				}
				r := 0
				for ; i < n && !kept[i]; i++ {
					r++
				}
				if i < n { // a run cut short by the end of the traffic may be short
					assert.Zero(t, r%burst, "a run of %d drops, bursts of %d", r, burst)
				}
				runs = append(runs, r)
			}
			t.Logf("runs of drops: %v", runs)
			assert.Equal(t, uint32(counts.Delivered), p.counters(t).RxFrames, "b's receive checks saw what was delivered")
		})
	}
}

// TestLinkCorrupt: every corrupted frame is dropped by the receiver for its ICRC, and for
// nothing else; the flipped bits lie in one 4-byte window the ICRC alone guards. Each connection
// carries one message, so a loss leaves no PSN gap behind it and the receiver drops nothing else.
func TestLinkCorrupt(t *testing.T) {
	seed := uint64(0xC0DE)
	t.Logf("seed %d", seed)
	p := newLinkPair(t, 5)
	require.NoError(t, p.fab.SetFaults(p.a, p.b, LinkFaults{Corrupt: LinkFault{P: 0.2, Burst: 2}, Seed: seed}))
	qps := p.connect(t, 160, 2)
	n := p.post(t, rand.New(rand.NewSource(int64(seed))), qps, 1)
	counts := p.run(t, uint64(n), p.settleCycles(0))
	assert.NotZero(t, counts.Corrupted)
	assert.Equal(t, LinkCounts{Frames: uint64(n), Corrupted: counts.Corrupted, Delivered: uint64(n)}, counts,
		"every frame the NIC sends has bytes to corrupt")

	sent, got := p.frames(t)
	require.Len(t, sent, n)
	require.Len(t, got, n)
	changed := 0
	for i := range sent {
		s, g := sent[i].Bytes, got[i].Bytes
		require.Len(t, g, len(s), "frame %d: the length never changes", i)
		if bytes.Equal(s, g) {
			continue
		}
		changed++
		lo, hi, flips := len(s), -1, 0
		for k := range s {
			if d := s[k] ^ g[k]; d != 0 {
				lo, hi = min(lo, k), max(hi, k)
				flips += bits.OnesCount8(d)
			}
		}
		end := 14 + int(binary.BigEndian.Uint16(s[16:18]))
		assert.GreaterOrEqual(t, lo, corruptFrom, "frame %d: headers before the BTH's DestQP untouched", i)
		assert.Less(t, hi, end, "frame %d: inside the datagram", i)
		assert.Less(t, hi-lo, 4, "frame %d: one 4-byte window", i)
		assert.True(t, flips >= 1 && flips <= 3, "frame %d: %d bits flipped", i, flips)
	}
	assert.Equal(t, int(counts.Corrupted), changed)

	rc := p.counters(t)
	assert.Equal(t, map[regs.RxDrop]uint32{regs.RxDropICRC: uint32(counts.Corrupted)}, rc.Drops,
		"every corrupted frame dropped for its ICRC, nothing else dropped")
	assert.Equal(t, uint32(counts.Frames-counts.Corrupted), rc.RxFrames)
}

// TestLinkDuplicate: a duplicated frame arrives twice, back to back; the receiver drops the
// copy, so every message still completes once.
func TestLinkDuplicate(t *testing.T) {
	seed := uint64(0xD0B1)
	t.Logf("seed %d", seed)
	p := newLinkPair(t, 8)
	require.NoError(t, p.fab.SetFaults(p.a, p.b, LinkFaults{Duplicate: LinkFault{P: 0.15, Burst: 2}, Seed: seed}))
	qps := p.connect(t, 1, 256)
	n := p.post(t, rand.New(rand.NewSource(int64(seed))), qps, 150)
	counts := p.run(t, uint64(n), p.settleCycles(n))
	assert.NotZero(t, counts.Duplicated)
	assert.Equal(t, LinkCounts{Frames: uint64(n), Duplicated: counts.Duplicated, Delivered: uint64(n) + counts.Duplicated},
		counts)

	sent, got := p.frames(t)
	seq := order(t, sent, got)
	next, twice := 0, 0
	for j := 0; j < len(seq); j++ {
		require.Equal(t, next, seq[j], "received frame %d", j)
		if j+1 < len(seq) && seq[j+1] == next {
			twice++
			j++
			assert.Equal(t, got[j-1].Last+1, got[j].First, "the copy follows at once")
		}
		next++
	}
	assert.Equal(t, n, next, "every frame arrived")
	assert.Equal(t, int(counts.Duplicated), twice)

	rc := p.counters(t)
	assert.Equal(t, uint32(counts.Delivered), rc.RxFrames)
	assert.Equal(t, uint32(counts.Duplicated), rc.RxDrops, "the copies, and nothing else, dropped: %v", rc.Drops)
	completions := 0
	for start := p.fab.Cycles(); completions < n && p.fab.Cycles()-start < 200_000; {
		cs, err := qps[0][1].Poll(n)
		require.NoError(t, err)
		for _, c := range cs {
			assert.Equal(t, regs.CQEStatusOk, c.Status)
		}
		completions += len(cs)
		require.NoError(t, p.fab.Step(64))
	}
	assert.Equal(t, n, completions, "every message received once")
}

// TestLinkReorder: a reordered frame arrives right behind the next one and nothing is lost. Each
// frame is the one message of its own connection, so the transport never resends (which would
// make frames repeat) and the receiver finds nothing out of order.
func TestLinkReorder(t *testing.T) {
	seed := uint64(0x5EED)
	t.Logf("seed %d", seed)
	p := newLinkPair(t, 3)
	require.NoError(t, p.fab.SetFaults(p.a, p.b, LinkFaults{Reorder: LinkFault{P: 0.1}, Seed: seed}))
	qps := p.connect(t, 150, 2)
	n := p.post(t, rand.New(rand.NewSource(int64(seed))), qps, 1)
	counts := p.run(t, uint64(n), p.settleCycles(0)+4096)
	assert.NotZero(t, counts.Reordered)
	assert.Equal(t, LinkCounts{Frames: uint64(n), Reordered: counts.Reordered, Delivered: uint64(n)}, counts)

	sent, got := p.frames(t)
	seq := order(t, sent, got)
	require.Len(t, seq, n, "nothing lost")
	swaps := 0
	for j := 0; j < n; j++ {
		if seq[j] == j {
			continue
		}
		require.True(t, j+1 < n && seq[j] == j+1 && seq[j+1] == j, "received frame %d is sent frame %d: %v", j, seq[j], seq)
		swaps++
		j++
	}
	held := swaps
	if got[n-1].First >= sent[n-1].Last+4096 {
		held++ // the last frame was held, had nothing to go behind, and waited out the hold
	}
	assert.Equal(t, int(counts.Reordered), held)
	rc := p.counters(t)
	assert.Equal(t, uint32(n), rc.RxFrames)
	assert.Zero(t, rc.RxDrops, "frames of different connections swapped: nothing out of order for any: %v", rc.Drops)
}

// TestLinkReorderHoldEnds: with every frame reordered, pairs swap, and the odd frame out, which
// nothing follows, is delivered once the hold runs out rather than never.
func TestLinkReorderHoldEnds(t *testing.T) {
	const hold = 3000
	p := newLinkPair(t, 4)
	require.NoError(t, p.fab.SetFaults(p.a, p.b, LinkFaults{Reorder: LinkFault{P: 1}, ReorderHold: hold}))
	qps := p.connect(t, 5, 2)
	n := p.post(t, rand.New(rand.NewSource(3)), qps, 1)
	counts := p.run(t, uint64(n), p.settleCycles(0))
	assert.Equal(t, LinkCounts{Frames: 5, Reordered: 3, Delivered: 4}, counts, "the last frame is still held")
	require.NoError(t, p.fab.Step(hold))
	counts, err := p.fab.FaultCounts(p.a, p.b)
	require.NoError(t, err)
	assert.Equal(t, LinkCounts{Frames: 5, Reordered: 3, Delivered: 5}, counts)

	sent, got := p.frames(t)
	assert.Equal(t, []int{1, 0, 3, 2, 4}, order(t, sent, got))
	require.Len(t, got, 5)
	assert.GreaterOrEqual(t, got[4].First, sent[4].Last+hold, "held for the whole bound")
	assert.LessOrEqual(t, got[4].First, sent[4].Last+hold+2)
}

// TestLinkFaultsBySeed: the same seed gives the same faults, frame for frame and cycle for
// cycle; another seed gives others.
func TestLinkFaultsBySeed(t *testing.T) {
	mix := func(seed uint64) LinkFaults {
		return LinkFaults{Drop: LinkFault{P: 0.05}, Corrupt: LinkFault{P: 0.05, Burst: 2},
			Duplicate: LinkFault{P: 0.05}, Reorder: LinkFault{P: 0.05}, Seed: seed, ReorderHold: 1000}
	}
	type result struct {
		counts LinkCounts
		got    []Frame
	}
	runWith := func(t *testing.T, seed uint64) result {
		t.Logf("seed %d", seed)
		p := newLinkPair(t, 6)
		require.NoError(t, p.fab.SetFaults(p.a, p.b, mix(seed)))
		qps := p.connect(t, 120, 2)
		n := p.post(t, rand.New(rand.NewSource(42)), qps, 1)
		c := p.run(t, uint64(n), p.settleCycles(40)+1000)
		_, got := p.frames(t)
		return result{c, got}
	}
	first := runWith(t, 1234)
	again := runWith(t, 1234)
	other := runWith(t, 4321)
	assert.Equal(t, first, again, "same seed, same run")
	assert.NotEqual(t, first.counts, other.counts, "another seed, other faults")
	assert.NotEqual(t, first.got, other.got)
	for _, r := range []result{first, other} {
		c := r.counts
		assert.Equal(t, c.Frames-c.Dropped+c.Duplicated, c.Delivered, "%+v", c)
	}
}

// TestLinkKillAndHeal: faults may change mid-run: Drop.P = 1 cuts the link, 0 heals it, and the
// healed link is cut-through again.
func TestLinkKillAndHeal(t *testing.T) {
	p := newLinkPair(t, 9)
	qps := p.connect(t, 3, 16)
	rng := rand.New(rand.NewSource(9))
	n := p.post(t, rng, qps[:1], 10)
	p.run(t, uint64(n), p.settleCycles(0))

	require.NoError(t, p.fab.SetFaults(p.a, p.b, LinkFaults{Drop: LinkFault{P: 1}}))
	n += p.post(t, rng, qps[1:2], 10)
	c := p.run(t, uint64(n), p.settleCycles(0))
	assert.Equal(t, LinkCounts{Frames: 20, Dropped: 10, Delivered: 10}, c)

	require.NoError(t, p.fab.SetFaults(p.a, p.b, LinkFaults{}))
	n += p.post(t, rng, qps[2:], 10)
	c = p.run(t, uint64(n), p.settleCycles(0))
	assert.Equal(t, LinkCounts{Frames: 30, Dropped: 10, Delivered: 20}, c)

	sent, got := p.frames(t)
	require.Len(t, sent, 30)
	require.Len(t, got, 20)
	assert.Equal(t, append(append([]int{}, seqN(0, 10)...), seqN(20, 30)...), order(t, sent, got))
	for j := 10; j < 20; j++ {
		assert.Equal(t, sent[j+10].First+1+9, got[j].First, "healed: cut-through again")
	}
	assert.Equal(t, uint32(20), p.counters(t).RxFrames)
}

func seqN(from, to int) []int {
	var s []int
	for i := from; i < to; i++ {
		s = append(s, i)
	}
	return s
}

// TestSetFaultsRefuses: out-of-range fields are refused with a FaultConfigError naming the
// field, and directions that do not exist with ErrNotLinked.
func TestSetFaultsRefuses(t *testing.T) {
	fab, err := NewFabric("")
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, fab.Close()) })
	var nics [3]*NIC
	for i := range nics {
		nics[i], err = fab.Open(Config{HostMemory: 1 << 20})
		require.NoError(t, err)
	}
	a, b, c := nics[0], nics[1], nics[2]
	require.NoError(t, fab.Link(a, b, 0))

	for _, tc := range []struct {
		field string
		f     LinkFaults
	}{
		{"Drop.P", LinkFaults{Drop: LinkFault{P: -0.1}}},
		{"Corrupt.P", LinkFaults{Corrupt: LinkFault{P: 1.5}}},
		{"Duplicate.P", LinkFaults{Duplicate: LinkFault{P: math.NaN()}}},
		{"Reorder.P", LinkFaults{Reorder: LinkFault{P: math.Inf(1)}}},
		{"Drop.Burst", LinkFaults{Drop: LinkFault{P: 0.5, Burst: -1}}},
		{"Reorder.Burst", LinkFaults{Reorder: LinkFault{Burst: math.MaxUint32 + 1}}},
	} {
		t.Run(tc.field, func(t *testing.T) {
			err := fab.SetFaults(a, b, tc.f)
			var fe *FaultConfigError
			require.ErrorAs(t, err, &fe)
			assert.Equal(t, tc.field, fe.Field)
			assert.Contains(t, err.Error(), tc.field)
		})
	}
	for _, ok := range []LinkFaults{{}, {Drop: LinkFault{P: 1, Burst: math.MaxUint32}, Reorder: LinkFault{P: 0}}} {
		assert.NoError(t, fab.SetFaults(a, b, ok))
	}

	other, err := NewFabric("")
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, other.Close()) })
	d, err := other.Open(Config{HostMemory: 1 << 20})
	require.NoError(t, err)
	for name, dir := range map[string][2]*NIC{
		"unlinked NIC": {a, c}, "reverse of unlinked": {c, a}, "same NIC": {a, a},
		"another fabric's NIC": {a, d}, "nil": {nil, b},
	} {
		assert.ErrorIs(t, fab.SetFaults(dir[0], dir[1], LinkFaults{}), ErrNotLinked, name)
		_, err := fab.FaultCounts(dir[0], dir[1])
		assert.ErrorIs(t, err, ErrNotLinked, name)
	}
	_, err = fab.FaultCounts(b, a)
	assert.NoError(t, err, "each direction of a link exists")

	require.NoError(t, c.Close())
	assert.ErrorIs(t, fab.SetFaults(a, c, LinkFaults{}), driver.ErrClosed)
}

// TestLinkCorruptStaysInWindow holds the harness's corruption to its contract on frames of every
// length: 1 to 3 distinct bits inside one window of min(4, eligible) bytes, from byte 47 to the
// end of the IPv4 datagram (MAC padding after it spared), nothing else touched, and nothing at
// all when no byte is eligible.
func TestLinkCorruptStaysInWindow(t *testing.T) {
	path, err := FindModel("")
	require.NoError(t, err)
	lib, err := loadLibrary(path)
	require.NoError(t, err)
	seed := int64(0xB17F)
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewSource(seed))
	var flips [4]int
	ends := map[bool]int{}
	for length := 0; length <= 4200; length++ {
		if length > 200 && length%97 != 0 {
			continue
		}
		for trial := 0; trial < 40; trial++ {
			frame := make([]byte, length)
			rng.Read(frame)
			end := length
			if length >= 18 && trial%4 != 3 { // an IPv4 frame; else whatever the bytes say
				frame[12], frame[13] = 0x08, 0x00
				end = length - rng.Intn(3) // sometimes with MAC padding after the datagram
				binary.BigEndian.PutUint16(frame[16:], uint16(end-14))
			} else if length >= 18 && frame[12] == 0x08 && frame[13] == 0x00 {
				if e := 14 + int(binary.BigEndian.Uint16(frame[16:])); e < end {
					end = e
				}
			}
			before := append([]byte(nil), frame...)
			off, width, n := lib.corrupt(frame, rng.Uint64())
			if end <= corruptFrom {
				require.Zero(t, n, "length %d, datagram end %d: nothing eligible", length, end)
				require.True(t, bytes.Equal(before, frame), "length %d: untouched", length)
				continue
			}
			require.Equal(t, min(4, end-corruptFrom), width, "length %d end %d", length, end)
			require.GreaterOrEqual(t, off, corruptFrom)
			require.LessOrEqual(t, off+width, end)
			require.True(t, n >= 1 && n <= 3, "%d bits", n)
			got := 0
			for k := range frame {
				d := frame[k] ^ before[k]
				if k < off || k >= off+width {
					require.Zero(t, d, "length %d: byte %d outside the window [%d, %d) touched", length, k, off, off+width)
				}
				got += bits.OnesCount8(d)
			}
			require.Equal(t, n, got, "distinct bits flipped")
			flips[n]++
			ends[off+width == end]++
		}
	}
	t.Logf("bits flipped 1/2/3: %v; windows at the datagram's end: %d of %d", flips[1:], ends[true], ends[true]+ends[false])
	for k := 1; k <= 3; k++ {
		assert.NotZero(t, flips[k], "%d-bit corruptions occur", k)
	}
	assert.NotZero(t, ends[true], "the ICRC's own bytes are reached")
}

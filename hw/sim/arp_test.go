package sim

import (
	"math/rand"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sanoffload/san/hw/sim/dut"
	"github.com/sanoffload/san/hw/wire"
)

// The ARP block's station and its reply FIFO depth (san_arp's default).
var arpStation = wire.Station{MAC: [6]byte{0x02, 0x5A, 0x4E, 0xA0, 0x00, 0x07}, IP: [4]byte{192, 168, 9, 7}}

const arpReplyDepth = 16

// arpIn is an ARP frame the receiver hands to the block.
type arpIn struct {
	reply bool
	sha   [6]byte
	spa   [4]byte
}

// arpBench drives san_arp: received ARP frames and host requests offered at random, the
// transmitter stalling at random, and the host popping the reply FIFO; everything that comes out
// is collected.
type arpBench struct {
	d   *dut.DUT
	rng *rand.Rand
	w   int // bytes per beat

	txStall int // percent of cycles with m_axis_tx_tready low

	rx   []arpIn   // to offer on s_arp_*, in order
	reqs [][4]byte // to offer on s_req_*, in order
	out  [][]byte  // frames sent
	cur  []byte    // frame being sent
	rep  []arpIn   // replies the FIFO holds, by the reference
	lost int       // replies the reference expects lost
	msix []uint64  // vectors raised
	stat [4]int    // answered, req_sent, rep_received, rep_lost pulses
	jobs []arpIn   // answers taken, in order
	hreq [][4]byte // host requests taken, in order
}

func newARPBench(t *testing.T, seed int64) *arpBench {
	b := &arpBench{d: dut.New(t, "san_arp"), rng: rand.New(rand.NewSource(seed))}
	for _, p := range b.d.Ports() {
		if p.Name == "m_axis_tx_tdata" {
			b.w = p.Width / 8
		}
	}
	b.d.Set("cfg_mac", mac48(arpStation.MAC))
	b.d.Set("cfg_ip", ip32(arpStation.IP))
	b.d.Set("cfg_vector", 9)
	b.d.Set("m_msix_ready", 1)
	b.d.Set("rst", 1)
	b.d.Tick()
	b.d.Set("rst", 0)
	return b
}

// step runs one cycle; pop and arm are the host's REPLY_POP write in this cycle.
func (b *arpBench) step(t *testing.T, pop, arm bool) {
	d := b.d
	if len(b.rx) > 0 {
		x := b.rx[0]
		d.Set("s_arp_reply", b2u(x.reply))
		d.Set("s_arp_sha", mac48(x.sha))
		d.Set("s_arp_spa", ip32(x.spa))
	}
	d.Set("s_arp_valid", b2u(len(b.rx) > 0))
	if len(b.reqs) > 0 {
		d.Set("s_req_ip", ip32(b.reqs[0]))
	}
	d.Set("s_req_valid", b2u(len(b.reqs) > 0))
	tready := b.rng.Intn(100) >= b.txStall
	d.Set("m_axis_tx_tready", b2u(tready))
	d.Set("s_rep_pop", b2u(pop))
	d.Set("s_rep_arm", b2u(arm))
	d.Eval()

	// The FIFO's head as the host would read it before its pop.
	require.Equal(t, b2u(len(b.rep) > 0), d.Get("m_rep_valid"), "head valid")
	require.EqualValues(t, len(b.rep), d.Get("m_rep_count"), "count")
	if len(b.rep) > 0 {
		require.Equal(t, ip32(b.rep[0].spa), d.Get("m_rep_ip"))
		require.Equal(t, mac48(b.rep[0].sha), d.Get("m_rep_mac"))
	}
	full := len(b.rep) == arpReplyDepth // a reply finding the FIFO full is lost, whatever pops
	if pop && len(b.rep) > 0 {
		b.rep = b.rep[1:]
	}
	if d.Get("m_msix_valid") == 1 {
		b.msix = append(b.msix, d.Get("m_msix_vector"))
	}
	for i, s := range []string{"stat_answered", "stat_req_sent", "stat_rep_received", "stat_rep_lost"} {
		b.stat[i] += int(d.Get(s))
	}
	if len(b.rx) > 0 && d.Get("s_arp_ready") == 1 {
		x := b.rx[0]
		b.rx = b.rx[1:]
		if x.reply {
			if !full {
				b.rep = append(b.rep, x)
			} else {
				b.lost++
			}
		} else {
			b.jobs = append(b.jobs, x)
		}
	}
	if len(b.reqs) > 0 && d.Get("s_req_ready") == 1 {
		b.hreq = append(b.hreq, b.reqs[0])
		b.reqs = b.reqs[1:]
	}
	if tready && d.Get("m_axis_tx_tvalid") == 1 {
		keep := d.Get("m_axis_tx_tkeep")
		data := d.GetBytes("m_axis_tx_tdata")
		n := 0
		for n < b.w && keep&(1<<n) != 0 {
			n++
		}
		require.Equal(t, uint64(1)<<n-1, keep, "tkeep contiguous from lane 0")
		b.cur = append(b.cur, data[:n]...)
		if d.Get("m_axis_tx_tlast") == 1 {
			b.out = append(b.out, b.cur)
			b.cur = nil
		} else {
			require.Equal(t, b.w, n, "full beats but the last")
		}
	}
	d.Tick()
}

// answer is the reply the NIC must send to request x.
func arpAnswer(x arpIn) []byte {
	return (&wire.ARP{DstMAC: x.sha, SrcMAC: arpStation.MAC, Op: wire.ARPOpReply, SenderMAC: arpStation.MAC,
		SenderIP: arpStation.IP, TargetMAC: x.sha, TargetIP: x.spa}).Marshal()
}

// request is the request the NIC must send for ip.
func arpRequest(ip [4]byte) []byte {
	return (&wire.ARP{DstMAC: wire.BroadcastMAC, SrcMAC: arpStation.MAC, Op: wire.ARPOpRequest,
		SenderMAC: arpStation.MAC, SenderIP: arpStation.IP, TargetIP: ip}).Marshal()
}

func randARPIn(rng *rand.Rand, reply bool) arpIn {
	x := arpIn{reply: reply}
	rng.Read(x.sha[:])
	rng.Read(x.spa[:])
	x.sha[0] &^= 1
	return x
}

// TestARPBlockAnswersAndRequests: a stream of requests to answer and replies, and host
// requests, with the transmitter stalling: every answer and every host request goes out once, in
// its own order, byte-exact as wire.ARP lays it out (60 bytes, which the asker's receiver takes);
// while both kinds wait they alternate frame by frame; the replies reach the FIFO in order (the
// rest counted lost once 16 wait); the counters count each.
func TestARPBlockAnswersAndRequests(t *testing.T) {
	seed := int64(0x0A2B)
	t.Logf("seed %d", seed)
	for _, stall := range []int{0, 40, 90} {
		b := newARPBench(t, seed+int64(stall))
		b.txStall = stall
		replies, run := 0, 0
		for i := 0; i < 60; i++ {
			// At most three replies in a row, so that an answer always waits at a frame's end.
			reply := run < 3 && b.rng.Intn(3) == 0
			if reply {
				replies++
				run++
			} else {
				run = 0
			}
			b.rx = append(b.rx, randARPIn(b.rng, reply))
		}
		for i := 0; i < 25; i++ {
			var ip [4]byte
			b.rng.Read(ip[:])
			b.reqs = append(b.reqs, ip)
		}
		answers, nreq := len(b.rx)-replies, len(b.reqs)
		for c := 0; c < 40000 && (len(b.rx) > 0 || len(b.reqs) > 0 || b.d.Get("m_axis_tx_tvalid") == 1); c++ {
			b.step(t, false, false)
		}
		for i := 0; i < 4; i++ {
			b.step(t, false, false)
		}
		require.Empty(t, b.rx)
		require.Empty(t, b.reqs)
		require.Len(t, b.jobs, answers)
		require.Len(t, b.out, answers+nreq, "one frame per answer and per host request")
		ai, hi := 0, 0
		for i, f := range b.out {
			require.Len(t, f, wire.MinEthernetFrameLen)
			isAnswer := f[21] == wire.ARPOpReply
			if isAnswer {
				require.Equal(t, arpAnswer(b.jobs[ai]), f, "stall %d: frame %d: answer %d", stall, i, ai)
				asker := &wire.Station{MAC: b.jobs[ai].sha, IP: b.jobs[ai].spa}
				_, err := wire.ParseOptions{Local: asker}.ParseARP(f)
				require.NoError(t, err, "the asker takes the answer")
				ai++
			} else {
				require.Equal(t, arpRequest(b.hreq[hi]), f, "stall %d: frame %d: request %d", stall, i, hi)
				hi++
			}
			if i > 0 && isAnswer == (b.out[i-1][21] == wire.ARPOpReply) {
				other := nreq - hi
				if !isAnswer {
					other = answers - ai
				}
				require.Zero(t, other, "stall %d: frame %d: two of a kind in a row while the other kind waited", stall, i)
			}
		}
		assert.Equal(t, [4]int{answers, nreq, min(replies, arpReplyDepth), max(0, replies-arpReplyDepth)}, b.stat,
			"stall %d: answered, requests sent, replies queued, replies lost", stall)
		assert.Equal(t, max(0, replies-arpReplyDepth), b.lost)
		require.Len(t, b.rep, min(replies, arpReplyDepth), "the FIFO holds the first replies")
	}
}

// TestARPBlockReplyFIFOAndInterrupt: replies and pops at random against a queue, with arms: the
// head and count always match, a full FIFO loses replies (counted), and an armed FIFO raises its
// vector exactly once per arm, in the cycle after the first cycle that finds it armed and
// holding a reply (so an arm that finds replies waiting, after the pop of the same write, fires
// two cycles after its write), never while empty.
func TestARPBlockReplyFIFOAndInterrupt(t *testing.T) {
	seed := int64(0x1F0)
	t.Logf("seed %d", seed)
	b := newARPBench(t, seed)
	armed, fire := false, false // the reference: armed, and an MSI-X request showing this cycle
	arms, fires := 0, 0
	for c := 0; c < 20000; c++ {
		if len(b.rx) == 0 && b.rng.Intn(100) < []int{30, 90}[c/5000%2] {
			b.rx = append(b.rx, randARPIn(b.rng, true))
		}
		pop := b.rng.Intn(100) < 25
		arm := b.rng.Intn(100) < 3
		holds := len(b.rep) > 0 // the FIFO as this cycle shows it
		before := len(b.msix)
		b.step(t, pop, arm)
		require.Equal(t, b2u(fire), uint64(len(b.msix)-before), "cycle %d: MSI-X request", c)
		if fire {
			fires++
		}
		if arm {
			arms++
		}
		nextFire := false
		if armed && holds && !fire {
			nextFire, armed = true, arm
		} else {
			armed = armed || arm
		}
		fire = nextFire
	}
	t.Logf("%d arms, %d interrupts, %d lost replies", arms, fires, b.lost)
	assert.Positive(t, fires)
	assert.Positive(t, b.lost, "the FIFO filled")
	assert.Equal(t, b.lost, b.stat[3])
	for _, v := range b.msix {
		assert.Equal(t, uint64(9), v)
	}
}

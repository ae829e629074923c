package nic_test

import (
	"context"
	"encoding/binary"
	"errors"
	"math/rand"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sanoffload/san/driver/nic"
	"github.com/sanoffload/san/driver/regs"
	"github.com/sanoffload/san/hw/sim"
	"github.com/sanoffload/san/hw/wire"
)

// cmFrames returns the CM MADs (UD SEND_ONLY to QP1) among frames, parsed; ARP frames (the
// resolution before a Connect) are skipped.
func cmFrames(t *testing.T, frames []sim.Frame) []*wire.Frame {
	t.Helper()
	var out []*wire.Frame
	for _, fr := range frames {
		if binary.BigEndian.Uint16(fr.Bytes[12:]) == wire.EtherTypeARP {
			continue
		}
		f, err := wire.Parse(fr.Bytes)
		require.NoError(t, err)
		if f.BTH.OpCode == 0x64 && f.BTH.DestQP == 1 {
			out = append(out, f)
		}
	}
	return out
}

// reqCopy is a copy of the REQ a as another caller would send it: byte ipAt of its source
// address and byte commAt of its MAD (a byte of its LocalCommID, MAD bytes 24..27) XORed with x.
func reqCopy(a *wire.Frame, ipAt, commAt int, x byte) *wire.Frame {
	g := *a
	g.Payload = append([]byte(nil), a.Payload...)
	g.SrcIP[ipAt] ^= x
	g.Payload[commAt] ^= x
	return &g
}

// mutate makes a malformed copy of the CM MAD f in one of the ways the NIC must refuse: a bad
// base version, class, class version or method, an attribute outside REQ..DREP, a length other
// than 256, a wrong Q_Key, or (for messages after REQ) a communication ID that names no
// connection.
func mutate(rng *rand.Rand, f *wire.Frame) (*wire.Frame, string) {
	g := *f
	g.Payload = append([]byte(nil), f.Payload...)
	deth := *f.DETH
	g.DETH = &deth
	mad := g.Payload
	attr := binary.BigEndian.Uint16(mad[16:])
	kinds := []string{"base", "class", "classversion", "method", "attribute", "length", "qkey"}
	if attr != 0x10 {
		kinds = append(kinds, "commid")
	}
	kind := kinds[rng.Intn(len(kinds))]
	other := func(good byte) byte {
		for {
			if v := byte(rng.Intn(256)); v != good {
				return v
			}
		}
	}
	switch kind {
	case "base":
		mad[0] = other(1)
	case "class":
		mad[1] = other(7)
	case "classversion":
		mad[2] = other(2)
	case "method":
		mad[3] = other(3)
	case "attribute":
		for {
			a := uint16(rng.Intn(0x10000))
			if a < 0x10 || a > 0x16 {
				binary.BigEndian.PutUint16(mad[16:], a)
				break
			}
		}
	case "length":
		n := 1 + rng.Intn(255)
		if rng.Intn(2) == 0 {
			g.Payload = mad[:256-n]
		} else {
			g.Payload = append(mad, make([]byte, n)...)
		}
	case "qkey":
		for g.DETH.QKey == 0x80010000 {
			g.DETH.QKey = rng.Uint32()
		}
	case "commid":
		// RemoteCommID (ours): a number beyond every connection, or a generation never used.
		id := binary.BigEndian.Uint32(mad[28:])
		binary.BigEndian.PutUint32(mad[28:], id^uint32(0x8000+rng.Intn(0x7FFF))<<16)
	}
	return &g, kind
}

// TestCMMalformedMADs: seeded random malformed MADs, made from the real REQ, REP and RTU of a
// handshake, are dropped and counted (MADS_DROPPED) without an event, a frame drop at the
// parser, or any effect on the state machine: the established connection carries data, and a
// new one is set up, after them.
func TestCMMalformedMADs(t *testing.T) {
	const seed = 8088
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewSource(seed))
	p := newCMPair(t, pairConfig{}, simCM)
	require.NoError(t, p.cms[1].Listen(5006, 4))
	for _, h := range p.hs {
		require.NoError(t, h.dev.Capture(true))
	}
	qa, qb, _, _ := p.dial(t, 5006, []byte("x"), []byte("y"))
	var mads [2][]*wire.Frame // sent by host 0 (REQ, RTU), by host 1 (REP)
	for i, h := range p.hs {
		frames, err := h.dev.Transmitted()
		require.NoError(t, err)
		mads[i] = cmFrames(t, frames)
		require.NoError(t, h.dev.Capture(false))
	}
	require.Len(t, mads[0], 2)
	require.Len(t, mads[1], 1)

	before := [2]nic.CMCounters{p.counters(t, 0), p.counters(t, 1)}
	const n = 300
	injected := [2]int{}
	kinds := map[string]int{}
	for i := 0; i < n; i++ {
		from := rng.Intn(2) // whose MAD to mutate; it goes to the other host
		f, kind := mutate(rng, mads[from][rng.Intn(len(mads[from]))])
		kinds[kind]++
		require.NoError(t, p.hs[1-from].dev.Inject(f.Marshal(), false))
		injected[1-from]++
		require.NoError(t, p.fab.Step(uint64(50+rng.Intn(400))))
	}
	t.Logf("mutations: %v", kinds)
	require.NoError(t, p.fab.Step(5000))
	for i := range p.cms {
		k := p.counters(t, i)
		require.EqualValues(t, injected[i], k.MADsDropped-before[i].MADsDropped, "host %d: every malformed MAD dropped and counted", i)
		require.Equal(t, before[i].MADsRx, k.MADsRx, "host %d: none acted on", i)
		require.Equal(t, before[i].MADsTx, k.MADsTx, "host %d: none answered", i)
		c, err := p.hs[i].nic.Counters()
		require.NoError(t, err)
		require.Zero(t, c.RxDrops, "host %d: well-formed frames, the parser passes them: %v", i, c.Drops)
		p.noEvent(t, i)
	}
	exchange(t, p, qa, qb, 1000)
	exchange(t, p, qb, qa, 1000)
	qa2, qb2, _, _ := p.dial(t, 5006, nil, nil)
	exchange(t, p, qa2, qb2, 10)
}

// TestCMRepeatedREQsWithCollidingKeys: the NIC recognises a repeated REQ by its (comm ID, peer
// IP) key, through a hashed index and, for keys that could not have their bucket, a scan of all
// keys. Three requests whose keys hash alike (the caller's real REQ, and two copies from other
// addresses with the comm ID changed to match) are each a REQUEST once; their repeats make no
// new event; a deferred one's repeat is answered with its MRA again; and once the two copies are
// rejected and their TIMEWAIT is over, the same REQ is a new request.
func TestCMRepeatedREQsWithCollidingKeys(t *testing.T) {
	cfg := simCM
	cfg.TimeWait = 6
	p := newCMPair(t, pairConfig{}, cfg)
	require.NoError(t, p.cms[1].Listen(5010, 8))
	require.NoError(t, p.hs[0].dev.Capture(true))
	_, err := p.cms[0].Connect(context.Background(), newQP(t, p.hs[0]), p.connectParams(1, 5010, []byte("a")))
	require.NoError(t, err)
	reqA := p.event(t, 1, regs.CMEventRequest)
	frames, err := p.hs[0].dev.Transmitted()
	require.NoError(t, err)
	require.NoError(t, p.hs[0].dev.Capture(false))
	mads := cmFrames(t, frames)
	require.Len(t, mads, 1)
	a := mads[0]

	// The key hashes the comm ID's low half with the address folded to 16 bits: flipping the
	// same bit in the address's last byte and the comm ID's low byte keeps the hash.
	b, c := reqCopy(a, 3, 27, 4), reqCopy(a, 3, 27, 8)
	inject := func(f *wire.Frame) { t.Helper(); p.inject(t, 1, f) }
	counters := func() nic.CMCounters { t.Helper(); return p.counters(t, 1) }
	callerResends := func() uint32 { t.Helper(); return p.counters(t, 0).Resends } // A's REQ, unanswered
	inject(b)
	reqB := p.event(t, 1, regs.CMEventRequest)
	require.Equal(t, netip.AddrFrom4(b.SrcIP), reqB.PeerIP)
	inject(c)
	reqC := p.event(t, 1, regs.CMEventRequest)
	require.Equal(t, netip.AddrFrom4(c.SrcIP), reqC.PeerIP)
	require.Len(t, map[nic.ConnID]bool{reqA.Conn: true, reqB.Conn: true, reqC.Conn: true}, 3, "three connections")

	// Repeats, A's found in its bucket and B's and C's by the scan: recognised, nothing new, and
	// nothing to answer while the requests wait for the host.
	k0, r0 := counters(), callerResends()
	for _, f := range []*wire.Frame{a, b, c, c, b, a} {
		inject(f)
	}
	p.noEvent(t, 1)
	k1 := counters()
	require.Equal(t, k0.MADsRx+6+callerResends()-r0, k1.MADsRx, "each repeat recognised")
	require.Equal(t, k0.MADsDropped, k1.MADsDropped)
	require.Equal(t, k0.Resends, k1.Resends)

	// C deferred: its repeat is answered with the MRA again.
	require.NoError(t, p.cms[1].Defer(reqC.Conn, nil))
	require.NoError(t, p.fab.Step(3000))
	k2 := counters()
	inject(c)
	k3 := counters()
	require.Equal(t, k2.Resends+1, k3.Resends, "the MRA sent again")
	p.noEvent(t, 1)

	// The caller's own request proceeds.
	require.NoError(t, p.cms[1].Accept(reqA.Conn, newQP(t, p.hs[1]), nic.AcceptParams{UDPSource: 0xC200,
		StartPSN: 1, Transport: nic.DefaultTransport}))
	p.event(t, 0, regs.CMEventEstablished)
	p.event(t, 1, regs.CMEventEstablished)

	// B and C refused; after TIMEWAIT their keys are gone and B's REQ is a new request, while A's
	// repeat is still recognised.
	require.NoError(t, p.cms[1].Reject(reqB.Conn, regs.CMRejReasonConsumerDefined, nil))
	require.NoError(t, p.cms[1].Reject(reqC.Conn, regs.CMRejReasonConsumerDefined, nil))
	require.NoError(t, p.fab.Step((1<<cfg.TimeWait+2)*640+10_000))
	inject(a)
	p.noEvent(t, 1)
	inject(b)
	again := p.event(t, 1, regs.CMEventRequest)
	require.Equal(t, netip.AddrFrom4(b.SrcIP), again.PeerIP)
}

// TestCMPendingRequestsExpire_R18: a request whose caller vanished (its repeats, and the REJ
// that would withdraw it, never come) does not hold its backlog place and context for ever. A
// waiting request expires after 32 of the caller's response timeouts (the REQ carries that
// timeout), a deferred one after four of the longer of the MRA's service timeout and that
// timeout since the caller last repeated it; the host gets TIMED_OUT for each, commands on them
// are refused, and the listener's backlog has room again.
func TestCMPendingRequestsExpire_R18(t *testing.T) {
	cfg := simCM // response timeout code 4 in REQs, defer code 6 in MRAs; 640 cycles a tick
	p := newCMPair(t, pairConfig{}, cfg)
	const tick = 640
	require.NoError(t, p.cms[1].Listen(5012, 2))
	require.NoError(t, p.hs[0].dev.Capture(true))
	p.dial(t, 5012, nil, nil) // a real REQ to copy; this one is accepted and leaves the backlog
	frames, err := p.hs[0].dev.Transmitted()
	require.NoError(t, err)
	require.NoError(t, p.hs[0].dev.Capture(false))
	a := cmFrames(t, frames)[0]
	require.Equal(t, uint16(0x10), binary.BigEndian.Uint16(a.Payload[16:]), "a REQ")
	require.Equal(t, byte(cfg.ResponseTimeout), a.Payload[67]>>3, "the caller's response timeout in its REQ")
	// Other callers: their own addresses and comm IDs.
	x, y, z := reqCopy(a, 2, 26, 1), reqCopy(a, 2, 26, 2), reqCopy(a, 2, 26, 3)
	inject := func(f *wire.Frame) { t.Helper(); p.inject(t, 1, f) }
	tx := p.fab.Cycles()
	inject(x)
	reqX := p.event(t, 1, regs.CMEventRequest)
	inject(y)
	reqY := p.event(t, 1, regs.CMEventRequest)
	require.NoError(t, p.cms[1].Defer(reqY.Conn, nil))
	td := p.fab.Cycles()
	k0 := p.counters(t, 1)
	inject(z) // the backlog (2) is full
	k1 := p.counters(t, 1)
	require.Equal(t, k0.Refused+1, k1.Refused, "backlog full: refused")
	p.noEvent(t, 1)

	// Y's caller repeats before Y's deadline (4 x 2^6 ticks after the DEFER): MRA again, and Y
	// lives past that deadline.
	require.NoError(t, p.fab.Step(uint64(120*tick)))
	ty := p.fab.Cycles()
	inject(y)
	require.NoError(t, p.fab.Step(td+uint64(300*tick)-p.fab.Cycles()))
	p.noEvent(t, 1)

	// Then Y expires (4 x 2^6 ticks after the repeat), and X (32 x 2^4 ticks after its REQ).
	ev := p.event(t, 1, regs.CMEventTimedOut)
	require.Equal(t, reqY.Conn, ev.Conn)
	require.Equal(t, regs.CMRejReasonTimeout, ev.Reason)
	require.GreaterOrEqual(t, p.fab.Cycles(), ty+uint64(256*tick), "not before its deadline")
	ev = p.event(t, 1, regs.CMEventTimedOut)
	require.Equal(t, reqX.Conn, ev.Conn)
	require.GreaterOrEqual(t, p.fab.Cycles(), tx+uint64(512*tick), "not before its deadline")
	p.noEvent(t, 1)
	require.Equal(t, k1.Timeouts+2, p.counters(t, 1).Timeouts)

	// Both are gone: commands on them are refused, and the backlog has room.
	var ce *nic.CMError
	err = p.cms[1].Accept(reqX.Conn, newQP(t, p.hs[1]), nic.AcceptParams{Transport: nic.DefaultTransport})
	require.True(t, errors.As(err, &ce), "%v", err)
	err = p.cms[1].Reject(reqY.Conn, regs.CMRejReasonConsumerDefined, nil)
	require.True(t, errors.As(err, &ce), "%v", err)
	inject(z)
	reqZ := p.event(t, 1, regs.CMEventRequest)
	require.Equal(t, netip.AddrFrom4(z.SrcIP), reqZ.PeerIP)
}

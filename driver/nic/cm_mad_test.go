package nic_test

import (
	"encoding/binary"
	"math/rand"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sanoffload/san/driver/nic"
	"github.com/sanoffload/san/hw/sim"
	"github.com/sanoffload/san/hw/wire"
)

// cmFrames returns the CM MADs (UD SEND_ONLY to QP1) among frames, parsed.
func cmFrames(t *testing.T, frames []sim.Frame) []*wire.Frame {
	t.Helper()
	var out []*wire.Frame
	for _, fr := range frames {
		f, err := wire.Parse(fr.Bytes)
		require.NoError(t, err)
		if f.BTH.OpCode == 0x64 && f.BTH.DestQP == 1 {
			out = append(out, f)
		}
	}
	return out
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

	before := [2]nic.CMCounters{}
	for i := range p.cms {
		k, err := p.cms[i].Counters()
		require.NoError(t, err)
		before[i] = k
	}
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
		k, err := p.cms[i].Counters()
		require.NoError(t, err)
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

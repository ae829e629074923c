package nic_test

import (
	"context"
	"encoding/binary"
	"errors"
	"math/rand"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sanoffload/san/driver"
	"github.com/sanoffload/san/driver/nic"
	"github.com/sanoffload/san/driver/regs"
	"github.com/sanoffload/san/hw/sim"
	"github.com/sanoffload/san/hw/wire"
)

// arpOf decodes frame b if it is a well-formed ARP frame (to anyone), else nil.
func arpOf(b []byte) *wire.ARP {
	a, err := wire.DecodeARP(b)
	if err != nil {
		return nil
	}
	return a
}

// arps returns the ARP frames among frames.
func arps(frames []sim.Frame) []*wire.ARP {
	var out []*wire.ARP
	for _, f := range frames {
		if a := arpOf(f.Bytes); a != nil {
			out = append(out, a)
		}
	}
	return out
}

// cmHosts is hosts with their connection managers open, host 1 listening on port 7000, and
// resolvers opened with rc on every host.
func cmHosts(t *testing.T, hs []*host, rc nic.ResolverConfig) ([]*nic.CM, []*nic.Resolver) {
	t.Helper()
	cms := make([]*nic.CM, len(hs))
	res := make([]*nic.Resolver, len(hs))
	for i, h := range hs {
		cm, err := h.nic.OpenCM(simCM)
		require.NoError(t, err)
		t.Cleanup(func() { _ = cm.Close() })
		cms[i] = cm
		res[i], err = h.nic.OpenResolver(rc)
		require.NoError(t, err)
		require.NoError(t, h.dev.Capture(true))
	}
	require.NoError(t, cms[1].Listen(7000, 4))
	return cms, res
}

func connectTo(ip netip.Addr) nic.ConnectParams {
	return nic.ConnectParams{Dst: ip, Port: 7000, SrcPort: 41000, UDPSource: 0xC100, StartPSN: 0x1000,
		Transport: nic.DefaultTransport}
}

// establish accepts the request on host 1 and waits for both ESTABLISHED events.
func establish(t *testing.T, hs []*host, cms []*nic.CM) {
	t.Helper()
	// A device whose interrupt wait gives up early (driver.ErrTimeout) has nothing yet.
	wait := func(i int) nic.Event {
		for {
			ev, err := cms[i].Wait(context.Background())
			if !errors.Is(err, driver.ErrTimeout) {
				require.NoError(t, err)
				return ev
			}
		}
	}
	ev := wait(1)
	require.Equal(t, regs.CMEventRequest, ev.Type)
	require.NoError(t, cms[1].Accept(ev.Conn, newQP(t, hs[1]), nic.AcceptParams{StartPSN: 0x2000, Transport: nic.DefaultTransport}))
	for _, i := range []int{0, 1} {
		ev := wait(i)
		require.Equal(t, regs.CMEventEstablished, ev.Type, "host %d: %+v", i, ev)
	}
}

// TestConnectResolvesByARP: on a segment of three NICs, a Connect that names only host 1's IP
// sends one ARP request (broadcast: host 2 drops it as not for its address), takes host 1's
// answer from the NIC's reply FIFO, and establishes; a second Connect to the same address uses
// the neighbour cache and puts no ARP frame on the wire.
func TestConnectResolvesByARP(t *testing.T) {
	_, hs := newSegment(t, pairConfig{latency: 20}, 3)
	cms, res := cmHosts(t, hs, simResolver)
	_, err := cms[0].Connect(context.Background(), newQP(t, hs[0]), connectTo(hs[1].ip))
	require.NoError(t, err)
	establish(t, hs, cms)

	sent := map[int][]*wire.ARP{}
	for i, h := range hs {
		fs, err := h.dev.Transmitted()
		require.NoError(t, err)
		sent[i] = arps(fs)
	}
	require.Len(t, sent[0], 1, "host 0 asked once")
	req := sent[0][0]
	assert.Equal(t, &wire.ARP{DstMAC: wire.BroadcastMAC, SrcMAC: [6]byte(hs[0].mac), Op: wire.ARPOpRequest,
		SenderMAC: [6]byte(hs[0].mac), SenderIP: hs[0].ip.As4(), TargetIP: hs[1].ip.As4()}, req)
	require.Len(t, sent[1], 1, "host 1 answered once")
	assert.Equal(t, &wire.ARP{DstMAC: [6]byte(hs[0].mac), SrcMAC: [6]byte(hs[1].mac), Op: wire.ARPOpReply,
		SenderMAC: [6]byte(hs[1].mac), SenderIP: hs[1].ip.As4(), TargetMAC: [6]byte(hs[0].mac),
		TargetIP: hs[0].ip.As4()}, sent[1][0])
	assert.Empty(t, sent[2], "host 2 stayed quiet")
	k, err := hs[2].nic.Counters()
	require.NoError(t, err)
	assert.Equal(t, uint32(1), k.Drops[regs.RxDropARPTarget], "host 2: the request was not for it")
	for r := range k.Drops {
		assert.Contains(t, []regs.RxDrop{regs.RxDropARPTarget, regs.RxDropDstMAC}, r, "host 2 drops only others' frames")
	}
	a0, err := hs[0].nic.ARPCounters()
	require.NoError(t, err)
	assert.Equal(t, nic.ARPCounters{RequestsSent: 1, RepliesReceived: 1}, a0)
	a1, err := hs[1].nic.ARPCounters()
	require.NoError(t, err)
	assert.Equal(t, nic.ARPCounters{Answered: 1}, a1)
	assert.Equal(t, nic.ResolverCounters{Requests: 1, Replies: 1}, res[0].Counters())
	assert.Equal(t, []nic.Neighbour{{IP: hs[1].ip, MAC: hs[1].mac}}, res[0].Neighbours())

	// Again: from the cache.
	_, err = cms[0].Connect(context.Background(), newQP(t, hs[0]), connectTo(hs[1].ip))
	require.NoError(t, err)
	establish(t, hs, cms)
	fs, err := hs[0].dev.Transmitted()
	require.NoError(t, err)
	assert.Empty(t, arps(fs), "the cache answered")
}

// TestConnectUnresolved: a Connect to an address nobody has fails, after exactly the configured
// tries (one ARP request each, each counted by the others as not for them), with an
// *UnresolvedError that matches nic.ErrUnresolved; no REQ is sent. It holds whether the
// device's interrupt wait gives up soon with driver.ErrTimeout (IRQWaitCycles 64) or waits as
// long as its context allows (2^40 cycles).
func TestConnectUnresolved(t *testing.T) {
	for _, wait := range []uint64{64, 1 << 40} {
		_, hs := newSegment(t, pairConfig{irqWait: wait}, 3)
		rc := simResolver
		rc.Tries, rc.Timeout = 4, 30*time.Millisecond
		cms, _ := cmHosts(t, hs, rc)
		nobody := netip.AddrFrom4([4]byte{10, 0, 0, 77})
		start := time.Now()
		_, err := cms[0].Connect(context.Background(), newQP(t, hs[0]), connectTo(nobody))
		require.Error(t, err)
		assert.GreaterOrEqual(t, time.Since(start), 4*30*time.Millisecond, "wait %d: every try waited its timeout", wait)
		assert.ErrorIs(t, err, nic.ErrUnresolved)
		var ue *nic.UnresolvedError
		require.ErrorAs(t, err, &ue)
		assert.Equal(t, &nic.UnresolvedError{IP: nobody, Tries: 4}, ue)

		fs, err := hs[0].dev.Transmitted()
		require.NoError(t, err)
		as := arps(fs)
		require.Len(t, as, 4, "wait %d: one request per try", wait)
		for _, a := range as {
			assert.Equal(t, nobody.As4(), a.TargetIP)
		}
		assert.Len(t, fs, 4, "wait %d: nothing but the requests: no REQ", wait)
		for i := 1; i < 3; i++ {
			k, err := hs[i].nic.Counters()
			require.NoError(t, err)
			assert.Equal(t, map[regs.RxDrop]uint32{regs.RxDropARPTarget: 4}, k.Drops, "wait %d: host %d", wait, i)
		}
		cc, err := cms[0].Counters()
		require.NoError(t, err)
		assert.Zero(t, cc.MADsTx)

		// A context that ends first ends the resolution with its own error.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
		_, err = cms[0].Connect(ctx, newQP(t, hs[0]), connectTo(nobody))
		cancel()
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.NotErrorIs(t, err, nic.ErrUnresolved)
	}
}

// TestConnectResolvesWhenWaitsTimeOut: with a device whose interrupt wait gives up after 64
// cycles (driver.ErrTimeout), far sooner than an ARP reply comes back over a 400-cycle segment,
// the resolver keeps waiting and the Connect establishes on its first try.
func TestConnectResolvesWhenWaitsTimeOut(t *testing.T) {
	_, hs := newSegment(t, pairConfig{latency: 400, irqWait: 64}, 2)
	cms, res := cmHosts(t, hs, simResolver)
	_, err := cms[0].Connect(context.Background(), newQP(t, hs[0]), connectTo(hs[1].ip))
	require.NoError(t, err)
	establish(t, hs, cms)
	assert.Equal(t, uint64(1), res[0].Counters().Requests, "the first request's reply was waited for")
}

// TestConnectStaticNeighbour: a static entry is used without ARP: no ARP frame on the wire at
// all, and it takes precedence over what ARP learned.
func TestConnectStaticNeighbour(t *testing.T) {
	_, hs := newSegment(t, pairConfig{}, 3)
	rc := simResolver
	rc.Static = map[netip.Addr]net.HardwareAddr{hs[1].ip: hs[1].mac}
	cms, res := cmHosts(t, hs, rc)
	for _, h := range hs {
		require.NoError(t, h.dev.CaptureReceived(true))
	}
	_, err := cms[0].Connect(context.Background(), newQP(t, hs[0]), connectTo(hs[1].ip))
	require.NoError(t, err)
	establish(t, hs, cms)
	for i, h := range hs {
		tx, err := h.dev.Transmitted()
		require.NoError(t, err)
		rx, err := h.dev.Received()
		require.NoError(t, err)
		assert.Empty(t, arps(tx), "host %d sent no ARP", i)
		assert.Empty(t, arps(rx), "host %d received no ARP", i)
		a, err := h.nic.ARPCounters()
		require.NoError(t, err)
		assert.Zero(t, a, "host %d", i)
	}
	assert.Equal(t, nic.ResolverCounters{}, res[0].Counters())

	// Learned by ARP, then a static entry: the static one wins, without asking.
	mac, err := res[0].Resolve(context.Background(), hs[2].ip)
	require.NoError(t, err)
	assert.Equal(t, hs[2].mac, mac)
	other := net.HardwareAddr{0x02, 0xAA, 0, 0, 0, 3}
	require.NoError(t, res[0].SetStatic(hs[2].ip, other))
	mac, err = res[0].Resolve(context.Background(), hs[2].ip)
	require.NoError(t, err)
	assert.Equal(t, other, mac)
	assert.Equal(t, uint64(1), res[0].Counters().Requests)
	assert.ErrorIs(t, res[0].SetStatic(hs[2].ip, net.HardwareAddr{1, 0, 0, 0, 0, 1}), nic.ErrInvalid, "a group MAC")
	_, err = hs[0].nic.OpenResolver(simResolver)
	assert.ErrorIs(t, err, nic.ErrBusy, "one resolver per NIC")
}

// TestARPFramesDroppedAndCounted: seeded mutations of ARP requests and replies injected into a
// NIC: each is dropped under wire.Receive's reason (malformed, for another address, to another
// MAC, truncated), answered if it is a request for the NIC's address, or queued if a reply; the
// counters match the reference exactly and nothing else goes out.
func TestARPFramesDroppedAndCounted(t *testing.T) {
	seed := int64(0xA6F)
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewSource(seed))
	fab, hs := newPair(t, pairConfig{})
	h := hs[1]
	require.NoError(t, h.dev.Capture(true))
	local := wire.ParseOptions{Local: &wire.Station{MAC: [6]byte(h.mac), IP: h.ip.As4()}}
	want := map[regs.RxDrop]uint32{}
	answers, replies := 0, 0
	var answered []*wire.ARP
	for i := 0; i < 300; i++ {
		a := &wire.ARP{DstMAC: wire.BroadcastMAC, Op: wire.ARPOpRequest, TargetIP: h.ip.As4()}
		rng.Read(a.SenderMAC[:])
		rng.Read(a.SenderIP[:])
		a.SenderMAC[0] &^= 1
		a.SrcMAC = a.SenderMAC
		if rng.Intn(3) == 0 {
			a.Op, a.DstMAC = wire.ARPOpReply, [6]byte(h.mac)
		}
		b := a.Marshal()
		switch rng.Intn(10) {
		case 0:
			b = b[:rng.Intn(wire.ARPFrameLen)]
		case 1:
			b[14+rng.Intn(8)] ^= byte(1 + rng.Intn(255)) // types, lengths, opcode
		case 2:
			b[38+rng.Intn(4)] ^= byte(1 + rng.Intn(255)) // target IP
		case 3:
			b[rng.Intn(6)] ^= byte(1 + rng.Intn(255)) // Ethernet destination
		case 4:
			b[22] |= 1 // a group sender
		case 5:
			b = b[:wire.ARPFrameLen] // unpadded: still good
		}
		if len(b) == 0 {
			b = []byte{0}
		}
		_, got, err := local.Receive(b)
		var pe *wire.ParseError
		switch {
		case errors.As(err, &pe):
			want[regs.RxDrop(pe.Reason)]++
		case err != nil:
			t.Fatal(err)
		case got.Op == wire.ARPOpRequest:
			answers++
			answered = append(answered, got)
		default:
			replies++
		}
		require.NoError(t, h.dev.Inject(b, false))
		if i%8 == 7 {
			require.NoError(t, fab.Step(200)) // the reply FIFO holds 16; the host drains it below
			for {
				st, err := h.dev.Read32(0, regs.ARPReplyStatus)
				require.NoError(t, err)
				if st&1 == 0 {
					break
				}
				require.NoError(t, h.dev.Write32(0, regs.ARPReplyPop, 1))
			}
		}
	}
	require.NoError(t, fab.Step(5000))
	k, err := h.nic.Counters()
	require.NoError(t, err)
	t.Logf("drops %v, %d answered, %d replies", k.Drops, answers, replies)
	assert.Equal(t, want, k.Drops)
	for _, r := range []regs.RxDrop{regs.RxDropARPMalformed, regs.RxDropARPTarget, regs.RxDropDstMAC, regs.RxDropTruncated} {
		assert.Positive(t, want[r], "the mutations reach %v", r)
	}
	a, err := h.nic.ARPCounters()
	require.NoError(t, err)
	assert.Equal(t, nic.ARPCounters{Answered: uint32(answers), RepliesReceived: uint32(replies)}, a)
	fs, err := h.dev.Transmitted()
	require.NoError(t, err)
	require.Len(t, fs, answers, "an answer per good request, nothing else")
	for i, f := range fs {
		got := arpOf(f.Bytes)
		require.NotNil(t, got, "frame %d is ARP", i)
		q := answered[i]
		assert.Equal(t, &wire.ARP{DstMAC: q.SenderMAC, SrcMAC: [6]byte(h.mac), Op: wire.ARPOpReply,
			SenderMAC: [6]byte(h.mac), SenderIP: h.ip.As4(), TargetMAC: q.SenderMAC, TargetIP: q.SenderIP}, got)
	}
}

// TestARPBetweenDataFrames: while host 0 streams 1 KiB messages to host 1 back to back, host 1
// asks for host 0's address every 400 cycles. Host 0 answers each request after at most one
// data frame (the link takes an ARP frame at the next frame boundary), never sends two ARP
// frames while data waits, and the data stream goes on: every message completes, and between
// two answers data frames keep flowing.
func TestARPBetweenDataFrames(t *testing.T) {
	fab, hs := newPair(t, pairConfig{latency: 10})
	qps := connect(t, hs, 3, nic.QPConfig{SQEntries: 128, RQEntries: 128}, [2]uint32{0, 0})
	require.NoError(t, hs[0].dev.Capture(true))
	require.NoError(t, hs[0].dev.CaptureReceived(true))
	const n, size = 120, 1024
	src, dst := alloc(t, hs[0], n*size), alloc(t, hs[1], n*size)
	copy(src.Bytes, pattern(7, len(src.Bytes)))
	for i := 0; i < n; i++ {
		require.NoError(t, qps[1].PostRecv(nic.RecvWR{WRID: uint64(i), Addr: dst.IOVA + uint64(i*size), Length: size}))
	}
	for i := 0; i < n; i++ {
		require.NoError(t, qps[0].PostSend(nic.SendWR{WRID: uint64(i), Addr: src.IOVA + uint64(i*size), Length: size, Signaled: true}))
	}
	ip0 := hs[0].ip.As4()
	const asks = 20
	for i := 0; i < asks; i++ {
		require.NoError(t, hs[1].dev.Write32(0, regs.ARPRequest, binary.BigEndian.Uint32(ip0[:])))
		require.NoError(t, fab.Step(400))
	}
	got := collect(t, fab, 400000, map[*nic.QP]int{qps[0]: n, qps[1]: n})
	for _, c := range got[qps[1]] {
		require.Equal(t, regs.CQEStatusOk, c.Status)
	}
	assert.Equal(t, src.Bytes, dst.Bytes, "every message byte-exact")

	rx, err := hs[0].dev.Received()
	require.NoError(t, err)
	tx, err := hs[0].dev.Transmitted()
	require.NoError(t, err)
	var reqs []sim.Frame
	for _, f := range rx {
		if a := arpOf(f.Bytes); a != nil && a.Op == wire.ARPOpRequest {
			reqs = append(reqs, f)
		}
	}
	require.Len(t, reqs, asks)
	answers, data, between := 0, 0, []int{}
	longest := 0
	for i, f := range tx {
		if arpOf(f.Bytes) == nil {
			data++
			longest = max(longest, int(f.Last-f.First+1))
			continue
		}
		require.Less(t, answers, asks, "an answer per request")
		// The request's last beat in, the answer's first beat out: the parser's two cycles, the
		// ARP block's two, and at most one data frame still on the link.
		delay := f.First - reqs[answers].Last
		assert.LessOrEqual(t, delay, uint64(longest+8), "answer %d waited %d cycles", answers, delay)
		if i > 0 {
			assert.Nil(t, arpOf(tx[i-1].Bytes), "answer %d: two ARP frames in a row", answers)
		}
		between = append(between, data)
		data = 0
		answers++
	}
	assert.Equal(t, asks, answers)
	assert.Equal(t, 136, longest, "1 KiB SEND_ONLY frames of 136 beats")
	for i := 1; i < len(between); i++ {
		assert.Positive(t, between[i], "data frames between answers %d and %d", i-1, i)
	}
	a, err := hs[1].nic.ARPCounters()
	require.NoError(t, err)
	assert.Equal(t, uint32(asks), a.RequestsSent)
	assert.Equal(t, uint32(16), a.RepliesReceived, "the FIFO holds 16: nobody drains it here")
	assert.Equal(t, uint32(asks-16), a.RepliesLost)
}

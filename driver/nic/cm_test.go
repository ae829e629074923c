package nic_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sanoffload/san/driver/nic"
	"github.com/sanoffload/san/driver/regs"
	"github.com/sanoffload/san/hw/sim"
	"github.com/sanoffload/san/hw/wire"
)

// Simulation timing for the connection manager: 4.096 us x 2^4 = 65.5 us (about 10k cycles)
// for an answer, three resends.
var simCM = nic.CMConfig{Commands: 16, Events: 64, Vector: 7, ResponseTimeout: 4, MaxRetries: 3, DeferTimeout: 6}

// simResolver is address resolution in the simulations: each ARP request waits up to 200 ms
// of wall-clock time (a reply takes a few hundred cycles), three tries.
var simResolver = nic.ResolverConfig{Vector: 9, Timeout: 200 * time.Millisecond, Tries: 3}

// cmPair is two hosts with their connection managers and resolvers open.
type cmPair struct {
	fab *sim.Fabric
	hs  [2]*host
	cms [2]*nic.CM
	res [2]*nic.Resolver
	tr  nic.Transport // the connections' transport settings
}

func newCMPair(t *testing.T, pc pairConfig, cfg nic.CMConfig) *cmPair {
	t.Helper()
	fab, hs := newPair(t, pc)
	p := &cmPair{fab: fab, hs: hs, tr: nic.DefaultTransport}
	for i, h := range hs {
		cm, err := h.nic.OpenCM(cfg)
		require.NoError(t, err)
		t.Cleanup(func() { _ = cm.Close() })
		p.cms[i] = cm
		if p.res[i], err = h.nic.OpenResolver(simResolver); err != nil {
			require.NoError(t, err)
		}
	}
	return p
}

// event waits for the next event on side i and checks its type.
func (p *cmPair) event(t *testing.T, i int, want regs.CMEvent) nic.Event {
	t.Helper()
	ev, err := p.cms[i].Wait(context.Background())
	require.NoError(t, err, "host %d waiting for %v", i, want)
	require.Equal(t, want, ev.Type, "host %d: event %+v", i, ev)
	return ev
}

// noEvent checks that side i has no event waiting.
func (p *cmPair) noEvent(t *testing.T, i int) {
	t.Helper()
	ev, ok, err := p.cms[i].Poll()
	require.NoError(t, err)
	require.False(t, ok, "host %d: unexpected event %+v", i, ev)
}

// inject hands frame f to host i's NIC as if from the link and runs the clock on a little.
func (p *cmPair) inject(t *testing.T, i int, f *wire.Frame) {
	t.Helper()
	require.NoError(t, p.hs[i].dev.Inject(f.Marshal(), false))
	require.NoError(t, p.fab.Step(3000))
}

// counters reads host i's connection manager counters.
func (p *cmPair) counters(t *testing.T, i int) nic.CMCounters {
	t.Helper()
	k, err := p.cms[i].Counters()
	require.NoError(t, err)
	return k
}

func (p *cmPair) connectParams(to int, port uint16, data []byte) nic.ConnectParams {
	h := p.hs[to]
	return nic.ConnectParams{Dst: h.ip, Port: port, SrcPort: 40000 + port,
		UDPSource: 0xC100, StartPSN: 0x123456, Transport: p.tr, Data: data}
}

func newQP(t *testing.T, h *host) *nic.QP {
	t.Helper()
	q, err := h.nic.NewQP(nic.QPConfig{Vector: 3})
	require.NoError(t, err)
	return q
}

// dial runs a whole handshake from host 0 to host 1's port with data both ways and returns both
// QPs, established.
func (p *cmPair) dial(t *testing.T, port uint16, reqData, repData []byte) (qa, qb *nic.QP, ida, idb nic.ConnID) {
	t.Helper()
	qa = newQP(t, p.hs[0])
	ida, err := p.cms[0].Connect(context.Background(), qa, p.connectParams(1, port, reqData))
	require.NoError(t, err)
	req := p.event(t, 1, regs.CMEventRequest)
	idb = req.Conn
	qb = newQP(t, p.hs[1])
	require.NoError(t, p.cms[1].Accept(idb, qb, nic.AcceptParams{UDPSource: 0xC200, StartPSN: 0x654321,
		Transport: nic.DefaultTransport, Data: repData}))
	p.event(t, 0, regs.CMEventEstablished)
	p.event(t, 1, regs.CMEventEstablished)
	return qa, qb, ida, idb
}

func padded(b []byte, n int) []byte {
	out := make([]byte, n)
	copy(out, b)
	return out
}

// TestCMConnectAcceptData_R22_R24_R25: a request carries the caller's address, port and data to
// the listener; the accept's response data reaches the caller; both sides end established with
// each other's QP numbers and PSNs loaded, so data flows both ways. Full-size data, byte-exact.
func TestCMConnectAcceptData_R22_R24_R25(t *testing.T) {
	p := newCMPair(t, pairConfig{}, simCM)
	require.NoError(t, p.cms[1].Listen(5000, 8))
	reqData := pattern(1, nic.MaxConnectData)
	repData := pattern(2, nic.MaxAcceptData)

	qa := newQP(t, p.hs[0])
	ida, err := p.cms[0].Connect(context.Background(), qa, p.connectParams(1, 5000, reqData))
	require.NoError(t, err)
	require.Equal(t, ida.Num(), qa.Num())
	require.Equal(t, p.hs[0].nic.Identity().NQP+uint32(qa.Num()), qa.QPN(), "QPN on the wire: N_QP + number")

	req := p.event(t, 1, regs.CMEventRequest)
	require.Equal(t, uint16(5000), req.Port)
	require.Equal(t, p.hs[0].ip, req.PeerIP)
	require.Equal(t, uint16(45000), req.PeerPort)
	require.Equal(t, qa.QPN(), req.PeerQPN)
	require.Equal(t, reqData, req.Data, "caller data byte-exact")

	qb := newQP(t, p.hs[1])
	require.NoError(t, p.cms[1].Accept(req.Conn, qb, nic.AcceptParams{UDPSource: 0xC200, StartPSN: 0x654321,
		Transport: nic.DefaultTransport, Data: repData}))
	require.Equal(t, req.Conn.Num(), qb.Num())

	est := p.event(t, 0, regs.CMEventEstablished)
	require.Equal(t, ida, est.Conn)
	require.Equal(t, qb.QPN(), est.PeerQPN)
	require.Equal(t, repData, est.Data, "response data byte-exact")
	p.event(t, 1, regs.CMEventEstablished)

	// Data both ways over the connection the CM loaded.
	exchange(t, p, qa, qb, 3000)
	exchange(t, p, qb, qa, 70)
}

// exchange sends one message of n bytes from a to b and checks it arrives byte-exact.
func exchange(t *testing.T, p *cmPair, a, b *nic.QP, n int) {
	t.Helper()
	ha, hb := p.hs[0], p.hs[1]
	if !owns(ha, a) { // a's host sends
		ha, hb = hb, ha
	}
	src := alloc(t, ha, n)
	dst := alloc(t, hb, n+64)
	copy(src.Bytes, pattern(int64(n), n))
	require.NoError(t, b.PostRecv(nic.RecvWR{WRID: 9, Addr: dst.IOVA, Length: uint32(len(dst.Bytes))}))
	require.NoError(t, a.PostSend(nic.SendWR{WRID: 8, Addr: src.IOVA, Length: uint32(n), Signaled: true}))
	got := collect(t, p.fab, 2_000_000, map[*nic.QP]int{a: 1, b: 1})
	require.Equal(t, regs.CQEStatusOk, got[a][0].Status)
	require.Equal(t, regs.CQEStatusOk, got[b][0].Status)
	require.EqualValues(t, n, got[b][0].ByteLen)
	require.Equal(t, src.Bytes, dst.Bytes[:n])
}

func owns(h *host, q *nic.QP) bool { return h.nic == q.NIC() }

// TestCMReject_R12: the listener refuses with reason 28 and data; the caller sees both, and no
// connection remains on either side.
func TestCMReject_R12(t *testing.T) {
	p := newCMPair(t, pairConfig{}, simCM)
	require.NoError(t, p.cms[1].Listen(5001, 4))
	qa := newQP(t, p.hs[0])
	_, err := p.cms[0].Connect(context.Background(), qa, p.connectParams(1, 5001, []byte("hello")))
	require.NoError(t, err)
	req := p.event(t, 1, regs.CMEventRequest)
	require.Equal(t, padded([]byte("hello"), nic.MaxConnectData), req.Data)
	rejData := pattern(3, nic.MaxRejectData)
	require.NoError(t, p.cms[1].Reject(req.Conn, regs.CMRejReasonConsumerDefined, rejData))
	rej := p.event(t, 0, regs.CMEventRejected)
	require.Equal(t, regs.CMRejReasonConsumerDefined, rej.Reason)
	require.Equal(t, rejData, rej.Data)
	// The request is gone: accepting it now is refused.
	err = p.cms[1].Accept(req.Conn, newQP(t, p.hs[1]), nic.AcceptParams{Transport: nic.DefaultTransport})
	var ce *nic.CMError
	require.True(t, errors.As(err, &ce), "%v", err)
	require.Equal(t, regs.CMStatusBadState, ce.Status)
}

// TestCMNoListener_R5: a request to a port nobody listens on is refused by the NIC with reason 8
// (invalid service ID), which the sockets layer maps to WSAECONNRESET.
func TestCMNoListener_R5(t *testing.T) {
	p := newCMPair(t, pairConfig{}, simCM)
	qa := newQP(t, p.hs[0])
	_, err := p.cms[0].Connect(context.Background(), qa, p.connectParams(1, 6000, nil))
	require.NoError(t, err)
	rej := p.event(t, 0, regs.CMEventRejected)
	require.Equal(t, regs.CMRejReasonInvalidServiceID, rej.Reason)
	p.noEvent(t, 1)
	k := p.counters(t, 1)
	require.EqualValues(t, 1, k.Refused)
}

// TestCMNoPeer_R5: with nobody at the address, the request is resent MaxRetries times, then the
// caller sees TIMED_OUT (WSAETIMEDOUT: the switch may fall back to TCP).
func TestCMNoPeer_R5(t *testing.T) {
	p := newCMPair(t, pairConfig{}, simCM)
	require.NoError(t, p.cms[1].Close()) // the peer's CM is off: its NIC drops every MAD
	qa := newQP(t, p.hs[0])
	_, err := p.cms[0].Connect(context.Background(), qa, p.connectParams(1, 5000, nil))
	require.NoError(t, err)
	to := p.event(t, 0, regs.CMEventTimedOut)
	require.Equal(t, regs.CMRejReasonTimeout, to.Reason)
	k := p.counters(t, 0)
	require.EqualValues(t, simCM.MaxRetries, k.Resends)
	require.EqualValues(t, 1, k.Timeouts)
	// REQ, three resends, and the REJ (timeout) that withdraws it.
	require.EqualValues(t, simCM.MaxRetries+2, k.MADsTx)
}

// TestCMDeferThenAccept_R22: DEFER sends an MRA with the listener's data, which the caller's
// host gets byte-exact in a DEFERRED event; the caller waits past its response timeout without
// giving up or resending, and a later ACCEPT establishes the connection.
func TestCMDeferThenAccept_R22(t *testing.T) {
	p := newCMPair(t, pairConfig{}, simCM)
	require.NoError(t, p.cms[1].Listen(5002, 4))
	qa := newQP(t, p.hs[0])
	_, err := p.cms[0].Connect(context.Background(), qa, p.connectParams(1, 5002, []byte("later")))
	require.NoError(t, err)
	req := p.event(t, 1, regs.CMEventRequest)
	require.ErrorIs(t, p.cms[1].Defer(req.Conn, make([]byte, nic.MaxDeferData+1)), nic.ErrInvalid)
	data := pattern(77, nic.MaxDeferData)
	require.NoError(t, p.cms[1].Defer(req.Conn, data))
	deferred := p.event(t, 0, regs.CMEventDeferred)
	require.Equal(t, data, deferred.Data, "the MRA's private data, all 222 bytes")
	// Four response timeouts (of 65.5 us at 156.25 MHz): without the MRA the caller would have
	// given up after three resends.
	require.NoError(t, p.fab.Step(4*16*640+2000))
	p.noEvent(t, 0)
	k := p.counters(t, 0)
	require.Zero(t, k.Timeouts)
	qb := newQP(t, p.hs[1])
	require.NoError(t, p.cms[1].Accept(req.Conn, qb, nic.AcceptParams{UDPSource: 0xC200, StartPSN: 7,
		Transport: nic.DefaultTransport}))
	p.event(t, 0, regs.CMEventEstablished)
	p.event(t, 1, regs.CMEventEstablished)
	exchange(t, p, qa, qb, 100)
}

// TestCMDeferThenReject_R22_R12: a deferred request may still be refused.
func TestCMDeferThenReject_R22_R12(t *testing.T) {
	p := newCMPair(t, pairConfig{}, simCM)
	require.NoError(t, p.cms[1].Listen(5003, 4))
	_, err := p.cms[0].Connect(context.Background(), newQP(t, p.hs[0]), p.connectParams(1, 5003, nil))
	require.NoError(t, err)
	req := p.event(t, 1, regs.CMEventRequest)
	require.NoError(t, p.cms[1].Defer(req.Conn, []byte("wait")))
	deferred := p.event(t, 0, regs.CMEventDeferred)
	require.Equal(t, padded([]byte("wait"), 4), deferred.Data[:4])
	require.Equal(t, make([]byte, nic.MaxDeferData-4), deferred.Data[4:], "zeros after the data")
	require.NoError(t, p.fab.Step(20000))
	require.NoError(t, p.cms[1].Reject(req.Conn, regs.CMRejReasonConsumerDefined, []byte("no")))
	rej := p.event(t, 0, regs.CMEventRejected)
	require.Equal(t, regs.CMRejReasonConsumerDefined, rej.Reason)
	require.Equal(t, padded([]byte("no"), nic.MaxRejectData), rej.Data)
}

// TestCMBacklogFull_R18: with a backlog of 2, a third request waiting at the same time is
// refused by the NIC (reason 3), while the two accepted ones proceed and carry data.
func TestCMBacklogFull_R18(t *testing.T) {
	p := newCMPair(t, pairConfig{}, simCM)
	require.NoError(t, p.cms[1].Listen(5004, 2))
	var qas [3]*nic.QP
	for i := range qas {
		qas[i] = newQP(t, p.hs[0])
		_, err := p.cms[0].Connect(context.Background(), qas[i], p.connectParams(1, 5004, []byte{byte(i)}))
		require.NoError(t, err)
	}
	r0 := p.event(t, 1, regs.CMEventRequest)
	r1 := p.event(t, 1, regs.CMEventRequest)
	rej := p.event(t, 0, regs.CMEventRejected)
	require.Equal(t, regs.CMRejReasonNoResources, rej.Reason)
	require.Equal(t, qas[2].Num(), rej.Conn.Num())
	var qbs [2]*nic.QP
	for i, r := range []nic.Event{r0, r1} {
		qbs[i] = newQP(t, p.hs[1])
		require.NoError(t, p.cms[1].Accept(r.Conn, qbs[i], nic.AcceptParams{UDPSource: 0xC200, StartPSN: 9,
			Transport: nic.DefaultTransport}))
	}
	for range 2 {
		p.event(t, 0, regs.CMEventEstablished)
		p.event(t, 1, regs.CMEventEstablished)
	}
	exchange(t, p, qas[0], qbs[0], 500)
	exchange(t, p, qbs[1], qas[1], 500)
	// The backlog has room again: a new request is reported.
	_, err := p.cms[0].Connect(context.Background(), newQP(t, p.hs[0]), p.connectParams(1, 5004, nil))
	require.NoError(t, err)
	p.event(t, 1, regs.CMEventRequest)
}

// TestCMDisconnectData_R26: either side disconnects with data; the other sees the request with
// the data byte-exact, the initiator sees the disconnect complete, both QPs stop.
func TestCMDisconnectData_R26(t *testing.T) {
	p := newCMPair(t, pairConfig{}, simCM)
	require.NoError(t, p.cms[1].Listen(5005, 4))
	for initiator := 0; initiator < 2; initiator++ {
		qa, qb, ida, idb := p.dial(t, 5005, nil, nil)
		exchange(t, p, qa, qb, 64)
		ids := [2]nic.ConnID{ida, idb}
		data := pattern(int64(10+initiator), nic.MaxDisconnectData)
		require.NoError(t, p.cms[initiator].Disconnect(ids[initiator], data))
		dreq := p.event(t, 1-initiator, regs.CMEventDisconnectRequest)
		require.Equal(t, ids[1-initiator], dreq.Conn)
		require.Equal(t, data, dreq.Data)
		done := p.event(t, initiator, regs.CMEventDisconnected)
		require.Equal(t, ids[initiator], done.Conn)
		for _, q := range []*nic.QP{qa, qb} {
			st, err := q.State()
			require.NoError(t, err)
			require.False(t, st.RTS, "qp %d stopped", q.Num())
		}
		// Disconnecting again is refused: the connection is gone.
		err := p.cms[initiator].Disconnect(ids[initiator], nil)
		var ce *nic.CMError
		require.True(t, errors.As(err, &ce), "%v", err)
	}
}

// TestCMLossyLink: with MADs (and data) dropped, duplicated, reordered and corrupted on both
// directions of the link, every connection is still set up exactly once (no duplicate REQUEST
// from a resent or duplicated REQ), carries its data, and is torn down; resends did the work.
func TestCMLossyLink(t *testing.T) {
	const seed = 5150
	t.Logf("seed %d", seed)
	cfg := simCM
	cfg.MaxRetries = 10
	p := newCMPair(t, pairConfig{seed: seed}, cfg)
	p.tr = lossyTransport
	for dir := 0; dir < 2; dir++ {
		f, err := sim.FaultsOfKind("mixed", 0.15, seed+uint64(dir))
		require.NoError(t, err)
		require.NoError(t, p.fab.SetFaults(p.hs[dir].dev, p.hs[1-dir].dev, f))
	}
	require.NoError(t, p.cms[1].Listen(7000, 16))
	const conns = 12
	for i := 0; i < conns; i++ {
		qa := newQP(t, p.hs[0])
		ida, err := p.cms[0].Connect(context.Background(), qa, p.connectParams(1, 7000, []byte{byte(i)}))
		require.NoError(t, err)
		req := p.event(t, 1, regs.CMEventRequest)
		require.Equal(t, padded([]byte{byte(i)}, nic.MaxConnectData), req.Data, "connection %d: its own request", i)
		qb := newQP(t, p.hs[1])
		require.NoError(t, p.cms[1].Accept(req.Conn, qb, nic.AcceptParams{UDPSource: 0xC200, StartPSN: uint32(i),
			Transport: lossyTransport, Data: []byte{0xA0 | byte(i)}}))
		est := p.event(t, 0, regs.CMEventEstablished)
		require.Equal(t, ida, est.Conn)
		require.Equal(t, padded([]byte{0xA0 | byte(i)}, nic.MaxAcceptData), est.Data)
		p.event(t, 1, regs.CMEventEstablished)
		exchange(t, p, qa, qb, 2000)
		require.NoError(t, p.cms[0].Disconnect(ida, []byte{0xD0 | byte(i)}))
		dreq := p.event(t, 1, regs.CMEventDisconnectRequest)
		require.Equal(t, req.Conn, dreq.Conn)
		p.event(t, 0, regs.CMEventDisconnected)
	}
	// Let late duplicates arrive and every TIMEWAIT end: still no extra event anywhere.
	require.NoError(t, p.fab.Step(200_000))
	p.noEvent(t, 0)
	p.noEvent(t, 1)
	var resends uint32
	for i := range p.cms {
		k := p.counters(t, i)
		require.Zero(t, k.Timeouts, "host %d", i)
		resends += k.Resends
		t.Logf("host %d: %+v", i, k)
	}
	require.NotZero(t, resends, "the faults made the CM resend")
}

// TestCMManyConnections: every connection context the build has (256 in the reference build,
// numbers 0 and 1 included: they are QPs N_QP and N_QP+1 on the wire) set up at once from one
// side, each used for a message, then all torn down; the numbers are free again afterwards (a
// further round fits).
func TestCMManyConnections(t *testing.T) {
	p := newCMPair(t, pairConfig{hostMemory: 64 << 20}, manyCM)
	n := int(p.hs[0].nic.Identity().NQP)
	require.GreaterOrEqual(t, n, 256, "the reference build holds 256 connections")
	manyConnections(t, p, n, true)
}

// TestCMManyConnectionsUnderBackpressure: 64 connections set up at once, used and torn down as
// in TestCMManyConnections, with the hosts withholding DMA read data and write ready 30 % of
// cycles and the MACs withholding ready 30 %, over a 200-cycle link: command fetches, event
// writes and MADs all stall, nothing hangs, nothing is lost or duplicated.
func TestCMManyConnectionsUnderBackpressure(t *testing.T) {
	const seed = 7207
	t.Logf("seed %d", seed)
	dma := sim.PCIeDMA
	dma.StallPercent = 30
	p := newCMPair(t, pairConfig{hostMemory: 64 << 20, dma: &dma, linkStall: 30, latency: 200, seed: seed}, manyCM)
	manyConnections(t, p, 64, false)
}

// manyCM suits many handshakes at once: response timeouts long enough that a queue of them is
// not mistaken for loss.
var manyCM = nic.CMConfig{Commands: 64, Events: 1024, Vector: 7, ResponseTimeout: 8, MaxRetries: 3, DeferTimeout: 12,
	TimeWait: 10} // four response timeouts: longer than the peer's three retries

// manyConnections sets up n connections from host 0 to host 1 at once, a message each way on
// each, then tears them all down; with full set, n is every context and one more CONNECT is
// refused, and after TIMEWAIT a further connection fits.
func manyConnections(t *testing.T, p *cmPair, n int, full bool) {
	require.NoError(t, p.cms[1].Listen(9000, n))
	cfg := nic.QPConfig{SQEntries: 2, RQEntries: 2, Vector: 3}
	qas := map[nic.ConnID]*nic.QP{}
	qbs := map[nic.ConnID]*nic.QP{}
	peerQPN := map[*nic.QP]int{} // each QP's peer's QP number, from the events
	for i := 0; i < n; i++ {
		q, err := p.hs[0].nic.NewQP(cfg)
		require.NoError(t, err)
		id, err := p.cms[0].Connect(context.Background(), q, p.connectParams(1, 9000, []byte{byte(i), byte(i >> 8)}))
		require.NoError(t, err, "connection %d", i)
		qas[id] = q
	}
	if full {
		// One more finds no free context on the active side.
		_, err := p.cms[0].Connect(context.Background(), newQP(t, p.hs[0]), p.connectParams(1, 9000, nil))
		var ce *nic.CMError
		require.True(t, errors.As(err, &ce), "%v", err)
		require.Equal(t, regs.CMStatusNoContext, ce.Status)
	}
	est := [2]int{}
	for est[0] < n || est[1] < n {
		for side := 0; side < 2; side++ {
			ev, ok, err := p.cms[side].Poll()
			require.NoError(t, err)
			if !ok {
				continue
			}
			switch {
			case side == 1 && ev.Type == regs.CMEventRequest:
				q, err := p.hs[1].nic.NewQP(cfg)
				require.NoError(t, err)
				require.NoError(t, p.cms[1].Accept(ev.Conn, q, nic.AcceptParams{UDPSource: 0xC200,
					StartPSN: uint32(ev.Conn.Num()), Transport: p.tr}))
				qbs[ev.Conn] = q
				peerQPN[q] = int(ev.PeerQPN)
			case ev.Type == regs.CMEventEstablished:
				est[side]++
				if side == 0 {
					require.Contains(t, qas, ev.Conn)
					peerQPN[qas[ev.Conn]] = int(ev.PeerQPN)
				}
			default:
				t.Fatalf("host %d: unexpected %+v", side, ev)
			}
		}
		require.NoError(t, p.fab.Step(32))
	}
	require.Len(t, qbs, n)
	// A message on every connection, all at once, each way.
	bufs := map[*nic.QP][]byte{}
	want := map[*nic.QP]int{}
	for _, qs := range []map[nic.ConnID]*nic.QP{qas, qbs} {
		for _, q := range qs {
			h := p.hs[0]
			if !owns(h, q) {
				h = p.hs[1]
			}
			src := alloc(t, h, 64)
			dst := alloc(t, h, 64)
			copy(src.Bytes, pattern(int64(q.QPN()), 64))
			bufs[q] = dst.Bytes
			require.NoError(t, q.PostRecv(nic.RecvWR{WRID: 1, Addr: dst.IOVA, Length: 64}))
			require.NoError(t, q.PostSend(nic.SendWR{WRID: 2, Addr: src.IOVA, Length: 64, Signaled: true}))
			want[q] = 2
		}
	}
	got := collect(t, p.fab, 5_000_000, want)
	for q, cs := range got {
		for _, c := range cs {
			require.Equal(t, regs.CQEStatusOk, c.Status, "qp %d: %+v", q.Num(), c)
		}
	}
	// Each QP received its own peer's message (each sent a pattern seeded by its number).
	for q, b := range bufs {
		require.Equal(t, pattern(int64(peerQPN[q]), 64), b, "qp %d from qp %d", q.Num(), peerQPN[q])
	}
	for id := range qas {
		require.NoError(t, p.cms[0].Disconnect(id, nil))
	}
	done := [2]int{}
	for done[0] < n || done[1] < n {
		for side := 0; side < 2; side++ {
			ev, ok, err := p.cms[side].Poll()
			require.NoError(t, err)
			if ok {
				want := regs.CMEventDisconnected
				if side == 1 {
					want = regs.CMEventDisconnectRequest
				}
				require.Equal(t, want, ev.Type)
				done[side]++
			}
		}
		require.NoError(t, p.fab.Step(32))
	}
	// After TIMEWAIT (2^TimeWait ticks of 640 cycles, and one for the tick under way) every
	// number is free again.
	require.NoError(t, p.fab.Step((1<<manyCM.TimeWait+2)*640+10_000))
	q := newQP(t, p.hs[0])
	_, err := p.cms[0].Connect(context.Background(), q, p.connectParams(1, 9000, nil))
	require.NoError(t, err)
	p.event(t, 1, regs.CMEventRequest)
}

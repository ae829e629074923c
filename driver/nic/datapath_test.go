package nic_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math/rand"
	"net"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sanoffload/san/driver"
	"github.com/sanoffload/san/driver/nic"
	"github.com/sanoffload/san/driver/regs"
	"github.com/sanoffload/san/hw/sim"
	"github.com/sanoffload/san/hw/wire"
)

// host is one simulated host: its NIC's driver and the simulated device under it.
type host struct {
	dev *sim.NIC
	nic *nic.NIC
	mac net.HardwareAddr
	ip  netip.Addr
}

// pairConfig sets up two hosts joined by a link.
type pairConfig struct {
	dma        *sim.DMAModel // nil: the PCIe-like default
	linkStall  uint32
	latency    uint32
	pmtu       int
	seed       uint64
	hostMemory int
	faults     bool   // the test provokes DMA faults and checks them itself
	irqWait    uint64 // sim.Config.IRQWaitCycles; 0: its default
}

// newPair brings up two simulated NICs on one clock, linked, addressed and enabled, and fails
// the test at cleanup if either reached for host memory its driver had not mapped.
func newPair(t *testing.T, pc pairConfig) (*sim.Fabric, [2]*host) {
	t.Helper()
	fab, hs := openHosts(t, pc, 2)
	require.NoError(t, fab.Link(hs[0].dev, hs[1].dev, pc.latency))
	return fab, [2]*host(hs)
}

// newSegment brings up n simulated NICs on one clock, on a shared segment (a hub) of the
// configured latency, addressed and enabled, as newPair does.
func newSegment(t *testing.T, pc pairConfig, n int) (*sim.Fabric, []*host) {
	t.Helper()
	fab, hs := openHosts(t, pc, n)
	devs := make([]*sim.NIC, n)
	for i, h := range hs {
		devs[i] = h.dev
	}
	require.NoError(t, fab.Segment(pc.latency, devs...))
	return fab, hs
}

// openHosts opens n addressed and enabled NICs on a new fabric: host i has MAC
// 02:00:00:00:00:0i+1 and IP 10.0.0.i+1.
func openHosts(t *testing.T, pc pairConfig, n int) (*sim.Fabric, []*host) {
	t.Helper()
	fab, err := sim.NewFabric("")
	require.NoError(t, err)
	t.Cleanup(func() { _ = fab.Close() })
	if pc.pmtu == 0 {
		pc.pmtu = 1024
	}
	if pc.hostMemory == 0 {
		pc.hostMemory = 16 << 20
	}
	hs := make([]*host, n)
	for i := range hs {
		dev, err := fab.Open(sim.Config{DMA: pc.dma, LinkStallPercent: pc.linkStall,
			Seed: pc.seed + uint64(i), HostMemory: pc.hostMemory, IRQWaitCycles: pc.irqWait})
		require.NoError(t, err)
		n, err := nic.Open(dev)
		require.NoError(t, err)
		h := &host{dev: dev, nic: n, mac: net.HardwareAddr{0x02, 0, 0, 0, 0, byte(i + 1)},
			ip: netip.AddrFrom4([4]byte{10, 0, 0, byte(i + 1)})}
		require.NoError(t, n.SetAddress(h.mac, h.ip))
		require.NoError(t, n.SetPMTU(pc.pmtu))
		require.NoError(t, n.Enable(true))
		hs[i] = h
		if !pc.faults {
			t.Cleanup(func() {
				c, first := dev.DMAFaults()
				assert.Zero(t, c, "DMA guard: host %d: first fault %v", i, first)
			})
		}
	}
	return fab, hs
}

// connect creates connection num on both hosts and loads each with the other as its peer, with
// the default transport settings.
func connect(t *testing.T, hs [2]*host, num int, cfg nic.QPConfig, psn [2]uint32) [2]*nic.QP {
	t.Helper()
	return connectWith(t, hs, num, cfg, psn, nic.DefaultTransport)
}

// connectWith is connect with the given transport settings on both sides.
func connectWith(t *testing.T, hs [2]*host, num int, cfg nic.QPConfig, psn [2]uint32, tr nic.Transport) [2]*nic.QP {
	t.Helper()
	var qps [2]*nic.QP
	for i, h := range hs {
		q, err := h.nic.CreateQP(num, cfg)
		require.NoError(t, err)
		qps[i] = q
	}
	for i := range hs {
		p := hs[1-i]
		require.NoError(t, qps[i].LoadForTest(nic.Peer{QPN: qps[1-i].QPN(), MAC: p.mac, IP: p.ip,
			UDPSource: uint16(0xC000 + num), SendPSN: psn[i], ReceivePSN: psn[1-i], Transport: tr}))
	}
	return qps
}

// collect polls the queues, stepping the shared clock, until want completions have arrived on
// each or the cycle budget is spent.
func collect(t *testing.T, fab *sim.Fabric, budget uint64, want map[*nic.QP]int) map[*nic.QP][]nic.Completion {
	t.Helper()
	got := map[*nic.QP][]nic.Completion{}
	start := fab.Cycles()
	for {
		done := true
		for q, n := range want {
			cs, err := q.Poll(n - len(got[q]))
			require.NoError(t, err)
			got[q] = append(got[q], cs...)
			if len(got[q]) < n {
				done = false
			}
		}
		if done {
			return got
		}
		if fab.Cycles()-start > budget {
			for q, n := range want {
				t.Logf("qp %d: %d of %d completions", q.Num(), len(got[q]), n)
			}
			t.Fatalf("completions missing after %d cycles", budget)
		}
		require.NoError(t, fab.Step(64))
	}
}

func alloc(t *testing.T, h *host, size int) *driver.DMABuffer {
	t.Helper()
	b, err := h.dev.AllocDMA(size)
	require.NoError(t, err)
	return b
}

func pattern(seed int64, n int) []byte {
	b := make([]byte, n)
	rand.New(rand.NewSource(seed)).Read(b)
	return b
}

// TestSendRecvSizes: messages of the sizes at the edges of segmentation arrive byte-exact and
// in order, each with a receive CQE giving its length and a send CQE, through the driver.
func TestSendRecvSizes(t *testing.T) {
	for _, pmtu := range []int{1024, 256} {
		t.Run(fmt.Sprintf("pmtu%d", pmtu), func(t *testing.T) {
			fab, hs := newPair(t, pairConfig{pmtu: pmtu, latency: 10})
			qps := connect(t, hs, 2, nic.QPConfig{SQEntries: 16, RQEntries: 16}, [2]uint32{0xFFFFF0, 100})
			sizes := []int{0, 1, 63, 64, pmtu - 1, pmtu, pmtu + 1, 64 << 10}
			const slot = 64<<10 + 4096
			src := alloc(t, hs[0], len(sizes)*slot)
			dst := alloc(t, hs[1], len(sizes)*slot)
			for i := range dst.Bytes {
				dst.Bytes[i] = 0xEE // so that a byte written past a message shows
			}
			var msgs [][]byte
			for i, n := range sizes {
				m := pattern(int64(i), n)
				copy(src.Bytes[i*slot:], m)
				msgs = append(msgs, m)
				require.NoError(t, qps[1].PostRecv(nic.RecvWR{WRID: uint64(100 + i), Addr: dst.IOVA + uint64(i*slot), Length: slot}))
			}
			for i, n := range sizes {
				require.NoError(t, qps[0].PostSend(nic.SendWR{WRID: uint64(i), Addr: src.IOVA + uint64(i*slot),
					Length: uint32(n), Signaled: true, Solicited: i%2 == 0}))
			}
			got := collect(t, fab, 400000, map[*nic.QP]int{qps[0]: len(sizes), qps[1]: len(sizes)})
			for i, n := range sizes {
				s, r := got[qps[0]][i], got[qps[1]][i]
				assert.Equal(t, nic.Completion{WRID: uint64(i), ByteLen: uint32(n), QPN: 2, Opcode: regs.CQEOpcodeSend,
					Status: regs.CQEStatusOk, WQEIndex: uint16(i)}, s, "send %d (%d bytes)", i, n)
				assert.Equal(t, nic.Completion{WRID: uint64(100 + i), ByteLen: uint32(n), QPN: 2, Opcode: regs.CQEOpcodeRecv,
					Status: regs.CQEStatusOk, Solicited: i%2 == 0, WQEIndex: uint16(i)}, r, "receive %d (%d bytes)", i, n)
				buf := dst.Bytes[i*slot : (i+1)*slot]
				assert.True(t, bytes.Equal(msgs[i], buf[:n]), "message %d (%d bytes) arrived byte-exact", i, n)
				assert.Equal(t, byte(0xEE), buf[n], "nothing written past message %d", i)
			}
			c, err := hs[1].nic.Counters()
			require.NoError(t, err)
			assert.Zero(t, c.RxDrops, "no drops: %v", c.Drops)
		})
	}
}

// TestTooSmallReceiveBuffer: a message longer than the posted buffer completes with
// LOCAL_LENGTH, fills the buffer and writes nothing past it; the next message is unaffected.
func TestTooSmallReceiveBuffer(t *testing.T) {
	fab, hs := newPair(t, pairConfig{})
	qps := connect(t, hs, 3, nic.QPConfig{}, [2]uint32{1, 2})
	src := alloc(t, hs[0], 8192)
	dst := alloc(t, hs[1], 8192)
	copy(src.Bytes, pattern(7, 8192))
	for i := range dst.Bytes {
		dst.Bytes[i] = 0xEE
	}
	// 3000 bytes into 1000, then 100 into a buffer of its own.
	require.NoError(t, qps[1].PostRecv(nic.RecvWR{WRID: 1, Addr: dst.IOVA, Length: 1000},
		nic.RecvWR{WRID: 2, Addr: dst.IOVA + 4096, Length: 1000}))
	require.NoError(t, qps[0].PostSend(nic.SendWR{WRID: 10, Addr: src.IOVA, Length: 3000, Signaled: true},
		nic.SendWR{WRID: 11, Addr: src.IOVA + 5000, Length: 100, Signaled: true}))
	got := collect(t, fab, 100000, map[*nic.QP]int{qps[0]: 2, qps[1]: 2})
	r := got[qps[1]]
	assert.Equal(t, regs.CQEStatusLocalLength, r[0].Status)
	assert.Equal(t, uint64(1), r[0].WRID)
	assert.Equal(t, uint32(3000), r[0].ByteLen, "the CQE reports the message's length")
	assert.Equal(t, src.Bytes[:1000], dst.Bytes[:1000], "the buffer holds what fitted")
	for i := 1000; i < 4096; i++ {
		require.Equal(t, byte(0xEE), dst.Bytes[i], "byte %d past the buffer untouched", i)
	}
	assert.Equal(t, nic.Completion{WRID: 2, ByteLen: 100, QPN: 3, Opcode: regs.CQEOpcodeRecv, Status: regs.CQEStatusOk, WQEIndex: 1}, r[1])
	assert.Equal(t, src.Bytes[5000:5100], dst.Bytes[4096:4196])
}

// TestRandomMixWithBackpressure: a seeded random mix of sizes on two connections in both
// directions, with the MAC and the host withholding ready at random, arrives byte-exact and
// in order with the right CQEs.
func TestRandomMixWithBackpressure(t *testing.T) {
	seed := int64(20261120)
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewSource(seed))
	dma := sim.PCIeDMA
	dma.StallPercent = 20
	fab, hs := newPair(t, pairConfig{dma: &dma, linkStall: 20, latency: 50, pmtu: 512, seed: uint64(seed)})
	var conns [][2]*nic.QP
	for num := 2; num <= 3; num++ {
		conns = append(conns, connect(t, hs, num, nic.QPConfig{SQEntries: 64, RQEntries: 64},
			[2]uint32{rng.Uint32() & 0xFFFFFF, rng.Uint32() & 0xFFFFFF}))
	}
	const perDir = 40
	const slot = 6000
	type msg struct {
		data []byte
		dst  *driver.DMABuffer
		off  int
	}
	want := map[*nic.QP]int{}
	sent := map[*nic.QP][]msg{} // by receiving QP, in posting order
	for _, qp := range conns {
		for dir := 0; dir < 2; dir++ {
			tx, rx := qp[dir], qp[1-dir]
			src := alloc(t, hs[dir], perDir*slot)
			dst := alloc(t, hs[1-dir], perDir*slot)
			var sends []nic.SendWR
			var recvs []nic.RecvWR
			for i := 0; i < perDir; i++ {
				n := rng.Intn(slot)
				if rng.Intn(4) == 0 {
					n = rng.Intn(70)
				}
				m := pattern(rng.Int63(), n)
				copy(src.Bytes[i*slot:], m)
				sends = append(sends, nic.SendWR{WRID: uint64(i), Addr: src.IOVA + uint64(i*slot), Length: uint32(n), Signaled: true})
				recvs = append(recvs, nic.RecvWR{WRID: uint64(1000 + i), Addr: dst.IOVA + uint64(i*slot), Length: slot})
				sent[rx] = append(sent[rx], msg{m, dst, i * slot})
			}
			require.NoError(t, rx.PostRecv(recvs...))
			require.NoError(t, tx.PostSend(sends...))
			want[tx] += perDir
			want[rx] += perDir
		}
	}
	got := collect(t, fab, 3_000_000, want)
	for q, cs := range got {
		var recvs []nic.Completion
		sends := 0
		for _, c := range cs {
			require.Equal(t, regs.CQEStatusOk, c.Status, "qp %d: %+v", q.Num(), c)
			if c.Opcode == regs.CQEOpcodeRecv {
				recvs = append(recvs, c)
			} else {
				assert.Equal(t, uint64(sends), c.WRID, "qp %d: send completions in order", q.Num())
				sends++
			}
		}
		require.Len(t, recvs, len(sent[q]))
		for i, c := range recvs {
			m := sent[q][i]
			assert.Equal(t, uint64(1000+i), c.WRID, "qp %d: receives in order", q.Num())
			assert.Equal(t, uint32(len(m.data)), c.ByteLen)
			assert.True(t, bytes.Equal(m.data, m.dst.Bytes[m.off:m.off+len(m.data)]), "qp %d message %d byte-exact", q.Num(), i)
		}
	}
	for i, h := range hs {
		c, err := h.nic.Counters()
		require.NoError(t, err)
		assert.Zero(t, c.RxDrops, "host %d: no drops on a lossless link: %v", i, c.Drops)
	}
}

// TestBadFramesDroppedAndCounted: frames injected into a receiver - truncated, bad ICRC, wrong
// UDP port, to a QP beyond the build and to one not loaded, a SEND_MIDDLE outside a message,
// to another MAC, the broadcast address or another IP, from another source than the
// connection's peer - are dropped and counted under their reasons in BAR0; good traffic still
// flows.
func TestBadFramesDroppedAndCounted(t *testing.T) {
	fab, hs := newPair(t, pairConfig{})
	qps := connect(t, hs, 2, nic.QPConfig{}, [2]uint32{0, 0})
	qp := qps[1].QPN()              // the receiver's QP on the wire
	nqp := hs[1].nic.Identity().NQP // connection c is QP nqp + c
	good := func(op uint8, qp uint32, psn uint32, n int) *wire.Frame {
		return &wire.Frame{
			DstMAC: [6]byte(hs[1].mac), SrcMAC: [6]byte(hs[0].mac),
			SrcIP: hs[0].ip.As4(), DstIP: hs[1].ip.As4(), TTL: wire.DefaultTTL,
			SrcPort: 0xC002,
			BTH:     wire.BTHFields{OpCode: op, PKey: 0xFFFF, DestQP: qp, PSN: psn, AckReq: true},
			Payload: pattern(1, n),
		}
	}
	truncated := good(wire.OpRCSendOnly, qp, 0, 100).Marshal()
	truncated = truncated[:60]
	badICRC := good(wire.OpRCSendOnly, qp, 0, 100).Marshal()
	badICRC[len(badICRC)-1] ^= 0x40
	port := good(wire.OpRCSendOnly, qp, 0, 100).Marshal()
	binary.BigEndian.PutUint16(port[wire.UDPOffset+2:], wire.RoCEv2Port+1)
	addressed := func(edit func(*wire.Frame)) []byte {
		f := good(wire.OpRCSendOnly, qp, 0, 10)
		edit(f)
		return f.Marshal()
	}
	cases := []struct {
		frame  []byte
		reason regs.RxDrop
	}{
		{truncated, regs.RxDropTruncated},
		{badICRC, regs.RxDropICRC},
		{port, regs.RxDropUDPPort},
		{good(wire.OpRCSendOnly, 2, 0, 10).Marshal(), regs.RxDropQPRange},     // the number, not the QP
		{good(wire.OpRCSendOnly, 2*nqp, 0, 10).Marshal(), regs.RxDropQPRange}, // beyond the connections
		{good(wire.OpRCSendOnly, nqp+5, 0, 10).Marshal(), regs.RxDropQPState}, // connection 5: never loaded
		{good(wire.OpRCSendMiddle, qp, 0, 1024).Marshal(), regs.RxDropSequence},
		{good(wire.OpRCSendOnly, qp, 7, 10).Marshal(), regs.RxDropPSN},
		{good(wire.OpRCSendOnly, qp, 0, 10).Marshal(), regs.RxDropNoRecv},
		{addressed(func(f *wire.Frame) { f.DstMAC[5] ^= 0x10 }), regs.RxDropDstMAC},
		{addressed(func(f *wire.Frame) { f.DstMAC = wire.BroadcastMAC }), regs.RxDropDstMAC},
		{addressed(func(f *wire.Frame) { f.DstIP[3] ^= 0x10 }), regs.RxDropDstIP},
		{addressed(func(f *wire.Frame) { f.SrcIP[3] ^= 0x10 }), regs.RxDropPeerIP}, // not the connection's peer
	}
	for _, c := range cases {
		require.NoError(t, hs[1].dev.Inject(c.frame, false))
	}
	require.NoError(t, hs[1].dev.Inject(good(wire.OpRCSendOnly, qp, 0, 10).Marshal(), true))
	require.NoError(t, fab.Step(5000))
	c, err := hs[1].nic.Counters()
	require.NoError(t, err)
	want := map[regs.RxDrop]uint32{}
	for _, cs := range cases {
		want[cs.reason]++
	}
	for r, n := range want {
		assert.Equal(t, n, c.Drops[r], "%v counted", r)
	}
	assert.Equal(t, uint32(1), c.Drops[regs.RxDropMACError])
	assert.Equal(t, uint32(len(cases)+1), c.RxDrops, "total")
	cs, err := qps[1].Poll(10)
	require.NoError(t, err)
	assert.Empty(t, cs, "nothing was delivered")

	// The connection still works: PSN 0 is still the one expected.
	src, dst := alloc(t, hs[0], 4096), alloc(t, hs[1], 4096)
	copy(src.Bytes, pattern(3, 4096))
	require.NoError(t, qps[1].PostRecv(nic.RecvWR{WRID: 1, Addr: dst.IOVA, Length: 4096}))
	require.NoError(t, qps[0].PostSend(nic.SendWR{WRID: 2, Addr: src.IOVA, Length: 4000, Signaled: true}))
	got := collect(t, fab, 50000, map[*nic.QP]int{qps[0]: 1, qps[1]: 1})
	assert.Equal(t, regs.CQEStatusOk, got[qps[1]][0].Status)
	assert.Equal(t, src.Bytes[:4000], dst.Bytes[:4000])
}

// TestInterruptWakesWaiter: a waiter on an armed CQ is woken by the receive completion's
// MSI-X, and a CQ armed with completions already waiting fires at once.
func TestInterruptWakesWaiter(t *testing.T) {
	_, hs := newPair(t, pairConfig{})
	qps := connect(t, hs, 4, nic.QPConfig{Vector: 5}, [2]uint32{0, 0})
	src, dst := alloc(t, hs[0], 256), alloc(t, hs[1], 256)
	require.NoError(t, qps[1].PostRecv(nic.RecvWR{WRID: 1, Addr: dst.IOVA, Length: 256}))
	require.NoError(t, qps[0].PostSend(nic.SendWR{WRID: 2, Addr: src.IOVA, Length: 200, Signaled: true}))
	ctx := context.Background()
	require.NoError(t, qps[1].Wait(ctx), "the receive completion raises vector 5")
	cs, err := qps[1].Poll(4)
	require.NoError(t, err)
	require.Len(t, cs, 1)
	// The send completion is already there: arming fires at once.
	require.NoError(t, qps[0].Wait(ctx))
	cs, err = qps[0].Poll(4)
	require.NoError(t, err)
	require.Len(t, cs, 1)
	assert.Equal(t, uint64(2), cs[0].WRID)
}

// TestDMAGuard: a send whose buffer the driver never mapped is caught by the simulated host's
// guard (the clock reports sim.ErrDMAFault, with the access), the NIC gets an error for the
// read instead of other memory, and the send completes with DMA_ERROR.
func TestDMAGuard(t *testing.T) {
	fab, hs := newPair(t, pairConfig{faults: true})
	qps := connect(t, hs, 2, nic.QPConfig{}, [2]uint32{0, 0})
	dst := alloc(t, hs[1], 4096)
	require.NoError(t, qps[1].PostRecv(nic.RecvWR{WRID: 1, Addr: dst.IOVA, Length: 4096}))
	const unmapped = sim.IOVABase + 8<<20 // inside host memory, never allocated
	require.NoError(t, qps[0].PostSend(nic.SendWR{WRID: 7, Addr: unmapped, Length: 100, Signaled: true}))
	var stepErr error
	for i := 0; i < 100 && stepErr == nil; i++ {
		stepErr = fab.Step(64)
	}
	require.ErrorIs(t, stepErr, sim.ErrDMAFault)
	n, first := hs[0].dev.DMAFaults()
	assert.Equal(t, uint64(1), n)
	assert.Equal(t, sim.DMAFault{IOVA: unmapped, Len: 100, Cycle: first.Cycle}, first)
	got := collect(t, fab, 20000, map[*nic.QP]int{qps[0]: 1})
	assert.Equal(t, regs.CQEStatusDMAError, got[qps[0]][0].Status)
	assert.Equal(t, uint64(7), got[qps[0]][0].WRID)
}

package nic_test

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sanoffload/san/driver/nic"
	"github.com/sanoffload/san/driver/regs"
	"github.com/sanoffload/san/hw/sim"
	"github.com/sanoffload/san/hw/wire"
)

// TestCableBetweenClocks: two simulated NICs, each on its own real-time clock (as in two
// processes), joined by a cable of real UDP sockets on loopback (one frame per datagram, QEMU's
// -netdev dgram convention). The caller resolves the listener by ARP over the cable, connects
// through both connection managers, a message goes each way, and the caller disconnects; the
// cable's pcap holds the ARP exchange and the RoCEv2 frames, each decoding whole.
func TestCableBetweenClocks(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), safety)
	defer cancel()
	var conns [2]net.PacketConn
	for i := range conns {
		c, err := net.ListenPacket("udp4", "127.0.0.1:0")
		require.NoError(t, err)
		conns[i] = c
	}
	var hs [2]*host
	var cables [2]*sim.Cable
	var pcap bytes.Buffer
	for i := range hs {
		dev, err := sim.Open(sim.Config{Clock: sim.RealTime, HostMemory: 16 << 20})
		require.NoError(t, err)
		t.Cleanup(func() { assert.NoError(t, dev.Close()) })
		o := sim.CableOptions{}
		if i == 0 {
			o.Pcap = &pcap
		}
		cables[i], err = sim.Plug(dev, conns[i], conns[1-i].LocalAddr(), o)
		require.NoError(t, err)
		n, err := nic.Open(dev)
		require.NoError(t, err)
		hs[i] = &host{dev: dev, nic: n, mac: net.HardwareAddr{0x02, 0, 0, 0, 0x0c, byte(i + 1)},
			ip: netip.AddrFrom4([4]byte{127, 77, 0, byte(i + 1)})}
		require.NoError(t, n.SetAddress(hs[i].mac, hs[i].ip))
		require.NoError(t, n.SetPMTU(1024))
		require.NoError(t, n.Enable(true))
	}
	_, err := sim.Plug(hs[0].dev, conns[0], conns[1].LocalAddr(), sim.CableOptions{})
	assert.ErrorIs(t, err, sim.ErrCableInUse)

	// Real time: response timeouts of rdma_cm's order, not the deterministic tests' 65 us.
	cfg := simCM
	cfg.ResponseTimeout = 16
	var cms [2]*nic.CM
	for i, h := range hs {
		cm, err := h.nic.OpenCM(cfg)
		require.NoError(t, err)
		t.Cleanup(func() { _ = cm.Close() })
		cms[i] = cm
		_, err = h.nic.OpenResolver(simResolver)
		require.NoError(t, err)
	}
	require.NoError(t, cms[1].Listen(8000, 4))
	qa, err := hs[0].nic.NewQP(nic.QPConfig{Vector: 3})
	require.NoError(t, err)
	ida, err := cms[0].Connect(ctx, qa, nic.ConnectParams{Dst: hs[1].ip, Port: 8000, SrcPort: 41000,
		UDPSource: 0xC100, StartPSN: 0x1234, Transport: nic.DefaultTransport, Data: []byte("hello")})
	require.NoError(t, err)
	req, err := cms[1].Wait(ctx)
	require.NoError(t, err)
	require.Equal(t, regs.CMEventRequest, req.Type)
	assert.Equal(t, []byte("hello"), req.Data[:5])
	qb, err := hs[1].nic.NewQP(nic.QPConfig{Vector: 3})
	require.NoError(t, err)
	require.NoError(t, cms[1].Accept(req.Conn, qb, nic.AcceptParams{UDPSource: 0xC200, StartPSN: 0x4321,
		Transport: nic.DefaultTransport}))
	for i := range cms {
		ev, err := cms[i].Wait(ctx)
		require.NoError(t, err)
		require.Equal(t, regs.CMEventEstablished, ev.Type, "host %d", i)
	}

	msgs := [2][]byte{pattern(21, 3000), pattern(22, 700)}
	qs := [2]*nic.QP{qa, qb}
	var dsts [2][]byte
	for i, h := range hs {
		src, dst := alloc(t, h, 4096), alloc(t, h, 4096)
		copy(src.Bytes, msgs[i])
		require.NoError(t, qs[i].PostRecv(nic.RecvWR{WRID: 1, Addr: dst.IOVA, Length: 4096}))
		require.NoError(t, qs[i].PostSend(nic.SendWR{WRID: 2, Addr: src.IOVA, Length: uint32(len(msgs[i])), Signaled: true}))
		dsts[i] = dst.Bytes
	}
	for i := range qs {
		cs, err := waitCQ(ctx, qs[i], 2)
		require.NoError(t, err)
		for _, c := range cs {
			require.Equal(t, regs.CQEStatusOk, c.Status, "host %d: %+v", i, c)
		}
		assert.Equal(t, msgs[1-i], dsts[i][:len(msgs[1-i])], "host %d received its peer's message", i)
	}
	require.NoError(t, cms[0].Disconnect(ida, nil))
	ev, err := cms[1].Wait(ctx)
	require.NoError(t, err)
	assert.Equal(t, regs.CMEventDisconnectRequest, ev.Type)
	ev, err = cms[0].Wait(ctx)
	require.NoError(t, err)
	assert.Equal(t, regs.CMEventDisconnected, ev.Type)

	for i, c := range cables {
		cnt := c.Counts()
		assert.NotZero(t, cnt.Sent, "cable %d", i)
		assert.NotZero(t, cnt.Received, "cable %d", i)
		assert.Zero(t, cnt.Foreign, "cable %d", i)
		t.Logf("cable %d: %+v", i, cnt)
	}
	require.NoError(t, cables[0].Close())
	require.NoError(t, cables[0].Close(), "closing twice")

	// The pcap: every frame decodes, an ARP exchange and RoCEv2 frames among them.
	pkts, err := wire.ReadPcap(bytes.NewReader(pcap.Bytes()))
	require.NoError(t, err)
	var arps, roce int
	for _, p := range pkts {
		if _, err := wire.DecodeARP(p.Data); err == nil {
			arps++
			continue
		}
		_, err := wire.ParseOptions{PMTU: 1024}.Parse(p.Data)
		require.NoError(t, err, "frame %x", p.Data)
		roce++
	}
	assert.GreaterOrEqual(t, arps, 2, "request and reply")
	assert.Greater(t, roce, 6, "CM MADs and data")
}

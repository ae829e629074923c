package nic_test

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sanoffload/san/driver/nic"
	"github.com/sanoffload/san/driver/regs"
	"github.com/sanoffload/san/hw/sim"
	"github.com/sanoffload/san/hw/wire"
)

// TestAddressFilterOnSegment: three NICs on one segment, whose connection numbers collide. A
// and B talk over connection 5; C has three connections that all send to QP N_QP + 5: one to
// B's MAC and IP (B must drop it as not from its connection's peer), one to A's (likewise), one
// to B's MAC with an IP nobody has (B must drop it as not to its address). The hub carries
// every frame to every NIC, so each also sees frames to others' MACs. Every frame any NIC sent
// is judged by the wire reference for each receiver; each NIC's drop counters must equal that
// exactly (DST_MAC, DST_IP, PEER_IP, nothing else), A and B's messages arrive byte-exact with
// exactly their completions, and C's sends, never acknowledged, end in RETRY_EXCEEDED.
func TestAddressFilterOnSegment(t *testing.T) {
	fab, hs := newSegment(t, pairConfig{latency: 10}, 3)
	a, b, c := hs[0], hs[1], hs[2]
	for _, h := range hs {
		require.NoError(t, h.dev.Capture(true))
	}
	const num = 5
	create := func(h *host, n int) *nic.QP {
		q, err := h.nic.CreateQP(n, nic.QPConfig{})
		require.NoError(t, err)
		return q
	}
	qa, qb := create(a, num), create(b, num)
	require.NoError(t, qa.LoadForTest(nic.Peer{QPN: qb.QPN(), MAC: b.mac, IP: b.ip, UDPSource: 0xC005, Transport: nic.DefaultTransport}))
	require.NoError(t, qb.LoadForTest(nic.Peer{QPN: qa.QPN(), MAC: a.mac, IP: a.ip, UDPSource: 0xC005, Transport: nic.DefaultTransport}))
	// C's connections: one retry, a 5120-cycle timeout (4.096 us x 2^3), so they give up soon.
	quick := nic.Transport{RetryCount: 1, Timeout: 3, MinRNRTimer: 1}
	nobody := netip.AddrFrom4([4]byte{10, 0, 0, 99})
	var qcs []*nic.QP
	for i, p := range []nic.Peer{
		{QPN: qb.QPN(), MAC: b.mac, IP: b.ip},   // B: PEER_IP
		{QPN: qa.QPN(), MAC: a.mac, IP: a.ip},   // A: PEER_IP
		{QPN: qb.QPN(), MAC: b.mac, IP: nobody}, // B: DST_IP
	} {
		q := create(c, num+i)
		p.UDPSource, p.Transport = 0xCC00, quick
		require.NoError(t, q.LoadForTest(p))
		qcs = append(qcs, q)
	}

	// A and B: messages both ways; C: a message on each connection, at the same time.
	sizes := []int{0, 1, 700, 3000, 5000}
	type sent struct {
		src, dst []byte
	}
	var msgs [2][]sent
	for dir, pair := range [][2]*host{{a, b}, {b, a}} {
		from, to := []*nic.QP{qa, qb}[dir], []*nic.QP{qb, qa}[dir]
		for i, n := range sizes {
			src, dst := alloc(t, pair[0], max(n, 1)), alloc(t, pair[1], max(n, 1))
			copy(src.Bytes, pattern(int64(10*dir+i), len(src.Bytes)))
			require.NoError(t, to.PostRecv(nic.RecvWR{WRID: uint64(100 + i), Addr: dst.IOVA, Length: uint32(len(dst.Bytes))}))
			require.NoError(t, from.PostSend(nic.SendWR{WRID: uint64(200 + i), Addr: src.IOVA, Length: uint32(n), Signaled: true}))
			msgs[dir] = append(msgs[dir], sent{src.Bytes[:n], dst.Bytes[:n]})
		}
	}
	for i, q := range qcs {
		src := alloc(t, c, 2000)
		copy(src.Bytes, pattern(int64(50+i), 2000))
		require.NoError(t, q.PostSend(nic.SendWR{WRID: uint64(300 + i), Addr: src.IOVA, Length: 2000, Signaled: true}))
	}
	want := map[*nic.QP]int{qa: 2 * len(sizes), qb: 2 * len(sizes)}
	for _, q := range qcs {
		want[q] = 1
	}
	got := collect(t, fab, 200000, want)
	for dir, q := range []*nic.QP{qb, qa} {
		recv := 0
		for _, cq := range got[q] {
			require.Equal(t, regs.CQEStatusOk, cq.Status, "%+v", cq)
			if cq.Opcode == regs.CQEOpcodeRecv {
				m := msgs[dir][cq.WRID-100]
				assert.Equal(t, uint32(len(m.src)), cq.ByteLen)
				assert.True(t, bytes.Equal(m.src, m.dst), "direction %d message %d byte-exact", dir, cq.WRID-100)
				recv++
			}
		}
		assert.Equal(t, len(sizes), recv, "direction %d: every message received once", dir)
	}
	for _, q := range qcs {
		assert.Equal(t, regs.CQEStatusRetryExceeded, got[q][0].Status, "C's connection %d was never answered", q.Num())
	}
	require.NoError(t, fab.Step(20000))
	for _, q := range []*nic.QP{qa, qb} {
		cs, err := q.Poll(8)
		require.NoError(t, err)
		assert.Empty(t, cs, "nothing more delivered to connection %d", q.Num())
	}

	// What each NIC must have dropped: every frame the others sent, judged for it.
	var frames [3][]sim.Frame
	for i, h := range hs {
		fs, err := h.dev.Transmitted()
		require.NoError(t, err)
		frames[i] = fs
	}
	peerOf := map[int]netip.Addr{0: b.ip, 1: a.ip} // the conn-5 peer of A and B
	for x, h := range hs {
		local := wire.ParseOptions{Local: &wire.Station{MAC: [6]byte(h.mac), IP: h.ip.As4()}}
		expect := map[regs.RxDrop]uint32{}
		for y, fs := range frames {
			if y == x {
				continue
			}
			for _, f := range fs {
				fr, _, err := local.Receive(f.Bytes)
				var pe *wire.ParseError
				if errors.As(err, &pe) {
					expect[regs.RxDrop(pe.Reason)]++
					continue
				}
				require.NoError(t, err)
				require.NotNil(t, fr, "host %d: only RoCEv2 frames here", x)
				require.NotEqual(t, 2, x, "nothing is for C")
				if fr.BTH.DestQP == qa.QPN() && netip.AddrFrom4(fr.SrcIP) != peerOf[x] {
					expect[regs.RxDropPeerIP]++
				}
			}
		}
		k, err := h.nic.Counters()
		require.NoError(t, err)
		t.Logf("host %d drops %v", x, k.Drops)
		assert.Equal(t, expect, k.Drops, "host %d: its drops are exactly the reference's", x)
	}
	kb, err := b.nic.Counters()
	require.NoError(t, err)
	ka, err := a.nic.Counters()
	require.NoError(t, err)
	for _, k := range []nic.Counters{ka, kb} {
		assert.Positive(t, k.Drops[regs.RxDropPeerIP])
		assert.Positive(t, k.Drops[regs.RxDropDstMAC])
	}
	assert.Positive(t, kb.Drops[regs.RxDropDstIP])
}

package sim

import (
	"math/rand"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sanoffload/san/hw/sim/dut"
	"github.com/sanoffload/san/hw/wire"
)

// txBench drives san_tx_builder: descriptors and payload from queues, frames collected from
// the output, with random gaps and stalls.
type txBench struct {
	d            *dut.DUT
	rng          *rand.Rand
	gap, stall   int // percent of cycles with payload valid / output ready withheld
	descs        []*wire.Frame
	beats        [][]byte // payload beats of all queued frames, in order
	lasts        []bool
	frames       [][]byte
	cur          []byte
	firstBeat    uint64 // cycle of the first output beat
	lastBeatSeen uint64
}

func (b *txBench) queue(f *wire.Frame) {
	b.descs = append(b.descs, f)
	for off := 0; off < len(f.Payload); off += 8 {
		end := min(off+8, len(f.Payload))
		b.beats = append(b.beats, f.Payload[off:end])
		b.lasts = append(b.lasts, end == len(f.Payload))
	}
}

func mac48(m [6]byte) uint64 {
	var v uint64
	for _, x := range m {
		v = v<<8 | uint64(x)
	}
	return v
}

func ip32(a [4]byte) uint64 {
	return uint64(a[0])<<24 | uint64(a[1])<<16 | uint64(a[2])<<8 | uint64(a[3])
}

func (b *txBench) setDesc(f *wire.Frame) {
	d := b.d
	d.Set("s_hdr_dst_mac", mac48(f.DstMAC))
	d.Set("s_hdr_src_mac", mac48(f.SrcMAC))
	d.Set("s_hdr_src_ip", ip32(f.SrcIP))
	d.Set("s_hdr_dst_ip", ip32(f.DstIP))
	d.Set("s_hdr_ip_id", uint64(f.IPID))
	d.Set("s_hdr_udp_sport", uint64(f.SrcPort))
	d.Set("s_hdr_opcode", uint64(f.BTH.OpCode))
	d.Set("s_hdr_se", b2u(f.BTH.SE))
	d.Set("s_hdr_pkey", uint64(f.BTH.PKey))
	d.Set("s_hdr_dest_qp", uint64(f.BTH.DestQP))
	d.Set("s_hdr_ack_req", b2u(f.BTH.AckReq))
	d.Set("s_hdr_psn", uint64(f.BTH.PSN))
	d.Set("s_hdr_ext", 0)
	if f.AETH != nil {
		d.Set("s_hdr_ext", 1)
		d.Set("s_hdr_ext0", uint64(f.AETH.Syndrome)<<24|uint64(f.AETH.MSN))
	}
	if f.DETH != nil {
		d.Set("s_hdr_ext", 2)
		d.Set("s_hdr_ext0", uint64(f.DETH.QKey))
		d.Set("s_hdr_ext1", uint64(f.DETH.SrcQP))
	}
	d.Set("s_hdr_pay_len", uint64(len(f.Payload)))
}

// run clocks until every queued frame has come out, or fails after limit cycles.
func (b *txBench) run(t *testing.T, limit int) {
	t.Helper()
	want := len(b.frames) + len(b.descs)
	for i := 0; i < limit && len(b.frames) < want; i++ {
		d := b.d
		hdrValid := len(b.descs) > 0
		if hdrValid {
			b.setDesc(b.descs[0])
		}
		d.Set("s_hdr_valid", b2u(hdrValid))
		payValid := len(b.beats) > 0 && b.rng.Intn(100) >= b.gap
		if len(b.beats) > 0 {
			beat := b.beats[0]
			d.SetBytes("s_axis_pay_tdata", append(append([]byte(nil), beat...), make([]byte, 8-len(beat))...))
			d.Set("s_axis_pay_tkeep", (1<<len(beat))-1)
			d.Set("s_axis_pay_tlast", b2u(b.lasts[0]))
		}
		d.Set("s_axis_pay_tvalid", b2u(payValid))
		ready := b.rng.Intn(100) >= b.stall
		d.Set("m_axis_tx_tready", b2u(ready))
		d.Eval()
		hdrFire := hdrValid && d.Get("s_hdr_ready") == 1
		payFire := payValid && d.Get("s_axis_pay_tready") == 1
		if ready && d.Get("m_axis_tx_tvalid") == 1 {
			if b.firstBeat == 0 {
				b.firstBeat = d.Cycles()
			}
			b.lastBeatSeen = d.Cycles()
			keep := d.Get("m_axis_tx_tkeep")
			data := d.GetBytes("m_axis_tx_tdata")
			for l := 0; l < 8; l++ {
				if keep&(1<<l) != 0 {
					b.cur = append(b.cur, data[l])
				}
			}
			if d.Get("m_axis_tx_tlast") == 1 {
				b.frames = append(b.frames, b.cur)
				b.cur = nil
			}
		}
		d.Tick()
		if hdrFire {
			b.descs = b.descs[1:]
		}
		if payFire {
			b.beats, b.lasts = b.beats[1:], b.lasts[1:]
		}
	}
	require.Len(t, b.frames, want, "frames out within %d cycles", limit)
}

// randAddressed returns a frame with random addresses, IP ID and UDP source port, TTL as the
// NIC sends it, and nothing else set.
func randAddressed(rng *rand.Rand) *wire.Frame {
	f := &wire.Frame{TTL: wire.DefaultTTL, IPID: uint16(rng.Intn(1 << 16)), SrcPort: uint16(rng.Intn(1 << 16))}
	rng.Read(f.DstMAC[:])
	rng.Read(f.SrcMAC[:])
	rng.Read(f.SrcIP[:])
	rng.Read(f.DstIP[:])
	return f
}

func randFrame(rng *rand.Rand) *wire.Frame {
	f := randAddressed(rng)
	f.BTH = wire.BTHFields{PKey: wire.DefaultPKey, DestQP: uint32(rng.Intn(1 << 24)), PSN: uint32(rng.Intn(1 << 24)),
		AckReq: rng.Intn(2) == 0, SE: rng.Intn(4) == 0}
	pmtu := 1024
	switch rng.Intn(6) {
	case 0: // ACK / NAK
		f.BTH.OpCode = wire.OpRCAck
		f.AETH = &wire.AETHFields{Syndrome: uint8(rng.Intn(256)), MSN: uint32(rng.Intn(1 << 24))}
	case 1: // UD SEND_ONLY to QP1, as CM MADs go
		f.BTH.OpCode = wire.OpUDSendOnly
		f.DETH = &wire.DETHFields{QKey: wire.GSIQKey, SrcQP: 1}
		f.Payload = make([]byte, 256)
	case 2:
		f.BTH.OpCode = wire.OpRCSendFirst
		f.Payload = make([]byte, pmtu)
	default:
		f.BTH.OpCode = []uint8{wire.OpRCSendOnly, wire.OpRCSendLast}[rng.Intn(2)]
		sizes := []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 63, 64, 65, pmtu - 1, pmtu, rng.Intn(pmtu + 1)}
		f.Payload = make([]byte, sizes[rng.Intn(len(sizes))])
	}
	rng.Read(f.Payload)
	return f
}

// TestTxBuilderMatchesReference builds random frames of every kind with random payload gaps and
// output stalls and compares them byte for byte with hw/wire's Marshal.
func TestTxBuilderMatchesReference(t *testing.T) {
	seed := int64(0x7B)
	t.Logf("seed %d", seed)
	for _, bp := range []struct {
		name       string
		gap, stall int
	}{{"streaming", 0, 0}, {"gaps", 40, 0}, {"stalls", 0, 40}, {"both", 30, 30}} {
		t.Run(bp.name, func(t *testing.T) {
			rng := rand.New(rand.NewSource(seed))
			b := &txBench{d: dut.New(t, "san_tx_builder"), rng: rng, gap: bp.gap, stall: bp.stall}
			var want []*wire.Frame
			for i := 0; i < 150; i++ {
				f := randFrame(rng)
				want = append(want, f)
				b.queue(f)
			}
			b.run(t, 200000)
			for i, f := range want {
				exp := f.Marshal()
				require.Equal(t, exp, b.frames[i], "frame %d (%s, %d payload bytes)", i, wire.OpcodeName(f.BTH.OpCode), len(f.Payload))
			}
		})
	}
}

// TestTxBuilderNoBubble streams 1 KiB SEND_ONLY frames back to back with nothing withheld: the
// builder must emit exactly ceil(frame/8) beats per frame with no idle cycle between frames.
func TestTxBuilderNoBubble(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	b := &txBench{d: dut.New(t, "san_tx_builder"), rng: rng}
	const n = 20
	beats := uint64(0)
	for i := 0; i < n; i++ {
		f := randFrame(rng)
		f.BTH.OpCode, f.AETH, f.DETH = wire.OpRCSendOnly, nil, nil
		f.Payload = make([]byte, 1024)
		b.queue(f)
		beats += uint64((f.Len() + 7) / 8)
	}
	b.run(t, 10000)
	assert.Equal(t, beats, b.lastBeatSeen-b.firstBeat+1, "cycles from first to last beat of %d frames", n)
}

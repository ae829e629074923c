package sim

import (
	"encoding/binary"
	"errors"
	"math/rand"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sanoffload/san/driver/regs"
	"github.com/sanoffload/san/hw/sim/dut"
	"github.com/sanoffload/san/hw/wire"
)

// san_rx_parser's defaults, and the contract's drop reasons beyond hw/wire's DropReason values.
const (
	rxNQP         = 256
	rxDescDepth   = 32
	rxMaxFrame    = 14 + 20 + 8 + 12 + 8 + 4096 + 3 + 4
	rxLatency     = 2 // cycles from a frame's last beat to its drop pulse or descriptor
	rxDropMACErr  = uint8(regs.RxDropMACError)
	rxDropQPRange = uint8(regs.RxDropQPRange)
	rxDropNoRoom  = uint8(regs.RxDropNoRoom)
	rxDropOversz  = uint8(regs.RxDropOversize)
)

// rxStation is the parser's own addresses (cfg_mac, cfg_ip) in the block tests.
var rxStation = &wire.Station{MAC: [6]byte{0x02, 0x5A, 0x4E, 0x00, 0x00, 0x02}, IP: [4]byte{10, 9, 0, 2}}

// rxIn is one frame sent to the parser, with what the reference says must become of it.
type rxIn struct {
	b      []byte
	tuser  bool
	what   string      // how the test made it
	reason uint8       // expected drop reason; 0: delivered
	f      *wire.Frame // Receive's frame, when delivered as RoCEv2
	arp    *wire.ARP   // Receive's ARP, when delivered as ARP
	last   uint64      // cycle of its last beat
}

// rxExpect is the reference: the MAC error first, then Oversize, then hw/wire's Receive for the
// station rxStation, then the QP range.
func rxExpect(b []byte, tuser bool, pmtu int) (uint8, *wire.Frame, *wire.ARP) {
	if tuser {
		return rxDropMACErr, nil, nil
	}
	if len(b) > rxMaxFrame {
		return rxDropOversz, nil, nil
	}
	f, a, err := wire.ParseOptions{PMTU: pmtu, Local: rxStation}.Receive(b)
	if err != nil {
		var pe *wire.ParseError
		if !errors.As(err, &pe) {
			panic(err)
		}
		return uint8(pe.Reason), nil, nil
	}
	if a != nil {
		return 0, nil, a
	}
	// Connection c is QP rxNQP + c on the wire; QP 1 is the CM's.
	if (f.BTH.DestQP < rxNQP || f.BTH.DestQP >= 2*rxNQP) && f.BTH.DestQP != wire.GSIQP {
		return rxDropQPRange, nil, nil
	}
	return 0, f, nil
}

// rxARPOut is one ARP frame as the parser hands it to the ARP block.
type rxARPOut struct {
	Reply bool
	SHA   uint64
	SPA   uint64
}

func rxWantARP(a *wire.ARP) rxARPOut {
	return rxARPOut{Reply: a.Op == wire.ARPOpReply, SHA: mac48(a.SenderMAC), SPA: ip32(a.SenderIP)}
}

// rxDesc is one header descriptor as the parser gives it, or as the reference expects it.
type rxDesc struct {
	Opcode   uint8
	SE       bool
	PadCnt   uint8
	DestQP   uint32
	AckReq   bool
	PSN      uint32
	SrcMAC   uint64
	SrcIP    uint64
	DstIP    uint64
	SrcPort  uint16
	Syndrome uint8
	MSN      uint32
	QKey     uint32
	SrcQP    uint32
	PayLen   int
}

func rxWantDesc(f *wire.Frame) rxDesc {
	d := rxDesc{
		Opcode: f.BTH.OpCode, SE: f.BTH.SE, PadCnt: f.BTH.PadCnt, DestQP: f.BTH.DestQP,
		AckReq: f.BTH.AckReq, PSN: f.BTH.PSN, SrcMAC: mac48(f.SrcMAC), SrcIP: ip32(f.SrcIP),
		DstIP: ip32(f.DstIP), SrcPort: f.SrcPort, PayLen: len(f.Payload),
	}
	if f.AETH != nil {
		d.Syndrome, d.MSN = f.AETH.Syndrome, f.AETH.MSN
	}
	if f.DETH != nil {
		d.QKey, d.SrcQP = f.DETH.QKey, f.DETH.SrcQP
	}
	return d
}

type rxDrop struct {
	cycle  uint64
	reason uint8
}

type rxPay struct {
	data  []byte
	first uint64 // cycle of its first beat
	end   uint64 // cycle of its last beat
}

// rxBench drives san_rx_parser: frames in at line rate with random idle gaps (and, if asked,
// gaps inside frames, which a MAC may have), random stalls of the descriptor and payload
// consumers, and everything that comes out collected with its cycle.
type rxBench struct {
	d    *dut.DUT
	rng  *rand.Rand
	pmtu int
	w    int // bytes per beat: DATA_WIDTH/8 of the model (64 bits as make duts builds it)

	idle     int // percent of frames preceded by 1..8 idle cycles
	midGap   int // percent of a frame's later beats with tvalid low
	hdrStall int // percent of cycles with m_hdr_ready low
	payStall int // percent of cycles with m_axis_pay_tready low
	arpStall int // percent of cycles with m_arp_ready low
	// If set, each ready holds its value for runs of 1..runs cycles (with the stall
	// percentages above deciding each run), so the buffer fills and empties mid-frame.
	runs               int
	hdrRun, payRun     int
	hdrReady, payReady bool

	in       []*rxIn
	next     int   // next frame of in to send
	sending  *rxIn // frame being sent
	off      int   // its bytes sent so far
	idleLeft int

	drops   []rxDrop
	descs   []rxDesc
	descCyc []uint64
	pays    []rxPay
	arps    []rxARPOut
	arpCyc  []uint64
	cur     []byte
	curAt   uint64
}

func newRxBench(t *testing.T, rng *rand.Rand, pmtu int) *rxBench {
	b := &rxBench{d: dut.New(t, "san_rx_parser"), rng: rng, pmtu: pmtu}
	for _, p := range b.d.Ports() {
		if p.Name == "s_axis_rx_tdata" {
			b.w = p.Width / 8
		}
	}
	log2 := 0
	for 1<<log2 < pmtu {
		log2++
	}
	b.d.Set("pmtu_log2", uint64(log2))
	b.d.Set("cfg_mac", mac48(rxStation.MAC))
	b.d.Set("cfg_ip", ip32(rxStation.IP))
	return b
}

// add queues a frame and works out its expected outcome.
func (b *rxBench) add(frame []byte, tuser bool, what string) {
	r, f, a := rxExpect(frame, tuser, b.pmtu)
	b.in = append(b.in, &rxIn{b: frame, tuser: tuser, what: what, reason: r, f: f, arp: a})
}

func (b *rxBench) readDesc() rxDesc {
	d := b.d
	return rxDesc{
		Opcode:   uint8(d.Get("m_hdr_opcode")),
		SE:       d.Get("m_hdr_se") == 1,
		PadCnt:   uint8(d.Get("m_hdr_pad_cnt")),
		DestQP:   uint32(d.Get("m_hdr_dest_qp")),
		AckReq:   d.Get("m_hdr_ack_req") == 1,
		PSN:      uint32(d.Get("m_hdr_psn")),
		SrcMAC:   d.Get("m_hdr_src_mac"),
		SrcIP:    d.Get("m_hdr_src_ip"),
		DstIP:    d.Get("m_hdr_dst_ip"),
		SrcPort:  uint16(d.Get("m_hdr_udp_sport")),
		Syndrome: uint8(d.Get("m_hdr_aeth_syndrome")),
		MSN:      uint32(d.Get("m_hdr_aeth_msn")),
		QKey:     uint32(d.Get("m_hdr_deth_qkey")),
		SrcQP:    uint32(d.Get("m_hdr_deth_src_qp")),
		PayLen:   int(d.Get("m_hdr_pay_len")),
	}
}

// step runs one cycle.
func (b *rxBench) step(t *testing.T) {
	d := b.d
	if b.sending == nil && b.next < len(b.in) {
		if b.idleLeft > 0 {
			b.idleLeft--
		} else {
			b.sending, b.off = b.in[b.next], 0
			b.next++
		}
	}
	valid := b.sending != nil && (b.off == 0 || b.rng.Intn(100) >= b.midGap)
	last := false
	if valid {
		fr := b.sending
		n := min(b.w, len(fr.b)-b.off)
		last = b.off+n == len(fr.b)
		beat := make([]byte, b.w)
		copy(beat, fr.b[b.off:b.off+n])
		d.SetBytes("s_axis_rx_tdata", beat)
		d.Set("s_axis_rx_tkeep", uint64(1)<<n-1)
		d.Set("s_axis_rx_tlast", b2u(last))
		d.Set("s_axis_rx_tuser", b2u(last && fr.tuser))
		b.off += n
	}
	d.Set("s_axis_rx_tvalid", b2u(valid))
	hdrReady := b.rng.Intn(100) >= b.hdrStall
	payReady := b.rng.Intn(100) >= b.payStall
	if b.runs > 0 {
		if b.hdrRun == 0 {
			b.hdrReady, b.hdrRun = hdrReady, 1+b.rng.Intn(b.runs)
		}
		if b.payRun == 0 {
			b.payReady, b.payRun = payReady, 1+b.rng.Intn(b.runs)
		}
		b.hdrRun--
		b.payRun--
		hdrReady, payReady = b.hdrReady, b.payReady
	}
	arpReady := b.rng.Intn(100) >= b.arpStall
	d.Set("m_hdr_ready", b2u(hdrReady))
	d.Set("m_axis_pay_tready", b2u(payReady))
	d.Set("m_arp_ready", b2u(arpReady))
	d.Eval()
	cyc := d.Cycles()
	require.EqualValues(t, 1, d.Get("s_axis_rx_tready"), "tready is always 1")

	if d.Get("m_drop_valid") == 1 {
		b.drops = append(b.drops, rxDrop{cycle: cyc, reason: uint8(d.Get("m_drop_reason"))})
	}
	if hdrReady && d.Get("m_hdr_valid") == 1 {
		b.descs = append(b.descs, b.readDesc())
		b.descCyc = append(b.descCyc, cyc)
	}
	if arpReady && d.Get("m_arp_valid") == 1 {
		b.arps = append(b.arps, rxARPOut{Reply: d.Get("m_arp_reply") == 1, SHA: d.Get("m_arp_sha"), SPA: d.Get("m_arp_spa")})
		b.arpCyc = append(b.arpCyc, cyc)
	}
	if payReady && d.Get("m_axis_pay_tvalid") == 1 {
		keep := d.Get("m_axis_pay_tkeep")
		data := d.GetBytes("m_axis_pay_tdata")
		tlast := d.Get("m_axis_pay_tlast") == 1
		n := 0
		for n < b.w && keep&(uint64(1)<<n) != 0 {
			n++
		}
		require.Equal(t, uint64(1)<<n-1, keep, "payload tkeep contiguous from lane 0")
		if !tlast {
			require.Equal(t, b.w, n, "payload beats are full except the last")
		}
		for l := n; l < b.w; l++ {
			require.Zero(t, data[l], "payload lanes past tkeep are zero")
		}
		if len(b.cur) == 0 {
			b.curAt = cyc
		}
		b.cur = append(b.cur, data[:n]...)
		if tlast {
			b.pays = append(b.pays, rxPay{data: b.cur, first: b.curAt, end: cyc})
			b.cur = nil
		}
	}
	d.Tick()

	if valid && last {
		b.sending.last = cyc
		b.sending = nil
		if b.rng.Intn(100) < b.idle {
			b.idleLeft = 1 + b.rng.Intn(8)
		}
	}
}

// run sends every queued frame, then drains the outputs with the consumers always ready. The
// whole run must end within limit cycles.
func (b *rxBench) run(t *testing.T, limit int) {
	t.Helper()
	start := b.d.Cycles()
	for b.next < len(b.in) || b.sending != nil {
		b.step(t)
		require.Less(t, b.d.Cycles()-start, uint64(limit), "frames sent within %d cycles", limit)
	}
	b.hdrStall, b.payStall, b.arpStall, b.runs = 0, 0, 0, 0
	quiet := 0
	for quiet < 2*rxLatency+4 {
		b.step(t)
		require.Less(t, b.d.Cycles()-start, uint64(limit), "outputs drained within %d cycles", limit)
		if b.d.Get("m_hdr_valid") == 0 && b.d.Get("m_axis_pay_tvalid") == 0 && b.d.Get("m_arp_valid") == 0 {
			quiet++
		} else {
			quiet = 0
		}
	}
	require.Empty(t, b.cur, "no payload left half-delivered")
}

// check matches what came out against the reference: every frame has exactly one outcome, a
// drop pulse rxLatency cycles after its last beat with the expected reason, or (when the
// reference delivers it) its descriptor and payload, or its ARP output, in order. NoRoom drops
// of frames the
// reference delivers are allowed only if allowNoRoom; it returns the count of each drop reason.
func (b *rxBench) check(t *testing.T, allowNoRoom bool) map[uint8]int {
	t.Helper()
	byLast := map[uint64]int{}
	for i, fr := range b.in {
		byLast[fr.last] = i
	}
	dropped := map[int]uint8{}
	counts := map[uint8]int{}
	for _, dr := range b.drops {
		i, ok := byLast[dr.cycle-rxLatency]
		require.True(t, ok, "drop pulse (reason %d) at cycle %d is %d cycles after no frame's last beat", dr.reason, dr.cycle, rxLatency)
		dropped[i] = dr.reason
		counts[dr.reason]++
	}
	nd, np, na := 0, 0, 0
	for i, fr := range b.in {
		got, isDrop := dropped[i]
		if fr.reason != 0 {
			require.True(t, isDrop, "frame %d (%s, %d bytes, tuser %v): want drop reason %d, not delivered", i, fr.what, len(fr.b), fr.tuser, fr.reason)
			require.Equal(t, fr.reason, got, "frame %d (%s, %d bytes, tuser %v): drop reason", i, fr.what, len(fr.b), fr.tuser)
			continue
		}
		if isDrop {
			require.True(t, allowNoRoom && got == rxDropNoRoom, "frame %d (%s, %d bytes): good frame dropped with reason %d", i, fr.what, len(fr.b), got)
			continue
		}
		if fr.arp != nil {
			require.Less(t, na, len(b.arps), "frame %d (%s): ARP output missing", i, fr.what)
			require.Equal(t, rxWantARP(fr.arp), b.arps[na], "frame %d (%s): ARP %d", i, fr.what, na)
			na++
			continue
		}
		require.Less(t, nd, len(b.descs), "frame %d (%s): descriptor missing", i, fr.what)
		require.Equal(t, rxWantDesc(fr.f), b.descs[nd], "frame %d (%s): descriptor %d", i, fr.what, nd)
		require.GreaterOrEqual(t, b.descCyc[nd], fr.last+rxLatency, "frame %d: descriptor before the frame was judged", i)
		nd++
		if len(fr.f.Payload) > 0 {
			require.Less(t, np, len(b.pays), "frame %d (%s): payload missing", i, fr.what)
			require.Equal(t, fr.f.Payload, b.pays[np].data, "frame %d (%s): payload %d", i, fr.what, np)
			np++
		}
	}
	require.Len(t, b.descs, nd, "descriptors only for delivered frames")
	require.Len(t, b.pays, np, "payloads only for delivered frames with payload")
	require.Len(t, b.arps, na, "ARP outputs only for delivered ARP frames")
	require.Len(t, dropped, len(b.drops), "at most one drop pulse per frame")
	return counts
}

// rxGood returns a frame the reference accepts (to one of the rxNQP connections): opcode op with n payload
// bytes, and the extension header op needs.
func rxGood(rng *rand.Rand, op uint8, n int) *wire.Frame {
	f := randAddressed(rng)
	f.DstMAC, f.DstIP = rxStation.MAC, rxStation.IP
	f.TOS = uint8(rng.Intn(256)) // not covered by the ICRC, ignored by the receiver
	f.BTH = wire.BTHFields{OpCode: op, PKey: wire.DefaultPKey, DestQP: uint32(rxNQP + rng.Intn(rxNQP)),
		PSN: uint32(rng.Intn(1 << 24)), AckReq: rng.Intn(2) == 0, SE: rng.Intn(4) == 0,
		MigReq: rng.Intn(4) == 0, FECN: rng.Intn(8) == 0, BECN: rng.Intn(8) == 0}
	switch op {
	case wire.OpRCAck:
		syn := []uint8{wire.SyndromeACK, wire.SyndromeNAKPSNSeqError, wire.SyndromeNAKInvalidRequest,
			wire.RNRNAKSyndrome(uint8(rng.Intn(32))), uint8(rng.Intn(256))}
		f.AETH = &wire.AETHFields{Syndrome: syn[rng.Intn(len(syn))], MSN: uint32(rng.Intn(1 << 24))}
	case wire.OpUDSendOnly:
		f.DETH = &wire.DETHFields{QKey: wire.GSIQKey, SrcQP: wire.GSIQP}
		if rng.Intn(2) == 0 {
			f.DETH = &wire.DETHFields{QKey: rng.Uint32(), SrcQP: uint32(rng.Intn(1 << 24))}
		}
		f.BTH.DestQP = wire.GSIQP
	}
	if n > 0 {
		f.Payload = make([]byte, n)
		rng.Read(f.Payload)
	}
	return f
}

// rxRandomGood picks a good frame of a random kind and size.
func rxRandomGood(rng *rand.Rand, pmtu int) *wire.Frame {
	switch rng.Intn(8) {
	case 0:
		return rxGood(rng, wire.OpRCAck, 0)
	case 1:
		return rxGood(rng, wire.OpUDSendOnly, []int{256, rng.Intn(pmtu + 1)}[rng.Intn(2)])
	case 2:
		return rxGood(rng, []uint8{wire.OpRCSendFirst, wire.OpRCSendMiddle}[rng.Intn(2)], pmtu)
	}
	op := []uint8{wire.OpRCSendOnly, wire.OpRCSendLast}[rng.Intn(2)]
	sizes := []int{1, 2, 3, 4, 5, 7, 8, 9, 63, 64, 65, pmtu - 1, pmtu, 1 + rng.Intn(pmtu), 1 + rng.Intn(64)}
	n := sizes[rng.Intn(len(sizes))]
	if op == wire.OpRCSendOnly && rng.Intn(8) == 0 {
		n = 0
	}
	return rxGood(rng, op, n)
}

// rxFixICRC stores the right ICRC for the datagram the IPv4 total length announces (or for the
// whole frame if that is out of range), so that mutations reach the checks after the ICRC.
func rxFixICRC(b []byte) {
	if len(b) < wire.MinFrameLen {
		return
	}
	end := len(b)
	if e := wire.IPv4Offset + int(binary.BigEndian.Uint16(b[16:])); e >= wire.MinFrameLen && e <= len(b) {
		end = e
	}
	binary.LittleEndian.PutUint32(b[end-wire.ICRCLen:end], wire.ICRC(b[:end]))
}

func rxGarbage(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	rng.Read(b)
	return b
}

// rxMutate changes a good frame in one of many ways; what names the way.
func rxMutate(rng *rand.Rand, g []byte) (b []byte, what string) {
	b = append([]byte(nil), g...)
	put16 := func(at int, v uint16) { binary.BigEndian.PutUint16(b[at:], v) }
	get16 := func(at int) uint16 { return binary.BigEndian.Uint16(b[at:]) }
	delta := func() uint16 { return uint16(rng.Intn(17) - 8) }
	switch rng.Intn(18) {
	case 0:
		return b[:1+rng.Intn(len(b)-1)], "truncated"
	case 1:
		b[rng.Intn(len(b))] ^= byte(1 + rng.Intn(255))
		what = "byte flip"
	case 2:
		b[rng.Intn(len(b))] ^= 1 << rng.Intn(8)
		what = "bit flip"
	case 3:
		put16(12, []uint16{0x86DD, 0x0806, 0x8100, uint16(rng.Intn(1 << 16))}[rng.Intn(4)])
		what = "EtherType"
	case 4:
		b[14] = []byte{0x46, 0x65, 0x44, 0x55, byte(rng.Intn(256))}[rng.Intn(5)]
		what = "IP version/IHL"
	case 5:
		if rng.Intn(3) == 0 {
			put16(16, uint16(rng.Intn(1<<16)))
		} else {
			put16(16, get16(16)+delta())
		}
		what = "IPv4 total length"
	case 6:
		b[23] = []byte{6, 1, byte(rng.Intn(256))}[rng.Intn(3)]
		what = "IP protocol"
	case 7:
		put16(36, []uint16{4790, 4792, 53, uint16(rng.Intn(1 << 16))}[rng.Intn(4)])
		what = "UDP port"
	case 8:
		put16(38, get16(38)+delta())
		what = "UDP length"
	case 9:
		b[43] |= byte(1 + rng.Intn(15))
		what = "TVer"
	case 10:
		put16(44, []uint16{0x7FFF, 0x8001, 0, uint16(rng.Intn(1 << 16))}[rng.Intn(4)])
		what = "P_Key"
	case 11:
		b[42] = []byte{0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x0A, 0x11, 0x10, 0x12, 0x64, 0x65,
			byte(rng.Intn(256))}[rng.Intn(14)]
		what = "opcode"
	case 12:
		b[43] = b[43]&^0x30 | byte(rng.Intn(4))<<4
		what = "pad count"
	case 13:
		b = append(b, rxGarbage(rng, 1+rng.Intn(12))...)
		what = "bytes after the datagram"
	case 14:
		// Variant bytes: TOS, TTL, IPv4 checksum, UDP checksum, BTH byte 4. The frame stays good.
		b[[]int{15, 22, 24, 25, 40, 41, 46}[rng.Intn(7)]] ^= byte(1 + rng.Intn(255))
		return b, "variant byte flip"
	case 15:
		// The address filter: another MAC (one bit off, broadcast, a group) or IPv4 address.
		if rng.Intn(2) == 0 {
			copy(b[0:6], [][]byte{{b[0], b[1], b[2], b[3], b[4], b[5] ^ 1}, wire.BroadcastMAC[:],
				{0x01, 0x00, 0x5E, 0, 0, 1}, {b[0], b[1] ^ 0x80, b[2], b[3], b[4], b[5]}}[rng.Intn(4)])
			what = "destination MAC"
		} else {
			b[30+rng.Intn(4)] ^= byte(1 + rng.Intn(255))
			what = "destination IP"
		}
	case 16:
		// Total and UDP lengths changed together.
		d := delta()
		put16(16, get16(16)+d)
		put16(38, get16(38)+d)
		what = "IPv4 and UDP lengths"
	default:
		b = b[:len(b)-rng.Intn(8)]
		put16(16, uint16(len(b)-14))
		put16(38, uint16(len(b)-34))
		what = "shortened with lengths fixed"
	}
	if rng.Intn(2) == 0 {
		rxFixICRC(b)
		what += ", ICRC fixed"
	}
	return b, what
}

// rxARP returns a good ARP frame for rxStation: a request (broadcast or to the station) or a
// reply, from a random sender, padded to 60 bytes as a MAC sends it, or not, or with a trailer.
func rxARP(rng *rand.Rand) *wire.ARP {
	a := &wire.ARP{DstMAC: wire.BroadcastMAC, Op: wire.ARPOpRequest, TargetIP: rxStation.IP}
	rng.Read(a.SrcMAC[:])
	rng.Read(a.SenderMAC[:])
	rng.Read(a.SenderIP[:])
	a.SenderMAC[0] &^= 1 // a station, not a group
	if rng.Intn(3) == 0 {
		a.DstMAC = rxStation.MAC
	}
	if rng.Intn(2) == 0 {
		a.Op, a.DstMAC, a.TargetMAC = wire.ARPOpReply, rxStation.MAC, rxStation.MAC
	}
	return a
}

// rxARPFrame lays out a as 42 bytes, 60 (padded) or longer (a trailer).
func rxARPFrame(rng *rand.Rand, a *wire.ARP) []byte {
	b := a.Marshal()
	switch rng.Intn(4) {
	case 0:
		return b[:wire.ARPFrameLen]
	case 1:
		return append(b, rxGarbage(rng, 1+rng.Intn(40))...)
	}
	return b
}

// rxMutateARP changes a good ARP frame in one of the ways the receiver checks; what names it.
func rxMutateARP(rng *rand.Rand, g []byte) (b []byte, what string) {
	b = append([]byte(nil), g...)
	switch rng.Intn(9) {
	case 0:
		return b[:1+rng.Intn(wire.ARPFrameLen-1)], "ARP truncated"
	case 1:
		binary.BigEndian.PutUint16(b[14:], []uint16{0, 6, 0x100, uint16(rng.Intn(1 << 16))}[rng.Intn(4)])
		what = "ARP hardware type"
	case 2:
		binary.BigEndian.PutUint16(b[16:], []uint16{0x86DD, 0x0806, 0, uint16(rng.Intn(1 << 16))}[rng.Intn(4)])
		what = "ARP protocol type"
	case 3:
		b[18+rng.Intn(2)] ^= byte(1 + rng.Intn(255))
		what = "ARP address length"
	case 4:
		binary.BigEndian.PutUint16(b[20:], []uint16{0, 3, 4, 0x101, 0x201, uint16(rng.Intn(1 << 16))}[rng.Intn(6)])
		what = "ARP opcode"
	case 5:
		b[22] |= 1
		what = "ARP group sender"
	case 6:
		b[38+rng.Intn(4)] ^= byte(1 + rng.Intn(255))
		what = "ARP target IP"
	case 7:
		copy(b[0:6], [][]byte{{0x02, 0x5A, 0x4E, 0, 0, 3}, {0x01, 0x80, 0xC2, 0, 0, 0}, {0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFE}}[rng.Intn(3)])
		what = "ARP destination MAC"
	default:
		// Bytes the receiver does not look at: the Ethernet source, the sender, the target MAC,
		// the padding. The frame stays good.
		b[[]int{6, 11, 23, 27, 28, 31, 32, 37}[rng.Intn(8)]] ^= byte(1 + rng.Intn(255))
		if len(b) > wire.ARPFrameLen {
			b[wire.ARPFrameLen+rng.Intn(len(b)-wire.ARPFrameLen)] ^= 0xFF
		}
		what = "ARP variant byte"
	}
	return b, what
}

// rxMixed returns one frame of a mixed stream: good frames, mutated ones, frames Marshal builds
// against the rules, garbage, frames a MAC padded, oversize frames, good and mutated ARP frames;
// sometimes with tuser set.
func rxMixed(rng *rand.Rand, pmtu int) ([]byte, bool, string) {
	tuser := rng.Intn(25) == 0
	var b []byte
	var what string
	switch p := rng.Intn(110); {
	case p >= 100:
		b, what = rxARPFrame(rng, rxARP(rng)), "good ARP"
		if p >= 104 {
			b, what = rxMutateARP(rng, b)
		}
	case p < 35:
		f := rxRandomGood(rng, pmtu)
		if rng.Intn(8) == 0 {
			f.BTH.DestQP = []uint32{0, 1, 2, rxNQP - 1, rxNQP, 2*rxNQP - 1, 2 * rxNQP, uint32(rng.Intn(1 << 24))}[rng.Intn(8)]
		}
		b, what = f.Marshal(), "good "+wire.OpcodeName(f.BTH.OpCode)
	case p < 72:
		b, what = rxMutate(rng, rxRandomGood(rng, pmtu).Marshal())
	case p < 82:
		// Marshal writes whatever it is given: lengths and extension headers against the rules.
		var f *wire.Frame
		switch rng.Intn(7) {
		case 0:
			f = rxGood(rng, []uint8{wire.OpRCSendFirst, wire.OpRCSendMiddle}[rng.Intn(2)], pmtu+[]int{-1, 1, -4, 4, -pmtu}[rng.Intn(5)])
		case 1:
			f = rxGood(rng, wire.OpRCSendLast, []int{0, pmtu + 1, pmtu + 4}[rng.Intn(3)])
		case 2:
			f = rxGood(rng, []uint8{wire.OpRCSendOnly, wire.OpUDSendOnly}[rng.Intn(2)], pmtu+1+rng.Intn(8))
		case 3:
			f = rxGood(rng, wire.OpRCAck, 1+rng.Intn(8))
		case 4:
			f = rxGood(rng, wire.OpRCAck, 0)
			f.AETH = nil
		case 5:
			f = rxGood(rng, wire.OpUDSendOnly, rng.Intn(12))
			f.DETH = nil
		default:
			f = rxGood(rng, wire.OpRCSendOnly, rng.Intn(12))
			f.AETH = &wire.AETHFields{Syndrome: 1}
		}
		b, what = f.Marshal(), "against the rules "+wire.OpcodeName(f.BTH.OpCode)
	case p < 88:
		n := []int{1 + rng.Intn(64), 1 + rng.Intn(200), 1 + rng.Intn(1500)}[rng.Intn(3)]
		b, what = rxGarbage(rng, n), "garbage"
		if rng.Intn(2) == 0 && n >= 14 {
			copy(b, rxRandomGood(rng, pmtu).Marshal()[:min(n, 54)])
			what = "good headers, garbage after"
		}
	case p < 95:
		// Short frames a MAC padded to 60 bytes.
		f := rxGood(rng, wire.OpRCSendOnly, 0)
		if rng.Intn(3) == 0 {
			f = rxGood(rng, []uint8{wire.OpRCAck, wire.OpRCSendLast}[rng.Intn(2)], rng.Intn(2))
		}
		b = f.Marshal()
		if len(b) < wire.MinEthernetFrameLen {
			b = append(b, rxGarbage(rng, wire.MinEthernetFrameLen-len(b))...)
		}
		what = "padded to 60"
		if rng.Intn(3) == 0 {
			b, what = rxMutate(rng, b)
			what = "padded to 60, " + what
		}
	default:
		n := []int{rxMaxFrame + 1, rxMaxFrame, rxMaxFrame + 1 + rng.Intn(5000)}[rng.Intn(3)]
		b, what = rxGarbage(rng, n), "long garbage"
		if rng.Intn(2) == 0 {
			f := rxGood(rng, wire.OpUDSendOnly, n-wire.ExtOffset-wire.DETHLen-wire.ICRCLen)
			b, what = f.Marshal(), "long UD SEND_ONLY"
		}
	}
	return b, tuser, what
}

// TestRxParserGoodFrames sends good frames of every kind for three path MTUs, back to back,
// with the consumer always ready: each comes out with Parse's fields and payload, its descriptor
// exactly rxLatency cycles after its last beat and its payload right after.
func TestRxParserGoodFrames(t *testing.T) {
	seed := int64(0x5A17)
	t.Logf("seed %d", seed)
	for _, pmtu := range []int{wire.PMTU256, wire.PMTU1024, wire.PMTU4096} {
		t.Run("pmtu"+strconv.Itoa(pmtu), func(t *testing.T) {
			rng := rand.New(rand.NewSource(seed + int64(pmtu)))
			b := newRxBench(t, rng, pmtu)
			for _, op := range []uint8{wire.OpRCSendOnly, wire.OpRCSendLast} {
				for _, n := range []int{0, 1, 3, 4, 63, 64, pmtu - 1, pmtu} {
					if n == 0 && op == wire.OpRCSendLast {
						continue
					}
					f := rxGood(rng, op, n)
					b.add(f.Marshal(), false, wire.OpcodeName(op))
				}
			}
			for _, op := range []uint8{wire.OpRCSendFirst, wire.OpRCSendMiddle} {
				f := rxGood(rng, op, pmtu)
				b.add(f.Marshal(), false, wire.OpcodeName(op))
			}
			for i := 0; i < 4; i++ {
				f := rxGood(rng, wire.OpRCAck, 0)
				b.add(f.Marshal(), false, "ACK/NAK")
			}
			for _, n := range []int{256, 0, 5, pmtu} {
				f := rxGood(rng, wire.OpUDSendOnly, n)
				b.add(f.Marshal(), false, "UD SEND_ONLY")
			}
			// A 58-byte SEND_ONLY a MAC padded to 60 bytes, and QP 1 and the first and last
			// connections' QPs.
			pad := append(rxGood(rng, wire.OpRCSendOnly, 0).Marshal(), 0xA5, 0x5A)
			b.add(pad, false, "SEND_ONLY padded to 60")
			for _, qp := range []uint32{1, rxNQP, 2*rxNQP - 1} {
				f := rxGood(rng, wire.OpRCSendOnly, 8)
				f.BTH.DestQP = qp
				b.add(f.Marshal(), false, "QP edge")
			}
			for i := 0; i < 40; i++ {
				b.add(rxRandomGood(rng, pmtu).Marshal(), false, "random good")
			}
			for _, fr := range b.in {
				require.Zero(t, fr.reason, "%s: the reference accepts it", fr.what)
			}
			b.run(t, 100000)
			counts := b.check(t, false)
			require.Empty(t, counts, "no drops")

			// Latency: descriptor rxLatency cycles after the last beat; payload one cycle later,
			// or right after the previous payload when that was still streaming.
			var prevEnd uint64
			np := 0
			for i, fr := range b.in {
				assert.Equal(t, fr.last+rxLatency, b.descCyc[i], "frame %d (%s): descriptor latency", i, fr.what)
				if len(fr.f.Payload) > 0 {
					assert.Equal(t, max(fr.last+rxLatency+1, prevEnd+1), b.pays[np].first, "frame %d: payload start", i)
					assert.EqualValues(t, (len(fr.f.Payload)+b.w-1)/b.w, b.pays[np].end-b.pays[np].first+1, "frame %d: payload at full rate", i)
					prevEnd = b.pays[np].end
					np++
				}
			}
		})
	}
}

// TestRxParserMixed sends 2400 mixed frames (good, mutated, against the rules, garbage, padded,
// oversize, with MAC errors) with idle gaps and gaps inside frames: each is dropped with the
// reference's reason, or delivered as Parse parses it. Every reason except NoRoom must occur.
func TestRxParserMixed(t *testing.T) {
	seed := int64(20240917)
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewSource(seed))
	b := newRxBench(t, rng, wire.PMTU1024)
	b.idle, b.midGap = 40, 5
	for i := 0; i < 2400; i++ {
		fr, tuser, what := rxMixed(rng, b.pmtu)
		b.add(fr, tuser, what)
	}
	b.run(t, 600000)
	counts := b.check(t, false)
	t.Logf("%d frames: %d delivered, drops by reason %v", len(b.in), len(b.descs), counts)
	for r := uint8(1); r <= rxDropOversz; r++ {
		if r != rxDropNoRoom {
			assert.Positive(t, counts[r], "reason %d occurred", r)
		}
	}
	for _, r := range []wire.DropReason{wire.DropDstMAC, wire.DropDstIP, wire.DropARPMalformed, wire.DropARPTarget} {
		assert.Positive(t, counts[uint8(r)], "reason %v occurred", r)
	}
	assert.Greater(t, len(b.descs), 600, "delivered frames")
	assert.Greater(t, len(b.arps), 50, "delivered ARP frames")
}

// TestRxParserPMTU checks the length rules at the other path MTUs with frames around them.
func TestRxParserPMTU(t *testing.T) {
	seed := int64(256)
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewSource(seed))
	for _, pmtu := range []int{wire.PMTU256, wire.PMTU512, wire.PMTU2048, wire.PMTU4096} {
		b := newRxBench(t, rng, pmtu)
		for _, op := range []uint8{wire.OpRCSendFirst, wire.OpRCSendMiddle, wire.OpRCSendLast, wire.OpRCSendOnly, wire.OpUDSendOnly} {
			for _, n := range []int{0, 1, pmtu / 2, pmtu - 1, pmtu, pmtu + 1, pmtu + 3, 2 * pmtu} {
				if n <= 4096+8 {
					b.add(rxGood(rng, op, n).Marshal(), false, wire.OpcodeName(op))
				}
			}
		}
		for i := 0; i < 60; i++ {
			fr, tuser, what := rxMixed(rng, pmtu)
			b.add(fr, tuser, what)
		}
		b.run(t, 200000)
		b.check(t, false)
	}
}

// TestRxParserBackpressure stalls the consumers at random, and at times entirely, while frames
// keep arriving at line rate: frames that find no room in the buffer or the descriptor FIFO are
// dropped as NoRoom, nothing is half-delivered, and a final drain delivers the rest.
func TestRxParserBackpressure(t *testing.T) {
	seed := int64(0xB0B)
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewSource(seed))
	b := newRxBench(t, rng, wire.PMTU1024)
	b.idle = 30

	// Phase 1: the consumer takes nothing while small frames arrive: the descriptor FIFO fills
	// and the rest are NoRoom. Phase 2: big frames fill the payload buffer. Phase 3: random
	// stalls with a mixed stream.
	addGood := func(k int, op uint8, n int) {
		for i := 0; i < k; i++ {
			b.add(rxGood(rng, op, n).Marshal(), false, "good "+wire.OpcodeName(op))
		}
	}
	b.hdrStall, b.payStall = 100, 100
	addGood(rxDescDepth+8, wire.OpRCSendOnly, 16)
	b.run(t, 50000)
	c := b.check(t, true)
	assert.Equal(t, 8, c[rxDropNoRoom], "NoRoom once the descriptor FIFO is full")
	assert.Len(t, b.descs, rxDescDepth)

	b.hdrStall, b.payStall = 0, 100
	addGood(24, wire.OpRCSendFirst, 1024)
	b.run(t, 50000)
	c = b.check(t, true)
	assert.Equal(t, 8+8, c[rxDropNoRoom], "16 KiB hold 16 payloads of 1 KiB")

	// Descriptors taken, payloads not: the FIFO of payload lengths fills (after the first
	// frame's single beat has moved to the output register).
	b.hdrStall, b.payStall = 0, 100
	addGood(rxDescDepth+6, wire.OpRCSendLast, 3)
	b.run(t, 50000)
	c = b.check(t, true)
	assert.Equal(t, 8+8+5, c[rxDropNoRoom], "NoRoom once the payload length FIFO is full")

	b.hdrStall, b.payStall = 70, 70
	for i := 0; i < 700; i++ {
		if rng.Intn(3) == 0 {
			fr, tuser, what := rxMixed(rng, b.pmtu)
			b.add(fr, tuser, what)
		} else {
			b.add(rxRandomGood(rng, b.pmtu).Marshal(), false, "good")
		}
		if i%100 == 99 {
			// bursts of total stall and of free flow
			b.run(t, 400000)
			b.hdrStall, b.payStall = []int{95, 0, 60, 99}[rng.Intn(4)], []int{95, 0, 60, 99}[rng.Intn(4)]
			switch rng.Intn(3) {
			case 0:
				b.hdrStall, b.payStall, b.runs = 30, 50, 300
			case 1:
				// The buffer hovers at full: it fills and frees within frames.
				b.hdrStall, b.payStall, b.runs = 0, 55, 12
			}
		}
	}
	b.run(t, 400000)
	c = b.check(t, true)
	t.Logf("%d frames: %d delivered, drops by reason %v", len(b.in), len(b.descs), c)
	assert.Greater(t, c[rxDropNoRoom], 21, "NoRoom drops under random stalls")
}

// TestRxParserFullMidFrame fills the buffer with the payload consumer stalled, then lets it
// go at each of a range of beats of the next frame: that frame is delivered whole if it never
// found the buffer full, and dropped as NoRoom otherwise, even when the room came back before
// its end (its stored payload would have a hole).
func TestRxParserFullMidFrame(t *testing.T) {
	rng := rand.New(rand.NewSource(16))
	b := newRxBench(t, rng, wire.PMTU1024)
	delivered, noRoom := 0, 0
	for o := 0; o < 14; o++ {
		b.hdrStall, b.payStall = 0, 100
		for i := 0; i < 16; i++ {
			b.add(rxGood(rng, wire.OpRCSendMiddle, 1024).Marshal(), false, "fill")
		}
		b.add(rxGood(rng, wire.OpRCSendLast, 1024).Marshal(), false, "target")
		target := b.in[len(b.in)-1]
		for b.next < len(b.in) || b.sending != nil {
			if b.sending == target && b.off >= 48+b.w*o {
				b.payStall = 0
			}
			b.step(t)
		}
		b.run(t, 10000)
		c := b.check(t, true)
		if c[rxDropNoRoom] > noRoom {
			noRoom++
		} else {
			delivered++
		}
	}
	t.Logf("target frames: %d delivered, %d NoRoom", delivered, noRoom)
	assert.Positive(t, delivered)
	assert.Positive(t, noRoom)
}

// TestRxParserMinFramePadding covers the frames a MAC pads to 60 bytes: the datagram ends at
// byte 58 or 59 and the ICRC is the datagram's, not the frame's last 4 bytes.
func TestRxParserMinFramePadding(t *testing.T) {
	rng := rand.New(rand.NewSource(60))
	b := newRxBench(t, rng, wire.PMTU1024)
	for i := 0; i < 4; i++ {
		g := rxGood(rng, wire.OpRCSendOnly, 0).Marshal() // 58 bytes
		set := func(b []byte, total int) []byte {
			binary.BigEndian.PutUint16(b[16:], uint16(total))
			binary.BigEndian.PutUint16(b[38:], uint16(total-20))
			return b
		}
		cp := func(b []byte) []byte { return append([]byte(nil), b...) }
		b.add(append(cp(g), rxGarbage(rng, 2)...), false, "58 padded to 60")
		b.add(append(cp(g), rxGarbage(rng, 1)...), false, "58 with 1 byte after")
		b.add(append(cp(g), rxGarbage(rng, 3)...), false, "58 with 3 bytes after")
		b.add(cp(g), false, "58, not padded")
		b.add(cp(g)[:57], false, "57")
		// Datagram of 59 bytes with its ICRC, padded to 60: the length rule drops it.
		d := set(append(cp(g), rxGarbage(rng, 2)...), 45)
		rxFixICRC(d)
		b.add(d, false, "59 padded to 60, ICRC fixed")
		d = set(append(cp(g), rxGarbage(rng, 2)...), 45)
		b.add(d, false, "59 padded to 60")
		// An ACK needs 62 bytes: a 58-byte one padded is truncated.
		a := cp(g)
		a[42] = wire.OpRCAck
		rxFixICRC(a)
		b.add(append(a, rxGarbage(rng, 2)...), false, "ACK of 58 padded to 60")
		// Datagram shorter than the headers and ICRC.
		d = set(append(cp(g), rxGarbage(rng, 2)...), 43)
		rxFixICRC(d)
		b.add(d, false, "57 padded to 60")
		// Datagram of 60, 61 and 62 bytes in a 60-byte frame.
		for _, total := range []int{46, 47, 48} {
			d = set(append(cp(g), rxGarbage(rng, 2)...), total)
			rxFixICRC(d)
			b.add(d, false, "total "+strconv.Itoa(total)+" in 60")
		}
	}
	b.run(t, 10000)
	c := b.check(t, false)
	t.Logf("drops by reason %v", c)
	assert.Equal(t, map[uint8]int{uint8(wire.DropTruncated): 16, uint8(wire.DropIPLength): 12,
		uint8(wire.DropICRC): 4, uint8(wire.DropLength): 8}, c)
	assert.Len(t, b.descs, 8)
}

// TestRxParserNoHang sends frames far longer than any legal one, one with no tlast for 20000
// bytes, and tiny and empty-payload frames; the parser drops them and then works normally.
func TestRxParserNoHang(t *testing.T) {
	rng := rand.New(rand.NewSource(7))
	b := newRxBench(t, rng, wire.PMTU4096)
	b.add(rxGarbage(rng, 20000), false, "20000 bytes of garbage")
	b.add(rxGood(rng, wire.OpUDSendOnly, 4096).Marshal(), false, "UD 4096")
	long := rxGood(rng, wire.OpRCSendOnly, 4096+120).Marshal()
	b.add(long, false, "SEND_ONLY 4216 (oversize)")
	b.add(long, true, "oversize with MAC error")
	b.add(rxGood(rng, wire.OpRCSendOnly, 4096).Marshal(), false, "SEND_ONLY 4096")
	for n := 1; n <= 70; n++ {
		g := rxGood(rng, wire.OpRCSendOnly, 4).Marshal()
		if n < len(g) {
			g = g[:n]
		} else {
			g = append(g, rxGarbage(rng, n-len(g))...)
		}
		b.add(g, false, "length "+strconv.Itoa(n))
	}
	b.add(rxGood(rng, wire.OpRCSendLast, 4096).Marshal(), false, "SEND_LAST 4096")
	b.run(t, 20000)
	c := b.check(t, false)
	assert.Equal(t, 2, c[rxDropOversz])
	assert.Equal(t, 1, c[rxDropMACErr])
}

// TestRxParserARP sends good ARP frames of every kind (requests broadcast and unicast, replies,
// 42 bytes, padded, with a trailer) among RoCEv2 frames, then 600 seeded mutations of them:
// each good one reaches m_arp_* in order with its opcode and sender, rxLatency cycles after its
// last beat when the ARP block keeps up; each bad one is dropped with Receive's reason. With
// the ARP block stalled, ARP frames beyond the FIFO's four are dropped as NoRoom and the RoCEv2
// frames between them still flow.
func TestRxParserARP(t *testing.T) {
	seed := int64(0xA2F)
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewSource(seed))
	b := newRxBench(t, rng, wire.PMTU1024)
	for i := 0; i < 40; i++ {
		b.add(rxARPFrame(rng, rxARP(rng)), false, "good ARP")
		if i%4 == 0 {
			b.add(rxRandomGood(rng, b.pmtu).Marshal(), false, "good RoCEv2")
		}
	}
	for _, fr := range b.in {
		require.Zero(t, fr.reason, "%s: the reference accepts it", fr.what)
	}
	b.run(t, 50000)
	require.Empty(t, b.check(t, false), "no drops")
	arpAt := []uint64{}
	for _, fr := range b.in {
		if fr.arp != nil {
			arpAt = append(arpAt, fr.last+rxLatency)
		}
	}
	require.Equal(t, arpAt, b.arpCyc, "each ARP output rxLatency cycles after its last beat")

	// Mutations, with the ARP block stalling now and then (the FIFO's depth absorbs it).
	b.arpStall = 30
	for i := 0; i < 600; i++ {
		fr, what := rxMutateARP(rng, rxARPFrame(rng, rxARP(rng)))
		b.add(fr, rng.Intn(40) == 0, what)
	}
	b.run(t, 200000)
	c := b.check(t, false)
	t.Logf("ARP mutations: drops by reason %v", c)
	for _, r := range []wire.DropReason{wire.DropTruncated, wire.DropDstMAC, wire.DropARPMalformed, wire.DropARPTarget} {
		assert.Positive(t, c[uint8(r)], "reason %v occurred", r)
	}

	// The ARP block takes nothing: four wait, the rest find no room.
	b.arpStall = 100
	for i := 0; i < 10; i++ {
		b.add(rxARPFrame(rng, rxARP(rng)), false, "good ARP, block stalled")
		b.add(rxGood(rng, wire.OpRCSendOnly, 16).Marshal(), false, "good RoCEv2 between")
	}
	n0 := len(b.drops)
	b.run(t, 50000)
	c = b.check(t, true)
	assert.Equal(t, 6, len(b.drops)-n0, "NoRoom once the ARP FIFO holds four")
	assert.Equal(t, 6, c[rxDropNoRoom])
}

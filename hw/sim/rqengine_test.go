package sim

import (
	"math/rand"
	"sort"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sanoffload/san/driver/regs"
	"github.com/sanoffload/san/hw/sim/dut"
	"github.com/sanoffload/san/hw/wire"
)

// san_rq_engine's defaults as make duts builds it, and the host memory the bench models.
const (
	rqNQP     = 256
	rqW       = 8                        // bytes per beat
	rqMemBase = uint64(0x1234_5670_0000) // IOVA of host memory byte 0: above 4 GiB
	rqMemSize = 6 << 20
)

var (
	rqQPState  = uint8(regs.RxDropQPState)
	rqSequence = uint8(regs.RxDropSequence)
	rqPSN      = uint8(regs.RxDropPSN)
	rqNoRecv   = uint8(regs.RxDropNoRecv)
	rqDup      = uint8(regs.RxDropDuplicate)
	rqPeerIP   = uint8(regs.RxDropPeerIP)

	rqSynACK    = uint8(regs.AethSyndromeACK)
	rqSynSeq    = uint8(regs.AethSyndromeNAKPSNSeq)
	rqSynInvReq = uint8(regs.AethSyndromeNAKInvalidRequest)
)

// rqSynRNR is the syndrome of an RNR NAK with RNR timer code timer.
func rqSynRNR(timer uint8) uint8 { return uint8(regs.AethSyndromeRNRNAK) | timer&0x1F }

// rqPkt is one packet as the parser hands it over: descriptor fields and payload.
type rqPkt struct {
	op     uint8
	se     bool
	qp     uint32 // BTH DestQP, 24 bits: connection c is QP rqNQP + c (see conn)
	ackReq bool
	psn    uint32
	sip    uint32 // IPv4 source: the connection's peer, unless a test says otherwise
	pay    []byte
	syn    uint8  // AETH of an ACK
	amsn   uint32 // 24 bits
}

// rqLoad is a context load.
type rqLoad struct {
	qp    uint32
	rts   bool
	psn   uint32
	base  uint64 // RQ ring IOVA
	log   uint
	dqp   uint32
	dmac  uint64
	dip   uint32
	sport uint16
	rnr   uint8 // min_rnr_timer, the code its RNR NAKs carry
}

// rqWQE is a receive WQE; bad makes the host fail its read.
type rqWQE struct {
	wrID   uint64
	addr   uint64
	length uint32
	bad    bool
}

// rqPost writes receive WQEs into ring slots and rings the doorbell with the new producer index.
type rqPost struct {
	qp    uint32
	pi    uint16
	slots []uint64 // IOVA of each slot written
	wqes  []rqWQE
	// Filled in by the reference: the ring, and the WQE reads from it that must be done before
	// the slots may be overwritten.
	ring      uint64
	needReads int
}

// rqEvent is one step of a script: a packet, a context load or a doorbell.
type rqEvent struct {
	pkt  *rqPkt
	load *rqLoad
	post *rqPost
	// For a load: the packets after it may be shown while it waits for ctx_load_ready (the
	// engine must take the load first). For a doorbell: the next load or doorbell may start
	// the cycle after it was taken.
	eager bool
}

// conn is the connection p's DestQP names (the engine reads that context whatever the upper
// bits), and connOK whether the DestQP is a connection's at all: connection c is QP rqNQP + c.
func (p *rqPkt) conn() uint32 { return p.qp & (rqNQP - 1) }
func (p *rqPkt) connOK() bool { return p.qp/rqNQP == 1 }

// rqWire is connection c's QP number on the wire.
func rqWire(c uint32) uint32 { return rqNQP | c }

func (e *rqEvent) qp() uint32 {
	switch {
	case e.pkt != nil:
		return e.pkt.conn()
	case e.load != nil:
		return e.load.qp
	}
	return e.post.qp
}

// rqCQE is a completion as the engine emits it.
type rqCQE struct {
	QPN     uint32
	WrID    uint64
	ByteLen uint32
	Opcode  uint8
	Status  uint8
	SE      bool
	Index   uint16 // the receive WQE's ring index
}

// rqWantCQE is an expected completion, with the buffer contents that must be in host memory
// by the time it is emitted.
type rqWantCQE struct {
	rqCQE
	anyWrID bool   // DMA error: the WQE (and so wr_id) is garbage
	addr    uint64 // buffer
	data    []byte // its expected contents (nil: nothing to check)
}

// rqACK is an ACK or NAK descriptor's variable fields.
type rqACK struct {
	DstMAC uint64
	DstIP  uint32
	Sport  uint16
	DestQP uint32
	PSN    uint32
	Syn    uint8 // AETH syndrome
	MSN    uint32
}

// rqAckKey names the connection an ACK was made for: a plain ACK may be merged only into one
// with the same key (same QP, same load).
type rqAckKey struct {
	qp  uint32
	gen int
}

// rqFwd is a received ACK as the engine passes it to the completer.
type rqFwd struct {
	QPN uint32
	PSN uint32
	Syn uint8
	MSN uint32
}

// rqRefQP is the reference's state of one connection.
type rqRefQP struct {
	ctx    rqLoad
	epsn   uint32
	inMsg  bool
	ci, pi uint16
	msn    uint32
	ring   map[uint16]rqWQE // slot -> WQE, as the driver wrote it
	cur    rqWQE
	curIdx uint16 // the ring index of cur
	off    int
	// A PSN sequence NAK went out for the current gap: further packets ahead are dropped
	// silently until one is accepted.
	nakSent bool
	gen     int // loads of this QP so far
}

// rqRef is the reference model: the effect of each script event, in order.
type rqRef struct {
	qps    map[uint32]*rqRefQP
	mem    []byte // expected host memory; nil: not tracked
	drops  []uint8
	acks   []rqACK    // ACKs and NAKs, in the order the packets came
	ackKey []rqAckKey // per ACK
	ackPkt []int      // script index of the packet of each ACK
	fwd    []rqFwd    // received ACKs for the completer
	cqes   map[uint32][]rqWantCQE
	nCQE   int
	reads  map[uint64]int // WQE reads per ring
	gens   map[uint32]int // loads per QP
	// Duplicates and gaps whose PSN is across the 24-bit wrap from the expected one.
	wrapped int
}

func newRqRef(mem []byte) *rqRef {
	return &rqRef{qps: map[uint32]*rqRefQP{}, mem: mem, cqes: map[uint32][]rqWantCQE{}, reads: map[uint64]int{},
		gens: map[uint32]int{}}
}

func rqMemOff(a uint64) int { return int(a - rqMemBase) }

func (r *rqRef) apply(i int, e *rqEvent) {
	switch {
	case e.load != nil:
		l := *e.load
		r.gens[l.qp]++
		r.qps[l.qp] = &rqRefQP{ctx: l, epsn: l.psn, ring: map[uint16]rqWQE{}, gen: r.gens[l.qp]}
	case e.post != nil:
		p := e.post
		q := r.qps[p.qp]
		p.ring, p.needReads = q.ctx.base, r.reads[q.ctx.base]
		for k, a := range p.slots {
			slot := uint16((a - q.ctx.base) / regs.RecvWQESize)
			q.ring[slot] = p.wqes[k]
			if r.mem != nil {
				rqPutWQE(r.mem[rqMemOff(a):], p.wqes[k])
			}
		}
		if q.ctx.rts {
			q.pi = p.pi
		}
	default:
		r.packet(i, e.pkt)
	}
}

func rqPutWQE(b []byte, w rqWQE) {
	wq := regs.RecvWQE(b[:regs.RecvWQESize])
	wq.SetWrID(w.wrID)
	wq.SetAddr(w.addr)
	wq.SetLength(w.length)
}

func rqIsSend(op uint8) bool {
	switch op {
	case wire.OpRCSendFirst, wire.OpRCSendMiddle, wire.OpRCSendLast, wire.OpRCSendOnly:
		return true
	}
	return false
}

// verdict is the drop reason for p, or 0 if the connection accepts it (an ACK: passes it to the
// completer). PSNs compare in 24-bit serial arithmetic: the 2^23 PSNs before the expected one
// are behind (duplicates), the 2^23 - 1 after it ahead (a gap).
func (r *rqRef) verdict(p *rqPkt) uint8 {
	q := r.qps[p.conn()]
	starts := p.op == wire.OpRCSendFirst || p.op == wire.OpRCSendOnly
	switch {
	case !rqIsSend(p.op) && p.op != wire.OpRCAck || !p.connOK() || q == nil || !q.ctx.rts:
		return rqQPState
	case p.sip != q.ctx.dip:
		return rqPeerIP
	case p.op == wire.OpRCAck:
		return 0
	case wire.PSNCompare(p.psn, q.epsn) < 0:
		return rqDup
	case wire.PSNCompare(p.psn, q.epsn) > 0:
		return rqPSN
	case starts == q.inMsg:
		return rqSequence
	case starts && q.ci == q.pi:
		return rqNoRecv
	}
	return 0
}

// ack queues an ACK or NAK of the connection q (QP qp) for script event i.
func (r *rqRef) ack(i int, qp uint32, q *rqRefQP, syn uint8, psn uint32) {
	r.acks = append(r.acks, rqACK{DstMAC: q.ctx.dmac, DstIP: q.ctx.dip, Sport: q.ctx.sport,
		DestQP: q.ctx.dqp, PSN: psn, Syn: syn, MSN: q.msn})
	r.ackKey = append(r.ackKey, rqAckKey{qp: qp, gen: q.gen})
	r.ackPkt = append(r.ackPkt, i)
}

func (r *rqRef) packet(i int, p *rqPkt) {
	why := r.verdict(p)
	q := r.qps[p.conn()]
	if p.op == wire.OpRCAck && why == 0 {
		r.fwd = append(r.fwd, rqFwd{QPN: p.conn(), PSN: p.psn, Syn: p.syn, MSN: p.amsn})
		return
	}
	if why != 0 {
		r.drops = append(r.drops, why)
		if why == rqDup && p.psn > q.epsn || why == rqPSN && p.psn < q.epsn {
			r.wrapped++
		}
		// The responder's answers, as rxe gives them; none moves the expected PSN.
		switch why {
		case rqDup: // re-ACK of the last PSN received, for every duplicate
			r.ack(i, p.conn(), q, rqSynACK, wire.PSNAdd(q.epsn, -1))
		case rqPSN: // one NAK per gap, with the PSN expected
			if !q.nakSent {
				r.ack(i, p.conn(), q, rqSynSeq, q.epsn)
				q.nakSent = true
			}
		case rqSequence:
			r.ack(i, p.conn(), q, rqSynInvReq, q.epsn)
		case rqNoRecv: // the sender resends this PSN after the RNR timer; the packets behind it
			// get no PSN sequence NAK
			r.ack(i, p.conn(), q, rqSynRNR(q.ctx.rnr), p.psn)
			q.nakSent = true
		}
		return
	}
	starts := p.op == wire.OpRCSendFirst || p.op == wire.OpRCSendOnly
	ends := p.op == wire.OpRCSendLast || p.op == wire.OpRCSendOnly
	q.epsn = wire.PSNAdd(q.epsn, 1)
	q.nakSent = false
	if starts {
		mask := uint16(1)<<q.ctx.log - 1
		q.cur, q.off = q.ring[q.ci&mask], 0
		q.curIdx = q.ci
		q.ci++
		r.reads[q.ctx.base]++
	}
	if !q.cur.bad && r.mem != nil {
		room := max(0, int(q.cur.length)-q.off)
		n := min(len(p.pay), room)
		if n > 0 {
			copy(r.mem[rqMemOff(q.cur.addr)+q.off:], p.pay[:n])
		}
	}
	q.off += len(p.pay)
	q.inMsg = !ends
	if ends {
		q.msn = (q.msn + 1) & wire.PSNMask
		c := rqWantCQE{rqCQE: rqCQE{QPN: p.conn(), WrID: q.cur.wrID, ByteLen: uint32(q.off),
			Opcode: uint8(regs.CQEOpcodeRecv), SE: p.se, Index: q.curIdx}, addr: q.cur.addr}
		switch {
		case q.cur.bad:
			c.Status, c.anyWrID, c.WrID = uint8(regs.CQEStatusDMAError), true, 0
		case q.off > int(q.cur.length):
			c.Status = uint8(regs.CQEStatusLocalLength)
		default:
			c.Status = uint8(regs.CQEStatusOk)
		}
		if !q.cur.bad && r.mem != nil {
			n := min(q.off, int(q.cur.length))
			o := rqMemOff(q.cur.addr)
			c.data = append([]byte(nil), r.mem[o:o+n]...)
		}
		r.cqes[p.conn()] = append(r.cqes[p.conn()], c)
		r.nCQE++
	}
	if p.ackReq {
		r.ack(i, p.conn(), q, rqSynACK, p.psn)
	}
}

// mergeable says whether ACK k may be missing from the engine's output because the next one
// replaced it while both were queued: both are plain ACKs of the same connection, the second
// queued right behind the first.
func (r *rqRef) mergeable(k int) bool {
	return k+1 < len(r.acks) && r.acks[k].Syn == rqSynACK && r.acks[k+1].Syn == rqSynACK &&
		r.ackKey[k] == r.ackKey[k+1]
}

// --- script generation ------------------------------------------------------------------------

// rqBuf is a receive buffer the test posted; writes may land only inside posted buffers.
type rqBuf struct {
	addr   uint64
	length int
	posted bool
}

// rqGen writes scripts: it allocates rings and buffers in host memory (with random gaps, so
// every buffer has guard bytes around it), plays the sender (PSNs, segmentation), and keeps a
// scratch reference to craft packets against the receiver's state.
type rqGen struct {
	rng     *rand.Rand
	mem     []byte // initial host memory
	next    int    // allocation offset
	ev      []*rqEvent
	scratch *rqRef
	sendPSN map[uint32]uint32
	peer    map[uint32]uint32 // each connection's peer IPv4 address, the same across reloads
	bufs    []*rqBuf
	pending map[uint32][]*rqEvent // per QP, for mix
}

func newRqGen(rng *rand.Rand) *rqGen {
	g := &rqGen{rng: rng, mem: make([]byte, rqMemSize), scratch: newRqRef(nil),
		sendPSN: map[uint32]uint32{}, peer: map[uint32]uint32{}, pending: map[uint32][]*rqEvent{}}
	rng.Read(g.mem)
	return g
}

// alloc returns the IOVA of n fresh bytes after a guard gap of 1..48 bytes, aligned as asked.
func (g *rqGen) alloc(n, align int) uint64 {
	g.next += 1 + g.rng.Intn(48)
	g.next = (g.next + align - 1) / align * align
	a := g.next
	g.next += n
	if g.next+64 > len(g.mem) {
		// The generator's memory is sized for its runs; running out is a bug in the test itself.
		panic("rqGen: host memory exhausted")
	}
	return rqMemBase + uint64(a)
}

func (g *rqGen) emit(e *rqEvent) {
	g.scratch.apply(len(g.ev), e)
	g.ev = append(g.ev, e)
}

// queue adds e to its QP's pending list; mix emits the pending lists in a random interleaving
// that keeps each QP's order.
func (g *rqGen) queue(e *rqEvent) { g.pending[e.qp()] = append(g.pending[e.qp()], e) }

func (g *rqGen) mix() {
	var keys []uint32
	for k := range g.pending {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	for {
		var live []uint32
		for _, k := range keys {
			if len(g.pending[k]) > 0 {
				live = append(live, k)
			}
		}
		if len(live) == 0 {
			break
		}
		k := live[g.rng.Intn(len(live))]
		g.emit(g.pending[k][0])
		g.pending[k] = g.pending[k][1:]
	}
	g.pending = map[uint32][]*rqEvent{}
}

// load makes a context load event with a fresh ring of 2^log WQEs and random peer fields.
func (g *rqGen) load(qp uint32, rts bool, psn uint32, log uint) *rqEvent {
	l := &rqLoad{qp: qp, rts: rts, psn: psn & wire.PSNMask, log: log,
		base: g.alloc(regs.RecvWQESize<<log, 1+7*g.rng.Intn(2)),
		dqp:  uint32(g.rng.Intn(1 << 24)), dmac: g.rng.Uint64() & (1<<48 - 1),
		dip: g.rng.Uint32(), sport: uint16(g.rng.Intn(1 << 16)), rnr: uint8(g.rng.Intn(32))}
	if ip, ok := g.peer[qp]; ok {
		l.dip = ip // reloaded for the same peer
	}
	g.peer[qp] = l.dip
	g.sendPSN[qp] = l.psn
	return &rqEvent{load: l}
}

// post makes a doorbell event posting one WQE per buffer length (bad: the read fails), with
// the producer index following pi.
func (g *rqGen) post(qp uint32, pi uint16, lens []int, bad []bool) *rqEvent {
	l := g.loadOf(qp)
	p := &rqPost{qp: qp, pi: pi + uint16(len(lens))}
	for k, n := range lens {
		slot := (pi + uint16(k)) & (uint16(1)<<l.log - 1)
		b := &rqBuf{addr: g.alloc(n, 1), length: n}
		g.bufs = append(g.bufs, b)
		w := rqWQE{wrID: g.rng.Uint64(), addr: b.addr, length: uint32(n)}
		if bad != nil && bad[k] {
			w.bad = true
		}
		p.slots = append(p.slots, l.base+uint64(slot)*regs.RecvWQESize)
		p.wqes = append(p.wqes, w)
	}
	return &rqEvent{post: p}
}

// loadOf is the last load of qp among emitted and pending events.
func (g *rqGen) loadOf(qp uint32) *rqLoad {
	for i := len(g.pending[qp]) - 1; i >= 0; i-- {
		if e := g.pending[qp][i]; e.load != nil {
			return e.load
		}
	}
	return &g.scratch.qps[qp].ctx
}

// message makes the packets of an n-byte message as a sender segments it at pmtu: AckReq on
// the last (and at random on others), SE at random on the last.
func (g *rqGen) message(qp uint32, n, pmtu int) []*rqEvent {
	pay := make([]byte, n)
	g.rng.Read(pay)
	var out []*rqEvent
	segs := wire.Segment(n, pmtu)
	for k, s := range segs {
		last := k == len(segs)-1
		p := &rqPkt{op: s.OpCode, qp: rqWire(qp), psn: g.sendPSN[qp], sip: g.peer[qp], pay: pay[s.Offset : s.Offset+s.Len],
			ackReq: last || g.rng.Intn(8) == 0, se: last && g.rng.Intn(2) == 0}
		g.sendPSN[qp] = wire.PSNAdd(g.sendPSN[qp], 1)
		out = append(out, &rqEvent{pkt: p})
	}
	return out
}

// raw makes a packet to DestQP qp (a QP number on the wire: rqWire(c) for connection c) from
// the peer of the connection its low bits name, with a random payload that does not move the
// sender's PSN; an ACK gets a random AETH.
func (g *rqGen) raw(op uint8, qp, psn uint32, n int) *rqEvent {
	pay := make([]byte, n)
	g.rng.Read(pay)
	p := &rqPkt{op: op, qp: qp, psn: psn & wire.PSNMask, sip: g.peer[qp&(rqNQP-1)], pay: pay,
		ackReq: g.rng.Intn(2) == 0, se: g.rng.Intn(2) == 0}
	if op == wire.OpRCAck {
		p.syn = []uint8{rqSynACK, rqSynSeq, rqSynInvReq, rqSynRNR(uint8(g.rng.Intn(32))), uint8(g.rng.Intn(256))}[g.rng.Intn(5)]
		p.amsn = uint32(g.rng.Intn(1 << 24))
	}
	return &rqEvent{pkt: p}
}

// from is e with its IPv4 source changed to ip: a packet of another connection that uses the
// same QP number.
func from(e *rqEvent, ip uint32) *rqEvent {
	e.pkt.sip = ip
	return e
}

// again is a copy of an emitted packet, sent again (a retransmission).
func again(e *rqEvent) *rqEvent {
	p := *e.pkt
	return &rqEvent{pkt: &p}
}

// --- the bench ------------------------------------------------------------------------------------

// rqKnobs are the percentages of cycles in which each party withholds valid or ready, and the
// host's WQE read latency.
type rqKnobs struct {
	hdrGap, payGap, dbGap   int
	hdrEvery                int // at least this many cycles between descriptors (a link's pace)
	rdLat                   int // cycles from a read request to its first data beat, at least
	rdReqStall, rdGap       int
	wrReqStall, wrStall     int
	ackStall, cqeStall      int
	fwdStall                int // m_ack_ready (received ACKs to the completer)
	enableOffAt, enableOffN int // cfg_enable low for enableOffN cycles from cycle enableOffAt
}

type rqRead struct {
	data  []byte
	tuser []bool // per beat: a failed read flags some of its beats, at least one
	at    uint64
}

type rqWrite struct {
	addr uint64
	n    int
	got  int
}

// rqBench drives san_rq_engine through a script: descriptors and payload as the parser gives
// them, doorbells and loads as the CSR block does, a host memory that answers WQE reads in order
// after rdLat cycles and takes payload writes, and consumers of ACKs and CQEs, each with random
// stalls. Packets and control events run in two lanes; within a connection they keep script
// order (a packet waits for the loads and doorbells before it to take effect, a doorbell for the
// packets before it to be taken and for the WQE reads of the slots it overwrites).
type rqBench struct {
	t   *testing.T
	d   *dut.DUT
	rng *rand.Rand
	k   rqKnobs
	ev  []*rqEvent
	ref *rqRef
	mem []byte

	pkts, ctls []int // script indices
	ctlBefore  []int // per packet: the last control event of its QP before it (index into ctls), or -1
	pktBefore  []int // per control event: the last packet of its QP before it (index into pkts), or -1
	pk, ck     int
	hdrOn      bool
	taken      []uint64 // per packet: cycle its descriptor was taken
	ctlOn      bool
	ctlDone    []uint64 // per control event: cycle from which it has taken effect
	ctlNext    []uint64 // per control event: cycle from which the next one may start

	beats [][]byte
	lasts []bool
	payOn bool

	bufs   []*rqBuf // sorted by address
	rings  map[uint64]int
	poison map[uint64]bool
	reads  map[uint64]int
	rdQ    []*rqRead
	rdBeat int
	rdOn   bool
	wrQ    []*rqWrite

	drops []uint8
	// ACKs and NAKs out: matched in order against the reference's, where one may be missing only
	// if it was merged (rqRef.mergeable). ackNext is the next reference ACK to match, ackLast
	// the last one matched.
	acks    int
	ackNext int
	ackLast int
	merged  int
	ackIdx  []int // per ACK out: the reference ACK it is
	ackAt   []uint64
	fwds    int // received ACKs passed to the completer
	// A stream shown last cycle and not taken: what it showed, which must hold.
	txHeld, fwdHeld []uint64
	cqes            map[uint32]int
	nCQE            int
	cqeAt           []uint64
	writes          int
}

func newRqBench(t *testing.T, rng *rand.Rand, g *rqGen, k rqKnobs) *rqBench {
	b := &rqBench{t: t, d: dut.New(t, "san_rq_engine"), rng: rng, k: k, ev: g.ev,
		mem: append([]byte(nil), g.mem...), ref: newRqRef(append([]byte(nil), g.mem...)),
		bufs: g.bufs, rings: map[uint64]int{}, poison: map[uint64]bool{}, reads: map[uint64]int{},
		cqes: map[uint32]int{}, ackLast: -1}
	for _, p := range b.d.Ports() {
		if p.Name == "s_axis_pay_tdata" {
			require.Equal(t, rqW*8, p.Width, "the bench models a 64-bit data path")
		}
	}
	sort.Slice(b.bufs, func(i, j int) bool { return b.bufs[i].addr < b.bufs[j].addr })
	for _, bf := range b.bufs {
		bf.posted = false
	}
	lastCtl := map[uint32]int{}
	lastPkt := map[uint32]int{}
	for i, e := range b.ev {
		b.ref.apply(i, e)
		q := e.qp()
		if e.pkt != nil {
			c, ok := lastCtl[q]
			if !ok {
				c = -1
			}
			b.ctlBefore = append(b.ctlBefore, c)
			lastPkt[q] = len(b.pkts)
			b.pkts = append(b.pkts, i)
		} else {
			p, ok := lastPkt[q]
			if !ok {
				p = -1
			}
			b.pktBefore = append(b.pktBefore, p)
			lastCtl[q] = len(b.ctls)
			b.ctls = append(b.ctls, i)
		}
	}
	b.taken = make([]uint64, len(b.pkts))
	b.ctlDone = make([]uint64, len(b.ctls))
	b.ctlNext = make([]uint64, len(b.ctls))
	b.d.Set("cfg_enable", 1)
	return b
}

func (b *rqBench) pktReady(now uint64) bool {
	c := b.ctlBefore[b.pk]
	if c == b.ck && b.ctlOn && b.ev[b.ctls[c]].eager && b.ev[b.ctls[c]].load != nil {
		return true
	}
	return c < 0 || (c < b.ck && b.ctlDone[c] <= now)
}

func (b *rqBench) ctlReady(now uint64) bool {
	if b.ck > 0 && b.ctlNext[b.ck-1] > now {
		return false
	}
	p := b.pktBefore[b.ck]
	if p >= 0 && (p >= b.pk || b.taken[p] == 0 || b.taken[p]+1 > now) {
		return false
	}
	if post := b.ev[b.ctls[b.ck]].post; post != nil && b.reads[post.ring] < post.needReads {
		return false
	}
	return true
}

// buf finds the posted buffer holding [a, a+n), or nil.
func (b *rqBench) buf(a uint64, n int) *rqBuf {
	i := sort.Search(len(b.bufs), func(i int) bool { return b.bufs[i].addr+uint64(b.bufs[i].length) > a })
	for ; i < len(b.bufs) && b.bufs[i].addr <= a; i++ {
		bf := b.bufs[i]
		if bf.posted && a+uint64(n) <= bf.addr+uint64(bf.length) {
			return bf
		}
	}
	return nil
}

func (b *rqBench) startCtl() {
	e := b.ev[b.ctls[b.ck]]
	d := b.d
	if e.load != nil {
		l := e.load
		b.rings[l.base] = 1 << l.log
		d.Set("ctx_load_qpn", uint64(l.qp))
		d.Set("ctx_load_rts", b2u(l.rts))
		d.Set("ctx_load_dest_qpn", uint64(l.dqp))
		d.Set("ctx_load_dmac", l.dmac)
		d.Set("ctx_load_dip", uint64(l.dip))
		d.Set("ctx_load_udp_sport", uint64(l.sport))
		d.Set("ctx_load_rq_psn", uint64(l.psn))
		d.Set("ctx_load_rq_base", l.base)
		d.Set("ctx_load_rq_log", uint64(l.log))
		d.Set("ctx_load_min_rnr_timer", uint64(l.rnr))
		return
	}
	p := e.post
	for k, a := range p.slots {
		rqPutWQE(b.mem[rqMemOff(a):], p.wqes[k])
		b.poison[a] = p.wqes[k].bad
		i := sort.Search(len(b.bufs), func(i int) bool { return b.bufs[i].addr >= p.wqes[k].addr })
		require.Less(b.t, i, len(b.bufs))
		b.bufs[i].posted = true
	}
	d.Set("s_db_qpn", uint64(p.qp))
	d.Set("s_db_pi", uint64(p.pi))
}

// The fields of the two streams out that have no payload: they must hold while not taken.
var (
	rqTxPorts = []string{"m_tx_dst_mac", "m_tx_dst_ip", "m_tx_udp_sport", "m_tx_opcode", "m_tx_se",
		"m_tx_dest_qp", "m_tx_ack_req", "m_tx_psn", "m_tx_ext", "m_tx_ext0", "m_tx_ext1", "m_tx_pay_len"}
	rqFwdPorts = []string{"m_ack_qpn", "m_ack_psn", "m_ack_syndrome", "m_ack_msn"}
)

// hold checks that a stream shown and not taken last cycle (held, its fields then) is shown
// unchanged now, and returns what must hold into the next cycle (nil if nothing).
func (b *rqBench) hold(held []uint64, valid string, ready bool, ports []string) []uint64 {
	d := b.d
	var now []uint64
	if d.Get(valid) == 1 {
		for _, p := range ports {
			now = append(now, d.Get(p))
		}
	}
	if held != nil {
		require.Equal(b.t, held, now, "%s: what was shown and not taken holds", valid)
	}
	if ready {
		return nil
	}
	return now
}

// skippable says whether reference ACK k may be passed over without having come out: it was
// merged into the next one, or it is equal to the last one that came out and everything from
// there to it is a run of merges (then that one stood for it).
func (b *rqBench) skippable(k int) bool {
	if b.ref.mergeable(k) {
		return true
	}
	l := b.ackLast
	if l < 0 || b.ref.acks[l] != b.ref.acks[k] {
		return false
	}
	for i := l; i < k; i++ {
		if !b.ref.mergeable(i) {
			return false
		}
	}
	return true
}

// matchACK takes an ACK or NAK the engine sent: the next reference ACK, after any it may have
// merged away. NAKs are never skippable, so each one must come out, in order.
func (b *rqBench) matchACK(got rqACK) {
	t := b.t
	for {
		require.Less(t, b.ackNext, len(b.ref.acks), "no more ACKs than the reference (%+v)", got)
		k := b.ackNext
		if b.ref.acks[k] == got {
			break
		}
		require.True(t, b.skippable(k), "ACK %d %+v (packet %d) neither sent nor merged; got %+v instead",
			k, b.ref.acks[k], b.ref.ackPkt[k], got)
		b.ackNext++
		b.merged++
	}
	b.ackIdx = append(b.ackIdx, b.ackNext)
	b.ackLast = b.ackNext
	b.ackNext++
	b.acks++
}

// acksSettled says whether every reference ACK not yet matched may stay missing for good.
func (b *rqBench) acksSettled() bool {
	for k := b.ackNext; k < len(b.ref.acks); k++ {
		if !b.skippable(k) {
			return false
		}
	}
	return true
}

// step runs one cycle.
func (b *rqBench) step() {
	t, d, rng, k := b.t, b.d, b.rng, b.k
	now := d.Cycles()

	// Descriptor lane: the next packet once its QP's earlier loads and doorbells took effect;
	// its payload becomes available as its descriptor is shown, as the parser does.
	paced := b.pk == 0 || now >= b.taken[b.pk-1]+uint64(k.hdrEvery)
	if !b.hdrOn && b.pk < len(b.pkts) && paced && b.pktReady(now) && rng.Intn(100) >= k.hdrGap {
		b.hdrOn = true
		p := b.ev[b.pkts[b.pk]].pkt
		d.Set("s_hdr_opcode", uint64(p.op))
		d.Set("s_hdr_se", b2u(p.se))
		d.Set("s_hdr_dest_qp", uint64(p.qp))
		d.Set("s_hdr_ack_req", b2u(p.ackReq))
		d.Set("s_hdr_psn", uint64(p.psn))
		d.Set("s_hdr_src_ip", uint64(p.sip))
		d.Set("s_hdr_pay_len", uint64(len(p.pay)))
		d.Set("s_hdr_aeth_syndrome", uint64(p.syn))
		d.Set("s_hdr_aeth_msn", uint64(p.amsn))
		for off := 0; off < len(p.pay); off += rqW {
			end := min(off+rqW, len(p.pay))
			b.beats = append(b.beats, p.pay[off:end])
			b.lasts = append(b.lasts, end == len(p.pay))
		}
	}
	d.Set("s_hdr_valid", b2u(b.hdrOn))
	if !b.payOn && len(b.beats) > 0 && rng.Intn(100) >= k.payGap {
		b.payOn = true
		beat := make([]byte, rqW)
		copy(beat, b.beats[0])
		d.SetBytes("s_axis_pay_tdata", beat)
		d.Set("s_axis_pay_tkeep", uint64(1)<<len(b.beats[0])-1)
		d.Set("s_axis_pay_tlast", b2u(b.lasts[0]))
	}
	d.Set("s_axis_pay_tvalid", b2u(b.payOn))

	// Control lane.
	if !b.ctlOn && b.ck < len(b.ctls) && b.ctlReady(now) && rng.Intn(100) >= k.dbGap {
		b.ctlOn = true
		b.startCtl()
	}
	isLoad := b.ctlOn && b.ev[b.ctls[b.ck]].load != nil
	d.Set("s_db_valid", b2u(b.ctlOn && !isLoad))
	d.Set("ctx_load_en", 0)
	enable := k.enableOffN == 0 || now < uint64(k.enableOffAt) || now >= uint64(k.enableOffAt+k.enableOffN)
	d.Set("cfg_enable", b2u(enable))

	// Host: WQE reads, in order, after the latency.
	rdReqReady := rng.Intn(100) >= k.rdReqStall
	d.Set("m_dma_rd_req_ready", b2u(rdReqReady))
	if !b.rdOn && len(b.rdQ) > 0 && b.rdQ[0].at <= now && rng.Intn(100) >= k.rdGap {
		b.rdOn = true
		r := b.rdQ[0]
		d.SetBytes("s_axis_dma_rd_tdata", r.data[b.rdBeat*rqW:(b.rdBeat+1)*rqW])
		d.Set("s_axis_dma_rd_tkeep", 0xFF)
		d.Set("s_axis_dma_rd_tlast", b2u((b.rdBeat+1)*rqW == len(r.data)))
		d.Set("s_axis_dma_rd_tuser", b2u(r.tuser[b.rdBeat]))
	}
	d.Set("s_axis_dma_rd_tvalid", b2u(b.rdOn))
	wrReqReady := rng.Intn(100) >= k.wrReqStall
	wrReady := rng.Intn(100) >= k.wrStall
	ackReady := rng.Intn(100) >= k.ackStall
	cqeReady := rng.Intn(100) >= k.cqeStall
	fwdReady := rng.Intn(100) >= k.fwdStall
	d.Set("m_dma_wr_req_ready", b2u(wrReqReady))
	d.Set("m_axis_dma_wr_tready", b2u(wrReady))
	d.Set("m_tx_ready", b2u(ackReady))
	d.Set("m_cqe_ready", b2u(cqeReady))
	d.Set("m_ack_ready", b2u(fwdReady))
	d.Eval()
	b.txHeld = b.hold(b.txHeld, "m_tx_valid", ackReady, rqTxPorts)
	b.fwdHeld = b.hold(b.fwdHeld, "m_ack_valid", fwdReady, rqFwdPorts)

	// A load goes in a cycle where ctx_load_ready is 1 (which does not depend on ctx_load_en).
	loadFire := false
	if isLoad && d.Get("ctx_load_ready") == 1 {
		d.Set("ctx_load_en", 1)
		d.Eval()
		require.EqualValues(t, 1, d.Get("ctx_load_ready"), "ctx_load_ready independent of ctx_load_en")
		loadFire = true
	}

	hdrFire := b.hdrOn && d.Get("s_hdr_ready") == 1
	if !enable {
		require.False(t, hdrFire, "no descriptor taken with cfg_enable low")
	}
	payFire := b.payOn && d.Get("s_axis_pay_tready") == 1
	dbFire := b.ctlOn && !isLoad && d.Get("s_db_ready") == 1
	rdFire := b.rdOn && d.Get("s_axis_dma_rd_tready") == 1

	if rdReqReady && d.Get("m_dma_rd_req_valid") == 1 {
		a := d.Get("m_dma_rd_req_addr")
		require.EqualValues(t, regs.RecvWQESize, d.Get("m_dma_rd_req_len"), "WQE read length")
		ring := uint64(0)
		for base, n := range b.rings {
			if a >= base && a+regs.RecvWQESize <= base+uint64(n)*regs.RecvWQESize && (a-base)%regs.RecvWQESize == 0 {
				ring = base
			}
		}
		require.NotZero(t, ring, "WQE read at %#x is a slot of a ring", a)
		b.reads[ring]++
		r := &rqRead{data: make([]byte, regs.RecvWQESize), tuser: make([]bool, regs.RecvWQESize/rqW),
			at: now + uint64(k.rdLat) + 1}
		if b.poison[a] {
			rng.Read(r.data)
			for i := range r.tuser {
				r.tuser[i] = rng.Intn(2) == 0
			}
			r.tuser[rng.Intn(len(r.tuser))] = true
		} else {
			copy(r.data, b.mem[rqMemOff(a):])
		}
		b.rdQ = append(b.rdQ, r)
	}

	if wrReqReady && d.Get("m_dma_wr_req_valid") == 1 {
		a, n := d.Get("m_dma_wr_req_addr"), int(d.Get("m_dma_wr_req_len"))
		require.Positive(t, n, "no 0-byte write")
		require.NotNil(t, b.buf(a, n), "write of %d bytes at %#x lies inside a posted buffer", n, a)
		b.wrQ = append(b.wrQ, &rqWrite{addr: a, n: n})
		b.writes++
	}
	if wrReady && d.Get("m_axis_dma_wr_tvalid") == 1 {
		require.NotEmpty(t, b.wrQ, "write data only after its request")
		w := b.wrQ[0]
		keep := d.Get("m_axis_dma_wr_tkeep")
		n := 0
		for n < rqW && keep&(uint64(1)<<n) != 0 {
			n++
		}
		require.Equal(t, uint64(1)<<n-1, keep, "write tkeep contiguous from lane 0")
		require.Positive(t, n, "no empty write beat")
		require.LessOrEqual(t, w.got+n, w.n, "write data no longer than its request")
		last := w.got+n == w.n
		require.Equal(t, last, d.Get("m_axis_dma_wr_tlast") == 1, "tlast on the write's last beat")
		if !last {
			require.Equal(t, rqW, n, "write beats full but the last")
		}
		data := d.GetBytes("m_axis_dma_wr_tdata")
		copy(b.mem[rqMemOff(w.addr)+w.got:], data[:n])
		w.got += n
		if last {
			b.wrQ = b.wrQ[1:]
		}
	}

	if ackReady && d.Get("m_tx_valid") == 1 {
		ext0 := d.Get("m_tx_ext0")
		got := rqACK{DstMAC: d.Get("m_tx_dst_mac"), DstIP: uint32(d.Get("m_tx_dst_ip")),
			Sport: uint16(d.Get("m_tx_udp_sport")), DestQP: uint32(d.Get("m_tx_dest_qp")),
			PSN: uint32(d.Get("m_tx_psn")), Syn: uint8(ext0 >> 24), MSN: uint32(ext0 & wire.PSNMask)}
		b.matchACK(got)
		require.EqualValues(t, wire.OpRCAck, d.Get("m_tx_opcode"))
		require.EqualValues(t, 1, d.Get("m_tx_ext"), "AETH")
		require.Zero(t, d.Get("m_tx_se")|d.Get("m_tx_ack_req")|d.Get("m_tx_ext1")|d.Get("m_tx_pay_len"))
		b.ackAt = append(b.ackAt, now)
	}
	if fwdReady && d.Get("m_ack_valid") == 1 {
		require.Less(t, b.fwds, len(b.ref.fwd), "no more received ACKs for the completer than the reference")
		got := rqFwd{QPN: uint32(d.Get("m_ack_qpn")), PSN: uint32(d.Get("m_ack_psn")),
			Syn: uint8(d.Get("m_ack_syndrome")), MSN: uint32(d.Get("m_ack_msn"))}
		require.Equal(t, b.ref.fwd[b.fwds], got, "received ACK %d", b.fwds)
		b.fwds++
	}
	if cqeReady && d.Get("m_cqe_valid") == 1 {
		got := rqCQE{QPN: uint32(d.Get("m_cqe_qpn")), WrID: d.Get("m_cqe_wr_id"),
			ByteLen: uint32(d.Get("m_cqe_byte_len")), Opcode: uint8(d.Get("m_cqe_opcode")),
			Status: uint8(d.Get("m_cqe_status")), SE: d.Get("m_cqe_solicited") == 1,
			Index: uint16(d.Get("m_cqe_wqe_index"))}
		k := b.cqes[got.QPN]
		want := b.ref.cqes[got.QPN]
		require.Less(t, k, len(want), "QP %d: no more CQEs than the reference (%+v)", got.QPN, got)
		w := want[k]
		if w.anyWrID {
			got.WrID = 0
		}
		require.Equal(t, w.rqCQE, got, "QP %d: CQE %d", got.QPN, k)
		if w.data != nil {
			o := rqMemOff(w.addr)
			require.Equal(t, w.data, b.mem[o:o+len(w.data)], "QP %d CQE %d: payload in memory before the CQE", got.QPN, k)
		}
		b.cqes[got.QPN]++
		b.nCQE++
		b.cqeAt = append(b.cqeAt, now)
	}
	if d.Get("m_drop_valid") == 1 {
		require.Less(t, len(b.drops), len(b.ref.drops), "no more drops than the reference")
		r := uint8(d.Get("m_drop_reason"))
		require.Equal(t, b.ref.drops[len(b.drops)], r, "drop %d", len(b.drops))
		b.drops = append(b.drops, r)
	}

	d.Tick()

	if hdrFire {
		b.taken[b.pk] = now
		b.pk++
		b.hdrOn = false
	}
	if payFire {
		b.beats, b.lasts = b.beats[1:], b.lasts[1:]
		b.payOn = false
	}
	if dbFire || loadFire {
		b.ctlDone[b.ck] = now + 3
		b.ctlNext[b.ck] = now + 3
		if e := b.ev[b.ctls[b.ck]]; e.eager && e.post != nil {
			b.ctlNext[b.ck] = now + 1
		}
		b.ck++
		b.ctlOn = false
	}
	if rdFire {
		b.rdOn = false
		b.rdBeat++
		if b.rdBeat*rqW == len(b.rdQ[0].data) {
			b.rdQ, b.rdBeat = b.rdQ[1:], 0
		}
	}
}

// run plays the whole script, waits until every expected output came out, runs a while longer
// to catch extra ones, and compares host memory with the reference's byte for byte.
func (b *rqBench) run(limit int) {
	t := b.t
	t.Helper()
	start := b.d.Cycles()
	done := func() bool {
		return b.pk == len(b.pkts) && b.ck == len(b.ctls) && len(b.beats) == 0 && len(b.rdQ) == 0 &&
			len(b.wrQ) == 0 && b.acksSettled() && b.fwds == len(b.ref.fwd) && b.nCQE == b.ref.nCQE &&
			len(b.drops) == len(b.ref.drops)
	}
	for !done() {
		b.step()
		if b.d.Cycles()-start >= uint64(limit) {
			require.Failf(t, "script not finished", "within %d cycles: packets %d/%d, control %d/%d, beats left %d, reads %d, writes open %d, ACKs %d/%d, received ACKs %d/%d, CQEs %d/%d, drops %d/%d",
				limit, b.pk, len(b.pkts), b.ck, len(b.ctls), len(b.beats), len(b.rdQ), len(b.wrQ),
				b.ackNext, len(b.ref.acks), b.fwds, len(b.ref.fwd), b.nCQE, b.ref.nCQE, len(b.drops), len(b.ref.drops))
		}
	}
	b.k = rqKnobs{}
	for i := 0; i < 40; i++ {
		b.step()
	}
	require.Empty(t, b.wrQ, "no write left open")
	require.True(t, b.acksSettled(), "every ACK not sent was merged into a later one that was (ACK %d of %d next)",
		b.ackNext, len(b.ref.acks))
	for i := range b.mem {
		if b.mem[i] != b.ref.mem[i] {
			require.Failf(t, "host memory differs", "first at IOVA %#x: %#02x, want %#02x", rqMemBase+uint64(i), b.mem[i], b.ref.mem[i])
		}
	}
}

// --- scripts ---------------------------------------------------------------------------------------

var rqKnobSets = []struct {
	name string
	k    rqKnobs
}{
	{"ideal", rqKnobs{}},
	{"stalls", rqKnobs{hdrGap: 30, payGap: 20, dbGap: 30, rdReqStall: 30, rdGap: 20, wrReqStall: 30, wrStall: 25, ackStall: 40, cqeStall: 40, fwdStall: 40}},
	{"pcie", rqKnobs{rdLat: 150, payGap: 5, rdGap: 5, wrStall: 10, ackStall: 10, cqeStall: 10}},
	{"pcie-stalls", rqKnobs{rdLat: 150, hdrGap: 20, payGap: 20, dbGap: 20, rdReqStall: 20, rdGap: 20, wrReqStall: 20, wrStall: 20, ackStall: 60, cqeStall: 60, fwdStall: 70}},
}

// rqMessages: every size of interest on several connections at once, packets interleaved,
// buffers exact, larger or smaller than the message, small rings that wrap, PSNs that wrap.
func rqMessages(g *rqGen, pmtu int) {
	sizes := []int{0, 1, 63, 64, pmtu - 1, pmtu, pmtu + 1, 3*pmtu + 17, 65536}
	qps := []uint32{0, 2, 77, 128, 255}
	for n, qp := range qps {
		psn := uint32(g.rng.Intn(1 << 24))
		if n == 1 {
			psn = wire.PSNMask - 40 // wraps during the run
		}
		g.queue(g.load(qp, true, psn, uint(1+n%3)))
	}
	g.mix()
	for _, qp := range qps {
		l := g.loadOf(qp)
		ring := 1 << l.log
		order := g.rng.Perm(len(sizes))
		pi := uint16(0)
		for len(order) > 0 {
			batch := order[:min(len(order), ring)]
			order = order[len(batch):]
			var lens []int
			for _, i := range batch {
				n := sizes[i]
				switch g.rng.Intn(4) {
				case 0:
					lens = append(lens, n)
				case 1: // too small: LOCAL_LENGTH, only what fits is written
					lens = append(lens, g.rng.Intn(n+1))
				default:
					lens = append(lens, n+1+g.rng.Intn(100))
				}
			}
			g.queue(g.post(qp, pi, lens, nil))
			pi += uint16(len(lens))
			for _, i := range batch {
				for _, e := range g.message(qp, sizes[i], pmtu) {
					g.queue(e)
				}
			}
		}
	}
	g.mix()
}

// TestRqEngineMessages sends messages of every size of interest at two path MTUs with every
// knob set: host memory, CQEs, ACKs must match the reference, and nothing may be written outside
// the posted buffers.
func TestRqEngineMessages(t *testing.T) {
	seed := int64(0x52510)
	t.Logf("seed %d", seed)
	for _, pmtu := range []int{wire.PMTU1024, wire.PMTU256} {
		for _, ks := range rqKnobSets {
			t.Run(ks.name+"/pmtu"+strconv.Itoa(pmtu), func(t *testing.T) {
				rng := rand.New(rand.NewSource(seed + int64(pmtu)))
				g := newRqGen(rng)
				rqMessages(g, pmtu)
				b := newRqBench(t, rng, g, ks.k)
				b.run(2000000)
				var ll int
				for _, cs := range b.ref.cqes {
					for _, c := range cs {
						if c.Status == uint8(regs.CQEStatusLocalLength) {
							ll++
						}
					}
				}
				require.Positive(t, ll, "some messages overflow their buffer")
				t.Logf("%d packets, %d CQEs (%d LOCAL_LENGTH), %d ACKs, %d writes in %d cycles",
					len(b.pkts), b.nCQE, ll, b.acks, b.writes, b.d.Cycles())
			})
		}
	}
}

// rqDrops: each drop reason, in the documented order of checks, with payload to drain, good
// traffic around it; a WQE read error; a reload in the middle of a message. Each drop's answer
// (re-ACK, NAK, RNR NAK or nothing) is the reference's to check.
func rqDrops(t *testing.T, g *rqGen) {
	const pmtu = 256
	const qp, other, reset, one, reload = 7, 9, 3, 1, 11
	for _, e := range []*rqEvent{g.load(qp, true, 1000, 2), g.load(other, true, wire.PSNMask, 3),
		g.load(reset, false, 5, 2), g.load(one, true, 0, 2), g.load(reload, true, 77, 2)} {
		g.emit(e)
	}
	msg := func(q uint32, n int) {
		for _, e := range g.message(q, n, pmtu) {
			g.emit(e)
		}
	}
	exp := func(q uint32) uint32 { return g.scratch.qps[q].epsn }
	drop := func(e *rqEvent, want uint8) {
		require.Equal(t, want, g.scratch.verdict(e.pkt), "script: packet %+v", *e.pkt)
		g.emit(e)
	}
	g.emit(g.post(other, 0, []int{100, 2000, 50}, nil))

	// QP_STATE: not ready (reset), QP 1 (the CM's) even though connection 1 is loaded ready, QP
	// numbers below and beyond the connections' whose low bits name a ready one, UD and other
	// opcodes; checked before everything else.
	g.emit(g.post(reset, 0, []int{64}, nil))
	drop(g.raw(wire.OpRCSendOnly, rqWire(reset), 5, 64), rqQPState)
	drop(g.raw(wire.OpRCSendMiddle, rqWire(reset), 9, 256), rqQPState)
	drop(g.raw(wire.OpRCSendOnly, wire.GSIQP, 0, 10), rqQPState)
	drop(g.raw(wire.OpUDSendOnly, wire.GSIQP, 0, 256), rqQPState)
	drop(g.raw(wire.OpRCSendOnly, qp, exp(qp), 8), rqQPState)
	drop(g.raw(wire.OpRCSendOnly, 2*rqNQP|qp, exp(qp), 8), rqQPState)
	drop(g.raw(wire.OpRCSendOnly, 1<<23|qp, exp(qp), 0), rqQPState)
	drop(g.raw(wire.OpUDSendOnly, rqWire(qp), exp(qp), 100), rqQPState)
	drop(g.raw(0x0A, rqWire(qp), exp(qp), 32), rqQPState) // RDMA WRITE ONLY
	drop(g.raw(0x06, rqWire(qp), exp(qp), 0), rqQPState)  // RDMA WRITE FIRST, no payload
	// ACKs: to the completer when the connection is ready, whatever their PSN; else QP_STATE.
	g.emit(g.raw(wire.OpRCAck, rqWire(qp), 123, 0))
	g.emit(g.raw(wire.OpRCAck, rqWire(other), exp(qp)+9, 0))
	drop(g.raw(wire.OpRCAck, rqWire(reset), 5, 0), rqQPState)
	drop(g.raw(wire.OpRCAck, wire.GSIQP, 0, 0), rqQPState)
	drop(g.raw(wire.OpRCAck, qp, 0, 0), rqQPState)
	drop(g.raw(wire.OpRCAck, 3*rqNQP|qp, 0, 0), rqQPState)
	// PEER_IP: from another address than the connection's peer, data or ACK, whatever the PSN
	// (before every PSN rule); QP_STATE goes first.
	stranger := g.peer[qp] ^ 0x00010000
	drop(from(g.raw(wire.OpRCSendOnly, rqWire(qp), exp(qp), 8), stranger), rqPeerIP)
	drop(from(g.raw(wire.OpRCSendFirst, rqWire(qp), exp(qp)+3, 256), stranger), rqPeerIP)
	drop(from(g.raw(wire.OpRCSendMiddle, rqWire(qp), exp(qp)-1, 256), g.peer[other]), rqPeerIP)
	drop(from(g.raw(wire.OpRCAck, rqWire(qp), 123, 0), stranger), rqPeerIP)
	drop(from(g.raw(wire.OpRCAck, rqWire(other), exp(other), 0), 0), rqPeerIP)
	drop(from(g.raw(wire.OpRCSendOnly, rqWire(reset), 5, 64), stranger), rqQPState)
	msg(other, 100)

	// DUPLICATE and PSN, before SEQUENCE and NO_RECV: nothing is posted on qp yet.
	drop(g.raw(wire.OpRCSendMiddle, rqWire(qp), exp(qp)+1, 256), rqPSN) // NAK
	drop(g.raw(wire.OpRCSendOnly, rqWire(qp), exp(qp)+2, 3), rqPSN)     // the same gap: no NAK
	drop(g.raw(wire.OpRCSendOnly, rqWire(qp), exp(qp)-1, 3), rqDup)
	drop(g.raw(wire.OpRCSendFirst, rqWire(qp), exp(qp)-1<<22, 256), rqDup)
	// SEQUENCE before NO_RECV: MIDDLE and LAST outside a message.
	drop(g.raw(wire.OpRCSendMiddle, rqWire(qp), exp(qp), 256), rqSequence)
	drop(g.raw(wire.OpRCSendLast, rqWire(qp), exp(qp), 17), rqSequence)
	// NO_RECV: a message with no receive posted.
	drop(g.raw(wire.OpRCSendOnly, rqWire(qp), exp(qp), 40), rqNoRecv)
	drop(g.raw(wire.OpRCSendFirst, rqWire(qp), exp(qp), 256), rqNoRecv)
	msg(other, 2000)
	g.emit(g.post(qp, 0, []int{1000, 300, 64}, nil))
	// A message with FIRST/ONLY/bad PSN packets dropped inside it.
	pk := g.message(qp, 3*pmtu+5, pmtu)
	g.emit(pk[0])
	drop(g.raw(wire.OpRCSendFirst, rqWire(qp), exp(qp), 256), rqSequence)
	drop(g.raw(wire.OpRCSendOnly, rqWire(qp), exp(qp), 9), rqSequence)
	drop(g.raw(wire.OpRCSendMiddle, rqWire(qp), exp(qp)+5, 256), rqPSN) // a new gap since pk[0] was accepted: NAK again
	g.emit(pk[1])
	drop(g.raw(wire.OpRCSendMiddle, rqWire(reset), 0, 256), rqQPState)
	g.emit(pk[2])
	g.emit(pk[3])
	msg(qp, 300)
	// Two more WQEs, the ring wrapping (slot 0 again); the second read fails.
	g.emit(g.post(qp, 3, []int{500, 500}, []bool{true, false}))
	msg(qp, 400) // into the 64-byte buffer: LOCAL_LENGTH
	msg(qp, 64)  // the bad WQE: DMA_ERROR, nothing written
	msg(qp, 64)  // fine again
	drop(g.raw(wire.OpRCSendOnly, rqWire(qp), exp(qp), 1), rqNoRecv)
	msg(other, 50)

	// A reload in the middle of a message: the old message never completes, the old PSN is
	// wrong, and the new context starts between messages with an empty ring.
	g.emit(g.post(reload, 0, []int{2000, 100}, nil))
	pk = g.message(reload, 2*pmtu+1, pmtu)
	g.emit(pk[0])
	g.emit(g.load(reload, true, 5000, 3))
	drop(pk[1], rqDup) // 78 is behind 5000
	drop(g.raw(wire.OpRCSendMiddle, rqWire(reload), 5000, 256), rqSequence)
	drop(g.raw(wire.OpRCSendOnly, rqWire(reload), 5000, 256), rqNoRecv)
	g.emit(g.post(reload, 0, []int{100}, nil))
	msg(reload, 100)
	// Reset a connection (load with rts 0), then make it ready again.
	g.emit(g.load(qp, false, 0, 2))
	drop(g.raw(wire.OpRCSendOnly, rqWire(qp), 0, 64), rqQPState)
	g.emit(g.load(qp, true, 0xFFFFFF, 2))
	g.emit(g.post(qp, 0, []int{64, 64, 64}, nil))
	msg(qp, 64)
	msg(qp, 64)
	msg(other, 0)
}

// TestRqEngineDrops checks each drop reason and its precedence, with payload drained and the
// state untouched, a WQE read error, and a reload in the middle of a message.
func TestRqEngineDrops(t *testing.T) {
	// The script is fixed; the seed draws payloads, peers, RNR timer codes and stalls.
	seed := int64(0xD80)
	t.Logf("seed %d", seed)
	for _, ks := range rqKnobSets {
		t.Run(ks.name, func(t *testing.T) {
			rng := rand.New(rand.NewSource(seed))
			g := newRqGen(rng)
			rqDrops(t, g)
			b := newRqBench(t, rng, g, ks.k)
			b.run(300000)
			counts := map[uint8]int{}
			for _, r := range b.drops {
				counts[r]++
			}
			for _, r := range []uint8{rqQPState, rqPeerIP, rqPSN, rqSequence, rqNoRecv, rqDup} {
				assert.Positive(t, counts[r], "reason %d", r)
			}
			assert.Len(t, b.ref.fwd, 2, "received ACKs of ready connections from their peers")
			var dmaErr int
			for _, c := range b.ref.cqes[7] {
				if c.Status == uint8(regs.CQEStatusDMAError) {
					dmaErr++
				}
			}
			assert.Equal(t, 1, dmaErr, "one DMA_ERROR completion")
			t.Logf("drops by reason %v, %d CQEs, %d ACKs", counts, b.nCQE, b.acks)
		})
	}
}

// rqSender is the requester at the far end of one connection in rqRandom: the message it is
// sending, its next packet, and the packets it sent lately (to resend as duplicates).
type rqSender struct {
	msg  []*rqEvent
	next int
	sent []*rqEvent
}

// rewind moves the sender back to the packet of its message with PSN psn, if it has one at or
// before its next packet: go-back-N after a NAK or a retransmit timeout.
func (s *rqSender) rewind(psn uint32) {
	for k := 0; k < len(s.msg) && k <= s.next; k++ {
		if s.msg[k].pkt.psn == psn {
			s.next = k
		}
	}
}

// rqRandom writes a random mix: messages of random sizes on several connections, packet by
// packet interleaved, with doorbells, bad WQEs, injected bad packets and ACKs, and reloads
// between; half the loads start the PSNs just below the 24-bit wrap. The senders act as RC
// requesters do: they lose packets (the rest of the window arrives ahead: one NAK per gap), go
// back to the expected PSN after a NAK or a timeout, resending some packets the receiver already
// has on the way (duplicates, each re-ACKed), and resend a message's first packet after an RNR
// NAK until a receive is posted and it is accepted.
func rqRandom(g *rqGen, steps, pmtu int) {
	qps := []uint32{0, 1, 4, 31, 100, 254, 255}
	snd := map[uint32]*rqSender{}
	psn := func() uint32 {
		if g.rng.Intn(2) == 0 {
			return wire.PSNMask - uint32(g.rng.Intn(40))
		}
		return uint32(g.rng.Intn(1 << 24))
	}
	send := func(s *rqSender, e *rqEvent) {
		g.emit(e)
		s.sent = append(s.sent, e)
		if len(s.sent) > 8 {
			s.sent = s.sent[1:]
		}
	}
	for _, qp := range qps {
		g.emit(g.load(qp, qp != 31, psn(), uint(1+g.rng.Intn(4))))
		snd[qp] = &rqSender{}
	}
	for i := 0; i < steps; i++ {
		qp := qps[g.rng.Intn(len(qps))]
		q := g.scratch.qps[qp]
		s := snd[qp]
		exp := q.epsn
		switch r := g.rng.Intn(100); {
		case r < 3: // reload
			*s = rqSender{}
			g.emit(g.load(qp, g.rng.Intn(6) != 0, psn(), uint(1+g.rng.Intn(4))))
		case r < 15: // post what fits
			room := int(uint16(1)<<q.ctx.log) - int(q.pi-q.ci)
			if room > 0 && q.ctx.rts {
				n := 1 + g.rng.Intn(room)
				lens := make([]int, n)
				bad := make([]bool, n)
				for k := range lens {
					lens[k] = []int{0, 1, 64, pmtu, 3 * pmtu, g.rng.Intn(5000)}[g.rng.Intn(6)]
					bad[k] = g.rng.Intn(25) == 0
				}
				g.emit(g.post(qp, q.pi, lens, bad))
			}
		case r < 22: // a bad packet, or an ACK
			ops := []uint8{wire.OpRCSendFirst, wire.OpRCSendMiddle, wire.OpRCSendLast, wire.OpRCSendOnly, wire.OpUDSendOnly, wire.OpRCAck}
			op := ops[g.rng.Intn(len(ops))]
			psn := exp
			if g.rng.Intn(2) == 0 {
				psn = exp + uint32(g.rng.Intn(7)) - 3
			}
			dst := rqWire(qp)
			if g.rng.Intn(6) == 0 {
				dst = qp | uint32(g.rng.Intn(256))<<9 // not a connection's QP (0 to 1: QP 1 too)
			}
			n := 0
			switch op {
			case wire.OpRCSendFirst, wire.OpRCSendMiddle:
				n = pmtu
			case wire.OpRCAck:
			default:
				n = g.rng.Intn(pmtu + 1)
			}
			e := g.raw(op, dst, psn, n)
			if g.rng.Intn(5) == 0 {
				from(e, g.rng.Uint32()) // another connection's packet with the same QP number
			}
			g.emit(e)
		case r < 26 && s.next < len(s.msg): // the next packet is lost on the way
			s.next++
		case r < 30: // go back to the expected PSN, resending a few older packets first
			for n := g.rng.Intn(4); n > 0 && len(s.sent) > 0; n-- {
				send(s, again(s.sent[g.rng.Intn(len(s.sent))]))
			}
			s.rewind(exp)
		default: // the next packet of the message, or of a new one (mostly with a WQE posted)
			if s.next == len(s.msg) {
				s.rewind(exp) // the receiver lacks part of it: the sender times out and goes back
			}
			if s.next == len(s.msg) {
				if q.ctx.rts && q.pi == q.ci && g.rng.Intn(8) != 0 {
					g.emit(g.post(qp, q.pi, []int{[]int{64, pmtu, 3 * pmtu, g.rng.Intn(6000)}[g.rng.Intn(4)]}, nil))
				}
				g.sendPSN[qp] = exp
				sizes := []int{0, 1, 63, 64, pmtu - 1, pmtu, pmtu + 1, 2*pmtu + g.rng.Intn(pmtu), g.rng.Intn(6000)}
				s.msg, s.next = g.message(qp, sizes[g.rng.Intn(len(sizes))], pmtu), 0
			}
			e := again(s.msg[s.next])
			starts := e.pkt.op == wire.OpRCSendFirst || e.pkt.op == wire.OpRCSendOnly
			if starts && q.ctx.rts && q.pi == q.ci && g.rng.Intn(3) == 0 {
				g.emit(g.post(qp, q.pi, []int{g.rng.Intn(2 * pmtu)}, nil))
			}
			why := g.scratch.verdict(e.pkt)
			send(s, e)
			switch {
			case why == rqNoRecv: // RNR NAK: the same packet again later
			case why == rqSequence && starts:
				s.msg, s.next = nil, 0 // the sender gives up on this message
			default:
				s.next++
			}
		}
	}
}

// TestRqEngineRandom runs long random mixes with every knob set against the reference.
func TestRqEngineRandom(t *testing.T) {
	// Seed 0xACE's 1500 steps give, with every knob set: drops of each reason (DUPLICATE and
	// PSN ones across the PSN wrap too), a NAK for each gap, RNR NAKs followed by the same packet
	// accepted once posted, sequence NAKs, received ACKs (some for connections not ready), and
	// a few merged re-ACKs under the stalls; the assertions below keep it so.
	seed := int64(0xACE)
	t.Logf("seed %d", seed)
	for _, ks := range rqKnobSets {
		t.Run(ks.name, func(t *testing.T) {
			rng := rand.New(rand.NewSource(seed))
			g := newRqGen(rng)
			rqRandom(g, 1500, wire.PMTU512)
			b := newRqBench(t, rng, g, ks.k)
			b.run(2000000)
			counts := map[uint8]int{}
			for _, r := range b.drops {
				counts[r]++
			}
			for _, r := range []uint8{rqQPState, rqPeerIP, rqPSN, rqSequence, rqNoRecv, rqDup} {
				assert.Positive(t, counts[r], "reason %d", r)
			}
			syns := map[uint8]int{} // RNR NAKs under rqSynRNR(0)
			for _, a := range b.ref.acks {
				if a.Syn&0x60 == rqSynRNR(0) {
					a.Syn = rqSynRNR(0)
				}
				syns[a.Syn]++
			}
			for _, s := range []uint8{rqSynACK, rqSynSeq, rqSynInvReq, rqSynRNR(0)} {
				assert.Positive(t, syns[s], "ACKs and NAKs with syndrome %#x", s)
			}
			assert.Positive(t, len(b.ref.fwd), "received ACKs to the completer")
			assert.Positive(t, b.ref.wrapped, "duplicates and gaps across the PSN wrap")
			st := map[uint8]int{}
			for _, cs := range b.ref.cqes {
				for _, c := range cs {
					st[c.Status]++
				}
			}
			for _, s := range []regs.CQEStatus{regs.CQEStatusOk, regs.CQEStatusLocalLength, regs.CQEStatusDMAError} {
				assert.Positive(t, st[uint8(s)], "status %v", s)
			}
			t.Logf("%d packets: drops %v (%d across the PSN wrap); CQEs by status %v; ACKs and NAKs by syndrome %v, %d sent, %d merged; %d received ACKs; %d cycles",
				len(b.pkts), counts, b.ref.wrapped, st, syns, b.acks, b.merged, b.fwds, b.d.Cycles())
		})
	}
}

// rqAnswer is what the responder answered a packet with: an ACK or NAK's syndrome, PSN, MSN.
type rqAnswer struct {
	Syn uint8
	PSN uint32
	MSN uint32
}

// answers lists the reference's ACKs and NAKs of QP qp.
func (r *rqRef) answers(qp uint32) []rqAnswer {
	var out []rqAnswer
	for k, a := range r.acks {
		if r.ackKey[k].qp == qp {
			out = append(out, rqAnswer{a.Syn, a.PSN, a.MSN})
		}
	}
	return out
}

// TestRqEngineReliable walks the responder through each of its answers on connections whose PSNs
// cross the 24-bit wrap: duplicates re-ACKed with epsn - 1 (across the wrap too, and at the far
// edge of the space behind), one NAK per gap carrying epsn and silence after it (the far edge
// ahead too), an RNR NAK with the connection's timer code and the packet's PSN, then the same
// packet accepted once a receive is posted, NAKs for sequence errors, go-back-N, and received
// ACKs passed to the completer. The reference's answers are checked against ones written out
// here; the bench holds the engine to the reference, with every knob set.
func TestRqEngineReliable(t *testing.T) {
	// The script and its answers are fixed; the seed draws payloads, peers and stalls.
	seed := int64(0x5E7)
	t.Logf("seed %d", seed)
	const pmtu = 256
	const qp, peer = 9, 200
	const rnr = 14 // 1.28 ms
	for _, ks := range rqKnobSets {
		t.Run(ks.name, func(t *testing.T) {
			rng := rand.New(rand.NewSource(seed))
			g := newRqGen(rng)
			ld := g.load(qp, true, wire.PSNMask-2, 2)
			ld.load.rnr = rnr
			g.emit(ld)
			g.emit(g.load(peer, true, wire.PSNMask-1, 3))
			exp := func(q uint32) uint32 { return g.scratch.qps[q].epsn }
			send := func(op uint8, q, psn uint32, n int, ackReq bool, want uint8) *rqEvent {
				e := g.raw(op, rqWire(q), psn, n)
				e.pkt.ackReq = ackReq
				require.Equal(t, want, g.scratch.verdict(e.pkt), "script: packet %+v", *e.pkt)
				g.emit(e)
				return e
			}
			var want []rqAnswer
			ack := func(syn uint8, psn, msn uint32) { want = append(want, rqAnswer{syn, psn & wire.PSNMask, msn}) }

			// A three-packet message up to the wrap: 0xFFFFFD..0xFFFFFF, ACKed at its end.
			g.emit(g.post(qp, 0, []int{1000}, nil))
			f := send(wire.OpRCSendFirst, qp, 0xFFFFFD, pmtu, false, 0)
			m := send(wire.OpRCSendMiddle, qp, 0xFFFFFE, pmtu, false, 0)
			l := send(wire.OpRCSendLast, qp, 0xFFFFFF, 100, true, 0)
			ack(rqSynACK, 0xFFFFFF, 1)
			require.Zero(t, exp(qp), "epsn wrapped")
			// Duplicates across the wrap, each re-ACKed with epsn - 1 = 0xFFFFFF; the farthest
			// behind is 2^23 before epsn.
			for _, e := range []*rqEvent{m, l, f} {
				require.Equal(t, rqDup, g.scratch.verdict(e.pkt))
				g.emit(again(e))
				ack(rqSynACK, 0xFFFFFF, 1)
			}
			send(wire.OpRCSendOnly, qp, 1<<23, 0, true, rqDup)
			ack(rqSynACK, 0xFFFFFF, 1)
			// A gap: the farthest ahead (2^23 - 1 after epsn) gets the one NAK, with epsn; the
			// rest of the gap is dropped silently.
			send(wire.OpRCSendOnly, qp, 1<<23-1, 10, true, rqPSN)
			ack(rqSynSeq, 0, 1)
			send(wire.OpRCSendFirst, qp, 1, pmtu, false, rqPSN)
			send(wire.OpRCSendOnly, qp, 2, 5, true, rqPSN)
			// The expected PSN with no receive posted: RNR NAK with the timer code and the packet's
			// PSN; epsn stays, and the gap stays NAKed (no second NAK).
			only := send(wire.OpRCSendOnly, qp, 0, 64, true, rqNoRecv)
			ack(rqSynRNR(rnr), 0, 1)
			send(wire.OpRCSendOnly, qp, 1, 64, true, rqPSN)
			only = again(only)
			require.Equal(t, rqNoRecv, g.scratch.verdict(only.pkt))
			g.emit(only)
			ack(rqSynRNR(rnr), 0, 1)
			// Once a receive is posted, the same packet is accepted.
			g.emit(g.post(qp, 1, []int{64, 2000}, nil))
			only = again(only)
			require.Zero(t, g.scratch.verdict(only.pkt))
			g.emit(only)
			ack(rqSynACK, 0, 2)
			// Sequence errors at the expected PSN: NAK invalid request with epsn; epsn stays.
			send(wire.OpRCSendMiddle, qp, 1, pmtu, true, rqSequence)
			ack(rqSynInvReq, 1, 2)
			send(wire.OpRCSendLast, qp, 1, 7, false, rqSequence)
			ack(rqSynInvReq, 1, 2)
			// A new gap, a new NAK: the sender lost the FIRST at 1.
			g.sendPSN[qp] = exp(qp)
			msg := g.message(qp, 2*pmtu+1, pmtu)
			require.Equal(t, uint32(1), msg[0].pkt.psn)
			msg[0].pkt.ackReq, msg[1].pkt.ackReq = false, false
			require.Equal(t, rqPSN, g.scratch.verdict(msg[1].pkt))
			g.emit(msg[1])
			ack(rqSynSeq, 1, 2)
			require.Equal(t, rqPSN, g.scratch.verdict(msg[2].pkt))
			g.emit(msg[2])
			// Go-back-N from 1, a received ACK in between (passed on, whatever its PSN).
			g.emit(again(msg[0]))
			g.emit(g.raw(wire.OpRCAck, rqWire(qp), 0x123456, 0))
			g.emit(again(msg[1]))
			g.emit(again(msg[2]))
			ack(rqSynACK, 3, 3)
			send(wire.OpRCSendOnly, qp, 0, 0, false, rqDup)
			ack(rqSynACK, 3, 3)
			assert.Equal(t, want, g.scratch.answers(qp), "QP %d: the reference's answers", qp)

			// The peer: a gap across the wrap (0xFFFFFE lost), NAKed once, then go-back-N and a
			// duplicate re-ACKed with the PSN before the one expected.
			want = nil
			g.emit(g.post(peer, 0, []int{5000}, nil))
			msg = g.message(peer, 4*pmtu, pmtu)
			for k, e := range msg {
				e.pkt.ackReq = k == 3
			}
			for _, e := range msg[1:] {
				require.Equal(t, rqPSN, g.scratch.verdict(e.pkt))
				g.emit(e)
			}
			ack(rqSynSeq, 0xFFFFFE, 0)
			g.emit(g.raw(wire.OpRCAck, rqWire(peer), 5, 0))
			for _, e := range msg {
				require.Zero(t, g.scratch.verdict(e.pkt))
				g.emit(again(e))
			}
			ack(rqSynACK, 1, 1)
			require.Equal(t, uint32(2), exp(peer))
			g.emit(again(msg[1]))
			ack(rqSynACK, 1, 1)
			assert.Equal(t, want, g.scratch.answers(peer), "QP %d: the reference's answers", peer)
			// A burst of received ACKs, more than the completer's FIFO holds.
			for n := 0; n < 12; n++ {
				g.emit(g.raw(wire.OpRCAck, rqWire([]uint32{qp, peer}[n%2]), uint32(rng.Intn(1<<24)), 0))
			}

			b := newRqBench(t, rng, g, ks.k)
			b.run(200000)
			assert.Equal(t, 14, b.fwds, "received ACKs to the completer")
			t.Logf("%d packets, %d ACKs and NAKs sent (%d merged), %d drops", len(b.pkts), b.acks, b.merged, len(b.drops))
		})
	}
}

// TestRqEngineAckMerge makes re-ACK storms, as go-back-N retransmissions do, on two connections,
// with the transmitter slow to take ACKs: plain ACKs of the same connection queued behind one
// another merge, the NAKs between them all go out in order, and the last ACK of each burst
// is sent (the bench's matching allows exactly that, and checks that a descriptor shown to the
// transmitter never changes); ACKs of a connection before and after a load do not merge. With a
// transmitter that keeps up, nothing merges.
func TestRqEngineAckMerge(t *testing.T) {
	// The storms' shapes come from the seed: with it, the slow-transmitter runs merge a fifth to
	// a quarter of the ACKs (the assertion asks for an eighth), with 17 NAKs among them.
	seed := int64(0xAC4)
	t.Logf("seed %d", seed)
	const pmtu = 256
	for _, tc := range []struct {
		name  string
		k     rqKnobs
		merge bool
	}{
		{"slow-tx", rqKnobs{ackStall: 85}, true},
		{"slow-tx-stalls", rqKnobs{ackStall: 80, hdrGap: 20, payGap: 20, fwdStall: 50, cqeStall: 30, rdLat: 40}, true},
		{"fast-tx", rqKnobs{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewSource(seed))
			g := newRqGen(rng)
			qps := []uint32{3, 4}
			for _, q := range qps {
				g.emit(g.load(q, true, wire.PSNMask-uint32(rng.Intn(20)), 6))
				g.emit(g.post(q, 0, []int{64, 64, 64, 64, 64, 64, 64, 64}, nil))
			}
			var sent [2][]*rqEvent
			for round := 0; round < 8; round++ {
				for k, q := range qps {
					// A few messages, each packet asking for an ACK: a burst of plain ACKs.
					for n := 0; n < 1+rng.Intn(3); n++ {
						for _, e := range g.message(q, []int{0, 64, 600}[rng.Intn(3)], pmtu) {
							e.pkt.ackReq = true
							g.emit(e)
							sent[k] = append(sent[k], e)
						}
					}
					// The sender goes back: everything again, duplicates re-ACKed one by one, with
					// a gap in the middle of the storm (one NAK), sometimes on the other connection.
					gap := rng.Intn(len(sent[k]))
					for j, e := range sent[k] {
						if j == gap {
							gq := qps[rng.Intn(2)]
							g.emit(g.raw(wire.OpRCSendOnly, rqWire(gq), g.scratch.qps[gq].epsn+uint32(1+rng.Intn(5)), 0))
						}
						g.emit(again(e))
					}
					if len(sent[k]) > 12 {
						sent[k] = sent[k][len(sent[k])-12:]
					}
					// A reload right after a storm, and ACKs of the new connection at once: no
					// merging across the load (the new ACKs go to another peer).
					if round == 4 && k == 0 {
						g.emit(g.load(q, true, g.scratch.qps[q].epsn, 6))
						g.emit(g.post(q, 0, []int{64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64}, nil))
						for _, e := range g.message(q, 0, pmtu) {
							e.pkt.ackReq = true
							g.emit(e)
						}
					}
				}
			}
			// Reloads right behind bursts of ACKs (0-byte SEND_ONLY: one every 2 cycles, so the
			// burst is still queued), then duplicates re-ACKed by the new context at once.
			q := qps[1]
			for round := 0; round < 10; round++ {
				g.emit(g.post(q, 0, []int{0, 0, 0, 0, 0, 0}, nil))
				for n := 0; n < 6; n++ {
					e := g.message(q, 0, pmtu)[0]
					e.pkt.ackReq = true
					g.emit(e)
				}
				ld := g.load(q, true, uint32(rng.Intn(1<<24)), 3)
				ld.eager = true
				g.emit(ld)
				for n := 0; n < 3; n++ {
					send := g.raw(wire.OpRCSendOnly, rqWire(q), ld.load.psn-uint32(1+n), 0)
					require.Equal(t, rqDup, g.scratch.verdict(send.pkt))
					g.emit(send)
				}
			}
			b := newRqBench(t, rng, g, tc.k)
			b.run(400000)
			var naks, nakSent int
			for _, a := range b.ref.acks {
				if a.Syn != rqSynACK {
					naks++
				}
			}
			for _, k := range b.ackIdx {
				if b.ref.acks[k].Syn != rqSynACK {
					nakSent++
				}
			}
			require.Positive(t, naks, "the storms have NAKs in them")
			assert.Equal(t, naks, nakSent, "every NAK sent")
			if tc.merge {
				assert.Greater(t, b.merged, len(b.ref.acks)/8, "plain ACKs merged")
			} else {
				assert.Zero(t, b.merged, "nothing merged when the transmitter keeps up")
			}
			t.Logf("%d packets: %d ACKs and NAKs (%d NAKs) in the reference, %d sent, %d merged",
				len(b.pkts), len(b.ref.acks), naks, b.acks, b.merged)
		})
	}
}

// TestRqEngineDisabled holds cfg_enable low for a while with traffic waiting: nothing is taken
// then (the bench checks), and everything completes afterwards.
func TestRqEngineDisabled(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	g := newRqGen(rng)
	g.emit(g.load(5, true, 10, 2))
	g.emit(g.post(5, 0, []int{100, 100}, nil))
	for _, e := range g.message(5, 100, 256) {
		g.emit(e)
	}
	for _, e := range g.message(5, 100, 256) {
		g.emit(e)
	}
	b := newRqBench(t, rng, g, rqKnobs{enableOffAt: 0, enableOffN: 400})
	b.run(5000)
	require.GreaterOrEqual(t, b.taken[0], uint64(400), "first descriptor taken after enable")
}

// TestRqEngineLoadRaces puts loads right against the traffic and doorbells of their own
// connection: a descriptor waiting while the load goes in must see the new context, and a doorbell
// taken just before a load must not survive it (a load resets the producer index).
func TestRqEngineLoadRaces(t *testing.T) {
	seed := int64(0x10AD)
	t.Logf("seed %d", seed)
	for _, ks := range rqKnobSets[:2] {
		t.Run(ks.name, func(t *testing.T) {
			rng := rand.New(rand.NewSource(seed))
			g := newRqGen(rng)
			for q := uint32(4); q < 8; q++ {
				g.emit(g.load(q, true, uint32(rng.Intn(1<<24)), 3))
				g.emit(g.post(q, 0, []int{100}, nil))
			}
			for i := 0; i < 40; i++ {
				qp := uint32(4 + rng.Intn(4))
				q := g.scratch.qps[qp]
				if q.pi == q.ci {
					g.emit(g.post(qp, q.pi, []int{100}, nil))
				}
				// A waiting SEND_ONLY with the new context's PSN: NO_RECV if the load went first
				// (PSN if it read the old context).
				ld := g.load(qp, true, uint32(rng.Intn(1<<24)), 3)
				ld.eager = true
				g.emit(ld)
				pk := g.message(qp, 8, wire.PMTU256)[0]
				require.Equal(t, rqNoRecv, g.scratch.verdict(pk.pkt))
				g.emit(pk)
				g.sendPSN[qp] = pk.pkt.psn
				// A doorbell right before a load: the load empties the ring again.
				db := g.post(qp, 0, []int{100}, nil)
				db.eager = true
				g.emit(db)
				g.emit(g.load(qp, true, g.sendPSN[qp], 3))
				pk = g.message(qp, 8, wire.PMTU256)[0]
				require.Equal(t, rqNoRecv, g.scratch.verdict(pk.pkt))
				g.emit(pk)
				g.sendPSN[qp] = pk.pkt.psn
				g.emit(g.post(qp, 0, []int{100}, nil))
				for _, e := range g.message(qp, 50, wire.PMTU256) {
					g.emit(e)
				}
			}
			b := newRqBench(t, rng, g, ks.k)
			b.run(200000)
			assert.Equal(t, 80, len(b.drops), "two NO_RECV drops per round")
			assert.Equal(t, 40, b.nCQE, "one message per round")
		})
	}
}

// TestRqEngineThroughput streams 64 B SEND_ONLY packets with AckReq, to one connection and to
// many, with a 150-cycle WQE read latency and nothing else stalling. Flooded (descriptors as fast
// as the engine takes them), it must sustain more than the link's rate: a 64 B SEND_ONLY frame is
// 16 beats. At the link's pace, nothing queues: each ACK descriptor follows its packet's
// descriptor by 2 cycles.
func TestRqEngineThroughput(t *testing.T) {
	seed := int64(64)
	t.Logf("seed %d", seed)
	const n = 400
	for _, nqp := range []int{1, 16} {
		for _, pace := range []int{0, 16} {
			t.Run("qps"+strconv.Itoa(nqp)+"/pace"+strconv.Itoa(pace), func(t *testing.T) {
				rng := rand.New(rand.NewSource(seed))
				g := newRqGen(rng)
				for q := 0; q < nqp; q++ {
					g.emit(g.load(uint32(2*q), true, uint32(rng.Intn(1<<24)), 10))
				}
				for q := 0; q < nqp; q++ {
					lens := make([]int, (n+nqp-1)/nqp)
					for k := range lens {
						lens[k] = 64
					}
					g.emit(g.post(uint32(2*q), 0, lens, nil))
				}
				for i := 0; i < n; i++ {
					for _, e := range g.message(uint32(2*(i%nqp)), 64, wire.PMTU1024) {
						e.pkt.ackReq = true
						g.emit(e)
					}
				}
				b := newRqBench(t, rng, g, rqKnobs{rdLat: 150, hdrEvery: pace})
				b.run(100000)
				require.Len(t, b.cqeAt, n)
				steady := float64(b.cqeAt[n-1]-b.cqeAt[n/4]) / float64(n-1-n/4)
				worst := uint64(0)
				for i, at := range b.ackAt {
					worst = max(worst, at-b.taken[sort.SearchInts(b.pkts, b.ref.ackPkt[b.ackIdx[i]])])
				}
				t.Logf("%d QPs, WQE latency 150, descriptors every >= %d cycles: %.2f cycles per 64 B packet in steady state; first CQE %d cycles after the first descriptor; ACK descriptor at most %d cycles after its packet's",
					nqp, pace, steady, b.cqeAt[0]-b.taken[0], worst)
				if pace == 0 {
					assert.Less(t, steady, 16.0, "faster than 64 B frames arrive (16 beats)")
				} else {
					assert.InDelta(t, float64(pace), steady, 0.01, "keeps the link's pace")
					assert.LessOrEqual(t, worst, uint64(2), "ACK descriptor 2 cycles after its packet's")
				}
			})
		}
	}
}

package sim

import (
	"bytes"
	"fmt"
	"math/rand"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sanoffload/san/driver/regs"
	"github.com/sanoffload/san/hw/sim/dut"
	"github.com/sanoffload/san/hw/wire"
)

// san_sq_engine's defaults, and the host memory the benches give it.
const (
	sqNQP  = 256
	sqBeat = 8 // bytes per beat (DATA_WIDTH 64)
	// Host memory straddles 2^33, so address sums carry across the 32-bit halves.
	sqMemBase = uint64(1)<<33 - 1<<20
	// san_tx_builder's frame: 54 header bytes (6 whole beats before the payload joins), payload,
	// pad to 4, ICRC.
	sqHdrBeats = 6
	// WINDOW, MSG_WINDOW and the depth of the record FIFO (REC_DEPTH).
	sqWindow    = 128
	sqMsgWindow = 32
	sqRecDepth  = 4
	sqPSNMask   = 1<<24 - 1
	// The completer sends progress at most once every sqUnaGap cycles (san_completer spends at
	// least 3 cycles on an event), so a context load waits at most 3 cycles.
	sqUnaGap = 3
)

// sqMsg is one work request as a test posts it.
type sqMsg struct {
	len    uint32
	opcode uint8
	sig    bool
	sol    bool
	wqeErr bool // the host fails every read of its WQE
	payErr int  // packet whose payload the host fails to read, every time; -1: none
}

// sqDesc is one transmit descriptor as the engine gives it, or as the reference expects it.
type sqDesc struct {
	DstMAC uint64
	DstIP  uint32
	Sport  uint16
	Opcode uint8
	SE     bool
	DestQP uint32
	AckReq bool
	PSN    uint32
	PayLen int
}

// sqRecord is one record for the completer as the engine gives it, or as the reference expects
// it. Signaled and Status only count on the last record of a WQE (they are zeroed otherwise).
type sqRecord struct {
	QPN      int
	Last     bool
	Idx      uint16
	FirstPSN uint32
	EndPSN   uint32
	Signaled bool
	Status   regs.CQEStatus
	Gen      uint8 // the generation of the latest command the engine had taken (0 after a load)
}

// sqWQE is one posted WQE as the reference sees it. PSNs are offsets from the context's first
// PSN (no wrap in the reference; the 24-bit PSN is taken at the edges).
type sqWQE struct {
	m      sqMsg
	status regs.CQEStatus     // of a WQE that sends nothing (BAD_WQE, DMA_ERROR)
	segs   []wire.SegmentInfo // nil: it sends nothing
	first  int                // PSN offset of its first packet
	pay    []byte
}

func (w *sqWQE) end() int { return w.first + len(w.segs) }

// sqCtx is one loaded context of a connection: addressing, ring, the WQEs posted to it, and the
// bench's completer state for it.
type sqCtx struct {
	c     *sqConn
	rts   bool
	dest  uint32
	dmac  uint64
	dip   uint32
	sport uint16
	psn0  uint32
	base  uint64
	log   uint
	wqes  []*sqWQE
	next  int // PSN offset of the next WQE posted
	rung  int // PI of the last doorbell queued

	// The completer: records seen, acknowledgements, progress.
	known    int    // WQEs with a record seen (the completer knows their PSNs)
	recLast  []bool // the WQE's last record has been seen
	hw       int    // PSN offset after the newest packet recorded
	ackTo    int    // acknowledged up to here (delivered or on the way)
	acks     []sqAck
	unaOff   int // oldest unacknowledged PSN offset
	unaIdx   int // oldest incomplete WQE
	sentOff  int // progress as last sent to the engine
	sentIdx  int
	sentHist []sqSent // sentIdx over time, for the fetch check
	failSlot map[uint64]bool
}

func (x *sqCtx) psn(off int) uint32 { return uint32((int64(x.psn0) + int64(off)) & sqPSNMask) }

func (x *sqCtx) slot(i int) uint64 { return x.base + uint64(i&(1<<x.log-1))*regs.SendWQESize }

// firstOf is the first PSN offset of WQE k (the next PSN if it is not posted yet).
func (x *sqCtx) firstOf(k int) int {
	if k < len(x.wqes) {
		return x.wqes[k].first
	}
	return x.next
}

// sqSent is a progress update sent to the engine: the oldest incomplete WQE from that cycle.
type sqSent struct {
	at  uint64
	idx int
}

// sqFetchSlack is how long a WQE fetch the engine decided may wait for the read port (payload
// reads go first) before it leaves: a fetch of a WQE that completed longer ago than that was
// decided after its completion.
const sqFetchSlack = 300

// doneBefore is the oldest incomplete WQE the engine had been told of sqFetchSlack cycles ago:
// every WQE before it was complete by then.
func (x *sqCtx) doneBefore(now uint64) int {
	n := 0
	for _, s := range x.sentHist {
		if s.at+sqFetchSlack <= now {
			n = max(n, s.idx)
		}
	}
	return n
}

type sqAck struct {
	at  uint64
	off int
}

// sqPkt is one packet the reference expects.
type sqPkt struct {
	d        sqDesc
	payload  []byte
	garbage  bool // its payload read fails: the bytes are not checked
	wqe      int
	chunkEnd int // PSN offset of its chunk's last packet
}

// sqRec is one record the reference expects.
type sqRec struct {
	r      sqRecord
	anySig bool // the WQE read failed: signaled is whatever came back
	wqe    int
	end    int  // PSN offset after it
	need   int  // packets of its pass handed over before it can come (its own included)
	chunk  bool // a packet's record (else a WQE that sends nothing)
}

// sqPass is what a connection sends from one starting point: from a context load, or from a
// go-back-N command, until the next. When it is cut (by the next command or load), the engine
// still gives what it had decided: the descriptor in its output register and the records already
// pushed: recs[:firm] for certain, and recs[firm:firm+loose] (WQEs that send nothing, after the
// last packet decided) perhaps.
type sqPass struct {
	ctx   *sqCtx
	held  bool  // a hold: nothing at all
	gen   uint8 // the generation of the command or load that began it: on its every record
	back  bool  // made by a go-back-N command, starting at PSN offset from
	from  int
	k, j  int // where the reference goes on generating: WQE and packet
	pkts  []sqPkt
	recs  []sqRec
	taken int // descriptors received
	cut   bool
	firm  int
	loose int
}

// sqRecAt is a possible position of a connection's record stream: the next record is
// passes[pass].recs[pos]. Which of a cut pass's loose records came is not always known, so the
// bench tracks every position the records so far allow.
type sqRecAt struct{ pass, pos int }

// sqStray is a WQE fetch that may still come out of the engine after a command or load made it
// stale: it was in the read request register or waiting for it, so it is one of the next two
// WQE fetches (a turn makes no fetch while one waits).
type sqStray struct {
	x    *sqCtx
	idx  int
	seen int // WQE fetches since
}

// sqFetchAt is a possible state of a connection's WQE fetches: the index of the next one in the
// current context, and the stale fetches that may still come. A stale fetch and a new one of the
// same WQE look the same, so the bench tracks every state the fetches so far allow.
type sqFetchAt struct {
	next   int
	strays []sqStray
}

// sqConn is one connection: its context, the driver's queue of messages, and the reference.
type sqConn struct {
	qpn       int
	ctx       *sqCtx
	loading   bool
	unposted  []sqMsg
	passes    []*sqPass
	recAt     []sqRecAt
	fetchAt   []sqFetchAt
	held      bool
	holdUntil uint64
	fwdAt     uint64 // no go-back forward before this cycle (tests that let the engine wait)
	gen       uint8  // of the latest command taken (0 after a load)
}

func (c *sqConn) cur() *sqPass { return c.passes[len(c.passes)-1] }

type sqLoad struct {
	c     *sqConn
	rts   bool
	dest  uint32
	dmac  uint64
	dip   uint32
	sport uint16
	psn   uint32
	base  uint64
	log   uint
}

type sqDoorbell struct {
	qpn int
	pi  uint16
}

// sqCmd is a go-back-N command: hold, or resume at packet j of WQE k.
type sqCmd struct {
	qpn  int
	c    *sqConn // nil: not a connection in RTS (the engine ignores it)
	hold bool
	k, j int
	psn  uint32
	at   uint64 // first cycle it is presented
	gen  uint8  // as presented: one more than the connection's latest (mod 16)
}

type sqRead struct {
	addr uint64
	data []byte
	err  bool
	at   uint64 // first cycle its data may be presented
}

type sqRange struct{ lo, hi uint64 }

// sqBuilder models when san_tx_builder takes descriptors and payload beats: a descriptor when
// idle or in the last beat of a frame, then 6 header beats, the payload beats, the tail beats.
type sqBuilder struct {
	phase int
	hdr   int
	data  int
	tail  int
}

const (
	sqIdle = iota
	sqHdr
	sqData
	sqTail
)

func (m *sqBuilder) txReady(link bool) bool {
	return m.phase == sqIdle || (m.phase == sqTail && m.tail == 1 && link)
}

func (m *sqBuilder) payReady(link bool) bool { return m.phase == sqData && link }

func (m *sqBuilder) step(link, took bool, payLen int, payFire bool) {
	if link {
		switch m.phase {
		case sqHdr:
			m.hdr--
			if m.hdr == 0 {
				m.phase = sqTail
				if m.data > 0 {
					m.phase = sqData
				}
			}
		case sqData:
			if payFire {
				m.data--
				if m.data == 0 {
					m.phase = sqTail
				}
			}
		case sqTail:
			m.tail--
			if m.tail == 0 {
				m.phase = sqIdle
			}
		}
	}
	if took {
		pad := (4 - payLen%4) % 4
		total := (54 + payLen + pad + 4 + sqBeat - 1) / sqBeat
		m.phase, m.hdr, m.data = sqHdr, sqHdrBeats, (payLen+sqBeat-1)/sqBeat
		m.tail = total - sqHdrBeats - m.data
	}
}

// sqStable checks the AXI rule that a payload holds while valid waits for ready.
type sqStable struct {
	name    string
	waiting bool
	last    string
}

func (h *sqStable) check(t *testing.T, valid, ready bool, payload func() string) {
	t.Helper()
	if valid {
		p := payload()
		if h.waiting && p != h.last {
			t.Fatalf("%s changed while waiting for ready: %s -> %s", h.name, h.last, p)
		}
		h.waiting, h.last = !ready, p
	} else {
		require.False(t, h.waiting, "%s valid withdrawn before ready", h.name)
	}
}

// sqBench drives san_sq_engine: a driver posting WQEs and ringing doorbells, a host memory
// answering reads in request order after a latency, with stalls, consumers of descriptors and
// payload (with stalls or with san_tx_builder's timing), and a completer that takes the records,
// acknowledges what was recorded after a random delay, sends progress, and now and then makes a
// connection go back or hold.
type sqBench struct {
	t       *testing.T
	d       *dut.DUT
	rng     *rand.Rand
	pmtuLog int
	pmtu    int

	mem      []byte // mem[i] is at IOVA sqMemBase+i
	failAddr map[uint64]bool
	bufs     []sqRange // payload buffers the engine may read
	rings    []*sqCtx  // every context loaded
	reads    []*sqRead
	readBeat int

	latency   int // cycles from a read's acceptance to its first beat, beyond the one after
	reqStall  int // percent of cycles the read request port is not ready
	dataStall int // percent of cycles read data is withheld
	postRate  int // percent of cycles the driver posts a WQE (if it has one)
	dbGap     int // percent of cycles a queued doorbell waits

	// The completer.
	noAck            bool // acknowledge nothing (the tests do it by hand)
	ackRate          int  // percent of cycles a connection with something recorded acknowledges
	ackMin, ackMax   int  // delay of an acknowledgement, in cycles
	unaRate          int  // percent of cycles a pending progress update may be sent
	lastUna          uint64
	rwEvery          int // mean cycles between go-back-N commands (0: none)
	holdRate         int // percent of those that hold
	rwStray          int // percent of those for a connection not in RTS
	rwDelay          int // cycles a command waits before it is presented, at most
	cmd              *sqCmd
	cmds, holds, ign int // commands taken: all, holds, for connections not in RTS
	// What the go-back-N benches got to: go-backs mid-message, into a WQE already recorded, with
	// packets across the PSN wrap; descriptors that came out of the output register after their
	// pass was cut; fetches that can only have been stale; progress sent past what the pass
	// resending has sent.
	rwMid, rwRecorded, rwWrap, regOld, strayOnly, lateUna int
	fwds                                                  int // go-backs forward (goForward)

	conns  map[int]*sqConn
	list   []*sqConn // the connections in the order they were made
	byDest map[uint32]*sqCtx
	dests  map[uint32]bool
	loads  []sqLoad
	dbs    []sqDoorbell
	dbOn   bool
	noPost bool // the driver only rings what the test posts by hand

	builder   bool // consume as san_tx_builder does, with linkStall percent of link stalls
	linkStall int
	txStall   int
	payStall  int
	recStall  int
	bld       sqBuilder
	payQ      []*sqPkt
	payConn   []*sqConn
	cur       []byte

	// The descriptor in the engine's output register when a command or load cut its pass.
	regPend *sqPass
	// The output register in this cycle.
	txValid bool
	txDest  uint32

	holdReq, holdTx, holdPay, holdRec sqStable

	descs     int    // descriptors received
	recs      int    // records received
	order     []int  // connection of each message's first descriptor, in order
	gaps      int    // builder cycles starved of a descriptor or payload, after the first
	gapFrames []int  // gaps by the number of descriptors taken before them
	payBytes  int    // payload bytes taken
	firstDesc uint64 // cycle of the first descriptor taken
	lastDesc  uint64 // cycle of the last
	lastPay   uint64 // cycle of the last payload beat
	lastAct   uint64 // cycle of the last descriptor, record or read request
	readyLow  int    // current run of cycles with ctx_load_ready low (after the reset sweep)
	readyMax  int
	initDone  bool
	nReads    int // reads accepted
}

func newSqBench(t *testing.T, rng *rand.Rand, pmtuLog int) *sqBench {
	b := &sqBench{t: t, d: dut.New(t, "san_sq_engine"), rng: rng, pmtuLog: pmtuLog, pmtu: 1 << pmtuLog,
		failAddr: map[uint64]bool{}, conns: map[int]*sqConn{}, byDest: map[uint32]*sqCtx{},
		dests: map[uint32]bool{}, postRate: 50, dbGap: 30, ackRate: 30, ackMin: 10, ackMax: 300, unaRate: 70,
		rwDelay: 20}
	b.holdReq.name, b.holdTx.name, b.holdPay.name, b.holdRec.name = "read request", "descriptor", "payload", "record"
	b.d.Set("cfg_enable", 1)
	b.d.Set("cfg_pmtu_log2", uint64(pmtuLog))
	return b
}

// alloc returns n bytes of host memory at an address aligned to align (0: a random offset).
func (b *sqBench) alloc(n int, align int) uint64 {
	off := len(b.mem)
	if align > 0 {
		off = (off + align - 1) / align * align
	} else {
		off += b.rng.Intn(sqBeat)
	}
	b.mem = append(b.mem, make([]byte, off+n+sqBeat-len(b.mem))...)
	return sqMemBase + uint64(off)
}

func (b *sqBench) host(addr uint64, n int) []byte {
	off := int(addr - sqMemBase)
	return b.mem[off : off+n]
}

func (b *sqBench) uniqueDest() uint32 {
	for {
		v := uint32(b.rng.Intn(1 << 24))
		if !b.dests[v] {
			b.dests[v] = true
			return v
		}
	}
}

// load queues a context load of c with fresh addressing and a fresh ring of 2^log entries.
func (b *sqBench) load(c *sqConn, rts bool, log uint, psn uint32) {
	c.loading = true
	b.loads = append(b.loads, sqLoad{c: c, rts: rts, dest: b.uniqueDest(), dmac: b.rng.Uint64() >> 16,
		dip: b.rng.Uint32(), sport: uint16(b.rng.Intn(1 << 16)), psn: psn, base: b.alloc(64<<log, 64), log: log})
}

func (b *sqBench) conn(qpn int, log uint, psn uint32) *sqConn {
	c := &sqConn{qpn: qpn}
	b.conns[qpn] = c
	b.list = append(b.list, c)
	b.load(c, true, log, psn)
	return c
}

// freed is the first ring index the driver may not overwrite yet: neither complete nor left
// behind by the engine (a go-back-N command fetches WQEs again).
func (b *sqBench) freed(c *sqConn) int {
	x := c.ctx
	n := x.unaIdx
	for _, f := range c.fetchAt {
		n = min(n, f.next)
		for _, s := range f.strays {
			if s.x == x {
				n = min(n, s.idx)
			}
		}
	}
	if b.cmd != nil && b.cmd.c == c {
		n = min(n, b.cmd.k)
	}
	return n
}

func (b *sqBench) room(c *sqConn) bool {
	return len(c.ctx.wqes)-b.freed(c) < 1<<c.ctx.log
}

// post writes the next WQE of c into its ring and adds it to the reference.
func (b *sqBench) post(c *sqConn, m sqMsg) {
	x := c.ctx
	require.True(b.t, b.room(c), "QP %d: posted into a full ring", c.qpn)
	ok := !m.wqeErr && m.opcode == uint8(regs.WQEOpcodeSend) && m.len < 1<<31
	var addr uint64
	if ok {
		// Before the WQE view: alloc may move the memory.
		addr = b.alloc(int(m.len), 0)
	}
	slot := x.slot(len(x.wqes))
	wv := regs.SendWQE(b.host(slot, regs.SendWQESize))
	b.rng.Read(wv)
	wv.SetWrID(b.rng.Uint64())
	wv.SetLength(m.len)
	wv.SetOpcode(m.opcode)
	wv.SetFlags(uint8(b.rng.Intn(256)) &^ 3)
	wv.SetFlagsSignaled(uint8(b2u(m.sig)))
	wv.SetFlagsSolicited(uint8(b2u(m.sol)))
	x.failSlot[slot] = m.wqeErr
	w := &sqWQE{m: m, first: x.next}
	switch {
	case m.wqeErr:
		w.status = regs.CQEStatusDMAError
	case !ok:
		w.status = regs.CQEStatusBadWQE
	default:
		w.pay = b.host(addr, int(m.len))
		b.rng.Read(w.pay)
		b.bufs = append(b.bufs, sqRange{addr, addr + uint64(m.len)})
		wv.SetAddr(addr)
		w.segs = wire.Segment(int(m.len), b.pmtu)
		if m.payErr >= 0 {
			b.failAddr[addr+uint64(w.segs[m.payErr].Offset)] = true
		}
		x.next += len(w.segs)
	}
	x.wqes = append(x.wqes, w)
	x.recLast = append(x.recLast, false)
	if p := c.cur(); p.ctx == x {
		b.extend(p)
	}
}

// extend generates the reference packets and records of pass p for the WQEs posted since.
func (b *sqBench) extend(p *sqPass) {
	if p.held || p.cut {
		return
	}
	x := p.ctx
	for ; p.k < len(x.wqes); p.k, p.j = p.k+1, 0 {
		w := x.wqes[p.k]
		if w.segs == nil {
			p.recs = append(p.recs, sqRec{r: sqRecord{QPN: x.c.qpn, Last: true, Idx: uint16(p.k),
				FirstPSN: x.psn(w.first), EndPSN: x.psn(w.first), Signaled: w.m.sig, Status: w.status},
				anySig: w.m.wqeErr, wqe: p.k, end: w.first, need: len(p.pkts)})
			continue
		}
		n := len(w.segs)
		for i := p.j; i < n; i++ {
			s := w.segs[i]
			off := w.first + i
			last := i == n-1
			endI := min(n-1, i+63-int(x.psn(off)&63))
			end := endI == i
			p.pkts = append(p.pkts, sqPkt{d: sqDesc{Opcode: s.OpCode, SE: last && w.m.sol, AckReq: end,
				PSN: x.psn(off), PayLen: s.Len}, payload: w.pay[s.Offset : s.Offset+s.Len],
				garbage: i == w.m.payErr, wqe: p.k, chunkEnd: w.first + endI})
			// Every packet has its record, so the completer knows each PSN sent.
			{
				r := sqRecord{QPN: x.c.qpn, Last: last, Idx: uint16(p.k), FirstPSN: x.psn(w.first), EndPSN: x.psn(off + 1)}
				if last {
					r.Signaled = w.m.sig
					if w.m.payErr >= p.j {
						// A payload read of this pass failed.
						r.Status = regs.CQEStatusDMAError
					}
				}
				p.recs = append(p.recs, sqRec{r: r, wqe: p.k, end: off + 1, need: len(p.pkts), chunk: true})
			}
		}
	}
}

// ring queues a doorbell with c's PI.
func (b *sqBench) ring(c *sqConn) {
	c.ctx.rung = len(c.ctx.wqes)
	b.dbs = append(b.dbs, sqDoorbell{qpn: c.qpn, pi: uint16(c.ctx.rung)})
}

// drive is the driver: it posts the connections' queued WQEs while their rings have room, and
// rings their doorbells now and then and when it has posted all it had.
func (b *sqBench) drive() {
	if b.noPost || b.rng.Intn(100) >= b.postRate {
		return
	}
	var ready []*sqConn
	for _, c := range b.list {
		if len(c.unposted) > 0 && !c.loading && b.room(c) {
			ready = append(ready, c)
		}
	}
	if len(ready) == 0 {
		return
	}
	c := ready[b.rng.Intn(len(ready))]
	b.post(c, c.unposted[0])
	c.unposted = c.unposted[1:]
	if len(c.unposted) == 0 || !b.room(c) || b.rng.Intn(2) == 0 {
		b.ring(c)
	}
}

func (b *sqBench) setLoad(l sqLoad) {
	d := b.d
	d.Set("ctx_load_qpn", uint64(l.c.qpn))
	d.Set("ctx_load_rts", b2u(l.rts))
	d.Set("ctx_load_dest_qpn", uint64(l.dest))
	d.Set("ctx_load_dmac", l.dmac)
	d.Set("ctx_load_dip", uint64(l.dip))
	d.Set("ctx_load_udp_sport", uint64(l.sport))
	d.Set("ctx_load_sq_psn", uint64(l.psn))
	d.Set("ctx_load_sq_base", l.base)
	d.Set("ctx_load_sq_log", uint64(l.log))
}

// cut ends c's current pass where the engine left it when a command or load was taken in the
// cycle just run: the descriptor now in the output register (decided in or before that cycle)
// still comes, as do the records pushed with the packets decided.
func (b *sqBench) cut(c *sqConn) {
	p := c.cur()
	if p.held {
		p.cut = true
		return
	}
	if b.regPend == nil && b.d.Get("m_tx_valid") == 1 && uint32(b.d.Get("m_tx_dest_qp")) == p.ctx.dest {
		require.Less(b.t, p.taken, len(p.pkts), "QP %d: a descriptor beyond the reference in the output register", c.qpn)
		b.regPend = p
	}
	decided := p.taken
	if b.regPend == p {
		decided++
	}
	p.cut = true
	for p.firm < len(p.recs) && (p.recs[p.firm].need < decided || (p.recs[p.firm].chunk && p.recs[p.firm].need == decided)) {
		p.firm++
	}
	for p.firm+p.loose < len(p.recs) && !p.recs[p.firm+p.loose].chunk && p.recs[p.firm+p.loose].need == decided {
		p.loose++
	}
	// Fetches issued and not yet taken by the read port may still come.
	x := p.ctx
	for fi := range c.fetchAt {
		f := &c.fetchAt[fi]
	next:
		for i := f.next; i < f.next+2 && i < x.rung; i++ {
			for _, s := range f.strays {
				if s.x == x && s.idx == i {
					// Still the same fetch, stale since an earlier cut.
					continue next
				}
			}
			f.strays = append(f.strays, sqStray{x: x, idx: i})
		}
	}
	b.normRecAt(c)
}

// decided is the number of pass p's packets whose descriptors the engine has decided: received,
// or in its output register.
func (b *sqBench) decided(p *sqPass) int {
	n := p.taken
	if b.regPend == p || (b.regPend == nil && !p.cut && b.txValid && b.txDest == p.ctx.dest) {
		n++
	}
	return n
}

func (b *sqBench) applyLoad(l sqLoad) {
	c := l.c
	if c.ctx != nil {
		b.cut(c)
	}
	x := &sqCtx{c: c, rts: l.rts, dest: l.dest, dmac: l.dmac, dip: l.dip, sport: l.sport, psn0: l.psn,
		base: l.base, log: l.log, failSlot: map[uint64]bool{}}
	b.rings = append(b.rings, x)
	b.byDest[l.dest] = x
	c.ctx, c.loading, c.held, c.gen = x, false, false, 0
	if len(c.fetchAt) == 0 {
		c.fetchAt = []sqFetchAt{{}}
	}
	for i := range c.fetchAt {
		c.fetchAt[i].next = 0
	}
	c.passes = append(c.passes, &sqPass{ctx: x, held: !l.rts})
	if len(c.recAt) == 0 {
		c.recAt = []sqRecAt{{0, 0}}
	}
	b.normRecAt(c)
}

// applyCmd applies a go-back-N command the engine took in the cycle just run.
func (b *sqBench) applyCmd(m *sqCmd) {
	b.cmds++
	c := m.c
	if c == nil {
		b.ign++
		return
	}
	b.cut(c)
	c.gen = m.gen
	if m.hold {
		b.holds++
		c.held = true
		c.holdUntil = b.d.Cycles() + uint64(100+b.rng.Intn(1500))
		c.passes = append(c.passes, &sqPass{ctx: c.ctx, held: true, gen: m.gen})
	} else {
		c.held = false
		x := c.ctx
		p := &sqPass{ctx: x, k: m.k, j: m.j, back: true, from: x.firstOf(m.k) + m.j, gen: m.gen}
		if m.j > 0 {
			b.rwMid++
		}
		if m.k < len(x.wqes) && x.recLast[m.k] {
			b.rwRecorded++
		}
		c.passes = append(c.passes, p)
		b.extend(p)
		for i := range c.fetchAt {
			c.fetchAt[i].next = m.k
		}
		for _, k := range p.pkts {
			if k.d.PSN == 0 && k.wqe >= 0 && p.pkts[0].d.PSN != 0 {
				b.rwWrap++
				break
			}
		}
	}
	b.normRecAt(c)
}

// normRecAt moves record positions at the end of a cut pass on to the next pass, and drops
// duplicates.
func (b *sqBench) normRecAt(c *sqConn) {
	seen := map[sqRecAt]bool{}
	var out []sqRecAt
	for _, s := range c.recAt {
		for s.pass+1 < len(c.passes) && c.passes[s.pass].cut && s.pos >= c.passes[s.pass].firm+c.passes[s.pass].loose {
			s = sqRecAt{s.pass + 1, 0}
		}
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	c.recAt = out
}

// acceptRead checks a read request against what the engine may read and queues its data.
func (b *sqBench) acceptRead(addr uint64, n int) {
	t := b.t
	require.True(t, n >= 1 && n <= 65535, "read length %d", n)
	b.nReads++
	b.lastAct = b.d.Cycles()
	fail := b.failAddr[addr]
	var ring *sqCtx
	for _, x := range b.rings {
		if addr >= x.base && addr < x.base+regs.SendWQESize<<x.log {
			ring = x
			break
		}
	}
	if ring != nil {
		c := ring.c
		// The engine may read only the fields it uses (WR_ID to FLAGS).
		require.True(t, n >= 22 && n <= regs.SendWQESize, "QP %d: WQE fetch of %d bytes", c.qpn, n)
		b.fetch(c, ring, addr)
		fail = ring.failSlot[addr]
	} else {
		found := false
		for _, r := range b.bufs {
			if addr >= r.lo && addr+uint64(n) <= r.hi {
				found = true
				break
			}
		}
		require.True(t, found, "read of %d bytes at %#x: neither a posted WQE nor a payload buffer", n, addr)
		require.LessOrEqual(t, n, b.pmtu, "payload read longer than the PMTU")
	}
	rd := &sqRead{addr: addr, data: append([]byte(nil), b.host(addr, n)...), at: b.d.Cycles() + 1 + uint64(b.latency)}
	if fail {
		rd.err = true
		b.rng.Read(rd.data)
	}
	b.reads = append(b.reads, rd)
}

// fetch checks a WQE fetch from ring x of connection c against every state c's fetches may be
// in: the next WQE of the current context (rung, within MSG_WINDOW of the progress sent, not
// while held), or a stale fetch.
func (b *sqBench) fetch(c *sqConn, x *sqCtx, addr uint64) {
	var next []sqFetchAt
	var why []string
	viaNext := false
	for _, f := range c.fetchAt {
		if x == c.ctx && x.rts && addr == x.slot(f.next) {
			switch {
			case f.next >= x.rung:
				why = append(why, fmt.Sprintf("WQE %d fetched beyond the doorbell's PI %d", f.next, x.rung))
			case f.next-x.sentIdx >= sqMsgWindow:
				why = append(why, fmt.Sprintf("WQE %d fetched with the oldest incomplete at %d", f.next, x.sentIdx))
			case f.next < x.doneBefore(b.d.Cycles()):
				why = append(why, fmt.Sprintf("WQE %d fetched again after it completed (the oldest incomplete is %d)",
					f.next, x.sentIdx))
			case c.held:
				why = append(why, fmt.Sprintf("WQE %d fetched while held", f.next))
			default:
				next = append(next, sqFetchAt{next: f.next + 1, strays: f.strays})
				viaNext = true
			}
		} else {
			why = append(why, fmt.Sprintf("expected WQE %d at %#x", f.next, x.slot(f.next)))
		}
		for i, s := range f.strays {
			if s.x == x && x.slot(s.idx) == addr {
				next = append(next, sqFetchAt{next: f.next, strays: append(f.strays[:i:i], f.strays[i+1:]...)})
			}
		}
	}
	if len(next) == 0 {
		b.t.Fatalf("QP %d: WQE fetch at %#x: %v", c.qpn, addr, why)
	}
	c.fetchAt = next
	if !viaNext {
		b.strayOnly++
	}
	// Age the stale fetches: each is one of the two fetches after its cut.
	for _, q := range b.list {
		seen := map[string]bool{}
		var out []sqFetchAt
		for _, f := range q.fetchAt {
			var keep []sqStray
			for _, s := range f.strays {
				if s.seen+1 < 2 {
					keep = append(keep, sqStray{x: s.x, idx: s.idx, seen: s.seen + 1})
				}
			}
			f.strays = keep
			if k := fmt.Sprint(f.next, keep); !seen[k] {
				seen[k] = true
				out = append(out, f)
			}
		}
		q.fetchAt = out
	}
}

// fetched is the number of WQEs of c's current context fetched, if the fetches leave no doubt.
func (b *sqBench) fetched(c *sqConn) int {
	b.t.Helper()
	require.Len(b.t, c.fetchAt, 1, "QP %d: fetches in doubt", c.qpn)
	return c.fetchAt[0].next
}

func (b *sqBench) getDesc() sqDesc {
	d := b.d
	return sqDesc{DstMAC: d.Get("m_tx_dst_mac"), DstIP: uint32(d.Get("m_tx_dst_ip")),
		Sport: uint16(d.Get("m_tx_udp_sport")), Opcode: uint8(d.Get("m_tx_opcode")),
		SE: d.Get("m_tx_se") == 1, DestQP: uint32(d.Get("m_tx_dest_qp")), AckReq: d.Get("m_tx_ack_req") == 1,
		PSN: uint32(d.Get("m_tx_psn")), PayLen: int(d.Get("m_tx_pay_len"))}
}

func (b *sqBench) getRecord() sqRecord {
	d := b.d
	r := sqRecord{QPN: int(d.Get("m_rec_qpn")), Last: d.Get("m_rec_last") == 1, Idx: uint16(d.Get("m_rec_idx")),
		FirstPSN: uint32(d.Get("m_rec_first_psn")), EndPSN: uint32(d.Get("m_rec_end_psn")),
		Signaled: d.Get("m_rec_signaled") == 1, Status: regs.CQEStatus(d.Get("m_rec_status")),
		Gen: uint8(d.Get("m_rec_gen"))}
	if !r.Last {
		r.Signaled, r.Status = false, 0
	}
	return r
}

func (b *sqBench) takeDesc(got sqDesc) {
	t := b.t
	require.Zero(t, b.d.Get("m_tx_ext"), "ext")
	require.Zero(t, b.d.Get("m_tx_ext0"), "ext0")
	require.Zero(t, b.d.Get("m_tx_ext1"), "ext1")
	var p *sqPass
	if b.regPend != nil {
		// The descriptor that was in the output register when its pass was cut.
		p = b.regPend
		require.Equal(t, p.ctx.dest, got.DestQP, "the descriptor held in the output register")
		b.regPend = nil
		b.regOld++
	} else {
		x := b.byDest[got.DestQP]
		require.NotNil(t, x, "descriptor for unknown dest QP %#x: %+v", got.DestQP, got)
		c := x.c
		require.True(t, x == c.ctx, "QP %d: descriptor of a context replaced by a load: %+v", c.qpn, got)
		p = c.cur()
		require.False(t, p.held, "QP %d: descriptor while held: %+v", c.qpn, got)
	}
	x := p.ctx
	c := x.c
	require.Less(t, p.taken, len(p.pkts), "QP %d: descriptor beyond the reference: %+v", c.qpn, got)
	w := &p.pkts[p.taken]
	exp := w.d
	exp.DstMAC, exp.DstIP, exp.Sport, exp.DestQP = x.dmac, x.dip, x.sport, x.dest
	require.Equal(t, exp, got, "QP %d pass %d descriptor %d (WQE %d)", c.qpn, len(c.passes)-1, p.taken, w.wqe)
	if x == c.ctx {
		require.Less(t, w.chunkEnd-x.sentOff, sqWindow, "QP %d: PSN %#x's chunk ends beyond the window (una %#x)",
			c.qpn, got.PSN, x.psn(x.sentOff))
	}
	if got.AckReq && b.recStall == 0 {
		// Its record was pushed with it and the completer takes every record at once.
		ri := -1
		for i := range p.recs {
			if p.recs[i].chunk && p.recs[i].need == p.taken+1 {
				ri = i
			}
		}
		pi := -1
		for i, q := range c.passes {
			if q == p {
				pi = i
			}
		}
		got := false
		for _, s := range c.recAt {
			if s.pass > pi || (s.pass == pi && s.pos > ri) {
				got = true
			}
		}
		require.True(t, got, "QP %d: record of PSN %#x not taken with its descriptor", c.qpn, exp.PSN)
	}
	if got.Opcode == wire.OpRCSendOnly || got.Opcode == wire.OpRCSendFirst {
		b.order = append(b.order, c.qpn)
	}
	if b.descs == 0 {
		b.firstDesc = b.d.Cycles()
	}
	b.lastDesc = b.d.Cycles()
	b.lastAct = b.d.Cycles()
	b.descs++
	p.taken++
	if got.PayLen > 0 {
		b.payQ = append(b.payQ, w)
		b.payConn = append(b.payConn, c)
	}
}

func (b *sqBench) takePay(data []byte, keep uint64, last bool) {
	t := b.t
	require.NotEmpty(t, b.payQ, "payload beat with no descriptor waiting for payload")
	w := b.payQ[0]
	n := 0
	for keep&(1<<n) != 0 {
		n++
	}
	require.Equal(t, uint64(1)<<n-1, keep, "tkeep contiguous from lane 0")
	b.cur = append(b.cur, data[:n]...)
	b.payBytes += n
	b.lastPay = b.d.Cycles()
	if !last {
		require.Equal(t, sqBeat, n, "full beats but the last")
		require.Less(t, len(b.cur), w.d.PayLen, "payload longer than its descriptor's pay_len")
		return
	}
	for _, x := range data[n:] {
		require.Zero(t, x, "lanes past the payload are zero")
	}
	require.Equal(t, w.d.PayLen, len(b.cur), "payload length")
	if !w.garbage {
		require.True(t, bytes.Equal(w.payload, b.cur), "QP %d PSN %#x payload bytes", b.payConn[0].qpn, w.d.PSN)
	}
	b.payQ, b.payConn, b.cur = b.payQ[1:], b.payConn[1:], nil
}

// takeRecord matches a record against every position c's record stream may be at: the next
// record of the pass, or (once a cut pass has given what it certainly had) the first of a later
// pass. A record may not come before its descriptor has been decided.
func (b *sqBench) takeRecord(got sqRecord) {
	t := b.t
	c := b.conns[got.QPN]
	require.NotNil(t, c, "record for unknown QP %d: %+v", got.QPN, got)
	b.recs++
	b.lastAct = b.d.Cycles()
	var next []sqRecAt
	var match *sqRec
	var matchPass *sqPass
	try := func(pi, pos int) bool {
		p := c.passes[pi]
		if p.cut && pos >= p.firm+p.loose || pos >= len(p.recs) {
			return false
		}
		e := &p.recs[pos]
		exp := e.r
		exp.Gen = p.gen
		if e.anySig {
			exp.Signaled = got.Signaled
		}
		if exp != got || e.need > b.decided(p) {
			return false
		}
		next = append(next, sqRecAt{pi, pos + 1})
		match, matchPass = e, p
		return true
	}
	for _, s := range c.recAt {
		try(s.pass, s.pos)
		for pi := s.pass; pi+1 < len(c.passes) && c.passes[pi].cut && (pi > s.pass || s.pos >= c.passes[pi].firm); pi++ {
			try(pi+1, 0)
			if c.passes[pi+1].firm > 0 {
				break
			}
		}
	}
	if len(next) == 0 {
		var want []string
		for _, s := range c.recAt {
			p := c.passes[s.pass]
			if s.pos < len(p.recs) {
				e := p.recs[s.pos]
				want = append(want, fmt.Sprintf("pass %d/%d record %d: %+v (after %d descriptors, %d decided)",
					s.pass, len(c.passes), s.pos, e.r, e.need, b.decided(p)))
			} else {
				want = append(want, fmt.Sprintf("pass %d/%d: no record", s.pass, len(c.passes)))
			}
		}
		t.Fatalf("QP %d: unexpected record %+v; expected one of %v", c.qpn, got, want)
	}
	c.recAt = next
	b.normRecAt(c)
	// The completer.
	x := matchPass.ctx
	if x != c.ctx {
		return
	}
	x.known = max(x.known, match.wqe+1)
	x.hw = max(x.hw, match.end)
	if got.Last {
		x.recLast[match.wqe] = true
	}
	b.advance(x)
}

// advance completes WQEs in order while the oldest is recorded and acknowledged.
func (b *sqBench) advance(x *sqCtx) {
	for x.unaIdx < len(x.wqes) && x.recLast[x.unaIdx] && x.wqes[x.unaIdx].end() <= x.unaOff {
		x.unaIdx++
	}
}

// ackNow acknowledges x up to PSN offset off at once (tests that drive progress by hand).
func (b *sqBench) ackNow(x *sqCtx, off int) {
	x.unaOff = max(x.unaOff, off)
	x.ackTo = max(x.ackTo, off)
	b.advance(x)
}

// completer delivers the acknowledgements due and makes new ones for what has been recorded.
func (b *sqBench) completer() {
	now := b.d.Cycles()
	for _, c := range b.list {
		x := c.ctx
		if x == nil || !x.rts {
			continue
		}
		for len(x.acks) > 0 && x.acks[0].at <= now {
			x.unaOff = max(x.unaOff, x.acks[0].off)
			x.acks = x.acks[1:]
			b.advance(x)
		}
		if !b.noAck && x.hw > x.ackTo && b.rng.Intn(100) < b.ackRate {
			to := x.hw
			if b.rng.Intn(3) == 0 {
				to = x.ackTo + 1 + b.rng.Intn(x.hw-x.ackTo)
			}
			x.acks = append(x.acks, sqAck{at: now + uint64(b.ackMin+b.rng.Intn(b.ackMax-b.ackMin+1)), off: to})
			x.ackTo = to
		}
	}
	if b.cmd == nil {
		b.goForward()
	}
	if b.cmd == nil && b.rwEvery > 0 {
		b.makeCmd()
	}
}

// goForward does what san_completer does when progress passes the point the engine resends
// from (acknowledgements of a first sending arriving after a go-back-N, or a go-back behind
// una): a go-back-N to una, so the engine skips what is complete. Without it the engine waits:
// it never fetches a WQE behind the oldest incomplete one, nor queues a chunk behind una.
func (b *sqBench) goForward() {
	now := b.d.Cycles()
	for _, c := range b.list {
		x := c.ctx
		if x == nil || c.loading || !x.rts || c.held || now < c.fwdAt {
			continue
		}
		// The resend point as the completer sees it: the PSN after the pass's latest record.
		p, pi := c.cur(), len(c.passes)-1
		at := p.from
		for i, s := range c.recAt {
			e := p.from
			if s.pass == pi && s.pos > 0 {
				e = p.recs[s.pos-1].end
			}
			if i == 0 || e < at {
				at = e
			}
		}
		behind := p.ctx == x && !p.held && at < x.sentOff
		for _, f := range c.fetchAt {
			behind = behind || f.next < x.sentIdx
		}
		if !behind {
			continue
		}
		k := min(x.unaIdx, x.known, x.rung)
		j := 0
		if k < len(x.wqes) && x.wqes[k].segs != nil {
			j = max(0, min(x.unaOff-x.wqes[k].first, len(x.wqes[k].segs)-1))
		}
		b.fwds++
		b.cmd = &sqCmd{qpn: c.qpn, c: c, k: k, j: j, psn: x.psn(x.firstOf(k)), at: now + uint64(b.rng.Intn(b.rwDelay+1))}
		return
	}
}

// makeCmd makes a go-back-N command now and then: for a connection held long enough, a
// resume; else, for a random connection, a hold or a go-back to a point the completer knows
// (at the oldest unacknowledged PSN, at a message boundary, or at any packet since), or a command
// for a connection not in RTS.
func (b *sqBench) makeCmd() {
	now := b.d.Cycles()
	var c *sqConn
	for _, q := range b.list {
		if q.held && now >= q.holdUntil && !q.loading {
			c = q
			break
		}
	}
	if c == nil {
		if b.rng.Intn(b.rwEvery) != 0 {
			return
		}
		if b.rng.Intn(100) < b.rwStray {
			q := b.rng.Intn(sqNQP)
			if s := b.conns[q]; s == nil || (!s.loading && !s.ctx.rts) {
				b.cmd = &sqCmd{qpn: q, hold: b.rng.Intn(2) == 0, k: b.rng.Intn(1 << 16), j: b.rng.Intn(100),
					psn: uint32(b.rng.Intn(1 << 24)), at: now + uint64(b.rng.Intn(b.rwDelay+1))}
			}
			return
		}
		var busy []*sqConn
		for _, q := range b.list {
			if !q.loading && q.ctx.rts && !q.held && (len(q.unposted) > 0 || q.ctx.unaIdx < len(q.ctx.wqes)) {
				busy = append(busy, q)
			}
		}
		if len(busy) == 0 {
			return
		}
		c = busy[b.rng.Intn(len(busy))]
		if b.rng.Intn(100) < b.holdRate {
			b.cmd = &sqCmd{qpn: c.qpn, c: c, hold: true, k: b.freed(c), at: now + uint64(b.rng.Intn(b.rwDelay+1))}
			return
		}
	}
	x := c.ctx
	hi := min(x.known, x.rung)
	lo := min(x.unaIdx, hi)
	// Never past a WQE whose last record has not come: the engine would wait for a go-back to
	// it once una passed it (san_completer's go-backs never skip one).
	for u := lo; u < hi; u++ {
		if !x.recLast[u] {
			hi = u
			break
		}
	}
	var k, j int
	switch b.rng.Intn(3) {
	case 0:
		// At una, as san_completer does.
		k = lo
		if k < len(x.wqes) && x.wqes[k].segs != nil {
			j = max(0, min(x.unaOff-x.wqes[k].first, len(x.wqes[k].segs)-1))
		}
	case 1:
		k = lo + b.rng.Intn(hi-lo+1)
	default:
		k = lo + b.rng.Intn(hi-lo+1)
		if k < len(x.wqes) && x.wqes[k].segs != nil {
			from := 0
			if k == x.unaIdx {
				from = max(0, min(x.unaOff-x.wqes[k].first, len(x.wqes[k].segs)-1))
			}
			j = from + b.rng.Intn(len(x.wqes[k].segs)-from)
		}
	}
	b.cmd = &sqCmd{qpn: c.qpn, c: c, k: k, j: j, psn: x.psn(x.firstOf(k)), at: now + uint64(b.rng.Intn(b.rwDelay+1))}
}

// sendUna sends one pending progress update (at most one every sqUnaGap cycles).
func (b *sqBench) sendUna() bool {
	d := b.d
	now := d.Cycles()
	if now-b.lastUna < sqUnaGap || b.rng.Intn(100) >= b.unaRate {
		d.Set("s_una_valid", 0)
		return false
	}
	var unposted []*sqCtx
	for _, c := range b.list {
		if x := c.ctx; x != nil && !c.loading && x.rts && (x.sentOff != x.unaOff || x.sentIdx != x.unaIdx) {
			unposted = append(unposted, x)
		}
	}
	if len(unposted) == 0 {
		d.Set("s_una_valid", 0)
		return false
	}
	x := unposted[b.rng.Intn(len(unposted))]
	x.sentOff, x.sentIdx = x.unaOff, x.unaIdx
	x.sentHist = append(x.sentHist, sqSent{at: now, idx: x.unaIdx})
	if p := x.c.cur(); p.ctx == x && p.back && x.unaOff > p.from+p.taken {
		b.lateUna++
	}
	d.Set("s_una_qpn", uint64(x.c.qpn))
	d.Set("s_una_psn", uint64(x.psn(x.unaOff)))
	d.Set("s_una_idx", uint64(uint16(x.unaIdx)))
	d.Set("s_una_valid", 1)
	b.lastUna = now
	return true
}

// step runs one cycle.
func (b *sqBench) step() {
	d, rng, t := b.d, b.rng, b.t
	b.drive()
	b.completer()

	dbValid := len(b.dbs) > 0 && (b.dbOn || rng.Intn(100) >= b.dbGap)
	b.dbOn = dbValid
	if dbValid {
		d.Set("s_db_qpn", uint64(b.dbs[0].qpn))
		d.Set("s_db_pi", uint64(b.dbs[0].pi))
	}
	d.Set("s_db_valid", b2u(dbValid))

	reqReady := rng.Intn(100) >= b.reqStall
	d.Set("m_dma_rd_req_ready", b2u(reqReady))
	dataValid := false
	if len(b.reads) > 0 && d.Cycles() >= b.reads[0].at && rng.Intn(100) >= b.dataStall {
		rd := b.reads[0]
		lo := b.readBeat * sqBeat
		hi := min(lo+sqBeat, len(rd.data))
		beat := make([]byte, sqBeat)
		copy(beat, rd.data[lo:hi])
		d.SetBytes("s_axis_dma_rd_tdata", beat)
		d.Set("s_axis_dma_rd_tkeep", 1<<(hi-lo)-1)
		d.Set("s_axis_dma_rd_tlast", b2u(hi == len(rd.data)))
		d.Set("s_axis_dma_rd_tuser", b2u(rd.err))
		dataValid = true
	}
	d.Set("s_axis_dma_rd_tvalid", b2u(dataValid))

	link := rng.Intn(100) >= b.linkStall
	var txReady, payReady bool
	if b.builder {
		txReady, payReady = b.bld.txReady(link), b.bld.payReady(link)
	} else {
		txReady, payReady = rng.Intn(100) >= b.txStall, rng.Intn(100) >= b.payStall
	}
	recReady := rng.Intn(100) >= b.recStall
	d.Set("m_tx_ready", b2u(txReady))
	d.Set("m_axis_pay_tready", b2u(payReady))
	d.Set("m_rec_ready", b2u(recReady))

	b.sendUna()
	cmdValid := b.cmd != nil && d.Cycles() >= b.cmd.at
	if cmdValid {
		m := b.cmd
		d.Set("s_rw_qpn", uint64(m.qpn))
		d.Set("s_rw_hold", b2u(m.hold))
		d.Set("s_rw_idx", uint64(uint16(m.k)))
		d.Set("s_rw_psn", uint64(m.psn))
		d.Set("s_rw_pkt", uint64(m.j))
		// The completer's generations: one more than the connection's last command, from 0 at a
		// load (a connection not in RTS: any).
		m.gen = uint8(m.k) & 15
		if m.c != nil {
			m.gen = (m.c.gen + 1) & 15
		}
		d.Set("s_rw_gen", uint64(m.gen))
	}
	d.Set("s_rw_valid", b2u(cmdValid))

	d.Set("ctx_load_en", 0)
	d.Eval()
	loadReady := d.Get("ctx_load_ready") == 1
	loadFire := false
	if loadReady && len(b.loads) > 0 && !(b.cmd != nil && b.cmd.c == b.loads[0].c) {
		b.setLoad(b.loads[0])
		d.Set("ctx_load_en", 1)
		d.Eval()
		require.Equal(t, uint64(1), d.Get("ctx_load_ready"), "ctx_load_ready depends on ctx_load_en")
		loadFire = true
	}
	if loadReady {
		b.initDone = true
		b.readyLow = 0
	} else if b.initDone {
		b.readyLow++
		b.readyMax = max(b.readyMax, b.readyLow)
	}

	dbFire := dbValid && d.Get("s_db_ready") == 1
	cmdFire := cmdValid && d.Get("s_rw_ready") == 1
	reqValid := d.Get("m_dma_rd_req_valid") == 1
	b.holdReq.check(t, reqValid, reqReady, func() string {
		return fmt.Sprintf("%#x+%d", d.Get("m_dma_rd_req_addr"), d.Get("m_dma_rd_req_len"))
	})
	if reqValid && reqReady {
		b.acceptRead(d.Get("m_dma_rd_req_addr"), int(d.Get("m_dma_rd_req_len")))
	}
	if dataValid {
		require.Equal(t, uint64(1), d.Get("s_axis_dma_rd_tready"), "read data stalled")
	}
	b.txValid = d.Get("m_tx_valid") == 1
	b.txDest = uint32(d.Get("m_tx_dest_qp"))
	// Records first: one may come in the cycle its descriptor is presented.
	recValid := d.Get("m_rec_valid") == 1
	b.holdRec.check(t, recValid, recReady, func() string { return fmt.Sprintf("%+v", b.getRecord()) })
	if recValid && recReady {
		b.takeRecord(b.getRecord())
	}
	b.holdTx.check(t, b.txValid, txReady, func() string { return fmt.Sprintf("%+v", b.getDesc()) })
	txFire := b.txValid && txReady
	var payLen int
	if txFire {
		g := b.getDesc()
		payLen = g.PayLen
		b.takeDesc(g)
	}
	payValid := d.Get("m_axis_pay_tvalid") == 1
	b.holdPay.check(t, payValid, payReady, func() string {
		return fmt.Sprintf("%x/%x/%d", d.GetBytes("m_axis_pay_tdata"), d.Get("m_axis_pay_tkeep"), d.Get("m_axis_pay_tlast"))
	})
	payFire := payValid && payReady
	if payFire {
		b.takePay(d.GetBytes("m_axis_pay_tdata"), d.Get("m_axis_pay_tkeep"), d.Get("m_axis_pay_tlast") == 1)
	}

	// The frame builder starved: idle with more descriptors to come, or waiting for payload.
	if b.builder && b.descs > 0 && link && ((b.bld.phase == sqIdle && !b.txValid && b.moreDescs()) ||
		(b.bld.phase == sqData && !payValid)) {
		b.gaps++
		for len(b.gapFrames) <= b.descs {
			b.gapFrames = append(b.gapFrames, 0)
		}
		b.gapFrames[b.descs]++
	}
	if b.builder {
		b.bld.step(link, txFire, payLen, payFire)
	}

	d.Tick()

	if dbFire {
		b.dbs, b.dbOn = b.dbs[1:], false
	}
	if loadFire {
		b.applyLoad(b.loads[0])
		b.loads = b.loads[1:]
	}
	if cmdFire {
		m := b.cmd
		b.cmd = nil
		b.applyCmd(m)
	}
	if dataValid {
		rd := b.reads[0]
		b.readBeat++
		if b.readBeat*sqBeat >= len(rd.data) {
			b.reads, b.readBeat = b.reads[1:], 0
		}
	}
}

// moreDescs reports whether a descriptor is still to come.
func (b *sqBench) moreDescs() bool {
	if b.regPend != nil {
		return true
	}
	for _, c := range b.list {
		if c.ctx != nil {
			if p := c.cur(); p.taken < len(p.pkts) || len(c.unposted) > 0 {
				return true
			}
		}
	}
	return false
}

// connIdle reports whether everything of c has been posted, rung, sent, recorded and
// acknowledged.
func (b *sqBench) connIdle(c *sqConn) bool {
	if c.loading || len(c.unposted) > 0 {
		return false
	}
	x := c.ctx
	if !x.rts {
		return true
	}
	p := c.cur()
	if c.held || x.rung != len(x.wqes) || p.taken < len(p.pkts) || len(x.acks) > 0 ||
		x.unaIdx < len(x.wqes) || x.unaOff != x.next || x.sentOff != x.unaOff || x.sentIdx != x.unaIdx {
		return false
	}
	// The records may all have come with those of a cut pass still open: the ones it perhaps
	// made (loose) never come when the engine dropped them, e.g. a WQE behind the oldest
	// incomplete one that a go-back forward skipped before it was fetched.
	last := sqRecAt{len(c.passes) - 1, len(p.recs)}
	for _, s := range c.recAt {
		for s.pass < last.pass && c.passes[s.pass].cut && s.pos >= c.passes[s.pass].firm {
			s = sqRecAt{s.pass + 1, 0}
		}
		if s == last {
			return true
		}
	}
	return false
}

// idle reports whether everything queued has been posted, rung, read, sent and acknowledged.
func (b *sqBench) idle() bool {
	if len(b.loads) > 0 || len(b.dbs) > 0 || len(b.reads) > 0 || len(b.payQ) > 0 || b.cmd != nil || b.regPend != nil {
		return false
	}
	for _, c := range b.list {
		if !b.connIdle(c) {
			return false
		}
	}
	return true
}

// run steps until the bench is idle, then 300 cycles more in which nothing may come out.
func (b *sqBench) run(limit int) {
	b.t.Helper()
	for i := 0; !b.idle(); i++ {
		if i >= limit {
			b.t.Fatalf("not done after %d cycles: %s", limit, b.status())
		}
		b.step()
	}
	b.settle(300)
}

// settle steps n cycles (the checks reject anything unexpected).
func (b *sqBench) settle(n int) {
	for i := 0; i < n; i++ {
		b.step()
	}
	assert.LessOrEqual(b.t, b.readyMax, 3, "longest run of ctx_load_ready low after the reset sweep")
}

// quiet steps until nothing has been sent, recorded or read for n cycles.
func (b *sqBench) quiet(n int) {
	b.t.Helper()
	start := b.d.Cycles()
	b.lastAct = start
	for b.d.Cycles()-b.lastAct < uint64(n) || len(b.reads) > 0 {
		if b.d.Cycles()-start > 200000 {
			b.t.Fatalf("never quiet: %s", b.status())
		}
		b.step()
	}
}

func (b *sqBench) status() string {
	s := fmt.Sprintf("cycle %d loads %d doorbells %d reads %d payQ %d cmd %v regPend %v;", b.d.Cycles(), len(b.loads),
		len(b.dbs), len(b.reads), len(b.payQ), b.cmd != nil, b.regPend != nil)
	for _, c := range b.list {
		x := c.ctx
		if x == nil {
			continue
		}
		p := c.cur()
		s += fmt.Sprintf(" QP%d rts %v held %v unposted %d posted %d rung %d fetch %v passes %d desc %d/%d recAt %v"+
			" hw %d una %d/%d sent %d/%d next %d;", c.qpn, x.rts, c.held, len(c.unposted), len(x.wqes), x.rung, c.fetchAt,
			len(c.passes), p.taken, len(p.pkts), c.recAt, x.hw, x.unaOff, x.unaIdx, x.sentOff, x.sentIdx, x.next)
	}
	return s
}

// waitLoads steps until the queued context loads have been taken.
func (b *sqBench) waitLoads() {
	for i := 0; len(b.loads) > 0; i++ {
		require.Less(b.t, i, 10000, "context loads not taken")
		b.step()
	}
}

// waitCmd steps until the command queued has been taken.
func (b *sqBench) waitCmd() {
	for i := 0; b.cmd != nil; i++ {
		require.Less(b.t, i, 10000, "command not taken")
		b.step()
	}
}

func sqSend(n uint32, sig bool) sqMsg { return sqMsg{len: n, sig: sig, payErr: -1} }

// sqRandMsgs returns n messages of the sizes the tests care about at PMTU pmtu, with random flags
// and, when faults is set, a few bad WQEs and failed reads.
func sqRandMsgs(rng *rand.Rand, n, pmtu int, faults bool) []sqMsg {
	sizes := []int{0, 1, 63, 64, pmtu - 1, pmtu, pmtu + 1, 2*pmtu + 7, rng.Intn(3*pmtu) + 1, rng.Intn(200)}
	var out []sqMsg
	for i := 0; i < n; i++ {
		m := sqMsg{len: uint32(sizes[rng.Intn(len(sizes))]), sig: rng.Intn(3) != 0, sol: rng.Intn(3) == 0, payErr: -1}
		if faults {
			switch rng.Intn(20) {
			case 0:
				m.opcode = uint8(1 + rng.Intn(255))
			case 1:
				m.len = 1<<31 + uint32(rng.Intn(1<<31))
			case 2:
				m.wqeErr = true
			case 3:
				if m.len > 0 {
					m.payErr = rng.Intn(len(wire.Segment(int(m.len), pmtu)))
				}
			}
		}
		out = append(out, m)
	}
	return out
}

// TestSqEngineMessages sends random message mixes on several connections (interleaved doorbells,
// small rings that wrap, PSNs that wrap, rare bad WQEs and failed reads) at PMTU 256, 1024 and
// 4096, with in-order host reads after 0 or 150 cycles, and checks every connection's
// descriptors (AckReq on each chunk's last packet), payload and records against the reference,
// with the bench as an in-order completer acknowledging after random delays.
func TestSqEngineMessages(t *testing.T) {
	seed := int64(0x5E9D)
	t.Logf("seed %d", seed)
	cases := []struct {
		name                        string
		pmtuLog                     int
		latency                     int
		reqStall, dataStall         int
		builder                     bool
		linkStall                   int
		txStall, payStall, recStall int
		msgs                        int
	}{
		{name: "pmtu256/lat0/free", pmtuLog: 8, msgs: 20},
		{name: "pmtu256/lat150/stalls", pmtuLog: 8, latency: 150, reqStall: 30, dataStall: 30, txStall: 40, payStall: 40, recStall: 50, msgs: 20},
		{name: "pmtu1024/lat0/stalls", pmtuLog: 10, reqStall: 20, dataStall: 40, txStall: 30, payStall: 60, recStall: 80, msgs: 20},
		{name: "pmtu1024/lat150/builder", pmtuLog: 10, latency: 150, dataStall: 10, builder: true, linkStall: 20, msgs: 20},
		{name: "pmtu4096/lat0/free", pmtuLog: 12, msgs: 8},
		{name: "pmtu4096/lat150/stalls", pmtuLog: 12, latency: 150, dataStall: 20, txStall: 20, payStall: 30, recStall: 30, msgs: 8},
	}
	for ci, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewSource(seed + int64(ci)))
			b := newSqBench(t, rng, tc.pmtuLog)
			b.latency, b.reqStall, b.dataStall = tc.latency, tc.reqStall, tc.dataStall
			b.builder, b.linkStall = tc.builder, tc.linkStall
			b.txStall, b.payStall, b.recStall = tc.txStall, tc.payStall, tc.recStall
			// Six connections: small rings that wrap, PSNs just below 2^24 that wrap, the
			// lowest and highest QPNs.
			qpns := []int{0, 1, 77, 128, 200, sqNQP - 1}
			for i, q := range qpns {
				psn := uint32(rng.Intn(1 << 24))
				if i%2 == 0 {
					psn = 1<<24 - uint32(1+rng.Intn(8))
				}
				c := b.conn(q, uint(1+rng.Intn(4)), psn)
				c.unposted = sqRandMsgs(rng, tc.msgs, b.pmtu, true)
			}
			// Every size of interest once more, and one 64 KiB message.
			for _, n := range []int{0, 1, 63, 64, b.pmtu - 1, b.pmtu, b.pmtu + 1} {
				b.conns[qpns[2]].unposted = append(b.conns[qpns[2]].unposted, sqSend(uint32(n), true))
			}
			b.conns[qpns[1]].unposted = append(b.conns[qpns[1]].unposted, sqSend(64<<10, true))
			b.run(2000000)
			t.Logf("%d packets, %d records, %d payload bytes, %d cycles", b.descs, b.recs, b.payBytes, b.d.Cycles())
		})
	}
}

// TestSqEngineErrors: bad opcodes and lengths are recorded with BAD_WQE and a failed WQE read with
// DMA_ERROR, signaled or not, sending nothing and taking no PSN; a failed payload read (first,
// middle, last packet) still sends the message and records it with DMA_ERROR; the connection
// goes on with the next WQE.
func TestSqEngineErrors(t *testing.T) {
	seed := int64(0xE44)
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewSource(seed))
	b := newSqBench(t, rng, 8)
	b.latency, b.dataStall, b.txStall, b.payStall, b.recStall = 20, 20, 20, 20, 20
	c := b.conn(5, 3, 1<<24-2)
	for _, sig := range []bool{false, true} {
		c.unposted = append(c.unposted,
			sqMsg{len: 100, opcode: 1, sig: sig, payErr: -1},
			sqSend(300, sig),
			sqMsg{len: 1 << 31, sig: sig, payErr: -1},
			sqMsg{len: 0xFFFFFFFF, sig: sig, payErr: -1},
			sqMsg{len: 0, opcode: 0xFF, sig: sig, payErr: -1},
			sqMsg{len: 700, sig: sig, wqeErr: true, payErr: -1},
			sqSend(0, sig),
			sqMsg{len: 1000, sig: sig, payErr: 0},
			sqMsg{len: 1000, sig: sig, payErr: 1},
			sqMsg{len: 1000, sig: sig, payErr: 3},
			sqMsg{len: 1<<31 - 1, sig: sig, opcode: 2, payErr: -1},
			sqSend(256, sig),
		)
	}
	b.run(200000)
	var st []regs.CQEStatus
	for _, w := range c.ctx.wqes {
		if w.segs == nil {
			st = append(st, w.status)
		}
	}
	t.Logf("record statuses of WQEs that send nothing, in order: %v", st)
}

// TestSqEngineResetQP: doorbells and go-back-N commands of a connection never loaded, and of one
// loaded in reset, are taken and ignored (no read, nothing sent); the PI they carried does not
// survive a later load.
func TestSqEngineResetQP(t *testing.T) {
	seed := int64(0x2E5E7)
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewSource(seed))
	b := newSqBench(t, rng, 10)
	b.noPost = true
	neverBase := b.alloc(64<<2, 64)
	busy := b.conn(3, 4, 100)
	b.waitLoads()
	// A connection never loaded: WQEs in a ring the engine was never told of.
	for i := 0; i < 3; i++ {
		w := regs.SendWQE(b.host(neverBase+uint64(i)*64, 64))
		w.SetLength(64)
		w.SetAddr(neverBase)
	}
	b.dbs = append(b.dbs, sqDoorbell{qpn: 9, pi: 3})
	// Another, loaded in reset after it had work.
	gone := b.conn(40, 3, 7)
	b.waitLoads()
	for i := 0; i < 2; i++ {
		b.post(gone, sqSend(64, true))
	}
	b.ring(gone)
	b.post(busy, sqSend(2000, true))
	b.ring(busy)
	b.run(100000)
	b.load(gone, false, 3, 50)
	b.waitLoads()
	b.dbs = append(b.dbs, sqDoorbell{qpn: 40, pi: 5}, sqDoorbell{qpn: 9, pi: 4})
	reads := b.nReads
	for _, m := range []sqCmd{{qpn: 40, k: 0, j: 0, psn: 50}, {qpn: 40, hold: true}, {qpn: 9, k: 1, j: 2, psn: 9}} {
		m := m
		b.cmd = &m
		b.waitCmd()
	}
	b.settle(500)
	assert.Equal(t, reads, b.nReads, "reads for doorbells and commands of connections in reset")
	assert.Empty(t, b.dbs, "doorbells of connections in reset are taken")
	// Back to RTS: the ignored PI 5 is gone, so nothing is sent until a doorbell.
	b.load(gone, true, 2, 1<<24-1)
	b.waitLoads()
	b.settle(500)
	assert.Equal(t, reads, b.nReads, "reads after a load with no doorbell")
	for i := 0; i < 3; i++ {
		b.post(gone, sqSend(uint32(100*i), true))
	}
	b.ring(gone)
	b.run(100000)
	assert.Equal(t, 3, gone.ctx.unaIdx, "WQEs of the connection complete after its reload")
}

// TestSqEngineContextLoad reloads a connection (new addressing, PSN, ring base and size) while
// others keep sending: between messages; in the middle of its traffic (chunks queued, packets
// buffered); just as its first descriptor comes out; and with its window full (no
// acknowledgements), a chunk waiting for it and the WQEs after it fetched and waiting. What was in
// flight is dropped but for the descriptor in the output register and the
// records already pushed; what follows uses the new context from ring index 0 and its PSN.
func TestSqEngineContextLoad(t *testing.T) {
	seed := int64(0xC7C)
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewSource(seed))
	b := newSqBench(t, rng, 9)
	b.latency, b.dataStall, b.payStall, b.recStall = 60, 20, 20, 20
	others := []*sqConn{b.conn(10, 2, 5), b.conn(11, 5, 6)}
	c := b.conn(12, 3, 7)
	b.waitLoads()
	for round := 0; round < 16; round++ {
		for _, o := range others {
			o.unposted = append(o.unposted, sqRandMsgs(rng, 4, b.pmtu, false)...)
		}
		switch round % 4 {
		case 0:
			// Step until c is idle (the others may still be busy), then reload it.
			c.unposted = sqRandMsgs(rng, 5+rng.Intn(10), b.pmtu, false)
			for i := 0; !b.connIdle(c); i++ {
				require.Less(t, i, 200000, "connection not idle: %s", b.status())
				b.step()
			}
		case 1:
			// Reload it in the middle of its traffic.
			c.unposted = sqRandMsgs(rng, 5+rng.Intn(10), b.pmtu, false)
			for i, n := 0, 50+rng.Intn(1500); i < n; i++ {
				b.step()
			}
		case 2:
			// A ring full of small messages, rung at once: reload it as the first one goes.
			for b.room(c) {
				b.post(c, sqSend(uint32(rng.Intn(64)), true))
			}
			b.ring(c)
			p := c.cur()
			for i := 0; p.taken == 0; i++ {
				require.Less(t, i, 100000, "nothing sent: %s", b.status())
				b.step()
			}
		case 3:
			// Messages of 20 packets beyond the window, unacknowledged: reload it once stuck.
			for b.room(c) {
				b.post(c, sqSend(uint32(20*b.pmtu), true))
			}
			b.ring(c)
			b.noAck = true
			b.quiet(500)
			require.Less(t, c.cur().taken, len(c.cur().pkts), "QP %d not held up by its window", c.qpn)
		}
		c.unposted = nil
		b.load(c, true, uint(3+rng.Intn(2)), uint32(rng.Intn(1<<24)))
		b.waitLoads()
		b.noAck = false
	}
	c.unposted = sqRandMsgs(rng, 10, b.pmtu, false)
	b.run(400000)
	t.Logf("%d passes of QP %d", len(c.passes), c.qpn)
}

// TestSqEngineRoundRobin: with the engine disabled, connections with several WQEs each ring in
// turn; once enabled they are served one message per turn in doorbell order.
func TestSqEngineRoundRobin(t *testing.T) {
	seed := int64(0x4242)
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewSource(seed))
	b := newSqBench(t, rng, 10)
	b.noPost = true
	b.d.Set("cfg_enable", 0)
	qpns := []int{7, 3, 250, 0, 64}
	for _, q := range qpns {
		b.conn(q, 4, uint32(q))
	}
	b.waitLoads()
	for _, q := range qpns {
		c := b.conns[q]
		for i := 0; i < 4+q%3; i++ {
			b.post(c, sqSend(uint32(rng.Intn(2000)), true))
		}
		b.ring(c)
	}
	b.settle(200)
	require.Empty(t, b.dbs, "doorbells taken while disabled")
	require.Zero(t, b.nReads, "reads while disabled")
	b.d.Set("cfg_enable", 1)
	b.run(200000)
	var want []int
	left := map[int]int{}
	for _, q := range qpns {
		left[q] = 4 + q%3
	}
	for len(want) < len(b.order) {
		for _, q := range qpns {
			if left[q] > 0 {
				want = append(want, q)
				left[q]--
			}
		}
	}
	assert.Equal(t, want, b.order, "messages in round-robin order")
}

// TestSqEngineNoBubble streams messages into a consumer with san_tx_builder's timing and an
// always-ready link, the completer acknowledging promptly. 1 KiB messages at PMTU 1024 with
// 0-cycle reads: after the first frame the builder never waits for a descriptor or a payload
// beat (acknowledgements are not on the critical path). The same at 150 cycles, and 64 B and 0 B
// messages at 150 cycles (as a fraction of the link's frame rate), are reported.
func TestSqEngineNoBubble(t *testing.T) {
	for _, tc := range []struct {
		size, n, latency int
		strict           bool
	}{{1024, 60, 0, true}, {1024, 60, 150, false}, {64, 300, 150, false}, {0, 300, 150, false}} {
		t.Run(fmt.Sprintf("%dB/lat%d", tc.size, tc.latency), func(t *testing.T) {
			rng := rand.New(rand.NewSource(1))
			b := newSqBench(t, rng, 10)
			b.latency, b.builder, b.postRate = tc.latency, true, 100
			b.ackRate, b.ackMin, b.ackMax, b.unaRate = 100, 20, 40, 100
			c := b.conn(1, 6, 0)
			for i := 0; i < tc.n; i++ {
				c.unposted = append(c.unposted, sqSend(uint32(tc.size), i%4 == 0))
			}
			b.run(200000)
			frame := (54 + tc.size + (4-tc.size%4)%4 + 4 + sqBeat - 1) / sqBeat
			span := b.lastPay - b.firstDesc + 1
			if tc.size == 0 {
				span = b.lastDesc - b.firstDesc + uint64(frame)
			}
			first := 0
			if len(b.gapFrames) > 1 {
				first = b.gapFrames[1]
			}
			t.Logf("%d B, latency %d: %d frames of %d beats in %d cycles from the first descriptor (%.1f%% of the link); builder starved %d cycles (%d in the first frame); first descriptor at cycle %d",
				tc.size, tc.latency, tc.n, frame, span, 100*float64(tc.n*frame)/float64(span), b.gaps, first, b.firstDesc)
			if tc.strict {
				assert.Equal(t, b.gaps, first, "starved cycles after the first frame (by frame): %v", b.gapFrames)
			}
		})
	}
}

// sqWindowEdge is the number of pass p's packets the engine may send with progress at PSN
// offset una and WQE index idx: those before the first chunk ending WINDOW or more PSNs beyond
// una, or of a WQE MSG_WINDOW or more beyond idx.
func sqWindowEdge(p *sqPass, una, idx int) int {
	for i, k := range p.pkts {
		if k.chunkEnd-una >= sqWindow || k.wqe-idx >= sqMsgWindow {
			return i
		}
	}
	return len(p.pkts)
}

// TestSqEngineWindow: with no progress from the completer, a connection sends exactly the chunks
// that lie entirely within WINDOW PSNs of its first PSN, then nothing; each progress update
// opens the window to exactly the next chunk edge (some updates land mid-chunk). PSNs start at 0,
// unaligned, and just below the 24-bit wrap, so chunks and the window cross it.
func TestSqEngineWindow(t *testing.T) {
	seed := int64(0x3173)
	t.Logf("seed %d", seed)
	for ci, tc := range []struct {
		name    string
		pmtuLog int
		psn     uint32
	}{
		{"pmtu256/psn0", 8, 0},
		{"pmtu256/psn10", 8, 10},
		{"pmtu1024/psn0xFFFFC0", 10, 0xFFFFC0},
		{"pmtu256/psn0xFFFFD7", 8, 0xFFFFD7},
		{"pmtu4096/psn0xFFFFFF", 12, 0xFFFFFF},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewSource(seed + int64(ci)))
			b := newSqBench(t, rng, tc.pmtuLog)
			b.noPost, b.noAck = true, true
			b.latency, b.dataStall, b.txStall, b.payStall, b.recStall = 30, 10, 10, 10, 10
			c := b.conn(21, 6, tc.psn)
			// A neighbour that keeps sending while c waits would be held up too (one in-order
			// pipeline): it has nothing here.
			b.waitLoads()
			for i := 0; i < 40; i++ {
				b.post(c, sqSend(uint32(1+rng.Intn(20*b.pmtu)), rng.Intn(2) == 0))
			}
			b.ring(c)
			x := c.ctx
			p := c.cur()
			for round := 0; ; round++ {
				b.quiet(1500)
				want := sqWindowEdge(p, x.sentOff, x.sentIdx)
				require.Equal(t, want, p.taken, "round %d: packets sent with una %#x (offset %d), idx %d", round,
					x.psn(x.sentOff), x.sentOff, x.sentIdx)
				if want == len(p.pkts) {
					require.Greater(t, round, 2, "rounds with the window full")
					break
				}
				// Every record of what was sent has come.
				nrec := 0
				for _, r := range p.recs {
					if r.need <= p.taken {
						nrec++
					}
				}
				require.Equal(t, []sqRecAt{{len(c.passes) - 1, nrec}}, c.recAt, "records of the packets sent")
				// Acknowledge some of what was recorded: a chunk's end, or any PSN in between.
				to := x.hw - rng.Intn(min(x.hw-x.unaOff, 70)+1)
				if round%2 == 0 {
					to = x.hw
				}
				b.ackNow(x, to)
			}
			b.noAck = false
			b.run(400000)
		})
	}
}

// TestSqEngineMsgWindow: with no progress from the completer, a connection with many small
// messages (and some that send nothing) fetches exactly MSG_WINDOW WQEs, sends them and stops;
// each update of the oldest incomplete WQE lets exactly as many more be fetched.
func TestSqEngineMsgWindow(t *testing.T) {
	seed := int64(0x3257)
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewSource(seed))
	b := newSqBench(t, rng, 8)
	b.noPost, b.noAck = true, true
	b.latency, b.reqStall, b.dataStall, b.txStall, b.recStall = 40, 10, 10, 10, 10
	c := b.conn(33, 7, 0xFFFFF0)
	b.waitLoads()
	for i := 0; i < 120; i++ {
		m := sqSend(uint32(rng.Intn(100)), rng.Intn(2) == 0)
		if rng.Intn(8) == 0 {
			m.opcode = 0x33
		}
		b.post(c, m)
	}
	b.ring(c)
	x := c.ctx
	p := c.cur()
	for round := 0; round < 5; round++ {
		b.quiet(1500)
		require.Equal(t, x.sentIdx+sqMsgWindow, b.fetched(c), "round %d: WQEs fetched with the oldest incomplete at %d",
			round, x.sentIdx)
		require.Equal(t, sqWindowEdge(p, x.sentOff, x.sentIdx), p.taken, "round %d: packets sent", round)
		// Acknowledge a few messages.
		b.ackNow(x, x.wqes[x.unaIdx+3+rng.Intn(10)].end())
	}
	b.noAck = false
	b.run(400000)
}

// sqGoBackCase is one go-back-N bench: random traffic on several connections, with commands.
type sqGoBackCase struct {
	name                        string
	pmtuLog                     int
	latency                     int
	reqStall, dataStall         int
	txStall, payStall, recStall int
	rwEvery, holdRate, rwStray  int
	msgs                        int
	wrap                        bool // PSNs start just below 2^24
	ackMax                      int  // if not 0, the longest acknowledgement delay (cycles)
}

func runSqGoBack(t *testing.T, seed int64, tc sqGoBackCase) {
	rng := rand.New(rand.NewSource(seed))
	b := newSqBench(t, rng, tc.pmtuLog)
	b.latency, b.reqStall, b.dataStall = tc.latency, tc.reqStall, tc.dataStall
	b.txStall, b.payStall, b.recStall = tc.txStall, tc.payStall, tc.recStall
	b.rwEvery, b.holdRate, b.rwStray = tc.rwEvery, tc.holdRate, tc.rwStray
	if tc.ackMax != 0 {
		b.ackMax = tc.ackMax
	}
	// Ring sizes that wrap; in a reset connection, commands are ignored.
	qpns := []int{2, 19, 100, 255}
	for _, q := range qpns {
		psn := uint32(rng.Intn(1 << 24))
		if tc.wrap {
			psn = 0xFFFFC0 + uint32(rng.Intn(0x30))
		}
		c := b.conn(q, uint(2+rng.Intn(3)), psn)
		c.unposted = sqRandMsgs(rng, tc.msgs, b.pmtu, true)
		// Long messages: rewinds deep inside, chunks of 64 packets.
		c.unposted = append(c.unposted, sqSend(uint32(70*b.pmtu+rng.Intn(b.pmtu)), true))
		c.unposted = append(c.unposted, sqRandMsgs(rng, tc.msgs/2, b.pmtu, true)...)
	}
	b.load(&sqConn{qpn: 50}, false, 2, 0)
	b.conns[50] = b.loads[len(b.loads)-1].c
	b.list = append(b.list, b.conns[50])
	b.run(3000000)
	t.Logf("%d packets, %d records, %d commands (%d holds, %d ignored), %d cycles", b.descs, b.recs, b.cmds, b.holds,
		b.ign, b.d.Cycles())
	t.Logf("go-backs mid-message %d, into recorded WQEs %d, across the wrap %d; descriptors from the output register after a cut %d; stale fetches %d; progress past the resent %d; go-backs forward %d",
		b.rwMid, b.rwRecorded, b.rwWrap, b.regOld, b.strayOnly, b.lateUna, b.fwds)
	require.Greater(t, b.cmds-b.holds-b.ign, 10, "go-back-N commands taken")
	require.Positive(t, b.rwMid, "go-backs mid-message")
	require.Positive(t, b.rwRecorded, "go-backs into recorded WQEs")
	if tc.wrap {
		require.Positive(t, b.rwWrap, "go-backs across the PSN wrap")
	}
}

// TestSqEngineGoBackN: random go-back-N commands (at una as the completer makes them, at message
// boundaries, at any packet recorded, into WQEs already recorded, with pkt > 0 and 0) and holds
// then resumes, on several connections, with random command timing, while traffic flows; also
// commands for a connection in reset. After each, the connection sends exactly the packets from
// the point named on (after at most the descriptor in the output register), with the same PSNs,
// opcodes for a mid-message start, and payload bytes as the first time, and records again.
// Acknowledgements that arrive after a go-back beyond its point (late ones) are taken too.
func TestSqEngineGoBackN(t *testing.T) {
	seed := int64(0x60BAC)
	t.Logf("seed %d", seed)
	for ci, tc := range []sqGoBackCase{
		{name: "pmtu256/lat0", pmtuLog: 8, rwEvery: 120, holdRate: 15, rwStray: 10, msgs: 24},
		{name: "pmtu256/lat150/stalls", pmtuLog: 8, latency: 150, reqStall: 20, dataStall: 20, txStall: 30, payStall: 30,
			recStall: 40, rwEvery: 250, holdRate: 15, rwStray: 10, msgs: 24},
		{name: "pmtu1024/lat40/stalls", pmtuLog: 10, latency: 40, dataStall: 30, txStall: 50, payStall: 50, recStall: 60,
			rwEvery: 1500, holdRate: 10, rwStray: 10, msgs: 16},
		// Acknowledgements slower than a packet (4096 bytes: 512 cycles), so WQEs wait recorded
		// and unacknowledged, and go-backs land in them.
		{name: "pmtu4096/lat80", pmtuLog: 12, latency: 80, dataStall: 10, txStall: 10, payStall: 10, rwEvery: 3000,
			holdRate: 10, msgs: 8, ackMax: 3000},
	} {
		t.Run(tc.name, func(t *testing.T) { runSqGoBack(t, seed+int64(ci), tc) })
	}
}

// TestSqEnginePSNWrap: the go-back-N bench with every connection's PSNs starting just below 2^24
// (0xFFFFC0 and up), so messages, chunks, the window and go-backs cross the wrap.
func TestSqEnginePSNWrap(t *testing.T) {
	seed := int64(0xFFFFC0)
	t.Logf("seed %d", seed)
	for ci, tc := range []sqGoBackCase{
		{name: "pmtu256", pmtuLog: 8, latency: 20, txStall: 20, recStall: 20, rwEvery: 120, holdRate: 10, msgs: 24, wrap: true},
		{name: "pmtu1024", pmtuLog: 10, latency: 60, dataStall: 20, payStall: 20, rwEvery: 800, holdRate: 10, msgs: 16, wrap: true},
	} {
		t.Run(tc.name, func(t *testing.T) { runSqGoBack(t, seed+int64(ci), tc) })
	}
}

// TestSqEngineHold: a connection held stops at once (but for the descriptor in the output
// register, kept there by a stalled link while the command is taken) while another keeps
// sending; doorbells are recorded meanwhile; a second hold changes nothing; a go-back resumes it
// at una; a go-back taken with its descriptor in the output register lets that one out and
// resends from the point named.
func TestSqEngineHold(t *testing.T) {
	seed := int64(0x401D)
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewSource(seed))
	b := newSqBench(t, rng, 8)
	b.latency, b.txStall, b.recStall = 30, 20, 20
	c := b.conn(7, 4, 0xFFFFFA)
	o := b.conn(8, 4, 1000)
	b.waitLoads()
	for i := 0; i < 10; i++ {
		c.unposted = append(c.unposted, sqSend(uint32(1+rng.Intn(12*b.pmtu)), true))
		o.unposted = append(o.unposted, sqRandMsgs(rng, 3, b.pmtu, false)...)
	}
	// Takes a command made by m with a descriptor of c in the output register, after at least n of
	// c's packets.
	withReg := func(n int, m func() sqCmd) {
		for i := 0; c.cur().taken < n || !(b.d.Get("m_tx_valid") == 1 && uint32(b.d.Get("m_tx_dest_qp")) == c.ctx.dest); i++ {
			require.Less(t, i, 100000, "no descriptor of QP %d: %s", c.qpn, b.status())
			b.step()
		}
		b.txStall = 100
		cmd := m()
		b.cmd = &cmd
		b.waitCmd()
		require.Equal(t, c.passes[len(c.passes)-2], b.regPend, "the descriptor in the output register")
		b.txStall = 20
	}
	withReg(30, func() sqCmd { return sqCmd{qpn: c.qpn, c: c, hold: true} })
	c.holdUntil = ^uint64(0)
	descs := b.descs
	oBefore := o.cur().taken
	for i := 0; i < 3000; i++ {
		b.step()
	}
	b.cmd = &sqCmd{qpn: c.qpn, c: c, hold: true}
	b.waitCmd()
	c.holdUntil = ^uint64(0)
	for i := 0; i < 2000; i++ {
		b.step()
	}
	assert.Greater(t, o.cur().taken, oBefore, "the other connection kept sending")
	assert.Equal(t, 1, b.descs-descs-(o.cur().taken-oBefore), "descriptors of the held connection")
	assert.Equal(t, 1, b.regOld, "descriptors from the output register after a cut")
	// Resume at the oldest unacknowledged PSN, as the completer does.
	at := func() sqCmd {
		x := c.ctx
		k := x.unaIdx
		j := 0
		if k < len(x.wqes) && x.wqes[k].segs != nil {
			j = max(0, min(x.unaOff-x.wqes[k].first, len(x.wqes[k].segs)-1))
		}
		t.Logf("go back to WQE %d packet %d (%d WQEs posted, %d packets sent in the pass)", k, j, len(x.wqes), c.cur().taken)
		return sqCmd{qpn: c.qpn, c: c, k: k, j: j, psn: x.psn(x.firstOf(k))}
	}
	m := at()
	b.cmd = &m
	b.waitCmd()
	withReg(20, at)
	b.run(400000)
	assert.Equal(t, 2, b.regOld, "descriptors from the output register after a cut")
}

// TestSqEngineLateAck: after a go-back-N to una, acknowledgements of what was sent before it
// arrive (the retransmit timer fired early): progress moves past the point the engine resends
// from, and past the WQEs it would fetch again. The engine must fetch no WQE that has completed
// (the driver may already have written a new request into its slot) and queue no chunk behind
// una: it waits until the completer goes back again, forward to una (held off here for 2000
// cycles, so an engine that does not wait is caught), and then finishes.
func TestSqEngineLateAck(t *testing.T) {
	seed := int64(0x1A7E)
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewSource(seed))
	b := newSqBench(t, rng, 8)
	b.noPost, b.noAck = true, true
	b.latency = 20
	c := b.conn(4, 6, 0xFFFFE0)
	b.waitLoads()
	for i := 0; i < 50; i++ {
		b.post(c, sqSend(uint32(1+rng.Intn(6*b.pmtu)), true))
	}
	b.ring(c)
	x := c.ctx
	b.quiet(1000)
	require.Greater(t, x.hw, 64, "sent before the go-back")
	// Go back to the start, then acknowledge all that was sent the first time.
	b.cmd = &sqCmd{qpn: c.qpn, c: c, psn: x.psn(0)}
	b.waitCmd()
	for i := 0; i < 30; i++ {
		b.step()
	}
	c.fwdAt = b.d.Cycles() + 2000
	b.ackNow(x, x.hw)
	t.Logf("una moved to offset %d, WQE %d, past the resend point (offset 0, WQE 0)", x.unaOff, x.unaIdx)
	b.noAck = false
	b.run(400000)
	assert.Positive(t, b.fwds, "go-backs forward to una")
}

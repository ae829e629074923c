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
)

// sqMsg is one work request as a test posts it.
type sqMsg struct {
	len    uint32
	opcode uint8
	sig    bool
	sol    bool
	wqeErr bool // the host fails the read of its WQE
	payErr int  // packet whose payload read the host fails; -1: none
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

type sqWant struct {
	d       sqDesc
	payload []byte
	garbage bool // its payload read fails: the bytes are not checked
	msg     int  // message number within the connection
}

// sqCQE is one completion as the engine gives it, or as the reference expects it.
type sqCQE struct {
	QPN       int
	WrID      uint64
	ByteLen   uint32
	Opcode    uint8
	Status    regs.CQEStatus
	Solicited bool
}

type sqWantCQE struct {
	c       sqCQE
	anyWrID bool // the WQE read failed: wr_id is whatever came back
	after   int  // descriptors of the connection that must be complete before it
}

// sqConn is one connection: its loaded context, its ring as the driver fills it, and the
// reference: the descriptors and CQEs it must produce, in order.
type sqConn struct {
	qpn     int
	rts     bool
	loading bool
	dest    uint32
	dmac    uint64
	dip     uint32
	sport   uint16
	psn     uint32 // next PSN of the reference
	base    uint64
	log     uint
	posted  int // WQEs posted since the load (the PI)
	rung    int // PI of the last doorbell queued
	fetched int // WQE reads of the ring the host has served since the load
	todo    []sqMsg
	msgs    int

	want     []sqWant
	got      int // descriptors received
	done     []bool
	doneUpTo int // descriptors 0..doneUpTo-1 are complete (payload included)
	cqes     []sqWantCQE
	gotCQEs  int
}

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

// sqHold checks the AXI rule that a payload holds while valid waits for ready.
type sqHold struct {
	name    string
	waiting bool
	last    string
}

func (h *sqHold) check(t *testing.T, valid, ready bool, payload func() string) {
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
// answering reads in request order after a latency, with stalls, and consumers of descriptors,
// payload and CQEs, with stalls or with san_tx_builder's timing.
type sqBench struct {
	t       *testing.T
	d       *dut.DUT
	rng     *rand.Rand
	pmtuLog int
	pmtu    int

	mem      []byte // mem[i] is at IOVA sqMemBase+i
	failOnce map[uint64]bool
	bufs     []sqRange // payload buffers the engine may read
	reads    []*sqRead
	readBeat int

	latency   int // cycles from a read's acceptance to its first beat, beyond the one after
	reqStall  int // percent of cycles the read request port is not ready
	dataStall int // percent of cycles read data is withheld
	postRate  int // percent of cycles the driver posts a WQE (if it has one)
	dbGap     int // percent of cycles a queued doorbell waits

	conns  map[int]*sqConn
	list   []*sqConn // the connections in the order they were made
	byDest map[uint32]*sqConn
	dests  map[uint32]bool
	loads  []sqLoad
	dbs    []sqDoorbell
	dbOn   bool
	noPost bool // the driver only rings what the test posts by hand

	builder   bool // consume as san_tx_builder does, with linkStall percent of link stalls
	linkStall int
	txStall   int
	payStall  int
	cqeStall  int
	bld       sqBuilder
	payQ      []*sqWant
	payConn   []*sqConn
	payIdx    []int
	cur       []byte

	holdReq, holdTx, holdPay, holdCQE sqHold

	descs     int    // descriptors received
	order     []int  // connection of each message's first descriptor, in order
	gaps      int    // builder cycles starved of a descriptor or payload, after the first
	gapFrames []int  // gaps by the number of descriptors taken before them
	payBytes  int    // payload bytes taken
	firstDesc uint64 // cycle of the first descriptor taken
	lastDesc  uint64 // cycle of the last
	lastPay   uint64 // cycle of the last payload beat
	readyLow  int    // current run of cycles with ctx_load_ready low (after the reset sweep)
	readyMax  int
	initDone  bool
	nReads    int // reads accepted
}

func newSqBench(t *testing.T, rng *rand.Rand, pmtuLog int) *sqBench {
	b := &sqBench{t: t, d: dut.New(t, "san_sq_engine"), rng: rng, pmtuLog: pmtuLog, pmtu: 1 << pmtuLog,
		failOnce: map[uint64]bool{}, conns: map[int]*sqConn{}, byDest: map[uint32]*sqConn{},
		dests: map[uint32]bool{}, postRate: 50, dbGap: 30}
	b.holdReq.name, b.holdTx.name, b.holdPay.name, b.holdCQE.name = "read request", "descriptor", "payload", "CQE"
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

// post writes the next WQE of c into its ring and records what it must produce.
func (b *sqBench) post(c *sqConn, m sqMsg) {
	ok := !m.wqeErr && m.opcode == uint8(regs.WQEOpcodeSend) && m.len < 1<<31
	var addr uint64
	if ok {
		// Before the WQE view: alloc may move the memory.
		addr = b.alloc(int(m.len), 0)
	}
	mask := 1<<c.log - 1
	slot := c.base + uint64(c.posted&mask)*regs.SendWQESize
	w := regs.SendWQE(b.host(slot, regs.SendWQESize))
	b.rng.Read(w)
	wrID := b.rng.Uint64()
	w.SetWrID(wrID)
	w.SetLength(m.len)
	w.SetOpcode(m.opcode)
	w.SetFlags(uint8(b.rng.Intn(256)) &^ 3)
	w.SetFlagsSignaled(uint8(b2u(m.sig)))
	w.SetFlagsSolicited(uint8(b2u(m.sol)))
	c.posted++
	msg := c.msgs
	c.msgs++
	if m.wqeErr {
		b.failOnce[slot] = true
		c.cqes = append(c.cqes, sqWantCQE{c: sqCQE{QPN: c.qpn, Opcode: uint8(regs.CQEOpcodeSend),
			Status: regs.CQEStatusDMAError}, anyWrID: true, after: len(c.want)})
		return
	}
	if !ok {
		c.cqes = append(c.cqes, sqWantCQE{c: sqCQE{QPN: c.qpn, WrID: wrID, Opcode: uint8(regs.CQEOpcodeSend),
			Status: regs.CQEStatusBadWQE}, after: len(c.want)})
		return
	}
	pay := b.host(addr, int(m.len))
	b.rng.Read(pay)
	b.bufs = append(b.bufs, sqRange{addr, addr + uint64(m.len)})
	w.SetAddr(addr)
	segs := wire.Segment(int(m.len), b.pmtu)
	for i, s := range segs {
		last := i == len(segs)-1
		want := sqWant{d: sqDesc{Opcode: s.OpCode, SE: last && m.sol, AckReq: last,
			PSN: wire.PSNAdd(c.psn, i), PayLen: s.Len}, payload: pay[s.Offset : s.Offset+s.Len], msg: msg}
		if m.payErr == i {
			b.failOnce[addr+uint64(s.Offset)] = true
			want.garbage = true
		}
		c.want = append(c.want, want)
		c.done = append(c.done, false)
	}
	c.psn = wire.PSNAdd(c.psn, len(segs))
	if m.sig || m.payErr >= 0 {
		st := regs.CQEStatusOk
		if m.payErr >= 0 {
			st = regs.CQEStatusDMAError
		}
		c.cqes = append(c.cqes, sqWantCQE{c: sqCQE{QPN: c.qpn, WrID: wrID, ByteLen: m.len,
			Opcode: uint8(regs.CQEOpcodeSend), Status: st}, after: len(c.want)})
	}
}

// ring queues a doorbell with c's PI.
func (b *sqBench) ring(c *sqConn) {
	c.rung = c.posted
	b.dbs = append(b.dbs, sqDoorbell{qpn: c.qpn, pi: uint16(c.posted)})
}

// drive is the driver: it posts the connections' queued WQEs while their rings have room, and
// rings their doorbells now and then and when it has posted all it had.
func (b *sqBench) drive() {
	if b.noPost || b.rng.Intn(100) >= b.postRate {
		return
	}
	var ready []*sqConn
	for _, c := range b.list {
		if len(c.todo) > 0 && !c.loading && c.posted-c.fetched < 1<<c.log {
			ready = append(ready, c)
		}
	}
	if len(ready) == 0 {
		return
	}
	c := ready[b.rng.Intn(len(ready))]
	b.post(c, c.todo[0])
	c.todo = c.todo[1:]
	if len(c.todo) == 0 || c.posted-c.fetched >= 1<<c.log || b.rng.Intn(2) == 0 {
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

func (b *sqBench) applyLoad(l sqLoad) {
	c := l.c
	require.Equal(b.t, len(c.want), c.got, "QP %d loaded with descriptors outstanding", c.qpn)
	require.Equal(b.t, len(c.cqes), c.gotCQEs, "QP %d loaded with CQEs outstanding", c.qpn)
	c.loading = false
	c.rts, c.dest, c.dmac, c.dip, c.sport = l.rts, l.dest, l.dmac, l.dip, l.sport
	c.psn, c.base, c.log = l.psn, l.base, l.log
	c.posted, c.rung, c.fetched = 0, 0, 0
	b.byDest[l.dest] = c
}

// acceptRead checks a read request against what the engine may read and queues its data.
func (b *sqBench) acceptRead(addr uint64, n int) {
	t := b.t
	require.True(t, n >= 1 && n <= 65535, "read length %d", n)
	b.nReads++
	found := false
	for _, c := range b.conns {
		if c.rts && addr >= c.base && addr < c.base+regs.SendWQESize<<c.log {
			want := c.base + uint64(c.fetched&(1<<c.log-1))*regs.SendWQESize
			require.Equal(t, want, addr, "QP %d: WQE fetch at the consumer index", c.qpn)
			// The engine may read only the fields it uses (WR_ID to FLAGS).
			require.True(t, n >= 22 && n <= regs.SendWQESize, "QP %d: WQE fetch of %d bytes", c.qpn, n)
			require.Less(t, c.fetched, c.rung, "QP %d: WQE fetched beyond the doorbell's PI", c.qpn)
			c.fetched++
			found = true
			break
		}
	}
	if !found {
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
	if b.failOnce[addr] {
		delete(b.failOnce, addr)
		rd.err = true
		b.rng.Read(rd.data)
	}
	b.reads = append(b.reads, rd)
}

func (b *sqBench) getDesc() sqDesc {
	d := b.d
	return sqDesc{DstMAC: d.Get("m_tx_dst_mac"), DstIP: uint32(d.Get("m_tx_dst_ip")),
		Sport: uint16(d.Get("m_tx_udp_sport")), Opcode: uint8(d.Get("m_tx_opcode")),
		SE: d.Get("m_tx_se") == 1, DestQP: uint32(d.Get("m_tx_dest_qp")), AckReq: d.Get("m_tx_ack_req") == 1,
		PSN: uint32(d.Get("m_tx_psn")), PayLen: int(d.Get("m_tx_pay_len"))}
}

func (b *sqBench) getCQE() sqCQE {
	d := b.d
	return sqCQE{QPN: int(d.Get("m_cqe_qpn")), WrID: d.Get("m_cqe_wr_id"), ByteLen: uint32(d.Get("m_cqe_byte_len")),
		Opcode: uint8(d.Get("m_cqe_opcode")), Status: regs.CQEStatus(d.Get("m_cqe_status")),
		Solicited: d.Get("m_cqe_solicited") == 1}
}

func (b *sqBench) takeDesc(got sqDesc) {
	t := b.t
	require.Zero(t, b.d.Get("m_tx_ext"), "ext")
	require.Zero(t, b.d.Get("m_tx_ext0"), "ext0")
	require.Zero(t, b.d.Get("m_tx_ext1"), "ext1")
	c := b.byDest[got.DestQP]
	require.NotNil(t, c, "descriptor for unknown dest QP %#x: %+v", got.DestQP, got)
	require.Less(t, c.got, len(c.want), "QP %d: descriptor beyond the reference: %+v", c.qpn, got)
	w := &c.want[c.got]
	exp := w.d
	exp.DstMAC, exp.DstIP, exp.Sport, exp.DestQP = c.dmac, c.dip, c.sport, c.dest
	require.Equal(t, exp, got, "QP %d descriptor %d (message %d)", c.qpn, c.got, w.msg)
	if got.Opcode == wire.OpRCSendOnly || got.Opcode == wire.OpRCSendFirst {
		b.order = append(b.order, c.qpn)
	}
	if b.descs == 0 {
		b.firstDesc = b.d.Cycles()
	}
	b.lastDesc = b.d.Cycles()
	b.descs++
	if got.PayLen > 0 {
		b.payQ = append(b.payQ, w)
		b.payConn = append(b.payConn, c)
		b.payIdx = append(b.payIdx, c.got)
	} else {
		b.complete(c, c.got)
	}
	c.got++
}

func (b *sqBench) complete(c *sqConn, i int) {
	c.done[i] = true
	for c.doneUpTo < len(c.done) && c.done[c.doneUpTo] {
		c.doneUpTo++
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
		require.True(t, bytes.Equal(w.payload, b.cur), "QP %d descriptor %d payload bytes", b.payConn[0].qpn, b.payIdx[0])
	}
	b.complete(b.payConn[0], b.payIdx[0])
	b.payQ, b.payConn, b.payIdx, b.cur = b.payQ[1:], b.payConn[1:], b.payIdx[1:], nil
}

func (b *sqBench) takeCQE(got sqCQE) {
	t := b.t
	c := b.conns[got.QPN]
	require.NotNil(t, c, "CQE for unknown QP %d", got.QPN)
	require.Less(t, c.gotCQEs, len(c.cqes), "QP %d: CQE beyond the reference: %+v", c.qpn, got)
	w := c.cqes[c.gotCQEs]
	exp := w.c
	if w.anyWrID {
		exp.WrID = got.WrID
	}
	require.Equal(t, exp, got, "QP %d CQE %d", c.qpn, c.gotCQEs)
	require.GreaterOrEqual(t, c.doneUpTo, w.after, "QP %d CQE %d before its message's packets were all handed over", c.qpn, c.gotCQEs)
	c.gotCQEs++
}

// step runs one cycle.
func (b *sqBench) step() {
	d, rng, t := b.d, b.rng, b.t
	b.drive()

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
	var txReady, payReady, cqeReady bool
	if b.builder {
		txReady, payReady = b.bld.txReady(link), b.bld.payReady(link)
	} else {
		txReady, payReady = rng.Intn(100) >= b.txStall, rng.Intn(100) >= b.payStall
	}
	cqeReady = rng.Intn(100) >= b.cqeStall
	d.Set("m_tx_ready", b2u(txReady))
	d.Set("m_axis_pay_tready", b2u(payReady))
	d.Set("m_cqe_ready", b2u(cqeReady))

	d.Set("ctx_load_en", 0)
	d.Eval()
	loadReady := d.Get("ctx_load_ready") == 1
	loadFire := false
	if loadReady && len(b.loads) > 0 {
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
	txValid := d.Get("m_tx_valid") == 1
	b.holdTx.check(t, txValid, txReady, func() string { return fmt.Sprintf("%+v", b.getDesc()) })
	txFire := txValid && txReady
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
	cqeValid := d.Get("m_cqe_valid") == 1
	b.holdCQE.check(t, cqeValid, cqeReady, func() string { return fmt.Sprintf("%+v", b.getCQE()) })
	if cqeValid && cqeReady {
		b.takeCQE(b.getCQE())
	}

	// The frame builder starved: idle with more descriptors to come, or waiting for payload.
	if b.builder && b.descs > 0 && link && ((b.bld.phase == sqIdle && !txValid && b.descs < b.wanted()) ||
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
	if dataValid {
		rd := b.reads[0]
		b.readBeat++
		if b.readBeat*sqBeat >= len(rd.data) {
			b.reads, b.readBeat = b.reads[1:], 0
		}
	}
}

func (b *sqBench) wanted() int {
	n := 0
	for _, c := range b.conns {
		n += len(c.want)
	}
	return n
}

// idle reports whether everything queued has been posted, rung, read and received.
func (b *sqBench) idle() bool {
	if len(b.loads) > 0 || len(b.dbs) > 0 || len(b.reads) > 0 || len(b.payQ) > 0 {
		return false
	}
	for _, c := range b.conns {
		if len(c.todo) > 0 || c.got < len(c.want) || c.doneUpTo < len(c.want) || c.gotCQEs < len(c.cqes) ||
			(c.rts && c.rung != c.posted) {
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
	assert.LessOrEqual(b.t, b.readyMax, 2, "longest run of ctx_load_ready low after the reset sweep")
}

func (b *sqBench) status() string {
	s := fmt.Sprintf("loads %d doorbells %d reads %d payQ %d;", len(b.loads), len(b.dbs), len(b.reads), len(b.payQ))
	for q := 0; q < sqNQP; q++ {
		if c := b.conns[q]; c != nil {
			s += fmt.Sprintf(" QP%d todo %d posted %d rung %d fetched %d desc %d/%d done %d cqe %d/%d;", q, len(c.todo),
				c.posted, c.rung, c.fetched, c.got, len(c.want), c.doneUpTo, c.gotCQEs, len(c.cqes))
		}
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
// descriptors, payload and CQEs against the reference.
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
		txStall, payStall, cqeStall int
		msgs                        int
	}{
		{name: "pmtu256/lat0/free", pmtuLog: 8, msgs: 20},
		{name: "pmtu256/lat150/stalls", pmtuLog: 8, latency: 150, reqStall: 30, dataStall: 30, txStall: 40, payStall: 40, cqeStall: 50, msgs: 20},
		{name: "pmtu1024/lat0/stalls", pmtuLog: 10, reqStall: 20, dataStall: 40, txStall: 30, payStall: 60, cqeStall: 80, msgs: 20},
		{name: "pmtu1024/lat150/builder", pmtuLog: 10, latency: 150, dataStall: 10, builder: true, linkStall: 20, cqeStall: 30, msgs: 20},
		{name: "pmtu4096/lat0/free", pmtuLog: 12, msgs: 8},
		{name: "pmtu4096/lat150/stalls", pmtuLog: 12, latency: 150, dataStall: 20, txStall: 20, payStall: 30, cqeStall: 30, msgs: 8},
	}
	for ci, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewSource(seed + int64(ci)))
			b := newSqBench(t, rng, tc.pmtuLog)
			b.latency, b.reqStall, b.dataStall = tc.latency, tc.reqStall, tc.dataStall
			b.builder, b.linkStall = tc.builder, tc.linkStall
			b.txStall, b.payStall, b.cqeStall = tc.txStall, tc.payStall, tc.cqeStall
			// Six connections: small rings that wrap, PSNs just below 2^24 that wrap, the
			// lowest and highest QPNs.
			qpns := []int{0, 1, 77, 128, 200, sqNQP - 1}
			for i, q := range qpns {
				psn := uint32(rng.Intn(1 << 24))
				if i%2 == 0 {
					psn = 1<<24 - uint32(1+rng.Intn(8))
				}
				c := b.conn(q, uint(1+rng.Intn(4)), psn)
				c.todo = sqRandMsgs(rng, tc.msgs, b.pmtu, true)
			}
			// Every size of interest once more, and one 64 KiB message.
			for _, n := range []int{0, 1, 63, 64, b.pmtu - 1, b.pmtu, b.pmtu + 1} {
				b.conns[qpns[2]].todo = append(b.conns[qpns[2]].todo, sqSend(uint32(n), true))
			}
			b.conns[qpns[1]].todo = append(b.conns[qpns[1]].todo, sqSend(64<<10, true))
			b.run(2000000)
			total, bytes := 0, 0
			for _, c := range b.conns {
				total += len(c.want)
				for _, w := range c.want {
					bytes += w.d.PayLen
				}
			}
			t.Logf("%d packets, %d payload bytes, %d cycles", total, bytes, b.d.Cycles())
		})
	}
}

// TestSqEngineErrors: bad opcodes and lengths complete with BAD_WQE and a failed WQE read with
// DMA_ERROR, signaled or not, sending nothing and taking no PSN; a failed payload read (first,
// middle, last packet) still sends the message and completes it with DMA_ERROR; the
// connection goes on with the next WQE.
func TestSqEngineErrors(t *testing.T) {
	seed := int64(0xE44)
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewSource(seed))
	b := newSqBench(t, rng, 8)
	b.latency, b.dataStall, b.txStall, b.payStall, b.cqeStall = 20, 20, 20, 20, 20
	c := b.conn(5, 3, 1<<24-2)
	for _, sig := range []bool{false, true} {
		c.todo = append(c.todo,
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
	for _, w := range c.cqes {
		st = append(st, w.c.Status)
	}
	t.Logf("CQE statuses in order: %v", st)
}

// TestSqEngineResetQP: doorbells of a connection never loaded, and of one loaded in reset, are
// taken and ignored (no read, nothing sent); the PI they carried does not survive a later load.
func TestSqEngineResetQP(t *testing.T) {
	seed := int64(0x2E5E7)
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewSource(seed))
	b := newSqBench(t, rng, 10)
	b.noPost = true
	never := &sqConn{qpn: 9, base: b.alloc(64<<2, 64), log: 2}
	b.conns[9] = never
	busy := b.conn(3, 4, 100)
	b.waitLoads()
	// A connection in reset: WQEs in a ring the engine was never told of.
	for i := 0; i < 3; i++ {
		w := regs.SendWQE(b.host(never.base+uint64(i)*64, 64))
		w.SetLength(64)
		w.SetAddr(never.base)
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
	b.settle(500)
	assert.Equal(t, reads, b.nReads, "reads for doorbells of connections in reset")
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
	assert.Equal(t, 3+2, gone.gotCQEs, "CQEs of the connection after its reload")
}

// TestSqEngineContextLoad reloads connections between their messages (new addressing, PSN,
// ring base and size) while other connections keep sending; what follows uses the new context
// from ring index 0.
func TestSqEngineContextLoad(t *testing.T) {
	seed := int64(0xC7C)
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewSource(seed))
	b := newSqBench(t, rng, 9)
	b.latency, b.dataStall, b.payStall, b.cqeStall = 60, 20, 20, 20
	others := []*sqConn{b.conn(10, 2, 5), b.conn(11, 5, 6)}
	c := b.conn(12, 3, 7)
	for round := 0; round < 4; round++ {
		for _, o := range others {
			o.todo = append(o.todo, sqRandMsgs(rng, 6, b.pmtu, false)...)
		}
		c.todo = sqRandMsgs(rng, 5+rng.Intn(10), b.pmtu, false)
		// Step until c is idle (the others may still be busy), then reload it.
		for i := 0; len(c.todo) > 0 || c.got < len(c.want) || c.gotCQEs < len(c.cqes) || c.doneUpTo < len(c.want); i++ {
			require.Less(t, i, 200000, "connection not idle: %s", b.status())
			b.step()
		}
		b.load(c, true, uint(1+rng.Intn(4)), uint32(rng.Intn(1<<24)))
	}
	b.run(400000)
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
// always-ready link. 1 KiB messages at PMTU 1024 with 0-cycle reads: after the first frame the
// builder never waits for a descriptor or a payload beat. The same at 150 cycles, and 64 B and
// 0 B messages at 150 cycles (as a fraction of the link's frame rate), are reported.
func TestSqEngineNoBubble(t *testing.T) {
	for _, tc := range []struct {
		size, n, latency int
		strict           bool
	}{{1024, 60, 0, true}, {1024, 60, 150, false}, {64, 300, 150, false}, {0, 300, 150, false}} {
		t.Run(fmt.Sprintf("%dB/lat%d", tc.size, tc.latency), func(t *testing.T) {
			rng := rand.New(rand.NewSource(1))
			b := newSqBench(t, rng, 10)
			b.latency, b.builder, b.postRate = tc.latency, true, 100
			c := b.conn(1, 6, 0)
			for i := 0; i < tc.n; i++ {
				c.todo = append(c.todo, sqSend(uint32(tc.size), i%4 == 0))
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

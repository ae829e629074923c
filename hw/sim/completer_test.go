package sim

import (
	"fmt"
	"math/rand"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sanoffload/san/driver/regs"
	"github.com/sanoffload/san/hw/sim/dut"
)

// san_completer's defaults.
const (
	compNQP       = 256
	compWindow    = 32
	compTickCyc   = 160 // cycles per 1.024 us tick at CLK_KHZ 156250
	compScanEvery = 4
	compRst       = 4 // reset cycles dut.New runs; the bench's time counts from the first after them
	psnMask       = 1<<24 - 1
	// An expired timer fires within this many cycles in which the block is idle (ctx_load_ready):
	// a scan step at least every SCAN_EVERY+1 of them, N_QP+1 steps to come round.
	compLateIdle = (compNQP + 2) * (compScanEvery + 1)
)

// AETH syndromes.
const (
	synAck    = uint8(regs.AethSyndromeACK)
	synRNR    = uint8(regs.AethSyndromeRNRNAK)
	synSeq    = uint8(regs.AethSyndromeNAKPSNSeq)
	synInval  = uint8(regs.AethSyndromeNAKInvalidRequest)
	synAccess = uint8(regs.AethSyndromeNAKRemoteAccess)
	synRemOp  = uint8(regs.AethSyndromeNAKRemoteOp)
)

var (
	stOK       = uint8(regs.CQEStatusOk)
	stBadWQE   = uint8(regs.CQEStatusBadWQE)
	stDMA      = uint8(regs.CQEStatusDMAError)
	stRetryExc = uint8(regs.CQEStatusRetryExceeded)
	stRNRExc   = uint8(regs.CQEStatusRNRRetryExceeded)
)

// compRNRMicros is the IBA RNR timer table (rxe's rnrnak_usec) in microseconds.
var compRNRMicros = [32]uint64{655360, 10, 20, 30, 40, 60, 80, 120, 160, 240, 320, 480, 640, 960, 1280,
	1920, 2560, 3840, 5120, 7680, 10240, 15360, 20480, 30720, 40960, 61440, 81920, 122880, 163840,
	245760, 327680, 491520}

// compRNRTicks is the RNR wait of a timer code in 1.024 us ticks, rounded up.
func compRNRTicks(code uint8) uint32 {
	ns := compRNRMicros[code] * 1000
	return uint32((ns + 1023) / 1024)
}

// psnLE says a <= b for PSNs (mod 2^24, within half the space).
func psnLE(a, b uint32) bool { return (b-a)&psnMask < 1<<23 }

// compNow is the tick count the block sees in cycle c (d.Cycles() before that cycle's edge).
func compNow(c uint64) uint32 { return uint32((c - compRst) / compTickCyc) }

// expired says a timer with deadline dl has expired at tick now.
func expired(now, dl uint32) bool { return int32(now-dl) >= 0 }

type compParams struct {
	rts        bool
	psn        uint32
	retry, rnr uint8 // retry_cnt, rnr_retry (7: unlimited)
	timeout    uint8 // 0: no retransmit timer
}

type compLoad struct {
	qpn int
	compParams
}

type compRec struct {
	qpn        int
	last       bool
	idx        uint16
	first, end uint32
	signaled   bool
	status     uint8
	gen        uint8 // the generation of the latest command the sender had taken (0 after a load)
}

type compAck struct {
	qpn int
	psn uint32
	syn uint8
}

type compRW struct {
	qpn      int
	hold     bool
	gen      uint8 // one more than the connection's last command (mod 16, from 0 at a load)
	idx      uint16
	psn, pkt uint32
}

func (r compRW) String() string {
	if r.hold {
		return fmt.Sprintf("QP %d HOLD (gen %d)", r.qpn, r.gen)
	}
	return fmt.Sprintf("QP %d back to WQE %d (PSN %#x) packet %d (gen %d)", r.qpn, r.idx, r.psn, r.pkt, r.gen)
}

type compCQE struct {
	qpn    int
	idx    uint16
	status uint8
}

type compUna struct {
	qpn int
	psn uint32
	idx uint16
}

type compEntry struct {
	end      uint32
	signaled bool
	status   uint8
}

// compConn is the reference state of one connection, as the semantics in san_completer.v's
// header (and the design brief) define it.
type compConn struct {
	compParams
	err                 bool
	una, hw, cpsn, rpsn uint32
	cidx, ridx          uint16
	retryLeft, rnrLeft  uint8
	ton, trnr, nakDone  bool
	deadline            uint32
	ent                 [compWindow]compEntry
	// The generation of the latest command, and the resend point: the next WQE the sender
	// records and the PSN after its latest packet, from the records of that generation.
	gen  uint8
	sidx uint16
	spsn uint32
}

// compModel is the reference model: events applied in the order the block takes them, the
// outputs each one must produce queued in order.
type compModel struct {
	conns []compConn
	cqes  []compCQE
	errs  []compCQE // m_err reports: {qpn, status} (idx unused)
	rws   []compRW
	unas  []compUna
	// Statistics the block must count, and coverage.
	timeouts, seqNaks, rnrNaks, ignored int
	fails                               map[uint8]int
	gbns, holds, completions, rejected  int
	fwds                                int // go-backs forward (progress passed the resend point)
}

func newCompModel() *compModel {
	return &compModel{conns: make([]compConn, compNQP), fails: map[uint8]int{}}
}

func (m *compModel) load(l compLoad) {
	m.conns[l.qpn] = compConn{compParams: l.compParams, una: l.psn, hw: l.psn, cpsn: l.psn, rpsn: l.psn,
		retryLeft: l.retry, rnrLeft: l.rnr, spsn: l.psn}
}

func (c *compConn) live() bool { return c.rts && !c.err }

func (c *compConn) rto() uint32 {
	if c.timeout >= 29 {
		return 1<<31 - 1
	}
	return 4 << c.timeout
}

// restart: the retransmit timer runs from now if there is something to acknowledge.
func (c *compConn) restart(now uint32) {
	c.ton = c.timeout != 0 && c.una != c.hw
	c.trnr = false
	c.deadline = now + c.rto()
}

func (c *compConn) progress(p, now uint32) {
	c.una = p & psnMask
	c.retryLeft, c.rnrLeft, c.nakDone = c.retry, c.rnr, false
	c.restart(now)
}

type compAct struct {
	gbn, hold, fail bool
	status          uint8
}

func (m *compModel) record(r compRec, now uint32) {
	c := &m.conns[r.qpn]
	if !c.live() {
		return
	}
	una, cidx := c.una, c.cidx
	if psnLE(c.hw, r.end) && r.end != c.hw {
		c.hw = r.end
	}
	if r.last {
		if r.idx == c.ridx && r.first == c.rpsn && c.ridx-c.cidx < compWindow {
			c.ent[c.ridx%compWindow] = compEntry{end: r.end, signaled: r.signaled, status: r.status}
			c.ridx++
			c.rpsn = r.end
		} else {
			m.rejected++
		}
	}
	if r.gen == c.gen && (r.end == (c.spsn+1)&psnMask || r.end == c.spsn && r.first == c.spsn) {
		// Made since the latest command, and next in line: where the resend has got to.
		c.spsn = r.end
		if r.last {
			c.sidx = r.idx + 1
		}
	}
	if !c.ton && c.timeout != 0 && c.una != c.hw {
		c.ton, c.trnr, c.deadline = true, false, now+c.rto()
	}
	m.finish(r.qpn, una, cidx, compAct{})
}

func (m *compModel) ack(a compAck, now uint32) {
	c := &m.conns[a.qpn]
	if !c.live() {
		return
	}
	una, cidx := c.una, c.cidx
	dp, dhw := (a.psn-c.una)&psnMask, (c.hw-c.una)&psnMask
	var act compAct
	switch {
	case a.syn>>5 == 0: // ACK
		if dp == psnMask || dp >= dhw {
			m.ignored++
			return
		}
		c.progress(a.psn+1, now)
	case a.syn == synSeq:
		if dp >= dhw || dp == 0 && (c.nakDone || c.ton && c.trnr) {
			m.ignored++
			return
		}
		if dp != 0 {
			c.progress(a.psn, now)
		}
		if c.retryLeft == 0 {
			act = compAct{fail: true, status: stRetryExc}
		} else {
			c.retryLeft--
			c.nakDone = true
			c.restart(now)
			act.gbn = true
			m.seqNaks++
		}
	case a.syn>>5 == 1: // RNR NAK
		if dp >= dhw || c.ton && c.trnr && dp == 0 {
			m.ignored++
			return
		}
		if dp != 0 {
			c.progress(a.psn, now)
		}
		if c.rnr != 7 && c.rnrLeft == 0 {
			act = compAct{fail: true, status: stRNRExc}
		} else {
			if c.rnr != 7 {
				c.rnrLeft--
			}
			c.ton, c.trnr, c.deadline = true, true, now+compRNRTicks(a.syn&31)
			act.hold = true
			m.rnrNaks++
		}
	case a.syn >= synInval && a.syn <= synRemOp:
		if dp >= dhw {
			m.ignored++
			return
		}
		if dp != 0 {
			c.progress(a.psn, now)
		}
		act = compAct{fail: true, status: map[uint8]uint8{synInval: uint8(regs.CQEStatusRemoteInvalidRequest),
			synAccess: uint8(regs.CQEStatusRemoteAccessError), synRemOp: uint8(regs.CQEStatusRemoteOpError)}[a.syn]}
	default:
		m.ignored++
		return
	}
	m.finish(a.qpn, una, cidx, act)
}

// timer applies the expiry of q's timer, found by the block's scan at tick now; evt is the tick
// of the cycle after (when the block restarts the timer).
func (m *compModel) timer(q int, now, evt uint32) error {
	c := &m.conns[q]
	if !c.live() || !c.ton || !expired(now, c.deadline) {
		return fmt.Errorf("QP %d: timer event at tick %d but the reference has live %v, timer %v, deadline %d",
			q, now, c.live(), c.ton, c.deadline)
	}
	var act compAct
	if c.trnr {
		act.gbn = true
		c.restart(evt)
	} else {
		m.timeouts++
		if c.retryLeft == 0 {
			act = compAct{fail: true, status: stRetryExc}
		} else {
			c.retryLeft--
			c.nakDone = false
			c.restart(evt)
			act.gbn = true
		}
	}
	m.finish(q, c.una, c.cidx, act)
	return nil
}

// finish: completion in order, progress out, then the error or the command.
func (m *compModel) finish(q int, una uint32, cidx uint16, act compAct) {
	c := &m.conns[q]
	for c.cidx != c.ridx && psnLE(c.ent[c.cidx%compWindow].end, c.una) {
		e := c.ent[c.cidx%compWindow]
		if e.signaled || e.status != stOK {
			m.cqes = append(m.cqes, compCQE{qpn: q, idx: c.cidx, status: e.status})
		}
		c.cpsn = e.end
		c.cidx++
		m.completions++
	}
	if !act.fail && (c.una != una || c.cidx != cidx) {
		m.unas = append(m.unas, compUna{qpn: q, psn: c.una, idx: c.cidx})
	}
	// Progress passed the resend point (acknowledgements of a first sending after a go-back):
	// the sender would wait, so go back again, forward to cidx and una. Not in an RNR wait.
	fwd := !act.fail && !act.gbn && !act.hold && !(c.ton && c.trnr) &&
		(c.cidx != c.sidx && c.cidx-c.sidx < 1<<15 || c.una != c.spsn && psnLE(c.spsn, c.una))
	if act.fail || act.gbn || act.hold || fwd {
		// A new generation: the resend starts at cidx and una.
		c.gen = (c.gen + 1) & 15
		c.sidx, c.spsn = c.cidx, c.una
	}
	switch {
	case act.fail:
		// The failed WQE completes: cidx moves past it and says so, so that a flush (the
		// connection manager's stop) starts after it.
		m.cqes = append(m.cqes, compCQE{qpn: q, idx: c.cidx, status: act.status})
		c.cidx++
		m.unas = append(m.unas, compUna{qpn: q, psn: c.una, idx: c.cidx})
		m.errs = append(m.errs, compCQE{qpn: q, status: act.status})
		c.err, c.ton = true, false
		m.rws = append(m.rws, compRW{qpn: q, hold: true, gen: c.gen})
		m.fails[act.status]++
	case act.gbn || fwd:
		m.rws = append(m.rws, compRW{qpn: q, gen: c.gen, idx: c.cidx, psn: c.cpsn, pkt: (c.una - c.cpsn) & psnMask})
		if fwd {
			m.fwds++
		} else {
			m.gbns++
		}
	case act.hold:
		m.rws = append(m.rws, compRW{qpn: q, hold: true, gen: c.gen})
		m.holds++
	}
}

// compObsRW is a command the block sent, with the cycle it was taken.
type compObsRW struct {
	compRW
	cycle uint64
	timer bool // from a timer expiry
}

type compInFlight struct {
	ok       bool
	qpn      int
	rts, err bool // before the event
}

// compBench drives san_completer from queues of loads, records, ACKs and queries, with random
// gaps on the inputs and stalls on m_cqe_ready and m_rw_ready, and checks every output against
// the reference model. Timer events are the block's own: each produces exactly one command, and
// the bench applies it to the model when that command appears, at the tick of the last cycle the
// block was idle before it (where the scan found it).
type compBench struct {
	t                   *testing.T
	d                   *dut.DUT
	rng                 *rand.Rand
	m                   *compModel
	gap, stall          int // percent of cycles an input's valid / an output's ready is withheld
	recs                []compRec
	recOn               bool
	acks                []compAck
	ackOn               bool
	loads               []compLoad
	queries             []int
	queryOn             bool
	expQuery            *[2]bool // answer due this cycle: rts, err
	lastIdle            uint64
	inflight            compInFlight
	toPulses            []uint64 // stat_timeout pulses not yet matched to a timer event
	rwHeld              bool
	hRW, hCQE, hErr     holdCheck
	live                map[int]bool
	overdue             map[int]int
	lastUna             map[int]compUna
	gens                map[int]uint8 // the generation of each connection's latest command taken
	notReady, maxNotRdy int
	// Observed.
	rwLog                                 []compObsRW
	cqeLog                                []compCQE
	errLog                                []compCQE
	unaLog                                []compUna
	stTimeout, stSeq, stRNR, stIgn, nQuer int
	timerEvents                           int
	lastAck                               uint64 // cycle the last ACK/NAK was taken
	// Hooks of the random test's sender.
	onRW       func(rw compRW)
	onUna      func(u compUna)
	onRecTaken func(r compRec, c uint64)
	onLoad     func(l compLoad)
}

func newCompBench(t *testing.T, seed int64) *compBench {
	t.Logf("seed %d", seed)
	b := &compBench{t: t, d: dut.New(t, "san_completer"), rng: rand.New(rand.NewSource(seed)), m: newCompModel(),
		live: map[int]bool{}, overdue: map[int]int{}, lastUna: map[int]compUna{}, gens: map[int]uint8{},
		hRW: holdCheck{name: "m_rw"}, hCQE: holdCheck{name: "m_cqe"}, hErr: holdCheck{name: "m_err"}}
	require.EqualValues(t, compRst, b.d.Cycles(), "reset cycles")
	// The reset sweep: nothing is taken until every connection is out of RTS.
	for i := 0; i < compNQP+4 && b.d.Get("ctx_load_ready") == 0; i++ {
		require.Zero(t, b.d.Get("s_query_ready"), "queries wait for the sweep")
		b.d.Tick()
		b.d.Eval()
	}
	require.EqualValues(t, 1, b.d.Get("ctx_load_ready"), "ready after the reset sweep")
	return b
}

func (b *compBench) idleNow() bool { return b.d.Get("ctx_load_ready") == 1 }

func (b *compBench) cycle() {
	t, d, rng, m := b.t, b.d, b.rng, b.m
	c := d.Cycles()
	// The shell's time, as a board's shell counts it from the first cycle out of reset.
	d.Set("time_tick", uint64(compNow(c)))
	if len(b.recs) > 0 {
		b.recOn = b.recOn || rng.Intn(100) >= b.gap
		r := b.recs[0]
		d.Set("s_rec_qpn", uint64(r.qpn))
		d.Set("s_rec_last", b2u(r.last))
		d.Set("s_rec_idx", uint64(r.idx))
		d.Set("s_rec_first_psn", uint64(r.first))
		d.Set("s_rec_end_psn", uint64(r.end))
		d.Set("s_rec_signaled", b2u(r.signaled))
		d.Set("s_rec_status", uint64(r.status))
		d.Set("s_rec_gen", uint64(r.gen))
	}
	d.Set("s_rec_valid", b2u(b.recOn))
	if len(b.acks) > 0 {
		b.ackOn = b.ackOn || rng.Intn(100) >= b.gap
		a := b.acks[0]
		d.Set("s_ack_qpn", uint64(a.qpn))
		d.Set("s_ack_psn", uint64(a.psn))
		d.Set("s_ack_syndrome", uint64(a.syn))
		d.Set("s_ack_msn", rng.Uint64())
	}
	d.Set("s_ack_valid", b2u(b.ackOn))
	if len(b.queries) > 0 {
		b.queryOn = b.queryOn || rng.Intn(100) >= b.gap
		d.Set("s_query_qpn", uint64(b.queries[0]))
	}
	d.Set("s_query_valid", b2u(b.queryOn))
	rwReady := rng.Intn(100) >= b.stall
	cqeReady := rng.Intn(100) >= b.stall
	d.Set("m_rw_ready", b2u(rwReady))
	d.Set("m_cqe_ready", b2u(cqeReady))
	// The CM takes failure reports when the CQ writer takes CQEs (no draw of its own, so the
	// seeds' streams stay as they were).
	errReady := cqeReady
	d.Set("m_err_ready", b2u(errReady))
	d.Set("ctx_load_en", 0)
	d.Eval()
	idle := b.idleNow()

	// Commands, in the order the block makes them. One nobody's event asked for comes from a
	// timer the scan found in the last idle cycle.
	rwValid := d.Get("m_rw_valid") == 1
	rw := compRW{qpn: int(d.Get("m_rw_qpn")), hold: d.Get("m_rw_hold") == 1, gen: uint8(d.Get("m_rw_gen")), idx: uint16(d.Get("m_rw_idx")),
		psn: uint32(d.Get("m_rw_psn")), pkt: uint32(d.Get("m_rw_pkt"))}
	b.hRW.check(t, c, rwValid, rwReady, fmt.Append(nil, rw))
	if rwValid && !b.rwHeld {
		timer := len(m.rws) == 0
		if timer {
			scan := b.lastIdle
			kindTO := m.conns[rw.qpn].ton && !m.conns[rw.qpn].trnr
			require.NoError(t, m.timer(rw.qpn, compNow(scan), compNow(scan+1)), "cycle %d: command %v", c, rw)
			b.timerEvents++
			delete(b.overdue, rw.qpn)
			if kindTO {
				require.Len(t, b.toPulses, 1, "cycle %d: retransmit timeout of QP %d: stat_timeout pulses", c, rw.qpn)
				assert.Equal(t, scan+2, b.toPulses[0], "stat_timeout 2 cycles after the scan found the timer")
				b.toPulses = b.toPulses[:0]
			}
		}
		require.NotEmpty(t, m.rws, "cycle %d: unexpected command %v", c, rw)
		require.Empty(t, b.toPulses, "cycle %d: stat_timeout without a timeout", c)
		exp := m.rws[0]
		m.rws = m.rws[1:]
		if exp.hold {
			require.Equal(t, exp.qpn, rw.qpn, "cycle %d: command %v, want %v", c, rw, exp)
			require.True(t, rw.hold, "cycle %d: command %v, want %v", c, rw, exp)
			require.Equal(t, exp.gen, rw.gen, "cycle %d: command %v, want %v", c, rw, exp)
		} else {
			require.Equal(t, exp, rw, "cycle %d: command", c)
		}
		b.rwLog = append(b.rwLog, compObsRW{compRW: rw, cycle: c, timer: timer})
	}
	b.rwHeld = rwValid && !rwReady
	if rwValid && rwReady {
		// The sender stamps every record it makes from now on with the command's generation.
		b.gens[rw.qpn] = rw.gen
		if b.onRW != nil {
			b.onRW(rw)
		}
	}

	b.out("m_cqe", c, cqeReady, &m.cqes, &b.cqeLog, &b.hCQE)
	// A failure report goes out with its error CQE, once per connection and load.
	b.out("m_err", c, errReady, &m.errs, &b.errLog, &b.hErr)

	if d.Get("m_una_valid") == 1 {
		u := compUna{qpn: int(d.Get("m_una_qpn")), psn: uint32(d.Get("m_una_psn")), idx: uint16(d.Get("m_una_idx"))}
		require.NotEmpty(t, m.unas, "cycle %d: unexpected m_una %+v", c, u)
		require.Equal(t, m.unas[0], u, "cycle %d: m_una", c)
		m.unas = m.unas[1:]
		b.unaLog = append(b.unaLog, u)
		b.lastUna[u.qpn] = u
		if b.onUna != nil {
			b.onUna(u)
		}
	}

	if b.expQuery != nil {
		require.EqualValues(t, 1, d.Get("m_query_valid"), "cycle %d: query answer", c)
		assert.Equal(t, *b.expQuery, [2]bool{d.Get("m_query_rts") == 1, d.Get("m_query_err") == 1}, "cycle %d: query answer {rts, err}", c)
		b.expQuery = nil
	} else {
		require.Zero(t, d.Get("m_query_valid"), "cycle %d: answer to no query", c)
	}

	if d.Get("stat_timeout") == 1 {
		b.stTimeout++
		b.toPulses = append(b.toPulses, c)
	}
	b.stSeq += int(d.Get("stat_seq_nak"))
	b.stRNR += int(d.Get("stat_rnr_nak"))
	b.stIgn += int(d.Get("stat_ack_ignored"))

	// Timers that have expired must fire within the scan's bound.
	if idle {
		b.notReady = 0
		for q := range b.live {
			cn := &m.conns[q]
			if cn.live() && cn.ton && expired(compNow(c), cn.deadline) {
				b.overdue[q]++
				require.LessOrEqual(t, b.overdue[q], compLateIdle, "cycle %d: QP %d timer (deadline %d) not fired", c, q, cn.deadline)
			} else {
				delete(b.overdue, q)
			}
		}
	} else {
		b.notReady++
		b.maxNotRdy = max(b.maxNotRdy, b.notReady)
	}

	// A load only in a cycle where the block is ready, which must not depend on it.
	loadFire := false
	if idle && len(b.loads) > 0 && rng.Intn(100) >= b.gap {
		l := b.loads[0]
		d.Set("ctx_load_qpn", uint64(l.qpn))
		d.Set("ctx_load_rts", b2u(l.rts))
		d.Set("ctx_load_sq_psn", uint64(l.psn))
		d.Set("ctx_load_retry_cnt", uint64(l.retry))
		d.Set("ctx_load_rnr_retry", uint64(l.rnr))
		d.Set("ctx_load_timeout", uint64(l.timeout))
		d.Set("ctx_load_en", 1)
		d.Eval()
		require.EqualValues(t, 1, d.Get("ctx_load_ready"), "ctx_load_ready depends on ctx_load_en")
		loadFire = true
	}
	recFire := b.recOn && d.Get("s_rec_ready") == 1
	ackFire := b.ackOn && d.Get("s_ack_ready") == 1
	n := 0
	for _, f := range []bool{loadFire, recFire, ackFire} {
		if f {
			n++
		}
	}
	require.LessOrEqual(t, n, 1, "cycle %d: more than one event taken", c)
	require.False(t, (recFire || ackFire) && !idle, "cycle %d: event taken while not idle", c)
	require.False(t, ackFire && b.recOn, "cycle %d: ACK taken before a waiting record", c)
	if b.queryOn && d.Get("s_query_ready") == 1 {
		// The answer is the state every event finished before this cycle left: the one in
		// progress (taken earlier, not idle yet) has not written its connection back.
		q := b.queries[0]
		cn := &m.conns[q]
		ans := [2]bool{cn.rts, cn.err}
		if !idle && b.inflight.ok && b.inflight.qpn == q {
			ans = [2]bool{b.inflight.rts, b.inflight.err}
		}
		b.expQuery = &ans
		b.queries, b.queryOn = b.queries[1:], false
		b.nQuer++
	}

	d.Tick()

	if idle {
		b.lastIdle = c
		b.inflight.ok = false
	}
	now := compNow(c + 1) // the tick of the event's second cycle, where it is applied
	switch {
	case loadFire:
		l := b.loads[0]
		b.loads = b.loads[1:]
		m.load(l)
		b.live[l.qpn] = true
		delete(b.overdue, l.qpn)
		b.lastUna[l.qpn] = compUna{qpn: l.qpn, psn: l.psn}
		b.gens[l.qpn] = 0
		if b.onLoad != nil {
			b.onLoad(l)
		}
	case recFire:
		r := b.recs[0]
		b.recs, b.recOn = b.recs[1:], false
		b.inflight = compInFlight{ok: true, qpn: r.qpn, rts: m.conns[r.qpn].rts, err: m.conns[r.qpn].err}
		m.record(r, now)
		if b.onRecTaken != nil {
			b.onRecTaken(r, c)
		}
	case ackFire:
		a := b.acks[0]
		b.acks, b.ackOn = b.acks[1:], false
		b.lastAck = c
		b.inflight = compInFlight{ok: true, qpn: a.qpn, rts: m.conns[a.qpn].rts, err: m.conns[a.qpn].err}
		m.ack(a, now)
	}
}

// out checks output port (m_cqe or m_err: {qpn, wqe_index, status}, m_err without an index) in
// cycle c against the model's next expected value, and logs what was taken.
func (b *compBench) out(port string, c uint64, ready bool, exp, log *[]compCQE, h *holdCheck) {
	t, d := b.t, b.d
	valid := d.Get(port+"_valid") == 1
	v := compCQE{qpn: int(d.Get(port + "_qpn")), status: uint8(d.Get(port + "_status"))}
	if port == "m_cqe" {
		v.idx = uint16(d.Get("m_cqe_wqe_index"))
	}
	h.check(t, c, valid, ready, fmt.Append(nil, v))
	if valid && ready {
		require.NotEmpty(t, *exp, "cycle %d: unexpected %s %+v", c, port, v)
		require.Equal(t, (*exp)[0], v, "cycle %d: %s", c, port)
		*exp = (*exp)[1:]
		*log = append(*log, v)
	}
}

func (b *compBench) quiet() bool {
	return len(b.recs) == 0 && len(b.acks) == 0 && len(b.loads) == 0 && len(b.queries) == 0 && b.expQuery == nil &&
		len(b.toPulses) == 0 &&
		len(b.m.rws) == 0 && len(b.m.cqes) == 0 && len(b.m.unas) == 0 && len(b.m.errs) == 0 && !b.rwHeld &&
		b.d.Get("m_rw_valid") == 0 && b.d.Get("m_cqe_valid") == 0 && b.d.Get("m_err_valid") == 0 && b.idleNow()
}

// settle runs until every input is taken and every expected output is out, then a few cycles
// more in which nothing else may come out.
func (b *compBench) settle() {
	b.t.Helper()
	for i := 0; i < 20000; i++ {
		if b.quiet() {
			for j := 0; j < 8; j++ {
				b.cycle()
			}
			return
		}
		b.cycle()
	}
	require.FailNow(b.t, "not settled", "%d records, %d ACKs, %d loads left; %d commands, %d CQEs, %d m_una expected",
		len(b.recs), len(b.acks), len(b.loads), len(b.m.rws), len(b.m.cqes), len(b.m.unas))
}

// run runs n cycles.
func (b *compBench) run(n int) {
	for i := 0; i < n; i++ {
		b.cycle()
	}
}

// runUntil runs until f holds, at most limit cycles.
func (b *compBench) runUntil(limit int, what string, f func() bool) {
	b.t.Helper()
	for i := 0; i < limit; i++ {
		if f() {
			return
		}
		b.cycle()
	}
	require.FailNow(b.t, "timed out", "waiting %d cycles for %s", limit, what)
}

func (b *compBench) load(q int, p compParams) {
	b.loads = append(b.loads, compLoad{qpn: q, compParams: p})
	b.settle()
}

// wqe queues the records of one WQE of n packets from PSN first; it returns the PSN after it.
func (b *compBench) wqe(q int, idx uint16, first uint32, n int, signaled bool, status uint8) uint32 {
	end := first
	for i := 0; i < max(n, 1); i++ {
		if n > 0 {
			end = (end + 1) & psnMask
		}
		b.recs = append(b.recs, compRec{qpn: q, last: i == max(n, 1)-1, idx: idx, first: first, end: end,
			signaled: signaled, status: status, gen: b.gens[q]})
	}
	return end
}

func (b *compBench) ack(q int, psn uint32, syn uint8) {
	b.acks = append(b.acks, compAck{qpn: q, psn: psn & psnMask, syn: syn})
}

func (b *compBench) query(q int) [2]bool {
	b.t.Helper()
	b.settle()
	b.queries = append(b.queries, q)
	var ans [2]bool
	for i := 0; i < 100 && (len(b.queries) > 0 || b.expQuery != nil); i++ {
		if b.expQuery != nil {
			ans = *b.expQuery
		}
		b.cycle()
	}
	require.Empty(b.t, b.queries)
	return ans
}

// take returns and clears what the block sent since the last call.
func (b *compBench) take() ([]compObsRW, []compCQE, []compUna) {
	rw, cqe, una := b.rwLog, b.cqeLog, b.unaLog
	b.rwLog, b.cqeLog, b.unaLog = nil, nil, nil
	return rw, cqe, una
}

func rwsOf(l []compObsRW) []compRW {
	out := make([]compRW, len(l))
	for i, r := range l {
		out[i] = r.compRW
		if r.hold {
			out[i] = compRW{qpn: r.qpn, hold: true, gen: r.gen}
		}
	}
	return out
}

// checkStats compares the statistics pulses with the reference's counts.
func (b *compBench) checkStats() {
	b.t.Helper()
	assert.Equal(b.t, b.m.timeouts, b.stTimeout, "stat_timeout pulses")
	assert.Equal(b.t, b.m.seqNaks, b.stSeq, "stat_seq_nak pulses")
	assert.Equal(b.t, b.m.rnrNaks, b.stRNR, "stat_rnr_nak pulses")
	assert.Equal(b.t, b.m.ignored, b.stIgn, "stat_ack_ignored pulses")
}

// TestCompleterInOrder: WQEs complete in order as ACKs come, a CQE for signaled ones and for
// failed ones (always), none for unsignaled OK ones; a WQE that sent nothing (BAD_WQE) completes
// with the ACK of everything before it, or at once when that is already acknowledged.
func TestCompleterInOrder(t *testing.T) {
	b := newCompBench(t, 1)
	const q, p = 9, 0x1000
	b.load(q, compParams{rts: true, psn: p, retry: 7, rnr: 7})
	e := b.wqe(q, 0, p, 2, true, stOK)     // A: p, p+1
	e = b.wqe(q, 1, e, 1, false, stOK)     // B: p+2
	e = b.wqe(q, 2, e, 0, false, stBadWQE) // C: nothing, at p+3
	e = b.wqe(q, 3, e, 1, true, stDMA)     // D: p+3
	e = b.wqe(q, 4, e, 1, false, stOK)     // E: p+4
	require.EqualValues(t, p+5, e)
	b.settle()
	rw, cqe, una := b.take()
	assert.Empty(t, rw)
	assert.Empty(t, cqe, "nothing acknowledged yet")
	assert.Empty(t, una)

	b.ack(q, p, synAck)
	b.settle()
	_, cqe, una = b.take()
	assert.Empty(t, cqe, "A half acknowledged")
	assert.Equal(t, []compUna{{q, p + 1, 0}}, una)

	b.ack(q, p+2, synAck)
	b.settle()
	_, cqe, una = b.take()
	assert.Equal(t, []compCQE{{q, 0, stOK}, {q, 2, stBadWQE}}, cqe, "A signaled, B unsignaled, C failed")
	assert.Equal(t, []compUna{{q, p + 3, 3}}, una)

	b.ack(q, p+4, synAck) // D and E at once (an ACK covers everything before it)
	b.settle()
	_, cqe, una = b.take()
	assert.Equal(t, []compCQE{{q, 3, stDMA}}, cqe)
	assert.Equal(t, []compUna{{q, p + 5, 5}}, una)

	// Everything is acknowledged: a WQE that sends nothing completes with its record.
	b.wqe(q, 5, p+5, 0, true, stBadWQE)
	b.wqe(q, 6, p+5, 0, false, stOK) // sends nothing, unsignaled: completes silently
	b.settle()
	_, cqe, una = b.take()
	assert.Equal(t, []compCQE{{q, 5, stBadWQE}}, cqe)
	assert.Equal(t, []compUna{{q, p + 5, 6}, {q, p + 5, 7}}, una)
	assert.Equal(t, [2]bool{true, false}, b.query(q))
	b.checkStats()
	assert.Zero(t, b.stIgn)
}

// TestCompleterWindow: a connection records at most MSG_WINDOW WQEs ahead of its completions;
// one more is ignored (silently) until completions make room, and its re-send is then taken.
func TestCompleterWindow(t *testing.T) {
	b := newCompBench(t, 2)
	const q, p = 200, 0x40
	b.load(q, compParams{rts: true, psn: p, retry: 7, rnr: 7})
	e := uint32(p)
	for i := 0; i <= compWindow; i++ {
		e = b.wqe(q, uint16(i), e, 1, true, stOK)
	}
	b.settle()
	assert.Equal(t, 1, b.m.rejected, "WQE %d ignored", compWindow)
	b.ack(q, e-1, synAck) // everything, the ignored WQE's packet too
	b.settle()
	_, cqe, una := b.take()
	require.Len(t, cqe, compWindow, "the recorded WQEs complete")
	assert.Equal(t, []compUna{{q, e, compWindow}}, una)
	b.wqe(q, compWindow, e-1, 1, true, stOK) // its re-send (after a go-back-N) is taken
	b.settle()
	_, cqe, _ = b.take()
	assert.Equal(t, []compCQE{{q, compWindow, stOK}}, cqe)
	b.checkStats()
}

// TestCompleterIgnored: duplicate, stale and ghost ACKs, NAKs out of range, unknown syndromes:
// ignored and counted, nothing sent. ACK/NAKs and records for a connection not in RTS or in
// error: ignored, not counted.
func TestCompleterIgnored(t *testing.T) {
	b := newCompBench(t, 3)
	const q, p = 4, 0x200
	b.load(q, compParams{rts: true, psn: p, retry: 7, rnr: 7})
	e := b.wqe(q, 0, p, 3, true, stOK)
	e = b.wqe(q, 1, e, 2, true, stOK) // hw = p+5
	b.ack(q, p+1, synAck)             // una = p+2
	b.settle()
	b.take()

	ign := []compAck{
		{q, p + 1, synAck},        // duplicate (una-1)
		{q, p, synAck},            // stale
		{q, p + 5, synAck},        // ghost: beyond the last PSN sent (hw-1 = p+4)
		{q, p + 0x900000, synAck}, // far away
		{q, p + 1, synSeq},        // NAK for a PSN already acknowledged
		{q, p + 6, synSeq},        // NAK beyond hw
		{q, p + 5, synRNR | 3},    // RNR NAK at hw (nothing sent there)
		{q, p + 1, synRNR | 3},    // RNR NAK before una
		{q, p + 5, synInval},      // remote NAK at hw
		{q, p + 2, 0x40},          // type 10 (reserved)
		{q, p + 2, 0x64},          // NAK code 4
		{q, p + 2, 0x7F},          // NAK code 31
		{q, p + 2, 0x80 | synAck}, // reserved bit 7
		{q, p + 2, 0x80 | synSeq},
	}
	for _, a := range ign {
		b.ack(a.qpn, a.psn, a.syn)
	}
	b.settle()
	rw, cqe, una := b.take()
	assert.Empty(t, rw)
	assert.Empty(t, cqe)
	assert.Empty(t, una)
	assert.Equal(t, len(ign), b.stIgn, "every one counted")
	assert.Equal(t, len(ign), b.m.ignored)

	// A connection never loaded, one loaded not in RTS: nothing, not counted.
	b.ack(77, 0, synAck)
	b.ack(77, 0, synSeq)
	b.load(78, compParams{rts: false, psn: 0x10})
	b.wqe(78, 0, 0x10, 1, true, stOK)
	b.ack(78, 0x10, synAck)
	b.ack(78, 0x10, synInval)
	b.settle()
	rw, cqe, una = b.take()
	assert.Empty(t, rw)
	assert.Empty(t, cqe)
	assert.Empty(t, una)
	assert.Equal(t, len(ign), b.stIgn, "not counted")
	assert.Equal(t, [2]bool{false, false}, b.query(78))

	// The valid one still works after all that.
	b.ack(q, p+4, synAck)
	b.settle()
	_, cqe, una = b.take()
	assert.Equal(t, []compCQE{{q, 0, stOK}, {q, 1, stOK}}, cqe)
	assert.Equal(t, []compUna{{q, p + 5, 2}}, una)
	b.checkStats()
}

// TestCompleterSeqNak: a PSN sequence NAK acknowledges what is before its PSN and sends the
// connection back to it: mid-message, at a message boundary, and into a WQE whose last packet is
// not recorded yet. A repeat for the same PSN is ignored until progress or a timeout.
func TestCompleterSeqNak(t *testing.T) {
	b := newCompBench(t, 4)
	const q, p = 31, 0x7000
	b.load(q, compParams{rts: true, psn: p, retry: 5, rnr: 7})
	e := b.wqe(q, 0, p, 3, true, stOK) // A: p..p+2
	e = b.wqe(q, 1, e, 2, false, stOK) // B: p+3, p+4
	e = b.wqe(q, 2, e, 1, true, stOK)  // C: p+5
	require.EqualValues(t, p+6, e)
	b.settle()

	b.ack(q, p+1, synSeq) // mid-message: p acknowledged, back to packet 1 of A
	b.ack(q, p+1, synSeq) // the same again: ignored
	b.settle()
	rw, cqe, una := b.take()
	assert.Equal(t, []compRW{{q, false, 1, 0, p, 1}}, rwsOf(rw))
	assert.Empty(t, cqe)
	assert.Equal(t, []compUna{{q, p + 1, 0}}, una)
	assert.Equal(t, 1, b.stSeq)
	assert.Equal(t, 1, b.stIgn)

	// The sq engine sends A again from packet 1: its records are ignored (already recorded).
	b.wqe(q, 0, p, 3, true, stOK)
	b.ack(q, p+3, synSeq) // message boundary: A complete, back to B's first packet
	b.settle()
	rw, cqe, una = b.take()
	assert.Equal(t, []compRW{{q, false, 2, 1, p + 3, 0}}, rwsOf(rw))
	assert.Equal(t, []compCQE{{q, 0, stOK}}, cqe)
	assert.Equal(t, []compUna{{q, p + 3, 1}}, una)

	// D: two packets sent, its last not recorded. A NAK into it completes B and C and goes back
	// to packet 1 of D, the WQE at the recording index.
	b.recs = append(b.recs, compRec{qpn: q, idx: 3, first: p + 6, end: p + 7, gen: 2}, compRec{qpn: q, idx: 3, first: p + 6, end: p + 8, gen: 2})
	b.ack(q, p+7, synSeq)
	b.settle()
	rw, cqe, una = b.take()
	assert.Equal(t, []compRW{{q, false, 3, 3, p + 6, 1}}, rwsOf(rw))
	assert.Equal(t, []compCQE{{q, 2, stOK}}, cqe)
	assert.Equal(t, []compUna{{q, p + 7, 3}}, una)

	// A NAK for hw: nothing was sent beyond it, so no responder could have seen a gap there
	// (a stray or injected frame): ignored.
	b.ack(q, p+8, synSeq)
	b.settle()
	rw, _, una = b.take()
	assert.Empty(t, rw, "a NAK for hw")
	assert.Empty(t, una)

	// More sent since: a NAK for p+8 acts once (progress to it, back to packet 2 of WQE 3),
	// the same NAK again is a repeat.
	b.recs = append(b.recs, compRec{qpn: q, idx: 3, first: p + 6, end: p + 9, gen: 3})
	b.ack(q, p+8, synSeq)
	b.ack(q, p+8, synSeq)
	b.settle()
	rw, _, una = b.take()
	assert.Equal(t, []compRW{{q, false, 4, 3, p + 6, 2}}, rwsOf(rw), "the repeat ignored")
	assert.Equal(t, []compUna{{q, p + 8, 3}}, una)
	assert.Equal(t, 4, b.stSeq)
	assert.Equal(t, 3, b.stIgn)
	assert.Equal(t, uint8(4), b.m.conns[q].retryLeft, "5 restored by the progress, one retry")
	b.checkStats()
}

// TestCompleterRetryExhaustion: nothing acknowledged: the retransmit timer fires every
// 4.096 us << timeout, each time a go-back-N to the oldest WQE, exactly retry_cnt of them; the
// next expiry completes the oldest WQE with RETRY_EXCEEDED and holds the connection, now in error
// (by query), where it ignores everything, uncounted, until a load.
func TestCompleterRetryExhaustion(t *testing.T) {
	for _, retry := range []uint8{0, 1, 3, 7} {
		t.Run(fmt.Sprintf("retry%d", retry), func(t *testing.T) {
			b := newCompBench(t, 5+int64(retry))
			const q, p, tmo = 100, 0x5000, 1 // 8 ticks
			b.load(q, compParams{rts: true, psn: p, retry: retry, rnr: 7, timeout: tmo})
			e := b.wqe(q, 0, p, 2, false, stOK)
			e = b.wqe(q, 1, e, 1, true, stOK)
			b.ack(q, p, synAck) // progress: una = p+1, mid-WQE 0
			b.settle()
			start := b.lastAck
			b.take()
			b.runUntil(int(retry+2)*10*8*compTickCyc, "the error", func() bool { return b.m.conns[q].err && b.quiet() })
			rw, cqe, _ := b.take()
			require.Len(t, rw, int(retry)+1)
			for i, r := range rw[:retry] {
				assert.Equal(t, compRW{q, false, uint8(i + 1), 0, p, 1}, r.compRW, "retry %d", i)
				assert.True(t, r.timer)
			}
			assert.True(t, rw[retry].hold, "hold after the last")
			assert.Equal(t, retry+1, rw[retry].gen, "hold after the last: its generation")
			assert.Equal(t, []compCQE{{q, 0, stRetryExc}}, cqe, "the oldest WQE fails")
			assert.Equal(t, []compCQE{{qpn: q, status: stRetryExc}}, b.errLog, "one failure report for the CM")
			assert.Equal(t, int(retry)+1, b.stTimeout, "timeouts")
			// Each expiry 8 ticks after the previous event (the ACK, then each retry), within the
			// tick phase and the scan.
			prev := start
			for i, r := range rw {
				gap := r.cycle - prev
				assert.GreaterOrEqual(t, gap, uint64(7*compTickCyc), "expiry %d", i)
				assert.LessOrEqual(t, gap, uint64(8*compTickCyc+compNQP+8), "expiry %d", i)
				prev = r.cycle
			}
			assert.Equal(t, [2]bool{true, true}, b.query(q), "{rts, err}")

			// In error: everything ignored, not counted; no timer.
			ign := b.stIgn
			b.wqe(q, 2, e, 1, true, stOK)
			b.ack(q, p+1, synAck)
			b.ack(q, p+1, synSeq)
			b.ack(q, p+1, 0x40)
			b.run(20 * compTickCyc)
			b.settle()
			rw, cqe, una := b.take()
			assert.Empty(t, rw)
			assert.Empty(t, cqe)
			assert.Empty(t, una)
			assert.Equal(t, ign, b.stIgn)

			b.load(q, compParams{rts: true, psn: 0x10, retry: 1, rnr: 1, timeout: 0})
			assert.Equal(t, [2]bool{true, false}, b.query(q), "a load clears the error")
			b.checkStats()
		})
	}
}

// TestCompleterTimer: the retransmit timer runs only while something is unacknowledged: it starts
// with the first record past una, restarts with progress, stops when everything is acknowledged,
// and never runs with timeout 0. A PSN-sequence NAK restarts it and a timeout clears the NAK
// repeat guard.
func TestCompleterTimer(t *testing.T) {
	b := newCompBench(t, 11)
	const q, p, tmo = 3, 0xABCDE, 2 // 16 ticks
	interval := uint64(16 * compTickCyc)
	b.load(q, compParams{rts: true, psn: p, retry: 7, rnr: 7, timeout: tmo})
	b.load(q+1, compParams{rts: true, psn: p, retry: 7, rnr: 7, timeout: 0})

	// Nothing outstanding: no timer, however long.
	assert.False(t, b.m.conns[q].ton)
	b.run(int(2 * interval))
	rw, _, _ := b.take()
	assert.Empty(t, rw)

	// Timeout 0: outstanding forever, never retransmitted.
	b.wqe(q+1, 0, p, 2, true, stOK)
	b.settle()
	b.run(int(3 * interval))
	rw, _, _ = b.take()
	assert.Empty(t, rw, "timeout 0")

	// Started by the record; progress restarts it: the timeout comes an interval after the
	// last ACK, not after the record.
	e := b.wqe(q, 0, p, 3, true, stOK)
	b.settle()
	assert.True(t, b.m.conns[q].ton)
	b.run(int(interval / 2))
	b.ack(q, p, synAck)
	b.settle()
	ackAt := b.lastAck
	b.runUntil(int(2*interval), "timeout", func() bool { return len(b.rwLog) > 0 })
	rw, _, _ = b.take()
	assert.Equal(t, compRW{q, false, 1, 0, p, 1}, rw[0].compRW)
	assert.GreaterOrEqual(t, rw[0].cycle-ackAt, interval-compTickCyc)
	assert.LessOrEqual(t, rw[0].cycle-ackAt, interval+compNQP+8)

	// A NAK for una after the timeout acts (the timeout cleared the repeat guard); a second one
	// is ignored.
	b.ack(q, p+1, synSeq)
	b.settle()
	b.ack(q, p+1, synSeq)
	b.settle()
	rw, _, _ = b.take()
	assert.Equal(t, []compRW{{q, false, 2, 0, p, 1}}, rwsOf(rw))
	assert.Equal(t, 1, b.stIgn)
	// ... and the timer restarted with the NAK: the next timeout clears the guard again.
	b.runUntil(int(2*interval), "timeout", func() bool { return len(b.rwLog) > 0 })
	b.ack(q, p+1, synSeq)
	b.settle()
	rw, _, _ = b.take()
	assert.Len(t, rw, 2, "timeout, then the NAK acts again")

	// Everything acknowledged (the first sending's packets: nothing was resent since the last
	// go-back): the timer stops, and progress has passed the resend point (WQE 0, p+1), so one
	// go-back forward to where the sender is to resume, the end.
	b.ack(q, e-1, synAck)
	b.settle()
	assert.False(t, b.m.conns[q].ton)
	b.run(int(3 * interval))
	rw, cqe, _ := b.take()
	assert.Equal(t, []compRW{{q, false, 5, 1, e, 0}}, rwsOf(rw), "forward to the end, then nothing")
	assert.Equal(t, []compCQE{{q, 0, stOK}}, cqe)
	assert.Equal(t, 2, b.stTimeout)
	b.checkStats()
}

// TestCompleterRNR: an RNR NAK holds the connection for the code's time (exactly, within the tick
// phase and the scan), then sends it back to the NAKed PSN; a repeat during the wait is ignored;
// rnr_retry counts waits without progress and 7 means unlimited; after the wait the retransmit
// timer runs again.
func TestCompleterRNR(t *testing.T) {
	for _, code := range []uint8{1, 5, 14} {
		t.Run(fmt.Sprintf("code%d", code), func(t *testing.T) {
			b := newCompBench(t, 20+int64(code))
			const q, p = 250, 0x300
			ticks := compRNRTicks(code)
			b.load(q, compParams{rts: true, psn: p, retry: 7, rnr: 2, timeout: 0})
			e := b.wqe(q, 0, p, 1, true, stOK)
			e = b.wqe(q, 1, e, 2, true, stOK) // p+1, p+2
			b.settle()
			b.ack(q, p+1, synRNR|code) // p acknowledged, p+1 waits
			b.runUntil(100, "the NAK", func() bool { return len(b.acks) == 0 })
			at := b.d.Cycles() // the cycle after the NAK was taken: its event runs now
			dl := compNow(at) + ticks
			b.ack(q, p+1, synRNR|code) // a repeat during the wait
			b.settle()
			rw, cqe, una := b.take()
			assert.Equal(t, []compRW{{qpn: q, hold: true, gen: 1}}, rwsOf(rw))
			assert.Equal(t, []compCQE{{q, 0, stOK}}, cqe)
			assert.Equal(t, []compUna{{q, p + 1, 1}}, una)
			assert.Equal(t, 1, b.stIgn, "repeat ignored")
			assert.Equal(t, 1, b.stRNR)

			b.runUntil(int(ticks+2)*compTickCyc+compNQP, "the end of the wait", func() bool { return len(b.rwLog) > 0 })
			r := b.rwLog[0]
			assert.Equal(t, compRW{q, false, 2, 1, p + 1, 0}, r.compRW)
			// Found by the scan in cycle r.cycle-3 (scan, apply, command); the tick reached the
			// deadline in cycle dlCycle; on an idle block the scan comes round within N_QP+1.
			dlCycle := uint64(dl)*compTickCyc + compRst
			found := r.cycle - 3
			assert.GreaterOrEqual(t, found, dlCycle, "not before the deadline")
			assert.LessOrEqual(t, found, dlCycle+compNQP+1, "within one scan round")
			waited := r.cycle - at
			t.Logf("code %d: %d ticks, waited %d cycles (%d..%d)", code, ticks, waited,
				uint64(ticks-1)*compTickCyc, uint64(ticks)*compTickCyc+compNQP+3)
			b.settle()
			b.take()

			// rnr_retry 2 was restored by the progress above and one wait used: one more wait
			// without progress, then RNR_RETRY_EXCEEDED.
			for i := 0; i < 1; i++ {
				b.ack(q, p+1, synRNR|1)
				b.settle()
				b.runUntil(20*compTickCyc+compNQP, "the end of the wait", func() bool { return b.quiet() && !b.m.conns[q].ton })
			}
			b.ack(q, p+1, synRNR|1)
			b.settle()
			rw, cqe, _ = b.take()
			assert.Equal(t, []compRW{{qpn: q, hold: true, gen: 3}, {q, false, 4, 1, p + 1, 0}, {qpn: q, hold: true, gen: 5}}, rwsOf(rw))
			assert.Equal(t, []compCQE{{q, 1, stRNRExc}}, cqe)
			assert.Equal(t, [2]bool{true, true}, b.query(q))
			b.checkStats()
		})
	}
}

// TestCompleterRNRUnlimited: rnr_retry 7 never runs out; after each wait the retransmit timer
// runs again; progress in an RNR NAK (a later PSN) acknowledges what is before it.
func TestCompleterRNRUnlimited(t *testing.T) {
	b := newCompBench(t, 30)
	const q, p = 0, 0xFFFFF0
	b.load(q, compParams{rts: true, psn: p, retry: 1, rnr: 7, timeout: 3}) // 32 ticks
	e := b.wqe(q, 0, p, 4, true, stOK)
	b.wqe(q, 1, e, 1, true, stOK)
	b.settle()
	for i := 0; i < 12; i++ {
		b.ack(q, p+1, synRNR|1)
		b.settle()
		b.runUntil(20*compTickCyc+compNQP, "the end of the wait", func() bool { return len(b.rwLog) == 2 })
		rw, _, _ := b.take()
		g := uint8(2*i+1) & 15
		assert.Equal(t, []compRW{{qpn: q, hold: true, gen: g}, {q, false, (g + 1) & 15, 0, p, 1}}, rwsOf(rw), "wait %d", i)
	}
	assert.Equal(t, 12, b.stRNR)
	assert.False(t, b.m.conns[q].err)
	// The retransmit timer after the wait: no ACK, so a timeout, and with retry 1 the second fails.
	b.runUntil(3*32*compTickCyc, "the error", func() bool { return b.m.conns[q].err && b.quiet() })
	rw, cqe, _ := b.take()
	assert.Equal(t, []compRW{{q, false, 9, 0, p, 1}, {qpn: q, hold: true, gen: 10}}, rwsOf(rw), "generations 25, 26 mod 16")
	assert.Equal(t, []compCQE{{q, 0, stRetryExc}}, cqe)
	assert.Equal(t, 2, b.stTimeout)
	b.checkStats()
}

// TestCompleterRemoteNak: the remote error NAKs acknowledge what is before their PSN, then fail
// the oldest incomplete WQE with their status and hold the connection in error.
func TestCompleterRemoteNak(t *testing.T) {
	b := newCompBench(t, 40)
	for i, tc := range []struct {
		syn, status uint8
	}{{synInval, uint8(regs.CQEStatusRemoteInvalidRequest)}, {synAccess, uint8(regs.CQEStatusRemoteAccessError)},
		{synRemOp, uint8(regs.CQEStatusRemoteOpError)}} {
		q := 10 + i
		p := uint32(0x100 * (i + 1))
		b.load(q, compParams{rts: true, psn: p, retry: 7, rnr: 7, timeout: 5})
		e := b.wqe(q, 0, p, 2, true, stOK)
		e = b.wqe(q, 1, e, 2, false, stOK)
		b.wqe(q, 2, e, 1, true, stOK)
		b.ack(q, p+3, tc.syn) // A acknowledged; B fails
		b.settle()
		rw, cqe, una := b.take()
		assert.Equal(t, []compRW{{qpn: q, hold: true, gen: 1}}, rwsOf(rw))
		assert.Equal(t, []compCQE{{q, 0, stOK}, {q, 1, tc.status}}, cqe, "NAK %#x", tc.syn)
		assert.Equal(t, []compUna{{q, p + 3, 2}}, una, "cidx moves past the failed WQE")
		assert.Equal(t, [2]bool{true, true}, b.query(q))
		assert.False(t, b.m.conns[q].ton, "no timer in error")
	}
	b.run(40 * 4 * compTickCyc)
	b.settle()
	rw, _, _ := b.take()
	assert.Empty(t, rw, "no timer in error")
	b.checkStats()
}

// TestCompleterPSNWrap: PSNs across 0xFFFFFF -> 0: ACK windows, completion, NAK rewinds and pkt.
func TestCompleterPSNWrap(t *testing.T) {
	b := newCompBench(t, 50)
	const q, p = 128, 0xFFFFFD
	b.load(q, compParams{rts: true, psn: p, retry: 7, rnr: 7, timeout: 1})
	e := b.wqe(q, 0, p, 2, true, stOK) // FFFFFD, FFFFFE
	e = b.wqe(q, 1, e, 4, true, stOK)  // FFFFFF, 0, 1, 2
	e = b.wqe(q, 2, e, 1, true, stOK)  // 3
	require.EqualValues(t, 4, e)
	b.settle()
	b.ack(q, 0xFFFFFC, synAck) // duplicate (una - 1)
	b.ack(q, 0x000004, synAck) // ghost (hw)
	b.ack(q, 0xFFFFFE, synAck) // A
	b.ack(q, 0x000001, synSeq) // back into B across the wrap: packet 2
	b.settle()
	rw, cqe, una := b.take()
	assert.Equal(t, []compRW{{q, false, 1, 1, 0xFFFFFF, 2}}, rwsOf(rw))
	assert.Equal(t, []compCQE{{q, 0, stOK}}, cqe)
	assert.Equal(t, []compUna{{q, 0xFFFFFF, 1}, {q, 1, 1}}, una)
	assert.Equal(t, 2, b.stIgn)
	// A timeout goes back to the same place.
	b.runUntil(10*8*compTickCyc, "timeout", func() bool { return len(b.rwLog) > 0 })
	assert.Equal(t, compRW{q, false, 2, 1, 0xFFFFFF, 2}, b.rwLog[0].compRW)
	b.ack(q, 3, synAck)
	b.settle()
	rw, cqe, una = b.take()
	// The first sending's ACK passes the resend point (nothing resent): forward to the end.
	assert.Equal(t, []compRW{{q, false, 2, 1, 0xFFFFFF, 2}, {q, false, 3, 3, 4, 0}}, rwsOf(rw))
	assert.Equal(t, []compCQE{{q, 1, stOK}, {q, 2, stOK}}, cqe)
	assert.Equal(t, []compUna{{q, 4, 3}}, una)
	b.checkStats()
}

// TestCompleterLoadUnderTraffic: a connection reloaded in the middle of its traffic starts afresh
// (its old records and ACKs are stale), and ctx_load_ready comes back within a few cycles while
// records and ACKs of other connections keep coming.
func TestCompleterLoadUnderTraffic(t *testing.T) {
	b := newCompBench(t, 60)
	const q, p = 7, 0x1234
	for _, c := range []int{q, 8, 9} {
		b.load(c, compParams{rts: true, psn: p, retry: 7, rnr: 7})
	}
	e := b.wqe(q, 0, p, 3, true, stOK)
	b.wqe(q, 1, e, 1, true, stOK)
	b.ack(q, p, synAck)
	b.settle()
	b.take()
	// A stream of records and ACKs on two other connections; in the middle of it, the reload,
	// with stale traffic queued behind it (old PSNs, before the new ones).
	const np = p + 0x100
	pe := [2]uint32{p, p}
	b.maxNotRdy = 0
	for i := 0; i < 200; i++ {
		c := 8 + i%2
		pe[i%2] = b.wqe(c, uint16(i/2), pe[i%2], 1+i%3, i%4 == 0, stOK)
		b.ack(c, pe[i%2]-1, synAck)
		if i == 50 {
			b.loads = append(b.loads, compLoad{q, compParams{rts: true, psn: np, retry: 2, rnr: 2, timeout: 0}})
			b.wqe(q, 1, e, 1, true, stOK)
			b.ack(q, p+2, synAck)
			b.ack(q, p+3, synSeq)
		}
		b.run(12)
		if i == 50 {
			assert.Empty(t, b.loads, "load taken within 12 cycles")
		}
	}
	b.settle()
	assert.LessOrEqual(t, b.maxNotRdy, 3, "ctx_load_ready low at most an event long (one completion each)")
	rw, cqe, una := b.take()
	assert.Empty(t, rw)
	for _, c := range cqe {
		assert.NotEqual(t, q, c.qpn, "nothing for the reloaded connection")
	}
	for _, u := range una {
		assert.NotEqual(t, q, u.qpn)
	}
	assert.Equal(t, 2, b.stIgn, "stale ACKs")
	assert.Equal(t, 1, b.m.rejected, "stale record")
	// The new incarnation works from its own PSN.
	b.wqe(q, 0, np, 1, true, stOK)
	b.ack(q, np, synAck)
	b.settle()
	_, cqe, una = b.take()
	assert.Equal(t, []compCQE{{q, 0, stOK}}, cqe)
	assert.Equal(t, []compUna{{q, np + 1, 1}}, una)
	b.checkStats()
}

// --- the random test: a sender and a responder per connection around the block ------------------

type compWQE struct {
	npkts    int
	signaled bool
	status   uint8
	first    uint32
	sent     bool
}

type compPkt struct {
	psn         uint32
	first, last bool
	at          uint64
	epoch       int
}

type compWireAck struct {
	compAck
	at uint64
}

// compPeer is one connection's sq engine (sender) and the peer's responder, joined by a lossy
// wire with latency.
type compPeer struct {
	q          int
	epoch      int
	active     bool // loaded and sending (between a load queued and taken it is not)
	wqes       []compWQE
	cur        uint16
	pkt        int
	psn        uint32
	held       bool
	gen        uint8 // of the latest command taken: on every record
	cidx       uint16
	toPeer     []compPkt
	toUs       []compWireAck
	epsn       uint32
	sentNak    bool
	rnrPct     int
	rnrCode    uint8
	dead       uint64 // cycle the model put it in error (0: not)
	rwMismatch int
}

func (s *compPeer) wqe(rng *rand.Rand, i uint16) *compWQE {
	for int(i) >= len(s.wqes) {
		w := compWQE{npkts: 1 + rng.Intn(4), signaled: rng.Intn(10) < 7, status: stOK}
		switch rng.Intn(20) {
		case 0:
			w.npkts, w.status = 0, stBadWQE
		case 1:
			w.status = stDMA
		}
		s.wqes = append(s.wqes, w)
	}
	return &s.wqes[i]
}

// TestCompleterRandom: eight connections, each with a sender that follows the block's commands
// (go back, hold) and a responder that acknowledges in order, NAKs gaps once, RNR-NAKs now and
// then and very rarely fails a message; both wires lose and delay frames. On top: ghost, stale
// and garbage ACK/NAKs, reloads in the middle of traffic, queries, random backpressure. Every
// command, CQE, m_una, query answer and statistic is checked against the reference, timers for
// not firing early or late.
func TestCompleterRandom(t *testing.T) {
	for _, tc := range []struct {
		name       string
		seed       int64
		gap, stall int
		loss       int // per mille of frames lost on each wire
	}{{"clean", 1001, 0, 0, 0}, {"lossy", 2002, 20, 20, 20}, {"heavy", 3003, 50, 60, 60}} {
		t.Run(tc.name, func(t *testing.T) {
			b := newCompBench(t, tc.seed)
			rng := b.rng
			b.gap, b.stall = tc.gap, tc.stall
			qps := []int{0, 1, 5, 64, 127, 128, 200, 255}
			peers := map[int]*compPeer{}
			loss, reloads, ghosts, windowStalls := tc.loss, 0, 0, 0
			newParams := func() compParams {
				p := compParams{rts: true, psn: uint32(rng.Intn(1 << 24)), retry: uint8(rng.Intn(8)), rnr: uint8(rng.Intn(8)),
					timeout: []uint8{0, 1, 1, 2, 3}[rng.Intn(5)]}
				if rng.Intn(3) == 0 {
					p.psn = psnMask - uint32(rng.Intn(64)) // crosses the wrap soon
				}
				return p
			}
			for _, q := range qps {
				peers[q] = &compPeer{q: q}
				b.loads = append(b.loads, compLoad{q, newParams()})
			}
			b.onLoad = func(l compLoad) {
				s := peers[l.qpn]
				if s == nil {
					return
				}
				*s = compPeer{q: l.qpn, epoch: s.epoch + 1, active: l.rts, psn: l.psn, epsn: l.psn,
					rnrPct: rng.Intn(4), rnrCode: uint8(1 + rng.Intn(3)), rwMismatch: s.rwMismatch}
			}
			b.onRW = func(rw compRW) {
				s := peers[rw.qpn]
				if s == nil || !s.active {
					return
				}
				s.gen = rw.gen
				if rw.hold {
					s.held = true
					return
				}
				// A command the sender cannot follow (only ghost ACKs in range, acknowledging what
				// the peer never got, or a stale record after a reload lead the block there):
				// it holds, and the connection's timer or a reload sorts it out.
				if int(rw.idx) > len(s.wqes) {
					s.rwMismatch++
					s.held = true
					return
				}
				w := s.wqe(rng, rw.idx)
				if w.sent && w.first != rw.psn || w.npkts == 0 && rw.pkt != 0 || w.npkts > 0 && int(rw.pkt) >= w.npkts {
					s.rwMismatch++
					s.held = true
					return
				}
				s.held = false
				s.cur, s.pkt, s.psn = rw.idx, int(rw.pkt), (rw.psn+rw.pkt)&psnMask
			}
			b.onUna = func(u compUna) {
				if s := peers[u.qpn]; s != nil {
					s.cidx = u.idx
				}
			}
			// Each record taken is a packet handed to the transmitter (but a WQE's that sends
			// nothing).
			b.onRecTaken = func(r compRec, c uint64) {
				s := peers[r.qpn]
				if s == nil || r.last && r.end == r.first || rng.Intn(1000) < loss {
					return
				}
				psn := (r.end - 1) & psnMask
				at := c + uint64(20+rng.Intn(150))
				if n := len(s.toPeer); n > 0 {
					at = max(at, s.toPeer[n-1].at)
				}
				s.toPeer = append(s.toPeer, compPkt{psn: psn, first: psn == r.first, last: r.last, at: at, epoch: s.epoch})
			}
			respond := func(s *compPeer, c uint64, psn uint32, syn uint8) {
				if rng.Intn(1000) < loss {
					return
				}
				at := c + uint64(20+rng.Intn(150))
				if n := len(s.toUs); n > 0 {
					at = max(at, s.toUs[n-1].at)
				}
				s.toUs = append(s.toUs, compWireAck{compAck{s.q, psn & psnMask, syn}, at})
			}

			const cycles = 120000
			for i := 0; i < cycles+40000; i++ {
				c := b.d.Cycles()
				drain := i >= cycles
				if drain {
					loss = 0
				}
				for _, q := range qps {
					s := peers[q]
					cn := &b.m.conns[q]
					// Sender: the next packet of the current WQE, within the window.
					if s.active && !s.held && !drain && len(b.recs) < 6 && rng.Intn(100) < 15 {
						if s.cur-s.cidx >= compWindow {
							windowStalls++
						} else {
							w := s.wqe(rng, s.cur)
							if s.pkt == 0 || !w.sent {
								w.first, w.sent = (s.psn-uint32(s.pkt))&psnMask, true
							}
							if w.npkts == 0 {
								b.recs = append(b.recs, compRec{qpn: q, last: true, idx: s.cur, first: w.first, end: w.first,
									signaled: w.signaled, status: w.status, gen: s.gen})
								s.cur, s.pkt = s.cur+1, 0
							} else {
								s.psn = (s.psn + 1) & psnMask
								last := s.pkt == w.npkts-1
								b.recs = append(b.recs, compRec{qpn: q, last: last, idx: s.cur, first: w.first, end: s.psn,
									signaled: w.signaled, status: w.status, gen: s.gen})
								s.pkt++
								if last {
									s.cur, s.pkt = s.cur+1, 0
								}
							}
						}
					}
					// Responder.
					for len(s.toPeer) > 0 && s.toPeer[0].at <= c {
						pk := s.toPeer[0]
						s.toPeer = s.toPeer[1:]
						if pk.epoch != s.epoch {
							continue
						}
						d := (pk.psn - s.epsn) & psnMask
						switch {
						case d == 0:
							if pk.first && rng.Intn(100) < s.rnrPct {
								// As san_rq_engine: the RNR NAK marks the gap, so the
								// packets behind it get no sequence NAK.
								respond(s, c, pk.psn, synRNR|s.rnrCode)
								s.sentNak = true
								continue
							}
							if rng.Intn(4000) == 0 {
								respond(s, c, pk.psn, synInval+uint8(rng.Intn(3)))
								continue
							}
							s.epsn = (s.epsn + 1) & psnMask
							s.sentNak = false
							if pk.last || rng.Intn(8) == 0 {
								respond(s, c, pk.psn, synAck)
							}
						case d < 1<<23:
							if !s.sentNak {
								s.sentNak = true
								respond(s, c, s.epsn, synSeq)
							}
						default:
							respond(s, c, s.epsn-1, synAck)
						}
					}
					for len(s.toUs) > 0 && s.toUs[0].at <= c {
						b.acks = append(b.acks, s.toUs[0].compAck)
						s.toUs = s.toUs[1:]
					}
					// Dead connections come back after a while; now and then a live one is
					// reloaded in the middle of its traffic.
					if cn.err && s.dead == 0 {
						s.dead = c
					}
					if !drain && s.active && len(b.loads) == 0 &&
						(s.dead != 0 && c-s.dead > 3000 || rng.Intn(60000) == 0) {
						s.active = false
						b.loads = append(b.loads, compLoad{q, newParams()})
						reloads++
					}
				}
				// Ghosts: stale, duplicate, out of range, unknown syndromes, other connections.
				if !drain && rng.Intn(150) == 0 {
					q := qps[rng.Intn(len(qps))]
					if rng.Intn(8) == 0 {
						q = rng.Intn(compNQP)
					}
					cn := &b.m.conns[q]
					psn := uint32(rng.Intn(1 << 24))
					switch rng.Intn(5) {
					case 0:
						psn = cn.una - 1 // duplicate ACK
					case 1:
						psn = cn.una - 1 - uint32(rng.Intn(8)) // stale
					case 2:
						psn = cn.hw + uint32(rng.Intn(8)) // ahead
					case 3:
						psn = cn.una // a repeated NAK (or a real one)
					}
					syn := []uint8{synAck, synSeq, synRNR | uint8(rng.Intn(32)), 0x40 | uint8(rng.Intn(32)),
						0x60 | uint8(rng.Intn(32)), uint8(rng.Intn(256))}[rng.Intn(6)]
					b.acks = append(b.acks, compAck{q, psn & psnMask, syn})
					ghosts++
				}
				if rng.Intn(40) == 0 && len(b.queries) < 2 {
					b.queries = append(b.queries, []int{qps[rng.Intn(len(qps))], rng.Intn(compNQP)}[rng.Intn(2)])
				}
				b.cycle()
			}
			b.settle()
			b.checkStats()
			for _, q := range qps {
				cn := &b.m.conns[q]
				assert.Equal(t, compUna{q, cn.una, cn.cidx}, b.lastUna[q], "QP %d: final una, cidx", q)
				assert.Equal(t, [2]bool{cn.rts, cn.err}, b.query(q), "QP %d: final {rts, err}", q)
			}
			m := b.m
			t.Logf("%d go-backs forward (progress past the resend point)", m.fwds)
			t.Logf("%d cycles: %d WQEs completed, %d CQEs, %d go-back-N, %d holds, %d timer events, %d timeouts, "+
				"%d seq NAKs, %d RNR NAKs, %d ignored, fails %v, %d records rejected, %d reloads, %d ghosts, %d queries, "+
				"%d window stalls, %d commands the sender could not follow, max %d cycles not ready",
				b.d.Cycles(), m.completions, len(b.cqeLog), m.gbns, m.holds, b.timerEvents, m.timeouts, m.seqNaks, m.rnrNaks,
				m.ignored, m.fails, m.rejected, reloads, ghosts, b.nQuer, windowStalls, peersMismatch(peers), b.maxNotRdy)
			assert.Greater(t, m.completions, 1500)
			assert.Greater(t, m.gbns, 50)
			assert.Positive(t, m.fwds, "go-backs forward")
			assert.Greater(t, m.holds, 20)
			assert.Greater(t, m.seqNaks, 5)
			assert.Greater(t, m.rnrNaks, 20)
			assert.Greater(t, m.ignored, 300)
			assert.Greater(t, b.nQuer, 1000)
			assert.GreaterOrEqual(t, reloads, 5)
			assert.Greater(t, m.fails[stRNRExc]+m.fails[stRetryExc], 2)
			if tc.loss > 0 {
				assert.Greater(t, m.timeouts, 20)
			}
		})
	}
}

func peersMismatch(peers map[int]*compPeer) int {
	n := 0
	for _, s := range peers {
		n += s.rwMismatch
	}
	return n
}

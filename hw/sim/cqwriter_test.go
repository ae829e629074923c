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

// san_cq_writer's defaults.
const (
	cqNQP      = 256
	cqBeats    = regs.CQESize / 8 // data beats per CQE at DATA_WIDTH 64
	cqOverLat  = 2                // cycles from taking a dropped CQE to its m_overrun_valid pulse
	cqNotReady = 1                // longest run of ctx_load_ready low after the reset sweep
)

// cqeReq is one completion request; index and image are the reference's, filled in when
// the writer takes it.
type cqeReq struct {
	qpn            int
	wrID           uint64
	byteLen        uint32
	opcode, status uint8
	wqeIndex       uint16
	solicited      bool
	index          uint16 // the pi it was written at
	image          []byte // the CQE as it must land in host memory
}

type cqDoorbell struct {
	qpn int
	ci  uint16
	arm bool
}

type cqLoad struct {
	qpn    int
	rts    bool
	base   uint64
	log    uint
	vector uint16
}

// cqState is the reference model of one CQ, updated in the order the writer takes operations,
// plus the test's consumer (a driver polling the ring by phase).
type cqState struct {
	cqLoad
	loaded   bool
	pi, ci   uint16
	armed    bool
	entries  []*cqeReq // written or to be written, not yet consumed
	cons     uint16    // consumer: next index it expects
	rate     int       // consumer: percent of cycles it polls
	inflight int       // CQE writes expected but not yet handed over
	laps     int
}

type cqWrite struct {
	addr uint64
	data []byte
}

type cqIRQ struct {
	vector uint16
	after  int // writes that must be handed over before it
}

// holdCheck checks the handshake rule on an output: once valid, valid and payload hold until
// ready.
type holdCheck struct {
	name string
	held bool
	v    []byte
}

func (h *holdCheck) check(t *testing.T, cycle uint64, valid, ready bool, payload []byte) {
	t.Helper()
	if h.held {
		assert.True(t, valid, "cycle %d: %s valid dropped while stalled", cycle, h.name)
		assert.Equal(t, h.v, payload, "cycle %d: %s payload changed while stalled", cycle, h.name)
	}
	h.held = valid && !ready
	h.v = payload
}

// cqBench drives san_cq_writer: CQE sources and doorbells from queues with random gaps, a host
// memory applying the DMA writes, random stalls on every ready, and a reference model.
type cqBench struct {
	t                  *testing.T
	d                  *dut.DUT
	rng                *rand.Rand
	gap, stall         int  // percent of cycles an input's valid / an output's ready is withheld
	msixStall          int  // percent of cycles m_msix_ready is withheld
	msixBlock          bool // m_msix_ready held low
	src                [2][]*cqeReq
	srcOn              [2]bool
	dbs                []cqDoorbell
	dbOn               bool
	loads              []cqLoad
	cqs                []cqState
	mem                map[uint64][]byte // host memory, by CQE address
	expWrites          []cqWrite
	writesDone         int
	expIRQ             []cqIRQ
	irqs               []uint16
	expOverrun         map[uint64]bool // cycles with an overrun pulse
	overruns           int
	reqs               []uint64 // host: write requests taken, data not yet matched
	bursts             [][]byte // host: data bursts complete, request not yet matched
	cur                []byte
	notReady, maxNotRd int
	firstBeat, lastBt  uint64
	quiet              int // a QP being drained for a reload: its consumer stays away
	srcLast, srcFair   int // source of the last CQE taken; CQEs taken while both sources waited
	beats              int
	hReq, hData, hIRQ  holdCheck
}

func newCQBench(t *testing.T, rng *rand.Rand) *cqBench {
	b := &cqBench{t: t, d: dut.New(t, "san_cq_writer"), rng: rng, cqs: make([]cqState, cqNQP), quiet: -1, srcLast: -1,
		mem: map[uint64][]byte{}, expOverrun: map[uint64]bool{},
		hReq: holdCheck{name: "dma_wr_req"}, hData: holdCheck{name: "axis_dma_wr"}, hIRQ: holdCheck{name: "msix"}}
	// The reset sweep: nothing is taken until every CQ is in reset.
	for i := 0; i < cqNQP+4 && b.d.Get("ctx_load_ready") == 0; i++ {
		b.d.Tick()
		b.d.Eval()
	}
	require.EqualValues(t, 1, b.d.Get("ctx_load_ready"), "ready after the reset sweep")
	return b
}

func (b *cqBench) slotAddr(cq *cqState, idx uint16) uint64 {
	return cq.base + uint64(idx&(1<<cq.log-1))*regs.CQESize
}

func cqeImage(r *cqeReq, phase uint8) []byte {
	e := regs.CQE(make([]byte, regs.CQESize))
	e.SetWrID(r.wrID)
	e.SetByteLen(r.byteLen)
	e.SetQPN(uint32(r.qpn))
	e.SetOpcode(r.opcode)
	e.SetStatus(r.status)
	e.SetWQEIndex(r.wqeIndex)
	e.SetFlagsSolicited(uint8(b2u(r.solicited)))
	e.SetFlagsPhase(phase)
	return e
}

// takeCQE applies a CQE the writer took in cycle c to the reference.
func (b *cqBench) takeCQE(r *cqeReq, c uint64) {
	cq := &b.cqs[r.qpn]
	if !cq.loaded || !cq.rts || cq.pi-cq.ci == uint16(1)<<cq.log {
		b.expOverrun[c+cqOverLat] = true
		return
	}
	r.index = cq.pi
	r.image = cqeImage(r, uint8(1-(cq.pi>>cq.log)&1))
	b.expWrites = append(b.expWrites, cqWrite{addr: b.slotAddr(cq, cq.pi), data: r.image})
	cq.entries = append(cq.entries, r)
	cq.inflight++
	cq.pi++
	if cq.armed {
		b.expIRQ = append(b.expIRQ, cqIRQ{vector: cq.vector, after: len(b.expWrites)})
		cq.armed = false
	}
}

func (b *cqBench) takeDoorbell(db cqDoorbell) {
	cq := &b.cqs[db.qpn]
	if !cq.loaded || !cq.rts {
		return
	}
	cq.ci = db.ci
	if db.arm {
		if cq.pi != cq.ci {
			b.expIRQ = append(b.expIRQ, cqIRQ{vector: cq.vector, after: len(b.expWrites)})
			cq.armed = false
		} else {
			cq.armed = true
		}
	}
}

func (b *cqBench) takeLoad(l cqLoad) {
	cq := &b.cqs[l.qpn]
	require.Zero(b.t, cq.inflight, "QP %d reloaded with writes in flight (test bug)", l.qpn)
	rate := cq.rate
	*cq = cqState{cqLoad: l, loaded: true, rate: rate}
	if b.quiet == l.qpn {
		b.quiet = -1
	}
	// The driver hands the NIC a zeroed ring.
	for i := uint16(0); i < 1<<l.log; i++ {
		delete(b.mem, b.slotAddr(cq, i))
	}
}

// ringOf returns the CQ whose ring holds [addr, addr+32), or -1.
func (b *cqBench) ringOf(addr uint64) int {
	for q := range b.cqs {
		cq := &b.cqs[q]
		if cq.loaded && cq.rts && addr >= cq.base && addr+regs.CQESize <= cq.base+regs.CQESize<<cq.log {
			return q
		}
	}
	return -1
}

// hostWrite applies one whole write (request and data) to host memory.
func (b *cqBench) hostWrite(addr uint64, data []byte) {
	t := b.t
	q := b.ringOf(addr)
	require.GreaterOrEqual(t, q, 0, "write to %#x outside every loaded CQ ring", addr)
	require.Less(t, b.writesDone, len(b.expWrites), "write to %#x that the reference does not expect", addr)
	exp := b.expWrites[b.writesDone]
	require.Equal(t, fmt.Sprintf("%#x", exp.addr), fmt.Sprintf("%#x", addr), "write %d address", b.writesDone)
	require.Equal(t, exp.data, data, "write %d bytes (CQ %d)", b.writesDone, q)
	b.mem[addr] = data
	b.writesDone++
	b.cqs[q].inflight--
}

// consume is the driver: it polls each CQ's next entry by phase and checks what it finds.
func (b *cqBench) consume() {
	for q := range b.cqs {
		cq := &b.cqs[q]
		if !cq.loaded || !cq.rts || q == b.quiet || b.rng.Intn(100) >= cq.rate {
			continue
		}
		e := regs.CQE(b.mem[b.slotAddr(cq, cq.cons)])
		want := uint8(1 - (cq.cons>>cq.log)&1)
		if len(e) == 0 || e.FlagsPhase() != want {
			// Nothing new: now and then arm and look again, as a driver going to sleep does.
			if b.rng.Intn(8) == 0 && len(b.dbs) < 4 {
				b.dbs = append(b.dbs, cqDoorbell{qpn: q, ci: cq.cons, arm: true})
			}
			continue
		}
		require.NotEmpty(b.t, cq.entries, "CQ %d: entry %d has the current phase but nothing was written", q, cq.cons)
		r := cq.entries[0]
		require.Equal(b.t, cq.cons, r.index, "CQ %d: consumer and reference disagree", q)
		require.Equal(b.t, r.image, []byte(e), "CQ %d entry %d", q, cq.cons)
		assert.EqualValues(b.t, q, e.QPN())
		cq.entries = cq.entries[1:]
		cq.cons++
		if cq.cons&(1<<cq.log-1) == 0 {
			cq.laps++
		}
		if b.rng.Intn(3) == 0 && len(b.dbs) < 4 {
			b.dbs = append(b.dbs, cqDoorbell{qpn: q, ci: cq.cons, arm: b.rng.Intn(3) == 0})
		}
	}
}

func (b *cqBench) setCQE(i int, r *cqeReq) {
	p := fmt.Sprintf("s_cqe%d_", i)
	b.d.Set(p+"qpn", uint64(r.qpn))
	b.d.Set(p+"wr_id", r.wrID)
	b.d.Set(p+"byte_len", uint64(r.byteLen))
	b.d.Set(p+"opcode", uint64(r.opcode))
	b.d.Set(p+"status", uint64(r.status))
	b.d.Set(p+"wqe_index", uint64(r.wqeIndex))
	b.d.Set(p+"solicited", b2u(r.solicited))
}

// cycle runs one clock cycle.
func (b *cqBench) cycle() {
	t, d, rng := b.t, b.d, b.rng
	c := d.Cycles()
	for i := range b.src {
		if len(b.src[i]) > 0 {
			b.srcOn[i] = b.srcOn[i] || rng.Intn(100) >= b.gap
			b.setCQE(i, b.src[i][0])
		}
		d.Set(fmt.Sprintf("s_cqe%d_valid", i), b2u(b.srcOn[i]))
	}
	if len(b.dbs) > 0 {
		b.dbOn = b.dbOn || rng.Intn(100) >= b.gap
		d.Set("s_db_qpn", uint64(b.dbs[0].qpn))
		d.Set("s_db_ci", uint64(b.dbs[0].ci))
		d.Set("s_db_arm", b2u(b.dbs[0].arm))
	}
	d.Set("s_db_valid", b2u(b.dbOn))
	reqReady := rng.Intn(100) >= b.stall
	dataReady := rng.Intn(100) >= b.stall
	irqReady := !b.msixBlock && rng.Intn(100) >= b.msixStall
	d.Set("m_dma_wr_req_ready", b2u(reqReady))
	d.Set("m_axis_dma_wr_tready", b2u(dataReady))
	d.Set("m_msix_ready", b2u(irqReady))
	d.Set("ctx_load_en", 0)
	d.Eval()

	// A context load only in a cycle where the writer is ready, which must not depend on it.
	loadFire := false
	if d.Get("ctx_load_ready") == 1 {
		b.notReady = 0
		if len(b.loads) > 0 && rng.Intn(100) >= b.gap {
			l := b.loads[0]
			d.Set("ctx_load_qpn", uint64(l.qpn))
			d.Set("ctx_load_rts", b2u(l.rts))
			d.Set("ctx_load_cq_base", l.base)
			d.Set("ctx_load_cq_log", uint64(l.log))
			d.Set("ctx_load_cq_vector", uint64(l.vector))
			d.Set("ctx_load_en", 1)
			d.Eval()
			require.EqualValues(t, 1, d.Get("ctx_load_ready"), "ctx_load_ready depends on ctx_load_en")
			loadFire = true
		}
	} else {
		b.notReady++
		b.maxNotRd = max(b.maxNotRd, b.notReady)
	}
	dbFire := b.dbOn && d.Get("s_db_ready") == 1
	var srcFire [2]bool
	for i := range b.src {
		srcFire[i] = b.srcOn[i] && d.Get(fmt.Sprintf("s_cqe%d_ready", i)) == 1
	}
	// The writer takes one operation per cycle; the reference relies on that order.
	n := 0
	for _, f := range []bool{loadFire, dbFire, srcFire[0], srcFire[1]} {
		if f {
			n++
		}
	}
	require.LessOrEqual(t, n, 1, "cycle %d: more than one operation taken", c)
	// The CQE sources take turns while both wait.
	for i := range b.src {
		if srcFire[i] {
			if b.srcOn[1-i] {
				require.NotEqual(t, b.srcLast, i, "cycle %d: CQE source %d taken twice while %d waited", c, i, 1-i)
				b.srcFair++
			}
			b.srcLast = i
		}
	}

	assert.Equal(t, b.expOverrun[c], d.Get("m_overrun_valid") == 1, "cycle %d: m_overrun_valid", c)
	if d.Get("m_overrun_valid") == 1 {
		b.overruns++
	}
	delete(b.expOverrun, c)

	// Host side of the DMA writes: requests and data are separate channels, matched in order.
	reqValid := d.Get("m_dma_wr_req_valid") == 1
	addr := d.Get("m_dma_wr_req_addr")
	b.hReq.check(t, c, reqValid, reqReady, fmt.Appendf(nil, "%x %d", addr, d.Get("m_dma_wr_req_len")))
	if reqValid && reqReady {
		require.EqualValues(t, regs.CQESize, d.Get("m_dma_wr_req_len"))
		b.reqs = append(b.reqs, addr)
	}
	tvalid := d.Get("m_axis_dma_wr_tvalid") == 1
	data := d.GetBytes("m_axis_dma_wr_tdata")
	last := d.Get("m_axis_dma_wr_tlast") == 1
	b.hData.check(t, c, tvalid, dataReady, append(append([]byte(nil), data...), byte(b2u(last))))
	if tvalid && dataReady {
		if b.beats == 0 {
			b.firstBeat = c
		}
		b.beats++
		b.lastBt = c
		require.EqualValues(t, 0xFF, d.Get("m_axis_dma_wr_tkeep"))
		b.cur = append(b.cur, data...)
		require.Equal(t, len(b.cur) == regs.CQESize, last, "cycle %d: tlast on beat %d", c, len(b.cur)/8)
		if last {
			b.bursts = append(b.bursts, b.cur)
			b.cur = nil
		}
	}
	for len(b.reqs) > 0 && len(b.bursts) > 0 {
		b.hostWrite(b.reqs[0], b.bursts[0])
		b.reqs, b.bursts = b.reqs[1:], b.bursts[1:]
	}
	irqValid := d.Get("m_msix_valid") == 1
	vec := uint16(d.Get("m_msix_vector"))
	b.hIRQ.check(t, c, irqValid, irqReady, []byte{byte(vec), byte(vec >> 8)})
	if irqValid && irqReady {
		k := len(b.irqs)
		require.Less(t, k, len(b.expIRQ), "cycle %d: unexpected MSI-X vector %#x", c, vec)
		require.Equal(t, b.expIRQ[k].vector, vec, "cycle %d: MSI-X %d", c, k)
		require.GreaterOrEqual(t, b.writesDone, b.expIRQ[k].after, "cycle %d: MSI-X %d before its CQE was written", c, k)
		b.irqs = append(b.irqs, vec)
	}

	d.Tick()

	if loadFire {
		b.takeLoad(b.loads[0])
		b.loads = b.loads[1:]
	}
	if dbFire {
		b.takeDoorbell(b.dbs[0])
		b.dbs, b.dbOn = b.dbs[1:], false
	}
	for i := range b.src {
		if srcFire[i] {
			b.takeCQE(b.src[i][0], c)
			b.src[i], b.srcOn[i] = b.src[i][1:], false
		}
	}
}

func (b *cqBench) inputsIdle() bool {
	return len(b.src[0]) == 0 && len(b.src[1]) == 0 && len(b.dbs) == 0 && len(b.loads) == 0
}

// settle runs until every input is taken and every expected write, interrupt and overrun is out.
func (b *cqBench) settle(limit int) {
	b.t.Helper()
	for i := 0; i < limit; i++ {
		if b.inputsIdle() && b.writesDone == len(b.expWrites) && len(b.expOverrun) == 0 &&
			(b.msixBlock || len(b.irqs) == len(b.expIRQ)) {
			// A few more cycles: nothing else may come out.
			for j := 0; j < 8; j++ {
				b.cycle()
			}
			return
		}
		b.cycle()
	}
	require.FailNow(b.t, "not settled", "within %d cycles: %d/%d writes, %d/%d MSI-X", limit,
		b.writesDone, len(b.expWrites), len(b.irqs), len(b.expIRQ))
}

func randCQE(rng *rand.Rand, qpn int) *cqeReq {
	return &cqeReq{qpn: qpn, wrID: rng.Uint64(), byteLen: rng.Uint32(),
		opcode:    uint8([]regs.CQEOpcode{regs.CQEOpcodeSend, regs.CQEOpcodeRecv}[rng.Intn(2)]),
		status:    uint8(rng.Intn(len(regs.CQEStatusValues))),
		wqeIndex:  uint16(rng.Uint32()),
		solicited: rng.Intn(2) == 0}
}

// randBase returns a ring base for QP q just below a 4 GiB boundary, so slot addresses carry
// into the upper word, and distinct per QP.
func randBase(rng *rand.Rand, q int) uint64 {
	hi := uint64(q)<<24 | uint64(rng.Intn(1<<24))
	return hi<<32 | uint64(0xFFFFF000+rng.Intn(0x1000))&^(regs.CQESize-1)
}

// TestCqWriterRandom: random CQEs from both sources over several small CQs, a consumer per CQ at
// its own pace ringing doorbells with and without arm, CQs reloaded while the others run, CQEs to
// CQs in reset, random stalls everywhere. Every write is checked against the reference (address,
// bytes, phase) and again by the consumer finding it by phase; MSI-X and overruns exactly.
func TestCqWriterRandom(t *testing.T) {
	for _, tc := range []struct {
		name                 string
		seed                 int64
		gap, stall, irqStall int
	}{{"streaming", 101, 0, 0, 0}, {"stalls", 202, 30, 30, 30}, {"heavy", 303, 60, 60, 80}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Logf("seed %d", tc.seed)
			rng := rand.New(rand.NewSource(tc.seed))
			b := newCQBench(t, rng)
			b.gap, b.stall, b.msixStall = tc.gap, tc.stall, tc.irqStall
			active := []int{0, 3, 17, 100, 200, 255}
			resetQP := 7 // loaded in reset
			for _, q := range active {
				b.cqs[q].rate = []int{2, 20, 70}[rng.Intn(3)]
				b.loads = append(b.loads, cqLoad{qpn: q, rts: true, base: randBase(rng, q), log: uint(1 + rng.Intn(4)), vector: uint16(rng.Intn(1 << 16))})
			}
			b.loads = append(b.loads, cqLoad{qpn: resetQP, rts: false, base: randBase(rng, resetQP), log: 3, vector: 1})
			reloads, toReset := 0, 0
			const cycles = 40000
			for i := 0; i < cycles; i++ {
				// Producers: CQEs mostly to active CQs, now and then to one in reset or never loaded.
				for s := range b.src {
					if len(b.src[s]) < 2 && rng.Intn(100) < 6 {
						q := active[rng.Intn(len(active))]
						switch rng.Intn(40) {
						case 0:
							q = resetQP
						case 1:
							q = 50 + rng.Intn(40)
						}
						if q == b.quiet {
							continue
						}
						if !b.cqs[q].rts {
							toReset++
						}
						b.src[s] = append(b.src[s], randCQE(rng, q))
					}
				}
				// Doorbells for CQs in reset or never loaded, which must change nothing.
				if rng.Intn(500) == 0 && len(b.dbs) < 4 {
					q := []int{resetQP, 50 + rng.Intn(40)}[rng.Intn(2)]
					b.dbs = append(b.dbs, cqDoorbell{qpn: q, ci: uint16(rng.Intn(1 << 16)), arm: rng.Intn(2) == 0})
				}
				// Consumers pause as a whole now and then, so CQs fill up and overrun.
				if (i/3000)%3 != 2 {
					b.consume()
				}
				// Now and then a CQ is drained of traffic and reloaded with a new ring.
				if b.quiet < 0 && i%5000 == 2500 {
					b.quiet = active[rng.Intn(len(active))]
				}
				if q := b.quiet; q >= 0 && len(b.loads) == 0 && b.cqs[q].inflight == 0 && !b.pending(q) {
					b.loads = append(b.loads, cqLoad{qpn: q, rts: rng.Intn(6) != 0, base: randBase(rng, q),
						log: uint(1 + rng.Intn(4)), vector: uint16(rng.Intn(1 << 16))})
					reloads++
				}
				b.cycle()
			}
			// Drain: producers stop, every consumer catches up.
			for q := range b.cqs {
				b.cqs[q].rate = 100
			}
			for i := 0; i < 20000 && !(len(b.src[0]) == 0 && len(b.src[1]) == 0 && b.allConsumed()); i++ {
				b.consume()
				b.cycle()
			}
			b.settle(1000)
			require.True(t, b.allConsumed(), "every written CQE found by the consumer")
			assert.Equal(t, len(b.expIRQ), len(b.irqs), "MSI-X count")
			assert.Empty(t, b.expOverrun, "overrun pulses missing")
			assert.LessOrEqual(t, b.maxNotRd, cqNotReady, "ctx_load_ready low for too long")

			// The run covered what it is meant to.
			laps := 0
			for q := range b.cqs {
				laps = max(laps, b.cqs[q].laps)
			}
			t.Logf("%d CQEs written, %d dropped (%d to CQs in reset), %d MSI-X, %d reloads, up to %d laps, %d cycles",
				b.writesDone, b.overruns, toReset, len(b.irqs), reloads, laps, b.d.Cycles())
			assert.Greater(t, b.writesDone, 1000)
			assert.Greater(t, b.overruns, toReset, "overruns of full CQs")
			assert.Greater(t, toReset, 10)
			assert.Greater(t, len(b.irqs), 50)
			assert.GreaterOrEqual(t, reloads, 5)
			assert.Greater(t, laps, 10)
			assert.Greater(t, b.srcFair, 50, "turns checked")
		})
	}
}

// pending says whether an input for QP q is queued.
func (b *cqBench) pending(q int) bool {
	for s := range b.src {
		for _, r := range b.src[s] {
			if r.qpn == q {
				return true
			}
		}
	}
	for _, db := range b.dbs {
		if db.qpn == q {
			return true
		}
	}
	return false
}

func (b *cqBench) allConsumed() bool {
	for q := range b.cqs {
		if len(b.cqs[q].entries) > 0 {
			return false
		}
	}
	return true
}

// TestCqWriterInterrupts walks the arming rules one step at a time, with counts written out by
// hand (not only through the reference), and MSI-X held off long enough to fill every queue.
func TestCqWriterInterrupts(t *testing.T) {
	seed := int64(55)
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewSource(seed))
	b := newCQBench(t, rng)
	const q, vec = 5, 0x21
	load := func(rts bool) {
		b.loads = append(b.loads, cqLoad{qpn: q, rts: rts, base: 0x1_0000_0000, log: 2, vector: vec})
		b.settle(100)
	}
	cqe := func(src, n int) {
		for i := 0; i < n; i++ {
			b.src[src] = append(b.src[src], randCQE(rng, q))
		}
		b.settle(200)
	}
	db := func(ci uint16, arm bool) {
		b.dbs = append(b.dbs, cqDoorbell{qpn: q, ci: ci, arm: arm})
		b.settle(100)
	}
	step := func(what string, irqs, writes, overruns int) {
		t.Helper()
		require.Len(t, b.irqs, irqs, "%s: MSI-X so far", what)
		require.Equal(t, writes, b.writesDone, "%s: CQEs written so far", what)
		require.Equal(t, overruns, b.overruns, "%s: overruns so far", what)
	}

	cqe(0, 1)
	step("CQE to a CQ never loaded", 0, 0, 1)
	load(true)
	cqe(0, 1)
	step("CQE to an unarmed CQ", 0, 1, 1)
	db(1, true)
	step("arm with nothing pending", 0, 1, 1)
	cqe(1, 1)
	step("CQE to the armed CQ", 1, 2, 1)
	cqe(0, 1)
	step("a second CQE without re-arming", 1, 3, 1)
	db(1, true)
	step("arm with entries pending", 2, 3, 1)
	cqe(0, 1)
	step("CQE after the immediate interrupt", 2, 4, 1)
	db(4, true)
	step("arm, all consumed", 2, 4, 1)
	load(true)
	cqe(1, 1)
	step("reload disarms and resets pi", 2, 5, 1)
	assert.Equal(t, uint8(1), regs.CQE(b.mem[0x1_0000_0000]).FlagsPhase(), "first lap after reload, slot 0")
	cqe(0, 3)
	step("ring full (4 entries)", 2, 8, 1)
	cqe(1, 2)
	step("CQEs to a full CQ dropped", 2, 8, 3)
	db(2, false)
	cqe(0, 2)
	step("two slots freed, second lap", 2, 10, 3)
	assert.Equal(t, uint8(0), regs.CQE(b.mem[0x1_0000_0000]).FlagsPhase(), "second lap, slot 0")
	assert.Equal(t, uint8(0), regs.CQE(b.mem[0x1_0000_0020]).FlagsPhase(), "second lap, slot 1")
	assert.Equal(t, uint8(1), regs.CQE(b.mem[0x1_0000_0040]).FlagsPhase(), "first lap, slot 2")
	load(false)
	cqe(0, 1)
	db(3, true)
	step("CQ in reset: CQE dropped, doorbell ignored", 2, 10, 4)
	b.dbs = append(b.dbs, cqDoorbell{qpn: 9, ci: 1, arm: true})
	b.settle(100)
	step("doorbell to a CQ never loaded ignored", 2, 10, 4)

	// MSI-X held off: 24 interrupts (arm with entries pending) fill the MSI-X FIFO, then the
	// output queue, then hold the doorbells; none may be lost once MSI-X flows again.
	load(true)
	cqe(0, 1)
	b.msixBlock = true
	for i := 0; i < 24; i++ {
		b.dbs = append(b.dbs, cqDoorbell{qpn: q, ci: 0, arm: true})
	}
	for i := 0; i < 300; i++ {
		b.cycle()
	}
	assert.NotEmpty(t, b.dbs, "doorbells held while MSI-X is blocked")
	assert.EqualValues(t, 1, b.d.Get("m_msix_valid"))
	b.msixBlock = false
	b.settle(500)
	step("MSI-X backpressure", 26, 11, 4)
}

// TestCqWriterBackToBack: with the host always ready, CQEs from both sources stream out one per
// 4 beats with no idle cycle between them.
func TestCqWriterBackToBack(t *testing.T) {
	seed := int64(9)
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewSource(seed))
	b := newCQBench(t, rng)
	b.loads = append(b.loads, cqLoad{qpn: 1, rts: true, base: 0x4000, log: 10, vector: 3},
		cqLoad{qpn: 2, rts: true, base: 0x10000, log: 10, vector: 4})
	b.settle(100)
	const n = 200
	for i := 0; i < n/2; i++ {
		b.src[0] = append(b.src[0], randCQE(rng, 1))
		b.src[1] = append(b.src[1], randCQE(rng, 2))
	}
	b.beats = 0
	b.settle(10 * n)
	require.Equal(t, n, b.writesDone)
	assert.Equal(t, n*cqBeats, b.beats)
	assert.EqualValues(t, n*cqBeats, b.lastBt-b.firstBeat+1, "cycles from the first beat to the last")
	assert.Equal(t, n-1, b.srcFair, "sources alternate")
}

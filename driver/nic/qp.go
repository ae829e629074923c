package nic

import (
	"context"
	"fmt"
	"math/bits"
	"net"
	"net/netip"

	"github.com/sanoffload/san/driver"
	"github.com/sanoffload/san/driver/regs"
)

// QPConfig sizes a connection's rings. Zero values take the defaults.
type QPConfig struct {
	// SQEntries and RQEntries are the send and receive queue sizes, powers of two from 2 to
	// 32768; 0 means 64.
	SQEntries, RQEntries int
	// CQEntries is the completion queue size, a power of two at least SQEntries + RQEntries
	// (so the CQ can never overrun); 0 means that sum rounded up.
	CQEntries int
	// Vector is the MSI-X vector the CQ raises when armed.
	Vector int
}

// SendWR is a send work request: Length bytes at IOVA Addr become one message.
type SendWR struct {
	WRID      uint64
	Addr      uint64
	Length    uint32
	Signaled  bool // write a completion for it (errors always complete)
	Solicited bool // ask the receiver's CQ to raise its event
}

// RecvWR posts a receive buffer of Length bytes at IOVA Addr for one message.
type RecvWR struct {
	WRID   uint64
	Addr   uint64
	Length uint32
}

// Completion is one CQE, decoded. A send completion's WRID and ByteLen are the driver's record
// of what was posted in that ring slot: the NIC reports only the WQE's index.
type Completion struct {
	WRID      uint64
	ByteLen   uint32
	QPN       uint32
	Opcode    regs.CQEOpcode
	Status    regs.CQEStatus
	Solicited bool
	WQEIndex  uint16 // free-running index of the completed WQE in its ring
}

// Transport holds a connection's reliable-transport settings, in the IB encodings a CM REQ/REP
// carries.
type Transport struct {
	// RetryCount is how many times the NIC goes back after a retransmit timeout or a PSN
	// sequence NAK without progress in between (0..7); one more failure completes the oldest
	// send with RETRY_EXCEEDED and puts the connection in error.
	RetryCount uint8
	// RNRRetry is how many RNR NAKs in a row are waited out (0..6), or 7 for no limit.
	RNRRetry uint8
	// Timeout is the local ACK timeout 4.096 us x 2^Timeout at the NIC's clock, 1..31; 0
	// disables the timer (a lost frame is then only recovered by a NAK).
	Timeout uint8
	// MinRNRTimer is the RNR timer code (IB table, 1 = 0.01 ms .. 31 = 491.52 ms, 0 = 655.36 ms)
	// this side's RNR NAKs ask the peer to wait.
	MinRNRTimer uint8
}

// DefaultTransport is what rdma_cm asks for (7 retries, unlimited RNR retries, a 67 ms ACK
// timeout) with a 0.64 ms RNR timer.
var DefaultTransport = Transport{RetryCount: 7, RNRRetry: 7, Timeout: 14, MinRNRTimer: 12}

func (t Transport) valid() bool {
	return t.RetryCount <= 7 && t.RNRRetry <= 7 && t.Timeout <= 31 && t.MinRNRTimer <= 31
}

func (t Transport) reg() uint32 {
	return uint32(t.RetryCount)<<regs.QpcTransportRetryCntShift | uint32(t.RNRRetry)<<regs.QpcTransportRNRRetryShift |
		uint32(t.Timeout)<<regs.QpcTransportTimeoutShift | uint32(t.MinRNRTimer)<<regs.QpcTransportMinRNRTimerShift
}

// Peer is the other end of a connection, for LoadForTest.
type Peer struct {
	QPN        uint32 // the peer's QP number on the wire (its QP.QPN)
	MAC        net.HardwareAddr
	IP         netip.Addr
	UDPSource  uint16 // UDP source port of this connection's frames
	SendPSN    uint32 // PSN of the first packet this side sends
	ReceivePSN uint32 // PSN this side expects first (the peer's SendPSN)
	Transport  Transport
}

// State is a connection's transport state as the NIC reports it.
type State struct {
	RTS   bool // loaded ready to send and receive
	Error bool // retries exhausted or the peer NAKed an error: it sends nothing more
}

// ring is a power-of-two ring of fixed-size entries in DMA memory with free-running 16-bit
// indices, as the NIC counts them.
type ring struct {
	buf   *driver.DMABuffer
	log   uint
	entry int
}

func (r *ring) size() int { return 1 << r.log }
func (r *ring) slot(idx uint16) []byte {
	i := int(idx) & (r.size() - 1)
	return r.buf.Bytes[i*r.entry : (i+1)*r.entry]
}
func (r *ring) full(pi, ci uint16) bool { return int(pi-ci) >= r.size() }
func (r *ring) lap(idx uint16) uint16   { return idx >> r.log & 1 }
func (r *ring) iova() uint64            { return r.buf.IOVA }

// QP is one connection (queue pair) with its send, receive and completion queues.
type QP struct {
	nic *NIC
	num int
	cfg QPConfig

	sq, rq, cq ring
	sqPI, sqCI uint16
	rqPI, rqCI uint16
	cqCI       uint16
	sends      []postedSend // per SQ slot: what was posted there
	recvs      []uint64     // per RQ slot: the WRID posted there
	loaded     bool
}

// postedSend is the driver's record of a send WQE, for its completion.
type postedSend struct {
	wrID   uint64
	length uint32
}

func ringLog(n, def int) (uint, error) {
	if n == 0 {
		n = def
	}
	if n < 2 || n > 1<<15 || n&(n-1) != 0 {
		return 0, fmt.Errorf("%w: ring of %d entries: must be a power of two from 2 to 32768", ErrInvalid, n)
	}
	return uint(bits.TrailingZeros(uint(n))), nil
}

// CreateQP allocates connection num's rings in DMA memory, for the test-only path: the
// connection carries no traffic until LoadForTest. Connections through the connection manager
// start from NewQP instead, and the NIC picks their numbers.
func (n *NIC) CreateQP(num int, cfg QPConfig) (*QP, error) {
	if num < 0 || num >= int(n.id.NQP) {
		return nil, fmt.Errorf("create qp %d: %w: connections are 0..%d", num, ErrInvalid, n.id.NQP-1)
	}
	n.mu.Lock()
	busy := n.qps[num] != nil
	n.mu.Unlock()
	if busy {
		return nil, fmt.Errorf("create qp %d: %w", num, ErrBusy)
	}
	q, err := n.NewQP(cfg)
	if err != nil {
		return nil, fmt.Errorf("create qp %d: %w", num, err)
	}
	n.attach(q, num)
	return q, nil
}

// NewQP allocates a connection's rings in DMA memory, without a number: the connection manager
// gives it one (CM.Connect, CM.Accept).
func (n *NIC) NewQP(cfg QPConfig) (*QP, error) {
	if cfg.Vector < 0 || cfg.Vector >= int(n.id.NMSIX) {
		return nil, fmt.Errorf("new qp: %w: vector %d of %d", ErrInvalid, cfg.Vector, n.id.NMSIX)
	}
	sqLog, err := ringLog(cfg.SQEntries, 64)
	if err != nil {
		return nil, fmt.Errorf("new qp: send queue: %w", err)
	}
	rqLog, err := ringLog(cfg.RQEntries, 64)
	if err != nil {
		return nil, fmt.Errorf("new qp: receive queue: %w", err)
	}
	need := 1<<sqLog + 1<<rqLog
	if cfg.CQEntries == 0 {
		cfg.CQEntries = 1 << bits.Len(uint(need-1))
	}
	cqLog, err := ringLog(cfg.CQEntries, 0)
	if err != nil || cfg.CQEntries < need {
		return nil, fmt.Errorf("new qp: completion queue of %d: %w: need a power of two >= %d", cfg.CQEntries, ErrInvalid, need)
	}
	q := &QP{nic: n, num: -1, cfg: cfg, sends: make([]postedSend, 1<<sqLog), recvs: make([]uint64, 1<<rqLog)}
	for _, r := range []struct {
		r     *ring
		log   uint
		entry int
	}{
		{&q.sq, sqLog, regs.SendWQESize},
		{&q.rq, rqLog, regs.RecvWQESize},
		{&q.cq, cqLog, regs.CQESize},
	} {
		buf, err := n.dev.AllocDMA(r.entry << r.log)
		if err != nil {
			q.free()
			return nil, fmt.Errorf("new qp: %w", err)
		}
		*r.r = ring{buf: buf, log: r.log, entry: r.entry}
	}
	return q, nil
}

// attach gives q its connection number.
func (n *NIC) attach(q *QP, num int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	q.num = num
	n.qps[num] = q
}

func (q *QP) free() {
	for _, r := range []*ring{&q.sq, &q.rq, &q.cq} {
		if r.buf != nil {
			_ = q.nic.dev.FreeDMA(r.buf)
			r.buf = nil
		}
	}
}

// Num is the connection number: the index of its context in the NIC, its doorbells and the QPN
// field of its completions. It is -1 for a connection the connection manager has not numbered yet.
func (q *QP) Num() int { return q.num }

// QPN is the connection's QP number on the wire, what a peer sends to and what the connection
// manager announces: the NIC's connection count plus Num (QP numbers 0 and 1 are the subnet's
// and the connection manager's, and no connection takes them). It is 0 while Num is -1.
func (q *QP) QPN() uint32 {
	if q.num < 0 {
		return 0
	}
	return q.nic.id.NQP + uint32(q.num)
}

// Vector is the MSI-X vector of the connection's CQ.
func (q *QP) Vector() int { return q.cfg.Vector }

// LoadForTest loads the connection's context into the NIC through the QPC registers and makes
// it ready to send and receive, with peer as the other end. This is the documented test-only
// path, as the out-of-band setups of FPGA RDMA stacks do; the connection manager replaces it for
// real connections. Loading resets the NIC's ring indices, so it is only legal on a fresh or
// drained connection; the driver's indices restart too.
func (q *QP) LoadForTest(p Peer) error {
	if len(p.MAC) != 6 || !p.IP.Is4() || p.QPN >= 1<<24 || p.SendPSN >= 1<<24 || p.ReceivePSN >= 1<<24 ||
		!p.Transport.valid() {
		return fmt.Errorf("load qp %d: %w: peer %+v", q.num, ErrInvalid, p)
	}
	ip := p.IP.As4()
	if err := q.load(true, []reg{
		{regs.QpcDestQPN, p.QPN},
		{regs.QpcDmacHi, macHi(p.MAC)},
		{regs.QpcDmacLo, macLo(p.MAC)},
		{regs.QpcDip, be32(ip[:])},
		{regs.QpcUDPSport, uint32(p.UDPSource)},
		{regs.QpcSQPSN, p.SendPSN},
		{regs.QpcRQPSN, p.ReceivePSN},
		{regs.QpcTransport, p.Transport.reg()},
	}); err != nil {
		return err
	}
	q.sqPI, q.sqCI, q.rqPI, q.rqCI, q.cqCI = 0, 0, 0, 0, 0
	clear(q.cq.buf.Bytes)
	q.loaded = true
	return nil
}

type reg struct {
	off uint64
	v   uint32
}

// load writes the staging registers and issues LOAD, then waits for the engines to take it.
func (q *QP) load(rts bool, peer []reg) error {
	n := q.nic
	state := uint32(0)
	if rts {
		state = 1 << regs.QpcStateRTSShift
	}
	all := append([]reg{
		{regs.QpcQPN, uint32(q.num)},
		{regs.QpcState, state},
		{regs.QpcSQBaseLo, uint32(q.sq.iova())},
		{regs.QpcSQBaseHi, uint32(q.sq.iova() >> 32)},
		{regs.QpcRQBaseLo, uint32(q.rq.iova())},
		{regs.QpcRQBaseHi, uint32(q.rq.iova() >> 32)},
		{regs.QpcCQBaseLo, uint32(q.cq.iova())},
		{regs.QpcCQBaseHi, uint32(q.cq.iova() >> 32)},
		{regs.QpcLogSizes, uint32(q.sq.log)<<regs.QpcLogSizesSQShift | uint32(q.rq.log)<<regs.QpcLogSizesRQShift |
			uint32(q.cq.log)<<regs.QpcLogSizesCQShift},
		{regs.QpcCQVector, uint32(q.cfg.Vector)},
	}, peer...)
	// One loader at a time: the staging registers are shared by all connections.
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, r := range all {
		if err := n.dev.Write32(0, r.off, r.v); err != nil {
			return fmt.Errorf("load qp %d: %w", q.num, err)
		}
	}
	return q.command("load", regs.QpcCmdLoadShift)
}

// command issues a QPC command and waits for the NIC to finish it; the caller holds n.mu.
func (q *QP) command(what string, shift uint) error {
	n := q.nic
	if err := n.dev.Write32(0, regs.QpcCmd, 1<<shift); err != nil {
		return fmt.Errorf("%s qp %d: %w", what, q.num, err)
	}
	for i := 0; i < loadPolls; i++ {
		st, err := n.dev.Read32(0, regs.QpcStatus)
		if err != nil {
			return fmt.Errorf("%s qp %d: %w", what, q.num, err)
		}
		if st>>regs.QpcStatusErrorShift&1 != 0 {
			return fmt.Errorf("%s qp %d: %w: the NIC refused the command", what, q.num, ErrLoad)
		}
		if st>>regs.QpcStatusBusyShift&1 == 0 {
			return nil
		}
	}
	return fmt.Errorf("%s qp %d: %w: the engines did not take it in %d polls", what, q.num, ErrLoad, loadPolls)
}

// State asks the NIC for the connection's transport state.
func (q *QP) State() (State, error) {
	n := q.nic
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.dev.Write32(0, regs.QpcQPN, uint32(q.num)); err != nil {
		return State{}, fmt.Errorf("query qp %d: %w", q.num, err)
	}
	if err := q.command("query", regs.QpcCmdQueryShift); err != nil {
		return State{}, err
	}
	v, err := n.dev.Read32(0, regs.QpcQstate)
	if err != nil {
		return State{}, fmt.Errorf("query qp %d: %w", q.num, err)
	}
	return State{RTS: v>>regs.QpcQstateRTSShift&1 != 0, Error: v>>regs.QpcQstateErrorShift&1 != 0}, nil
}

// PostSend queues send work requests and rings the doorbell once. Either all are queued or,
// with ErrQueueFull or ErrInvalid, none.
func (q *QP) PostSend(wrs ...SendWR) error {
	if out := int(q.sqPI - q.sqCI); out+len(wrs) > q.sq.size() {
		return fmt.Errorf("post send on qp %d: %w: %d outstanding of %d", q.num, ErrQueueFull, out, q.sq.size())
	}
	for _, wr := range wrs {
		if wr.Length >= 1<<31 {
			return fmt.Errorf("post send on qp %d: %w: length %d", q.num, ErrInvalid, wr.Length)
		}
	}
	for _, wr := range wrs {
		w := regs.SendWQE(q.sq.slot(q.sqPI))
		clear(w)
		w.SetWrID(wr.WRID)
		w.SetAddr(wr.Addr)
		w.SetLength(wr.Length)
		w.SetOpcode(uint8(regs.WQEOpcodeSend))
		w.SetFlagsSignaled(b2u8(wr.Signaled))
		w.SetFlagsSolicited(b2u8(wr.Solicited))
		q.sends[int(q.sqPI)&(q.sq.size()-1)] = postedSend{wrID: wr.WRID, length: wr.Length}
		q.sqPI++
	}
	return q.doorbell(regs.DoorbellSQPI, uint32(q.sqPI))
}

// PostRecv queues receive buffers and rings the doorbell once; all or none.
func (q *QP) PostRecv(wrs ...RecvWR) error {
	if q.rq.full(q.rqPI+uint16(len(wrs))-1, q.rqCI) || len(wrs) > q.rq.size() {
		return fmt.Errorf("post recv on qp %d: %w", q.num, ErrQueueFull)
	}
	for _, wr := range wrs {
		w := regs.RecvWQE(q.rq.slot(q.rqPI))
		clear(w)
		w.SetWrID(wr.WRID)
		w.SetAddr(wr.Addr)
		w.SetLength(wr.Length)
		q.recvs[int(q.rqPI)&(q.rq.size()-1)] = wr.WRID
		q.rqPI++
	}
	return q.doorbell(regs.DoorbellRQPI, uint32(q.rqPI))
}

func (q *QP) doorbell(reg uint64, v uint32) error {
	off := regs.DoorbellBase + uint64(q.num)*regs.DoorbellStride + reg
	if err := q.nic.dev.Write32(0, off, v); err != nil {
		return fmt.Errorf("doorbell qp %d: %w", q.num, err)
	}
	return nil
}

// Poll takes up to max completions from the CQ without blocking, in the order the NIC wrote
// them, and tells the NIC how far it has read. The driver owns a CQE once its phase bit
// matches the lap the consumer index is on: 1 on the first lap, 0 on the second, and so on.
func (q *QP) Poll(max int) ([]Completion, error) {
	var out []Completion
	for len(out) < max {
		e := regs.CQE(q.cq.slot(q.cqCI))
		if uint16(e.FlagsPhase()) == q.cq.lap(q.cqCI) {
			break // still the previous lap's entry: nothing new
		}
		c := Completion{
			WRID: e.WrID(), ByteLen: e.ByteLen(), QPN: e.QPN(),
			Opcode: regs.CQEOpcode(e.Opcode()), Status: regs.CQEStatus(e.Status()),
			Solicited: e.FlagsSolicited() != 0, WQEIndex: e.WQEIndex(),
		}
		q.cqCI++
		if err := q.retire(&c); err != nil {
			return out, err
		}
		out = append(out, c)
	}
	if len(out) > 0 {
		if err := q.doorbell(regs.DoorbellCQCI, uint32(q.cqCI)); err != nil {
			return out, err
		}
	}
	return out, nil
}

// retire frees the ring entries a completion accounts for: a receive frees one (the oldest); a
// send frees its own entry and the unsignaled ones posted before it, which completed silently,
// and gets its WRID and length from the driver's record of the slot. Both take the WRID from
// the driver's record, so a FLUSHED completion (which the NIC makes without reading the WQE:
// a stopped connection's, one per posted WQE, signaled or not) carries it as any other does.
func (q *QP) retire(c *Completion) error {
	switch c.Opcode {
	case regs.CQEOpcodeRecv:
		if q.rqCI == q.rqPI || c.WQEIndex != q.rqCI {
			return fmt.Errorf("qp %d: %w: receive completion for WQE %d, expected %d (%d posted)",
				q.num, ErrCompletion, c.WQEIndex, q.rqCI, q.rqPI-q.rqCI)
		}
		c.WRID = q.recvs[int(q.rqCI)&(q.rq.size()-1)]
		q.rqCI++
	case regs.CQEOpcodeSend:
		if c.WQEIndex-q.sqCI >= q.sqPI-q.sqCI {
			return fmt.Errorf("qp %d: %w: send completion for WQE %d, outstanding %d..%d",
				q.num, ErrCompletion, c.WQEIndex, q.sqCI, q.sqPI-1)
		}
		p := q.sends[int(c.WQEIndex)&(q.sq.size()-1)]
		c.WRID, c.ByteLen = p.wrID, p.length
		q.sqCI = c.WQEIndex + 1
	default:
		return fmt.Errorf("qp %d: %w: opcode %v", q.num, ErrCompletion, c.Opcode)
	}
	return nil
}

// Arm asks for the CQ's interrupt at its next completion; if completions are already waiting
// the NIC raises it at once, so a wait after Arm cannot miss one.
func (q *QP) Arm() error {
	return q.doorbell(regs.DoorbellCQCI, uint32(q.cqCI)|1<<31)
}

// Wait arms the CQ and blocks until its interrupt fires or ctx ends.
func (q *QP) Wait(ctx context.Context) error {
	if err := q.Arm(); err != nil {
		return err
	}
	if _, err := q.nic.dev.WaitInterrupt(ctx, q.cfg.Vector); err != nil {
		return fmt.Errorf("wait on qp %d: %w", q.num, err)
	}
	return nil
}

// Outstanding reports the posted sends and receives not yet completed.
func (q *QP) Outstanding() (sends, recvs int) { return int(q.sqPI - q.sqCI), int(q.rqPI - q.rqCI) }

// Close takes the connection out of service (its context is loaded in the reset state, so the
// NIC drops its traffic and ignores its doorbells) and frees its rings.
func (q *QP) Close() error {
	n := q.nic
	var err error
	if q.num >= 0 {
		err = q.load(false, nil)
		n.mu.Lock()
		if n.qps[q.num] == q {
			delete(n.qps, q.num)
		}
		n.mu.Unlock()
	}
	q.free()
	return err
}

func b2u8(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

// CQEntry is the memory of slot i of the CQ, for tools that watch the NIC write it (a benchmark
// timing a completion to the cycle); Poll is the way to consume completions.
func (q *QP) CQEntry(i int) []byte { return q.cq.slot(uint16(i)) }

// NIC is the driver of the NIC the connection belongs to.
func (q *QP) NIC() *NIC { return q.nic }

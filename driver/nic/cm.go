package nic

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"

	"github.com/sanoffload/san/driver"
	"github.com/sanoffload/san/driver/regs"
)

// Private data limits of the CM messages a command sends (IB CM sizes; REQ's is what is left
// after the 36-byte IP header of the rdma_cm convention).
const (
	MaxConnectData    = 56
	MaxAcceptData     = 196
	MaxRejectData     = 148
	MaxDisconnectData = 220
	MaxDeferData      = 222 // an MRA's
)

// cmPolls bounds how many register reads a command waits for its result.
const cmPolls = 20000

// ConnID names a connection to the connection manager: {generation, connection number}, the
// local communication ID of its CM messages. A stale ID (the number reused since) is refused.
type ConnID uint32

// Num is the connection (QP) number.
func (c ConnID) Num() int { return int(c & 0xFFFF) }

func (c ConnID) String() string { return fmt.Sprintf("conn %d/%d", c.Num(), uint32(c)>>16) }

// CMError is a command the NIC refused, with its status.
type CMError struct {
	Op     regs.CMOp
	Status regs.CMStatus
}

func (e *CMError) Error() string { return fmt.Sprintf("cm %v: %v", e.Op, e.Status) }

// ErrCMTimeout means the NIC did not complete a command (a hung engine, never expected).
var ErrCMTimeout = errors.New("connection manager did not answer")

// CMConfig sizes the rings and sets the protocol timing (IB encodings: a time code t means
// 4.096 us x 2^t; the defaults suit real links, simulations use small codes).
type CMConfig struct {
	Commands        int // command ring entries, a power of two (default 16)
	Events          int // event ring entries, a power of two (default 256)
	Vector          int // MSI-X vector of the event ring
	ResponseTimeout int // time code, 0..31 (default 20: about 4.3 s, as rdma_cm)
	MaxRetries      int // resends before giving up, 0..15 (default 15)
	DeferTimeout    int // time code sent in MRAs (default 24)
	// TimeWait is how long a closed connection answers its peer's repeats before its number is
	// free again, a time code (default ResponseTimeout + 4: sixteen response timeouts, longer
	// than any peer's retries).
	TimeWait int
}

// Event is a connection-manager event.
type Event struct {
	Type     regs.CMEvent
	Conn     ConnID
	Port     uint16           // the connection's local port
	PeerIP   netip.Addr       // the peer's address
	PeerPort uint16           // REQUEST: the caller's source port
	Reason   regs.CMRejReason // REJECTED, TIMED_OUT
	Status   regs.CQEStatus   // CONN_ERROR: how the transport failed (the failed send's status)
	PeerQPN  uint32
	Data     []byte // the message's private data (IB CM sizes are fixed; see regs.EQE)
}

// ConnectParams are what a CONNECT sends.
type ConnectParams struct {
	Dst       netip.Addr // the peer; its MAC comes from the NIC's resolver (OpenResolver)
	Port      uint16     // destination port (the service ID)
	SrcPort   uint16     // the caller's port, carried in the IP header
	UDPSource uint16     // UDP source port of the connection's frames
	StartPSN  uint32     // first PSN this side sends
	Transport Transport
	Data      []byte // at most MaxConnectData bytes
}

// AcceptParams are what an ACCEPT sends.
type AcceptParams struct {
	UDPSource uint16
	StartPSN  uint32
	Transport Transport
	Data      []byte // at most MaxAcceptData bytes
}

// CM is the host side of the NIC's connection manager: the command ring and the event ring.
// Its methods are safe for concurrent use.
type CM struct {
	nic *NIC
	cfg CMConfig

	mu    sync.Mutex // guards the command ring
	cmdq  ring
	cmdPI uint16

	emu  sync.Mutex // guards the event ring
	eq   ring
	eqCI uint16
}

func timeCode(v, def int, what string) (int, error) {
	if v == 0 {
		v = def
	}
	if v < 0 || v > 31 {
		return 0, fmt.Errorf("%w: %s code %d: must be 0..31", ErrInvalid, what, v)
	}
	return v, nil
}

// OpenCM allocates the rings, programs the connection manager and enables it. One CM per NIC.
func (n *NIC) OpenCM(cfg CMConfig) (*CM, error) {
	cl, err := ringLog(cfg.Commands, 16)
	if err != nil {
		return nil, fmt.Errorf("open cm: command ring: %w", err)
	}
	el, err := ringLog(cfg.Events, 256)
	if err != nil {
		return nil, fmt.Errorf("open cm: event ring: %w", err)
	}
	if cfg.Vector < 0 || cfg.Vector >= int(n.id.NMSIX) {
		return nil, fmt.Errorf("open cm: %w: vector %d of %d", ErrInvalid, cfg.Vector, n.id.NMSIX)
	}
	if cfg.ResponseTimeout, err = timeCode(cfg.ResponseTimeout, 20, "response timeout"); err != nil {
		return nil, fmt.Errorf("open cm: %w", err)
	}
	if cfg.DeferTimeout, err = timeCode(cfg.DeferTimeout, 24, "defer timeout"); err != nil {
		return nil, fmt.Errorf("open cm: %w", err)
	}
	if cfg.TimeWait, err = timeCode(cfg.TimeWait, min(cfg.ResponseTimeout+4, 31), "time wait"); err != nil {
		return nil, fmt.Errorf("open cm: %w", err)
	}
	if cfg.MaxRetries == 0 {
		cfg.MaxRetries = 15
	}
	if cfg.MaxRetries < 0 || cfg.MaxRetries > 15 {
		return nil, fmt.Errorf("open cm: %w: max retries %d: must be 0..15", ErrInvalid, cfg.MaxRetries)
	}
	c := &CM{nic: n, cfg: cfg}
	cb, err := n.dev.AllocDMA(regs.CMCommandSize << cl)
	if err != nil {
		return nil, fmt.Errorf("open cm: %w", err)
	}
	eb, err := n.dev.AllocDMA(regs.EQESize << el)
	if err != nil {
		_ = n.dev.FreeDMA(cb)
		return nil, fmt.Errorf("open cm: %w", err)
	}
	c.cmdq = ring{buf: cb, log: cl, entry: regs.CMCommandSize}
	c.eq = ring{buf: eb, log: el, entry: regs.EQESize}
	for _, w := range []struct {
		off uint64
		v   uint32
	}{
		{regs.CMControl, 0},
		{regs.CMCmdqBaseLo, uint32(cb.IOVA)},
		{regs.CMCmdqBaseHi, uint32(cb.IOVA >> 32)},
		{regs.CMEQBaseLo, uint32(eb.IOVA)},
		{regs.CMEQBaseHi, uint32(eb.IOVA >> 32)},
		{regs.CMLogSizes, uint32(cl)<<regs.CMLogSizesCmdqShift | uint32(el)<<regs.CMLogSizesEQShift},
		{regs.CMEQVector, uint32(cfg.Vector)},
		{regs.CMTiming, uint32(cfg.ResponseTimeout)<<regs.CMTimingResponseTimeoutShift |
			uint32(cfg.MaxRetries)<<regs.CMTimingMaxRetriesShift | uint32(cfg.DeferTimeout)<<regs.CMTimingDeferTimeoutShift |
			uint32(cfg.TimeWait)<<regs.CMTimingTimewaitShift},
		{regs.CMControl, 1 << regs.CMControlEnableShift},
	} {
		if err := n.dev.Write32(0, w.off, w.v); err != nil {
			c.free()
			return nil, fmt.Errorf("open cm: %w", err)
		}
	}
	v, err := n.dev.Read32(0, regs.CMControl)
	if err != nil || v>>regs.CMControlEnableShift&1 == 0 {
		c.free()
		return nil, fmt.Errorf("open cm: %w: the NIC did not enable the connection manager (err %v)", ErrLoad, err)
	}
	return c, nil
}

func (c *CM) free() {
	for _, b := range []*driver.DMABuffer{c.cmdq.buf, c.eq.buf} {
		if b != nil {
			_ = c.nic.dev.FreeDMA(b)
		}
	}
	c.cmdq.buf, c.eq.buf = nil, nil
}

// Close disables the connection manager and frees its rings.
func (c *CM) Close() error {
	err := c.nic.dev.Write32(0, regs.CMControl, 0)
	c.free()
	return err
}

// command posts one command, built by fill, and waits for its result.
func (c *CM) command(op regs.CMOp, data []byte, fill func(regs.CMCommand)) (ConnID, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := regs.CMCommand(c.cmdq.slot(c.cmdPI))
	clear(e)
	e.SetOpcode(uint8(op))
	e.SetPdataLen(uint8(len(data)))
	copy(e.Pdata(), data)
	fill(e)
	c.cmdPI++
	if err := c.nic.dev.Write32(0, regs.CMCmdqPI, uint32(c.cmdPI)); err != nil {
		return 0, fmt.Errorf("cm %v: %w", op, err)
	}
	for i := 0; i < cmPolls; i++ {
		if e.Done() != 0 {
			if st := regs.CMStatus(e.Status()); st != regs.CMStatusOk {
				return 0, &CMError{Op: op, Status: st}
			}
			return ConnID(e.ResultConn()), nil
		}
		// A register read lets a simulated NIC run; on a board it is a cheap wait.
		if _, err := c.nic.dev.Read32(0, regs.CMMADsTx); err != nil {
			return 0, fmt.Errorf("cm %v: %w", op, err)
		}
	}
	return 0, fmt.Errorf("cm %v: %w in %d polls", op, ErrCMTimeout, cmPolls)
}

// Listen accepts connection requests for port, with at most backlog waiting for a decision.
func (c *CM) Listen(port uint16, backlog int) error {
	if backlog < 1 || backlog > 0xFFFF {
		return fmt.Errorf("listen %d: %w: backlog %d", port, ErrInvalid, backlog)
	}
	_, err := c.command(regs.CMOpListen, nil, func(e regs.CMCommand) {
		e.SetPort(port)
		e.SetBacklog(uint16(backlog))
	})
	return err
}

// Unlisten stops accepting requests for port.
func (c *CM) Unlisten(port uint16) error {
	_, err := c.command(regs.CMOpUnlisten, nil, func(e regs.CMCommand) { e.SetPort(port) })
	return err
}

func setRings(e regs.CMCommand, q *QP) {
	e.SetSQBase(q.sq.iova())
	e.SetRQBase(q.rq.iova())
	e.SetCQBase(q.cq.iova())
	e.SetLogSizes(uint32(q.sq.log) | uint32(q.rq.log)<<8 | uint32(q.cq.log)<<16)
	e.SetCQVector(uint16(q.cfg.Vector))
}

// Connect sends a connection request from a new QP (NewQP) to p.Dst:p.Port. It first resolves
// p.Dst to its MAC with the NIC's resolver (a static entry, the cache, or ARP within ctx; an
// address nobody answers for fails with an *UnresolvedError). The NIC picks the connection
// number, which q takes; the outcome arrives as an event (ESTABLISHED, REJECTED or TIMED_OUT).
func (c *CM) Connect(ctx context.Context, q *QP, p ConnectParams) (ConnID, error) {
	if q.num >= 0 || !p.Dst.Is4() || len(p.Data) > MaxConnectData ||
		p.StartPSN >= 1<<24 || !p.Transport.valid() {
		return 0, fmt.Errorf("connect: %w: %s:%d (qp %d, %d data bytes)", ErrInvalid, p.Dst, p.Port, q.num, len(p.Data))
	}
	res := c.nic.Resolver()
	if res == nil {
		return 0, fmt.Errorf("connect %s:%d: %w", p.Dst, p.Port, ErrNoResolver)
	}
	mac, err := res.Resolve(ctx, p.Dst)
	if err != nil {
		return 0, fmt.Errorf("connect %s:%d: %w", p.Dst, p.Port, err)
	}
	a4 := p.Dst.As4()
	id, err := c.command(regs.CMOpConnect, p.Data, func(e regs.CMCommand) {
		e.SetPort(p.Port)
		e.SetConnID(uint32(p.SrcPort))
		e.SetUDPSport(p.UDPSource)
		e.SetDip(be32(a4[:]))
		e.SetStartPSN(p.StartPSN)
		e.SetTransport(p.Transport.reg())
		copy(e.Dmac(), mac)
		setRings(e, q)
	})
	if err != nil {
		return 0, fmt.Errorf("connect %s:%d: %w", p.Dst, p.Port, err)
	}
	c.nic.attach(q, id.Num())
	return id, nil
}

// Accept answers the pending request id with a REP from a new QP (NewQP), which takes the
// request's connection number. The connection is loaded when Accept returns (receives may be
// posted); it is established at the ESTABLISHED event.
func (c *CM) Accept(id ConnID, q *QP, p AcceptParams) error {
	if q.num >= 0 || len(p.Data) > MaxAcceptData || p.StartPSN >= 1<<24 || !p.Transport.valid() {
		return fmt.Errorf("accept %v: %w (qp %d, %d data bytes)", id, ErrInvalid, q.num, len(p.Data))
	}
	if _, err := c.command(regs.CMOpAccept, p.Data, func(e regs.CMCommand) {
		e.SetConnID(uint32(id))
		e.SetUDPSport(p.UDPSource)
		e.SetStartPSN(p.StartPSN)
		e.SetTransport(p.Transport.reg())
		setRings(e, q)
	}); err != nil {
		return fmt.Errorf("accept %v: %w", id, err)
	}
	c.nic.attach(q, id.Num())
	// Under the NIC's lock, as the event ring's ESTABLISHED sets it from the event waiter.
	c.nic.mu.Lock()
	q.loaded = true
	c.nic.mu.Unlock()
	return nil
}

// Reject refuses the pending request id with reason (regs.CMRejReasonConsumerDefined for an
// application's refusal) and data.
func (c *CM) Reject(id ConnID, reason regs.CMRejReason, data []byte) error {
	if len(data) > MaxRejectData {
		return fmt.Errorf("reject %v: %w: %d data bytes", id, ErrInvalid, len(data))
	}
	_, err := c.command(regs.CMOpReject, data, func(e regs.CMCommand) {
		e.SetConnID(uint32(id))
		e.SetReason(uint16(reason))
	})
	if err != nil {
		return fmt.Errorf("reject %v: %w", id, err)
	}
	return nil
}

// Defer keeps the pending request id waiting: the NIC sends an MRA with data (at most
// MaxDeferData bytes) so the caller extends its timer, and the caller's host gets a DEFERRED
// event with the data; Accept or Reject it later.
func (c *CM) Defer(id ConnID, data []byte) error {
	if len(data) > MaxDeferData {
		return fmt.Errorf("defer %v: %w: %d data bytes", id, ErrInvalid, len(data))
	}
	if _, err := c.command(regs.CMOpDefer, data, func(e regs.CMCommand) { e.SetConnID(uint32(id)) }); err != nil {
		return fmt.Errorf("defer %v: %w", id, err)
	}
	return nil
}

// Disconnect stops connection id (its QP stops at once) and sends a DREQ with data; the
// DISCONNECTED event follows.
func (c *CM) Disconnect(id ConnID, data []byte) error {
	if len(data) > MaxDisconnectData {
		return fmt.Errorf("disconnect %v: %w: %d data bytes", id, ErrInvalid, len(data))
	}
	if _, err := c.command(regs.CMOpDisconnect, data, func(e regs.CMCommand) { e.SetConnID(uint32(id)) }); err != nil {
		return fmt.Errorf("disconnect %v: %w", id, err)
	}
	return nil
}

// Poll takes the next event without blocking.
func (c *CM) Poll() (Event, bool, error) {
	c.emu.Lock()
	defer c.emu.Unlock()
	e := regs.EQE(c.eq.slot(c.eqCI))
	if uint16(e.FlagsPhase()) == c.eq.lap(c.eqCI) {
		return Event{}, false, nil
	}
	var ip [4]byte
	putBE32(ip[:], e.PeerIP())
	ev := Event{
		Type: regs.CMEvent(e.Type()), Conn: ConnID(e.ConnID()), Port: e.Port(),
		PeerIP: netip.AddrFrom4(ip), PeerPort: e.PeerPort(), Reason: regs.CMRejReason(e.Reason()),
		PeerQPN: e.PeerQPN(), Data: append([]byte(nil), e.Pdata()[:min(int(e.PdataLen()), len(e.Pdata()))]...),
	}
	if ev.Type == regs.CMEventConnError {
		ev.Status, ev.Reason = regs.CQEStatus(e.Reason()), 0
	}
	c.eqCI++
	if err := c.nic.dev.Write32(0, regs.CMEQCI, uint32(c.eqCI)); err != nil {
		return ev, true, fmt.Errorf("cm event: %w", err)
	}
	if ev.Type == regs.CMEventEstablished {
		c.nic.mu.Lock()
		if q := c.nic.qps[ev.Conn.Num()]; q != nil {
			q.loaded = true
		}
		c.nic.mu.Unlock()
	}
	return ev, true, nil
}

// Wait returns the next event, sleeping on the event ring's interrupt while there is none.
func (c *CM) Wait(ctx context.Context) (Event, error) {
	for {
		ev, ok, err := c.Poll()
		if ok || err != nil {
			return ev, err
		}
		c.emu.Lock()
		err = c.nic.dev.Write32(0, regs.CMEQCI, uint32(c.eqCI)|1<<31)
		c.emu.Unlock()
		if err != nil {
			return Event{}, fmt.Errorf("cm wait: %w", err)
		}
		if c.Pending() {
			continue
		}
		if _, err := c.nic.dev.WaitInterrupt(ctx, c.cfg.Vector); err != nil {
			return Event{}, fmt.Errorf("cm wait: %w", err)
		}
	}
}

// Pending reports whether an event is waiting, without taking it (nor touching the device).
func (c *CM) Pending() bool {
	c.emu.Lock()
	defer c.emu.Unlock()
	e := regs.EQE(c.eq.slot(c.eqCI))
	return uint16(e.FlagsPhase()) != c.eq.lap(c.eqCI)
}

// CMCounters are the connection manager's counters (each wraps modulo 2^32).
type CMCounters struct {
	MADsTx      uint32 `json:"mads_tx"`
	MADsRx      uint32 `json:"mads_rx"`
	MADsDropped uint32 `json:"mads_dropped"`
	Resends     uint32 `json:"resends"`
	Timeouts    uint32 `json:"timeouts"`
	Refused     uint32 `json:"refused"`
}

// Counters reads the connection manager's counters.
func (c *CM) Counters() (CMCounters, error) {
	var k CMCounters
	err := c.nic.readCounters("cm counters", []counter{
		{regs.CMMADsTx, &k.MADsTx}, {regs.CMMADsRx, &k.MADsRx}, {regs.CMMADsDropped, &k.MADsDropped},
		{regs.CMResends, &k.Resends}, {regs.CMCMTimeouts, &k.Timeouts}, {regs.CMRefused, &k.Refused},
	})
	return k, err
}

func putBE32(b []byte, v uint32) {
	b[0], b[1], b[2], b[3] = byte(v>>24), byte(v>>16), byte(v>>8), byte(v)
}

package ctrl

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/sanoffload/san/driver/nic"
	"github.com/sanoffload/san/driver/regs"
	"github.com/sanoffload/san/hw/sim"
)

// ErrCM means a scripted connection-manager run did not go as the protocol says.
var ErrCM = errors.New("connection manager run failed")

// simCM is the connection managers' timing in simulations: 4.096 us x 2^4 for an answer, three
// resends.
var simCM = nic.CMConfig{Commands: 64, Events: 256, Vector: 7, ResponseTimeout: 4, MaxRetries: 3, DeferTimeout: 6}

// resolverVector is the resolvers' MSI-X vector in simulations.
const resolverVector = 9

// cmPair is two simulated NICs with their connection managers and resolvers open; host 1
// listens.
type cmPair struct {
	fab  *sim.Fabric
	dev  [2]*sim.NIC
	nic  [2]*nic.NIC
	cm   [2]*nic.CM
	res  [2]*nic.Resolver
	mac  [2]net.HardwareAddr
	ip   [2]netip.Addr
	tr   nic.Transport
	pmtu int
}

// newCMPair opens the pair; both resolvers are configured by a (its timeout and tries; a
// simulated ARP reply comes back within a few hundred cycles, milliseconds of wall-clock time).
func newCMPair(c SimConfig, a ARPConfig, capture bool) (p *cmPair, err error) {
	fab, err := sim.NewFabric(c.Model)
	if err != nil {
		return nil, err
	}
	p = &cmPair{fab: fab, pmtu: 1024,
		mac: [2]net.HardwareAddr{{0x02, 0x53, 0x41, 0x4E, 0, 1}, {0x02, 0x53, 0x41, 0x4E, 0, 2}},
		ip:  [2]netip.Addr{netip.AddrFrom4([4]byte{192, 168, 77, 1}), netip.AddrFrom4([4]byte{192, 168, 77, 2})}}
	defer func() {
		if err != nil {
			fab.Close()
		}
	}()
	for i := range p.dev {
		if p.dev[i], err = fab.Open(sim.Config{HostMemory: max(c.HostMemoryMiB, 64) << 20,
			MMIOTimeout: uint32(c.MMIOTimeoutCycles)}); err != nil {
			return nil, err
		}
		if p.nic[i], err = nic.Open(p.dev[i]); err != nil {
			return nil, err
		}
		for _, step := range []func() error{
			func() error { return p.nic[i].SetAddress(p.mac[i], p.ip[i]) },
			func() error { return p.nic[i].SetPMTU(p.pmtu) },
			func() error { return p.nic[i].Enable(true) },
			func() error { return p.dev[i].Capture(capture) },
		} {
			if err = step(); err != nil {
				return nil, err
			}
		}
		if p.cm[i], err = p.nic[i].OpenCM(simCM); err != nil {
			return nil, err
		}
		if p.res[i], err = p.nic[i].OpenResolver(a.resolver(resolverVector)); err != nil {
			return nil, err
		}
	}
	if err = fab.Link(p.dev[0], p.dev[1], 0); err != nil {
		return nil, err
	}
	p.tr = simTransport(p.pmtu, p.nic[0].Identity())
	return p, nil
}

// connect sends a CONNECT from host 0 to host 1's port, naming host 1 by its IP alone: the
// first one resolves it by ARP.
func (p *cmPair) connect(q *nic.QP, port uint16, data []byte) (nic.ConnID, error) {
	return p.cm[0].Connect(context.Background(), q, nic.ConnectParams{Dst: p.ip[1], Port: port, SrcPort: 50000,
		UDPSource: 0xC100, StartPSN: 0x10000, Transport: p.tr, Data: data})
}

func (p *cmPair) accept(id nic.ConnID, q *nic.QP, data []byte) error {
	return p.cm[1].Accept(id, q, nic.AcceptParams{UDPSource: 0xC200, StartPSN: 0x20000, Transport: p.tr, Data: data})
}

// event waits for side i's next event and checks its type.
func (p *cmPair) event(i int, want regs.CMEvent) (nic.Event, error) {
	ev, err := p.cm[i].Wait(context.Background())
	if err != nil {
		return ev, err
	}
	if ev.Type != want {
		return ev, fmt.Errorf("%w: host %d: %v (reason %v) where %v was due", ErrCM, i, ev.Type, ev.Reason, want)
	}
	return ev, nil
}

// CMReport is what a scripted connection-manager run did.
type CMReport struct {
	Connections int    `json:"connections"`
	Rejected    int    `json:"rejected"`
	Frames      int    `json:"frames"`
	Cycles      uint64 `json:"cycles"`
	Pcap        string `json:"pcap,omitempty"`
}

// SimCM runs the connection manager's whole vocabulary between two simulated NICs (host 0 at
// 192.168.77.1, host 1 at 192.168.77.2): the caller resolves the listener's address with a
// (by ARP, request and reply, unless a has a static entry for it), then a request
// to a port nobody listens on (REJ 8), one refused by the listener with data (REJ 28), one
// deferred (MRA) then accepted with data both ways (REQ, REP, RTU), a message each way over
// it, and a disconnect with data (DREQ, DREP). The traffic goes to pcap when set.
func SimCM(c SimConfig, a ARPConfig, pcap string) (rep CMReport, err error) {
	p, err := newCMPair(c, a, pcap != "")
	if err != nil {
		return rep, err
	}
	defer func() {
		if cerr := p.fab.Close(); err == nil {
			err = cerr
		}
	}()
	start := p.fab.Cycles()
	const port = 18515
	if err := p.cm[1].Listen(port, 8); err != nil {
		return rep, err
	}
	qp := func(i int) (*nic.QP, error) { return p.nic[i].NewQP(nic.QPConfig{SQEntries: 16, RQEntries: 16}) }

	// Nobody listens on port+1.
	q, err := qp(0)
	if err != nil {
		return rep, err
	}
	if _, err := p.connect(q, port+1, []byte("anyone?")); err != nil {
		return rep, err
	}
	if ev, err := p.event(0, regs.CMEventRejected); err != nil || ev.Reason != regs.CMRejReasonInvalidServiceID {
		return rep, fmt.Errorf("%w: no listener: %+v %v", ErrCM, ev, err)
	}
	rep.Rejected++

	// Refused by the application.
	if q, err = qp(0); err != nil {
		return rep, err
	}
	if _, err := p.connect(q, port, []byte("may I?")); err != nil {
		return rep, err
	}
	req, err := p.event(1, regs.CMEventRequest)
	if err != nil {
		return rep, err
	}
	if err := p.cm[1].Reject(req.Conn, regs.CMRejReasonConsumerDefined, []byte("no")); err != nil {
		return rep, err
	}
	if ev, err := p.event(0, regs.CMEventRejected); err != nil || ev.Reason != regs.CMRejReasonConsumerDefined ||
		!bytes.HasPrefix(ev.Data, []byte("no")) {
		return rep, fmt.Errorf("%w: refusal: %+v %v", ErrCM, ev, err)
	}
	rep.Rejected++

	// Deferred, then accepted; data both ways; disconnect with data.
	qa, err := qp(0)
	if err != nil {
		return rep, err
	}
	ida, err := p.connect(qa, port, []byte("hello"))
	if err != nil {
		return rep, err
	}
	if req, err = p.event(1, regs.CMEventRequest); err != nil {
		return rep, err
	}
	if err := p.cm[1].Defer(req.Conn, []byte("one moment")); err != nil {
		return rep, err
	}
	if ev, err := p.event(0, regs.CMEventDeferred); err != nil || !bytes.HasPrefix(ev.Data, []byte("one moment")) {
		return rep, fmt.Errorf("%w: defer: %+v %v", ErrCM, ev, err)
	}
	qb, err := qp(1)
	if err != nil {
		return rep, err
	}
	if err := p.accept(req.Conn, qb, []byte("welcome")); err != nil {
		return rep, err
	}
	if ev, err := p.event(0, regs.CMEventEstablished); err != nil || !bytes.HasPrefix(ev.Data, []byte("welcome")) {
		return rep, fmt.Errorf("%w: establish: %+v %v", ErrCM, ev, err)
	}
	if _, err := p.event(1, regs.CMEventEstablished); err != nil {
		return rep, err
	}
	rep.Connections++
	for dir, pair := range [][2]*nic.QP{{qa, qb}, {qb, qa}} {
		if err := p.message(dir, pair[0], pair[1], 300+dir); err != nil {
			return rep, err
		}
	}
	if err := p.cm[0].Disconnect(ida, []byte("bye")); err != nil {
		return rep, err
	}
	if ev, err := p.event(1, regs.CMEventDisconnectRequest); err != nil || !bytes.HasPrefix(ev.Data, []byte("bye")) {
		return rep, fmt.Errorf("%w: disconnect: %+v %v", ErrCM, ev, err)
	}
	if _, err := p.event(0, regs.CMEventDisconnected); err != nil {
		return rep, err
	}
	rep.Cycles = p.fab.Cycles() - start
	if pcap == "" {
		return rep, nil
	}
	var frames [2][]sim.Frame
	for i, d := range p.dev {
		if frames[i], err = d.Transmitted(); err != nil {
			return rep, err
		}
		rep.Frames += len(frames[i])
	}
	if err := os.MkdirAll(filepath.Dir(pcap), 0o755); err != nil {
		return rep, err
	}
	f, err := os.Create(pcap)
	if err != nil {
		return rep, err
	}
	if err := sim.WritePcap(f, p.nic[0].Identity().ClockKHz, frames[0], frames[1]); err != nil {
		f.Close()
		return rep, err
	}
	rep.Pcap = pcap
	return rep, f.Close()
}

// message sends n bytes from a (on host from) to b and checks they arrive.
func (p *cmPair) message(from int, a, b *nic.QP, n int) error {
	src, err := p.dev[from].AllocDMA(n)
	if err != nil {
		return err
	}
	dst, err := p.dev[1-from].AllocDMA(n)
	if err != nil {
		return err
	}
	for i := range src.Bytes {
		src.Bytes[i] = byte(i*7 + from)
	}
	if err := b.PostRecv(nic.RecvWR{WRID: 1, Addr: dst.IOVA, Length: uint32(n)}); err != nil {
		return err
	}
	if err := a.PostSend(nic.SendWR{WRID: 2, Addr: src.IOVA, Length: uint32(n), Signaled: true}); err != nil {
		return err
	}
	got := 0
	for cycles := 0; got < 2; cycles += 64 {
		if cycles > 2_000_000 {
			return fmt.Errorf("%w: message of %d bytes never completed", ErrCM, n)
		}
		for _, q := range []*nic.QP{a, b} {
			cs, err := q.Poll(1)
			if err != nil {
				return err
			}
			for _, c := range cs {
				if c.Status != regs.CQEStatusOk {
					return fmt.Errorf("%w: completion %+v", ErrCM, c)
				}
				got++
			}
		}
		if err := p.fab.Step(64); err != nil {
			return err
		}
	}
	if !bytes.Equal(src.Bytes, dst.Bytes) {
		return fmt.Errorf("%w: message of %d bytes arrived wrong", ErrCM, n)
	}
	return nil
}

// waitEvent steps one cycle at a time until side i's event ring holds an event, and returns
// the cycle the event's entry was written whole (its phase byte, the last, is set).
func (p *cmPair) waitEvent(i int, budget uint64) (uint64, error) {
	for n := uint64(0); n < budget; n++ {
		if p.cm[i].Pending() {
			return p.fab.Cycles() - 1, nil
		}
		if err := p.fab.Step(1); err != nil {
			return 0, err
		}
	}
	return 0, fmt.Errorf("%w: no event on host %d in %d cycles", ErrCM, i, budget)
}

// cmSetup measures one connection setup in cycles, the host's decision excluded: from the
// cycle the CONNECT call starts to the REQUEST event written on the listener, plus from the
// cycle the ACCEPT call starts to the later of the two ESTABLISHED events.
func cmSetup(c SimConfig) (cycles uint64, contexts int, err error) {
	p, err := newCMPair(c, ARPConfig{}, false)
	if err != nil {
		return 0, 0, err
	}
	defer p.fab.Close()
	if err := p.cm[1].Listen(7471, 4); err != nil {
		return 0, 0, err
	}
	// The figure is the CM's: the peer's address is resolved (cached) before, as on a host
	// that has talked to it.
	if _, err := p.res[0].Resolve(context.Background(), p.ip[1]); err != nil {
		return 0, 0, err
	}
	qa, err := p.nic[0].NewQP(nic.QPConfig{})
	if err != nil {
		return 0, 0, err
	}
	qb, err := p.nic[1].NewQP(nic.QPConfig{})
	if err != nil {
		return 0, 0, err
	}
	// From the cycle the CONNECT call starts: its doorbell is its first bus access (a few
	// cycles' write); the result poll that follows overlaps the NIC's work.
	t0 := p.fab.Cycles()
	if _, err = p.connect(qa, 7471, nil); err != nil {
		return 0, 0, err
	}
	treq, err := p.waitEvent(1, 1_000_000)
	if err != nil {
		return 0, 0, err
	}
	req, err := p.event(1, regs.CMEventRequest)
	if err != nil {
		return 0, 0, err
	}
	t1 := p.fab.Cycles()
	if err := p.accept(req.Conn, qb, nil); err != nil {
		return 0, 0, err
	}
	ta, err := p.waitEvent(0, 1_000_000)
	if err != nil {
		return 0, 0, err
	}
	tb, err := p.waitEvent(1, 1_000_000)
	if err != nil {
		return 0, 0, err
	}
	return (treq - t0) + (max(ta, tb) - t1), int(p.nic[0].Identity().NQP), nil
}

// cmRate runs n connection setups back to back from one NIC to the other (CONNECTs posted 16
// ahead of the established ones, each REQUEST accepted as it comes) and returns setups per
// second of simulated time.
func cmRate(c SimConfig, n int) (float64, error) {
	p, err := newCMPair(c, ARPConfig{}, false)
	if err != nil {
		return 0, err
	}
	defer p.fab.Close()
	if err := p.cm[1].Listen(7472, n); err != nil {
		return 0, err
	}
	if _, err := p.res[0].Resolve(context.Background(), p.ip[1]); err != nil {
		return 0, err
	}
	start := p.fab.Cycles()
	established := [2]int{}
	posted := 0
	for established[0] < n || established[1] < n {
		// Keep a window of requests in flight, so none waits for the host past its timer.
		for posted < n && posted-established[0] < 16 {
			q, err := p.nic[0].NewQP(nic.QPConfig{SQEntries: 2, RQEntries: 2})
			if err != nil {
				return 0, err
			}
			if _, err := p.connect(q, 7472, nil); err != nil {
				return 0, err
			}
			posted++
		}
		for i := range p.cm {
			ev, ok, err := p.cm[i].Poll()
			if err != nil {
				return 0, err
			}
			if !ok {
				continue
			}
			switch ev.Type {
			case regs.CMEventRequest:
				q, err := p.nic[1].NewQP(nic.QPConfig{SQEntries: 2, RQEntries: 2})
				if err != nil {
					return 0, err
				}
				if err := p.accept(ev.Conn, q, nil); err != nil {
					return 0, err
				}
			case regs.CMEventEstablished:
				established[i]++
			default:
				return 0, fmt.Errorf("%w: host %d: %v (reason %v) during the rate run", ErrCM, i, ev.Type, ev.Reason)
			}
		}
		if p.fab.Cycles()-start > uint64(n)*100_000 {
			return 0, fmt.Errorf("%w: %v of %d established", ErrCM, established, n)
		}
		if err := p.fab.Step(16); err != nil {
			return 0, err
		}
	}
	cycles := p.fab.Cycles() - start
	return float64(n) / (float64(cycles) / (float64(p.nic[0].Identity().ClockKHz) * 1000)), nil
}

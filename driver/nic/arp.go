package nic

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/sanoffload/san/driver"
	"github.com/sanoffload/san/driver/regs"
)

// ErrUnresolved means no neighbour answered for an IPv4 address; errors.Is matches every
// *UnresolvedError with it.
var ErrUnresolved = errors.New("address unresolved")

// ErrNoResolver means a call needs the NIC's address resolution and OpenResolver was not
// called.
var ErrNoResolver = errors.New("no address resolver: call NIC.OpenResolver")

// UnresolvedError is an IPv4 address for which no ARP reply came after Tries requests.
type UnresolvedError struct {
	IP    netip.Addr
	Tries int
}

func (e *UnresolvedError) Error() string {
	return fmt.Sprintf("resolve %s: no ARP reply to %d requests", e.IP, e.Tries)
}

// Is makes errors.Is(err, ErrUnresolved) true.
func (e *UnresolvedError) Is(target error) bool { return target == ErrUnresolved }

// ResolverConfig sets how the NIC resolves IPv4 addresses to MACs on the SAN link.
type ResolverConfig struct {
	// Vector is the MSI-X vector of the NIC's ARP reply FIFO.
	Vector int
	// Timeout is how long each ARP request waits for its reply (default 1 s, as Linux's
	// retrans_time).
	Timeout time.Duration
	// Tries is how many requests are sent before giving up with an *UnresolvedError (default
	// 3, as Linux's mcast_solicit).
	Tries int
	// Lifetime is how long an address learned by ARP is used before it is asked for again
	// (default 5 minutes).
	Lifetime time.Duration
	// Static entries are used as they are, without ARP, and take precedence over learned ones.
	Static map[netip.Addr]net.HardwareAddr
}

// Neighbour is one entry of the neighbour cache.
type Neighbour struct {
	IP     netip.Addr       `json:"ip"`
	MAC    net.HardwareAddr `json:"mac"`
	Static bool             `json:"static"`
}

// learned is an address ARP resolved, until its expiry.
type learned struct {
	mac     net.HardwareAddr
	expires time.Time
}

// Resolver resolves IPv4 addresses to MACs with the NIC's ARP block (requests sent by the
// NIC, replies read from its FIFO, waits on its armed vector) and keeps a neighbour cache.
// Its methods are safe for concurrent use.
type Resolver struct {
	nic *NIC
	cfg ResolverConfig

	// wire serialises what uses the reply FIFO and its vector: one resolution asks at a time;
	// the others wait for it, then find its answer in the cache or ask themselves.
	wire sync.Mutex

	mu      sync.Mutex
	static  map[netip.Addr]net.HardwareAddr // guarded by mu
	learned map[netip.Addr]learned          // guarded by mu
	asking  netip.Addr                      // guarded by mu; the address being resolved
	// Counters, guarded by mu.
	requests, replies uint64
}

// validNeighbour checks an entry: an IPv4 address and a 6-byte unicast MAC.
func validNeighbour(ip netip.Addr, mac net.HardwareAddr) error {
	if !ip.Is4() || len(mac) != 6 || mac[0]&1 != 0 {
		return fmt.Errorf("neighbour %v %v: %w: need an IPv4 address and a 6-byte unicast MAC", ip, mac, ErrInvalid)
	}
	return nil
}

// OpenResolver programs the NIC's ARP reply vector and returns the NIC's resolver, which the
// connection manager's Connect uses. One per NIC; a second call fails with ErrBusy. Replies
// already waiting in the FIFO are discarded (nobody asked for them).
func (n *NIC) OpenResolver(cfg ResolverConfig) (*Resolver, error) {
	if cfg.Vector < 0 || cfg.Vector >= int(n.id.NMSIX) {
		return nil, fmt.Errorf("open resolver: %w: vector %d of %d", ErrInvalid, cfg.Vector, n.id.NMSIX)
	}
	if cfg.Timeout < 0 || cfg.Tries < 0 || cfg.Lifetime < 0 {
		return nil, fmt.Errorf("open resolver: %w: negative timeout, tries or lifetime", ErrInvalid)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = time.Second
	}
	if cfg.Tries == 0 {
		cfg.Tries = 3
	}
	if cfg.Lifetime == 0 {
		cfg.Lifetime = 5 * time.Minute
	}
	r := &Resolver{nic: n, cfg: cfg, static: map[netip.Addr]net.HardwareAddr{}, learned: map[netip.Addr]learned{}}
	for ip, mac := range cfg.Static {
		if err := validNeighbour(ip, mac); err != nil {
			return nil, fmt.Errorf("open resolver: %w", err)
		}
		r.static[ip] = append(net.HardwareAddr(nil), mac...)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.res != nil {
		return nil, fmt.Errorf("open resolver: %w: the NIC has one", ErrBusy)
	}
	if err := n.dev.Write32(0, regs.ARPVector, uint32(cfg.Vector)); err != nil {
		return nil, fmt.Errorf("open resolver: %w", err)
	}
	if _, err := r.drain(); err != nil {
		return nil, fmt.Errorf("open resolver: %w", err)
	}
	n.res = r
	return r, nil
}

// Resolver is the resolver OpenResolver made, or nil.
func (n *NIC) Resolver() *Resolver {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.res
}

// SetStatic adds or replaces a static entry: ip resolves to mac without ARP.
func (r *Resolver) SetStatic(ip netip.Addr, mac net.HardwareAddr) error {
	if err := validNeighbour(ip, mac); err != nil {
		return fmt.Errorf("set static: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.static[ip] = append(net.HardwareAddr(nil), mac...)
	return nil
}

// Forget removes ip's entries, static and learned, so that the next Resolve asks again.
func (r *Resolver) Forget(ip netip.Addr) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.static, ip)
	delete(r.learned, ip)
}

// Neighbours lists the cache: static entries, then the learned ones still valid, each part in
// address order.
func (r *Resolver) Neighbours() []Neighbour {
	r.mu.Lock()
	defer r.mu.Unlock()
	var static, dynamic []Neighbour
	for ip, mac := range r.static {
		static = append(static, Neighbour{IP: ip, MAC: append(net.HardwareAddr(nil), mac...), Static: true})
	}
	now := time.Now()
	for ip, l := range r.learned {
		if _, st := r.static[ip]; !st && now.Before(l.expires) {
			dynamic = append(dynamic, Neighbour{IP: ip, MAC: append(net.HardwareAddr(nil), l.mac...)})
		}
	}
	byIP := func(a, b Neighbour) int { return a.IP.Compare(b.IP) }
	slices.SortFunc(static, byIP)
	slices.SortFunc(dynamic, byIP)
	return append(static, dynamic...)
}

// ResolverCounters are the driver's side of resolution: ARP requests it had the NIC send and
// replies it took from the FIFO (the NIC's own counters are in ARPCounters).
type ResolverCounters struct {
	Requests uint64 `json:"requests"`
	Replies  uint64 `json:"replies"`
}

// Counters reads the resolver's counters.
func (r *Resolver) Counters() ResolverCounters {
	r.mu.Lock()
	defer r.mu.Unlock()
	return ResolverCounters{Requests: r.requests, Replies: r.replies}
}

// lookup returns ip's MAC from the cache: a static entry first, then a learned one not expired.
func (r *Resolver) lookup(ip netip.Addr) net.HardwareAddr {
	r.mu.Lock()
	defer r.mu.Unlock()
	if mac, ok := r.static[ip]; ok {
		return append(net.HardwareAddr(nil), mac...)
	}
	if l, ok := r.learned[ip]; ok && time.Now().Before(l.expires) {
		return append(net.HardwareAddr(nil), l.mac...)
	}
	return nil
}

// Resolve returns the MAC of ip on the SAN link: from a static entry or the cache, or else by
// ARP: up to Tries requests, each waiting Timeout (bounded by ctx) for the reply, then an
// *UnresolvedError. Waits sleep on the reply FIFO's interrupt; a device's driver.ErrTimeout
// from the wait means only that nothing came yet, and the wait goes on until the try's deadline.
func (r *Resolver) Resolve(ctx context.Context, ip netip.Addr) (net.HardwareAddr, error) {
	if !ip.Is4() {
		return nil, fmt.Errorf("resolve %v: %w: not an IPv4 address", ip, ErrInvalid)
	}
	if mac := r.lookup(ip); mac != nil {
		return mac, nil
	}
	r.wire.Lock()
	defer r.wire.Unlock()
	// A resolution this one waited for may have found the answer.
	if mac := r.lookup(ip); mac != nil {
		return mac, nil
	}
	r.mu.Lock()
	r.asking = ip
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.asking = netip.Addr{}
		r.mu.Unlock()
	}()
	a4 := ip.As4()
	for try := 1; try <= r.cfg.Tries; try++ {
		if err := r.nic.dev.Write32(0, regs.ARPRequest, be32(a4[:])); err != nil {
			return nil, fmt.Errorf("resolve %s: %w", ip, err)
		}
		r.mu.Lock()
		r.requests++
		r.mu.Unlock()
		tctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
		mac, err := r.await(tctx, ip)
		cancel()
		switch {
		case mac != nil:
			return mac, nil
		case ctx.Err() != nil:
			return nil, fmt.Errorf("resolve %s: %w", ip, ctx.Err())
		case err != nil && tctx.Err() == nil:
			return nil, fmt.Errorf("resolve %s: %w", ip, err)
		}
		// This try's deadline passed: ask again.
	}
	return nil, &UnresolvedError{IP: ip, Tries: r.cfg.Tries}
}

// await waits until the cache resolves ip or ctx ends: it takes the replies the FIFO holds,
// arms the vector, and sleeps on it. An arm fires at once if replies arrived meanwhile, so
// none is missed between the look and the sleep.
// Preconditions: r.wire is held.
func (r *Resolver) await(ctx context.Context, ip netip.Addr) (net.HardwareAddr, error) {
	for {
		if _, err := r.drain(); err != nil {
			return nil, err
		}
		if mac := r.lookup(ip); mac != nil {
			return mac, nil
		}
		if err := r.nic.dev.Write32(0, regs.ARPReplyPop, 1<<regs.ARPReplyPopArmShift); err != nil {
			return nil, err
		}
		_, err := r.nic.dev.WaitInterrupt(ctx, r.cfg.Vector)
		switch {
		case err == nil, errors.Is(err, driver.ErrTimeout) && ctx.Err() == nil:
			// An interrupt, or nothing yet: look again.
		case ctx.Err() != nil:
			return nil, ctx.Err()
		default:
			return nil, err
		}
	}
}

// drainLimit bounds the replies one drain takes, so that a flood of replies cannot hold a
// resolution for ever: the FIFO's 16 and as many again arriving meanwhile.
const drainLimit = 32

// drain takes the replies waiting in the FIFO into the cache: a reply is kept for the address
// being asked for and refreshes a learned entry; any other is dropped (nobody asked for it), as
// Linux drops unsolicited replies. It returns how many it took.
// Preconditions: r.wire is held, or the resolver is not yet visible (OpenResolver).
func (r *Resolver) drain() (int, error) {
	dev := r.nic.dev
	for n := 0; n < drainLimit; n++ {
		st, err := dev.Read32(0, regs.ARPReplyStatus)
		if err != nil {
			return n, err
		}
		if st>>regs.ARPReplyStatusValidShift&regs.ARPReplyStatusValidMask == 0 {
			return n, nil
		}
		var v [3]uint32
		for i, off := range []uint64{regs.ARPReplyIP, regs.ARPReplyMACHi, regs.ARPReplyMACLo} {
			if v[i], err = dev.Read32(0, off); err != nil {
				return n, err
			}
		}
		if err := dev.Write32(0, regs.ARPReplyPop, 1<<regs.ARPReplyPopPopShift); err != nil {
			return n, err
		}
		var a4 [4]byte
		putBE32(a4[:], v[0])
		ip := netip.AddrFrom4(a4)
		mac := net.HardwareAddr{byte(v[1] >> 8), byte(v[1]), byte(v[2] >> 24), byte(v[2] >> 16), byte(v[2] >> 8), byte(v[2])}
		r.mu.Lock()
		r.replies++
		if _, known := r.learned[ip]; ip == r.asking || known {
			r.learned[ip] = learned{mac: mac, expires: time.Now().Add(r.cfg.Lifetime)}
		}
		r.mu.Unlock()
	}
	return drainLimit, nil
}

// ARPCounters are the NIC's ARP block counters (each wraps modulo 2^32).
type ARPCounters struct {
	Answered        uint32 `json:"answered"`
	RequestsSent    uint32 `json:"requests_sent"`
	RepliesReceived uint32 `json:"replies_received"`
	RepliesLost     uint32 `json:"replies_lost"`
}

// ARPCounters reads the NIC's ARP counters.
func (n *NIC) ARPCounters() (ARPCounters, error) {
	var k ARPCounters
	err := n.readCounters("arp counters", []counter{
		{regs.ARPAnswered, &k.Answered}, {regs.ARPRequestsSent, &k.RequestsSent},
		{regs.ARPRepliesReceived, &k.RepliesReceived}, {regs.ARPRepliesLost, &k.RepliesLost},
	})
	return k, err
}

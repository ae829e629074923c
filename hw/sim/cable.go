package sim

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sanoffload/san/driver"
	"github.com/sanoffload/san/hw/wire"
)

// Cable joins a simulated NIC's link port to a datagram socket: each Ethernet frame (no FCS)
// the NIC transmits leaves as one datagram to the peer's address, and each datagram that
// arrives enters the NIC's receive port as one frame. That is QEMU's "-netdev dgram"
// convention, so the peer may be another process's simulated NIC or a QEMU guest's NIC on
// loopback, or another machine. What the OS loses (a full socket buffer, a full transmit
// queue) is link loss, which the NIC's transport recovers.
//
// The NIC must be on its own clock (Open, not a fabric's link), best in real time
// (Config.Clock = RealTime) when the peer runs in real time too.
type Cable struct {
	nic  *NIC
	conn net.PacketConn
	peer net.Addr

	out  chan []byte // frames the NIC transmitted, for the sender
	wg   sync.WaitGroup
	once sync.Once

	pmu   sync.Mutex // guards pcap
	pcap  *wire.PcapWriter
	start time.Time

	sent, received, lost, foreign atomic.Uint64
}

// CableOptions are a cable's extras.
type CableOptions struct {
	// Pcap, when set, receives every frame that crosses the cable, both ways, stamped with the
	// wall time since the cable was plugged in.
	Pcap io.Writer
	// Queue is how many transmitted frames may wait for the socket before more count as lost;
	// 0 means 1024.
	Queue int
}

// CableCounts are what crossed a cable.
type CableCounts struct {
	Sent     uint64 // frames sent to the peer
	Received uint64 // frames taken from the peer into the NIC
	Lost     uint64 // transmitted frames dropped: the send queue was full or the socket refused
	Foreign  uint64 // datagrams from an address other than the peer's, dropped
}

// ErrCableInUse means the NIC already has a cable.
var ErrCableInUse = errors.New("sim: cable: the NIC already has a cable")

// Plug connects n's link port to conn, sending to peer (and taking datagrams only from it).
// The cable owns conn: Close closes it.
func Plug(n *NIC, conn net.PacketConn, peer net.Addr, o CableOptions) (*Cable, error) {
	if o.Queue <= 0 {
		o.Queue = 1024
	}
	c := &Cable{nic: n, conn: conn, peer: peer, out: make(chan []byte, o.Queue), start: time.Now()}
	if o.Pcap != nil {
		pw, err := wire.NewPcapWriter(o.Pcap)
		if err != nil {
			return nil, fmt.Errorf("sim: cable: %w", err)
		}
		c.pcap = pw
	}
	n.clk.mu.Lock()
	switch {
	case n.model == nil:
		n.clk.mu.Unlock()
		return nil, fmt.Errorf("sim: cable: %w", driver.ErrClosed)
	case n.fab != nil:
		n.clk.mu.Unlock()
		return nil, errors.New("sim: cable: the NIC is on a fabric; plug a NIC on its own clock")
	case n.cable != nil:
		n.clk.mu.Unlock()
		return nil, ErrCableInUse
	}
	n.cable = c
	n.clk.mu.Unlock()
	c.wg.Add(2)
	go c.send()
	go c.receive()
	return c, nil
}

// takeLocked moves the frames the NIC transmitted to the sender's queue.
// Preconditions: the NIC's clock lock is held; n.model is not nil.
func (c *Cable) takeLocked(frames []Frame) {
	for _, f := range frames {
		select {
		case c.out <- f.Bytes:
		default:
			c.lost.Add(1)
		}
	}
}

func (c *Cable) send() {
	defer c.wg.Done()
	for b := range c.out {
		if _, err := c.conn.WriteTo(b, c.peer); err != nil {
			c.lost.Add(1)
			continue
		}
		c.sent.Add(1)
		c.record(b)
	}
}

func (c *Cable) receive() {
	defer c.wg.Done()
	buf := make([]byte, 65536)
	for {
		k, from, err := c.conn.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue // a transient error (e.g. ICMP unreachable on a connected socket)
		}
		if from.String() != c.peer.String() {
			c.foreign.Add(1)
			continue
		}
		if k == 0 {
			continue
		}
		frame := append([]byte(nil), buf[:k]...)
		if err := c.nic.Inject(frame, false); err != nil {
			return // the NIC is closed
		}
		c.received.Add(1)
		c.record(frame)
	}
}

func (c *Cable) record(b []byte) {
	if c.pcap == nil {
		return
	}
	c.pmu.Lock()
	defer c.pmu.Unlock()
	_ = c.pcap.WritePacket(time.Since(c.start), b)
}

// Counts says what has crossed the cable.
func (c *Cable) Counts() CableCounts {
	return CableCounts{Sent: c.sent.Load(), Received: c.received.Load(), Lost: c.lost.Load(),
		Foreign: c.foreign.Load()}
}

// LocalAddr is the cable's own socket address.
func (c *Cable) LocalAddr() net.Addr { return c.conn.LocalAddr() }

// Close unplugs the cable: the NIC's frames queue for Transmitted again, the socket is closed
// and the cable's goroutines have ended when it returns. Closing twice is not an error.
func (c *Cable) Close() error {
	var err error
	c.once.Do(func() {
		n := c.nic
		n.clk.mu.Lock()
		if n.cable == c {
			n.cable = nil
		}
		close(c.out)
		n.clk.mu.Unlock()
		err = c.conn.Close()
		c.wg.Wait()
	})
	return err
}

package nic

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"

	"github.com/sanoffload/san/driver"
	"github.com/sanoffload/san/driver/regs"
)

// Errors of the queue-pair driver.
var (
	// ErrQueueFull means a ring has no free entry; poll completions first.
	ErrQueueFull = errors.New("queue full")
	// ErrInvalid means an argument is out of range for the NIC or the connection.
	ErrInvalid = errors.New("invalid argument")
	// ErrBusy means a connection number is already in use.
	ErrBusy = errors.New("connection in use")
	// ErrLoad means the NIC refused a connection context (STATUS.ERROR) or never took it.
	ErrLoad = errors.New("connection context load failed")
	// ErrCompletion means the NIC completed a request the driver does not know: a driver/RTL
	// disagreement, never expected.
	ErrCompletion = errors.New("unexpected completion")
)

// loadPolls bounds how many STATUS reads a context load waits for the engines.
const loadPolls = 1000

// NIC drives one SAN NIC over a driver.Device: port addresses, counters and connections (queue
// pairs), each with a send queue, a receive queue and a completion queue in DMA memory. Its
// methods are safe for concurrent use; a QP's are safe for use by one goroutine at a time.
type NIC struct {
	dev driver.Device
	id  Identity

	mu  sync.Mutex
	qps map[int]*QP // guarded by mu; open connections by number
	res *Resolver   // guarded by mu; address resolution, once OpenResolver ran
}

// Open identifies the device, checks every register block the driver uses, and returns the
// NIC's driver. The NIC stays disabled until Enable.
func Open(dev driver.Device) (*NIC, error) {
	id, err := Identify(dev)
	if err != nil {
		return nil, err
	}
	// The register blocks form a chain from BAR0 offset 0; each must be the one expected.
	want := []struct {
		name  string
		base  uint64
		typ   uint32
		major uint32
	}{
		{"port", regs.PortBase, regs.PortType, regs.PortVersionMajor},
		{"qpc", regs.QpcBase, regs.QpcType, regs.QpcVersionMajor},
		{"arp", regs.ARPBase, regs.ARPType, regs.ARPVersionMajor},
		{"cm", regs.CMBase, regs.CMType, regs.CMVersionMajor},
	}
	next, err := dev.Read32(0, regs.NICBlkNext)
	if err != nil {
		return nil, fmt.Errorf("open nic: %w", err)
	}
	for _, b := range want {
		if uint64(next) != b.base {
			return nil, fmt.Errorf("open nic: %w: block %s expected at 0x%x, chain points to 0x%x", ErrNotSANNIC, b.name, b.base, next)
		}
		typ, err := dev.Read32(0, b.base+0)
		if err != nil {
			return nil, fmt.Errorf("open nic: %w", err)
		}
		ver, err := dev.Read32(0, b.base+4)
		if err != nil {
			return nil, fmt.Errorf("open nic: %w", err)
		}
		if typ != b.typ {
			return nil, fmt.Errorf("open nic: %w: block %s has type 0x%08x", ErrNotSANNIC, b.name, typ)
		}
		if ver>>16 != b.major {
			return nil, fmt.Errorf("open nic: %w: block %s version 0x%x, driver speaks %d.x", ErrVersion, b.name, ver, b.major)
		}
		if next, err = dev.Read32(0, b.base+8); err != nil {
			return nil, fmt.Errorf("open nic: %w", err)
		}
	}
	return &NIC{dev: dev, id: id, qps: map[int]*QP{}}, nil
}

// Identity is what the NIC reported at Open.
func (n *NIC) Identity() Identity { return n.id }

// Device is the device the driver runs on.
func (n *NIC) Device() driver.Device { return n.dev }

// SetAddress sets the port's MAC and IPv4 address, the source of every frame it sends.
func (n *NIC) SetAddress(mac net.HardwareAddr, ip netip.Addr) error {
	if len(mac) != 6 || !ip.Is4() {
		return fmt.Errorf("set address %v %v: %w: need a 6-byte MAC and an IPv4 address", mac, ip, ErrInvalid)
	}
	a4 := ip.As4()
	for _, w := range []struct {
		off uint64
		v   uint32
	}{
		{regs.PortMACHi, macHi(mac)},
		{regs.PortMACLo, macLo(mac)},
		{regs.PortIPAddr, be32(a4[:])},
	} {
		if err := n.dev.Write32(0, w.off, w.v); err != nil {
			return fmt.Errorf("set address: %w", err)
		}
	}
	return nil
}

// SetPMTU sets the path MTU, 256 to 4096 bytes in powers of two. Change it only while no
// connection is sending.
func (n *NIC) SetPMTU(bytes int) error {
	for log2 := uint32(8); log2 <= 12; log2++ {
		if bytes == 1<<log2 {
			if err := n.dev.Write32(0, regs.PortPMTU, log2); err != nil {
				return fmt.Errorf("set pmtu: %w", err)
			}
			return nil
		}
	}
	return fmt.Errorf("set pmtu %d: %w: must be 256, 512, 1024, 2048 or 4096", bytes, ErrInvalid)
}

// PMTU reads the path MTU in bytes.
func (n *NIC) PMTU() (int, error) {
	v, err := n.dev.Read32(0, regs.PortPMTU)
	if err != nil {
		return 0, fmt.Errorf("read pmtu: %w", err)
	}
	return 1 << (v >> regs.PortPMTULog2Shift & regs.PortPMTULog2Mask), nil
}

// Enable starts (or stops) the NIC's engines.
func (n *NIC) Enable(on bool) error {
	v := uint32(0)
	if on {
		v = 1 << regs.NICControlEnableShift
	}
	if err := n.dev.Write32(0, regs.NICControl, v); err != nil {
		return fmt.Errorf("enable: %w", err)
	}
	return nil
}

// Counters are the port's traffic counters (each wraps modulo 2^32).
type Counters struct {
	TxFrames   uint32                 `json:"tx_frames"`
	RxFrames   uint32                 `json:"rx_frames"`
	RxDrops    uint32                 `json:"rx_drops"`
	Drops      map[regs.RxDrop]uint32 `json:"drops"` // non-zero reasons only
	CQOverruns uint32                 `json:"cq_overruns"`
	DMAErrors  uint32                 `json:"dma_errors"`
	BadAccess  uint32                 `json:"bad_access"`
	// The reliable transport's: retransmit timeouts, PSN sequence NAKs and RNR NAKs acted on,
	// and ACKs/NAKs ignored (stale, duplicate, for PSNs never sent).
	Timeouts    uint32 `json:"timeouts"`
	SeqNAKs     uint32 `json:"seq_naks"`
	RNRNAKs     uint32 `json:"rnr_naks"`
	AcksIgnored uint32 `json:"acks_ignored"`
}

// Counters reads the port's counters, the drop counter of every RxDrop reason included.
func (n *NIC) Counters() (Counters, error) {
	c := Counters{Drops: map[regs.RxDrop]uint32{}}
	if err := n.readCounters("counters", []counter{
		{regs.PortTxFrames, &c.TxFrames},
		{regs.PortRxFrames, &c.RxFrames},
		{regs.PortCQOverruns, &c.CQOverruns},
		{regs.PortDMAErrors, &c.DMAErrors},
		{regs.NICBadAccess, &c.BadAccess},
		{regs.PortTimeouts, &c.Timeouts},
		{regs.PortSeqNAKs, &c.SeqNAKs},
		{regs.PortRNRNAKs, &c.RNRNAKs},
		{regs.PortACKsIgnored, &c.AcksIgnored},
	}); err != nil {
		return c, err
	}
	n.mu.Lock()
	defer n.mu.Unlock() // the select/read pair must not interleave with another reader's
	for _, reason := range append([]regs.RxDrop{0}, regs.RxDropValues...) {
		if err := n.dev.Write32(0, regs.PortRxDropSel, uint32(reason)); err != nil {
			return c, fmt.Errorf("read counters: %w", err)
		}
		v, err := n.dev.Read32(0, regs.PortRxDropCount)
		if err != nil {
			return c, fmt.Errorf("read counters: %w", err)
		}
		if reason == 0 {
			c.RxDrops = v
		} else if v != 0 {
			c.Drops[reason] = v
		}
	}
	return c, nil
}

// counter is a read-only register and the field it is read into.
type counter struct {
	off uint64
	dst *uint32
}

// readCounters reads each register into its field; what names them in an error.
func (n *NIC) readCounters(what string, cs []counter) error {
	for _, c := range cs {
		v, err := n.dev.Read32(0, c.off)
		if err != nil {
			return fmt.Errorf("read %s: %w", what, err)
		}
		*c.dst = v
	}
	return nil
}

func macHi(m net.HardwareAddr) uint32 { return uint32(m[0])<<8 | uint32(m[1]) }
func macLo(m net.HardwareAddr) uint32 { return be32(m[2:6]) }
func be32(b []byte) uint32 {
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

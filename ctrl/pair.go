package ctrl

import (
	"net"
	"net/netip"

	"github.com/sanoffload/san/driver/nic"
	"github.com/sanoffload/san/hw/sim"
)

// simPair is two simulated NICs on one clock joined by a cable, addressed, enabled, and with
// connection 2 loaded between them through the driver's test-only context load.
type simPair struct {
	fab *sim.Fabric
	dev [2]*sim.NIC
	nic [2]*nic.NIC
	qp  [2]*nic.QP
}

// pairOptions shapes a simPair; zero values are the defaults.
type pairOptions struct {
	dma     *sim.DMAModel // nil: the PCIe-like host
	pmtu    int           // 0: 1024
	latency uint32        // link latency in cycles
	entries int           // send and receive queue entries; 0: 64
	capture bool          // keep the frames each NIC sends
	psn     [2]uint32     // first PSN each side sends
	// transport is both sides' transport settings; the zero value means simTransport.
	transport nic.Transport
}

// simTransport is the transport for simulated pairs: unlimited RNR retries with the shortest
// RNR timer, 7 retries, and the shortest ACK timeout (4.096 us x 2^t) longer than sending 64
// packets of the path MTU back to back (AckReq comes at least every 64 packets), so a timeout
// never fires while acknowledgements are merely on their way.
func simTransport(pmtu int, id nic.Identity) nic.Transport {
	// Cycles for 64 frames of pmtu bytes plus headers at a beat per cycle, and a round trip's
	// slack; a timeout unit (4.096 us) in cycles at the build's clock.
	beat := int(id.DataWidth / 8)
	need := 64*((pmtu+80)/beat) + 1000
	unit := int(id.ClockKHz) * 4096 / 1_000_000
	t := uint8(1)
	for t < 31 && unit<<t <= need {
		t++
	}
	return nic.Transport{RetryCount: 7, RNRRetry: 7, Timeout: t, MinRNRTimer: 1}
}

func newSimPair(c SimConfig, o pairOptions) (p *simPair, err error) {
	if o.pmtu == 0 {
		o.pmtu = 1024
	}
	if o.entries == 0 {
		o.entries = 64
	}

	fab, err := sim.NewFabric(c.Model)
	if err != nil {
		return nil, err
	}
	p = &simPair{fab: fab}
	defer func() {
		if err != nil {
			fab.Close()
		}
	}()
	macs := [2]net.HardwareAddr{{0x02, 0x53, 0x41, 0x4E, 0, 1}, {0x02, 0x53, 0x41, 0x4E, 0, 2}}
	ips := [2]netip.Addr{netip.AddrFrom4([4]byte{192, 168, 77, 1}), netip.AddrFrom4([4]byte{192, 168, 77, 2})}
	for i := range p.dev {
		if p.dev[i], err = fab.Open(sim.Config{DMA: o.dma, HostMemory: c.HostMemoryMiB << 20,
			MMIOTimeout: uint32(c.MMIOTimeoutCycles)}); err != nil {
			return nil, err
		}
		if p.nic[i], err = nic.Open(p.dev[i]); err != nil {
			return nil, err
		}
		for _, step := range []func() error{
			func() error { return p.nic[i].SetAddress(macs[i], ips[i]) },
			func() error { return p.nic[i].SetPMTU(o.pmtu) },
			func() error { return p.nic[i].Enable(true) },
			func() error { return p.dev[i].Capture(o.capture) },
		} {
			if err = step(); err != nil {
				return nil, err
			}
		}
		if p.qp[i], err = p.nic[i].CreateQP(2, nic.QPConfig{SQEntries: o.entries, RQEntries: o.entries}); err != nil {
			return nil, err
		}
	}
	if err = fab.Link(p.dev[0], p.dev[1], o.latency); err != nil {
		return nil, err
	}
	if o.transport == (nic.Transport{}) {
		o.transport = simTransport(o.pmtu, p.nic[0].Identity())
	}
	for i, q := range p.qp {
		if err = q.LoadForTest(nic.Peer{QPN: p.qp[1-i].QPN(), MAC: macs[1-i], IP: ips[1-i], UDPSource: 0xC000 + uint16(i),
			SendPSN: o.psn[i], ReceivePSN: o.psn[1-i], Transport: o.transport}); err != nil {
			return nil, err
		}
	}
	return p, nil
}

package ctrl

import (
	"fmt"

	"github.com/sanoffload/san/driver/nic"
	"github.com/sanoffload/san/hw/sim"
)

// OpenSim brings up a simulated NIC as configured.
func OpenSim(c SimConfig) (*sim.NIC, error) {
	return sim.Open(sim.Config{
		ModelPath:   c.Model,
		HostMemory:  c.HostMemoryMiB << 20,
		MMIOTimeout: uint32(c.MMIOTimeoutCycles),
	})
}

// SimInfo describes a simulated NIC as read through its BAR0.
type SimInfo struct {
	Device    string `json:"device"`
	Model     string `json:"model"`
	Verilator string `json:"verilator"`
	nic.Identity
}

// ReadSimInfo brings up a simulated NIC, identifies it through BAR0 and closes it.
func ReadSimInfo(c SimConfig) (info SimInfo, err error) {
	n, err := OpenSim(c)
	if err != nil {
		return info, err
	}
	defer func() {
		if cerr := n.Close(); err == nil {
			err = cerr
		}
	}()
	id, err := nic.Identify(n)
	if err != nil {
		return info, fmt.Errorf("simulated NIC: %w", err)
	}
	return SimInfo{Device: "sim0", Model: n.ModelPath(), Verilator: n.VerilatorVersion(), Identity: id}, nil
}

package nic

import (
	"errors"
	"fmt"

	"github.com/sanoffload/san/driver"
	"github.com/sanoffload/san/driver/regs"
)

// Errors from Identify.
var (
	// ErrNotSANNIC means BAR0 does not begin with the SAN NIC's register block.
	ErrNotSANNIC = errors.New("not a SAN NIC")
	// ErrVersion means the NIC's register block has a major version this driver does not speak.
	ErrVersion = errors.New("unsupported register block version")
	// ErrContract means the NIC was built from a different hardware/software contract.
	ErrContract = errors.New("contract mismatch")
)

// Identity is what the NIC says about itself in its first register block.
type Identity struct {
	Type       uint32 `json:"type"`
	Major      uint32 `json:"version_major"`
	Minor      uint32 `json:"version_minor"`
	Patch      uint32 `json:"version_patch"`
	ContractID uint32 `json:"contract_id"`
	DataWidth  uint32 `json:"data_width"`
	NQP        uint32 `json:"n_qp"`
	ClockKHz   uint32 `json:"clock_khz"`
	NMSIX      uint32 `json:"msix_vectors"`
	BAR0Size   uint32 `json:"bar0_size"`
	// Cycles is the core-clock cycle counter when it was read.
	Cycles uint64 `json:"cycles"`
}

// Version formats the block version as major.minor.patch.
func (id Identity) Version() string { return fmt.Sprintf("%d.%d.%d", id.Major, id.Minor, id.Patch) }

// Identify reads the NIC's identity through BAR0 and checks that this driver can drive it: the
// block type, an exact major version, and the contract the RTL was built from.
func Identify(dev driver.Device) (Identity, error) {
	var id Identity
	var version uint32
	reads := []struct {
		off uint64
		dst *uint32
	}{
		{regs.NICBlkType, &id.Type},
		{regs.NICBlkVersion, &version},
		{regs.NICContractID, &id.ContractID},
		{regs.NICBuildDataWidth, &id.DataWidth},
		{regs.NICBuildNQP, &id.NQP},
		{regs.NICBuildClkKhz, &id.ClockKHz},
		{regs.NICBuildNMSIX, &id.NMSIX},
		{regs.NICBuildBar0Size, &id.BAR0Size},
	}
	for _, r := range reads {
		v, err := dev.Read32(0, r.off)
		if err != nil {
			return id, fmt.Errorf("identify: %w", err)
		}
		*r.dst = v
	}
	id.Major = version >> regs.NICBlkVersionMajorShift & regs.NICBlkVersionMajorMask
	id.Minor = version >> regs.NICBlkVersionMinorShift & regs.NICBlkVersionMinorMask
	id.Patch = version >> regs.NICBlkVersionPatchShift & regs.NICBlkVersionPatchMask
	if id.Type != regs.NICType {
		return id, fmt.Errorf("identify: %w: BAR0 block type 0x%08x, want 0x%08x", ErrNotSANNIC, id.Type, uint32(regs.NICType))
	}
	if id.Major != regs.NICVersionMajor {
		return id, fmt.Errorf("identify: %w: NIC block %s, driver speaks %d.x", ErrVersion, id.Version(), regs.NICVersionMajor)
	}
	if id.ContractID != regs.ContractID {
		return id, fmt.Errorf("identify: %w: NIC built from contract 0x%08x, driver from 0x%08x; rebuild both from one tree",
			ErrContract, id.ContractID, uint32(regs.ContractID))
	}
	cycles, err := dev.Read64(0, regs.NICCycleLo)
	if err != nil {
		return id, fmt.Errorf("identify: %w", err)
	}
	id.Cycles = cycles
	return id, nil
}

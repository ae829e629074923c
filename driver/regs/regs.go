// Package regs holds the NIC's register map, doorbell layout and host-memory structure views,
// generated from the contract in hw/regs (zregs.go), plus the few hand-written types the
// generated table uses. The RTL includes the same constants from hw/rtl/san_regs.vh.
package regs

// Access says how software may use a register.
type Access uint8

const (
	// ReadOnly registers ignore writes.
	ReadOnly Access = iota + 1
	// ReadWrite registers hold what software writes.
	ReadWrite
	// WriteOnly registers act on a write and read as zero.
	WriteOnly
)

func (a Access) String() string {
	switch a {
	case ReadOnly:
		return "ro"
	case ReadWrite:
		return "rw"
	case WriteOnly:
		return "wo"
	}
	return "invalid"
}

// Register describes one register of the contract.
type Register struct {
	Block  string // register block name, e.g. "nic"
	Name   string // register name, e.g. "SCRATCH"
	Offset uint64 // BAR0 offset
	Access Access
	// Reset is the value after reset when ResetKnown; otherwise the value is the build
	// parameter named by ResetParam.
	Reset      uint32
	ResetKnown bool
	ResetParam string
}

// VersionWord packs a block version as BLK_VERSION holds it.
func VersionWord(major, minor, patch uint32) uint32 { return major<<16 | minor<<8 | patch }

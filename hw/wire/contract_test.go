package wire

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/sanoffload/san/driver/regs"
)

// TestDropReasonsMatchContract keeps the Go reference receiver's reasons and the codes the RTL
// reports (from the contract) the same numbers.
func TestDropReasonsMatchContract(t *testing.T) {
	pairs := map[DropReason]regs.RxDrop{
		DropTruncated: regs.RxDropTruncated, DropEtherType: regs.RxDropEtherType,
		DropIPVersion: regs.RxDropIPVersion, DropIPLength: regs.RxDropIPLength,
		DropIPProtocol: regs.RxDropIPProtocol, DropUDPPort: regs.RxDropUDPPort,
		DropUDPLength: regs.RxDropUDPLength, DropTVer: regs.RxDropTver, DropPKey: regs.RxDropPkey,
		DropOpcode: regs.RxDropOpcode, DropICRC: regs.RxDropICRC, DropLength: regs.RxDropLength,
		DropDstMAC: regs.RxDropDstMAC, DropDstIP: regs.RxDropDstIP,
		DropARPMalformed: regs.RxDropARPMalformed, DropARPTarget: regs.RxDropARPTarget,
	}
	for w, r := range pairs {
		assert.Equal(t, uint8(w), uint8(r), "%s vs %s", w, r)
	}
}

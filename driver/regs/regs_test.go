package regs

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The layouts the driver and the RTL share, pinned: a change here is an incompatible contract
// change and needs a block version bump.
func TestStructureLayouts(t *testing.T) {
	assert.Equal(t, 64, SendWQESize)
	assert.Equal(t, 32, RecvWQESize)
	assert.Equal(t, 32, CQESize)
	assert.Equal(t, 256, EQESize)

	c := make(CQE, CQESize)
	c.SetWrID(0x0102030405060708)
	c.SetByteLen(0xa0b0c0d0)
	c.SetQPN(0x00abcdef)
	c.SetOpcode(uint8(CQEOpcodeRecv))
	c.SetStatus(uint8(CQEStatusLocalLength))
	c.SetFlagsPhase(1)
	assert.Equal(t, []byte{8, 7, 6, 5, 4, 3, 2, 1}, []byte(c[0:8]), "little-endian WR_ID at 0")
	assert.Equal(t, []byte{0xd0, 0xc0, 0xb0, 0xa0}, []byte(c[8:12]))
	assert.Equal(t, []byte{0xef, 0xcd, 0xab, 0}, []byte(c[12:16]))
	assert.Equal(t, byte(CQEOpcodeRecv), c[16])
	assert.Equal(t, byte(CQEStatusLocalLength), c[17])
	assert.Equal(t, byte(0x80), c[31], "the phase bit is the top bit of the last byte")

	w := make(SendWQE, SendWQESize)
	w.SetAddr(0x1_0000_1000)
	w.SetLength(4096)
	w.SetFlagsSignaled(1)
	w.SetFlagsSolicited(1)
	assert.Equal(t, uint8(3), w[21])
	assert.Equal(t, uint32(4096), w.Length())
	assert.Equal(t, uint64(0x1_0000_1000), w.Addr())
}

func TestRegisterTable(t *testing.T) {
	seen := map[uint64]string{}
	for _, r := range Registers {
		require.Zero(t, r.Offset%4, "%s", r.Name)
		require.Less(t, r.Offset, uint64(DoorbellBase), "%s", r.Name)
		_, dup := seen[r.Offset]
		require.False(t, dup, "%s shares offset 0x%x", r.Name, r.Offset)
		seen[r.Offset] = r.Name
		require.True(t, r.ResetKnown != (r.ResetParam != ""), "%s: a reset value or a build parameter", r.Name)
	}
	assert.Equal(t, "ICRC", RxDropICRC.String())
	assert.Equal(t, "RxDrop(31)", RxDrop(31).String())
}

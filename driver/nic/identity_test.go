package nic

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sanoffload/san/driver"
	"github.com/sanoffload/san/driver/regs"
	"github.com/sanoffload/san/hw/sim"
)

func TestIdentifySimulatedNIC(t *testing.T) {
	n, err := sim.Open(sim.Config{})
	require.NoError(t, err)
	defer n.Close()
	id, err := Identify(n)
	require.NoError(t, err)
	assert.Equal(t, uint32(regs.NICType), id.Type)
	assert.Equal(t, "0.1.0", id.Version())
	assert.Equal(t, uint32(256), id.NQP)
	assert.Equal(t, uint32(64), id.DataWidth)
	assert.Equal(t, uint32(2<<20), id.BAR0Size)
	assert.NotZero(t, id.Cycles)
}

// regFile is a test double: a Device that is only a map of 32-bit registers.
type regFile map[uint64]uint32

func (r regFile) BARSize(int) (uint64, error)              { return 1 << 21, nil }
func (r regFile) Read32(_ int, off uint64) (uint32, error) { return r[off], nil }
func (r regFile) Write32(_ int, off uint64, v uint32) error {
	r[off] = v
	return nil
}
func (r regFile) Read64(_ int, off uint64) (uint64, error) {
	return uint64(r[off+4])<<32 | uint64(r[off]), nil
}
func (r regFile) Write64(int, uint64, uint64) error                  { return nil }
func (r regFile) AllocDMA(int) (*driver.DMABuffer, error)            { return nil, driver.ErrNoMemory }
func (r regFile) FreeDMA(*driver.DMABuffer) error                    { return driver.ErrNotMapped }
func (r regFile) NumVectors() int                                    { return 0 }
func (r regFile) WaitInterrupt(context.Context, int) (uint64, error) { return 0, driver.ErrNoVector }
func (r regFile) Reset() error                                       { return nil }
func (r regFile) Close() error                                       { return nil }

func goodRegs() regFile {
	return regFile{
		regs.NICBlkType:    regs.NICType,
		regs.NICBlkVersion: regs.VersionWord(regs.NICVersionMajor, regs.NICVersionMinor, regs.NICVersionPatch),
		regs.NICContractID: regs.ContractID,
	}
}

func TestIdentifyRefusesMismatches(t *testing.T) {
	cases := []struct {
		name string
		mod  func(regFile)
		want error
	}{
		{"ok", func(regFile) {}, nil},
		{"other device", func(r regFile) { r[regs.NICBlkType] = 0xffffffff }, ErrNotSANNIC},
		{"newer major", func(r regFile) {
			r[regs.NICBlkVersion] = regs.VersionWord(regs.NICVersionMajor+1, 0, 0)
		}, ErrVersion},
		{"newer minor is fine", func(r regFile) {
			r[regs.NICBlkVersion] = regs.VersionWord(regs.NICVersionMajor, regs.NICVersionMinor+1, 0)
		}, nil},
		{"other contract", func(r regFile) { r[regs.NICContractID]++ }, ErrContract},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := goodRegs()
			c.mod(r)
			_, err := Identify(r)
			if c.want == nil {
				assert.NoError(t, err)
			} else {
				assert.ErrorIs(t, err, c.want)
			}
		})
	}
}

package sim

import (
	"context"
	"math/rand"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sanoffload/san/driver"
	"github.com/sanoffload/san/driver/regs"
)

// open brings up a NIC for one test; it fails, saying to run make, when the model is missing.
func open(t *testing.T, cfg Config) *NIC {
	t.Helper()
	n, err := Open(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, n.Close()) })
	return n
}

func read(t *testing.T, d driver.Device, off uint64) uint32 {
	t.Helper()
	v, err := d.Read32(0, off)
	require.NoError(t, err, "read 0x%x", off)
	return v
}

func TestIdentityThroughDevice(t *testing.T) {
	var d driver.Device = open(t, Config{})
	assert.Equal(t, uint32(regs.NICType), read(t, d, regs.NICBlkType))
	assert.Equal(t, regs.VersionWord(regs.NICVersionMajor, regs.NICVersionMinor, regs.NICVersionPatch),
		read(t, d, regs.NICBlkVersion))
	// The chain of register blocks: nic, port, qpc, arp, cm, end.
	next := read(t, d, regs.NICBlkNext)
	for _, b := range []struct{ base, typ uint32 }{{regs.PortBase, regs.PortType}, {regs.QpcBase, regs.QpcType},
		{regs.ARPBase, regs.ARPType}, {regs.CMBase, regs.CMType}} {
		require.Equal(t, b.base, next)
		assert.Equal(t, b.typ, read(t, d, uint64(next)))
		next = read(t, d, uint64(next)+8)
	}
	assert.Equal(t, uint32(0), next, "cm ends the chain")
	assert.Equal(t, uint32(regs.ContractID), read(t, d, regs.NICContractID), "model built from another contract: run make")
	// The reference build the Makefile verilates.
	assert.Equal(t, uint32(64), read(t, d, regs.NICBuildDataWidth))
	assert.Equal(t, uint32(256), read(t, d, regs.NICBuildNQP))
	assert.Equal(t, uint32(156250), read(t, d, regs.NICBuildClkKhz))
	assert.Equal(t, uint32(32), read(t, d, regs.NICBuildNMSIX))
	size, err := d.BARSize(0)
	require.NoError(t, err)
	assert.Equal(t, uint64(2<<20), size, "1 MiB of registers then 256 doorbell pages")
	_, err = d.BARSize(1)
	assert.ErrorIs(t, err, driver.ErrNoBAR, "the NIC has only BAR0")
	assert.Equal(t, 32, d.NumVectors())
}

func TestScratchWriteReadBack(t *testing.T) {
	var d driver.Device = open(t, Config{})
	seed := int64(0x5A1C)
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewSource(seed))
	assert.Equal(t, uint32(0), read(t, d, regs.NICScratch), "reset value")
	for i := 0; i < 200; i++ {
		v := rng.Uint32()
		require.NoError(t, d.Write32(0, regs.NICScratch, v))
		require.Equal(t, v, read(t, d, regs.NICScratch))
	}
	// A 64-bit write at SCRATCH covers SCRATCH (low word) and CONTROL (high word).
	require.NoError(t, d.Write64(0, regs.NICScratch, 0x00000001_cafef00d))
	assert.Equal(t, uint32(0xcafef00d), read(t, d, regs.NICScratch))
	assert.Equal(t, uint32(1), read(t, d, regs.NICControl))
	v, err := d.Read64(0, regs.NICScratch)
	require.NoError(t, err)
	assert.Equal(t, uint64(0x00000001_cafef00d), v)
}

func TestRegisterTableResetValues(t *testing.T) {
	var d driver.Device = open(t, Config{})
	for _, r := range regs.Registers {
		if !r.ResetKnown || r.Name == "CYCLE_LO" || r.Name == "CYCLE_HI" || r.Access == regs.WriteOnly {
			continue
		}
		assert.Equal(t, r.Reset, read(t, d, r.Offset), "%s.%s after reset", r.Block, r.Name)
	}
}

func TestReadOnlyRegistersIgnoreWrites(t *testing.T) {
	n := open(t, Config{})
	for _, r := range regs.Registers {
		if r.Access != regs.ReadOnly {
			continue
		}
		before := read(t, n, r.Offset)
		require.NoError(t, n.Write32(0, r.Offset, ^before), "%s: a posted write is accepted", r.Name)
		after := read(t, n, r.Offset)
		switch r.Name {
		case "CYCLE_LO":
			assert.Greater(t, after, before, "CYCLE_LO keeps counting, not loaded")
		case "CYCLE_HI":
			assert.Equal(t, uint32(0), after, "CYCLE_HI is only loaded from the counter")
		default:
			assert.Equal(t, before, after, "%s is read-only", r.Name)
		}
	}
	assert.Equal(t, uint32(0), read(t, n, regs.NICBadAccess), "writes to read-only registers are not bad accesses")
}

func TestWriteOnlyRegisterReadsZero(t *testing.T) {
	n := open(t, Config{})
	require.NoError(t, n.Write32(0, regs.NICIRQTest, 1))
	assert.Equal(t, uint32(0), read(t, n, regs.NICIRQTest))
}

func TestBadAccessesReturnErrors(t *testing.T) {
	n := open(t, Config{})
	size, err := n.BARSize(0)
	require.NoError(t, err)
	cases := []struct {
		name string
		bar  int
		off  uint64
		want error
		bus  bool // reaches the RTL, which answers SLVERR and counts it
	}{
		{"unaligned", 0, regs.NICScratch + 1, driver.ErrUnaligned, false},
		{"past the end", 0, size, driver.ErrOutOfRange, false},
		{"straddles the end", 0, size - 2, driver.ErrUnaligned, false},
		{"far past the end", 0, 1 << 40, driver.ErrOutOfRange, false},
		{"no such BAR", 2, 0, driver.ErrNoBAR, false},
		{"undecoded register", 0, 0xFC, driver.ErrBusError, true},
		{"undecoded doorbell offset", 0, regs.DoorbellBase + 0xC, driver.ErrBusError, true},
	}
	bad := read(t, n, regs.NICBadAccess)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := n.Read32(c.bar, c.off)
			assert.ErrorIs(t, err, c.want)
			var ae *driver.AccessError
			require.ErrorAs(t, err, &ae)
			assert.Equal(t, c.off, ae.Offset)
			assert.ErrorIs(t, n.Write32(c.bar, c.off, 0xdeadbeef), c.want)
			if c.bus {
				bad += 2
			}
			assert.Equal(t, bad, read(t, n, regs.NICBadAccess))
		})
	}
	_, err = n.Read64(0, regs.NICCycleLo+4)
	assert.ErrorIs(t, err, driver.ErrUnaligned, "64-bit access needs 8-byte alignment")
	assert.Equal(t, uint32(0), read(t, n, regs.NICScratch), "no bad write landed in a register")
}

func TestCycleCounter(t *testing.T) {
	n := open(t, Config{})
	c0, err := n.Read64(0, regs.NICCycleLo)
	require.NoError(t, err)
	require.NoError(t, n.Step(100000))
	c1, err := n.Read64(0, regs.NICCycleLo)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, c1-c0, uint64(100000))
	model, err := n.Cycles()
	require.NoError(t, err)
	assert.Greater(t, model, c1, "the harness counts reset cycles too")
}

func TestControlEnableShowsInStatus(t *testing.T) {
	n := open(t, Config{})
	assert.Equal(t, uint32(0), read(t, n, regs.NICStatus))
	require.NoError(t, n.Write32(0, regs.NICControl, 1<<regs.NICControlEnableShift))
	assert.Equal(t, uint32(1), (read(t, n, regs.NICStatus)>>regs.NICStatusEnabledShift)&regs.NICStatusEnabledMask)
}

func TestInterruptSelfTest(t *testing.T) {
	n := open(t, Config{IRQWaitCycles: 4096})
	ctx := context.Background()
	for _, v := range []int{0, 3, 31} {
		require.NoError(t, n.Write32(0, regs.NICIRQTest, uint32(v)))
		c, err := n.WaitInterrupt(ctx, v)
		require.NoError(t, err, "vector %d", v)
		assert.Equal(t, uint64(1), c)
	}
	// Fired twice before a wait: one wait returns both, as an eventfd read does.
	require.NoError(t, n.Write32(0, regs.NICIRQTest, 5))
	require.NoError(t, n.Write32(0, regs.NICIRQTest, 5))
	c, err := n.WaitInterrupt(ctx, 5)
	require.NoError(t, err)
	assert.Equal(t, uint64(2), c)

	// A vector the NIC lacks raises nothing and counts as a bad access.
	require.NoError(t, n.Write32(0, regs.NICIRQTest, 32))
	assert.Equal(t, uint32(1), read(t, n, regs.NICBadAccess))
	_, err = n.WaitInterrupt(ctx, 0)
	assert.ErrorIs(t, err, driver.ErrTimeout, "nothing fired, the wait ends")
	_, err = n.WaitInterrupt(ctx, 32)
	assert.ErrorIs(t, err, driver.ErrNoVector)
	assert.Equal(t, uint64(0), n.SpuriousInterrupts())

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err = n.WaitInterrupt(cctx, 1)
	assert.ErrorIs(t, err, context.Canceled)
}

func TestResetRestoresRegisters(t *testing.T) {
	n := open(t, Config{})
	require.NoError(t, n.Write32(0, regs.NICScratch, 0x12345678))
	require.NoError(t, n.Write32(0, regs.NICControl, 1))
	require.NoError(t, n.Write32(0, regs.NICIRQTest, 2))
	require.NoError(t, n.Reset())
	assert.Equal(t, uint32(0), read(t, n, regs.NICScratch))
	assert.Equal(t, uint32(0), read(t, n, regs.NICStatus))
	lo := read(t, n, regs.NICCycleLo)
	assert.Less(t, lo, uint32(100), "the counter restarted at reset")
}

func TestDMAMemory(t *testing.T) {
	n := open(t, Config{HostMemory: 16 * 4096})
	a, err := n.AllocDMA(100)
	require.NoError(t, err)
	b, err := n.AllocDMA(4097)
	require.NoError(t, err)
	assert.Len(t, a.Bytes, 100)
	assert.Len(t, b.Bytes, 4097)
	assert.GreaterOrEqual(t, a.IOVA, uint64(IOVABase))
	assert.GreaterOrEqual(t, b.IOVA, a.IOVA+4096, "buffers never share a page")
	a.Bytes[0] = 0xff
	require.NoError(t, n.FreeDMA(a))
	assert.ErrorIs(t, n.FreeDMA(a), driver.ErrNotMapped, "double free")
	assert.ErrorIs(t, n.FreeDMA(&driver.DMABuffer{IOVA: 1, Bytes: make([]byte, 1)}), driver.ErrNotMapped)
	c, err := n.AllocDMA(100)
	require.NoError(t, err)
	assert.Equal(t, byte(0), c.Bytes[0], "fresh buffers are zeroed")
	_, err = n.AllocDMA(16 * 4096)
	assert.ErrorIs(t, err, driver.ErrNoMemory)
	_, err = n.AllocDMA(0)
	assert.Error(t, err)
}

func TestCloseIsIdempotentAndFinal(t *testing.T) {
	n, err := Open(Config{})
	require.NoError(t, err)
	require.NoError(t, n.Close())
	require.NoError(t, n.Close())
	_, err = n.Read32(0, regs.NICScratch)
	assert.ErrorIs(t, err, driver.ErrClosed)
	assert.ErrorIs(t, n.Write32(0, regs.NICScratch, 1), driver.ErrClosed)
	assert.ErrorIs(t, n.Reset(), driver.ErrClosed)
	_, err = n.AllocDMA(1)
	assert.ErrorIs(t, err, driver.ErrClosed)
	_, err = n.WaitInterrupt(context.Background(), 0)
	assert.ErrorIs(t, err, driver.ErrClosed)
}

func TestTwoNICsAreIndependent(t *testing.T) {
	a, b := open(t, Config{}), open(t, Config{})
	require.NoError(t, a.Write32(0, regs.NICScratch, 0xa))
	require.NoError(t, b.Write32(0, regs.NICScratch, 0xb))
	assert.Equal(t, uint32(0xa), read(t, a, regs.NICScratch))
	assert.Equal(t, uint32(0xb), read(t, b, regs.NICScratch))
}

func TestMissingModelSaysRunMake(t *testing.T) {
	_, err := Open(Config{ModelPath: "/nonexistent/libsanmodel.so"})
	require.ErrorIs(t, err, ErrModelNotBuilt)
	assert.Contains(t, err.Error(), "make")
}

// TestWaitInterruptBlocksUntilCtx: with no cycle bound a wait lasts as long as its ctx allows
// (an idle NIC's clock costs nothing meanwhile), and an interrupt raised by another caller's
// BAR access wakes a blocked waiter without anyone stepping the clock; the NIC's own clock
// ends with Close, waking a waiter with driver.ErrClosed.
func TestWaitInterruptBlocksUntilCtx(t *testing.T) {
	for _, mode := range []ClockMode{Deterministic, RealTime} {
		t.Run(mode.String(), func(t *testing.T) {
			n, err := Open(Config{Clock: mode})
			require.NoError(t, err)
			assert.Equal(t, mode, n.ClockMode())
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
			_, err = n.WaitInterrupt(ctx, 3)
			cancel()
			assert.ErrorIs(t, err, context.DeadlineExceeded)

			woke := make(chan error)
			go func() {
				_, err := n.WaitInterrupt(context.Background(), 4)
				woke <- err
			}()
			require.NoError(t, n.Write32(0, regs.NICIRQTest, 4))
			assert.NoError(t, <-woke)

			go func() {
				_, err := n.WaitInterrupt(context.Background(), 5)
				woke <- err
			}()
			require.NoError(t, n.Close())
			assert.ErrorIs(t, <-woke, driver.ErrClosed)
		})
	}
}

// TestClockModeRejected: a clock mode that is not one of the two is a clear error.
func TestClockModeRejected(t *testing.T) {
	_, err := Open(Config{Clock: ClockMode(7)})
	assert.ErrorContains(t, err, "clock mode 7")
}

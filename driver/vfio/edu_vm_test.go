//go:build vfiovm && linux

package vfio

// The real-kernel tests: built with -tags vfiovm, this package's test binary is the /init of
// a QEMU guest (see vm_test.go) and drives QEMU's edu device through the real vfio-pci.

import (
	"context"
	"flag"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sanoffload/san/driver"
	"github.com/sanoffload/san/driver/vfio/internal/vmtest"
)

func TestMain(m *testing.M) {
	if os.Getpid() != 1 {
		os.Exit(m.Run()) // run by hand on a machine with an edu device (SAN_VFIO_EDU=1)
	}
	if err := vmtest.Boot(); err != nil {
		fmt.Println("vfio-vm: boot:", err)
		vmtest.Report(false)
		vmtest.PowerOff()
	}
	_ = flag.Set("test.v", "true")
	_ = flag.Set("test.timeout", "90s")
	code := m.Run()
	vmtest.Report(code == 0)
	vmtest.PowerOff()
}

// QEMU's edu device (docs/specs/edu.rst in QEMU).
const (
	eduVendor = 0x1234
	eduDevice = 0x11e8

	eduID        = 0x00 // reads 0x010000ed
	eduLiveness  = 0x04 // reads back the inverse of what was written
	eduIRQStatus = 0x24
	eduIRQRaise  = 0x60 // ORs the value into the status and raises the interrupt
	eduIRQAck    = 0x64 // clears those bits; the line drops at zero
	eduDMASrc    = 0x80
	eduDMADst    = 0x88
	eduDMACount  = 0x90
	eduDMACmd    = 0x98 // bit 0 start (clears when done), bit 1 device to RAM, bit 2 interrupt when done
	eduDMABuf    = 0x40000

	eduDMAStart   = 1 << 0
	eduDMAToRAM   = 1 << 1
	eduDMAIRQ     = 1 << 2
	eduIRQDMADone = 0x100
)

// TestEdu takes edu through the driver's life in order: find, bind, open, MMIO, DMA both
// ways, interrupts, reset, close twice, reopen, unbind.
func TestEdu(t *testing.T) {
	if os.Getpid() != 1 && os.Getenv("SAN_VFIO_EDU") == "" {
		t.Skip("needs QEMU's edu device; runs inside the VM of TestVFIOInVM")
	}
	sysfs := &Sysfs{}
	var fn Function
	var bind Binding
	var d *Device

	step := func(name string, f func(t *testing.T)) {
		if !t.Run(name, f) {
			t.FailNow() // later steps build on this one
		}
	}
	step("discover", func(t *testing.T) {
		var err error
		fn, err = sysfs.Find(eduVendor, eduDevice)
		require.NoError(t, err)
		require.GreaterOrEqual(t, fn.IOMMUGroup, 0, "edu has an IOMMU group under the emulated VT-d")
		fmt.Printf("vfio-vm: found edu at %s, group %d, driver %q\n", fn.BDF, fn.IOMMUGroup, fn.Driver)
		all, err := sysfs.List()
		require.NoError(t, err)
		assert.Greater(t, len(all), 1, "the q35 machine has more functions than edu")
	})
	step("open before bind is refused", func(t *testing.T) {
		_, err := Open(fn.BDF, nil)
		assert.ErrorIs(t, err, ErrNotBoundToVFIO)
		assert.ErrorContains(t, err, "sanctl bind")
	})
	step("bind", func(t *testing.T) {
		var err error
		bind, err = sysfs.Bind(fn.BDF)
		require.NoError(t, err)
		assert.Equal(t, "", bind.Previous, "edu has no kernel driver")
		assert.Equal(t, DriverName, bind.Driver)
		now, err := sysfs.Lookup(fn.BDF)
		require.NoError(t, err)
		assert.Equal(t, DriverName, now.Driver)
		assert.Equal(t, DriverName, now.Override)
		again, err := sysfs.Bind(fn.BDF)
		require.NoError(t, err, "binding twice is harmless")
		assert.Equal(t, DriverName, again.Previous)
	})
	step("open", func(t *testing.T) {
		var err error
		d, err = Open(fn.BDF, nil)
		require.NoError(t, err)
		want := PathGroup
		if fileExists("/dev/iommu") && fn.VFIODev != "" {
			want = PathIOMMUFD
		}
		assert.Equal(t, want, d.Path())
		assert.Equal(t, IRQMSI, d.IRQType(), "edu has MSI and no MSI-X")
		assert.Equal(t, 1, d.NumVectors())
		size, err := d.BARSize(0)
		require.NoError(t, err)
		assert.Equal(t, uint64(1<<20), size)
		_, err = d.BARSize(1)
		assert.ErrorIs(t, err, driver.ErrNoBAR)
		fmt.Printf("vfio-vm: opened %s through the %s path, bar0 %d KiB, %d %s vector(s), reset %v\n",
			fn.BDF, d.Path(), size>>10, d.NumVectors(), d.IRQType(), d.CanReset())
		_, err = Open(fn.BDF, nil)
		assert.Error(t, err, "a second open of the same group is refused")
	})
	step("mmio", func(t *testing.T) {
		id, err := d.Read32(0, eduID)
		require.NoError(t, err)
		assert.Equal(t, uint32(0x010000ed), id)
		for _, x := range []uint32{0, 0x12345678, 0xffffffff} {
			require.NoError(t, d.Write32(0, eduLiveness, x))
			got, err := d.Read32(0, eduLiveness)
			require.NoError(t, err)
			assert.Equal(t, ^x, got)
		}
		require.NoError(t, d.Write64(0, eduDMASrc, 0x1122334455667788))
		v, err := d.Read64(0, eduDMASrc)
		require.NoError(t, err)
		assert.Equal(t, uint64(0x1122334455667788), v)

		_, err = d.Read32(0, 1<<20)
		assert.ErrorIs(t, err, driver.ErrOutOfRange)
		assert.ErrorIs(t, d.Write64(0, 1<<20, 0), driver.ErrOutOfRange)
		_, err = d.Read32(0, 2)
		assert.ErrorIs(t, err, driver.ErrUnaligned)
		_, err = d.Read32(2, 0)
		assert.ErrorIs(t, err, driver.ErrNoBAR)
	})
	// edu's buffer is 4 KiB, but QEMU 7.2 refuses a transfer that ends exactly at its end.
	pattern := make([]byte, 3000)
	for i := range pattern {
		pattern[i] = byte(i*7 + i>>8)
	}
	step("dma both ways", func(t *testing.T) { eduRoundTrip(t, d, pattern) })
	step("interrupt", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, d.Write32(0, eduIRQRaise, 0x5))
		n, err := d.WaitInterrupt(ctx, 0)
		require.NoError(t, err)
		assert.GreaterOrEqual(t, n, uint64(1))
		st, err := d.Read32(0, eduIRQStatus)
		require.NoError(t, err)
		assert.Equal(t, uint32(0x5), st)
		require.NoError(t, d.Write32(0, eduIRQAck, st))

		quiet, cancel2 := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel2()
		_, err = d.WaitInterrupt(quiet, 0)
		assert.ErrorIs(t, err, context.DeadlineExceeded, "no interrupt is pending after the ack")
		_, err = d.WaitInterrupt(ctx, 1)
		assert.ErrorIs(t, err, driver.ErrNoVector)
	})
	step("reset", func(t *testing.T) {
		require.True(t, d.CanReset(), "edu behind a root port can be reset through its bus")
		require.NoError(t, d.Reset())
		id, err := d.Read32(0, eduID)
		require.NoError(t, err)
		assert.Equal(t, uint32(0x010000ed), id, "BAR0 answers after the reset")
		eduRoundTrip(t, d, pattern) // mappings, bus mastering and MSI survive a reset
	})
	step("close", func(t *testing.T) {
		require.NoError(t, d.Close())
		assert.NoError(t, d.Close(), "a second close is safe")
		_, err := d.Read32(0, eduID)
		assert.ErrorIs(t, err, driver.ErrClosed)
		_, err = d.AllocDMA(4096)
		assert.ErrorIs(t, err, driver.ErrClosed)
	})
	step("reopen", func(t *testing.T) {
		var err error
		d, err = Open(fn.BDF, nil)
		require.NoError(t, err)
		defer d.Close()
		id, err := d.Read32(0, eduID)
		require.NoError(t, err)
		assert.Equal(t, uint32(0x010000ed), id)
		eduRoundTrip(t, d, pattern)
	})
	step("unbind restores the previous driver", func(t *testing.T) {
		require.NoError(t, sysfs.Restore(bind))
		now, err := sysfs.Lookup(fn.BDF)
		require.NoError(t, err)
		assert.Equal(t, "", now.Driver, "edu is back to no driver")
		assert.Equal(t, "", now.Override)
		_, err = Open(fn.BDF, nil)
		assert.ErrorIs(t, err, ErrNotBoundToVFIO)
		fmt.Printf("vfio-vm: unbound %s, driver now %q\n", fn.BDF, now.Driver)
	})
}

// eduRoundTrip copies pattern from RAM into edu's buffer and back into a second buffer, both
// through the IOMMU, waiting for edu's DMA-done interrupt each time.
func eduRoundTrip(t *testing.T, d *Device, pattern []byte) {
	t.Helper()
	src, err := d.AllocDMA(len(pattern))
	require.NoError(t, err)
	dst, err := d.AllocDMA(len(pattern))
	require.NoError(t, err)
	assert.Equal(t, make([]byte, len(pattern)), dst.Bytes, "AllocDMA returns zeroed memory")
	assert.NotEqual(t, src.IOVA, dst.IOVA)
	copy(src.Bytes, pattern)

	eduDMA(t, d, src.IOVA, eduDMABuf, len(pattern), 0)
	eduDMA(t, d, eduDMABuf, dst.IOVA, len(pattern), eduDMAToRAM)
	assert.Equal(t, pattern, dst.Bytes, "the data came back through the device")

	require.NoError(t, d.FreeDMA(src))
	require.NoError(t, d.FreeDMA(dst))
	assert.ErrorIs(t, d.FreeDMA(dst), driver.ErrNotMapped)
}

// eduDMA runs one transfer and waits for its interrupt.
func eduDMA(t *testing.T, d *Device, from, to uint64, n int, dir uint64) {
	t.Helper()
	require.NoError(t, d.Write64(0, eduDMASrc, from))
	require.NoError(t, d.Write64(0, eduDMADst, to))
	require.NoError(t, d.Write64(0, eduDMACount, uint64(n)))
	require.NoError(t, d.Write64(0, eduDMACmd, eduDMAStart|eduDMAIRQ|dir))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := d.WaitInterrupt(ctx, 0)
	require.NoError(t, err, "edu's DMA-done interrupt")
	cmd, err := d.Read64(0, eduDMACmd)
	require.NoError(t, err)
	assert.Zero(t, cmd&eduDMAStart, "the transfer is done")
	st, err := d.Read32(0, eduIRQStatus)
	require.NoError(t, err)
	assert.Equal(t, uint32(eduIRQDMADone), st&eduIRQDMADone)
	require.NoError(t, d.Write32(0, eduIRQAck, st))
}

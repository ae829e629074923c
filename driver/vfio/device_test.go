//go:build linux

package vfio

import (
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/sanoffload/san/driver"
	"github.com/sanoffload/san/driver/vfio/vfiotest"
)

const nicBDF = "0000:03:00.0"

// fakeMachine is the SAN NIC on vfio-pci, alone in group 5, on a fake kernel.
func fakeMachine(t *testing.T, fns ...vfiotest.Func) (*vfiotest.Tree, *fakeKernel, *Options) {
	t.Helper()
	if len(fns) == 0 {
		fns = []vfiotest.Func{{BDF: nicBDF, Vendor: VendorID, Device: DeviceID, Class: 0x020000, Driver: DriverName, Group: 5}}
	}
	tr := vfiotest.New(t, fns...)
	k := newFakeKernel(nicBDF)
	return tr, k, &Options{Sysfs: tr.Root, Dev: t.TempDir(), sys: k}
}

func openFake(t *testing.T, o *Options) *Device {
	t.Helper()
	d, err := Open(nicBDF, o)
	require.NoError(t, err)
	t.Cleanup(func() { _ = d.Close() })
	return d
}

func TestOpenGroupPath(t *testing.T) {
	_, k, o := fakeMachine(t)
	d := openFake(t, o)
	assert.Equal(t, PathGroup, d.Path())
	assert.Equal(t, IRQMSIX, d.IRQType())
	assert.Equal(t, 4, d.NumVectors())
	assert.True(t, d.CanReset())
	assert.Equal(t, uintptr(extType1v2), k.iommuSet)
	assert.Equal(t, nicBDF, d.Function().BDF)
	cmd := binary.LittleEndian.Uint16(k.config[pciCommand:])
	assert.Equal(t, uint16(pciCommandMaster|pciCommandMemory), cmd, "bus mastering on")
	set := k.lastIRQSet()
	assert.Equal(t, uint32(irqSetDataEventfd|irqSetActionTrigger), set.flags)
	assert.Equal(t, uint32(pciMSIXIRQ), set.index)
	assert.Len(t, set.fds, 4)

	size, err := d.BARSize(0)
	require.NoError(t, err)
	assert.Equal(t, uint64(fakeBAR0Size), size)
	for _, bar := range []int{1, 3, 6, -1} {
		_, err = d.BARSize(bar)
		assert.ErrorIs(t, err, driver.ErrNoBAR)
	}
}

func TestOpenPrefersIOMMUFD(t *testing.T) {
	_, k, o := fakeMachine(t, vfiotest.Func{BDF: nicBDF, Vendor: VendorID, Device: DeviceID, Driver: DriverName, Group: 5, VFIODev: "vfio0"})
	require.NoError(t, os.WriteFile(filepath.Join(o.Dev, "iommu"), nil, 0o600))
	d := openFake(t, o)
	assert.Equal(t, PathIOMMUFD, d.Path())
	assert.True(t, k.called("bind iommufd"))
	assert.True(t, k.called("attach 2"))
	b, err := d.AllocDMA(100)
	require.NoError(t, err)
	assert.True(t, k.called("ioas map"))
	require.NoError(t, d.FreeDMA(b))
	require.NoError(t, d.Close())
	assert.True(t, k.called("destroy"))
	assert.Empty(t, k.openFDs())

	o.Path = PathGroup
	d2, err := Open(nicBDF, o)
	require.NoError(t, err)
	assert.Equal(t, PathGroup, d2.Path(), "the group path on request")
	require.NoError(t, d2.Close())
}

func TestMMIO(t *testing.T) {
	_, k, o := fakeMachine(t)
	d := openFake(t, o)
	require.NoError(t, d.Write32(0, 0x10, 0xdeadbeef))
	assert.Equal(t, uint32(0xdeadbeef), binary.LittleEndian.Uint32(k.bar0[0x10:]))
	require.NoError(t, d.Write64(0, 0x3ff8, 0x0102030405060708))
	v64, err := d.Read64(0, 0x3ff8)
	require.NoError(t, err)
	assert.Equal(t, uint64(0x0102030405060708), v64)
	v32, err := d.Read32(0, 0x3ffc)
	require.NoError(t, err)
	assert.Equal(t, uint32(0x01020304), v32, "little-endian halves")
	assert.Zero(t, k.preads-1, "only the config read at open went through pread")

	// BAR2 cannot be mapped: its accesses go through the device fd.
	require.NoError(t, d.Write32(2, 0x8, 0xcafef00d))
	assert.Equal(t, uint32(0xcafef00d), binary.LittleEndian.Uint32(k.bar2[0x8:]))
	v32, err = d.Read32(2, 0x8)
	require.NoError(t, err)
	assert.Equal(t, uint32(0xcafef00d), v32)
	require.NoError(t, d.Write64(2, 0xf8, 7))
	v64, err = d.Read64(2, 0xf8)
	require.NoError(t, err)
	assert.Equal(t, uint64(7), v64)
}

func TestMMIOOutOfRange(t *testing.T) {
	_, _, o := fakeMachine(t)
	d := openFake(t, o)
	tests := []struct {
		name  string
		do    func() error
		err   error
		bar   int
		off   uint64
		width int
	}{
		{"read32 past the end", func() error { _, err := d.Read32(0, fakeBAR0Size); return err }, driver.ErrOutOfRange, 0, fakeBAR0Size, 4},
		{"write64 straddling the end", func() error { return d.Write64(2, fakeBAR2Size-4, 0) }, driver.ErrUnaligned, 2, fakeBAR2Size - 4, 8},
		{"write64 past the end", func() error { return d.Write64(2, fakeBAR2Size, 0) }, driver.ErrOutOfRange, 2, fakeBAR2Size, 8},
		{"read64 unaligned", func() error { _, err := d.Read64(0, 4); return err }, driver.ErrUnaligned, 0, 4, 8},
		{"write32 huge offset", func() error { return d.Write32(0, 1<<63, 0) }, driver.ErrOutOfRange, 0, 1 << 63, 4},
		{"absent bar", func() error { _, err := d.Read32(1, 0); return err }, driver.ErrNoBAR, 1, 0, 4},
		{"negative bar", func() error { return d.Write32(-1, 0, 0) }, driver.ErrNoBAR, -1, 0, 4},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.do()
			require.ErrorIs(t, err, tc.err)
			var ae *driver.AccessError
			require.True(t, errors.As(err, &ae))
			assert.Equal(t, tc.bar, ae.BAR)
			assert.Equal(t, tc.off, ae.Offset)
			assert.Equal(t, tc.width, ae.Width)
		})
	}
}

func TestSparseBAR(t *testing.T) {
	_, k, o := fakeMachine(t)
	// The MSI-X table sits at 0x1000..0x1fff and may not be mapped.
	k.sparse = []mmapArea{{0, 0x1000}, {0x2000, 0x2000}}
	d := openFake(t, o)
	require.Len(t, d.bars[0].maps, 2)
	assert.Equal(t, uint64(0x2000), d.bars[0].maps[1].off)
	before := k.preads
	require.NoError(t, d.Write32(0, 0x2004, 0x11))
	require.NoError(t, d.Write32(0, 0x1800, 0x22))
	v, err := d.Read32(0, 0x1800)
	require.NoError(t, err)
	assert.Equal(t, uint32(0x22), v)
	assert.Equal(t, before+1, k.preads, "only the hole goes through the fd")
	assert.Equal(t, uint32(0x11), binary.LittleEndian.Uint32(k.bar0[0x2004:]))
}

func TestDMA(t *testing.T) {
	_, k, o := fakeMachine(t)
	d := openFake(t, o)
	a, err := d.AllocDMA(5000)
	require.NoError(t, err)
	assert.Len(t, a.Bytes, 5000)
	assert.Equal(t, make([]byte, 5000), a.Bytes, "zeroed")
	assert.Equal(t, uint64(DefaultIOVABase), a.IOVA)
	assert.Equal(t, uint64(8192), k.maps[a.IOVA], "mapped in whole pages")
	b, err := d.AllocDMA(1)
	require.NoError(t, err)
	assert.Equal(t, a.IOVA+8192, b.IOVA)

	require.NoError(t, d.FreeDMA(a))
	assert.NotContains(t, k.maps, a.IOVA)
	assert.ErrorIs(t, d.FreeDMA(a), driver.ErrNotMapped, "freed twice")
	assert.ErrorIs(t, d.FreeDMA(&driver.DMABuffer{IOVA: b.IOVA, Bytes: make([]byte, 1)}), driver.ErrNotMapped, "not this device's memory")
	_, err = d.AllocDMA(0)
	assert.ErrorIs(t, err, driver.ErrNoMemory)

	require.NoError(t, d.Close())
	assert.Empty(t, k.maps, "Close unmaps what is left")
}

func TestDMAWindowExhausted(t *testing.T) {
	_, _, o := fakeMachine(t)
	o.IOVABase, o.IOVASize = 1<<20, 8192
	d := openFake(t, o)
	_, err := d.AllocDMA(8192)
	require.NoError(t, err)
	_, err = d.AllocDMA(1)
	assert.ErrorIs(t, err, driver.ErrNoMemory)
}

func raise(t *testing.T, k *fakeKernel, vector int) {
	t.Helper()
	var one [8]byte
	binary.NativeEndian.PutUint64(one[:], 1)
	_, err := unix.Write(int(k.lastIRQSet().fds[vector]), one[:])
	require.NoError(t, err)
}

func TestWaitInterrupt(t *testing.T) {
	_, k, o := fakeMachine(t)
	d := openFake(t, o)
	ctx := context.Background()

	raise(t, k, 2)
	raise(t, k, 2)
	n, err := d.WaitInterrupt(ctx, 2)
	require.NoError(t, err)
	assert.Equal(t, uint64(2), n, "two interrupts since the last wait")

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	_, err = d.WaitInterrupt(cancelled, 0)
	assert.ErrorIs(t, err, context.Canceled)

	// Cancelling a wait in progress wakes it, and the next wait is not disturbed.
	waiting, stop := context.WithCancel(ctx)
	done := make(chan error)
	go func() {
		_, err := d.WaitInterrupt(waiting, 1)
		done <- err
	}()
	stop()
	assert.ErrorIs(t, <-done, context.Canceled)
	raise(t, k, 1)
	n, err = d.WaitInterrupt(ctx, 1)
	require.NoError(t, err)
	assert.Equal(t, uint64(1), n)

	_, err = d.WaitInterrupt(ctx, 4)
	assert.ErrorIs(t, err, driver.ErrNoVector)
	_, err = d.WaitInterrupt(ctx, -1)
	assert.ErrorIs(t, err, driver.ErrNoVector)
}

func TestIRQFallback(t *testing.T) {
	tests := []struct {
		name            string
		msix, msi, intx uint32
		want            IRQType
		vectors         int
	}{
		{"msi-x", 8, 1, 1, IRQMSIX, 8},
		{"msi without msi-x", 0, 1, 1, IRQMSI, 1},
		{"intx only", 0, 0, 1, IRQINTx, 1},
		{"none", 0, 0, 0, IRQNone, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, k, o := fakeMachine(t)
			k.msix, k.msi, k.intx = tc.msix, tc.msi, tc.intx
			d := openFake(t, o)
			assert.Equal(t, tc.want, d.IRQType())
			assert.Equal(t, tc.vectors, d.NumVectors())
		})
	}
	t.Run("vectors capped", func(t *testing.T) {
		_, _, o := fakeMachine(t)
		o.Vectors = 2
		assert.Equal(t, 2, openFake(t, o).NumVectors())
	})
	t.Run("intx is unmasked after each wait", func(t *testing.T) {
		_, k, o := fakeMachine(t)
		k.msix, k.msi = 0, 0
		d := openFake(t, o)
		raise(t, k, 0)
		_, err := d.WaitInterrupt(context.Background(), 0)
		require.NoError(t, err)
		set := k.lastIRQSet()
		assert.Equal(t, uint32(irqSetDataNone|irqSetActionUnmask), set.flags)
		assert.Equal(t, uint32(pciINTxIRQ), set.index)
	})
}

func TestReset(t *testing.T) {
	_, k, o := fakeMachine(t)
	d := openFake(t, o)
	require.NoError(t, d.Reset())
	assert.True(t, k.called("reset"))

	_, k, o = fakeMachine(t)
	k.canReset = false
	d = openFake(t, o)
	err := d.Reset()
	assert.ErrorIs(t, err, ErrUnsupported)
	assert.ErrorContains(t, err, "power-cycle")
	assert.False(t, k.called("reset"), "not tried when the kernel has no method")
}

func TestCloseTwice(t *testing.T) {
	_, k, o := fakeMachine(t)
	d, err := Open(nicBDF, o)
	require.NoError(t, err)
	_, err = d.AllocDMA(4096)
	require.NoError(t, err)

	// A wait in progress ends when the device closes.
	started := make(chan struct{})
	done := make(chan error)
	go func() {
		close(started)
		_, err := d.WaitInterrupt(context.Background(), 0)
		done <- err
	}()
	<-started
	require.NoError(t, d.Close())
	assert.NoError(t, d.Close(), "a second close is safe")
	assert.ErrorIs(t, <-done, driver.ErrClosed)

	assert.Empty(t, k.openFDs(), "device, group and container closed")
	assert.Empty(t, k.maps)
	set := k.lastIRQSet()
	assert.Equal(t, uint32(irqSetDataNone|irqSetActionTrigger), set.flags, "interrupts disabled")
	assert.Zero(t, set.count)

	_, err = d.Read32(0, 0)
	assert.ErrorIs(t, err, driver.ErrClosed)
	assert.ErrorIs(t, d.Write64(0, 0, 0), driver.ErrClosed)
	_, err = d.BARSize(0)
	assert.ErrorIs(t, err, driver.ErrClosed)
	_, err = d.AllocDMA(1)
	assert.ErrorIs(t, err, driver.ErrClosed)
	assert.ErrorIs(t, d.Reset(), driver.ErrClosed)
	_, err = d.WaitInterrupt(context.Background(), 0)
	assert.ErrorIs(t, err, driver.ErrClosed)
}

func TestOpenErrors(t *testing.T) {
	tests := []struct {
		name    string
		fns     []vfiotest.Func
		setup   func(k *fakeKernel)
		err     error
		hint    string
		errno   error
		noGroup bool
	}{
		{name: "device not found", fns: []vfiotest.Func{{BDF: "0000:09:00.0", Driver: DriverName, Group: 1}},
			err: ErrDeviceNotFound, hint: "sanctl devices"},
		{name: "not bound to vfio-pci", fns: []vfiotest.Func{{BDF: nicBDF, Driver: "e1000e", Group: 5}},
			err: ErrNotBoundToVFIO, hint: "bound to e1000e; run sanctl bind 0000:03:00.0"},
		{name: "no driver", fns: []vfiotest.Func{{BDF: nicBDF, Group: 5}},
			err: ErrNotBoundToVFIO, hint: "bound to none"},
		{name: "no iommu group", fns: []vfiotest.Func{{BDF: nicBDF, Driver: DriverName, Group: -1}},
			err: ErrNoIOMMUGroup, hint: "intel_iommu=on"},
		{name: "group not viable (sysfs)", fns: []vfiotest.Func{
			{BDF: nicBDF, Driver: DriverName, Group: 5}, {BDF: "0000:03:00.1", Driver: "e1000e", Group: 5}},
			err: ErrGroupNotViable, hint: "0000:03:00.1 (bound to e1000e)"},
		{name: "group not viable (kernel)", setup: func(k *fakeKernel) { k.viable = false },
			err: ErrGroupNotViable, hint: "bind every device of the group"},
		{name: "permission denied on the group", setup: func(k *fakeKernel) { k.openErr["5"] = syscall.EACCES },
			err: ErrPermission, hint: "chown $USER", errno: syscall.EACCES},
		{name: "permission denied on the container", setup: func(k *fakeKernel) { k.openErr["vfio"] = syscall.EPERM },
			err: ErrPermission, hint: "run as root", errno: syscall.EPERM},
		{name: "vfio not loaded", setup: func(k *fakeKernel) { k.openErr["vfio"] = syscall.ENOENT },
			err: ErrVFIONotLoaded, hint: "modprobe vfio-pci"},
		{name: "group busy", setup: func(k *fakeKernel) { k.openErr["5"] = syscall.EBUSY },
			errno: syscall.EBUSY, hint: "close it first"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, k, o := fakeMachine(t, tc.fns...)
			if tc.setup != nil {
				tc.setup(k)
			}
			d, err := Open(nicBDF, o)
			require.Error(t, err)
			assert.Nil(t, d)
			if tc.err != nil {
				assert.ErrorIs(t, err, tc.err)
			}
			if tc.errno != nil {
				assert.ErrorIs(t, err, tc.errno)
			}
			if tc.err == ErrPermission {
				assert.ErrorIs(t, err, os.ErrPermission, "matches the standard library's too")
			}
			assert.ErrorContains(t, err, tc.hint)
			assert.Empty(t, k.openFDs(), "a failed open leaks nothing")
		})
	}
}

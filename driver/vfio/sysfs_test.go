package vfio

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sanoffload/san/driver/vfio/vfiotest"
)

// A machine with a SAN NIC alone in group 5, a NIC sharing group 7 with a storage controller,
// and a function without any IOMMU group.
var machine = []vfiotest.Func{
	{BDF: "0000:00:1f.2", Vendor: 0x8086, Device: 0x2922, Class: 0x010601, Driver: "ahci", Group: 7},
	{BDF: "0000:03:00.0", Vendor: VendorID, Device: DeviceID, Class: 0x020000, Driver: "", Group: 5},
	{BDF: "0000:00:19.0", Vendor: 0x8086, Device: 0x153a, Class: 0x020000, Driver: "e1000e", Group: 7},
	{BDF: "0000:04:00.0", Vendor: 0x144d, Device: 0xa808, Class: 0x010802, Driver: "nvme", Group: -1},
}

func TestListAndFind(t *testing.T) {
	tr := vfiotest.New(t, machine...)
	s := &Sysfs{Root: tr.Root}
	all, err := s.List()
	require.NoError(t, err)
	require.Len(t, all, 4)
	assert.Equal(t, "0000:00:19.0", all[0].BDF, "sorted by address")
	nic := all[2]
	assert.Equal(t, Function{BDF: "0000:03:00.0", Vendor: VendorID, Device: DeviceID, Class: 0x020000, IOMMUGroup: 5}, nic)
	assert.True(t, nic.IsSANNIC())
	assert.False(t, all[0].IsSANNIC())
	assert.Equal(t, "e1000e", all[0].Driver)
	assert.Equal(t, -1, all[3].IOMMUGroup)

	f, err := s.Find(VendorID, DeviceID)
	require.NoError(t, err)
	assert.Equal(t, "0000:03:00.0", f.BDF)

	vendor, _ := all[0].Names()
	assert.Equal(t, "Intel Corporation", vendor)
}

func TestDeviceNotFound(t *testing.T) {
	tr := vfiotest.New(t, machine...)
	s := &Sysfs{Root: tr.Root}
	for _, bdf := range []string{"0000:09:00.0", "", "../../etc"} {
		_, err := s.Lookup(bdf)
		assert.ErrorIs(t, err, ErrDeviceNotFound, bdf)
	}
	_, err := s.Find(0x1234, 0x11e8)
	assert.ErrorIs(t, err, ErrDeviceNotFound)
	assert.ErrorContains(t, err, "lspci -d 1234:11e8")
	_, err = s.Bind("0000:09:00.0")
	assert.ErrorIs(t, err, ErrDeviceNotFound)
	assert.ErrorContains(t, err, "sanctl devices", "says what to do")
}

func TestListWithoutPCIBus(t *testing.T) {
	fns, err := (&Sysfs{Root: t.TempDir()}).List()
	require.NoError(t, err)
	assert.Empty(t, fns)
}

func TestFindSeveral(t *testing.T) {
	tr := vfiotest.New(t, machine...)
	tr.Add(t, vfiotest.Func{BDF: "0000:05:00.0", Vendor: VendorID, Device: DeviceID, Group: 9})
	_, err := (&Sysfs{Root: tr.Root}).Find(VendorID, DeviceID)
	assert.ErrorContains(t, err, "0000:03:00.0, 0000:05:00.0")
}

func TestBindAndUnbind(t *testing.T) {
	tests := []struct {
		name string
		bdf  string
		prev string
	}{
		{"from no driver", "0000:03:00.0", ""},
		{"from a host driver", "0000:00:19.0", "e1000e"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr := vfiotest.New(t, machine...)
			s := &Sysfs{Root: tr.Root, WriteFile: tr.Write}
			b, err := s.Bind(tc.bdf)
			require.NoError(t, err)
			assert.Equal(t, Binding{BDF: tc.bdf, Previous: tc.prev, Driver: DriverName}, b)
			f, err := s.Lookup(tc.bdf)
			require.NoError(t, err)
			assert.Equal(t, DriverName, f.Driver)
			assert.Equal(t, DriverName, f.Override)

			again, err := s.Bind(tc.bdf)
			require.NoError(t, err)
			assert.Equal(t, DriverName, again.Previous, "a second bind changes nothing")

			u, err := s.Unbind(tc.bdf)
			require.NoError(t, err)
			assert.Equal(t, tc.prev, u.Driver, "the kernel's probe gives it back")
			f, err = s.Lookup(tc.bdf)
			require.NoError(t, err)
			assert.Equal(t, tc.prev, f.Driver)
			assert.Equal(t, "", f.Override)
		})
	}
}

func TestRestoreBindsThePreviousDriverByName(t *testing.T) {
	tr := vfiotest.New(t, machine...)
	s := &Sysfs{Root: tr.Root, WriteFile: tr.Write}
	b, err := s.Bind("0000:00:19.0")
	require.NoError(t, err)
	tr.SetBootDriver("0000:00:19.0", "") // the probe alone would leave it driverless
	require.NoError(t, s.Restore(b))
	f, err := s.Lookup("0000:00:19.0")
	require.NoError(t, err)
	assert.Equal(t, "e1000e", f.Driver)
	assert.Contains(t, tr.Writes(), "/bus/pci/drivers/e1000e/bind=0000:00:19.0")
}

func TestBindRefusals(t *testing.T) {
	tr := vfiotest.New(t, machine...)
	s := &Sysfs{Root: tr.Root, WriteFile: tr.Write}

	_, err := s.Bind("0000:04:00.0")
	assert.ErrorIs(t, err, ErrNoIOMMUGroup)
	assert.ErrorContains(t, err, "intel_iommu=on")

	require.NoError(t, os.Remove(filepath.Join(tr.Root, "bus", "pci", "drivers", DriverName)))
	_, err = s.Bind("0000:03:00.0")
	assert.ErrorIs(t, err, ErrVFIONotLoaded)
	assert.ErrorContains(t, err, "modprobe vfio-pci")
	assert.Empty(t, tr.Writes(), "nothing written after a refusal")
}

func TestBindPermissionDenied(t *testing.T) {
	tr := vfiotest.New(t, machine...)
	for _, e := range []error{&fs.PathError{Op: "open", Path: "driver_override", Err: syscall.EACCES}, syscall.EPERM} {
		s := &Sysfs{Root: tr.Root, WriteFile: func(string, []byte) error { return e }}
		_, err := s.Bind("0000:03:00.0")
		assert.ErrorIs(t, err, ErrPermission)
		assert.ErrorContains(t, err, "run as root")
		var ve *Error
		require.True(t, errors.As(err, &ve))
		assert.Equal(t, "0000:03:00.0", ve.BDF)
	}
}

func TestBindNotClaimed(t *testing.T) {
	tr := vfiotest.New(t, machine...)
	// A kernel that ignores the override (vfio-pci refused the device).
	s := &Sysfs{Root: tr.Root, WriteFile: func(p string, d []byte) error {
		if filepath.Base(p) == "drivers_probe" {
			return nil
		}
		return tr.Write(p, d)
	}}
	_, err := s.Bind("0000:03:00.0")
	assert.ErrorIs(t, err, ErrNotBoundToVFIO)
	assert.ErrorContains(t, err, "dmesg")
}

func TestGroupViability(t *testing.T) {
	tr := vfiotest.New(t, machine...)
	tr.Add(t, vfiotest.Func{BDF: "0000:00:1c.0", Vendor: 0x8086, Device: 0x9d10, Class: 0x060400, Driver: "pcieport", Group: 5})
	s := &Sysfs{Root: tr.Root}

	nic, err := s.Lookup("0000:03:00.0")
	require.NoError(t, err)
	assert.NoError(t, s.checkGroup(nic), "a PCIe port may share the group")

	eth, err := s.Lookup("0000:00:19.0")
	require.NoError(t, err)
	err = s.checkGroup(eth)
	require.ErrorIs(t, err, ErrGroupNotViable)
	var gv *GroupNotViableError
	require.True(t, errors.As(err, &gv))
	assert.Equal(t, []GroupMember{{BDF: "0000:00:1f.2", Driver: "ahci"}}, gv.Others)
	assert.ErrorContains(t, err, "0000:00:1f.2 (bound to ahci)")
	assert.ErrorContains(t, err, "bind every device of the group")
}

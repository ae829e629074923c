package main

import (
	"encoding/json"
	"os"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sanoffload/san/driver/vfio"
	"github.com/sanoffload/san/driver/vfio/vfiotest"
)

var sanNIC = vfiotest.Func{BDF: "0000:03:00.0", Vendor: vfio.VendorID, Device: vfio.DeviceID, Class: 0x020000, Group: 5}
var ether = vfiotest.Func{BDF: "0000:00:19.0", Vendor: 0x8086, Device: 0x153a, Class: 0x020000, Driver: "e1000e", Group: -1}

// fakeSysfs points the device commands at a fake tree whose writes a fake kernel acts on.
func fakeSysfs(t *testing.T, fns ...vfiotest.Func) *vfiotest.Tree {
	tr := vfiotest.New(t, fns...)
	orig := newSysfs
	newSysfs = func(string) *vfio.Sysfs { return &vfio.Sysfs{Root: tr.Root, WriteFile: tr.Write} }
	t.Cleanup(func() { newSysfs = orig })
	return tr
}

func TestDevicesTable(t *testing.T) {
	fakeSysfs(t, sanNIC, ether)
	out, err := sanctl(t, "devices")
	require.NoError(t, err)
	assert.Regexp(t, `(?m)^BDF +ID +CLASS +DRIVER +IOMMU GROUP +DEVICE$`, out)
	assert.Regexp(t, `(?m)^0000:00:19\.0 +8086:153a +020000 +e1000e +none +Intel Corporation `, out)
	assert.Regexp(t, `(?m)^0000:03:00\.0 +10ee:5a4e +020000 +none +5 +SAN NIC$`, out)
	assert.Regexp(t, `(?m)^1 SAN NIC\(s\): 0000:03:00\.0$`, out)
}

func TestDevicesNoSANNIC(t *testing.T) {
	fakeSysfs(t, ether)
	out, err := sanctl(t, "devices")
	require.NoError(t, err)
	assert.Regexp(t, `(?m)^no SAN NIC found \(looking for 10ee:5a4e\)$`, out)
}

func TestDevicesJSON(t *testing.T) {
	fakeSysfs(t, sanNIC, ether)
	out, err := sanctl(t, "devices", "-o", "json")
	require.NoError(t, err)
	var rep devicesReport
	require.NoError(t, json.Unmarshal([]byte(out), &rep))
	require.Len(t, rep.Functions, 2)
	assert.Equal(t, []string{"0000:03:00.0"}, rep.SANNICs)
	assert.Equal(t, "10ee:5a4e", rep.LookingFor)
	nic := rep.Functions[1]
	assert.True(t, nic.SANNIC)
	require.NotNil(t, nic.IOMMUGroup)
	assert.Equal(t, 5, *nic.IOMMUGroup)
	assert.Nil(t, rep.Functions[0].IOMMUGroup)
	assert.Equal(t, "e1000e", rep.Functions[0].Driver)
}

func TestBindUnbind(t *testing.T) {
	fakeSysfs(t, sanNIC, ether)
	out, err := sanctl(t, "bind", "0000:03:00.0")
	require.NoError(t, err)
	assert.Regexp(t, `(?m)^previous driver +none$`, out)
	assert.Regexp(t, `(?m)^driver +vfio-pci$`, out)

	out, err = sanctl(t, "devices")
	require.NoError(t, err)
	assert.Regexp(t, `(?m)^0000:03:00\.0 .* vfio-pci +5 +SAN NIC$`, out)

	out, err = sanctl(t, "unbind", "0000:03:00.0", "-o", "json")
	require.NoError(t, err)
	var b vfio.Binding
	require.NoError(t, json.Unmarshal([]byte(out), &b))
	assert.Equal(t, vfio.Binding{BDF: "0000:03:00.0", Previous: "vfio-pci", Driver: ""}, b)
}

func TestBindErrors(t *testing.T) {
	fakeSysfs(t, sanNIC, ether)
	_, err := sanctl(t, "bind", "0000:09:00.0")
	assert.ErrorIs(t, err, vfio.ErrDeviceNotFound)
	_, err = sanctl(t, "bind", "0000:00:19.0")
	assert.ErrorIs(t, err, vfio.ErrNoIOMMUGroup)
	_, err = sanctl(t, "bind")
	assert.ErrorContains(t, err, "accepts 1 arg")

	tr := vfiotest.New(t, sanNIC)
	newSysfs = func(string) *vfio.Sysfs {
		return &vfio.Sysfs{Root: tr.Root, WriteFile: func(string, []byte) error { return syscall.EACCES }}
	}
	_, err = sanctl(t, "bind", "0000:03:00.0")
	assert.ErrorIs(t, err, vfio.ErrPermission)
	assert.ErrorContains(t, err, "run as root")
}

// On a real machine the listing holds every function sysfs has.
func TestDevicesOnThisMachine(t *testing.T) {
	ents, err := os.ReadDir("/sys/bus/pci/devices")
	if err != nil || len(ents) == 0 {
		t.Skip("no PCI bus here")
	}
	out, err := sanctl(t, "devices", "-o", "json")
	require.NoError(t, err)
	var rep devicesReport
	require.NoError(t, json.Unmarshal([]byte(out), &rep))
	assert.Len(t, rep.Functions, len(ents))
}

package vfio

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/u-root/u-root/pkg/pci"
)

// DefaultSysfs is where the kernel's sysfs is mounted.
const DefaultSysfs = "/sys"

// Sysfs finds PCI functions and changes their driver binding through a sysfs tree. The zero
// value uses DefaultSysfs; tests point Root at a fake tree.
type Sysfs struct {
	// Root is the sysfs mount point ("" means DefaultSysfs).
	Root string

	// WriteFile writes a sysfs attribute (nil means os.WriteFile). Tests stand a fake kernel
	// here (see vfiotest.Tree.Write), since writing a fake tree makes no driver move.
	WriteFile func(path string, data []byte) error
}

// Function is one PCI function as sysfs describes it.
type Function struct {
	BDF        string `json:"bdf"`    // domain:bus:device.function, e.g. 0000:00:03.0
	Vendor     uint16 `json:"vendor"` // PCI vendor ID
	Device     uint16 `json:"device"` // PCI device ID
	Class      uint32 `json:"class"`  // class code, 24 bits (class, subclass, prog-if)
	Driver     string `json:"driver"` // bound kernel driver, "" when none
	Override   string `json:"driver_override"`
	IOMMUGroup int    `json:"iommu_group"` // -1 when the function has none
	// VFIODev is the VFIO device cdev name (vfioN, under /dev/vfio/devices) when the kernel
	// offers the iommufd path for this function, else "".
	VFIODev string `json:"vfio_dev"`
}

// IsSANNIC reports whether the function carries the SAN NIC's IDs.
func (f Function) IsSANNIC() bool { return f.Vendor == VendorID && f.Device == DeviceID }

// Names returns the vendor and device names from the PCI ID database (hex when unknown).
func (f Function) Names() (vendor, device string) { return pci.Lookup(pci.IDs, f.Vendor, f.Device) }

// Filter selects functions in List.
type Filter func(Function) bool

// ByID selects functions with the given vendor and device IDs.
func ByID(vendor, device uint16) Filter {
	return func(f Function) bool { return f.Vendor == vendor && f.Device == device }
}

func (s *Sysfs) root() string {
	if s == nil || s.Root == "" {
		return DefaultSysfs
	}
	return s.Root
}

func (s *Sysfs) devicesDir() string { return filepath.Join(s.root(), "bus", "pci", "devices") }
func (s *Sysfs) deviceDir(bdf string) string {
	return filepath.Join(s.devicesDir(), bdf)
}

// List returns the PCI functions that pass every filter, sorted by address.
func (s *Sysfs) List(filters ...Filter) ([]Function, error) {
	ents, err := os.ReadDir(s.devicesDir())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil // no PCI bus at all (some VMs and containers)
	}
	if err != nil {
		return nil, sysError("list", "", s.devicesDir(), err, nil, "", "run as root")
	}
	var fns []Function
next:
	for _, e := range ents {
		f, err := s.Lookup(e.Name())
		if err != nil {
			return nil, err
		}
		for _, keep := range filters {
			if !keep(f) {
				continue next
			}
		}
		fns = append(fns, f)
	}
	sort.Slice(fns, func(i, j int) bool { return fns[i].BDF < fns[j].BDF })
	return fns, nil
}

// Find returns the single function with the given IDs; ErrDeviceNotFound when there is none,
// and an error listing them when there are several.
func (s *Sysfs) Find(vendor, device uint16) (Function, error) {
	fns, err := s.List(ByID(vendor, device))
	if err != nil {
		return Function{}, err
	}
	switch len(fns) {
	case 0:
		return Function{}, &Error{Op: "find", BDF: fmt.Sprintf("%04x:%04x", vendor, device), Err: ErrDeviceNotFound,
			Hint: "check that the board is seated and powered (lspci -d " + fmt.Sprintf("%04x:%04x", vendor, device) + ")"}
	case 1:
		return fns[0], nil
	}
	bdfs := make([]string, len(fns))
	for i, f := range fns {
		bdfs[i] = f.BDF
	}
	return Function{}, fmt.Errorf("vfio: find %04x:%04x: %d devices (%s); name one by its address",
		vendor, device, len(fns), strings.Join(bdfs, ", "))
}

// Lookup describes the function at a PCI address.
func (s *Sysfs) Lookup(bdf string) (Function, error) {
	dir := s.deviceDir(bdf)
	if bdf == "" || strings.ContainsRune(bdf, '/') {
		return Function{}, &Error{Op: "lookup", BDF: bdf, Err: ErrDeviceNotFound, Hint: "give a PCI address such as 0000:01:00.0"}
	}
	if _, err := os.Stat(dir); err != nil {
		return Function{}, sysError("lookup", bdf, dir, err, ErrDeviceNotFound,
			"list the machine's functions with sanctl devices", "run as root")
	}
	// u-root reads vendor, device, class, irq and resource; it knows nothing of drivers and
	// groups, which are read below.
	p, err := pci.OnePCI(dir)
	if err != nil {
		return Function{}, sysError("lookup", bdf, dir, err, ErrDeviceNotFound,
			"the function vanished while being read; try again", "run as root")
	}
	f := Function{BDF: bdf, Vendor: p.Vendor, Device: p.Device, Class: p.Class, IOMMUGroup: -1}
	f.Driver = linkBase(filepath.Join(dir, "driver"))
	if ov, err := os.ReadFile(filepath.Join(dir, "driver_override")); err == nil {
		f.Override = strings.TrimSpace(string(ov))
		if f.Override == "(null)" {
			f.Override = ""
		}
	}
	if g := linkBase(filepath.Join(dir, "iommu_group")); g != "" {
		if n, err := strconv.Atoi(g); err == nil {
			f.IOMMUGroup = n
		}
	}
	if ents, err := os.ReadDir(filepath.Join(dir, "vfio-dev")); err == nil && len(ents) > 0 {
		f.VFIODev = ents[0].Name()
	}
	return f, nil
}

// GroupMembers lists the functions in an IOMMU group with their drivers.
func (s *Sysfs) GroupMembers(group int) ([]GroupMember, error) {
	dir := filepath.Join(s.root(), "kernel", "iommu_groups", strconv.Itoa(group), "devices")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, sysError("list group", "", dir, err, ErrNoIOMMUGroup, "the group vanished; check dmesg", "run as root")
	}
	var ms []GroupMember
	for _, e := range ents {
		ms = append(ms, GroupMember{BDF: e.Name(), Driver: linkBase(filepath.Join(s.devicesDir(), e.Name(), "driver"))})
	}
	return ms, nil
}

// linkBase returns the last element of a symlink's target, or "" when there is no link.
func linkBase(path string) string {
	t, err := os.Readlink(path)
	if err != nil {
		return ""
	}
	return filepath.Base(t)
}

// userSafeDriver reports whether a device bound to drv leaves its IOMMU group usable from user
// space: vfio-pci itself, no driver, and the drivers the kernel lets share a group with user
// space (PCIe port services manage no DMA; pci-stub claims nothing).
func userSafeDriver(drv string) bool {
	switch drv {
	case "", DriverName, "pci-stub", "pcieport":
		return true
	}
	return false
}

// checkGroup returns a *GroupNotViableError naming the members of the function's group, other
// than itself, that a host driver holds.
func (s *Sysfs) checkGroup(f Function) error {
	ms, err := s.GroupMembers(f.IOMMUGroup)
	if err != nil {
		return err
	}
	var others []GroupMember
	for _, m := range ms {
		if m.BDF != f.BDF && !userSafeDriver(m.Driver) {
			others = append(others, m)
		}
	}
	if len(others) > 0 {
		return &GroupNotViableError{BDF: f.BDF, Group: f.IOMMUGroup, Others: others}
	}
	return nil
}

// Package vfiotest builds fake sysfs trees of PCI functions, with a fake kernel that moves
// drivers when the tree's binding attributes are written, for tests of driver/vfio and of the
// commands above it.
package vfiotest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// Func describes one fake PCI function.
type Func struct {
	BDF            string
	Vendor, Device uint16
	Class          uint32
	Driver         string // bound driver, "" for none; also what the kernel probes it to
	Group          int    // IOMMU group; -1 for none
	VFIODev        string // vfio-dev/<name> (the iommufd device node), "" for none
}

// Tree is a fake sysfs: bus/pci/devices, bus/pci/drivers and kernel/iommu_groups.
type Tree struct {
	Root string

	mu     sync.Mutex
	boot   map[string]string // BDF -> the driver the kernel's probe picks without an override
	writes []string          // guarded by mu: "path=data" of every Write
}

// Drivers every fake tree has loaded.
var Drivers = []string{"vfio-pci", "pcieport", "e1000e", "nvme", "ahci"}

// New builds a tree under a temporary directory.
func New(t testing.TB, fns ...Func) *Tree {
	t.Helper()
	tr := &Tree{Root: t.TempDir(), boot: map[string]string{}}
	for _, d := range Drivers {
		must(t, os.MkdirAll(filepath.Join(tr.Root, "bus", "pci", "drivers", d), 0o755))
	}
	must(t, os.MkdirAll(filepath.Join(tr.Root, "bus", "pci", "devices"), 0o755))
	for _, f := range fns {
		tr.Add(t, f)
	}
	return tr
}

// Add adds a function to the tree.
func (tr *Tree) Add(t testing.TB, f Func) {
	t.Helper()
	dir := tr.dev(f.BDF)
	must(t, os.MkdirAll(dir, 0o755))
	files := map[string]string{
		"vendor":          fmt.Sprintf("0x%04x\n", f.Vendor),
		"device":          fmt.Sprintf("0x%04x\n", f.Device),
		"class":           fmt.Sprintf("0x%06x\n", f.Class),
		"irq":             "11\n",
		"resource":        "0x00000000fe000000 0x00000000fe0fffff 0x0000000000040200\n" + strings.Repeat("0x0000000000000000 0x0000000000000000 0x0000000000000000\n", 12),
		"driver_override": "(null)\n",
	}
	for name, data := range files {
		must(t, os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644))
	}
	if f.Driver != "" {
		tr.link(t, f.BDF, f.Driver)
	}
	tr.mu.Lock()
	tr.boot[f.BDF] = f.Driver
	tr.mu.Unlock()
	if f.Group >= 0 {
		g := filepath.Join(tr.Root, "kernel", "iommu_groups", fmt.Sprint(f.Group))
		must(t, os.MkdirAll(filepath.Join(g, "devices"), 0o755))
		must(t, os.Symlink(g, filepath.Join(dir, "iommu_group")))
		must(t, os.Symlink(dir, filepath.Join(g, "devices", f.BDF)))
	}
	if f.VFIODev != "" {
		must(t, os.MkdirAll(filepath.Join(dir, "vfio-dev", f.VFIODev), 0o755))
	}
}

func (tr *Tree) dev(bdf string) string { return filepath.Join(tr.Root, "bus", "pci", "devices", bdf) }

func (tr *Tree) link(t testing.TB, bdf, drv string) {
	must(t, tr.setDriver(bdf, drv))
}

func (tr *Tree) setDriver(bdf, drv string) error {
	l := filepath.Join(tr.dev(bdf), "driver")
	if err := os.Remove(l); err != nil && !os.IsNotExist(err) {
		return err
	}
	if drv == "" {
		return nil
	}
	return os.Symlink(filepath.Join(tr.Root, "bus", "pci", "drivers", drv), l)
}

// Write acts as the kernel does on a write to a binding attribute: driver_override is stored,
// driver/unbind drops the driver, drivers_probe binds the override if set (else the driver
// the function had when added), drivers/X/bind binds X. Use it as vfio.Sysfs.WriteFile.
func (tr *Tree) Write(path string, data []byte) error {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.writes = append(tr.writes, strings.TrimPrefix(path, tr.Root)+"="+string(data))
	val := strings.TrimSpace(string(data))
	rel := strings.TrimPrefix(path, tr.Root+"/")
	parts := strings.Split(rel, "/")
	switch {
	case strings.HasSuffix(rel, "/driver_override"):
		if val == "" {
			val = "(null)"
		}
		return os.WriteFile(path, []byte(val+"\n"), 0o644)
	case strings.HasSuffix(rel, "/driver/unbind"):
		return tr.setDriver(parts[3], "")
	case rel == "bus/pci/drivers_probe":
		if _, err := os.Stat(tr.dev(val)); err != nil {
			return err
		}
		if _, err := os.Readlink(filepath.Join(tr.dev(val), "driver")); err == nil {
			return nil // already bound: the probe leaves it
		}
		ov, err := os.ReadFile(filepath.Join(tr.dev(val), "driver_override"))
		if err != nil {
			return err
		}
		drv := strings.TrimSpace(string(ov))
		if drv == "(null)" {
			drv = tr.boot[val]
		}
		return tr.setDriver(val, drv)
	case len(parts) == 5 && parts[2] == "drivers" && parts[4] == "bind":
		return tr.setDriver(val, parts[3])
	}
	return os.WriteFile(path, data, 0o644)
}

// Writes returns every write so far as "path=data", paths relative to the root.
func (tr *Tree) Writes() []string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return append([]string(nil), tr.writes...)
}

// SetBootDriver changes the driver the fake kernel's probe picks for bdf.
func (tr *Tree) SetBootDriver(bdf, drv string) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.boot[bdf] = drv
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

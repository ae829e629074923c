package vfio

import (
	"os"
	"path/filepath"
)

// Binding records what Bind changed, so that Restore can undo it.
type Binding struct {
	BDF string `json:"bdf"`
	// Previous is the driver the function was bound to before, "" when none.
	Previous string `json:"previous"`
	// Driver is the driver bound now.
	Driver string `json:"driver"`
}

func (s *Sysfs) write(path, data string) error {
	if s.WriteFile != nil {
		return s.WriteFile(path, []byte(data))
	}
	return os.WriteFile(path, []byte(data), 0)
}

const permHintSysfs = "run as root (binding drivers writes to sysfs)"

// Bind hands the function at bdf to vfio-pci: it sets driver_override so that no other driver
// claims it, unbinds the current driver and asks the kernel to probe again. Binding a function
// already on vfio-pci changes nothing. It refuses functions without an IOMMU group, since
// vfio-pci could never hand them to user space.
func (s *Sysfs) Bind(bdf string) (Binding, error) {
	f, err := s.Lookup(bdf)
	if err != nil {
		return Binding{}, err
	}
	b := Binding{BDF: bdf, Previous: f.Driver, Driver: f.Driver}
	if f.Driver == DriverName {
		return b, nil
	}
	if f.IOMMUGroup < 0 {
		return b, &Error{Op: "bind", BDF: bdf, Err: ErrNoIOMMUGroup,
			Hint: "enable the IOMMU (intel_iommu=on or amd_iommu=on on the kernel command line, VT-d/AMD-Vi in the firmware)"}
	}
	if _, err := os.Stat(filepath.Join(s.root(), "bus", "pci", "drivers", DriverName)); err != nil {
		return b, &Error{Op: "bind", BDF: bdf, Err: ErrVFIONotLoaded, Errno: err, Hint: "load it with modprobe vfio-pci"}
	}
	dir := s.deviceDir(bdf)
	if err := s.write(filepath.Join(dir, "driver_override"), DriverName); err != nil {
		return b, sysError("bind", bdf, "driver_override", err, ErrDeviceNotFound, "the device vanished; check dmesg", permHintSysfs)
	}
	if f.Driver != "" {
		if err := s.write(filepath.Join(dir, "driver", "unbind"), bdf); err != nil {
			return b, sysError("bind: unbind from "+f.Driver, bdf, "unbind", err, nil, "", permHintSysfs)
		}
	}
	if err := s.probe(bdf); err != nil {
		return b, err
	}
	now, err := s.Lookup(bdf)
	if err != nil {
		return b, err
	}
	b.Driver = now.Driver
	if now.Driver != DriverName {
		return b, &Error{Op: "bind", BDF: bdf, Err: ErrNotBoundToVFIO,
			Hint: "vfio-pci did not claim it after the probe; look in dmesg for why"}
	}
	return b, nil
}

// Unbind takes the function at bdf away from vfio-pci and gives it back to the kernel: it
// clears driver_override, unbinds and probes again, so the driver the kernel would choose at
// boot (the one Bind replaced, in practice) claims it, or none if no driver matches. A
// function not on vfio-pci is left alone. The returned Binding's Driver is the driver now
// bound.
func (s *Sysfs) Unbind(bdf string) (Binding, error) {
	f, err := s.Lookup(bdf)
	if err != nil {
		return Binding{}, err
	}
	b := Binding{BDF: bdf, Previous: f.Driver, Driver: f.Driver}
	dir := s.deviceDir(bdf)
	if f.Override != "" {
		// A newline clears the override (an empty write is refused by some kernels).
		if err := s.write(filepath.Join(dir, "driver_override"), "\n"); err != nil {
			return b, sysError("unbind", bdf, "driver_override", err, ErrDeviceNotFound, "the device vanished; check dmesg", permHintSysfs)
		}
	}
	if f.Driver != DriverName {
		return b, nil
	}
	if err := s.write(filepath.Join(dir, "driver", "unbind"), bdf); err != nil {
		return b, sysError("unbind", bdf, "unbind", err, nil, "", permHintSysfs)
	}
	if err := s.probe(bdf); err != nil {
		return b, err
	}
	now, err := s.Lookup(bdf)
	if err != nil {
		return b, err
	}
	b.Driver = now.Driver
	return b, nil
}

// Restore undoes Bind: it unbinds from vfio-pci and, should the kernel's probe not give the
// function back to its previous driver, binds that driver by name.
func (s *Sysfs) Restore(b Binding) error {
	if b.Previous == DriverName {
		return nil // Bind changed nothing
	}
	now, err := s.Unbind(b.BDF)
	if err != nil {
		return err
	}
	if b.Previous == "" || now.Driver == b.Previous {
		return nil
	}
	if now.Driver != "" {
		if err := s.write(filepath.Join(s.deviceDir(b.BDF), "driver", "unbind"), b.BDF); err != nil {
			return sysError("restore", b.BDF, "unbind", err, nil, "", permHintSysfs)
		}
	}
	p := filepath.Join(s.root(), "bus", "pci", "drivers", b.Previous, "bind")
	if err := s.write(p, b.BDF); err != nil {
		return sysError("restore "+b.Previous, b.BDF, p, err, ErrDeviceNotFound,
			"the driver "+b.Previous+" is not loaded; modprobe it", permHintSysfs)
	}
	return nil
}

func (s *Sysfs) probe(bdf string) error {
	p := filepath.Join(s.root(), "bus", "pci", "drivers_probe")
	if err := s.write(p, bdf); err != nil {
		return sysError("probe", bdf, p, err, nil, "", permHintSysfs)
	}
	return nil
}

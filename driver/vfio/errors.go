package vfio

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"syscall"
)

// Sentinel errors. Every error this package returns matches one of these (or a driver
// sentinel) through errors.Is, and its message ends with what to do about it.
var (
	// ErrDeviceNotFound: no PCI function with that address (or vendor:device) in sysfs.
	ErrDeviceNotFound = errors.New("pci device not found")
	// ErrNoIOMMUGroup: the function has no iommu_group, so the kernel offers it no VFIO path.
	ErrNoIOMMUGroup = errors.New("device has no iommu group")
	// ErrGroupNotViable: another device in the IOMMU group is bound to a host driver; see
	// *GroupNotViableError for which.
	ErrGroupNotViable = errors.New("iommu group is not viable")
	// ErrNotBoundToVFIO: the function is bound to another driver, or to none.
	ErrNotBoundToVFIO = errors.New("device is not bound to vfio-pci")
	// ErrVFIONotLoaded: vfio-pci is not loaded, or /dev/vfio is missing.
	ErrVFIONotLoaded = errors.New("vfio-pci is not available")
	// ErrPermission: the kernel refused (EACCES or EPERM); errors.Is also matches
	// fs.ErrPermission.
	ErrPermission = errors.New("permission denied")
	// ErrUnsupported: the kernel or device lacks something the driver needs (an IOMMU type, an
	// API version, a reset method).
	ErrUnsupported = errors.New("not supported")
)

// Error is a failed operation on one device: what was done, to which function, why, and what
// to do about it.
type Error struct {
	Op    string // "open group", "bind", ...
	BDF   string // PCI address, "" when not about one device
	Err   error  // a sentinel of this package or of driver
	Errno error  // the system error underneath, if any
	Hint  string // what to do
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("vfio: ")
	b.WriteString(e.Op)
	if e.BDF != "" {
		b.WriteString(" ")
		b.WriteString(e.BDF)
	}
	b.WriteString(": ")
	b.WriteString(e.Err.Error())
	if e.Errno != nil {
		fmt.Fprintf(&b, " (%v)", e.Errno)
	}
	if e.Hint != "" {
		b.WriteString("; ")
		b.WriteString(e.Hint)
	}
	return b.String()
}

// Unwrap lets errors.Is match both the sentinel and the system error.
func (e *Error) Unwrap() []error {
	if e.Errno == nil {
		return []error{e.Err}
	}
	return []error{e.Err, e.Errno}
}

// GroupMember is one PCI function in an IOMMU group.
type GroupMember struct {
	BDF    string `json:"bdf"`
	Driver string `json:"driver"` // "" when none is bound
}

// GroupNotViableError says which other devices keep an IOMMU group from being handed to user
// space. It matches ErrGroupNotViable.
type GroupNotViableError struct {
	BDF    string
	Group  int
	Others []GroupMember // the members bound to a host driver; may be empty when the kernel said so
}

func (e *GroupNotViableError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "vfio: open %s: iommu group %d is not viable", e.BDF, e.Group)
	if len(e.Others) > 0 {
		b.WriteString(": it also holds")
		for i, m := range e.Others {
			if i > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, " %s (bound to %s)", m.BDF, m.Driver)
		}
	}
	b.WriteString("; bind every device of the group to vfio-pci (sanctl bind BDF) or unbind it from its driver")
	return b.String()
}

// Is reports ErrGroupNotViable.
func (e *GroupNotViableError) Is(target error) bool { return target == ErrGroupNotViable }

// sysError classifies a system error from opening or writing a kernel interface: permission
// problems become ErrPermission with the hint given, a missing file becomes notFound.
func sysError(op, bdf, path string, err error, notFound error, notFoundHint, permHint string) error {
	var errno syscall.Errno
	switch {
	case errors.Is(err, fs.ErrPermission) || (errors.As(err, &errno) && (errno == syscall.EACCES || errno == syscall.EPERM)):
		return &Error{Op: op, BDF: bdf, Err: ErrPermission, Errno: err, Hint: permHint}
	case notFound != nil && errors.Is(err, fs.ErrNotExist):
		return &Error{Op: op, BDF: bdf, Err: notFound, Errno: err, Hint: notFoundHint}
	}
	return &Error{Op: op, BDF: bdf, Err: fmt.Errorf("%s: %w", path, err)}
}

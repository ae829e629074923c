// Package vfio is the Linux VFIO backend of driver.Device: a SAN NIC on a real board, reached
// through the kernel's vfio-pci driver and the IOMMU.
//
// Discovery (Sysfs.List, Find, Lookup) reads sysfs with u-root's pkg/pci for the IDs and by
// itself for what u-root does not read: the bound driver, driver_override, the IOMMU group and
// the iommufd device node. The SAN NIC is VendorID:DeviceID (10ee:5a4e); any other function
// can be opened by address. Sysfs.Bind hands a function to vfio-pci through driver_override,
// Unbind and Restore give it back to the driver it had.
//
// Open attaches the function through the device cdev and /dev/iommu where the kernel offers
// them (Linux 6.6+), else through the container and group (/dev/vfio/vfio, /dev/vfio/N); maps
// each BAR, only the areas the kernel allows when it reports sparse mmap (the MSI-X table),
// the rest reached by pread/pwrite; enables bus mastering and the first of MSI-X, MSI and INTx
// the device has, one eventfd per vector; and maps DMA memory (anonymous shared mappings,
// IOVAs from driver/iova) through the IOMMU on AllocDMA. Close undoes all of it in order and
// is safe to repeat.
//
// Errors are *Error values (or *GroupNotViableError, or driver.AccessError for MMIO) that match
// the sentinels ErrDeviceNotFound, ErrNoIOMMUGroup, ErrGroupNotViable, ErrNotBoundToVFIO,
// ErrVFIONotLoaded, ErrPermission and ErrUnsupported through errors.Is, and say what to do.
//
// Raw system calls and unsafe code stay in this package, in the *_unsafe.go files: the uAPI
// layouts (uapi.go, pinned to the kernel's by uapi_unsafe_test.go), the ioctls, and the
// atomic MMIO loads and stores. Every call goes through a small syscall seam so that unit
// tests run the whole Open/Close path on a fake kernel and a fake sysfs (package vfiotest).
// The same package's tests also run against the real kernel: TestVFIOInVM (make
// vfio-vm-test) boots Debian's kernel under QEMU with an emulated VT-d IOMMU and QEMU's edu
// device, and runs the tests of edu_vm_test.go as the guest's /init.
package vfio

// Package vmtest runs driver/vfio's tests inside a QEMU guest, against the real Linux vfio-pci
// and an emulated IOMMU. The host side writes an initramfs (a newc cpio archive holding the
// test binary as /init and the kernel modules it needs, in load order), boots Debian's kernel
// under TCG and reads the verdict the guest prints on its serial console. The guest side
// mounts the kernel file systems, loads the modules, and powers the machine off when the tests
// are done.
package vmtest

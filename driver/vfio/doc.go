// Package vfio will be the Linux VFIO backend of driver.Device for a SAN NIC on a real board:
// discovery with u-root's pkg/pci, binding to vfio-pci through driver_override, the container
// and group (or iommufd) path, BAR mmap, DMA map/unmap with IOVAs from driver/iova, and MSI-X
// through eventfds. Raw syscalls and unsafe code are confined to this package and hw/sim's cgo
// binding. Until it lands, the simulated NIC (hw/sim) is the only backend.
package vfio

package vfio

// The SAN NIC's PCI identity. The board's FPGA is a Xilinx part, so the function carries
// Xilinx's vendor ID; 0x5a4e ("ZN") is the device ID this project assigns to the SAN NIC
// bitstream. A board flashed with another ID is still usable through Open with its address.
const (
	VendorID uint16 = 0x10ee
	DeviceID uint16 = 0x5a4e
)

// DriverName is the kernel driver a function must be bound to for this package to open it.
const DriverName = "vfio-pci"

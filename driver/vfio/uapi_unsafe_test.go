package vfio

import (
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
)

// The kernel's numbers, from the 6.1 headers (linux-libc-dev, compiled with gcc) for VFIO and
// from include/uapi/linux/iommufd.h for iommufd and the cdev ioctls.
func TestIoctlNumbers(t *testing.T) {
	for _, tc := range []struct {
		name      string
		got, want uintptr
	}{
		{"VFIO_GET_API_VERSION", ioctlGetAPIVersion, 0x3b64},
		{"VFIO_CHECK_EXTENSION", ioctlCheckExtension, 0x3b65},
		{"VFIO_SET_IOMMU", ioctlSetIOMMU, 0x3b66},
		{"VFIO_GROUP_GET_STATUS", ioctlGroupGetStatus, 0x3b67},
		{"VFIO_GROUP_SET_CONTAINER", ioctlGroupSetContainer, 0x3b68},
		{"VFIO_GROUP_UNSET_CONTAINER", ioctlGroupUnsetContainer, 0x3b69},
		{"VFIO_GROUP_GET_DEVICE_FD", ioctlGroupGetDeviceFD, 0x3b6a},
		{"VFIO_DEVICE_GET_INFO", ioctlDeviceGetInfo, 0x3b6b},
		{"VFIO_DEVICE_GET_REGION_INFO", ioctlDeviceGetRegionInfo, 0x3b6c},
		{"VFIO_DEVICE_GET_IRQ_INFO", ioctlDeviceGetIRQInfo, 0x3b6d},
		{"VFIO_DEVICE_SET_IRQS", ioctlDeviceSetIRQs, 0x3b6e},
		{"VFIO_DEVICE_RESET", ioctlDeviceReset, 0x3b6f},
		{"VFIO_IOMMU_GET_INFO", ioctlIOMMUGetInfo, 0x3b70},
		{"VFIO_IOMMU_MAP_DMA", ioctlIOMMUMapDMA, 0x3b71},
		{"VFIO_IOMMU_UNMAP_DMA", ioctlIOMMUUnmapDMA, 0x3b72},
		{"VFIO_DEVICE_BIND_IOMMUFD", ioctlDeviceBindIOMMUFD, 0x3b76},
		{"VFIO_DEVICE_ATTACH_IOMMUFD_PT", ioctlDeviceAttachPT, 0x3b77},
		{"IOMMU_DESTROY", ioctlIOMMUDestroy, 0x3b80},
		{"IOMMU_IOAS_ALLOC", ioctlIOASAlloc, 0x3b81},
		{"IOMMU_IOAS_MAP", ioctlIOASMap, 0x3b85},
		{"IOMMU_IOAS_UNMAP", ioctlIOASUnmap, 0x3b86},
	} {
		assert.Equal(t, tc.want, tc.got, tc.name)
	}
}

func TestStructLayouts(t *testing.T) {
	sizes := []struct {
		name      string
		got, want uintptr
	}{
		{"vfio_group_status", unsafe.Sizeof(groupStatus{}), 8},
		{"vfio_device_info (6.1)", unsafe.Sizeof(deviceInfo{}), 20},
		{"vfio_region_info", unsafe.Sizeof(regionInfo{}), 32},
		{"vfio_info_cap_header", unsafe.Sizeof(infoCapHeader{}), 8},
		{"vfio_region_info_cap_sparse_mmap", unsafe.Sizeof(sparseMmapCap{}), 16},
		{"vfio_region_sparse_mmap_area", unsafe.Sizeof(sparseMmapArea{}), 16},
		{"vfio_irq_info", unsafe.Sizeof(irqInfo{}), 16},
		{"vfio_irq_set (header)", unsafe.Sizeof(irqSet{}), 20},
		{"vfio_iommu_type1_info", unsafe.Sizeof(type1Info{}), 24},
		{"vfio_iommu_type1_dma_map", unsafe.Sizeof(dmaMap{}), 32},
		{"vfio_iommu_type1_dma_unmap", unsafe.Sizeof(dmaUnmap{}), 24},
		{"vfio_device_bind_iommufd (6.6)", unsafe.Sizeof(bindIOMMUFD{}), 16},
		{"vfio_device_attach_iommufd_pt (6.6)", unsafe.Sizeof(attachPT{}), 12},
		{"iommu_destroy", unsafe.Sizeof(iommuDestroy{}), 8},
		{"iommu_ioas_alloc", unsafe.Sizeof(ioasAlloc{}), 12},
		{"iommu_ioas_map", unsafe.Sizeof(ioasMap{}), 40},
		{"iommu_ioas_unmap", unsafe.Sizeof(ioasUnmap{}), 24},
	}
	for _, tc := range sizes {
		assert.Equal(t, tc.want, tc.got, "sizeof "+tc.name)
	}
	offsets := []struct {
		name      string
		got, want uintptr
	}{
		{"vfio_device_info.cap_offset", unsafe.Offsetof(deviceInfo{}.capOffset), 16},
		{"vfio_region_info.cap_offset", unsafe.Offsetof(regionInfo{}.capOffset), 12},
		{"vfio_region_info.size", unsafe.Offsetof(regionInfo{}.size), 16},
		{"vfio_region_info.offset", unsafe.Offsetof(regionInfo{}.offset), 24},
		{"vfio_region_info_cap_sparse_mmap.nr_areas", unsafe.Offsetof(sparseMmapCap{}.nrAreas), 8},
		{"vfio_irq_set.count", unsafe.Offsetof(irqSet{}.count), 16},
		{"vfio_iommu_type1_info.iova_pgsizes", unsafe.Offsetof(type1Info{}.iovaPgsizes), 8},
		{"vfio_iommu_type1_info.cap_offset", unsafe.Offsetof(type1Info{}.capOffset), 16},
		{"vfio_iommu_type1_dma_map.vaddr", unsafe.Offsetof(dmaMap{}.vaddr), 8},
		{"vfio_iommu_type1_dma_map.iova", unsafe.Offsetof(dmaMap{}.iova), 16},
		{"vfio_iommu_type1_dma_map.size", unsafe.Offsetof(dmaMap{}.size), 24},
		{"vfio_iommu_type1_dma_unmap.size", unsafe.Offsetof(dmaUnmap{}.size), 16},
		{"vfio_device_bind_iommufd.out_devid", unsafe.Offsetof(bindIOMMUFD{}.outDevID), 12},
		{"vfio_device_attach_iommufd_pt.pt_id", unsafe.Offsetof(attachPT{}.ptID), 8},
		{"iommu_ioas_alloc.out_ioas_id", unsafe.Offsetof(ioasAlloc{}.outIOASID), 8},
		{"iommu_ioas_map.user_va", unsafe.Offsetof(ioasMap{}.userVA), 16},
		{"iommu_ioas_map.length", unsafe.Offsetof(ioasMap{}.length), 24},
		{"iommu_ioas_map.iova", unsafe.Offsetof(ioasMap{}.iova), 32},
		{"iommu_ioas_unmap.iova", unsafe.Offsetof(ioasUnmap{}.iova), 8},
		{"iommu_ioas_unmap.length", unsafe.Offsetof(ioasUnmap{}.length), 16},
	}
	for _, tc := range offsets {
		assert.Equal(t, tc.want, tc.got, "offsetof "+tc.name)
	}
}

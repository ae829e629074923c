package vfio

// The Linux VFIO and iommufd user-space ABI (include/uapi/linux/vfio.h, iommufd.h) as this
// package uses it. x/sys/unix defines none of it. Every ioctl is _IO(';', nr): the kernel
// grows structures through argsz and flags rather than through the ioctl number, so the
// caller must always fill argsz. uapi_test.go pins the sizes and offsets to the kernel's.

const (
	vfioType  = ';'  // the ioctl type byte shared by VFIO and iommufd
	vfioBase  = 100  // first VFIO command number
	iommuBase = 0x80 // first iommufd command number

	vfioAPIVersion = 0
)

// ioctl request numbers: _IO(';', base+n) carries neither direction nor size bits.
const (
	ioctlGetAPIVersion       = vfioType<<8 | (vfioBase + 0)  // container; returns the API version
	ioctlCheckExtension      = vfioType<<8 | (vfioBase + 1)  // container; extension by value, returns > 0 if supported
	ioctlSetIOMMU            = vfioType<<8 | (vfioBase + 2)  // container; IOMMU type by value
	ioctlGroupGetStatus      = vfioType<<8 | (vfioBase + 3)  // group; *groupStatus
	ioctlGroupSetContainer   = vfioType<<8 | (vfioBase + 4)  // group; *int32 container fd
	ioctlGroupUnsetContainer = vfioType<<8 | (vfioBase + 5)  // group
	ioctlGroupGetDeviceFD    = vfioType<<8 | (vfioBase + 6)  // group; *char BDF, returns a new fd
	ioctlDeviceGetInfo       = vfioType<<8 | (vfioBase + 7)  // device; *deviceInfo
	ioctlDeviceGetRegionInfo = vfioType<<8 | (vfioBase + 8)  // device; *regionInfo plus capabilities
	ioctlDeviceGetIRQInfo    = vfioType<<8 | (vfioBase + 9)  // device; *irqInfo
	ioctlDeviceSetIRQs       = vfioType<<8 | (vfioBase + 10) // device; irqSet header then data
	ioctlDeviceReset         = vfioType<<8 | (vfioBase + 11) // device
	ioctlIOMMUGetInfo        = vfioType<<8 | (vfioBase + 12) // container; *type1Info
	ioctlIOMMUMapDMA         = vfioType<<8 | (vfioBase + 13) // container; *dmaMap
	ioctlIOMMUUnmapDMA       = vfioType<<8 | (vfioBase + 14) // container; *dmaUnmap
	ioctlDeviceBindIOMMUFD   = vfioType<<8 | (vfioBase + 18) // device cdev; *bindIOMMUFD
	ioctlDeviceAttachPT      = vfioType<<8 | (vfioBase + 19) // device cdev; *attachPT

	ioctlIOMMUDestroy = vfioType<<8 | (iommuBase + 0) // iommufd; *iommuDestroy
	ioctlIOASAlloc    = vfioType<<8 | (iommuBase + 1) // iommufd; *ioasAlloc
	ioctlIOASMap      = vfioType<<8 | (iommuBase + 5) // iommufd; *ioasMap
	ioctlIOASUnmap    = vfioType<<8 | (iommuBase + 6) // iommufd; *ioasUnmap
)

// Container extensions and IOMMU types.
const (
	extType1   = 1
	extType1v2 = 3
)

// groupStatus.flags
const (
	groupFlagsViable       = 1 << 0
	groupFlagsContainerSet = 1 << 1
)

// deviceInfo.flags
const (
	deviceFlagsReset = 1 << 0
	deviceFlagsPCI   = 1 << 1
)

// regionInfo.flags
const (
	regionFlagRead  = 1 << 0
	regionFlagWrite = 1 << 1
	regionFlagMmap  = 1 << 2
	regionFlagCaps  = 1 << 3
)

// Region capability ids.
const (
	regionCapSparseMmap   = 1
	regionCapType         = 2
	regionCapMSIXMappable = 3
)

// irqInfo.flags
const (
	irqInfoEventfd    = 1 << 0
	irqInfoMaskable   = 1 << 1
	irqInfoAutomasked = 1 << 2
	irqInfoNoResize   = 1 << 3
)

// irqSet.flags: one data type ORed with one action.
const (
	irqSetDataNone      = 1 << 0
	irqSetDataBool      = 1 << 1
	irqSetDataEventfd   = 1 << 2
	irqSetActionMask    = 1 << 3
	irqSetActionUnmask  = 1 << 4
	irqSetActionTrigger = 1 << 5
)

// vfio-pci's fixed region and IRQ indexes.
const (
	pciBAR0Region   = 0
	pciNumBARs      = 6
	pciConfigRegion = 7

	pciINTxIRQ = 0
	pciMSIIRQ  = 1
	pciMSIXIRQ = 2
)

// dmaMap.flags
const (
	dmaMapRead  = 1 << 0
	dmaMapWrite = 1 << 1
)

// ioasMap.flags
const (
	ioasMapFixedIOVA = 1 << 0
	ioasMapWriteable = 1 << 1
	ioasMapReadable  = 1 << 2
)

// PCI configuration space, as far as the driver touches it.
const (
	pciCommand       = 0x04
	pciCommandMemory = 1 << 1
	pciCommandMaster = 1 << 2
)

type groupStatus struct {
	argsz uint32
	flags uint32
}

// deviceInfo is the 6.1 layout; later kernels append a pad word, and the kernel accepts any
// argsz that covers num_irqs.
type deviceInfo struct {
	argsz      uint32
	flags      uint32
	numRegions uint32
	numIRQs    uint32
	capOffset  uint32
}

type regionInfo struct {
	argsz     uint32
	flags     uint32
	index     uint32
	capOffset uint32
	size      uint64
	offset    uint64
}

type infoCapHeader struct {
	id      uint16
	version uint16
	next    uint32
}

// sparseMmapCap is followed by nrAreas sparseMmapArea records.
type sparseMmapCap struct {
	header   infoCapHeader
	nrAreas  uint32
	reserved uint32
}

type sparseMmapArea struct {
	offset uint64
	size   uint64
}

type irqInfo struct {
	argsz uint32
	flags uint32
	index uint32
	count uint32
}

// irqSet is followed by count data items (bytes for DATA_BOOL, int32 fds for DATA_EVENTFD).
type irqSet struct {
	argsz uint32
	flags uint32
	index uint32
	start uint32
	count uint32
}

type type1Info struct {
	argsz       uint32
	flags       uint32
	iovaPgsizes uint64
	capOffset   uint32
	pad         uint32
}

type dmaMap struct {
	argsz uint32
	flags uint32
	vaddr uint64
	iova  uint64
	size  uint64
}

type dmaUnmap struct {
	argsz uint32
	flags uint32
	iova  uint64
	size  uint64
}

// bindIOMMUFD is the original (6.6) layout; later kernels append a token pointer behind a flag.
type bindIOMMUFD struct {
	argsz    uint32
	flags    uint32
	iommufd  int32
	outDevID uint32
}

// attachPT is the original (6.6) layout; later kernels append a PASID behind a flag.
type attachPT struct {
	argsz uint32
	flags uint32
	ptID  uint32
}

type iommuDestroy struct {
	size uint32
	id   uint32
}

type ioasAlloc struct {
	size      uint32
	flags     uint32
	outIOASID uint32
}

type ioasMap struct {
	size     uint32
	flags    uint32
	ioasID   uint32
	reserved uint32
	userVA   uint64
	length   uint64
	iova     uint64
}

type ioasUnmap struct {
	size   uint32
	ioasID uint32
	iova   uint64
	length uint64
}

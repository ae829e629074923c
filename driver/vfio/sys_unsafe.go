//go:build linux

package vfio

import (
	"encoding/binary"
	"unsafe"

	"golang.org/x/sys/unix"
)

// sys is every system call the device path makes, so that tests can stand a fake kernel in
// for the real one.
type sys interface {
	open(path string, flags int) (int, error)
	close(fd int) error
	// ioctlPtr passes a pointer argument, ioctlInt a value; both return the call's result.
	ioctlPtr(fd int, req uintptr, arg unsafe.Pointer) (int, error)
	ioctlInt(fd int, req uintptr, arg uintptr) (int, error)
	mmap(fd int, off int64, length int, prot, flags int) ([]byte, error)
	munmap(b []byte) error
	pread(fd int, p []byte, off int64) (int, error)
	pwrite(fd int, p []byte, off int64) (int, error)
	eventfd() (int, error)
}

// kernel is the real sys.
type kernel struct{}

func (kernel) open(path string, flags int) (int, error) {
	return unix.Open(path, flags|unix.O_CLOEXEC, 0)
}
func (kernel) close(fd int) error { return unix.Close(fd) }

func (kernel) ioctlPtr(fd int, req uintptr, arg unsafe.Pointer) (int, error) {
	r, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), req, uintptr(arg))
	if e != 0 {
		return -1, e
	}
	return int(r), nil
}

func (kernel) ioctlInt(fd int, req uintptr, arg uintptr) (int, error) {
	r, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), req, arg)
	if e != 0 {
		return -1, e
	}
	return int(r), nil
}

func (kernel) mmap(fd int, off int64, length int, prot, flags int) ([]byte, error) {
	return unix.Mmap(fd, off, length, prot, flags)
}
func (kernel) munmap(b []byte) error                           { return unix.Munmap(b) }
func (kernel) pread(fd int, p []byte, off int64) (int, error)  { return unix.Pread(fd, p, off) }
func (kernel) pwrite(fd int, p []byte, off int64) (int, error) { return unix.Pwrite(fd, p, off) }
func (kernel) eventfd() (int, error) {
	return unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
}

// addrOf is the user virtual address of b's first byte, for the kernel to pin.
func addrOf(b []byte) uint64 { return uint64(uintptr(unsafe.Pointer(unsafe.SliceData(b)))) }

// The typed ioctls below fill argsz from the Go layout, which uapi_test.go pins to the kernel's.

func groupGetStatus(s sys, fd int) (uint32, error) {
	st := groupStatus{argsz: uint32(unsafe.Sizeof(groupStatus{}))}
	_, err := s.ioctlPtr(fd, ioctlGroupGetStatus, unsafe.Pointer(&st))
	return st.flags, err
}

func groupSetContainer(s sys, group, container int) error {
	c := int32(container)
	_, err := s.ioctlPtr(group, ioctlGroupSetContainer, unsafe.Pointer(&c))
	return err
}

func groupGetDeviceFD(s sys, group int, bdf string) (int, error) {
	name, err := unix.ByteSliceFromString(bdf)
	if err != nil {
		return -1, err
	}
	return s.ioctlPtr(group, ioctlGroupGetDeviceFD, unsafe.Pointer(&name[0]))
}

func deviceGetInfo(s sys, fd int) (deviceInfo, error) {
	info := deviceInfo{argsz: uint32(unsafe.Sizeof(deviceInfo{}))}
	_, err := s.ioctlPtr(fd, ioctlDeviceGetInfo, unsafe.Pointer(&info))
	return info, err
}

// regionGetInfo returns a region's info and its capability chain (the bytes of the whole info
// buffer, for parseRegionCaps). The kernel says how big a buffer the chain needs by raising
// argsz; the call is repeated until the buffer is big enough.
func regionGetInfo(s sys, fd int, index uint32) (regionInfo, []byte, error) {
	size := uint32(unsafe.Sizeof(regionInfo{}))
	for tries := 0; tries < 4; tries++ {
		buf := make([]uint64, (size+7)/8) // 8-byte aligned for the struct
		info := (*regionInfo)(unsafe.Pointer(&buf[0]))
		info.argsz, info.index = size, index
		if _, err := s.ioctlPtr(fd, ioctlDeviceGetRegionInfo, unsafe.Pointer(&buf[0])); err != nil {
			return regionInfo{}, nil, err
		}
		if info.argsz <= size {
			raw := unsafe.Slice((*byte)(unsafe.Pointer(&buf[0])), size)
			return *info, append([]byte(nil), raw...), nil
		}
		size = info.argsz
	}
	return regionInfo{}, nil, unix.EOVERFLOW
}

func irqGetInfo(s sys, fd int, index uint32) (irqInfo, error) {
	info := irqInfo{argsz: uint32(unsafe.Sizeof(irqInfo{})), index: index}
	_, err := s.ioctlPtr(fd, ioctlDeviceGetIRQInfo, unsafe.Pointer(&info))
	return info, err
}

// setIRQs issues VFIO_DEVICE_SET_IRQS; data is the array after the header (eventfds as int32,
// or bools as bytes), already encoded.
func setIRQs(s sys, fd int, flags, index, start, count uint32, data []byte) error {
	hdr := uint32(unsafe.Sizeof(irqSet{}))
	buf := make([]byte, int(hdr)+len(data))
	binary.NativeEndian.PutUint32(buf[0:], uint32(len(buf)))
	binary.NativeEndian.PutUint32(buf[4:], flags)
	binary.NativeEndian.PutUint32(buf[8:], index)
	binary.NativeEndian.PutUint32(buf[12:], start)
	binary.NativeEndian.PutUint32(buf[16:], count)
	copy(buf[hdr:], data)
	_, err := s.ioctlPtr(fd, ioctlDeviceSetIRQs, unsafe.Pointer(&buf[0]))
	return err
}

func iommuMapDMA(s sys, container int, vaddr, iova, size uint64) error {
	m := dmaMap{argsz: uint32(unsafe.Sizeof(dmaMap{})), flags: dmaMapRead | dmaMapWrite, vaddr: vaddr, iova: iova, size: size}
	_, err := s.ioctlPtr(container, ioctlIOMMUMapDMA, unsafe.Pointer(&m))
	return err
}

func iommuUnmapDMA(s sys, container int, iova, size uint64) error {
	m := dmaUnmap{argsz: uint32(unsafe.Sizeof(dmaUnmap{})), iova: iova, size: size}
	_, err := s.ioctlPtr(container, ioctlIOMMUUnmapDMA, unsafe.Pointer(&m))
	return err
}

func deviceBindIOMMUFD(s sys, dev, iommufd int) (uint32, error) {
	b := bindIOMMUFD{argsz: uint32(unsafe.Sizeof(bindIOMMUFD{})), iommufd: int32(iommufd)}
	_, err := s.ioctlPtr(dev, ioctlDeviceBindIOMMUFD, unsafe.Pointer(&b))
	return b.outDevID, err
}

func deviceAttachPT(s sys, dev int, pt uint32) error {
	a := attachPT{argsz: uint32(unsafe.Sizeof(attachPT{})), ptID: pt}
	_, err := s.ioctlPtr(dev, ioctlDeviceAttachPT, unsafe.Pointer(&a))
	return err
}

func ioasAllocate(s sys, iommufd int) (uint32, error) {
	a := ioasAlloc{size: uint32(unsafe.Sizeof(ioasAlloc{}))}
	_, err := s.ioctlPtr(iommufd, ioctlIOASAlloc, unsafe.Pointer(&a))
	return a.outIOASID, err
}

func ioasMapFixed(s sys, iommufd int, ioas uint32, vaddr, iova, size uint64) error {
	m := ioasMap{size: uint32(unsafe.Sizeof(ioasMap{})), flags: ioasMapFixedIOVA | ioasMapReadable | ioasMapWriteable,
		ioasID: ioas, userVA: vaddr, length: size, iova: iova}
	_, err := s.ioctlPtr(iommufd, ioctlIOASMap, unsafe.Pointer(&m))
	return err
}

func ioasUnmapRange(s sys, iommufd int, ioas uint32, iova, size uint64) error {
	m := ioasUnmap{size: uint32(unsafe.Sizeof(ioasUnmap{})), ioasID: ioas, iova: iova, length: size}
	_, err := s.ioctlPtr(iommufd, ioctlIOASUnmap, unsafe.Pointer(&m))
	return err
}

func iommuDestroyObject(s sys, iommufd int, id uint32) error {
	d := iommuDestroy{size: uint32(unsafe.Sizeof(iommuDestroy{})), id: id}
	_, err := s.ioctlPtr(iommufd, ioctlIOMMUDestroy, unsafe.Pointer(&d))
	return err
}

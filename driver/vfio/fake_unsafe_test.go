//go:build linux

package vfio

import (
	"encoding/binary"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"unsafe"
)

// fakeKernel stands in for VFIO: a device with a 16 KiB memory BAR0 (optionally sparse), a
// 256-byte BAR2 that cannot be mmapped, config space, and the interrupt counts asked for. Its
// file descriptors are numbers it hands out (from 1000, so never a real fd) except eventfds,
// which are real, so that interrupts can be raised by writing them.
type fakeKernel struct {
	bdf              string
	viable, canReset bool
	msix, msi, intx  uint32
	sparse           []mmapArea
	openErr          map[string]error // by path base, e.g. "vfio", "5", "iommu"

	mu       sync.Mutex
	nextFD   int
	fds      map[int]string // fd -> what it is
	bar0     []byte
	bar2     []byte
	config   []byte
	preads   int
	irqSets  []irqSetCall
	maps     map[uint64]uint64 // iova -> size, both paths
	calls    []string
	iommuSet uintptr
}

type irqSetCall struct {
	flags, index, start, count uint32
	fds                        []int32
}

const (
	fakeBAR0Size = 0x4000
	fakeBAR2Size = 0x100
	fakeBAR2Off  = 2 << 40
	fakeCfgOff   = 7 << 40
)

func newFakeKernel(bdf string) *fakeKernel {
	return &fakeKernel{bdf: bdf, viable: true, canReset: true, msix: 4, msi: 1, intx: 1,
		openErr: map[string]error{}, nextFD: 1000, fds: map[int]string{},
		bar0: make([]byte, fakeBAR0Size), bar2: make([]byte, fakeBAR2Size), config: make([]byte, 256),
		maps: map[uint64]uint64{}}
}

func (k *fakeKernel) newFD(what string) int {
	k.nextFD++
	k.fds[k.nextFD] = what
	return k.nextFD
}

func (k *fakeKernel) openFDs() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	var s []string
	for _, w := range k.fds {
		s = append(s, w)
	}
	return s
}

func (k *fakeKernel) called(name string) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, c := range k.calls {
		if c == name {
			return true
		}
	}
	return false
}

func (k *fakeKernel) lastIRQSet() irqSetCall {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.irqSets[len(k.irqSets)-1]
}

func (k *fakeKernel) openLocked(path string) (int, error) {
	if err, ok := k.openErr[filepath.Base(path)]; ok {
		return -1, err
	}
	switch {
	case strings.HasSuffix(path, "/vfio/vfio"):
		return k.newFD("container"), nil
	case strings.HasSuffix(path, "/iommu"):
		return k.newFD("iommufd"), nil
	case strings.Contains(path, "/vfio/devices/"):
		return k.newFD("device"), nil
	case strings.Contains(path, "/vfio/"):
		return k.newFD("group"), nil
	}
	return -1, syscall.ENOENT
}

func (k *fakeKernel) open(path string, _ int) (int, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.openLocked(path)
}

func (k *fakeKernel) close(fd int) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if _, ok := k.fds[fd]; !ok {
		return syscall.EBADF
	}
	delete(k.fds, fd)
	return nil
}

func (k *fakeKernel) ioctlInt(fd int, req uintptr, arg uintptr) (int, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	switch req {
	case ioctlGetAPIVersion:
		return vfioAPIVersion, nil
	case ioctlCheckExtension:
		if arg == extType1v2 || arg == extType1 {
			return 1, nil
		}
		return 0, nil
	case ioctlSetIOMMU:
		k.iommuSet = arg
		k.calls = append(k.calls, "set iommu")
		return 0, nil
	case ioctlDeviceReset:
		k.calls = append(k.calls, "reset")
		if !k.canReset {
			return -1, syscall.EINVAL
		}
		return 0, nil
	case ioctlGroupUnsetContainer:
		return 0, nil
	}
	return -1, syscall.ENOTTY
}

func (k *fakeKernel) ioctlPtr(fd int, req uintptr, arg unsafe.Pointer) (int, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if _, ok := k.fds[fd]; !ok {
		return -1, syscall.EBADF
	}
	switch req {
	case ioctlGroupGetStatus:
		st := (*groupStatus)(arg)
		st.flags = 0
		if k.viable {
			st.flags = groupFlagsViable
		}
	case ioctlGroupSetContainer:
		k.calls = append(k.calls, "set container")
	case ioctlGroupGetDeviceFD:
		name := unsafe.Slice((*byte)(arg), len(k.bdf)+1)
		if string(name[:len(k.bdf)]) != k.bdf || name[len(k.bdf)] != 0 {
			return -1, syscall.ENODEV
		}
		return k.newFD("device"), nil
	case ioctlDeviceGetInfo:
		info := (*deviceInfo)(arg)
		info.flags, info.numRegions, info.numIRQs = deviceFlagsPCI, 9, 5
		if k.canReset {
			info.flags |= deviceFlagsReset
		}
	case ioctlDeviceGetRegionInfo:
		return 0, k.regionInfo((*regionInfo)(arg), arg)
	case ioctlDeviceGetIRQInfo:
		info := (*irqInfo)(arg)
		info.flags, info.count = irqInfoEventfd, 0
		switch info.index {
		case pciMSIXIRQ:
			info.count = k.msix
		case pciMSIIRQ:
			info.count = k.msi
		case pciINTxIRQ:
			info.count, info.flags = k.intx, irqInfoEventfd|irqInfoAutomasked|irqInfoMaskable
		}
	case ioctlDeviceSetIRQs:
		hdr := unsafe.Slice((*byte)(arg), unsafe.Sizeof(irqSet{}))
		c := irqSetCall{flags: binary.NativeEndian.Uint32(hdr[4:]), index: binary.NativeEndian.Uint32(hdr[8:]),
			start: binary.NativeEndian.Uint32(hdr[12:]), count: binary.NativeEndian.Uint32(hdr[16:])}
		argsz := binary.NativeEndian.Uint32(hdr)
		if c.flags&irqSetDataEventfd != 0 {
			all := unsafe.Slice((*byte)(arg), argsz)
			for i := uint32(0); i < c.count; i++ {
				c.fds = append(c.fds, int32(binary.NativeEndian.Uint32(all[20+4*i:])))
			}
		}
		k.irqSets = append(k.irqSets, c)
	case ioctlIOMMUMapDMA:
		m := (*dmaMap)(arg)
		k.maps[m.iova] = m.size
		k.calls = append(k.calls, "map dma")
	case ioctlIOMMUUnmapDMA:
		m := (*dmaUnmap)(arg)
		if k.maps[m.iova] != m.size {
			return -1, syscall.EINVAL
		}
		delete(k.maps, m.iova)
	case ioctlDeviceBindIOMMUFD:
		(*bindIOMMUFD)(arg).outDevID = 1
		k.calls = append(k.calls, "bind iommufd")
	case ioctlIOASAlloc:
		(*ioasAlloc)(arg).outIOASID = 2
	case ioctlDeviceAttachPT:
		k.calls = append(k.calls, fmt.Sprintf("attach %d", (*attachPT)(arg).ptID))
	case ioctlIOASMap:
		m := (*ioasMap)(arg)
		k.maps[m.iova] = m.length
		k.calls = append(k.calls, "ioas map")
	case ioctlIOASUnmap:
		m := (*ioasUnmap)(arg)
		delete(k.maps, m.iova)
	case ioctlIOMMUDestroy:
		k.calls = append(k.calls, "destroy")
	default:
		return -1, syscall.ENOTTY
	}
	return 0, nil
}

func (k *fakeKernel) regionInfo(info *regionInfo, arg unsafe.Pointer) error {
	switch info.index {
	case 0:
		info.size, info.offset, info.flags = fakeBAR0Size, 0, regionFlagRead|regionFlagWrite|regionFlagMmap
		if len(k.sparse) > 0 {
			need := uint32(unsafe.Sizeof(regionInfo{})) + 16 + 16*uint32(len(k.sparse))
			info.flags |= regionFlagCaps
			if info.argsz < need {
				info.argsz = need // the caller must ask again with room for the chain
				return nil
			}
			buf := unsafe.Slice((*byte)(arg), need)
			c := uint32(unsafe.Sizeof(regionInfo{}))
			info.capOffset = c
			binary.NativeEndian.PutUint16(buf[c:], regionCapSparseMmap)
			binary.NativeEndian.PutUint16(buf[c+2:], 1)
			binary.NativeEndian.PutUint32(buf[c+4:], 0)
			binary.NativeEndian.PutUint32(buf[c+8:], uint32(len(k.sparse)))
			for i, a := range k.sparse {
				binary.NativeEndian.PutUint64(buf[c+16+16*uint32(i):], a.off)
				binary.NativeEndian.PutUint64(buf[c+24+16*uint32(i):], a.size)
			}
		}
	case 2:
		info.size, info.offset, info.flags = fakeBAR2Size, fakeBAR2Off, regionFlagRead|regionFlagWrite
	case pciConfigRegion:
		info.size, info.offset, info.flags = 256, fakeCfgOff, regionFlagRead|regionFlagWrite
	default:
		info.size, info.offset, info.flags = 0, uint64(info.index)<<40, 0
	}
	return nil
}

func (k *fakeKernel) mmap(fd int, off int64, length int, _, _ int) ([]byte, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if fd == -1 {
		return make([]byte, length), nil // anonymous memory; the Go heap will do for a fake
	}
	if k.fds[fd] != "device" || off < 0 || off+int64(length) > fakeBAR0Size {
		return nil, syscall.EINVAL
	}
	return k.bar0[off : off+int64(length) : off+int64(length)], nil
}

func (k *fakeKernel) munmap([]byte) error { return nil }

func (k *fakeKernel) region(off int64, n int) ([]byte, error) {
	switch {
	case off >= fakeCfgOff && off+int64(n) <= fakeCfgOff+256:
		return k.config[off-fakeCfgOff:], nil
	case off >= fakeBAR2Off && off+int64(n) <= fakeBAR2Off+fakeBAR2Size:
		return k.bar2[off-fakeBAR2Off:], nil
	case off >= 0 && off+int64(n) <= fakeBAR0Size:
		return k.bar0[off:], nil
	}
	return nil, syscall.EINVAL
}

func (k *fakeKernel) pread(fd int, p []byte, off int64) (int, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.preads++
	r, err := k.region(off, len(p))
	if err != nil {
		return 0, err
	}
	return copy(p, r), nil
}

func (k *fakeKernel) pwrite(fd int, p []byte, off int64) (int, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	r, err := k.region(off, len(p))
	if err != nil {
		return 0, err
	}
	return copy(r, p), nil
}

func (k *fakeKernel) eventfd() (int, error) { return kernel{}.eventfd() }

//go:build linux

package vfio

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sanoffload/san/driver"
	"github.com/sanoffload/san/driver/iova"
)

// Path is how the device reached the IOMMU.
type Path string

// The two kernel paths to a device.
const (
	// PathAuto takes the iommufd device node where the kernel offers it, else the group.
	PathAuto Path = ""
	// PathGroup is the container and group path: /dev/vfio/vfio and /dev/vfio/N.
	PathGroup Path = "group"
	// PathIOMMUFD is the device cdev (/dev/vfio/devices/vfioN) bound to /dev/iommu (Linux 6.6+
	// with CONFIG_VFIO_DEVICE_CDEV).
	PathIOMMUFD Path = "iommufd"
)

// IRQType is the kind of interrupt the device was set up with.
type IRQType string

// Interrupt kinds, in the order Open prefers them.
const (
	IRQMSIX IRQType = "msi-x"
	IRQMSI  IRQType = "msi"
	IRQINTx IRQType = "intx"
	IRQNone IRQType = "none"
)

// The default DMA window: from 1 MiB up to 3 GiB, below the x86 MSI doorbell window
// (0xfee00000) and the usual 32-bit PCI hole, and within any IOMMU's address width.
const (
	DefaultIOVABase = 1 << 20
	DefaultIOVASize = 3<<30 - DefaultIOVABase
)

// Options tune Open. The zero value opens the function on the real kernel.
type Options struct {
	// Sysfs is the sysfs mount point ("" means /sys).
	Sysfs string
	// Dev is the device directory holding vfio/ and iommu ("" means /dev).
	Dev string
	// Path chooses the kernel path; PathAuto prefers iommufd.
	Path Path
	// Vectors caps the interrupt vectors enabled; 0 enables all the device offers.
	Vectors int
	// IOVABase and IOVASize bound the device addresses of DMA buffers (zero: the defaults).
	IOVABase, IOVASize uint64

	sys sys // nil means the real kernel
}

// Device is an open PCI function on vfio-pci. It implements driver.Device.
type Device struct {
	fn   Function
	sys  sys
	path Path

	// Set by Open, then read-only until Close.
	container int    // group path: /dev/vfio/vfio, else -1
	group     int    // group path: /dev/vfio/N, else -1
	iommufd   int    // iommufd path: /dev/iommu, else -1
	ioas      uint32 // iommufd path: the IO address space
	dev       int    // the device fd
	info      deviceInfo
	bars      [pciNumBARs]bar
	config    uint64 // offset of the config space region on dev
	irqType   IRQType
	irqs      []*os.File // one non-blocking eventfd per vector
	iovas     *iova.Allocator

	mu     sync.RWMutex      // MMIO and DMA take it shared, Close exclusively
	closed bool              // guarded by mu
	dma    map[uint64][]byte // guarded by mu (exclusively for writes): IOVA -> mapping
}

// bar is one BAR region of the device fd.
type bar struct {
	size   uint64 // 0 when the BAR is absent
	offset uint64 // of the region on the device fd (for pread/pwrite)
	maps   []barMap
}

// barMap is an mmapped part of a BAR.
type barMap struct {
	off uint64 // within the BAR
	mem []byte
}

var _ driver.Device = (*Device)(nil)

// Open opens the function at bdf, which must be bound to vfio-pci (see Sysfs.Bind): it
// attaches the function's IOMMU group (or its iommufd device node), maps its BARs, enables
// bus mastering and its interrupts (MSI-X, else MSI, else INTx), and readies DMA mapping.
func Open(bdf string, opts *Options) (*Device, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.sys == nil {
		o.sys = kernel{}
	}
	if o.Dev == "" {
		o.Dev = "/dev"
	}
	if o.IOVASize == 0 {
		o.IOVABase, o.IOVASize = DefaultIOVABase, DefaultIOVASize
	}
	sysfs := &Sysfs{Root: o.Sysfs}
	fn, err := sysfs.Lookup(bdf)
	if err != nil {
		return nil, err
	}
	if fn.Driver != DriverName {
		now := fn.Driver
		if now == "" {
			now = "none"
		}
		return nil, &Error{Op: "open", BDF: bdf, Err: ErrNotBoundToVFIO,
			Hint: fmt.Sprintf("it is bound to %s; run sanctl bind %s as root", now, bdf)}
	}
	alloc, err := iova.New(o.IOVABase, o.IOVASize)
	if err != nil {
		return nil, fmt.Errorf("vfio: open %s: iova window: %w", bdf, err)
	}
	d := &Device{fn: fn, sys: o.sys, container: -1, group: -1, iommufd: -1, dev: -1,
		iovas: alloc, dma: map[uint64][]byte{}, irqType: IRQNone}
	useCdev := o.Path == PathIOMMUFD || (o.Path == PathAuto && fn.VFIODev != "" && exists(filepath.Join(o.Dev, "iommu")))
	if useCdev {
		err = d.openIOMMUFD(o.Dev)
	} else {
		err = d.openGroup(sysfs, o.Dev)
	}
	if err == nil {
		err = d.setup(o.Vectors)
	}
	if err != nil {
		d.release()
		return nil, err
	}
	return d, nil
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// ioErr wraps a failed ioctl or open in an *Error, classifying permission problems.
func (d *Device) ioErr(op string, err error, hint string) error {
	var errno syscall.Errno
	if errors.As(err, &errno) && (errno == syscall.EACCES || errno == syscall.EPERM) {
		return &Error{Op: op, BDF: d.fn.BDF, Err: ErrPermission, Errno: err, Hint: hint}
	}
	return &Error{Op: op, BDF: d.fn.BDF, Err: errors.New("kernel refused"), Errno: err, Hint: "see dmesg for the kernel's reason"}
}

func (d *Device) openGroup(sysfs *Sysfs, dev string) error {
	bdf := d.fn.BDF
	if d.fn.IOMMUGroup < 0 {
		return &Error{Op: "open", BDF: bdf, Err: ErrNoIOMMUGroup,
			Hint: "enable the IOMMU (intel_iommu=on or amd_iommu=on on the kernel command line, VT-d/AMD-Vi in the firmware)"}
	}
	if err := sysfs.checkGroup(d.fn); err != nil {
		return err
	}
	d.path = PathGroup
	groupPath := filepath.Join(dev, "vfio", strconv.Itoa(d.fn.IOMMUGroup))
	permHint := fmt.Sprintf("run as root, or give your user the group's node (chown $USER %s) and raise ulimit -l", groupPath)
	var err error
	if d.container, err = d.sys.open(filepath.Join(dev, "vfio", "vfio"), unix.O_RDWR); err != nil {
		if errors.Is(err, syscall.ENOENT) {
			return &Error{Op: "open container", BDF: bdf, Err: ErrVFIONotLoaded, Errno: err, Hint: "load it with modprobe vfio-pci"}
		}
		return d.ioErr("open container", err, permHint)
	}
	if v, err := d.sys.ioctlInt(d.container, ioctlGetAPIVersion, 0); err != nil || v != vfioAPIVersion {
		return &Error{Op: "open container", BDF: bdf, Err: ErrUnsupported, Errno: err,
			Hint: fmt.Sprintf("the kernel speaks VFIO API %d, this driver %d; use a kernel from the last decade", v, vfioAPIVersion)}
	}
	iommuType := uintptr(extType1v2)
	if ok, _ := d.sys.ioctlInt(d.container, ioctlCheckExtension, extType1v2); ok <= 0 {
		iommuType = extType1
		if ok, _ := d.sys.ioctlInt(d.container, ioctlCheckExtension, extType1); ok <= 0 {
			return &Error{Op: "open container", BDF: bdf, Err: ErrUnsupported,
				Hint: "the kernel offers no type1 IOMMU; load vfio_iommu_type1"}
		}
	}
	if d.group, err = d.sys.open(groupPath, unix.O_RDWR); err != nil {
		if errors.Is(err, syscall.ENOENT) {
			return &Error{Op: "open group", BDF: bdf, Err: ErrVFIONotLoaded, Errno: err,
				Hint: "the group has no node although vfio-pci holds the device; check dmesg"}
		}
		if errors.Is(err, syscall.EBUSY) {
			return &Error{Op: "open group", BDF: bdf, Err: errors.New("group is in use"), Errno: err,
				Hint: "another process (or this one) has it open; close it first"}
		}
		return d.ioErr("open group", err, permHint)
	}
	flags, err := groupGetStatus(d.sys, d.group)
	if err != nil {
		return d.ioErr("group status", err, permHint)
	}
	if flags&groupFlagsViable == 0 {
		return &GroupNotViableError{BDF: bdf, Group: d.fn.IOMMUGroup}
	}
	if err := groupSetContainer(d.sys, d.group, d.container); err != nil {
		return d.ioErr("set container", err, permHint)
	}
	if _, err := d.sys.ioctlInt(d.container, ioctlSetIOMMU, iommuType); err != nil {
		return d.ioErr("set iommu", err, permHint)
	}
	if d.dev, err = groupGetDeviceFD(d.sys, d.group, bdf); err != nil {
		return d.ioErr("get device fd", err, permHint)
	}
	return nil
}

func (d *Device) openIOMMUFD(dev string) error {
	d.path = PathIOMMUFD
	if d.fn.VFIODev == "" {
		return &Error{Op: "open", BDF: d.fn.BDF, Err: ErrUnsupported,
			Hint: "the kernel offers no VFIO device node for it (CONFIG_VFIO_DEVICE_CDEV, Linux 6.6+); use the group path"}
	}
	cdev := filepath.Join(dev, "vfio", "devices", d.fn.VFIODev)
	permHint := fmt.Sprintf("run as root, or give your user %s and %s", cdev, filepath.Join(dev, "iommu"))
	var err error
	if d.iommufd, err = d.sys.open(filepath.Join(dev, "iommu"), unix.O_RDWR); err != nil {
		return d.ioErr("open iommufd", err, permHint)
	}
	if d.dev, err = d.sys.open(cdev, unix.O_RDWR); err != nil {
		return d.ioErr("open device node", err, permHint)
	}
	if _, err := deviceBindIOMMUFD(d.sys, d.dev, d.iommufd); err != nil {
		return d.ioErr("bind iommufd", err, permHint)
	}
	if d.ioas, err = ioasAllocate(d.sys, d.iommufd); err != nil {
		return d.ioErr("allocate io address space", err, permHint)
	}
	if err := deviceAttachPT(d.sys, d.dev, d.ioas); err != nil {
		return d.ioErr("attach io address space", err, permHint)
	}
	return nil
}

// setup reads the device's regions, maps its BARs, enables bus mastering and interrupts.
func (d *Device) setup(vectors int) error {
	var err error
	if d.info, err = deviceGetInfo(d.sys, d.dev); err != nil {
		return d.ioErr("device info", err, "")
	}
	if d.info.flags&deviceFlagsPCI == 0 {
		return &Error{Op: "open", BDF: d.fn.BDF, Err: ErrUnsupported, Hint: "vfio says it is not a PCI device"}
	}
	for i := 0; i < pciNumBARs && i < int(d.info.numRegions); i++ {
		if err := d.mapBAR(i); err != nil {
			return err
		}
	}
	cfg, _, err := regionGetInfo(d.sys, d.dev, pciConfigRegion)
	if err != nil {
		return d.ioErr("config region info", err, "")
	}
	d.config = cfg.offset
	// Bus mastering lets the device reach memory, and its MSI writes are memory writes.
	cmd, err := d.configRead16(pciCommand)
	if err != nil {
		return err
	}
	if err := d.configWrite16(pciCommand, cmd|pciCommandMaster|pciCommandMemory); err != nil {
		return err
	}
	return d.enableIRQs(vectors)
}

func (d *Device) mapBAR(i int) error {
	info, raw, err := regionGetInfo(d.sys, d.dev, uint32(pciBAR0Region+i))
	if err != nil {
		return d.ioErr(fmt.Sprintf("bar%d region info", i), err, "")
	}
	if info.size == 0 || info.flags&regionFlagRead == 0 {
		return nil
	}
	b := bar{size: info.size, offset: info.offset}
	if info.flags&regionFlagMmap != 0 {
		areas := []mmapArea{{0, info.size}}
		if info.flags&regionFlagCaps != 0 && info.capOffset != 0 {
			rc, err := parseRegionCaps(raw, info.capOffset)
			if err != nil {
				return &Error{Op: fmt.Sprintf("bar%d region info", i), BDF: d.fn.BDF, Err: err, Hint: "report this kernel"}
			}
			// Sparse areas leave out what must not be mapped (the MSI-X table, usually);
			// MSIX_MAPPABLE says the whole BAR may be mapped after all.
			if rc.sparse && !rc.msixMappable {
				areas = rc.areas
			}
		}
		for _, a := range areas {
			if a.size == 0 || a.off >= info.size || info.size-a.off < a.size {
				continue
			}
			mem, err := d.sys.mmap(d.dev, int64(info.offset+a.off), int(a.size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
			if err != nil {
				for _, m := range b.maps {
					_ = d.sys.munmap(m.mem)
				}
				return d.ioErr(fmt.Sprintf("mmap bar%d+0x%x", i, a.off), err, "")
			}
			b.maps = append(b.maps, barMap{off: a.off, mem: mem})
		}
	}
	d.bars[i] = b
	return nil
}

func (d *Device) configRead16(off uint64) (uint16, error) {
	var b [2]byte
	if _, err := d.sys.pread(d.dev, b[:], int64(d.config+off)); err != nil {
		return 0, d.ioErr("read config", err, "")
	}
	return binary.LittleEndian.Uint16(b[:]), nil
}

func (d *Device) configWrite16(off uint64, v uint16) error {
	var b [2]byte
	binary.LittleEndian.PutUint16(b[:], v)
	if _, err := d.sys.pwrite(d.dev, b[:], int64(d.config+off)); err != nil {
		return d.ioErr("write config", err, "")
	}
	return nil
}

// enableIRQs takes MSI-X if the device has it, else MSI, else INTx, and wires each vector to
// an eventfd.
func (d *Device) enableIRQs(max int) error {
	for _, c := range []struct {
		index uint32
		typ   IRQType
	}{{pciMSIXIRQ, IRQMSIX}, {pciMSIIRQ, IRQMSI}, {pciINTxIRQ, IRQINTx}} {
		info, err := irqGetInfo(d.sys, d.dev, c.index)
		if err != nil || info.count == 0 || info.flags&irqInfoEventfd == 0 {
			continue
		}
		n := int(info.count)
		if max > 0 && max < n {
			n = max
		}
		data := make([]byte, 4*n)
		for v := 0; v < n; v++ {
			fd, err := d.sys.eventfd()
			if err != nil {
				return d.ioErr("eventfd", err, "")
			}
			d.irqs = append(d.irqs, os.NewFile(uintptr(fd), fmt.Sprintf("%s-%s-%d", d.fn.BDF, c.typ, v)))
			binary.NativeEndian.PutUint32(data[4*v:], uint32(fd))
		}
		if err := setIRQs(d.sys, d.dev, irqSetDataEventfd|irqSetActionTrigger, c.index, 0, uint32(n), data); err != nil {
			return d.ioErr("enable "+string(c.typ), err, "")
		}
		d.irqType = IRQType(c.typ)
		return nil
	}
	return nil // a device without interrupts is still usable by polling
}

// Function is the PCI function as sysfs described it at Open.
func (d *Device) Function() Function { return d.fn }

// Path is the kernel path Open took.
func (d *Device) Path() Path { return d.path }

// IRQType is the kind of interrupt Open enabled.
func (d *Device) IRQType() IRQType { return d.irqType }

// CanReset reports whether the kernel has a way to reset the function.
func (d *Device) CanReset() bool { return d.info.flags&deviceFlagsReset != 0 }

// BARSize implements driver.Device.
func (d *Device) BARSize(i int) (uint64, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return 0, driver.ErrClosed
	}
	if i < 0 || i >= pciNumBARs || d.bars[i].size == 0 {
		return 0, fmt.Errorf("bar%d: %w", i, driver.ErrNoBAR)
	}
	return d.bars[i].size, nil
}

// access checks an MMIO access and returns the mapping that holds it, or nil when it must go
// through the device fd. The caller holds mu shared.
func (d *Device) access(op string, i int, off uint64, width int) (*bar, []byte, uint64, error) {
	if d.closed {
		return nil, nil, 0, &driver.AccessError{Op: op, BAR: i, Offset: off, Width: width, Err: driver.ErrClosed}
	}
	if i < 0 || i >= pciNumBARs || d.bars[i].size == 0 {
		return nil, nil, 0, &driver.AccessError{Op: op, BAR: i, Offset: off, Width: width, Err: driver.ErrNoBAR}
	}
	b := &d.bars[i]
	if err := driver.CheckAccess(op, i, off, width, b.size); err != nil {
		return nil, nil, 0, err
	}
	for _, m := range b.maps {
		if off >= m.off && off-m.off+uint64(width) <= uint64(len(m.mem)) {
			return b, m.mem, off - m.off, nil
		}
	}
	return b, nil, off, nil
}

func (d *Device) regionIO(op string, i int, b *bar, off uint64, p []byte) error {
	var err error
	if op == "read" {
		_, err = d.sys.pread(d.dev, p, int64(b.offset+off))
	} else {
		_, err = d.sys.pwrite(d.dev, p, int64(b.offset+off))
	}
	if err != nil {
		return &driver.AccessError{Op: op, BAR: i, Offset: off, Width: len(p), Err: fmt.Errorf("%w: %v", driver.ErrBusError, err)}
	}
	return nil
}

// Read32 implements driver.Device.
func (d *Device) Read32(i int, off uint64) (uint32, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	b, mem, moff, err := d.access("read", i, off, 4)
	if err != nil {
		return 0, err
	}
	if mem != nil {
		return load32(mem, moff), nil
	}
	var p [4]byte
	if err := d.regionIO("read", i, b, off, p[:]); err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint32(p[:]), nil
}

// Write32 implements driver.Device.
func (d *Device) Write32(i int, off uint64, v uint32) error {
	d.mu.RLock()
	defer d.mu.RUnlock()
	b, mem, moff, err := d.access("write", i, off, 4)
	if err != nil {
		return err
	}
	if mem != nil {
		store32(mem, moff, v)
		return nil
	}
	var p [4]byte
	binary.LittleEndian.PutUint32(p[:], v)
	return d.regionIO("write", i, b, off, p[:])
}

// Read64 implements driver.Device.
func (d *Device) Read64(i int, off uint64) (uint64, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	b, mem, moff, err := d.access("read", i, off, 8)
	if err != nil {
		return 0, err
	}
	if mem != nil {
		return load64(mem, moff), nil
	}
	var p [8]byte
	if err := d.regionIO("read", i, b, off, p[:]); err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(p[:]), nil
}

// Write64 implements driver.Device.
func (d *Device) Write64(i int, off uint64, v uint64) error {
	d.mu.RLock()
	defer d.mu.RUnlock()
	b, mem, moff, err := d.access("write", i, off, 8)
	if err != nil {
		return err
	}
	if mem != nil {
		store64(mem, moff, v)
		return nil
	}
	var p [8]byte
	binary.LittleEndian.PutUint64(p[:], v)
	return d.regionIO("write", i, b, off, p[:])
}

// AllocDMA implements driver.Device: anonymous shared memory (zeroed by the kernel, outside
// the Go heap, so never moved) mapped through the IOMMU at an IOVA from the device's window.
func (d *Device) AllocDMA(size int) (*driver.DMABuffer, error) {
	if size <= 0 {
		return nil, fmt.Errorf("vfio: alloc dma: size %d: %w", size, driver.ErrNoMemory)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, driver.ErrClosed
	}
	n := (uint64(size) + iova.PageSize - 1) &^ (iova.PageSize - 1)
	addr, err := d.iovas.Alloc(n)
	if err != nil {
		return nil, fmt.Errorf("vfio: alloc dma %d bytes: %w (%v)", size, driver.ErrNoMemory, err)
	}
	mem, err := d.sys.mmap(-1, 0, int(n), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_ANONYMOUS)
	if err != nil {
		_ = d.iovas.Free(addr)
		return nil, fmt.Errorf("vfio: alloc dma %d bytes: %w (%v)", size, driver.ErrNoMemory, err)
	}
	if err := d.mapDMA(addrOf(mem), addr, n); err != nil {
		_ = d.sys.munmap(mem)
		_ = d.iovas.Free(addr)
		if errors.Is(err, syscall.ENOMEM) {
			return nil, &Error{Op: "map dma", BDF: d.fn.BDF, Err: driver.ErrNoMemory, Errno: err,
				Hint: "the locked-memory limit is too low; raise it (ulimit -l, or LimitMEMLOCK= in systemd)"}
		}
		return nil, d.ioErr("map dma", err, "run as root or raise ulimit -l")
	}
	d.dma[addr] = mem
	return &driver.DMABuffer{IOVA: addr, Bytes: mem[:size:size]}, nil
}

func (d *Device) mapDMA(vaddr, addr, n uint64) error {
	if d.path == PathIOMMUFD {
		return ioasMapFixed(d.sys, d.iommufd, d.ioas, vaddr, addr, n)
	}
	return iommuMapDMA(d.sys, d.container, vaddr, addr, n)
}

func (d *Device) unmapDMA(addr uint64, mem []byte) error {
	n := uint64(len(mem))
	var err error
	if d.path == PathIOMMUFD {
		err = ioasUnmapRange(d.sys, d.iommufd, d.ioas, addr, n)
	} else {
		err = iommuUnmapDMA(d.sys, d.container, addr, n)
	}
	if err != nil {
		return d.ioErr("unmap dma", err, "")
	}
	if err := d.sys.munmap(mem); err != nil {
		return fmt.Errorf("vfio: free dma 0x%x: %w", addr, err)
	}
	return d.iovas.Free(addr)
}

// FreeDMA implements driver.Device.
func (d *Device) FreeDMA(b *driver.DMABuffer) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return driver.ErrClosed
	}
	mem, ok := d.dma[b.IOVA]
	if !ok || len(b.Bytes) == 0 || &b.Bytes[0] != &mem[0] {
		return fmt.Errorf("vfio: free dma 0x%x: %w", b.IOVA, driver.ErrNotMapped)
	}
	delete(d.dma, b.IOVA)
	return d.unmapDMA(b.IOVA, mem)
}

// NumVectors implements driver.Device.
func (d *Device) NumVectors() int { return len(d.irqs) }

// WaitInterrupt implements driver.Device. The eventfd is non-blocking, so the read parks in
// Go's poller; cancelling ctx moves the read deadline to now, which wakes it. Run at most one
// wait per vector at a time.
func (d *Device) WaitInterrupt(ctx context.Context, vector int) (uint64, error) {
	d.mu.RLock()
	if d.closed {
		d.mu.RUnlock()
		return 0, driver.ErrClosed
	}
	if vector < 0 || vector >= len(d.irqs) {
		d.mu.RUnlock()
		return 0, fmt.Errorf("vfio: wait vector %d of %d: %w", vector, len(d.irqs), driver.ErrNoVector)
	}
	f := d.irqs[vector]
	d.mu.RUnlock() // Close may run while this waits: closing the file ends the read.

	if err := ctx.Err(); err != nil {
		return 0, err
	}
	stop := context.AfterFunc(ctx, func() { _ = f.SetReadDeadline(time.Unix(1, 0)) })
	var p [8]byte
	_, err := f.Read(p[:])
	if !stop() {
		_ = f.SetReadDeadline(time.Time{}) // the cancel fired; the next wait must not see it
	}
	switch {
	case err == nil:
	case errors.Is(err, os.ErrDeadlineExceeded) && ctx.Err() != nil:
		return 0, ctx.Err()
	case errors.Is(err, os.ErrClosed):
		return 0, driver.ErrClosed
	default:
		return 0, fmt.Errorf("vfio: wait vector %d: %w", vector, err)
	}
	if d.irqType == IRQINTx {
		// INTx is masked by the kernel when it fires (level-triggered); unmask for the next.
		d.mu.RLock()
		defer d.mu.RUnlock()
		if d.closed {
			return 0, driver.ErrClosed
		}
		if err := setIRQs(d.sys, d.dev, irqSetDataNone|irqSetActionUnmask, pciINTxIRQ, 0, 1, nil); err != nil {
			return 0, d.ioErr("unmask intx", err, "")
		}
	}
	return binary.NativeEndian.Uint64(p[:]), nil
}

// Reset implements driver.Device with VFIO_DEVICE_RESET (function-level, power-management or
// bus reset, whichever the kernel has). The kernel saves and restores config space around it,
// so bus mastering and interrupts stay set up and DMA mappings stay valid.
func (d *Device) Reset() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return driver.ErrClosed
	}
	if !d.CanReset() {
		return &Error{Op: "reset", BDF: d.fn.BDF, Err: ErrUnsupported,
			Hint: "the function has no reset the kernel can use (no FLR or PM reset, and not alone on its bus); power-cycle the board"}
	}
	if _, err := d.sys.ioctlInt(d.dev, ioctlDeviceReset, 0); err != nil {
		return d.ioErr("reset", err, "")
	}
	return nil
}

// Close implements driver.Device: interrupts off, BARs and DMA unmapped, then the device, group
// and container (or iommufd) released, in that order. Later calls return nil.
func (d *Device) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	d.closed = true
	return d.release()
}

// release undoes whatever part of Open succeeded; it returns the first error but carries on.
func (d *Device) release() error {
	var first error
	keep := func(err error) {
		if err != nil && first == nil {
			first = err
		}
	}
	if d.irqType != IRQNone && d.dev >= 0 {
		keep(setIRQs(d.sys, d.dev, irqSetDataNone|irqSetActionTrigger, irqIndex(d.irqType), 0, 0, nil))
	}
	for _, f := range d.irqs {
		keep(f.Close())
	}
	d.irqs = nil
	for i := range d.bars {
		for _, m := range d.bars[i].maps {
			keep(d.sys.munmap(m.mem))
		}
		d.bars[i] = bar{}
	}
	for addr, mem := range d.dma {
		keep(d.unmapDMA(addr, mem))
		delete(d.dma, addr)
	}
	closeFD := func(fd *int) {
		if *fd >= 0 {
			keep(d.sys.close(*fd))
			*fd = -1
		}
	}
	closeFD(&d.dev)
	if d.group >= 0 {
		_, _ = d.sys.ioctlInt(d.group, ioctlGroupUnsetContainer, 0) // closing the group unsets it too
	}
	closeFD(&d.group)
	closeFD(&d.container)
	if d.iommufd >= 0 && d.ioas != 0 {
		keep(iommuDestroyObject(d.sys, d.iommufd, d.ioas))
	}
	closeFD(&d.iommufd)
	return first
}

func irqIndex(t IRQType) uint32 {
	switch t {
	case IRQMSIX:
		return pciMSIXIRQ
	case IRQMSI:
		return pciMSIIRQ
	}
	return pciINTxIRQ
}

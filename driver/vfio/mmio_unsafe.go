//go:build linux

package vfio

import (
	"sync/atomic"
	"unsafe"
)

// MMIO through an mmapped BAR. Go has no volatile; the sync/atomic loads and stores compile
// to exactly one naturally aligned access of the given width, which is what a device register
// needs (no tearing, no merging, no elision). Callers check bounds and alignment first.

func load32(b []byte, off uint64) uint32 {
	return atomic.LoadUint32((*uint32)(unsafe.Pointer(&b[off])))
}

func store32(b []byte, off uint64, v uint32) {
	atomic.StoreUint32((*uint32)(unsafe.Pointer(&b[off])), v)
}

func load64(b []byte, off uint64) uint64 {
	return atomic.LoadUint64((*uint64)(unsafe.Pointer(&b[off])))
}

func store64(b []byte, off uint64, v uint64) {
	atomic.StoreUint64((*uint64)(unsafe.Pointer(&b[off])), v)
}

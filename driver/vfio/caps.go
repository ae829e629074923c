package vfio

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// mmapArea is a part of a BAR that may be mmapped: offset and size within the BAR.
type mmapArea struct{ off, size uint64 }

// regionCaps is what the driver uses from a region's capability chain.
type regionCaps struct {
	sparse       bool       // the chain has a SPARSE_MMAP capability: only areas may be mapped
	areas        []mmapArea // its areas
	msixMappable bool       // the MSI-X table may be mapped too
}

var errBadCaps = errors.New("malformed capability chain")

// parseRegionCaps walks the capability chain in a region info buffer. The kernel wrote it, but
// a wrong walk is a wild read, so every offset is checked and a loop is refused.
func parseRegionCaps(buf []byte, first uint32) (regionCaps, error) {
	var rc regionCaps
	const hdr = 8 // infoCapHeader
	seen := map[uint32]bool{}
	for off := first; off != 0; {
		if seen[off] {
			return rc, fmt.Errorf("%w: loop at 0x%x", errBadCaps, off)
		}
		seen[off] = true
		if uint64(off)+hdr > uint64(len(buf)) || off%4 != 0 {
			return rc, fmt.Errorf("%w: header at 0x%x outside %d bytes", errBadCaps, off, len(buf))
		}
		id := binary.NativeEndian.Uint16(buf[off:])
		next := binary.NativeEndian.Uint32(buf[off+4:])
		switch id {
		case regionCapSparseMmap:
			if uint64(off)+16 > uint64(len(buf)) {
				return rc, fmt.Errorf("%w: sparse mmap at 0x%x truncated", errBadCaps, off)
			}
			n := uint64(binary.NativeEndian.Uint32(buf[off+8:]))
			start := uint64(off) + 16
			if n > uint64(len(buf)) || start+16*n > uint64(len(buf)) {
				return rc, fmt.Errorf("%w: %d sparse areas at 0x%x overrun %d bytes", errBadCaps, n, off, len(buf))
			}
			rc.sparse = true
			for i := uint64(0); i < n; i++ {
				a := buf[start+16*i:]
				rc.areas = append(rc.areas, mmapArea{off: binary.NativeEndian.Uint64(a), size: binary.NativeEndian.Uint64(a[8:])})
			}
		case regionCapMSIXMappable:
			rc.msixMappable = true
		}
		off = next
	}
	return rc, nil
}

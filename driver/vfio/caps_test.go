package vfio

import (
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// capBuf builds a region info buffer: 32 bytes of info, then the capabilities given as
// (id, next, body) in order.
func capBuf(caps ...[]byte) []byte {
	buf := make([]byte, 32)
	for _, c := range caps {
		buf = append(buf, c...)
	}
	return buf
}

func capHdr(id uint16, next uint32, body ...uint64) []byte {
	b := make([]byte, 8)
	binary.NativeEndian.PutUint16(b, id)
	binary.NativeEndian.PutUint16(b[2:], 1)
	binary.NativeEndian.PutUint32(b[4:], next)
	for _, v := range body {
		b = binary.NativeEndian.AppendUint64(b, v)
	}
	return b
}

func TestParseRegionCaps(t *testing.T) {
	// A sparse map with two areas (nr_areas 2, reserved 0 packed in one u64), then MSIX_MAPPABLE.
	sparse := capHdr(regionCapSparseMmap, 32+8+8+32, 2, 0, 0x1000, 0x2000, 0x3000)
	msix := capHdr(regionCapMSIXMappable, 0)
	rc, err := parseRegionCaps(capBuf(sparse, msix), 32)
	require.NoError(t, err)
	assert.True(t, rc.sparse)
	assert.Equal(t, []mmapArea{{0, 0x1000}, {0x2000, 0x3000}}, rc.areas)
	assert.True(t, rc.msixMappable)

	rc, err = parseRegionCaps(capBuf(capHdr(regionCapType, 0, 0)), 32)
	require.NoError(t, err)
	assert.False(t, rc.sparse, "other capabilities are skipped")
}

func TestParseRegionCapsRefusesBadChains(t *testing.T) {
	tests := map[string]struct {
		buf   []byte
		first uint32
	}{
		"loop":              {capBuf(capHdr(regionCapType, 32)), 32},
		"header past end":   {capBuf(), 32},
		"unaligned":         {capBuf(capHdr(regionCapType, 0)), 33},
		"areas past end":    {capBuf(capHdr(regionCapSparseMmap, 0, 5)), 32},
		"huge area count":   {capBuf(capHdr(regionCapSparseMmap, 0, 0xffffffff)), 32},
		"sparse truncated":  {capBuf(capHdr(regionCapSparseMmap, 0)), 32},
		"next out of range": {capBuf(capHdr(regionCapType, 1<<31)), 32},
	}
	for name, tc := range tests {
		_, err := parseRegionCaps(tc.buf, tc.first)
		assert.ErrorIs(t, err, errBadCaps, name)
	}
}

func FuzzParseRegionCaps(f *testing.F) {
	f.Add(capBuf(capHdr(regionCapSparseMmap, 0, 1, 0, 0x1000)), uint32(32))
	f.Add(capBuf(capHdr(regionCapType, 40), capHdr(regionCapMSIXMappable, 0)), uint32(32))
	f.Fuzz(func(t *testing.T, buf []byte, first uint32) {
		rc, err := parseRegionCaps(buf, first)
		if err == nil && len(rc.areas)*16 > len(buf) {
			t.Fatalf("%d areas from %d bytes", len(rc.areas), len(buf))
		}
	})
}

package wire

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestSegment(t *testing.T) {
	type seg = SegmentInfo
	tests := []struct {
		n, pmtu int
		want    []seg
	}{
		{0, 1024, []seg{{OpRCSendOnly, 0, 0}}},
		{1, 1024, []seg{{OpRCSendOnly, 0, 1}}},
		{63, 1024, []seg{{OpRCSendOnly, 0, 63}}},
		{64, 1024, []seg{{OpRCSendOnly, 0, 64}}},
		{1023, 1024, []seg{{OpRCSendOnly, 0, 1023}}},
		{1024, 1024, []seg{{OpRCSendOnly, 0, 1024}}},
		{1025, 1024, []seg{{OpRCSendFirst, 0, 1024}, {OpRCSendLast, 1024, 1}}},
		{2048, 1024, []seg{{OpRCSendFirst, 0, 1024}, {OpRCSendLast, 1024, 1024}}},
		{2049, 1024, []seg{{OpRCSendFirst, 0, 1024}, {OpRCSendMiddle, 1024, 1024}, {OpRCSendLast, 2048, 1}}},
		{255, 256, []seg{{OpRCSendOnly, 0, 255}}},
		{257, 256, []seg{{OpRCSendFirst, 0, 256}, {OpRCSendLast, 256, 1}}},
		{4097, 4096, []seg{{OpRCSendFirst, 0, 4096}, {OpRCSendLast, 4096, 1}}},
		{65536, 4096, nil}, // checked below
	}
	for _, tt := range tests {
		got := Segment(tt.n, tt.pmtu)
		if tt.want != nil {
			assert.Equal(t, tt.want, got, "Segment(%d, %d)", tt.n, tt.pmtu)
		}
		checkSegments(t, got, tt.n, tt.pmtu)
	}
}

func TestSegment64KiB(t *testing.T) {
	for _, pmtu := range []int{PMTU256, PMTU512, PMTU1024, PMTU2048, PMTU4096} {
		got := Segment(65536, pmtu)
		assert.Len(t, got, 65536/pmtu, "pmtu %d", pmtu)
		assert.Equal(t, uint8(OpRCSendLast), got[len(got)-1].OpCode)
		assert.Equal(t, pmtu, got[len(got)-1].Len, "last packet is full")
		checkSegments(t, got, 65536, pmtu)
	}
}

// checkSegments checks the invariants of any segmentation: contiguous, complete, and each
// packet's length allowed for its opcode.
func checkSegments(t *testing.T, segs []SegmentInfo, n, pmtu int) {
	t.Helper()
	off := 0
	for i, s := range segs {
		assert.Equal(t, off, s.Offset, "packet %d offset", i)
		assert.NoError(t, checkLength(s.OpCode, s.Len, pmtu), "packet %d", i)
		off += s.Len
	}
	assert.Equal(t, n, off, "packets cover the message")
}

func TestSegmentPanicsOnBadArguments(t *testing.T) {
	assert.Panics(t, func() { Segment(10, 1000) })
	assert.Panics(t, func() { Segment(10, 0) })
	assert.Panics(t, func() { Segment(-1, 1024) })
}

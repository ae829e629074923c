package wire

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestPSNAdd(t *testing.T) {
	tests := []struct {
		psn  uint32
		n    int
		want uint32
	}{
		{0, 0, 0},
		{0, 1, 1},
		{0xFFFFFE, 1, 0xFFFFFF},
		{0xFFFFFF, 1, 0},
		{0xFFFFFF, 2, 1},
		{0xFFFFF0, 0x20, 0x10},
		{0, -1, 0xFFFFFF},
		{5, -6, 0xFFFFFF},
		{0x10, -0x20, 0xFFFFF0},
		{0x123456, 1 << 24, 0x123456},
		{0x123456, -(1 << 24), 0x123456},
		{0x123456, 3<<24 + 1, 0x123457},
		{0xFF000001, 0, 1}, // bits above 24 are dropped
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, PSNAdd(tt.psn, tt.n), "PSNAdd(0x%x, %d)", tt.psn, tt.n)
	}
}

func TestPSNCompare(t *testing.T) {
	tests := []struct {
		a, b uint32
		want int
	}{
		{0, 0, 0},
		{0xFFFFFF, 0xFFFFFF, 0},
		{1, 0, 1},
		{0, 1, -1},
		{0, 0xFFFFFF, 1},  // just past the wrap is newer
		{0xFFFFFF, 0, -1}, // just before the wrap is older
		{0x000010, 0xFFFFF0, 1},
		{0xFFFFF0, 0x000010, -1},
		{0x7FFFFF, 0, 1},  // the far edge of the newer half
		{0x800001, 0, -1}, // the far edge of the older half
		{0x800000, 0, -1}, // exactly half way counts as older, both ways
		{0, 0x800000, -1},
		{0x1000005, 5, 0}, // bits above 24 are ignored
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, PSNCompare(tt.a, tt.b), "PSNCompare(0x%x, 0x%x)", tt.a, tt.b)
	}
}

func TestPSNAddCompareAgree(t *testing.T) {
	for _, base := range []uint32{0, 1, 0x7FFFFF, 0x800000, 0xFFFFF0, 0xFFFFFF} {
		for _, n := range []int{1, 2, 100, 1<<23 - 1} {
			assert.Equal(t, 1, PSNCompare(PSNAdd(base, n), base), "base 0x%x + %d", base, n)
			assert.Equal(t, -1, PSNCompare(PSNAdd(base, -n), base), "base 0x%x - %d", base, n)
		}
	}
}

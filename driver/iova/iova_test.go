package iova

import (
	"math/rand"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAllocRoundsToPagesAndExhausts(t *testing.T) {
	a, err := New(0x1_0000_0000, 4*PageSize)
	require.NoError(t, err)
	b1, err := a.Alloc(1)
	require.NoError(t, err)
	assert.Equal(t, uint64(0x1_0000_0000), b1)
	b2, err := a.Alloc(PageSize + 1)
	require.NoError(t, err)
	assert.Equal(t, b1+PageSize, b2)
	n, ok := a.Size(b2)
	require.True(t, ok)
	assert.Equal(t, uint64(2*PageSize), n)
	_, err = a.Alloc(2 * PageSize)
	assert.ErrorIs(t, err, ErrExhausted)
	require.NoError(t, a.Free(b1))
	assert.ErrorIs(t, a.Free(b1), ErrNotAlloc, "double free")
	require.NoError(t, a.Free(b2))
	b3, err := a.Alloc(4 * PageSize)
	require.NoError(t, err, "frees merge back into one range")
	assert.Equal(t, b1, b3)
}

func TestNewRejectsBadRanges(t *testing.T) {
	for _, r := range []struct{ base, size uint64 }{{1, PageSize}, {0, 0}, {0, 100}, {^uint64(0) &^ (PageSize - 1), 2 * PageSize}} {
		_, err := New(r.base, r.size)
		assert.ErrorIs(t, err, ErrBadRange, "base 0x%x size 0x%x", r.base, r.size)
	}
}

// TestRandomNoOverlap allocates and frees at random and checks that live ranges never overlap
// and that everything merges back at the end.
func TestRandomNoOverlap(t *testing.T) {
	seed := int64(20261120)
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewSource(seed))
	const total = 256 * PageSize
	a, err := New(PageSize, total)
	require.NoError(t, err)
	live := map[uint64]uint64{}
	for i := 0; i < 5000; i++ {
		if rng.Intn(3) > 0 || len(live) == 0 {
			size := uint64(rng.Intn(8*PageSize) + 1)
			base, err := a.Alloc(size)
			if err != nil {
				require.ErrorIs(t, err, ErrExhausted)
				continue
			}
			n, _ := a.Size(base)
			for b, s := range live {
				require.False(t, base < b+s && b < base+n, "overlap 0x%x+0x%x with 0x%x+0x%x", base, n, b, s)
			}
			require.True(t, base >= PageSize && base+n <= PageSize+total)
			live[base] = n
		} else {
			for b := range live {
				require.NoError(t, a.Free(b))
				delete(live, b)
				break
			}
		}
	}
	for b := range live {
		require.NoError(t, a.Free(b))
	}
	base, err := a.Alloc(total)
	require.NoError(t, err)
	assert.Equal(t, uint64(PageSize), base)
}

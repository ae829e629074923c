// Package iova allocates I/O virtual addresses: page-aligned ranges of a device's address space
// for DMA buffers. It is first fit over a sorted free list, which suits drivers that allocate
// rings and buffers at set-up and rarely free them. It is safe for concurrent use.
package iova

import (
	"errors"
	"fmt"
	"sort"
	"sync"
)

// PageSize is the allocation granule; IOMMUs map whole pages.
const PageSize = 4096

// Errors returned by Allocator.
var (
	ErrExhausted = errors.New("iova space exhausted")
	ErrNotAlloc  = errors.New("iova not allocated")
	ErrBadRange  = errors.New("invalid iova range")
)

type span struct{ base, size uint64 }

// Allocator hands out ranges of [base, base+size).
type Allocator struct {
	mu    sync.Mutex
	free  []span            // guarded by mu; sorted by base, never adjacent
	alloc map[uint64]uint64 // guarded by mu; base -> size of live allocations
}

// New returns an allocator over [base, base+size); both must be page aligned and size > 0.
func New(base, size uint64) (*Allocator, error) {
	if base%PageSize != 0 || size%PageSize != 0 || size == 0 || base+size < base {
		return nil, fmt.Errorf("%w: base 0x%x size 0x%x", ErrBadRange, base, size)
	}
	return &Allocator{free: []span{{base, size}}, alloc: map[uint64]uint64{}}, nil
}

// Alloc returns the base of a free range of at least size bytes, rounded up to pages.
func (a *Allocator) Alloc(size uint64) (uint64, error) {
	if size == 0 {
		size = 1
	}
	n := (size + PageSize - 1) &^ (PageSize - 1)
	if n < size {
		return 0, fmt.Errorf("%w: size 0x%x", ErrBadRange, size)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for i, s := range a.free {
		if s.size < n {
			continue
		}
		base := s.base
		if s.size == n {
			a.free = append(a.free[:i], a.free[i+1:]...)
		} else {
			a.free[i] = span{s.base + n, s.size - n}
		}
		a.alloc[base] = n
		return base, nil
	}
	return 0, fmt.Errorf("%w: no free range of 0x%x bytes", ErrExhausted, n)
}

// Size returns the rounded size of the allocation at base.
func (a *Allocator) Size(base uint64) (uint64, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	n, ok := a.alloc[base]
	return n, ok
}

// Free returns the allocation at base to the free list, merging neighbours.
func (a *Allocator) Free(base uint64) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	n, ok := a.alloc[base]
	if !ok {
		return fmt.Errorf("%w: 0x%x", ErrNotAlloc, base)
	}
	delete(a.alloc, base)
	i := sort.Search(len(a.free), func(i int) bool { return a.free[i].base > base })
	a.free = append(a.free, span{})
	copy(a.free[i+1:], a.free[i:])
	a.free[i] = span{base, n}
	// Merge with the next, then the previous span.
	if i+1 < len(a.free) && a.free[i].base+a.free[i].size == a.free[i+1].base {
		a.free[i].size += a.free[i+1].size
		a.free = append(a.free[:i+1], a.free[i+2:]...)
	}
	if i > 0 && a.free[i-1].base+a.free[i-1].size == a.free[i].base {
		a.free[i-1].size += a.free[i].size
		a.free = append(a.free[:i], a.free[i+1:]...)
	}
	return nil
}

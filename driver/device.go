package driver

import (
	"context"
	"errors"
	"fmt"
)

// Device is a NIC as the driver sees it: BARs for MMIO, DMA-able memory, interrupt vectors.
// Implementations are safe for concurrent use.
type Device interface {
	// BARSize returns the size in bytes of BAR bar; ErrNoBAR if the device lacks it.
	BARSize(bar int) (uint64, error)
	// Read32 and Write32 access a 32-bit register; off must be 4-byte aligned.
	Read32(bar int, off uint64) (uint32, error)
	Write32(bar int, off uint64, v uint32) error
	// Read64 and Write64 access 64 bits at an 8-byte aligned offset. A backend whose bus is
	// 32 bits wide splits them into low then high word.
	Read64(bar int, off uint64) (uint64, error)
	Write64(bar int, off uint64, v uint64) error

	// AllocDMA returns zeroed memory of at least size bytes that the device can reach at the
	// buffer's IOVA, mapped until FreeDMA or Close.
	AllocDMA(size int) (*DMABuffer, error)
	// FreeDMA unmaps and releases a buffer from AllocDMA; the buffer must not be used after.
	FreeDMA(b *DMABuffer) error

	// NumVectors is the number of interrupt vectors the device raises.
	NumVectors() int
	// WaitInterrupt blocks until vector has fired at least once since the last wait on it, and
	// returns how many times it fired (as an eventfd read does).
	WaitInterrupt(ctx context.Context, vector int) (uint64, error)

	// Reset returns the device to its power-on state; DMA mappings stay valid.
	Reset() error
	// Close releases the device; it is safe to call more than once.
	Close() error
}

// DMABuffer is host memory mapped for the device.
type DMABuffer struct {
	// IOVA is the address the device uses for Bytes[0].
	IOVA uint64
	// Bytes is the memory as the host sees it.
	Bytes []byte
}

// Sentinel errors of Device implementations.
var (
	ErrNoBAR      = errors.New("no such BAR")
	ErrOutOfRange = errors.New("access outside the BAR")
	ErrUnaligned  = errors.New("unaligned access")
	ErrBusError   = errors.New("device answered with a bus error")
	ErrTimeout    = errors.New("device did not answer")
	ErrClosed     = errors.New("device is closed")
	ErrNoVector   = errors.New("no such interrupt vector")
	ErrNoMemory   = errors.New("out of DMA memory")
	ErrNotMapped  = errors.New("buffer is not mapped on this device")
)

// AccessError describes a failed MMIO access.
type AccessError struct {
	Op     string // "read" or "write"
	BAR    int
	Offset uint64
	Width  int // bytes
	Err    error
}

func (e *AccessError) Error() string {
	return fmt.Sprintf("%s%d bar%d+0x%x: %v", e.Op, 8*e.Width, e.BAR, e.Offset, e.Err)
}

func (e *AccessError) Unwrap() error { return e.Err }

// CheckAccess validates an MMIO access of width bytes at off against a BAR of size bytes; it
// returns nil or an *AccessError wrapping ErrUnaligned or ErrOutOfRange. Backends call it before
// touching the bus so that no bad access reaches the hardware.
func CheckAccess(op string, bar int, off uint64, width int, size uint64) error {
	switch {
	case off%uint64(width) != 0:
		return &AccessError{Op: op, BAR: bar, Offset: off, Width: width, Err: ErrUnaligned}
	case off >= size || size-off < uint64(width):
		return &AccessError{Op: op, BAR: bar, Offset: off, Width: width, Err: ErrOutOfRange}
	}
	return nil
}

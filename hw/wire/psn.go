package wire

// PSNAdd returns psn advanced by n, which may be negative, modulo 2^24.
func PSNAdd(psn uint32, n int) uint32 {
	return uint32((int64(psn) + int64(n)) & PSNMask)
}

// PSNCompare compares 24-bit PSNs a and b in the circular sequence space, where the half of the
// space ahead of b is newer and the half behind is older: it returns 1 if a is newer than b, 0
// if they are equal and -1 if a is older. A PSN exactly 2^23 away counts as older.
func PSNCompare(a, b uint32) int {
	d := int32((a - b) << 8)
	switch {
	case d > 0:
		return 1
	case d < 0:
		return -1
	}
	return 0
}

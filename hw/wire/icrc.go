package wire

import (
	"encoding/binary"
	"hash/crc32"
)

// ICRC returns the invariant CRC of frame, a whole frame from the Ethernet header to the ICRC
// field, which is its last ICRCLen bytes and is not covered.
//
// The CRC is CRC-32 (IEEE 802.3, as hash/crc32.ChecksumIEEE) over eight 0xFF bytes standing for
// the absent LRH, then the IPv4 header with TOS, TTL and header checksum replaced by ones, the
// UDP header with its checksum replaced by ones, the BTH with byte 4 (FECN, BECN and reserved
// bits) replaced by ones, and everything after the BTH up to the ICRC field. It is stored in the
// frame least significant byte first.
//
// The IPv4 header is taken to be the 20 bytes after the Ethernet header. A frame shorter than
// MinFrameLen has no ICRC: the result is then 0.
func ICRC(frame []byte) uint32 {
	if len(frame) < MinFrameLen {
		return 0
	}
	var masked [8 + IPv4HeaderLen + UDPHeaderLen + BTHLen]byte
	for i := range 8 {
		masked[i] = 0xFF
	}
	copy(masked[8:], frame[IPv4Offset:ExtOffset])
	ip := masked[8:]
	ip[1] = 0xFF                // TOS
	ip[8] = 0xFF                // TTL
	ip[10], ip[11] = 0xFF, 0xFF // header checksum
	udp := ip[IPv4HeaderLen:]
	udp[6], udp[7] = 0xFF, 0xFF // UDP checksum
	udp[UDPHeaderLen+4] = 0xFF  // BTH byte 4: FECN, BECN, reserved
	crc := crc32.ChecksumIEEE(masked[:])
	return crc32.Update(crc, crc32.IEEETable, frame[ExtOffset:len(frame)-ICRCLen])
}

// CheckICRC reports whether the last ICRCLen bytes of frame hold its correct ICRC. It is false
// for a frame shorter than MinFrameLen.
func CheckICRC(frame []byte) bool {
	if len(frame) < MinFrameLen {
		return false
	}
	return binary.LittleEndian.Uint32(frame[len(frame)-ICRCLen:]) == ICRC(frame)
}

// putICRC computes the ICRC of frame and stores it in its last ICRCLen bytes.
func putICRC(frame []byte) {
	binary.LittleEndian.PutUint32(frame[len(frame)-ICRCLen:], ICRC(frame))
}

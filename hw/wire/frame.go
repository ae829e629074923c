package wire

import "encoding/binary"

// Frame describes one RoCEv2 frame, from the Ethernet header to the payload. Marshal computes
// everything else: the lengths, the IPv4 header checksum, the pad and pad count, and the ICRC.
type Frame struct {
	DstMAC [6]byte // Ethernet destination
	SrcMAC [6]byte // Ethernet source

	SrcIP [4]byte // IPv4 source address
	DstIP [4]byte // IPv4 destination address
	TOS   uint8   // IPv4 type of service (DSCP and ECN); the NIC sends 0
	TTL   uint8   // IPv4 time to live; the NIC sends DefaultTTL
	IPID  uint16  // IPv4 identification

	SrcPort uint16 // UDP source port; the destination port is always RoCEv2Port

	BTH  BTHFields   // Base Transport Header; Marshal ignores PadCnt and computes it
	AETH *AETHFields // ACK Extended Transport Header, present in an ACK
	DETH *DETHFields // Datagram Extended Transport Header, present in a UD SEND

	Payload []byte // the message bytes the packet carries, without pad
}

// PadLen returns the number of pad bytes that follow a payload of n bytes: 0 to 3, so that
// payload and pad together are a multiple of 4 bytes.
func PadLen(n int) int { return -n & 3 }

// Len returns the length of the frame Marshal builds.
func (f *Frame) Len() int {
	n := ExtOffset + len(f.Payload) + PadLen(len(f.Payload)) + ICRCLen
	if f.AETH != nil {
		n += AETHLen
	}
	if f.DETH != nil {
		n += DETHLen
	}
	return n
}

// Marshal lays the frame out in a new slice of f.Len() bytes. It writes an AETH if f.AETH is set
// and then a DETH if f.DETH is set, whatever the opcode, and every field as given except the
// ones it computes: IPv4 total length, flags (DF), protocol and header checksum, UDP destination
// port, length and checksum (0), the BTH pad count, the zero pad bytes and the ICRC. It checks
// nothing, so tests can build frames that Parse rejects.
func (f *Frame) Marshal() []byte {
	b := make([]byte, f.Len())

	copy(b[0:6], f.DstMAC[:])
	copy(b[6:12], f.SrcMAC[:])
	binary.BigEndian.PutUint16(b[12:], EtherTypeIPv4)

	ip := b[IPv4Offset:UDPOffset]
	ip[0] = 0x45 // version 4, IHL 5
	ip[1] = f.TOS
	binary.BigEndian.PutUint16(ip[2:], uint16(len(b)-IPv4Offset))
	binary.BigEndian.PutUint16(ip[4:], f.IPID)
	binary.BigEndian.PutUint16(ip[6:], IPv4FlagDF)
	ip[8] = f.TTL
	ip[9] = IPProtocolUDP
	copy(ip[12:16], f.SrcIP[:])
	copy(ip[16:20], f.DstIP[:])
	binary.BigEndian.PutUint16(ip[10:], IPv4Checksum(ip))

	udp := b[UDPOffset:BTHOffset]
	binary.BigEndian.PutUint16(udp[0:], f.SrcPort)
	binary.BigEndian.PutUint16(udp[2:], RoCEv2Port)
	binary.BigEndian.PutUint16(udp[4:], uint16(len(b)-UDPOffset))

	bth := f.BTH
	bth.PadCnt = uint8(PadLen(len(f.Payload)))
	BTH(b[BTHOffset:ExtOffset]).Encode(&bth)

	off := ExtOffset
	if f.AETH != nil {
		AETH(b[off:]).Encode(f.AETH)
		off += AETHLen
	}
	if f.DETH != nil {
		DETH(b[off:]).Encode(f.DETH)
		off += DETHLen
	}
	copy(b[off:], f.Payload)
	putICRC(b)
	return b
}

// IPv4Checksum returns the Internet checksum of an IPv4 header, computed with its checksum field
// (bytes 10-11) taken as zero. A header whose stored checksum is right gives back that value.
func IPv4Checksum(hdr []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(hdr); i += 2 {
		if i != 10 {
			sum += uint32(hdr[i])<<8 | uint32(hdr[i+1])
		}
	}
	if len(hdr)%2 == 1 {
		sum += uint32(hdr[len(hdr)-1]) << 8
	}
	for sum>>16 != 0 {
		sum = sum&0xFFFF + sum>>16
	}
	return ^uint16(sum)
}

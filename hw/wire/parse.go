package wire

import (
	"encoding/binary"
	"fmt"
)

// DropReason says why the receiver drops a frame. The values are the contract's RxDrop codes:
// 1 to 12 are numbered in the order Parse checks them, the address filter's and ARP's reasons
// came later (22 on, see their docs for where they are checked); 0 is not a reason.
type DropReason uint8

// The reasons for dropping a frame.
const (
	// DropTruncated: the frame ends before a header it needs, or before the end of the IPv4
	// datagram its total length announces. Parse checks for room for the fixed headers and the
	// ICRC first, for the whole datagram with the IPv4 total length, and for the opcode's
	// extension header after the opcode.
	DropTruncated DropReason = iota + 1
	// DropEtherType: the EtherType is not IPv4.
	DropEtherType
	// DropIPVersion: the IPv4 version is not 4 or the header length is not 5 words.
	DropIPVersion
	// DropIPLength: the IPv4 total length is too small for the headers and ICRC, or the frame
	// has bytes after the datagram other than the padding of a minimum-size Ethernet frame.
	DropIPLength
	// DropIPProtocol: the IPv4 protocol is not UDP.
	DropIPProtocol
	// DropUDPPort: the UDP destination port is not RoCEv2Port.
	DropUDPPort
	// DropUDPLength: the UDP length disagrees with the IPv4 total length.
	DropUDPLength
	// DropTVer: the BTH transport header version is not 0.
	DropTVer
	// DropPKey: the BTH partition key is not the expected one.
	DropPKey
	// DropOpcode: the opcode is not one the NIC supports.
	DropOpcode
	// DropICRC: the ICRC is wrong.
	DropICRC
	// DropLength: the payload length breaks the rule for the opcode and path MTU, or payload
	// and pad together are not a multiple of 4 bytes or are fewer than the pad count.
	DropLength
)

// The address filter's reasons and ARP's, checked only when ParseOptions.Local is set.
const (
	// DropDstMAC: the Ethernet destination is not the station's MAC, nor the broadcast address
	// for an ARP frame. Checked right after the Ethernet header's length.
	DropDstMAC DropReason = 22
	// DropDstIP: the IPv4 destination is not the station's address. Checked after the IPv4
	// length checks, before the protocol.
	DropDstIP DropReason = 23
	// DropARPMalformed: an ARP frame that is too short, not for Ethernet and IPv4, has an
	// opcode other than request and reply, or a group sender MAC (see ParseARP).
	DropARPMalformed DropReason = 24
	// DropARPTarget: an ARP frame whose target IPv4 address is not the station's.
	DropARPTarget DropReason = 25
)

var dropNames = [...]string{
	DropTruncated:  "Truncated",
	DropEtherType:  "EtherType",
	DropIPVersion:  "IPVersion",
	DropIPLength:   "IPLength",
	DropIPProtocol: "IPProtocol",
	DropUDPPort:    "UDPPort",
	DropUDPLength:  "UDPLength",
	DropTVer:       "TVer",
	DropPKey:       "PKey",
	DropOpcode:     "Opcode",
	DropICRC:       "ICRC",
	DropLength:     "Length",

	DropDstMAC:       "DstMAC",
	DropDstIP:        "DstIP",
	DropARPMalformed: "ARPMalformed",
	DropARPTarget:    "ARPTarget",
}

// String returns the reason's name, such as "ICRC".
func (r DropReason) String() string {
	if int(r) < len(dropNames) && dropNames[r] != "" {
		return dropNames[r]
	}
	return fmt.Sprintf("DropReason(%d)", uint8(r))
}

// ParseError is the error Parse returns for a frame the receiver drops.
type ParseError struct {
	Reason DropReason // why the frame is dropped
	Detail string     // what was found, for people
}

// Error describes the drop.
func (e *ParseError) Error() string {
	return "wire: drop " + e.Reason.String() + ": " + e.Detail
}

func drop(r DropReason, format string, args ...any) *ParseError {
	return &ParseError{Reason: r, Detail: fmt.Sprintf(format, args...)}
}

// Path MTUs: the largest payload of one packet. ValidPMTU accepts exactly these.
const (
	PMTU256  = 256
	PMTU512  = 512
	PMTU1024 = 1024
	PMTU2048 = 2048
	PMTU4096 = 4096

	// DefaultPMTU is the path MTU ParseOptions uses when none is given: the largest that fits a
	// standard 1500-byte Ethernet MTU.
	DefaultPMTU = PMTU1024
)

// ValidPMTU reports whether n is one of the InfiniBand path MTUs.
func ValidPMTU(n int) bool {
	switch n {
	case PMTU256, PMTU512, PMTU1024, PMTU2048, PMTU4096:
		return true
	}
	return false
}

// ParseOptions sets what Parse expects. The zero value expects DefaultPKey and DefaultPMTU and
// filters no addresses.
type ParseOptions struct {
	PKey uint16 // expected BTH partition key; 0 means DefaultPKey
	PMTU int    // path MTU for the length rules; 0 means DefaultPMTU
	// Local, when set, is the receiving station's addresses: frames to another MAC or IPv4
	// address are dropped (DropDstMAC, DropDstIP), and ARP frames are judged by ParseARP.
	Local *Station
}

// Parse parses and validates frame b as the receiver does, with the zero ParseOptions.
func Parse(b []byte) (*Frame, error) { return ParseOptions{}.Parse(b) }

// Parse parses and validates frame b, an Ethernet frame without FCS, as a RoCEv2 frame. A frame
// the receiver would drop gives a *ParseError with the first reason found, in the order of the
// DropReason values (see DropTruncated for where the length checks fall, DropDstMAC and
// DropDstIP for the address filter's checks when o.Local is set). Invalid options, a PMTU that
// is not a path MTU, give an error that is not a *ParseError.
//
// With o.Local set, an ARP frame gets ParseARP's verdict when that is a drop, and DropEtherType
// when ParseARP would take it: Receive is the receiver's whole verdict, ARP included.
//
// The extension header follows from the opcode: an AETH for OpRCAck, a DETH for OpUDSendOnly.
// Parse does not check the IPv4 header checksum, flags, TOS or TTL, the UDP source port or
// checksum, the reserved bits or the pad bytes, none of which the receiver looks at. It never
// panics and does not keep b: the returned Frame's Payload is a copy, nil if empty.
func (o ParseOptions) Parse(b []byte) (*Frame, error) {
	pkey, pmtu := o.PKey, o.PMTU
	if pkey == 0 {
		pkey = DefaultPKey
	}
	if pmtu == 0 {
		pmtu = DefaultPMTU
	}
	if !ValidPMTU(pmtu) {
		return nil, fmt.Errorf("wire: path MTU %d is not 256, 512, 1024, 2048 or 4096", pmtu)
	}

	if o.Local != nil {
		if len(b) < EthernetHeaderLen {
			return nil, drop(DropTruncated, "%d bytes, need an Ethernet header", len(b))
		}
		if binary.BigEndian.Uint16(b[12:]) == EtherTypeARP {
			if _, err := o.ParseARP(b); err != nil {
				return nil, err
			}
			return nil, drop(DropEtherType, "ARP, not RoCEv2 (Receive takes it)")
		}
		if [6]byte(b[0:6]) != o.Local.MAC {
			return nil, drop(DropDstMAC, "Ethernet destination %x", b[0:6])
		}
	}
	if len(b) < MinFrameLen {
		return nil, drop(DropTruncated, "%d bytes, need at least %d", len(b), MinFrameLen)
	}
	if et := binary.BigEndian.Uint16(b[12:]); et != EtherTypeIPv4 {
		return nil, drop(DropEtherType, "EtherType 0x%04x", et)
	}
	ip := b[IPv4Offset:UDPOffset]
	if ip[0] != 0x45 {
		return nil, drop(DropIPVersion, "version %d, IHL %d", ip[0]>>4, ip[0]&15)
	}
	total := int(binary.BigEndian.Uint16(ip[2:]))
	end := IPv4Offset + total
	switch {
	case end > len(b):
		return nil, drop(DropTruncated, "IPv4 total length %d, but %d bytes after the Ethernet header", total, len(b)-IPv4Offset)
	case end < MinFrameLen:
		return nil, drop(DropIPLength, "IPv4 total length %d, below the minimum %d", total, MinFrameLen-IPv4Offset)
	case end < len(b) && len(b) != MinEthernetFrameLen:
		return nil, drop(DropIPLength, "IPv4 total length %d, but %d bytes after the Ethernet header", total, len(b)-IPv4Offset)
	}
	b = b[:end] // drop any minimum-frame padding
	if o.Local != nil && [4]byte(ip[16:20]) != o.Local.IP {
		return nil, drop(DropDstIP, "IPv4 destination %d.%d.%d.%d", ip[16], ip[17], ip[18], ip[19])
	}
	if ip[9] != IPProtocolUDP {
		return nil, drop(DropIPProtocol, "protocol %d", ip[9])
	}
	udp := b[UDPOffset:BTHOffset]
	if port := binary.BigEndian.Uint16(udp[2:]); port != RoCEv2Port {
		return nil, drop(DropUDPPort, "destination port %d", port)
	}
	if ul := int(binary.BigEndian.Uint16(udp[4:])); ul != total-IPv4HeaderLen {
		return nil, drop(DropUDPLength, "UDP length %d, IPv4 total length %d", ul, total)
	}
	bth := BTH(b[BTHOffset:ExtOffset])
	if v := bth.TVer(); v != 0 {
		return nil, drop(DropTVer, "TVer %d", v)
	}
	if k := bth.PKey(); k != pkey {
		return nil, drop(DropPKey, "P_Key 0x%04x, expected 0x%04x", k, pkey)
	}
	op := bth.OpCode()
	if !Supported(op) {
		return nil, drop(DropOpcode, "%s", OpcodeName(op))
	}
	ext := ExtLen(op)
	if end-ICRCLen < ExtOffset+ext {
		return nil, drop(DropTruncated, "%s needs a %d-byte extension header, %d bytes before the ICRC",
			OpcodeName(op), ext, end-ICRCLen-ExtOffset)
	}
	if !CheckICRC(b) {
		return nil, drop(DropICRC, "ICRC %08x, computed %08x", binary.LittleEndian.Uint32(b[end-ICRCLen:]), ICRC(b))
	}

	body := end - ICRCLen - ExtOffset - ext // payload and pad
	pad := int(bth.PadCnt())
	if body%4 != 0 || pad > body {
		return nil, drop(DropLength, "%d bytes of payload and pad with pad count %d", body, pad)
	}
	n := body - pad
	if err := checkLength(op, n, pmtu); err != nil {
		return nil, err
	}

	f := &Frame{
		TOS:     ip[1],
		TTL:     ip[8],
		IPID:    binary.BigEndian.Uint16(ip[4:]),
		SrcPort: binary.BigEndian.Uint16(udp[0:]),
		BTH:     bth.Fields(),
	}
	copy(f.DstMAC[:], b[0:6])
	copy(f.SrcMAC[:], b[6:12])
	copy(f.SrcIP[:], ip[12:16])
	copy(f.DstIP[:], ip[16:20])
	switch op {
	case OpRCAck:
		a := AETH(b[ExtOffset:]).Fields()
		f.AETH = &a
	case OpUDSendOnly:
		d := DETH(b[ExtOffset:]).Fields()
		f.DETH = &d
	}
	if n > 0 {
		off := ExtOffset + ext
		f.Payload = append([]byte(nil), b[off:off+n]...)
	}
	return f, nil
}

// checkLength applies the payload length rule of opcode op for path MTU pmtu.
func checkLength(op uint8, n, pmtu int) error {
	ok := false
	switch op {
	case OpRCSendFirst, OpRCSendMiddle:
		ok = n == pmtu
	case OpRCSendLast:
		ok = n >= 1 && n <= pmtu
	case OpRCSendOnly, OpUDSendOnly:
		ok = n <= pmtu
	case OpRCAck:
		ok = n == 0
	}
	if !ok {
		return drop(DropLength, "%s with %d bytes of payload, path MTU %d", OpcodeName(op), n, pmtu)
	}
	return nil
}

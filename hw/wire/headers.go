package wire

import (
	"encoding/binary"
	"fmt"
)

// Header sizes in bytes.
const (
	EthernetHeaderLen = 14 // destination MAC, source MAC, EtherType
	IPv4HeaderLen     = 20 // IPv4 header without options
	UDPHeaderLen      = 8  // UDP header
	BTHLen            = 12 // Base Transport Header
	AETHLen           = 4  // ACK Extended Transport Header
	DETHLen           = 8  // Datagram Extended Transport Header
	ICRCLen           = 4  // invariant CRC trailer
)

// Offsets of the headers in a frame.
const (
	IPv4Offset  = EthernetHeaderLen          // start of the IPv4 header
	UDPOffset   = IPv4Offset + IPv4HeaderLen // start of the UDP header
	BTHOffset   = UDPOffset + UDPHeaderLen   // start of the BTH
	ExtOffset   = BTHOffset + BTHLen         // start of the AETH or DETH, or of the payload
	MinFrameLen = ExtOffset + ICRCLen        // shortest possible frame: no extension header, no payload
)

// MinEthernetFrameLen is the shortest Ethernet frame without its FCS. A MAC pads shorter frames
// to this length, so a received frame of exactly this length may carry bytes after the IPv4
// datagram, which Parse ignores.
const MinEthernetFrameLen = 60

// Protocol numbers and defaults.
const (
	EtherTypeIPv4 = 0x0800     // EtherType of IPv4
	IPProtocolUDP = 17         // IPv4 protocol number of UDP
	IPv4FlagDF    = 0x4000     // Don't Fragment, in the flags and fragment offset word
	DefaultTTL    = 64         // TTL the NIC sends
	RoCEv2Port    = 4791       // UDP destination port of RoCEv2
	DefaultPKey   = 0xFFFF     // the default partition key, the only one the NIC accepts by default
	GSIQKey       = 0x80010000 // Q_Key of the General Services Interface (QP1)
	GSIQP         = 1          // queue pair number of the General Services Interface
	PSNMask       = 0xFFFFFF   // PSNs and MSNs are 24 bits
	QPMask        = 0xFFFFFF   // queue pair numbers are 24 bits
)

// Opcodes the NIC supports (BTH byte 0).
const (
	OpRCSendFirst  = 0x00 // RC SEND First
	OpRCSendMiddle = 0x01 // RC SEND Middle
	OpRCSendLast   = 0x02 // RC SEND Last
	OpRCSendOnly   = 0x04 // RC SEND Only
	OpRCAck        = 0x11 // RC Acknowledge, carries an AETH
	OpUDSendOnly   = 0x64 // UD SEND Only, carries a DETH
)

// OpcodeName returns a short name for a supported opcode, or "opcode 0xNN" for any other.
func OpcodeName(op uint8) string {
	switch op {
	case OpRCSendFirst:
		return "RC_SEND_FIRST"
	case OpRCSendMiddle:
		return "RC_SEND_MIDDLE"
	case OpRCSendLast:
		return "RC_SEND_LAST"
	case OpRCSendOnly:
		return "RC_SEND_ONLY"
	case OpRCAck:
		return "RC_ACKNOWLEDGE"
	case OpUDSendOnly:
		return "UD_SEND_ONLY"
	}
	return fmt.Sprintf("opcode 0x%02x", op)
}

// ExtLen returns the length of the extension header that follows the BTH for a supported
// opcode: AETHLen for an ACK, DETHLen for UD SEND_ONLY and 0 for the RC sends.
func ExtLen(op uint8) int {
	switch op {
	case OpRCAck:
		return AETHLen
	case OpUDSendOnly:
		return DETHLen
	}
	return 0
}

// Supported reports whether op is one of the opcodes the NIC handles.
func Supported(op uint8) bool {
	switch op {
	case OpRCSendFirst, OpRCSendMiddle, OpRCSendLast, OpRCSendOnly, OpRCAck, OpUDSendOnly:
		return true
	}
	return false
}

// AETH syndromes. The syndrome's bits 6:5 give its type and bits 4:0 its value.
const (
	SyndromeTypeMask = 0x60 // bits 6:5 of the syndrome
	SyndromeValMask  = 0x1F // bits 4:0 of the syndrome

	SyndromeTypeACK    = 0x00 // ACK; the value is a credit count
	SyndromeTypeRNRNAK = 0x20 // receiver not ready; the value is the RNR timer code
	SyndromeTypeNAK    = 0x60 // NAK; the value is the NAK code

	SyndromeACK                = 0x1F // ACK with unlimited credits, the only ACK the NIC sends
	SyndromeNAKPSNSeqError     = 0x60 // NAK: PSN sequence error
	SyndromeNAKInvalidRequest  = 0x61 // NAK: invalid request
	SyndromeNAKRemoteAccess    = 0x62 // NAK: remote access error
	SyndromeNAKRemoteOperation = 0x63 // NAK: remote operational error
)

// RNRNAKSyndrome returns the syndrome of an RNR NAK carrying the 5-bit RNR timer code timer.
func RNRNAKSyndrome(timer uint8) uint8 {
	return SyndromeTypeRNRNAK | timer&SyndromeValMask
}

// BTH is a view of a Base Transport Header: a slice of at least BTHLen bytes, read and written
// in place. Accessors panic on a shorter slice.
type BTH []byte

// BTHFields holds the fields of a BTH. Reserved bits are not represented; Encode writes them as
// zero.
type BTHFields struct {
	OpCode uint8  // operation code
	SE     bool   // solicited event
	MigReq bool   // migration request (M)
	PadCnt uint8  // pad count, 0-3
	TVer   uint8  // transport header version, 0
	PKey   uint16 // partition key
	FECN   bool   // forward explicit congestion notification
	BECN   bool   // backward explicit congestion notification
	DestQP uint32 // destination queue pair, 24 bits
	AckReq bool   // acknowledge request
	PSN    uint32 // packet sequence number, 24 bits
}

// OpCode returns the operation code (byte 0).
func (b BTH) OpCode() uint8 { return b[0] }

// SE returns the solicited event bit.
func (b BTH) SE() bool { return b[1]&0x80 != 0 }

// MigReq returns the migration request bit (M).
func (b BTH) MigReq() bool { return b[1]&0x40 != 0 }

// PadCnt returns the pad count: how many bytes of padding follow the payload.
func (b BTH) PadCnt() uint8 { return b[1] >> 4 & 3 }

// TVer returns the transport header version.
func (b BTH) TVer() uint8 { return b[1] & 0x0F }

// PKey returns the partition key.
func (b BTH) PKey() uint16 { return binary.BigEndian.Uint16(b[2:]) }

// FECN returns the forward explicit congestion notification bit.
func (b BTH) FECN() bool { return b[4]&0x80 != 0 }

// BECN returns the backward explicit congestion notification bit.
func (b BTH) BECN() bool { return b[4]&0x40 != 0 }

// DestQP returns the 24-bit destination queue pair.
func (b BTH) DestQP() uint32 { return get24(b[5:]) }

// AckReq returns the acknowledge request bit.
func (b BTH) AckReq() bool { return b[8]&0x80 != 0 }

// PSN returns the 24-bit packet sequence number.
func (b BTH) PSN() uint32 { return get24(b[9:]) }

// SetPadCnt sets the pad count, keeping the other bits of byte 1.
func (b BTH) SetPadCnt(n uint8) { b[1] = b[1]&^0x30 | (n&3)<<4 }

// SetPSN sets the packet sequence number to psn modulo 2^24.
func (b BTH) SetPSN(psn uint32) { put24(b[9:], psn) }

// Fields returns all the fields of the header.
func (b BTH) Fields() BTHFields {
	return BTHFields{
		OpCode: b.OpCode(), SE: b.SE(), MigReq: b.MigReq(), PadCnt: b.PadCnt(), TVer: b.TVer(),
		PKey: b.PKey(), FECN: b.FECN(), BECN: b.BECN(), DestQP: b.DestQP(), AckReq: b.AckReq(),
		PSN: b.PSN(),
	}
}

// Encode writes every field of the header from f. PadCnt and TVer are truncated to their 2 and
// 4 bits, DestQP and PSN to 24 bits, and the reserved bits are zeroed.
func (b BTH) Encode(f *BTHFields) {
	b[0] = f.OpCode
	b[1] = bit(f.SE, 0x80) | bit(f.MigReq, 0x40) | (f.PadCnt&3)<<4 | f.TVer&0x0F
	binary.BigEndian.PutUint16(b[2:], f.PKey)
	b[4] = bit(f.FECN, 0x80) | bit(f.BECN, 0x40)
	put24(b[5:], f.DestQP)
	b[8] = bit(f.AckReq, 0x80)
	put24(b[9:], f.PSN)
}

// AETH is a view of an ACK Extended Transport Header: a slice of at least AETHLen bytes.
type AETH []byte

// AETHFields holds the fields of an AETH.
type AETHFields struct {
	Syndrome uint8  // ACK type and credit count, RNR timer or NAK code
	MSN      uint32 // message sequence number, 24 bits
}

// Syndrome returns the syndrome byte.
func (a AETH) Syndrome() uint8 { return a[0] }

// MSN returns the 24-bit message sequence number.
func (a AETH) MSN() uint32 { return get24(a[1:]) }

// Fields returns all the fields of the header.
func (a AETH) Fields() AETHFields { return AETHFields{Syndrome: a.Syndrome(), MSN: a.MSN()} }

// Encode writes the header from f, with MSN truncated to 24 bits.
func (a AETH) Encode(f *AETHFields) {
	a[0] = f.Syndrome
	put24(a[1:], f.MSN)
}

// DETH is a view of a Datagram Extended Transport Header: a slice of at least DETHLen bytes.
type DETH []byte

// DETHFields holds the fields of a DETH.
type DETHFields struct {
	QKey  uint32 // queue key
	SrcQP uint32 // source queue pair, 24 bits
}

// QKey returns the queue key.
func (d DETH) QKey() uint32 { return binary.BigEndian.Uint32(d) }

// SrcQP returns the 24-bit source queue pair.
func (d DETH) SrcQP() uint32 { return get24(d[5:]) }

// Fields returns all the fields of the header.
func (d DETH) Fields() DETHFields { return DETHFields{QKey: d.QKey(), SrcQP: d.SrcQP()} }

// Encode writes the header from f, with SrcQP truncated to 24 bits and the reserved byte zeroed.
func (d DETH) Encode(f *DETHFields) {
	binary.BigEndian.PutUint32(d, f.QKey)
	d[4] = 0
	put24(d[5:], f.SrcQP)
}

func get24(b []byte) uint32 {
	_ = b[2]
	return uint32(b[0])<<16 | uint32(b[1])<<8 | uint32(b[2])
}

func put24(b []byte, v uint32) {
	_ = b[2]
	b[0], b[1], b[2] = byte(v>>16), byte(v>>8), byte(v)
}

func bit(on bool, mask byte) byte {
	if on {
		return mask
	}
	return 0
}

package wire

import (
	"encoding/binary"
	"fmt"
)

// ARP (RFC 826) for Ethernet and IPv4, as the NIC speaks it: it answers requests for its own
// address, sends requests on the host's command, and hands the replies for its address to the
// host. A frame is laid out as
//
//	Ethernet (14) | htype 1 (2) | ptype 0x0800 (2) | hlen 6 | plen 4 | op (2) |
//	sender MAC (6) | sender IP (4) | target MAC (6) | target IP (4) | padding to 60 bytes
const (
	EtherTypeARP = 0x0806 // EtherType of ARP
	ARPLen       = 28     // the ARP packet for Ethernet and IPv4
	ARPFrameLen  = EthernetHeaderLen + ARPLen

	ARPOpRequest = 1 // who-has
	ARPOpReply   = 2 // is-at

	arpHTypeEthernet = 1
)

// BroadcastMAC is the Ethernet broadcast address, where ARP requests go.
var BroadcastMAC = [6]byte{0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}

// ARP describes one ARP frame: the Ethernet addresses and the ARP packet's fields.
type ARP struct {
	DstMAC [6]byte // Ethernet destination: BroadcastMAC for a request, the asker for a reply
	SrcMAC [6]byte // Ethernet source

	Op        uint16 // ARPOpRequest or ARPOpReply
	SenderMAC [6]byte
	SenderIP  [4]byte
	TargetMAC [6]byte // zero in a request
	TargetIP  [4]byte
}

// Marshal lays the frame out as the NIC sends it: MinEthernetFrameLen bytes, the ARP packet
// followed by zero padding. It checks nothing, so tests can build frames the receiver drops.
func (a *ARP) Marshal() []byte {
	b := make([]byte, MinEthernetFrameLen)
	copy(b[0:6], a.DstMAC[:])
	copy(b[6:12], a.SrcMAC[:])
	binary.BigEndian.PutUint16(b[12:], EtherTypeARP)
	p := b[EthernetHeaderLen:]
	binary.BigEndian.PutUint16(p[0:], arpHTypeEthernet)
	binary.BigEndian.PutUint16(p[2:], EtherTypeIPv4)
	p[4], p[5] = 6, 4
	binary.BigEndian.PutUint16(p[6:], a.Op)
	copy(p[8:14], a.SenderMAC[:])
	copy(p[14:18], a.SenderIP[:])
	copy(p[18:24], a.TargetMAC[:])
	copy(p[24:28], a.TargetIP[:])
	return b
}

// Station is a receiver's own addresses, which its address filter compares frames with.
type Station struct {
	MAC [6]byte
	IP  [4]byte
}

// ParseARP judges frame b, an Ethernet frame without FCS, as the receiver of a station with
// the addresses o.Local judges an ARP frame: the Ethernet destination must be the station's
// MAC or the broadcast address (DropDstMAC), then DecodeARP's checks apply, then the target
// IPv4 address must be the station's (DropARPTarget). Options without Local give an error that
// is not a *ParseError. It never panics and does not keep b.
func (o ParseOptions) ParseARP(b []byte) (*ARP, error) {
	if o.Local == nil {
		return nil, fmt.Errorf("wire: ParseARP needs the station's addresses (ParseOptions.Local)")
	}
	if len(b) < EthernetHeaderLen {
		return nil, drop(DropTruncated, "%d bytes, need an Ethernet header", len(b))
	}
	if dst := [6]byte(b[0:6]); dst != o.Local.MAC && dst != BroadcastMAC {
		return nil, drop(DropDstMAC, "Ethernet destination %x", dst)
	}
	a, err := DecodeARP(b)
	if err != nil {
		return nil, err
	}
	if a.TargetIP != o.Local.IP {
		return nil, drop(DropARPTarget, "target %d.%d.%d.%d", a.TargetIP[0], a.TargetIP[1], a.TargetIP[2], a.TargetIP[3])
	}
	return a, nil
}

// DecodeARP decodes frame b as an ARP frame for Ethernet and IPv4, to whomever it is: the
// EtherType must be ARP (DropEtherType), the packet whole and for Ethernet and IPv4 with a
// request or reply opcode and a sender MAC that is not a group address (DropARPMalformed).
// Bytes after the packet (padding) are ignored. It never panics and does not keep b.
func DecodeARP(b []byte) (*ARP, error) {
	if len(b) < EthernetHeaderLen {
		return nil, drop(DropTruncated, "%d bytes, need an Ethernet header", len(b))
	}
	if et := binary.BigEndian.Uint16(b[12:]); et != EtherTypeARP {
		return nil, drop(DropEtherType, "EtherType 0x%04x", et)
	}
	if len(b) < ARPFrameLen {
		return nil, drop(DropARPMalformed, "%d bytes, an ARP frame needs %d", len(b), ARPFrameLen)
	}
	p := b[EthernetHeaderLen:ARPFrameLen]
	ht, pt, op := binary.BigEndian.Uint16(p[0:]), binary.BigEndian.Uint16(p[2:]), binary.BigEndian.Uint16(p[6:])
	switch {
	case ht != arpHTypeEthernet || pt != EtherTypeIPv4 || p[4] != 6 || p[5] != 4:
		return nil, drop(DropARPMalformed, "hardware type %d, protocol type 0x%04x, lengths %d and %d", ht, pt, p[4], p[5])
	case op != ARPOpRequest && op != ARPOpReply:
		return nil, drop(DropARPMalformed, "opcode %d", op)
	case p[8]&1 != 0:
		return nil, drop(DropARPMalformed, "sender MAC %x is a group address", p[8:14])
	}
	a := &ARP{Op: op}
	copy(a.DstMAC[:], b[0:6])
	copy(a.SrcMAC[:], b[6:12])
	copy(a.SenderMAC[:], p[8:14])
	copy(a.SenderIP[:], p[14:18])
	copy(a.TargetMAC[:], p[18:24])
	copy(a.TargetIP[:], p[24:28])
	return a, nil
}

// Receive judges frame b as the receiver of the station o.Local does: an ARP frame with
// ParseARP, any other with Parse. Exactly one of the frame and the ARP is set when the error
// is nil. Without Local, every frame goes to Parse (and an ARP frame is dropped as EtherType).
func (o ParseOptions) Receive(b []byte) (*Frame, *ARP, error) {
	if o.Local != nil && len(b) >= EthernetHeaderLen && binary.BigEndian.Uint16(b[12:]) == EtherTypeARP {
		a, err := o.ParseARP(b)
		return nil, a, err
	}
	f, err := o.Parse(b)
	return f, nil, err
}

// Package wire is the Go reference model of the NIC's frames on the wire: RoCEv2, that is the
// InfiniBand reliable-connection transport carried in UDP/IPv4 to port 4791, over Ethernet.
//
// A frame is laid out as
//
//	Ethernet (14) | IPv4 (20, no options) | UDP (8) | BTH (12) | AETH (4) or DETH (8) | payload | pad | ICRC (4)
//
// with no Ethernet FCS, which the MAC adds. The package builds frames (Frame.Marshal), parses and
// validates them the way the receiver does (Parse, ParseOptions.Parse), computes the invariant
// CRC (ICRC, CheckICRC), does 24-bit PSN arithmetic (PSNAdd, PSNCompare), checks RC send opcode
// sequences (OpSeq), splits messages into packets (Segment) and writes and reads pcap files
// (PcapWriter, ReadPcap).
//
// RTL tests compare the hardware's frames with the ones built here byte for byte, and Wireshark
// decodes them, so every layout detail is fixed: see the constants and the header views BTH,
// AETH and DETH, which read and write fields in place in a byte slice.
package wire

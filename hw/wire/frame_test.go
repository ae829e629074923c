package wire

import (
	"encoding/binary"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// testFrame returns a frame between two fixed endpoints with the given opcode and payload.
func testFrame(op uint8, payload []byte) *Frame {
	f := &Frame{
		DstMAC:  [6]byte{0x02, 0x00, 0x5A, 0x4E, 0x00, 0x02},
		SrcMAC:  [6]byte{0x02, 0x00, 0x5A, 0x4E, 0x00, 0x01},
		SrcIP:   [4]byte{10, 0, 0, 1},
		DstIP:   [4]byte{10, 0, 0, 2},
		TTL:     DefaultTTL,
		IPID:    0x1234,
		SrcPort: 0xC000,
		BTH:     BTHFields{OpCode: op, PKey: DefaultPKey, DestQP: 0x000011, PSN: 0x000100, AckReq: true},
		Payload: payload,
	}
	switch op {
	case OpRCAck:
		f.BTH.AckReq = false
		f.AETH = &AETHFields{Syndrome: SyndromeACK, MSN: 3}
	case OpUDSendOnly:
		f.BTH.DestQP = GSIQP
		f.DETH = &DETHFields{QKey: GSIQKey, SrcQP: GSIQP}
	}
	return f
}

// pattern returns n bytes of a recognisable pattern.
func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + 3)
	}
	return b
}

// fixup recomputes a frame's IPv4 total length and checksum, UDP length and ICRC from its
// length, after a test has edited it.
func fixup(b []byte) []byte {
	binary.BigEndian.PutUint16(b[IPv4Offset+2:], uint16(len(b)-IPv4Offset))
	binary.BigEndian.PutUint16(b[IPv4Offset+10:], IPv4Checksum(b[IPv4Offset:UDPOffset]))
	binary.BigEndian.PutUint16(b[UDPOffset+4:], uint16(len(b)-UDPOffset))
	putICRC(b)
	return b
}

func TestMarshalParseRoundTrip(t *testing.T) {
	withAETH := func(syn uint8) func(*Frame) {
		return func(f *Frame) { f.AETH = &AETHFields{Syndrome: syn, MSN: 0xFFFFFE} }
	}
	tests := []struct {
		name string
		op   uint8
		n    int
		pmtu int
		edit func(*Frame)
	}{
		{"first", OpRCSendFirst, 1024, 1024, nil},
		{"first pmtu 256", OpRCSendFirst, 256, 256, nil},
		{"first pmtu 4096", OpRCSendFirst, 4096, 4096, nil},
		{"middle", OpRCSendMiddle, 1024, 1024, nil},
		{"middle pmtu 512", OpRCSendMiddle, 512, 512, nil},
		{"last 1 byte, pad 3", OpRCSendLast, 1, 1024, nil},
		{"last 2 bytes, pad 2", OpRCSendLast, 2, 1024, nil},
		{"last 3 bytes, pad 1", OpRCSendLast, 3, 1024, nil},
		{"last 4 bytes, no pad", OpRCSendLast, 4, 1024, nil},
		{"last full", OpRCSendLast, 2048, 2048, nil},
		{"only empty", OpRCSendOnly, 0, 1024, nil},
		{"only 1", OpRCSendOnly, 1, 1024, nil},
		{"only 5", OpRCSendOnly, 5, 1024, nil},
		{"only 63", OpRCSendOnly, 63, 1024, nil},
		{"only 1022", OpRCSendOnly, 1022, 1024, nil},
		{"only full", OpRCSendOnly, 1024, 1024, nil},
		{"only with flags", OpRCSendOnly, 17, 1024, func(f *Frame) {
			f.BTH.SE, f.BTH.MigReq, f.BTH.FECN, f.BTH.BECN = true, true, true, true
			f.BTH.PSN, f.BTH.DestQP = PSNMask, QPMask
			f.TOS, f.TTL = 0x02, 1
		}},
		{"ack", OpRCAck, 0, 1024, nil},
		{"nak psn sequence error", OpRCAck, 0, 1024, withAETH(SyndromeNAKPSNSeqError)},
		{"nak invalid request", OpRCAck, 0, 1024, withAETH(SyndromeNAKInvalidRequest)},
		{"nak remote access", OpRCAck, 0, 1024, withAETH(SyndromeNAKRemoteAccess)},
		{"nak remote operational", OpRCAck, 0, 1024, withAETH(SyndromeNAKRemoteOperation)},
		{"rnr nak", OpRCAck, 0, 1024, withAETH(RNRNAKSyndrome(14))},
		{"ud send only 256", OpUDSendOnly, 256, 1024, nil},
		{"ud send only 3", OpUDSendOnly, 3, 256, nil},
		{"ud send only empty", OpUDSendOnly, 0, 1024, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var payload []byte
			if tt.n > 0 {
				payload = pattern(tt.n)
			}
			f := testFrame(tt.op, payload)
			if tt.edit != nil {
				tt.edit(f)
			}
			b := f.Marshal()
			pad := PadLen(tt.n)
			require.Equal(t, f.Len(), len(b))
			require.Equal(t, ExtOffset+ExtLen(tt.op)+tt.n+pad+ICRCLen, len(b))
			require.Zero(t, (tt.n+pad)%4)

			got, err := ParseOptions{PMTU: tt.pmtu}.Parse(b)
			require.NoError(t, err)
			want := *f
			want.BTH.PadCnt = uint8(pad)
			assert.Equal(t, &want, got)
			assert.Equal(t, b, got.Marshal(), "marshalling the parsed frame gives the same bytes")

			// The layout, field by field.
			assert.Equal(t, []byte{0x08, 0x00}, b[12:14])
			assert.Equal(t, byte(0x45), b[IPv4Offset])
			assert.Equal(t, uint16(len(b)-IPv4Offset), binary.BigEndian.Uint16(b[IPv4Offset+2:]))
			assert.Equal(t, uint16(IPv4FlagDF), binary.BigEndian.Uint16(b[IPv4Offset+6:]))
			assert.Equal(t, byte(IPProtocolUDP), b[IPv4Offset+9])
			assert.Equal(t, uint16(0), onesSum(b[IPv4Offset:UDPOffset]), "IPv4 header checksums to zero")
			assert.Equal(t, uint16(RoCEv2Port), binary.BigEndian.Uint16(b[UDPOffset+2:]))
			assert.Equal(t, uint16(len(b)-UDPOffset), binary.BigEndian.Uint16(b[UDPOffset+4:]))
			assert.Equal(t, uint16(0), binary.BigEndian.Uint16(b[UDPOffset+6:]), "no UDP checksum")
			assert.Equal(t, uint8(pad), BTH(b[BTHOffset:]).PadCnt())
			end := len(b) - ICRCLen
			assert.Equal(t, make([]byte, pad), b[end-pad:end], "zero pad")
			assert.Equal(t, ICRC(b), binary.LittleEndian.Uint32(b[end:]))
		})
	}
}

// onesSum folds the one's-complement sum of b and complements it: 0 for a header with a
// correct checksum.
func onesSum(b []byte) uint16 {
	var s uint32
	for i := 0; i < len(b); i += 2 {
		s += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	s = s&0xFFFF + s>>16
	s = s&0xFFFF + s>>16
	return ^uint16(s)
}

func TestParseDropReasons(t *testing.T) {
	valid := func(op uint8, n int) []byte { return testFrame(op, pattern(n)).Marshal() }
	set := func(b []byte, off int, v ...byte) []byte { copy(b[off:], v); return b }
	setIP := func(b []byte, off int, v ...byte) []byte {
		copy(b[IPv4Offset+off:], v)
		binary.BigEndian.PutUint16(b[IPv4Offset+10:], IPv4Checksum(b[IPv4Offset:UDPOffset]))
		return b
	}
	tests := []struct {
		name string
		b    []byte
		opts ParseOptions
		want DropReason
	}{
		{"empty", nil, ParseOptions{}, DropTruncated},
		{"ethernet header only", valid(OpRCSendOnly, 8)[:14], ParseOptions{}, DropTruncated},
		{"one byte short of the minimum", valid(OpRCSendOnly, 0)[:MinFrameLen-1], ParseOptions{}, DropTruncated},
		{"cut short of the IPv4 length", valid(OpRCSendOnly, 64)[:100], ParseOptions{}, DropTruncated},
		{"last byte missing", func() []byte { b := valid(OpUDSendOnly, 256); return b[:len(b)-1] }(), ParseOptions{}, DropTruncated},
		{"ack too short for its AETH", func() []byte {
			f := testFrame(OpRCAck, nil)
			f.AETH = nil
			return f.Marshal()
		}(), ParseOptions{}, DropTruncated},
		{"ud too short for its DETH", func() []byte {
			f := testFrame(OpUDSendOnly, pattern(4))
			f.DETH = nil
			return f.Marshal()
		}(), ParseOptions{}, DropTruncated},
		{"arp ethertype", set(valid(OpRCSendOnly, 8), 12, 0x08, 0x06), ParseOptions{}, DropEtherType},
		{"ipv6 ethertype", set(valid(OpRCSendOnly, 8), 12, 0x86, 0xDD), ParseOptions{}, DropEtherType},
		{"roce v1 ethertype", set(valid(OpRCSendOnly, 8), 12, 0x89, 0x15), ParseOptions{}, DropEtherType},
		{"ip version 6", setIP(valid(OpRCSendOnly, 8), 0, 0x65), ParseOptions{}, DropIPVersion},
		{"ip options", setIP(valid(OpRCSendOnly, 8), 0, 0x46), ParseOptions{}, DropIPVersion},
		{"ip total length short by 4", func() []byte {
			b := valid(OpRCSendOnly, 64)
			return setIP(b, 2, byte((len(b)-IPv4Offset-4)>>8), byte(len(b)-IPv4Offset-4))
		}(), ParseOptions{}, DropIPLength},
		{"ip total length below the headers", setIP(valid(OpRCSendOnly, 8), 2, 0, 40), ParseOptions{}, DropIPLength},
		{"ip total length beyond the frame", func() []byte {
			b := valid(OpRCSendOnly, 64)
			return setIP(b, 2, byte((len(b)-IPv4Offset+4)>>8), byte(len(b)-IPv4Offset+4))
		}(), ParseOptions{}, DropTruncated},
		{"trailing bytes on a long frame", append(valid(OpRCAck, 0), 0, 0), ParseOptions{}, DropIPLength},
		{"tcp", setIP(valid(OpRCSendOnly, 8), 9, 6), ParseOptions{}, DropIPProtocol},
		{"udp port 4792", set(valid(OpRCSendOnly, 8), UDPOffset+2, 0x12, 0xB8), ParseOptions{}, DropUDPPort},
		{"udp length +1", func() []byte {
			b := valid(OpRCSendOnly, 8)
			b[UDPOffset+5]++
			return b
		}(), ParseOptions{}, DropUDPLength},
		{"udp length -4", func() []byte {
			b := valid(OpRCSendOnly, 8)
			b[UDPOffset+5] -= 4
			return b
		}(), ParseOptions{}, DropUDPLength},
		{"tver 1", set(valid(OpRCSendOnly, 8), BTHOffset+1, 0x01), ParseOptions{}, DropTVer},
		{"tver 15", set(valid(OpRCAck, 0), BTHOffset+1, 0x0F), ParseOptions{}, DropTVer},
		{"pkey 0x7fff", set(valid(OpRCSendOnly, 8), BTHOffset+2, 0x7F, 0xFF), ParseOptions{}, DropPKey},
		{"pkey ffff when 8001 expected", valid(OpRCSendOnly, 8), ParseOptions{PKey: 0x8001}, DropPKey},
		{"rdma write only", set(valid(OpRCSendOnly, 8), BTHOffset, 0x0A), ParseOptions{}, DropOpcode},
		{"send last with immediate", set(valid(OpRCSendOnly, 8), BTHOffset, 0x03), ParseOptions{}, DropOpcode},
		{"cnp", set(valid(OpRCSendOnly, 8), BTHOffset, 0x81), ParseOptions{}, DropOpcode},
		{"uc send only", set(valid(OpRCSendOnly, 8), BTHOffset, 0x24), ParseOptions{}, DropOpcode},
		{"payload bit flipped", func() []byte {
			b := valid(OpRCSendOnly, 8)
			b[ExtOffset+3] ^= 0x10
			return b
		}(), ParseOptions{}, DropICRC},
		{"psn changed", func() []byte {
			b := valid(OpRCSendOnly, 8)
			b[BTHOffset+11]++
			return b
		}(), ParseOptions{}, DropICRC},
		{"icrc byte flipped", func() []byte {
			b := valid(OpRCAck, 0)
			b[len(b)-1] ^= 0x80
			return b
		}(), ParseOptions{}, DropICRC},
		{"icrc big-endian", func() []byte {
			b := valid(OpRCSendOnly, 8)
			binary.BigEndian.PutUint32(b[len(b)-ICRCLen:], ICRC(b))
			return b
		}(), ParseOptions{}, DropICRC},
		{"first short", valid(OpRCSendFirst, 1020), ParseOptions{}, DropLength},
		{"first long", valid(OpRCSendFirst, 2048), ParseOptions{}, DropLength},
		{"first 1024 with pmtu 512", valid(OpRCSendFirst, 1024), ParseOptions{PMTU: 512}, DropLength},
		{"middle short", valid(OpRCSendMiddle, 1), ParseOptions{}, DropLength},
		{"last empty", valid(OpRCSendLast, 0), ParseOptions{}, DropLength},
		{"last beyond pmtu", valid(OpRCSendLast, 1025), ParseOptions{}, DropLength},
		{"only beyond pmtu", valid(OpRCSendOnly, 257), ParseOptions{PMTU: 256}, DropLength},
		{"ud beyond pmtu", valid(OpUDSendOnly, 1028), ParseOptions{}, DropLength},
		{"ack with payload", valid(OpRCAck, 4), ParseOptions{}, DropLength},
		{"ack with pad count", func() []byte {
			b := valid(OpRCAck, 0)
			BTH(b[BTHOffset:]).SetPadCnt(1)
			return fixup(b)
		}(), ParseOptions{}, DropLength},
		{"payload and pad not a multiple of 4", fixup(append(valid(OpRCSendOnly, 8), 0)), ParseOptions{}, DropLength},
		{"pad count larger than the body", func() []byte {
			b := valid(OpUDSendOnly, 0)
			BTH(b[BTHOffset:]).SetPadCnt(3)
			return fixup(b)
		}(), ParseOptions{}, DropLength},
	}
	seen := map[DropReason]bool{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := tt.opts.Parse(tt.b)
			assert.Nil(t, f)
			var pe *ParseError
			require.True(t, errors.As(err, &pe), "want a *ParseError, got %v", err)
			assert.Equal(t, tt.want, pe.Reason, "%v", err)
			assert.NotEmpty(t, pe.Detail)
			seen[pe.Reason] = true
		})
	}
	for r := DropTruncated; r <= DropLength; r++ {
		assert.True(t, seen[r], "no test produces %s", r)
	}
}

// TestParseCheckOrder: a frame with several faults reports the first in DropReason order.
func TestParseCheckOrder(t *testing.T) {
	b := testFrame(OpRCSendFirst, pattern(10)).Marshal() // Length fault
	b[len(b)-1] ^= 1                                     // ICRC fault
	b[BTHOffset] = 0x0A                                  // Opcode fault
	b[BTHOffset+2] = 0                                   // PKey fault
	b[BTHOffset+1] |= 2                                  // TVer fault
	b[UDPOffset+5]++                                     // UDPLength fault
	b[UDPOffset+3]++                                     // UDPPort fault
	b[IPv4Offset+9] = 1                                  // IPProtocol fault
	b = append(b, 0, 0, 0, 0)                            // IPLength fault
	b[IPv4Offset] = 0x44                                 // IPVersion fault
	b[12] = 0x86                                         // EtherType fault
	order := []struct {
		want DropReason
		fix  func()
	}{
		{DropEtherType, func() { b[12] = 0x08 }},
		{DropIPVersion, func() { b[IPv4Offset] = 0x45 }},
		{DropIPLength, func() { b = b[:len(b)-4] }},
		{DropIPProtocol, func() { b[IPv4Offset+9] = IPProtocolUDP }},
		{DropUDPPort, func() { b[UDPOffset+3]-- }},
		{DropUDPLength, func() { b[UDPOffset+5]-- }},
		{DropTVer, func() { b[BTHOffset+1] &^= 2 }},
		{DropPKey, func() { b[BTHOffset+2] = 0xFF }},
		{DropOpcode, func() { b[BTHOffset] = OpRCSendFirst }},
		{DropICRC, func() { b[len(b)-1] ^= 1 }},
		{DropLength, func() {}},
	}
	for _, o := range order {
		_, err := Parse(b)
		var pe *ParseError
		require.True(t, errors.As(err, &pe), "want %s, got %v", o.want, err)
		assert.Equal(t, o.want, pe.Reason, "%v", err)
		o.fix()
	}
}

func TestParseMinimumEthernetPadding(t *testing.T) {
	b := testFrame(OpRCSendOnly, nil).Marshal()
	require.Len(t, b, MinFrameLen)
	padded := append(append([]byte(nil), b...), 0xEE, 0xEE) // as a MAC pads to 60 bytes
	require.Len(t, padded, MinEthernetFrameLen)
	f, err := Parse(padded)
	require.NoError(t, err)
	assert.Equal(t, b, f.Marshal(), "the padding is not part of the frame")

	_, err = Parse(append(padded, 0xEE))
	var pe *ParseError
	require.True(t, errors.As(err, &pe))
	assert.Equal(t, DropIPLength, pe.Reason, "61 bytes is not minimum-frame padding")
}

func TestParseAcceptsVariantFields(t *testing.T) {
	// Fields the ICRC does not cover and the receiver does not check may change on the way.
	b := testFrame(OpRCSendOnly, pattern(33)).Marshal()
	b[IPv4Offset+1] = 0x03 // ECN congestion experienced
	b[IPv4Offset+8] = 17   // TTL after some hops
	binary.BigEndian.PutUint16(b[IPv4Offset+10:], IPv4Checksum(b[IPv4Offset:UDPOffset]))
	binary.BigEndian.PutUint16(b[UDPOffset+6:], 0xBEEF) // a UDP checksum
	b[BTHOffset+4] = 0x80                               // FECN
	f, err := Parse(b)
	require.NoError(t, err)
	assert.Equal(t, uint8(3), f.TOS)
	assert.Equal(t, uint8(17), f.TTL)
	assert.True(t, f.BTH.FECN)
}

func TestParseCopiesPayload(t *testing.T) {
	b := testFrame(OpRCSendOnly, pattern(40)).Marshal()
	f, err := Parse(b)
	require.NoError(t, err)
	for i := range b {
		b[i] = 0
	}
	assert.Equal(t, pattern(40), f.Payload)
}

func TestParseOptionsInvalidPMTU(t *testing.T) {
	b := testFrame(OpRCSendOnly, pattern(8)).Marshal()
	for _, pmtu := range []int{-1, 100, 1500, 8192} {
		_, err := ParseOptions{PMTU: pmtu}.Parse(b)
		require.Error(t, err, "pmtu %d", pmtu)
		var pe *ParseError
		assert.False(t, errors.As(err, &pe), "bad options are not a drop")
	}
	f, err := ParseOptions{PKey: 0x8001, PMTU: PMTU4096}.Parse(func() []byte {
		g := testFrame(OpRCSendOnly, pattern(4096))
		g.BTH.PKey = 0x8001
		return g.Marshal()
	}())
	require.NoError(t, err)
	assert.Equal(t, uint16(0x8001), f.BTH.PKey)
}

func TestDropReasonString(t *testing.T) {
	want := []string{"Truncated", "EtherType", "IPVersion", "IPLength", "IPProtocol", "UDPPort",
		"UDPLength", "TVer", "PKey", "Opcode", "ICRC", "Length"}
	for i, w := range want {
		assert.Equal(t, w, DropReason(i+1).String())
	}
	assert.Equal(t, "DropReason(0)", DropReason(0).String())
	assert.Equal(t, "DropReason(13)", DropReason(13).String())
	err := &ParseError{Reason: DropICRC, Detail: "x"}
	assert.Equal(t, "wire: drop ICRC: x", err.Error())
}

func TestIPv4Checksum(t *testing.T) {
	// 4500 003a 1234 4000 4011 [csum] 0a00 0001 0a00 0002: the words sum to 0xeb82, whose
	// complement is 0x147d.
	hdr := []byte{0x45, 0x00, 0x00, 0x3A, 0x12, 0x34, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00,
		10, 0, 0, 1, 10, 0, 0, 2}
	assert.Equal(t, uint16(0x147D), IPv4Checksum(hdr))
	hdr[10], hdr[11] = 0xAB, 0xCD
	assert.Equal(t, uint16(0x147D), IPv4Checksum(hdr), "the stored checksum is ignored")
}

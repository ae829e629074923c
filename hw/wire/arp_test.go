package wire

import (
	"encoding/binary"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// testStation is the receiver of testFrame's frames.
var testStation = &Station{MAC: [6]byte{0x02, 0x00, 0x5A, 0x4E, 0x00, 0x02}, IP: [4]byte{10, 0, 0, 2}}

// testARP returns a request from testFrame's sender for the test station's address.
func testARP() *ARP {
	return &ARP{DstMAC: BroadcastMAC, SrcMAC: [6]byte{0x02, 0x00, 0x5A, 0x4E, 0x00, 0x01}, Op: ARPOpRequest,
		SenderMAC: [6]byte{0x02, 0x00, 0x5A, 0x4E, 0x00, 0x01}, SenderIP: [4]byte{10, 0, 0, 1},
		TargetIP: testStation.IP}
}

func TestARPMarshalLayout(t *testing.T) {
	a := testARP()
	a.Op = ARPOpReply
	a.TargetMAC = [6]byte{1, 2, 3, 4, 5, 6}
	b := a.Marshal()
	require.Len(t, b, MinEthernetFrameLen)
	assert.Equal(t, BroadcastMAC[:], b[0:6])
	assert.Equal(t, []byte{0x08, 0x06, 0, 1, 0x08, 0x00, 6, 4, 0, 2}, b[12:22])
	assert.Equal(t, a.SenderMAC[:], b[22:28])
	assert.Equal(t, a.SenderIP[:], b[28:32])
	assert.Equal(t, a.TargetMAC[:], b[32:38])
	assert.Equal(t, a.TargetIP[:], b[38:42])
	assert.Equal(t, make([]byte, 18), b[42:], "zero padding")
	got, err := ParseOptions{Local: testStation}.ParseARP(b)
	require.NoError(t, err)
	assert.Equal(t, a, got)
}

// TestReceiveVerdicts: the receiver reference's verdict on ARP frames and on the address filter,
// each case one fault.
func TestReceiveVerdicts(t *testing.T) {
	local := ParseOptions{Local: testStation}
	roce := func(edit func(*Frame)) []byte {
		f := testFrame(OpRCSendOnly, pattern(8))
		if edit != nil {
			edit(f)
		}
		return f.Marshal()
	}
	arp := func(edit func(*ARP), raw func([]byte)) []byte {
		a := testARP()
		if edit != nil {
			edit(a)
		}
		b := a.Marshal()
		if raw != nil {
			raw(b)
		}
		return b
	}
	tests := []struct {
		name string
		b    []byte
		want DropReason // 0: taken
		arp  bool       // taken as ARP
	}{
		{"roce to us", roce(nil), 0, false},
		{"roce to another mac", roce(func(f *Frame) { f.DstMAC[5] = 9 }), DropDstMAC, false},
		{"roce to broadcast", roce(func(f *Frame) { f.DstMAC = BroadcastMAC }), DropDstMAC, false},
		{"roce to another ip", roce(func(f *Frame) { f.DstIP[3] = 9 }), DropDstIP, false},
		{"short frame to another mac", roce(func(f *Frame) { f.DstMAC[0] = 4 })[:20], DropDstMAC, false},
		{"short frame to us", roce(nil)[:20], DropTruncated, false},
		{"no ethernet header", roce(nil)[:13], DropTruncated, false},
		{"bad ip version before the address", func() []byte {
			b := roce(func(f *Frame) { f.DstIP[3] = 9 })
			b[IPv4Offset] = 0x46
			return b
		}(), DropIPVersion, false},
		{"address before the protocol", func() []byte {
			b := roce(func(f *Frame) { f.DstIP[3] = 9 })
			b[IPv4Offset+9] = 6
			return b
		}(), DropDstIP, false},
		{"arp request, broadcast", arp(nil, nil), 0, true},
		{"arp request, unicast to us", arp(func(a *ARP) { a.DstMAC = testStation.MAC }, nil), 0, true},
		{"arp reply to us", arp(func(a *ARP) { a.DstMAC, a.Op = testStation.MAC, ARPOpReply }, nil), 0, true},
		{"arp without padding", arp(nil, nil)[:ARPFrameLen], 0, true},
		{"arp with a long trailer", append(arp(nil, nil), make([]byte, 100)...), 0, true},
		{"arp to another mac", arp(func(a *ARP) { a.DstMAC[5] = 9 }, nil), DropDstMAC, false},
		{"arp for another ip", arp(func(a *ARP) { a.TargetIP[3] = 9 }, nil), DropARPTarget, false},
		{"arp reply for another ip", arp(func(a *ARP) { a.Op, a.TargetIP[3] = ARPOpReply, 9 }, nil), DropARPTarget, false},
		{"arp cut short", arp(nil, nil)[:ARPFrameLen-1], DropARPMalformed, false},
		{"arp htype 6", arp(nil, func(b []byte) { b[15] = 6 }), DropARPMalformed, false},
		{"arp ptype ipv6", arp(nil, func(b []byte) { b[16], b[17] = 0x86, 0xDD }), DropARPMalformed, false},
		{"arp hlen 8", arp(nil, func(b []byte) { b[18] = 8 }), DropARPMalformed, false},
		{"arp plen 16", arp(nil, func(b []byte) { b[19] = 16 }), DropARPMalformed, false},
		{"rarp opcode 3", arp(func(a *ARP) { a.Op = 3 }, nil), DropARPMalformed, false},
		{"arp opcode 0", arp(func(a *ARP) { a.Op = 0 }, nil), DropARPMalformed, false},
		{"arp from a group mac", arp(func(a *ARP) { a.SenderMAC[0] = 1 }, nil), DropARPMalformed, false},
		{"malformed before the target", arp(func(a *ARP) { a.Op, a.TargetIP[3] = 7, 9 }, nil), DropARPMalformed, false},
		{"empty", nil, DropTruncated, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, a, err := local.Receive(tt.b)
			if tt.want == 0 {
				require.NoError(t, err)
				assert.Equal(t, tt.arp, a != nil)
				assert.Equal(t, !tt.arp, f != nil)
				return
			}
			assert.Nil(t, f)
			assert.Nil(t, a)
			var pe *ParseError
			require.True(t, errors.As(err, &pe), "want a *ParseError, got %v", err)
			assert.Equal(t, tt.want, pe.Reason, "%v", err)
			// Parse agrees on every drop.
			_, perr := local.Parse(tt.b)
			require.True(t, errors.As(perr, &pe))
			assert.Equal(t, tt.want, pe.Reason)
		})
	}
	// Without Local nothing is filtered and ARP is not RoCEv2.
	_, _, err := ParseOptions{}.Receive(roce(func(f *Frame) { f.DstMAC[5], f.DstIP[3] = 9, 9 }))
	assert.NoError(t, err)
	var pe *ParseError
	_, _, err = ParseOptions{}.Receive(arp(nil, nil))
	require.True(t, errors.As(err, &pe))
	assert.Equal(t, DropEtherType, pe.Reason)
	// A good ARP frame is not RoCEv2 to Parse.
	_, err = local.Parse(arp(nil, nil))
	require.True(t, errors.As(err, &pe))
	assert.Equal(t, DropEtherType, pe.Reason)
	_, err = ParseOptions{}.ParseARP(arp(nil, nil))
	assert.False(t, errors.As(err, &pe), "ParseARP without Local is a usage error")
}

// FuzzReceive checks that Receive never panics, that every failure is a *ParseError with a
// named reason, that exactly one of frame and ARP comes with success, and that an accepted ARP
// frame marshals back to one judged the same.
func FuzzReceive(f *testing.F) {
	f.Add(testFrame(OpRCSendOnly, pattern(8)).Marshal())
	f.Add(testARP().Marshal())
	f.Add(testARP().Marshal()[:ARPFrameLen-1])
	f.Add([]byte{})
	local := ParseOptions{Local: testStation}
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, a, err := local.Receive(b)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) || int(pe.Reason) >= len(dropNames) || dropNames[pe.Reason] == "" {
				t.Fatalf("error %v (%T) is not a *ParseError with a known reason", err, err)
			}
			if fr != nil || a != nil {
				t.Fatal("a result returned with an error")
			}
			return
		}
		if (fr == nil) == (a == nil) {
			t.Fatal("want exactly one of frame and ARP")
		}
		if a != nil {
			if binary.BigEndian.Uint16(b[12:]) != EtherTypeARP {
				t.Fatal("ARP from a frame that is not ARP")
			}
			a2, err := local.ParseARP(a.Marshal())
			if err != nil || *a2 != *a {
				t.Fatalf("re-marshalled ARP judged differently: %v", err)
			}
		}
	})
}

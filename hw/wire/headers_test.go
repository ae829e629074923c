package wire

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestBTHLayout(t *testing.T) {
	tests := []struct {
		name string
		f    BTHFields
		want []byte
	}{
		{
			name: "all flags",
			f: BTHFields{OpCode: OpRCSendLast, SE: true, MigReq: true, PadCnt: 3, TVer: 0, PKey: 0xFFFF,
				FECN: true, BECN: true, DestQP: 0xABCDEF, AckReq: true, PSN: 0x123456},
			want: []byte{0x02, 0xF0, 0xFF, 0xFF, 0xC0, 0xAB, 0xCD, 0xEF, 0x80, 0x12, 0x34, 0x56},
		},
		{
			name: "no flags",
			f:    BTHFields{OpCode: OpUDSendOnly, PadCnt: 1, TVer: 5, PKey: 0x8001, DestQP: 1, PSN: 0xFFFFFF},
			want: []byte{0x64, 0x15, 0x80, 0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0xFF, 0xFF, 0xFF},
		},
		{
			name: "fields wider than their bits are cut",
			f:    BTHFields{OpCode: OpRCAck, PadCnt: 6, TVer: 0x12, DestQP: 0x1000002, PSN: 0x2000003},
			want: []byte{0x11, 0x22, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x03},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := make(BTH, BTHLen)
			for i := range b {
				b[i] = 0x5A // Encode must overwrite every byte, reserved bits included
			}
			b.Encode(&tt.f)
			assert.Equal(t, tt.want, []byte(b))
			got := b.Fields()
			want := tt.f
			want.PadCnt &= 3
			want.TVer &= 0x0F
			want.DestQP &= QPMask
			want.PSN &= PSNMask
			assert.Equal(t, want, got)
		})
	}
}

func TestBTHSetters(t *testing.T) {
	b := BTH([]byte{0x04, 0xC5, 0xFF, 0xFF, 0, 0, 0, 1, 0x80, 0, 0, 0})
	b.SetPadCnt(2)
	assert.Equal(t, byte(0xE5), b[1], "SE, M and TVer kept")
	assert.Equal(t, uint8(2), b.PadCnt())
	b.SetPSN(0x1ABCDEF)
	assert.Equal(t, uint32(0xABCDEF), b.PSN())
	assert.True(t, b.AckReq(), "byte 8 untouched")
	assert.True(t, b.SE())
	assert.True(t, b.MigReq())
	assert.Equal(t, uint8(5), b.TVer())
}

func TestAETHAndDETHLayout(t *testing.T) {
	a := make(AETH, AETHLen)
	a.Encode(&AETHFields{Syndrome: SyndromeNAKRemoteAccess, MSN: 0x1020304})
	assert.Equal(t, []byte{0x62, 0x02, 0x03, 0x04}, []byte(a))
	assert.Equal(t, AETHFields{Syndrome: 0x62, MSN: 0x020304}, a.Fields())

	d := DETH([]byte{9, 9, 9, 9, 9, 9, 9, 9})
	d.Encode(&DETHFields{QKey: GSIQKey, SrcQP: 0x10000AB})
	assert.Equal(t, []byte{0x80, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0xAB}, []byte(d))
	assert.Equal(t, DETHFields{QKey: GSIQKey, SrcQP: 0xAB}, d.Fields())
}

func TestSyndromes(t *testing.T) {
	tests := []struct {
		syn      uint8
		wantType uint8
		wantVal  uint8
	}{
		{SyndromeACK, SyndromeTypeACK, 0x1F},
		{SyndromeNAKPSNSeqError, SyndromeTypeNAK, 0},
		{SyndromeNAKInvalidRequest, SyndromeTypeNAK, 1},
		{SyndromeNAKRemoteAccess, SyndromeTypeNAK, 2},
		{SyndromeNAKRemoteOperation, SyndromeTypeNAK, 3},
		{RNRNAKSyndrome(0), SyndromeTypeRNRNAK, 0},
		{RNRNAKSyndrome(14), SyndromeTypeRNRNAK, 14},
		{RNRNAKSyndrome(0xFF), SyndromeTypeRNRNAK, 0x1F},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.wantType, tt.syn&SyndromeTypeMask, "syndrome 0x%02x", tt.syn)
		assert.Equal(t, tt.wantVal, tt.syn&SyndromeValMask, "syndrome 0x%02x", tt.syn)
	}
	assert.Equal(t, uint8(0x2E), RNRNAKSyndrome(14))
}

func TestOpcodes(t *testing.T) {
	tests := []struct {
		op        uint8
		name      string
		supported bool
		ext       int
	}{
		{OpRCSendFirst, "RC_SEND_FIRST", true, 0},
		{OpRCSendMiddle, "RC_SEND_MIDDLE", true, 0},
		{OpRCSendLast, "RC_SEND_LAST", true, 0},
		{OpRCSendOnly, "RC_SEND_ONLY", true, 0},
		{OpRCAck, "RC_ACKNOWLEDGE", true, AETHLen},
		{OpUDSendOnly, "UD_SEND_ONLY", true, DETHLen},
		{0x03, "opcode 0x03", false, 0},
		{0x0A, "opcode 0x0a", false, 0},
		{0x81, "opcode 0x81", false, 0},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.name, OpcodeName(tt.op))
		assert.Equal(t, tt.supported, Supported(tt.op), tt.name)
		assert.Equal(t, tt.ext, ExtLen(tt.op), tt.name)
	}
	n := 0
	for op := range 256 {
		if Supported(uint8(op)) {
			n++
		}
	}
	assert.Equal(t, 6, n, "exactly six supported opcodes")
}

func TestOffsets(t *testing.T) {
	assert.Equal(t, 14, IPv4Offset)
	assert.Equal(t, 34, UDPOffset)
	assert.Equal(t, 42, BTHOffset)
	assert.Equal(t, 54, ExtOffset)
	assert.Equal(t, 58, MinFrameLen)
}

package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPcapGlobalHeader(t *testing.T) {
	var buf bytes.Buffer
	_, err := NewPcapWriter(&buf)
	require.NoError(t, err)
	assert.Equal(t, []byte{
		0xd4, 0xc3, 0xb2, 0xa1, // magic, little-endian
		2, 0, 4, 0, // version 2.4
		0, 0, 0, 0, 0, 0, 0, 0, // time zone, accuracy
		0xff, 0xff, 0, 0, // snaplen 65535
		1, 0, 0, 0, // Ethernet
	}, buf.Bytes())
}

func TestPcapRoundTrip(t *testing.T) {
	frames := []struct {
		ts    time.Duration
		frame []byte
	}{
		{0, testFrame(OpRCSendOnly, pattern(13)).Marshal()},
		{6400 * time.Nanosecond, testFrame(OpRCAck, nil).Marshal()},
		{time.Second + 2*time.Microsecond, testFrame(OpUDSendOnly, pattern(256)).Marshal()},
		{90 * time.Minute, testFrame(OpRCSendFirst, pattern(1024)).Marshal()},
	}
	write := func() []byte {
		var buf bytes.Buffer
		w, err := NewPcapWriter(&buf)
		require.NoError(t, err)
		for _, f := range frames {
			require.NoError(t, w.WritePacket(f.ts, f.frame))
		}
		return buf.Bytes()
	}
	file := write()
	assert.Equal(t, file, write(), "output is deterministic")

	recs, err := ReadPcap(bytes.NewReader(file))
	require.NoError(t, err)
	require.Len(t, recs, len(frames))
	for i, f := range frames {
		assert.Equal(t, f.ts.Truncate(time.Microsecond), recs[i].Timestamp, "record %d", i)
		assert.Equal(t, len(f.frame), recs[i].OrigLen, "record %d", i)
		assert.Equal(t, f.frame, recs[i].Data, "record %d", i)
		_, err := Parse(recs[i].Data)
		assert.NoError(t, err, "record %d", i)
	}
	// Record 2 header: 1 s, 2 us.
	off := 24 + 16 + len(frames[0].frame) + 16 + len(frames[1].frame)
	assert.Equal(t, uint32(1), binary.LittleEndian.Uint32(file[off:]))
	assert.Equal(t, uint32(2), binary.LittleEndian.Uint32(file[off+4:]))
}

func TestPcapSnapLenAndErrors(t *testing.T) {
	var buf bytes.Buffer
	w, err := NewPcapWriter(&buf)
	require.NoError(t, err)
	assert.Error(t, w.WritePacket(-time.Nanosecond, []byte{1}))
	big := pattern(PcapSnapLen + 10)
	require.NoError(t, w.WritePacket(0, big))
	recs, err := ReadPcap(bytes.NewReader(buf.Bytes()))
	require.NoError(t, err)
	require.Len(t, recs, 1)
	assert.Equal(t, len(big), recs[0].OrigLen)
	assert.Equal(t, big[:PcapSnapLen], recs[0].Data)

	_, err = NewPcapWriter(failWriter{})
	assert.Error(t, err)
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

// TestReadPcapVariants reads files in the other byte order and with nanosecond timestamps, as
// other tools write them.
func TestReadPcapVariants(t *testing.T) {
	mk := func(order binary.AppendByteOrder, magic uint32, frac uint32, data []byte) []byte {
		var b []byte
		b = order.AppendUint32(b, magic)
		b = order.AppendUint16(b, 2)
		b = order.AppendUint16(b, 4)
		b = append(b, make([]byte, 8)...)
		b = order.AppendUint32(b, 262144)
		b = order.AppendUint32(b, PcapLinkEthernet)
		b = order.AppendUint32(b, 3)
		b = order.AppendUint32(b, frac)
		b = order.AppendUint32(b, uint32(len(data)))
		b = order.AppendUint32(b, uint32(len(data)))
		return append(b, data...)
	}
	data := []byte{1, 2, 3, 4, 5}
	tests := []struct {
		name string
		file []byte
		ts   time.Duration
	}{
		{"big-endian micro", mk(binary.BigEndian, PcapMagic, 7, data), 3*time.Second + 7*time.Microsecond},
		{"little-endian nano", mk(binary.LittleEndian, PcapMagicNano, 7, data), 3*time.Second + 7},
		{"big-endian nano", mk(binary.BigEndian, PcapMagicNano, 999, data), 3*time.Second + 999},
	}
	for _, tt := range tests {
		recs, err := ReadPcap(bytes.NewReader(tt.file))
		require.NoError(t, err, tt.name)
		require.Len(t, recs, 1, tt.name)
		assert.Equal(t, tt.ts, recs[0].Timestamp, tt.name)
		assert.Equal(t, data, recs[0].Data, tt.name)
	}
}

func TestReadPcapBadFiles(t *testing.T) {
	var good bytes.Buffer
	w, err := NewPcapWriter(&good)
	require.NoError(t, err)
	require.NoError(t, w.WritePacket(0, pattern(60)))
	file := good.Bytes()

	linkRaw := append([]byte(nil), file...)
	linkRaw[20] = 101
	huge := append([]byte(nil), file...)
	binary.LittleEndian.PutUint32(huge[24+8:], 1<<30)
	tests := []struct {
		name string
		file []byte
	}{
		{"empty", nil},
		{"short header", file[:20]},
		{"bad magic", append([]byte{0, 0, 0, 0}, file[4:]...)},
		{"not ethernet", linkRaw},
		{"cut record header", file[:24+10]},
		{"cut record data", file[:len(file)-1]},
		{"huge record", huge},
	}
	for _, tt := range tests {
		_, err := ReadPcap(bytes.NewReader(tt.file))
		assert.Error(t, err, tt.name)
	}
}

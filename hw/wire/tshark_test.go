package wire

import (
	"bytes"
	"math/bits"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// cmREQMAD returns a 256-byte management datagram as sent to QP1 to open a connection: the
// common MAD header of a Communication Management Send of a ConnectRequest, then zero data.
func cmREQMAD() []byte {
	m := make([]byte, 256)
	m[0] = 1                                            // base version
	m[1] = 0x07                                         // management class: Communication Management
	m[2] = 2                                            // class version
	m[3] = 0x03                                         // method: Send
	copy(m[8:16], []byte{0, 0, 0, 0, 0x5A, 0x4E, 0, 1}) // transaction ID
	m[16], m[17] = 0x00, 0x10                           // attribute: ConnectRequest
	return m
}

// tsharkFrames returns the frames the tshark test decodes: SEND_ONLY with 3 bytes of pad, ACK,
// NAK (PSN sequence error), RNR NAK, and UD SEND_ONLY to QP1 carrying a MAD.
func tsharkFrames() []*Frame {
	only := testFrame(OpRCSendOnly, pattern(13))
	ack := testFrame(OpRCAck, nil)
	nak := testFrame(OpRCAck, nil)
	nak.AETH = &AETHFields{Syndrome: SyndromeNAKPSNSeqError, MSN: 4}
	rnr := testFrame(OpRCAck, nil)
	rnr.AETH = &AETHFields{Syndrome: RNRNAKSyndrome(14), MSN: 5}
	ud := testFrame(OpUDSendOnly, cmREQMAD())
	return []*Frame{only, ack, nak, rnr, ud}
}

// tshark runs tshark with args and returns its standard output.
func tshark(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command("tshark", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "tshark %s: %s", strings.Join(args, " "), stderr.String())
	return string(out)
}

func writePcap(t *testing.T, name string, frames [][]byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	f, err := os.Create(path)
	require.NoError(t, err)
	w, err := NewPcapWriter(f)
	require.NoError(t, err)
	for i, b := range frames {
		require.NoError(t, w.WritePacket(time.Duration(i)*time.Microsecond, b))
	}
	require.NoError(t, f.Close())
	return path
}

func TestTshark(t *testing.T) {
	if _, err := exec.LookPath("tshark"); err != nil {
		t.Skip("tshark not on PATH; install it (make deps) to check that Wireshark decodes our frames")
	}
	frames := tsharkFrames()
	var raw [][]byte
	for _, f := range frames {
		raw = append(raw, f.Marshal())
	}
	path := writePcap(t, "roce.pcap", raw)
	fields := []string{
		"frame.protocols", "infiniband.bth.opcode", "infiniband.bth.padcnt", "infiniband.bth.p_key",
		"infiniband.bth.destqp", "infiniband.bth.psn", "infiniband.aeth.syndrome",
		"infiniband.aeth.syndrome.opcode", "infiniband.aeth.msn", "infiniband.deth.q_key", "infiniband.deth.srcqp",
		"infiniband.invariant.crc", "infiniband.mad.mgmtclass",
	}
	args := []string{"-r", path, "-T", "fields", "-E", "separator=/t", "-E", "occurrence=f"}
	for _, f := range fields {
		args = append(args, "-e", f)
	}
	out := tshark(t, args...)
	t.Logf("tshark fields:\n%s", out)
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	require.Len(t, lines, len(frames))
	for i, f := range frames {
		cols := strings.Split(lines[i], "\t")
		require.Len(t, cols, len(fields), "frame %d", i+1)
		got := map[string]string{}
		for j, name := range fields {
			got[name] = cols[j]
		}
		num := func(name string) uint64 {
			v, err := strconv.ParseUint(got[name], 0, 64)
			require.NoError(t, err, "frame %d field %s = %q", i+1, name, got[name])
			return v
		}
		assert.Contains(t, got["frame.protocols"], ":udp:infiniband", "frame %d", i+1)
		assert.Equal(t, uint64(f.BTH.OpCode), num("infiniband.bth.opcode"), "frame %d", i+1)
		assert.Equal(t, uint64(PadLen(len(f.Payload))), num("infiniband.bth.padcnt"), "frame %d", i+1)
		assert.Equal(t, uint64(f.BTH.PKey), num("infiniband.bth.p_key"), "frame %d", i+1)
		assert.Equal(t, uint64(f.BTH.DestQP), num("infiniband.bth.destqp"), "frame %d", i+1)
		assert.Equal(t, uint64(f.BTH.PSN), num("infiniband.bth.psn"), "frame %d", i+1)
		// Wireshark shows the ICRC field as a big-endian number; it does not check it.
		assert.Equal(t, uint64(bits.ReverseBytes32(ICRC(raw[i]))), num("infiniband.invariant.crc"),
			"frame %d: tshark finds the ICRC where we put it", i+1)
		if f.AETH != nil {
			assert.Equal(t, uint64(f.AETH.Syndrome), num("infiniband.aeth.syndrome"), "frame %d", i+1)
			assert.Equal(t, uint64(f.AETH.Syndrome>>5), num("infiniband.aeth.syndrome.opcode"),
				"frame %d: ACK, RNR NAK or NAK", i+1)
			assert.Equal(t, uint64(f.AETH.MSN), num("infiniband.aeth.msn"), "frame %d", i+1)
		} else {
			assert.Empty(t, got["infiniband.aeth.syndrome"], "frame %d", i+1)
		}
		if f.DETH != nil {
			assert.Equal(t, uint64(f.DETH.QKey), num("infiniband.deth.q_key"), "frame %d", i+1)
			assert.Equal(t, uint64(f.DETH.SrcQP), num("infiniband.deth.srcqp"), "frame %d", i+1)
			assert.Equal(t, uint64(0x07), num("infiniband.mad.mgmtclass"), "frame %d: MAD decoded", i+1)
		}
	}

	// The one-line summaries name the NAK and the RNR NAK.
	summary := tshark(t, "-r", path)
	t.Logf("tshark summary:\n%s", summary)
	assert.Contains(t, summary, "PSN Sequence Error")

	// Expert info: nothing malformed, no errors or warnings.
	expert := tshark(t, "-r", path, "-q", "-z", "expert")
	assert.NotRegexp(t, `(?i)error|warn|malformed`, expert)

	// The same check finds a malformed frame: an ACK cut inside its AETH.
	bad := raw[1][:len(raw[1])-ICRCLen-2]
	expert = tshark(t, "-r", writePcap(t, "bad.pcap", [][]byte{bad}), "-q", "-z", "expert")
	assert.Regexp(t, `(?i)error|malformed`, expert, "the expert check must be able to fail")
}

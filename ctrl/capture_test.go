package ctrl

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sanoffload/san/hw/wire"
)

// writeFrames writes frames as a pcap file in a test's temporary directory.
func writeFrames(t *testing.T, frames ...[]byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "x.pcap")
	f, err := os.Create(path)
	require.NoError(t, err)
	w, err := wire.NewPcapWriter(f)
	require.NoError(t, err)
	for i, b := range frames {
		require.NoError(t, w.WritePacket(time.Duration(i)*time.Microsecond, b))
	}
	require.NoError(t, f.Close())
	return path
}

// TestCaptureCheckARP: tshark's decode of ARP frames is checked against the frame: a request and
// the reply answering it pass and satisfy "arp"; a request alone does not; an ARP frame the NIC
// would not take (a RARP opcode) fails the check.
func TestCaptureCheckARP(t *testing.T) {
	a := [6]byte{0x02, 0, 0, 0, 0, 1}
	b := [6]byte{0x02, 0, 0, 0, 0, 2}
	ipA, ipB := [4]byte{10, 0, 0, 1}, [4]byte{10, 0, 0, 2}
	req := (&wire.ARP{DstMAC: wire.BroadcastMAC, SrcMAC: a, Op: wire.ARPOpRequest, SenderMAC: a, SenderIP: ipA, TargetIP: ipB}).Marshal()
	rep := (&wire.ARP{DstMAC: a, SrcMAC: b, Op: wire.ARPOpReply, SenderMAC: b, SenderIP: ipB, TargetMAC: a, TargetIP: ipA}).Marshal()
	other := (&wire.ARP{DstMAC: a, SrcMAC: b, Op: wire.ARPOpReply, SenderMAC: b, SenderIP: [4]byte{10, 0, 0, 9}, TargetMAC: a, TargetIP: ipA}).Marshal()

	r, err := CheckCapture(writeFrames(t, req, rep))
	require.NoError(t, err, "%+v", r)
	assert.Equal(t, 1, r.ARPRequests)
	assert.Equal(t, 1, r.ARPReplies)
	assert.Equal(t, 1, r.ARPAnswered)
	assert.NoError(t, r.Expect([]string{"arp"}))

	r, err = CheckCapture(writeFrames(t, req, other))
	require.NoError(t, err)
	assert.Zero(t, r.ARPAnswered, "a reply from another address answers nothing")
	assert.ErrorIs(t, r.Expect([]string{"arp"}), ErrCapture)

	rarp := append([]byte(nil), req...)
	rarp[21] = 3
	_, err = CheckCapture(writeFrames(t, rarp))
	assert.ErrorIs(t, err, ErrCapture)
}

package ctrl

import (
	"net"
	"net/netip"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestSimCM: the scripted run covers the ARP exchange that resolves the listener, REJ 8, REJ 28,
// MRA, REQ/REP/RTU with data, data both ways and DREQ/DREP, and tshark decodes its capture as
// clean RoCEv2 and ARP with every CM message, the QPNs and PSNs the data frames then use, and an
// ARP request answered.
func TestSimCM(t *testing.T) {
	pcap := filepath.Join(t.TempDir(), "cm.pcap")
	rep, err := SimCM(SimConfig{}, ARPConfig{}, pcap)
	require.NoError(t, err)
	require.Equal(t, 1, rep.Connections)
	require.Equal(t, 2, rep.Rejected)
	crep, err := CheckCapture(pcap)
	require.NoError(t, err, "%+v", crep)
	require.NoError(t, crep.Expect([]string{"cm", "arp"}))
	require.Equal(t, 1, crep.ARPRequests, "resolved once, then cached")
	require.Equal(t, 1, crep.ARPReplies)
	t.Logf("%+v", crep)
}

// TestCMBenchFigures: the connection figures are measured, not assumed.
func TestCMBenchFigures(t *testing.T) {
	setup, contexts, err := cmSetup(SimConfig{})
	require.NoError(t, err)
	require.Greater(t, setup, uint64(100))
	require.Equal(t, 256, contexts)
	rate, err := cmRate(SimConfig{}, 20)
	require.NoError(t, err)
	require.Greater(t, rate, 1000.0)
}

// TestSimCMStaticNeighbour: with a static entry for the listener, the caller resolves it
// without ARP: the capture holds every CM message and no ARP frame.
func TestSimCMStaticNeighbour(t *testing.T) {
	pcap := filepath.Join(t.TempDir(), "cm.pcap")
	static := map[netip.Addr]net.HardwareAddr{netip.MustParseAddr("192.168.77.2"): {0x02, 0x53, 0x41, 0x4E, 0, 2}}
	_, err := SimCM(SimConfig{}, ARPConfig{Static: static}, pcap)
	require.NoError(t, err)
	crep, err := CheckCapture(pcap)
	require.NoError(t, err, "%+v", crep)
	require.NoError(t, crep.Expect([]string{"cm"}))
	require.Zero(t, crep.ARPRequests+crep.ARPReplies, "no ARP on the wire")
	require.ErrorIs(t, crep.Expect([]string{"arp"}), ErrCapture)
}

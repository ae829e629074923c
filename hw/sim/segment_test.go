package sim

import (
	"net"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	nicdrv "github.com/sanoffload/san/driver/nic"
	"github.com/sanoffload/san/driver/regs"
	"github.com/sanoffload/san/hw/wire"
)

// segmentHosts opens n addressed, enabled NICs on one fabric, capturing what they send and
// receive; NIC i has MAC 02:00:00:00:00:0i+1 and IP 10.0.0.i+1.
func segmentHosts(t *testing.T, n int) (*Fabric, []*NIC, []*nicdrv.NIC) {
	t.Helper()
	fab, err := NewFabric("")
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, fab.Close()) })
	devs := make([]*NIC, n)
	drvs := make([]*nicdrv.NIC, n)
	for i := range devs {
		dev, err := fab.Open(Config{HostMemory: 4 << 20})
		require.NoError(t, err)
		d, err := nicdrv.Open(dev)
		require.NoError(t, err)
		require.NoError(t, d.SetAddress(net.HardwareAddr{0x02, 0, 0, 0, 0, byte(i + 1)},
			netip.AddrFrom4([4]byte{10, 0, 0, byte(i + 1)})))
		require.NoError(t, d.Enable(true))
		devs[i], drvs[i] = dev, d
	}
	return fab, devs, drvs
}

// TestFabricSegment: on a segment of three NICs with a latency of 40 cycles, an ARP request A
// broadcasts reaches B and C whole, 41 cycles after its last beat (store-and-forward); B's
// answer, unicast to A, reaches A (its reply FIFO shows B) and C, whose receiver drops it as
// not its MAC, as it drops the request as not for its address; frames two members send at once
// reach the third one after the other, each whole.
func TestFabricSegment(t *testing.T) {
	const latency = 40
	fab, devs, drvs := segmentHosts(t, 3)
	require.NoError(t, fab.Segment(latency, devs...))
	for _, d := range devs {
		require.NoError(t, d.Capture(true))
		require.NoError(t, d.CaptureReceived(true))
	}
	a, b, c := devs[0], devs[1], devs[2]
	require.NoError(t, a.Write32(0, regs.ARPRequest, 0x0A000002)) // who has 10.0.0.2?
	require.NoError(t, fab.Step(2000))
	txA, err := a.Transmitted()
	require.NoError(t, err)
	require.Len(t, txA, 1, "A sent its request")
	txB, err := b.Transmitted()
	require.NoError(t, err)
	require.Len(t, txB, 1, "B answered")
	txC, err := c.Transmitted()
	require.NoError(t, err)
	assert.Empty(t, txC, "C did not answer for B's address")
	for i, d := range []*NIC{b, c} {
		rx, err := d.Received()
		require.NoError(t, err)
		require.Len(t, rx, 1+i, "B: the request; C: the request and B's answer")
		assert.Equal(t, txA[0].Bytes, rx[0].Bytes, "member %d got A's frame whole", i+1)
		assert.Equal(t, txA[0].Last+1+latency, rx[0].First, "member %d: store-and-forward latency", i+1)
	}
	rxA, err := a.Received()
	require.NoError(t, err)
	require.Len(t, rxA, 1, "A got B's answer, and not its own request")
	assert.Equal(t, txB[0].Bytes, rxA[0].Bytes)
	ans, err := wire.ParseOptions{Local: &wire.Station{MAC: [6]byte{2, 0, 0, 0, 0, 1}, IP: [4]byte{10, 0, 0, 1}}}.ParseARP(rxA[0].Bytes)
	require.NoError(t, err)
	assert.Equal(t, [6]byte{2, 0, 0, 0, 0, 2}, ans.SenderMAC)
	st, err := a.Read32(0, regs.ARPReplyStatus)
	require.NoError(t, err)
	assert.Equal(t, uint32(1|1<<regs.ARPReplyStatusCountShift), st, "A queued the reply")
	ip, err := a.Read32(0, regs.ARPReplyIP)
	require.NoError(t, err)
	assert.Equal(t, uint32(0x0A000002), ip)
	cc, err := drvs[2].Counters()
	require.NoError(t, err)
	assert.Equal(t, map[regs.RxDrop]uint32{regs.RxDropARPTarget: 1, regs.RxDropDstMAC: 1}, cc.Drops,
		"C dropped the request (not its address) and the answer (not its MAC)")

	// A and B ask at once: C receives both, one after the other.
	require.NoError(t, a.Write32(0, regs.ARPRequest, 0x0A000009))
	require.NoError(t, b.Write32(0, regs.ARPRequest, 0x0A000008))
	require.NoError(t, fab.Step(2000))
	txA, err = a.Transmitted()
	require.NoError(t, err)
	txB, err = b.Transmitted()
	require.NoError(t, err)
	require.Len(t, txA, 1)
	require.Len(t, txB, 1)
	rxC, err := c.Received()
	require.NoError(t, err)
	require.Len(t, rxC, 2, "C: both new requests")
	assert.ElementsMatch(t, [][]byte{txA[0].Bytes, txB[0].Bytes}, [][]byte{rxC[0].Bytes, rxC[1].Bytes})
	assert.Less(t, rxC[0].Last, rxC[1].First, "one after the other")
}

// TestFabricSegmentRefuses: a segment needs two NICs of the fabric, none linked or on a segment;
// a segment member cannot be linked.
func TestFabricSegmentRefuses(t *testing.T) {
	fab, devs, _ := segmentHosts(t, 4)
	assert.Error(t, fab.Segment(0, devs[0]), "one NIC")
	assert.Error(t, fab.Segment(0, devs[0], devs[0]), "a NIC twice")
	require.NoError(t, fab.Link(devs[2], devs[3], 0))
	assert.Error(t, fab.Segment(0, devs[0], devs[2]), "a linked NIC")
	require.NoError(t, fab.Segment(0, devs[0], devs[1]))
	assert.Error(t, fab.Segment(0, devs[0], devs[3]), "on a segment already")
	assert.Error(t, fab.Link(devs[0], devs[1], 0), "a segment member")
	other, err := NewFabric("")
	require.NoError(t, err)
	defer other.Close()
	o, err := other.Open(Config{HostMemory: 1 << 20})
	require.NoError(t, err)
	assert.Error(t, fab.Segment(0, devs[3], o), "a NIC of another fabric")
}

package sim

import (
	"fmt"
	"math/rand"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sanoffload/san/hw/sim/dut"
)

// san_dma_mux's defaults.
const (
	muxTagWidth = 8
	muxBytes    = 8 // DATA_WIDTH 64
)

// muxXfer is one read or write of a client: its request and its bytes.
type muxXfer struct {
	client int
	addr   uint64
	data   []byte
	err    bool // reads: the host flags the data (tuser)
	tag    uint64
	ready  uint64 // reads: cycle from which the host may return the data
}

// muxBeats splits a transfer into beats from lane 0.
func muxBeats(data []byte) [][]byte {
	var out [][]byte
	for off := 0; off < len(data); off += muxBytes {
		out = append(out, data[off:min(off+muxBytes, len(data))])
	}
	return out
}

func keepOf(n int) uint64 { return 1<<n - 1 }

func padBeat(b []byte) []byte {
	return append(append([]byte(nil), b...), make([]byte, muxBytes-len(b))...)
}

// muxClients is the number of read clients and of write clients (sq, rq, cm and rq payload, cq
// writer, cm).
const muxClients = 3

// muxBench drives san_dma_mux: three read clients and three write clients with random requests,
// gaps and stalls, and a host that returns read data in request order after a random latency.
type muxBench struct {
	t          *testing.T
	d          *dut.DUT
	rng        *rand.Rand
	gap, stall int // percent of cycles a valid / a ready is withheld
	maxLat     int

	// read clients
	rdQ      [muxClients][]*muxXfer // requests to make
	rdOn     [muxClients]bool
	rdExp    [muxClients][]*muxXfer // requests made, data not yet received
	rdCur    [muxClients][]byte
	rdDone   [muxClients]int
	rdSeq    [muxClients]uint64
	rdGrants []*muxXfer // granted, not yet seen at the host
	rdLast   int        // client of the last grant; -1 none
	rdFair   int        // grants made while another client was waiting too
	// host reads
	hostRd   []*muxXfer // taken by the host, data not yet returned
	hostBeat int
	hostOn   bool

	// write clients
	wrQ      [muxClients][]*muxXfer // requests to make
	wrOn     [muxClients]bool
	wrData   [muxClients][][]byte // data beats still to send, all writes in order
	wrLastB  [muxClients][]bool
	wrDataOn [muxClients]bool
	wrAll    [muxClients][]*muxXfer // every write, in the client's order
	wrGrants []*muxXfer
	wrLast   int
	wrFair   int
	// host writes
	hostWr    []*muxXfer // completed at the host, in order
	hostOpen  *muxXfer
	hostCur   []byte
	wrCount   uint64
	firstBeat []uint64
	lastBeat  []uint64

	errExp   map[uint64]bool
	errCount int

	hRdReq, hWrReq, hWrData holdCheck
	hRd                     [muxClients]holdCheck
}

func newMuxBench(t *testing.T, rng *rand.Rand) *muxBench {
	return &muxBench{t: t, d: dut.New(t, "san_dma_mux"), rng: rng, maxLat: 40, rdLast: -1, wrLast: -1,
		errExp: map[uint64]bool{},
		hRdReq: holdCheck{name: "dma_rd_req"}, hWrReq: holdCheck{name: "dma_wr_req"},
		hWrData: holdCheck{name: "axis_dma_wr"},
		hRd:     [muxClients]holdCheck{{name: "axis_rd0"}, {name: "axis_rd1"}, {name: "axis_rd2"}}}
}

// muxClientOf is the client whose transfer addr is (the top two address bits name it).
func muxClientOf(addr uint64) int { return int(addr >> 62) }

// othersWaiting reports whether a client other than c waits.
func othersWaiting(waiting [muxClients]bool, c int) bool {
	for i, w := range waiting {
		if w && i != c {
			return true
		}
	}
	return false
}

// rrNext is the client a round-robin arbiter grants after last (-1: none yet) among those
// waiting, or -1 if none waits.
func rrNext(last int, waiting [muxClients]bool) int {
	for k := 1; k <= muxClients; k++ {
		if c := (last + k) % muxClients; waiting[c] {
			return c
		}
	}
	return -1
}

func randXfer(rng *rand.Rand, client int) *muxXfer {
	n := 1 + rng.Intn(200)
	switch rng.Intn(10) {
	case 0:
		n = 1 + rng.Intn(8)
	case 1:
		n = 1 + rng.Intn(2000)
	}
	x := &muxXfer{client: client, addr: rng.Uint64()&^(3<<62) | uint64(client)<<62, data: make([]byte, n), err: rng.Intn(8) == 0}
	rng.Read(x.data)
	return x
}

func (b *muxBench) addRead(client int) {
	b.rdQ[client] = append(b.rdQ[client], randXfer(b.rng, client))
}

func (b *muxBench) addWrite(client int) {
	x := randXfer(b.rng, client)
	b.wrQ[client] = append(b.wrQ[client], x)
	b.wrAll[client] = append(b.wrAll[client], x)
	beats := muxBeats(x.data)
	for i, beat := range beats {
		b.wrData[client] = append(b.wrData[client], beat)
		b.wrLastB[client] = append(b.wrLastB[client], i == len(beats)-1)
	}
}

func (b *muxBench) idle() bool {
	for c := 0; c < muxClients; c++ {
		if len(b.rdQ[c]) > 0 || len(b.rdExp[c]) > 0 || len(b.wrQ[c]) > 0 || len(b.wrData[c]) > 0 {
			return false
		}
	}
	return len(b.errExp) == 0
}

func (b *muxBench) cycle() {
	t, d, rng := b.t, b.d, b.rng
	c := d.Cycles()

	// Clients: requests and write data, valid held once raised.
	for i := 0; i < muxClients; i++ {
		rp := fmt.Sprintf("s_rd%d_req_", i)
		if len(b.rdQ[i]) > 0 {
			b.rdOn[i] = b.rdOn[i] || rng.Intn(100) >= b.gap
			d.Set(rp+"addr", b.rdQ[i][0].addr)
			d.Set(rp+"len", uint64(len(b.rdQ[i][0].data)))
		}
		d.Set(rp+"valid", b2u(b.rdOn[i]))
		wp := fmt.Sprintf("s_wr%d_req_", i)
		if len(b.wrQ[i]) > 0 {
			b.wrOn[i] = b.wrOn[i] || rng.Intn(100) >= b.gap
			d.Set(wp+"addr", b.wrQ[i][0].addr)
			d.Set(wp+"len", uint64(len(b.wrQ[i][0].data)))
		}
		d.Set(wp+"valid", b2u(b.wrOn[i]))
		dp := fmt.Sprintf("s_axis_wr%d_", i)
		if len(b.wrData[i]) > 0 {
			b.wrDataOn[i] = b.wrDataOn[i] || rng.Intn(100) >= b.gap
			d.SetBytes(dp+"tdata", padBeat(b.wrData[i][0]))
			d.Set(dp+"tkeep", keepOf(len(b.wrData[i][0])))
			d.Set(dp+"tlast", b2u(b.wrLastB[i][0]))
		}
		d.Set(dp+"tvalid", b2u(b.wrDataOn[i]))
	}
	var rdReady [muxClients]bool
	for i := range rdReady {
		rdReady[i] = rng.Intn(100) >= b.stall
		d.Set(fmt.Sprintf("m_axis_rd%d_tready", i), b2u(rdReady[i]))
	}

	// Host: read data of the oldest request once its latency has passed, in request order.
	if len(b.hostRd) > 0 && c >= b.hostRd[0].ready {
		x := b.hostRd[0]
		beats := muxBeats(x.data)
		b.hostOn = b.hostOn || rng.Intn(100) >= b.gap
		d.SetBytes("s_axis_dma_rd_tdata", padBeat(beats[b.hostBeat]))
		d.Set("s_axis_dma_rd_tkeep", keepOf(len(beats[b.hostBeat])))
		d.Set("s_axis_dma_rd_tlast", b2u(b.hostBeat == len(beats)-1))
		d.Set("s_axis_dma_rd_tid", x.tag)
		d.Set("s_axis_dma_rd_tuser", b2u(x.err))
	}
	d.Set("s_axis_dma_rd_tvalid", b2u(b.hostOn))
	rdReqReady := rng.Intn(100) >= b.stall
	wrReqReady := rng.Intn(100) >= b.stall
	wrDataReady := rng.Intn(100) >= b.stall
	d.Set("m_dma_rd_req_ready", b2u(rdReqReady))
	d.Set("m_dma_wr_req_ready", b2u(wrReqReady))
	d.Set("m_axis_dma_wr_tready", b2u(wrDataReady))
	doneValid := rng.Intn(10) == 0
	doneErr := rng.Intn(2) == 0
	d.Set("s_dma_wr_done_valid", b2u(doneValid))
	d.Set("s_dma_wr_done_error", b2u(doneErr))
	d.Set("s_dma_wr_done_tag", uint64(rng.Intn(1<<muxTagWidth)))
	d.Eval()

	// Write completions: an error one pulses m_wr_error_valid in the next cycle.
	assert.Equal(t, b.errExp[c], d.Get("m_wr_error_valid") == 1, "cycle %d: m_wr_error_valid", c)
	delete(b.errExp, c)
	if doneValid && doneErr {
		b.errExp[c+1] = true
		b.errCount++
	}

	// Read requests: round-robin grants (exactly the next waiting client after the last one
	// granted), then the host sees them in grant order, tagged.
	var rdFire, wrFire [muxClients]bool
	rdGrant, wrGrant := -1, -1
	for i := 0; i < muxClients; i++ {
		rdFire[i] = b.rdOn[i] && d.Get(fmt.Sprintf("s_rd%d_req_ready", i)) == 1
		wrFire[i] = b.wrOn[i] && d.Get(fmt.Sprintf("s_wr%d_req_ready", i)) == 1
		if rdFire[i] {
			require.Equal(t, -1, rdGrant, "cycle %d: read requests %d and %d granted together", c, rdGrant, i)
			rdGrant = i
		}
		if wrFire[i] {
			require.Equal(t, -1, wrGrant, "cycle %d: write requests %d and %d granted together", c, wrGrant, i)
			wrGrant = i
		}
	}
	if rdGrant >= 0 {
		require.Equal(t, rrNext(b.rdLast, b.rdOn), rdGrant, "cycle %d: read grant after %d with %v waiting", c, b.rdLast, b.rdOn)
		if othersWaiting(b.rdOn, rdGrant) {
			b.rdFair++
		}
		b.rdLast = rdGrant
	}
	if wrGrant >= 0 {
		require.Equal(t, rrNext(b.wrLast, b.wrOn), wrGrant, "cycle %d: write grant after %d with %v waiting", c, b.wrLast, b.wrOn)
		if othersWaiting(b.wrOn, wrGrant) {
			b.wrFair++
		}
		b.wrLast = wrGrant
	}
	rdReqValid := d.Get("m_dma_rd_req_valid") == 1
	b.hRdReq.check(t, c, rdReqValid, rdReqReady, fmt.Appendf(nil, "%x %d %d",
		d.Get("m_dma_rd_req_addr"), d.Get("m_dma_rd_req_len"), d.Get("m_dma_rd_req_tag")))
	if rdReqValid && rdReqReady {
		require.NotEmpty(t, b.rdGrants, "cycle %d: host read request never granted", c)
		x := b.rdGrants[0]
		b.rdGrants = b.rdGrants[1:]
		require.Equal(t, x.addr, d.Get("m_dma_rd_req_addr"), "cycle %d: read address", c)
		require.EqualValues(t, len(x.data), d.Get("m_dma_rd_req_len"), "cycle %d: read length", c)
		seqMask := uint64(1)<<(muxTagWidth-2) - 1
		wantTag := uint64(x.client)<<(muxTagWidth-2) | b.rdSeq[x.client]&seqMask
		require.Equal(t, wantTag, d.Get("m_dma_rd_req_tag"), "cycle %d: read tag", c)
		b.rdSeq[x.client]++
		x.tag = wantTag
		x.ready = c + 1 + uint64(rng.Intn(b.maxLat))
		if n := len(b.hostRd); n > 0 {
			x.ready = max(x.ready, b.hostRd[n-1].ready)
		}
		b.hostRd = append(b.hostRd, x)
	}

	// Read data: each beat to the client its tag names, and only there.
	hostReady := d.Get("s_axis_dma_rd_tready") == 1
	offered := false
	for i := 0; i < muxClients; i++ {
		p := fmt.Sprintf("m_axis_rd%d_", i)
		v := d.Get(p+"tvalid") == 1
		offered = offered || v
		b.hRd[i].check(t, c, v, rdReady[i], fmt.Appendf(nil, "%x %x %d %d", d.GetBytes(p+"tdata"),
			d.Get(p+"tkeep"), d.Get(p+"tlast"), d.Get(p+"tuser")))
		if !v {
			continue
		}
		require.True(t, b.hostOn, "cycle %d: client %d offered read data the host did not send", c, i)
		require.EqualValues(t, b.hostRd[0].client, i, "cycle %d: read data routed to the wrong client", c)
		require.Equal(t, rdReady[i], hostReady, "cycle %d: host tready is not client %d's", c, i)
		if !rdReady[i] {
			continue
		}
		require.NotEmpty(t, b.rdExp[i], "cycle %d: client %d got data it did not ask for", c, i)
		x := b.rdExp[i][0]
		require.Equal(t, x.err, d.Get(p+"tuser") == 1, "cycle %d: client %d tuser", c, i)
		data := d.GetBytes(p + "tdata")
		keep := d.Get(p + "tkeep")
		for l := 0; l < muxBytes; l++ {
			if keep&(1<<l) != 0 {
				b.rdCur[i] = append(b.rdCur[i], data[l])
			}
		}
		if d.Get(p+"tlast") == 1 {
			require.Equal(t, x.data, b.rdCur[i], "client %d read %d", i, b.rdDone[i])
			b.rdExp[i] = b.rdExp[i][1:]
			b.rdCur[i] = nil
			b.rdDone[i]++
		}
	}
	if b.hostOn && !offered {
		require.Fail(t, "read beat lost", "cycle %d: host beat offered to no client", c)
	}
	rdHostFire := b.hostOn && hostReady

	// Write requests at the host: one at a time, each followed by all its data.
	wrReqValid := d.Get("m_dma_wr_req_valid") == 1
	b.hWrReq.check(t, c, wrReqValid, wrReqReady, fmt.Appendf(nil, "%x %d %d",
		d.Get("m_dma_wr_req_addr"), d.Get("m_dma_wr_req_len"), d.Get("m_dma_wr_req_tag")))
	if wrReqValid && wrReqReady {
		require.Nil(t, b.hostOpen, "cycle %d: write request before the previous write's data ended", c)
		require.NotEmpty(t, b.wrGrants, "cycle %d: host write request never granted", c)
		x := b.wrGrants[0]
		b.wrGrants = b.wrGrants[1:]
		require.Equal(t, x.addr, d.Get("m_dma_wr_req_addr"), "cycle %d: write address", c)
		require.EqualValues(t, len(x.data), d.Get("m_dma_wr_req_len"), "cycle %d: write length", c)
		require.Equal(t, b.wrCount&(1<<muxTagWidth-1), d.Get("m_dma_wr_req_tag"), "cycle %d: write tag", c)
		b.wrCount++
		b.hostOpen = x
	}
	tv := d.Get("m_axis_dma_wr_tvalid") == 1
	wdata := d.GetBytes("m_axis_dma_wr_tdata")
	wkeep := d.Get("m_axis_dma_wr_tkeep")
	wlast := d.Get("m_axis_dma_wr_tlast") == 1
	require.Zero(t, d.Get("m_axis_dma_wr_tuser"))
	b.hWrData.check(t, c, tv, wrDataReady, fmt.Appendf(nil, "%x %x %v", wdata, wkeep, wlast))
	var wrDataFire [muxClients]bool
	fired := 0
	for i := 0; i < muxClients; i++ {
		wrDataFire[i] = b.wrDataOn[i] && d.Get(fmt.Sprintf("s_axis_wr%d_tready", i)) == 1
		if wrDataFire[i] {
			fired++
		}
	}
	require.Equal(t, b2u(tv && wrDataReady), uint64(fired), "cycle %d: a write beat taken from one client iff the host took one", c)
	if tv && wrDataReady {
		require.NotNil(t, b.hostOpen, "cycle %d: write data before its request", c)
		require.True(t, wrDataFire[b.hostOpen.client], "cycle %d: write data from the wrong client", c)
		if len(b.hostCur) == 0 {
			b.firstBeat = append(b.firstBeat, c)
		}
		for l := 0; l < muxBytes; l++ {
			if wkeep&(1<<l) != 0 {
				b.hostCur = append(b.hostCur, wdata[l])
			}
		}
		if wlast {
			require.Equal(t, b.hostOpen.data, b.hostCur, "cycle %d: write %d data", c, len(b.hostWr))
			b.hostWr = append(b.hostWr, b.hostOpen)
			b.hostOpen, b.hostCur = nil, nil
			b.lastBeat = append(b.lastBeat, c)
		}
	}

	d.Tick()

	for i := 0; i < muxClients; i++ {
		if rdFire[i] {
			x := b.rdQ[i][0]
			b.rdQ[i], b.rdOn[i] = b.rdQ[i][1:], false
			b.rdGrants = append(b.rdGrants, x)
			b.rdExp[i] = append(b.rdExp[i], x)
		}
		if wrFire[i] {
			b.wrGrants = append(b.wrGrants, b.wrQ[i][0])
			b.wrQ[i], b.wrOn[i] = b.wrQ[i][1:], false
		}
		if wrDataFire[i] {
			b.wrData[i], b.wrLastB[i], b.wrDataOn[i] = b.wrData[i][1:], b.wrLastB[i][1:], false
		}
	}
	if rdHostFire {
		b.hostBeat++
		b.hostOn = false
		if b.hostBeat == len(muxBeats(b.hostRd[0].data)) {
			b.hostRd, b.hostBeat = b.hostRd[1:], 0
		}
	}
}

// run clocks until every transfer is done; feed, if set, adds transfers as it goes.
func (b *muxBench) run(limit int, feed func() bool) {
	b.t.Helper()
	more := feed != nil
	for i := 0; i < limit && (more || !b.idle()); i++ {
		if more {
			more = feed()
		}
		b.cycle()
	}
	require.True(b.t, b.idle(), "all transfers done within %d cycles", limit)
	for i := 0; i < 8; i++ {
		b.cycle()
	}
}

// TestDmaMuxRandom: random reads and writes of random lengths from all three clients at once,
// with random gaps and stalls everywhere and random host read latency. Each read client receives
// exactly its bytes in its order; the host sees each write request followed by all its data and
// nothing else, tags as specified; every grant goes to the next waiting client in turn; write
// errors pulse.
func TestDmaMuxRandom(t *testing.T) {
	for _, tc := range []struct {
		name       string
		seed       int64
		gap, stall int
		rate       int // percent of cycles a new transfer is queued per client and direction
	}{{"streaming", 11, 0, 0, 100}, {"sparse", 12, 0, 0, 1}, {"gaps", 22, 40, 0, 5}, {"stalls", 33, 0, 40, 5},
		{"both", 44, 30, 30, 3}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Logf("seed %d", tc.seed)
			rng := rand.New(rand.NewSource(tc.seed))
			b := newMuxBench(t, rng)
			b.gap, b.stall = tc.gap, tc.stall
			const n = 300 // per client and direction
			var reads, writes [muxClients]int
			b.run(3000000, func() bool {
				more := false
				for c := 0; c < muxClients; c++ {
					if reads[c] < n && rng.Intn(100) < tc.rate {
						b.addRead(c)
						reads[c]++
					}
					if writes[c] < n && rng.Intn(100) < tc.rate {
						b.addWrite(c)
						writes[c]++
					}
					more = more || reads[c] < n || writes[c] < n
				}
				return more
			})
			for c := 0; c < muxClients; c++ {
				assert.Equal(t, n, b.rdDone[c], "client %d reads", c)
				var got []*muxXfer
				for _, x := range b.hostWr {
					if muxClientOf(x.addr) == c {
						got = append(got, x)
					}
				}
				require.Len(t, got, n, "client %d writes at the host", c)
				for k, x := range got {
					require.Same(t, b.wrAll[c][k], x, "client %d write %d out of order", c, k)
				}
			}
			t.Logf("%d reads, %d writes, %d write errors, %d/%d fair grants checked, %d cycles",
				b.rdDone[0]+b.rdDone[1]+b.rdDone[2], len(b.hostWr), b.errCount, b.rdFair, b.wrFair, b.d.Cycles())
			if tc.rate == 100 {
				assert.Greater(t, b.rdFair, 100, "read grants checked for turns")
				assert.Greater(t, b.wrFair, 100, "write grants checked for turns")
			}
			assert.Greater(t, b.errCount, 10)
		})
	}
}

// TestDmaMuxWriteBubble: with all three write clients streaming and the host always ready, the
// data of consecutive writes is separated by exactly one idle cycle (the next request's), and the
// clients take turns.
func TestDmaMuxWriteBubble(t *testing.T) {
	seed := int64(5)
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewSource(seed))
	b := newMuxBench(t, rng)
	for i := 0; i < 50; i++ {
		for c := 0; c < muxClients; c++ {
			b.addWrite(c)
		}
	}
	b.run(150000, nil)
	require.Len(t, b.hostWr, 50*muxClients)
	for k := 1; k < len(b.firstBeat); k++ {
		assert.Equal(t, b.lastBeat[k-1]+2, b.firstBeat[k], "write %d: idle cycles after write %d", k, k-1)
		assert.Equal(t, (b.hostWr[k-1].client+1)%muxClients, b.hostWr[k].client, "write %d: clients in turn", k)
	}
}

package sim

import (
	"math/rand"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sanoffload/san/driver/regs"
	"github.com/sanoffload/san/hw/sim/dut"
)

// axilMaster runs AXI4-Lite transactions on a DUT with random delays on every channel: AW and W
// raised independently, B and R ready withheld at random.
type axilMaster struct {
	d     *dut.DUT
	rng   *rand.Rand
	delay int      // percent chance of holding a signal back for a cycle
	msix  []uint64 // vectors of accepted MSI-X requests
	// pulses, when set, counts the cycles in which each output it names is 1.
	pulses map[string]int
}

func (m *axilMaster) hold() bool { return m.rng.Intn(100) < m.delay }

// cycle settles inputs, samples outputs before the edge, and clocks.
func (m *axilMaster) cycle() map[string]uint64 {
	m.d.Eval()
	out := map[string]uint64{}
	for _, p := range m.d.Ports() {
		if p.Output && p.Width <= 64 {
			out[p.Name] = m.d.Get(p.Name)
		}
	}
	if out["m_msix_valid"] == 1 && m.d.Get("m_msix_ready") == 1 {
		m.msix = append(m.msix, out["m_msix_vector"])
	}
	for name := range m.pulses {
		m.pulses[name] += int(out[name])
	}
	m.d.Tick()
	return out
}

func (m *axilMaster) write(t *testing.T, addr uint64, data uint32, strb uint64) uint64 {
	t.Helper()
	awDone, wDone := false, false
	m.d.Set("s_axil_awaddr", addr)
	m.d.Set("s_axil_wdata", uint64(data))
	m.d.Set("s_axil_wstrb", strb)
	for i := 0; i < 1000; i++ {
		// A valid, once raised, stays up until its handshake (AXI rule); only raising it is delayed.
		m.d.Set("s_axil_awvalid", b2u(!awDone && (m.d.Get("s_axil_awvalid") == 1 || !m.hold())))
		m.d.Set("s_axil_wvalid", b2u(!wDone && (m.d.Get("s_axil_wvalid") == 1 || !m.hold())))
		bready := !m.hold()
		m.d.Set("s_axil_bready", b2u(bready))
		m.d.Set("m_msix_ready", b2u(!m.hold()))
		m.d.Eval()
		awv, wv := m.d.Get("s_axil_awvalid") == 1, m.d.Get("s_axil_wvalid") == 1
		out := m.cycle()
		awDone = awDone || (awv && out["s_axil_awready"] == 1)
		wDone = wDone || (wv && out["s_axil_wready"] == 1)
		if bready && out["s_axil_bvalid"] == 1 {
			require.True(t, awDone && wDone, "B before AW and W completed")
			m.idle()
			return out["s_axil_bresp"]
		}
	}
	t.Fatalf("write 0x%x: no response in 1000 cycles", addr)
	return 0
}

func (m *axilMaster) read(t *testing.T, addr uint64) (uint32, uint64) {
	t.Helper()
	arDone := false
	m.d.Set("s_axil_araddr", addr)
	for i := 0; i < 1000; i++ {
		m.d.Set("s_axil_arvalid", b2u(!arDone && (m.d.Get("s_axil_arvalid") == 1 || !m.hold())))
		rready := !m.hold()
		m.d.Set("s_axil_rready", b2u(rready))
		m.d.Set("m_msix_ready", b2u(!m.hold()))
		m.d.Eval()
		arv := m.d.Get("s_axil_arvalid") == 1
		out := m.cycle()
		arDone = arDone || (arv && out["s_axil_arready"] == 1)
		if rready && out["s_axil_rvalid"] == 1 {
			require.True(t, arDone, "R before AR completed")
			m.idle()
			return uint32(out["s_axil_rdata"]), out["s_axil_rresp"]
		}
	}
	t.Fatalf("read 0x%x: no response in 1000 cycles", addr)
	return 0, 0
}

func (m *axilMaster) idle() {
	for _, s := range []string{"s_axil_awvalid", "s_axil_wvalid", "s_axil_bready", "s_axil_arvalid", "s_axil_rready"} {
		m.d.Set(s, 0)
	}
}

// TestCSRBlockRandomAccess runs seeded random reads and writes, with byte strobes and random
// channel delays, against a model of the register block.
func TestCSRBlockRandomAccess(t *testing.T) {
	seed := int64(0xC5)
	t.Logf("seed %d", seed)
	for _, delay := range []int{0, 50} {
		rng := rand.New(rand.NewSource(seed))
		m := &axilMaster{d: dut.New(t, "san_csr"), rng: rng, delay: delay}
		m.d.Set("m_msix_ready", 1)
		var scratch, control uint32
		var bad uint32
		irqs := 0
		addrs := []uint64{regs.NICScratch, regs.NICControl, regs.NICStatus, regs.NICBlkType, regs.NICIRQTest,
			regs.NICBadAccess, 0xFC, 0x31, regs.DoorbellBase + 0xC}
		for i := 0; i < 400; i++ {
			addr := addrs[rng.Intn(len(addrs))]
			decoded := addr != 0xFC && addr != 0x31 && addr != regs.DoorbellBase+0xC
			if rng.Intn(2) == 0 {
				v := rng.Uint32()
				strb := uint64(rng.Intn(16))
				if addr == regs.NICIRQTest {
					v %= 40 // some beyond the 32 vectors
				}
				resp := m.write(t, addr, v, strb)
				if !decoded {
					require.Equal(t, uint64(2), resp, "write 0x%x: SLVERR", addr)
					bad++
					continue
				}
				require.Equal(t, uint64(0), resp, "write 0x%x: OKAY", addr)
				mask := uint32(0)
				for b := 0; b < 4; b++ {
					if strb&(1<<b) != 0 {
						mask |= 0xff << (8 * b)
					}
				}
				switch addr {
				case regs.NICScratch:
					scratch = scratch&^mask | v&mask
				case regs.NICControl:
					if strb&1 != 0 {
						control = v & 1
					}
				case regs.NICIRQTest:
					if v&0xffff < 32 {
						irqs++
					} else {
						bad++
					}
				}
				continue
			}
			v, resp := m.read(t, addr)
			if !decoded {
				require.Equal(t, uint64(2), resp, "read 0x%x: SLVERR", addr)
				bad++
				continue
			}
			require.Equal(t, uint64(0), resp)
			switch addr {
			case regs.NICScratch:
				require.Equal(t, scratch, v, "access %d", i)
			case regs.NICControl, regs.NICStatus:
				require.Equal(t, control, v)
			case regs.NICBlkType:
				require.Equal(t, uint32(regs.NICType), v)
			case regs.NICIRQTest:
				require.Equal(t, uint32(0), v)
			case regs.NICBadAccess:
				require.Equal(t, bad, v)
			}
		}
		for i := 0; i < 10; i++ {
			m.d.Set("m_msix_ready", 1)
			m.cycle()
		}
		require.Len(t, m.msix, irqs, "every valid IRQ_TEST write raised one MSI-X request")
	}
}

// TestCSRDoorbellsLoadAndCounters: doorbell writes reach the engine ports with their connection
// and value and hold the next write until taken; a LOAD waits for the engines, pulses once with
// the staging registers, and a bad one is refused; the drop counters count both sources.
func TestCSRDoorbellsLoadAndCounters(t *testing.T) {
	m := &axilMaster{d: dut.New(t, "san_csr"), rng: rand.New(rand.NewSource(1))}
	d := m.d

	// Doorbells: page 5, each register, the engine not ready at first.
	for _, c := range []struct {
		off   uint64
		valid string
		field string
	}{
		{regs.DoorbellSQPI, "m_db_sq_valid", "m_db_sq_pi"},
		{regs.DoorbellRQPI, "m_db_rq_valid", "m_db_rq_pi"},
		{regs.DoorbellCQCI, "m_db_cq_valid", "m_db_cq_ci"},
	} {
		ready := c.valid[:len(c.valid)-len("valid")] + "ready"
		d.Set(ready, 0)
		resp := m.write(t, regs.DoorbellBase+5*regs.DoorbellStride+c.off, 0x8000_1234, 0xF)
		require.Equal(t, uint64(0), resp)
		for i := 0; i < 5; i++ {
			out := m.cycle()
			require.Equal(t, uint64(1), out[c.valid], "%s held until taken", c.valid)
			require.Equal(t, uint64(0x1234), out[c.field])
			qpn := c.valid[:len(c.valid)-len("valid")] + "qpn"
			require.Equal(t, uint64(5), out[qpn])
		}
		if c.off == regs.DoorbellCQCI {
			require.Equal(t, uint64(1), d.Get("m_db_cq_arm"), "bit 31 arms")
		}
		d.Set(ready, 1)
		m.cycle()
		require.Equal(t, uint64(0), m.cycle()[c.valid], "one transfer per doorbell write")
	}

	// Context load.
	staging := map[uint64]uint32{
		regs.QpcQPN: 7, regs.QpcState: 1, regs.QpcDestQPN: 0xABCDEF, regs.QpcDmacHi: 0x0211,
		regs.QpcDmacLo: 0x22334455, regs.QpcDip: 0x0A000002, regs.QpcUDPSport: 0xC000,
		regs.QpcSQPSN: 0x123456, regs.QpcRQPSN: 0x654321, regs.QpcSQBaseLo: 0x1000,
		regs.QpcSQBaseHi: 1, regs.QpcRQBaseLo: 0x2000, regs.QpcRQBaseHi: 1, regs.QpcCQBaseLo: 0x3000,
		regs.QpcCQBaseHi: 1, regs.QpcLogSizes: 4 | 5<<8 | 6<<16, regs.QpcCQVector: 3,
	}
	for a, v := range staging {
		require.Equal(t, uint64(0), m.write(t, a, v, 0xF))
	}
	d.Set("ctx_load_ready", 0)
	require.Equal(t, uint64(0), m.write(t, regs.QpcCmd, 1, 0xF))
	for i := 0; i < 5; i++ {
		require.Equal(t, uint64(0), m.cycle()["ctx_load_en"], "no load while an engine is busy")
	}
	v, _ := m.read(t, regs.QpcStatus)
	require.Equal(t, uint32(1), v, "BUSY")
	d.Set("ctx_load_ready", 1)
	out := m.cycle()
	require.Equal(t, uint64(1), out["ctx_load_en"])
	want := map[string]uint64{
		"ctx_load_qpn": 7, "ctx_load_rts": 1, "ctx_load_dest_qpn": 0xABCDEF,
		"ctx_load_dmac": 0x021122334455, "ctx_load_dip": 0x0A000002, "ctx_load_udp_sport": 0xC000,
		"ctx_load_sq_psn": 0x123456, "ctx_load_rq_psn": 0x654321, "ctx_load_sq_base": 0x1_0000_1000,
		"ctx_load_rq_base": 0x1_0000_2000, "ctx_load_cq_base": 0x1_0000_3000, "ctx_load_sq_log": 4,
		"ctx_load_rq_log": 5, "ctx_load_cq_log": 6, "ctx_load_cq_vector": 3,
	}
	for k, w := range want {
		require.Equal(t, w, out[k], k)
	}
	require.Equal(t, uint64(0), m.cycle()["ctx_load_en"], "one pulse per LOAD")
	v, _ = m.read(t, regs.QpcStatus)
	require.Equal(t, uint32(0), v)

	// Refused loads: ring size 0, vector beyond N_MSIX, QPN beyond N_QP.
	bad0, _ := m.read(t, regs.NICBadAccess)
	for _, c := range []struct {
		reg        uint64
		v, restore uint32
	}{
		{regs.QpcLogSizes, 0, 4 | 5<<8 | 6<<16},
		{regs.QpcCQVector, 32, 3},
		{regs.QpcQPN, 256, 7},
	} {
		m.write(t, c.reg, c.v, 0xF)
		m.write(t, regs.QpcCmd, 1, 0xF)
		for i := 0; i < 3; i++ {
			require.Equal(t, uint64(0), m.cycle()["ctx_load_en"])
		}
		v, _ = m.read(t, regs.QpcStatus)
		require.Equal(t, uint32(2), v, "ERROR after a bad LOAD of 0x%x", c.reg)
		m.write(t, c.reg, c.restore, 0xF)
	}
	bad1, _ := m.read(t, regs.NICBadAccess)
	require.Equal(t, bad0+3, bad1)

	// Drop counters: both sources in one cycle, then the total.
	pulse := func(sig0 uint64, r0 uint64, sig1 uint64, r1 uint64) {
		d.Set("stat_drop0_valid", sig0)
		d.Set("stat_drop0_reason", r0)
		d.Set("stat_drop1_valid", sig1)
		d.Set("stat_drop1_reason", r1)
		m.cycle()
		d.Set("stat_drop0_valid", 0)
		d.Set("stat_drop1_valid", 0)
	}
	pulse(1, 3, 1, 17)
	pulse(1, 3, 0, 0)
	pulse(0, 0, 1, 20)
	for _, c := range []struct{ sel, want uint32 }{{0, 4}, {3, 2}, {17, 1}, {20, 1}, {1, 0}, {31, 0}} {
		m.write(t, regs.PortRxDropSel, c.sel, 0xF)
		v, _ = m.read(t, regs.PortRxDropCount)
		require.Equal(t, c.want, v, "reason %d", c.sel)
	}

	// PMTU accepts 8..12 only.
	for _, c := range []struct{ w, want uint32 }{{12, 12}, {13, 12}, {7, 12}, {8, 8}} {
		m.write(t, regs.PortPMTU, c.w, 0xF)
		v, _ = m.read(t, regs.PortPMTU)
		require.Equal(t, c.want, v)
	}
}

// TestCSRARPBlock: a REQUEST write reaches the ARP block with its address and holds the next
// write until taken; REPLY_POP gives one pop and arm pulse each; the reply head reads as zero
// when the FIFO is empty; a vector beyond N_MSIX is refused; the counters count their pulses.
func TestCSRARPBlock(t *testing.T) {
	m := &axilMaster{d: dut.New(t, "san_csr"), rng: rand.New(rand.NewSource(2))}
	d := m.d
	d.Set("m_arp_req_ready", 0)
	require.Equal(t, uint64(0), m.write(t, regs.ARPRequest, 0x0A000002, 0xF))
	for i := 0; i < 5; i++ {
		out := m.cycle()
		require.Equal(t, uint64(1), out["m_arp_req_valid"], "held until taken")
		require.Equal(t, uint64(0x0A000002), out["m_arp_req_ip"])
	}
	// A second write waits for the first to be taken.
	d.Set("s_axil_awaddr", regs.ARPRequest)
	d.Set("s_axil_wdata", 0x0A000003)
	d.Set("s_axil_wstrb", 0xF)
	d.Set("s_axil_awvalid", 1)
	d.Set("s_axil_wvalid", 1)
	for i := 0; i < 5; i++ {
		require.Equal(t, uint64(0), m.cycle()["s_axil_awready"], "next write held")
	}
	m.idle()
	d.Set("m_arp_req_ready", 1)
	m.cycle()
	require.Equal(t, uint64(0), m.cycle()["m_arp_req_valid"], "one request per write")

	// REPLY_POP: POP and ARM are one-cycle pulses of their bits.
	m.pulses = map[string]int{"m_arp_rep_pop": 0, "m_arp_rep_arm": 0}
	require.Equal(t, uint64(0), m.write(t, regs.ARPReplyPop, 1|1<<31, 0xF))
	m.write(t, regs.ARPReplyPop, 1<<31, 0xF)
	m.write(t, regs.ARPReplyPop, 1|1<<31, 0x7) // ARM's byte not written: a pop only
	for i := 0; i < 6; i++ {
		m.cycle()
	}
	assert.Equal(t, map[string]int{"m_arp_rep_pop": 2, "m_arp_rep_arm": 2}, m.pulses)
	m.pulses = nil

	// The head: zero while empty, the reply and count otherwise.
	d.Set("s_arp_rep_valid", 0)
	d.Set("s_arp_rep_ip", 0xC0A80001)
	d.Set("s_arp_rep_mac", 0x0211_2233_4455)
	for _, a := range []uint64{regs.ARPReplyStatus, regs.ARPReplyIP, regs.ARPReplyMACHi, regs.ARPReplyMACLo} {
		v, resp := m.read(t, a)
		require.Equal(t, uint64(0), resp)
		assert.Zero(t, v, "0x%x reads 0 while the FIFO is empty", a)
	}
	d.Set("s_arp_rep_valid", 1)
	d.Set("s_arp_rep_count", 3)
	for a, want := range map[uint64]uint32{regs.ARPReplyStatus: 1 | 3<<8, regs.ARPReplyIP: 0xC0A80001,
		regs.ARPReplyMACHi: 0x0211, regs.ARPReplyMACLo: 0x22334455} {
		v, _ := m.read(t, a)
		assert.Equal(t, want, v, "0x%x", a)
	}

	// VECTOR: below N_MSIX only.
	bad0, _ := m.read(t, regs.NICBadAccess)
	m.write(t, regs.ARPVector, 31, 0xF)
	m.write(t, regs.ARPVector, 32, 0xF)
	v, _ := m.read(t, regs.ARPVector)
	assert.Equal(t, uint32(31), v)
	assert.Equal(t, uint64(31), m.cycle()["cfg_arp_vector"])
	bad1, _ := m.read(t, regs.NICBadAccess)
	assert.Equal(t, bad0+1, bad1)

	// Counters.
	for i, s := range []string{"stat_arp_answered", "stat_arp_req_sent", "stat_arp_rep_received", "stat_arp_rep_lost"} {
		for k := 0; k <= i; k++ {
			d.Set(s, 1)
			m.cycle()
			d.Set(s, 0)
		}
	}
	for i, a := range []uint64{regs.ARPAnswered, regs.ARPRequestsSent, regs.ARPRepliesReceived, regs.ARPRepliesLost} {
		v, _ := m.read(t, a)
		assert.Equal(t, uint32(i+1), v, "counter 0x%x", a)
	}
}

package sim

import (
	"math/rand"
	"testing"

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
			regs.NICBadAccess, 0x100, 0x31, regs.DoorbellBase}
		for i := 0; i < 400; i++ {
			addr := addrs[rng.Intn(len(addrs))]
			decoded := addr != 0x100 && addr != 0x31 && addr != regs.DoorbellBase
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

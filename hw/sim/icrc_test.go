package sim

import (
	"encoding/binary"
	"math/rand"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sanoffload/san/hw/sim/dut"
	"github.com/sanoffload/san/hw/wire"
)

// refICRC is hw/wire's ICRC of a frame that does not yet carry its ICRC field.
func refICRC(frame []byte) uint32 {
	return wire.ICRC(append(append([]byte(nil), frame...), 0, 0, 0, 0))
}

// streamer drives a monitored AXI-Stream with random gaps and backpressure.
type streamer struct {
	d   *dut.DUT
	rng *rand.Rand
	// probability in percent that a cycle has valid low / ready low
	gap, stall int
}

// send streams one frame and returns icrc and icrc_ok as seen on its last beat.
func (s *streamer) send(t *testing.T, frame []byte) (icrc uint32, ok bool) {
	t.Helper()
	const bytes = 8
	for off := 0; off < len(frame); {
		valid := s.rng.Intn(100) >= s.gap
		ready := s.rng.Intn(100) >= s.stall
		n := min(bytes, len(frame)-off)
		last := off+n == len(frame)
		s.d.SetBytes("mon_axis_tdata", frame[off:off+n])
		s.d.Set("mon_axis_tkeep", (1<<n)-1)
		s.d.Set("mon_axis_tvalid", b2u(valid))
		s.d.Set("mon_axis_tready", b2u(ready))
		s.d.Set("mon_axis_tlast", b2u(last))
		s.d.Eval()
		if valid && ready && last {
			icrc, ok = uint32(s.d.Get("icrc")), s.d.Get("icrc_ok") == 1
		}
		s.d.Tick()
		if valid && ready {
			off += n
		}
	}
	s.d.Set("mon_axis_tvalid", 0)
	return icrc, ok
}

func b2u(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

func withICRC(frame []byte, icrc uint32) []byte {
	return binary.LittleEndian.AppendUint32(append([]byte(nil), frame...), icrc)
}

func TestICRCBlockAgainstReference(t *testing.T) {
	seed := int64(4791)
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewSource(seed))
	for _, bp := range []struct {
		name       string
		gap, stall int
	}{{"streaming", 0, 0}, {"backpressure", 30, 40}} {
		t.Run(bp.name, func(t *testing.T) {
			s := &streamer{d: dut.New(t, "san_icrc"), rng: rng, gap: bp.gap, stall: bp.stall}
			for i := 0; i < 300; i++ {
				frame := make([]byte, 14+20+8+12+rng.Intn(1100))
				rng.Read(frame)
				want := refICRC(frame)
				got, _ := s.send(t, frame)
				require.Equal(t, want, got, "frame %d, %d bytes: transmit ICRC", i, len(frame))

				good := withICRC(frame, want)
				_, ok := s.send(t, good)
				require.True(t, ok, "frame %d: correct ICRC accepted", i)

				bad := append([]byte(nil), good...)
				pos := 14 + rng.Intn(len(bad)-14)
				for pos == 15 || pos == 22 || pos == 24 || pos == 25 || pos == 40 || pos == 41 || pos == 46 {
					pos = 14 + rng.Intn(len(bad)-14)
				}
				bad[pos] ^= 1 << uint(rng.Intn(8))
				_, ok = s.send(t, bad)
				require.False(t, ok, "frame %d: bit flip at byte %d caught", i, pos)
			}
		})
	}
}

func TestICRCBlockIgnoresVariantAndEthernetBytes(t *testing.T) {
	s := &streamer{d: dut.New(t, "san_icrc"), rng: rand.New(rand.NewSource(1))}
	frame := make([]byte, 14+20+8+12+64)
	for i := range frame {
		frame[i] = byte(i)
	}
	good := withICRC(frame, refICRC(frame))
	for _, pos := range []int{0, 6, 12, 13, 15, 22, 24, 25, 40, 41, 46} {
		m := append([]byte(nil), good...)
		m[pos] ^= 0xa5
		_, ok := s.send(t, m)
		assert.True(t, ok, "byte %d is not covered by the ICRC", pos)
	}
}

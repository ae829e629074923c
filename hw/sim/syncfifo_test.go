package sim

import (
	"math/rand"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sanoffload/san/hw/sim/dut"
)

// TestSyncFIFORandom pushes and pops at random against a Go queue: data in order, s_ready low
// exactly when DEPTH (16) entries are held, m_valid exactly when one is, nothing lost or
// duplicated under any mix of writer gaps and reader stalls.
func TestSyncFIFORandom(t *testing.T) {
	seed := int64(16)
	t.Logf("seed %d", seed)
	for _, mix := range []struct{ push, pop int }{{50, 50}, {90, 20}, {20, 90}, {100, 100}} {
		rng := rand.New(rand.NewSource(seed))
		d := dut.New(t, "san_sync_fifo")
		d.Set("rst", 1)
		d.Tick()
		d.Set("rst", 0)
		var q []uint64
		pushed, popped := 0, 0
		for c := 0; c < 20000; c++ {
			v := rng.Uint64() & 0xFF
			push, pop := rng.Intn(100) < mix.push, rng.Intn(100) < mix.pop
			d.Set("s_data", v)
			d.Set("s_valid", b2u(push))
			d.Set("m_ready", b2u(pop))
			d.Eval()
			require.Equal(t, b2u(len(q) < 16), d.Get("s_ready"), "cycle %d: ready iff not full (%d held)", c, len(q))
			require.Equal(t, b2u(len(q) > 0), d.Get("m_valid"), "cycle %d: valid iff not empty", c)
			if len(q) > 0 {
				require.Equal(t, q[0], d.Get("m_data"), "cycle %d: head", c)
			}
			if pop && len(q) > 0 {
				q = q[1:]
				popped++
			}
			if push && d.Get("s_ready") == 1 {
				q = append(q, v)
				pushed++
			}
			d.Tick()
		}
		t.Logf("push %d%% pop %d%%: %d pushed, %d popped", mix.push, mix.pop, pushed, popped)
		require.Greater(t, popped, 1000)
	}
}

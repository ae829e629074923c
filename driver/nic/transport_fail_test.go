package nic_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sanoffload/san/driver/nic"
	"github.com/sanoffload/san/driver/regs"
	"github.com/sanoffload/san/hw/sim"
)

// failCM has room in its rings for a whole build's worth of connections (the reuse check
// below takes every number) and the shortest time wait the tests can wait out quickly.
var failCM = nic.CMConfig{Commands: 64, Events: 1024, Vector: 7, ResponseTimeout: 4, MaxRetries: 3, DeferTimeout: 6}

// pastTimers is more cycles than the DREQ's retries (3 x 4.096 us x 2^4) and the time wait
// (4.096 us x 2^8) together, at the build clock; the idle clock skips them at once.
const pastTimers = 600_000

// TestCMTransportFailure: when the transport of an established connection fails, the NIC says
// so once, as a CM event naming the cause (CONN_ERROR with the failed send's status), alongside
// the failed send's CQE; it stops the connection, tells the peer with a DREQ (lost on a dead
// link: its retries give up), and frees the number after TIMEWAIT for a new connection. After
// the failure the NIC touches none of the connection's buffers: they are freed, the clock runs
// past every old timer, and the DMA guard (checked at cleanup) saw nothing. Every WQE posted on
// the connection has completed by the time the event is read: the failed send with its error,
// the sends behind it and every receive FLUSHED, each with its WR ID.
func TestCMTransportFailure(t *testing.T) {
	const seed = 0x13
	for _, tc := range []struct {
		name   string
		tr     nic.Transport
		dead   bool // the link drops everything; else the peer just never posts a receive
		status regs.CQEStatus
	}{
		{"retry exceeded on a dead link", nic.Transport{RetryCount: 3, RNRRetry: 7, Timeout: 2, MinRNRTimer: 1}, true,
			regs.CQEStatusRetryExceeded},
		{"rnr retry exceeded", nic.Transport{RetryCount: 3, RNRRetry: 2, Timeout: 2, MinRNRTimer: 1}, false,
			regs.CQEStatusRNRRetryExceeded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Logf("seed %#x", seed)
			ctx, cancel := context.WithTimeout(context.Background(), safety)
			defer cancel()
			p := newCMPair(t, pairConfig{seed: seed}, failCM)
			p.tr = tc.tr
			require.NoError(t, p.cms[1].Listen(6006, 4))
			qa, _, ida, idb := p.dial(t, 6006, nil, nil)

			src := alloc(t, p.hs[0], 3*1024)
			rcv := alloc(t, p.hs[0], 2*1024)
			require.NoError(t, qa.PostRecv(nic.RecvWR{WRID: 100, Addr: rcv.IOVA, Length: 1024},
				nic.RecvWR{WRID: 101, Addr: rcv.IOVA + 1024, Length: 1024}))
			if tc.dead {
				for i := 0; i < 2; i++ {
					f, err := sim.FaultsOfKind("drop", 1, seed+uint64(i))
					require.NoError(t, err)
					require.NoError(t, p.fab.SetFaults(p.hs[i].dev, p.hs[1-i].dev, f))
				}
			}
			for i := 0; i < 3; i++ {
				require.NoError(t, qa.PostSend(nic.SendWR{WRID: uint64(i), Addr: src.IOVA + uint64(i*1024), Length: 1024,
					Signaled: true}))
			}

			ev, err := p.cms[0].Wait(ctx)
			require.NoError(t, err)
			require.Equal(t, regs.CMEventConnError, ev.Type, "event %+v", ev)
			assert.Equal(t, ida, ev.Conn)
			assert.Equal(t, tc.status, ev.Status, "the cause")
			// The event is the drain point: every completion is in the CQ already.
			got, err := qa.Poll(16)
			require.NoError(t, err)
			sends, recvs := splitCompletions(got)
			require.Len(t, sends, 3, "every send completed: %+v", got)
			require.Len(t, recvs, 2, "every receive completed: %+v", got)
			assert.Equal(t, tc.status, sends[0].Status, "the failed send")
			assert.Equal(t, uint64(0), sends[0].WRID, "the oldest send fails")
			for i, c := range sends[1:] {
				assert.Equal(t, regs.CQEStatusFlushed, c.Status, "send %d", i+1)
				assert.Equal(t, uint64(i+1), c.WRID, "sends flushed in order")
			}
			for i, c := range recvs {
				assert.Equal(t, regs.CQEStatusFlushed, c.Status, "receive %d", i)
				assert.Equal(t, uint64(100+i), c.WRID, "receives flushed in order")
			}
			assert.Equal(t, [2]int{0, 0}, outstanding(qa), "nothing left posted")
			st, err := qa.State()
			require.NoError(t, err)
			assert.False(t, st.RTS, "the connection's engines are stopped")

			if tc.dead {
				// The peer heard nothing; its connection is still up.
				p.noEvent(t, 1)
			} else {
				dreq := p.event(t, 1, regs.CMEventDisconnectRequest)
				assert.Equal(t, idb, dreq.Conn, "the DREQ named the peer's connection")
			}

			// No DMA for the connection after the failure: its buffers go, old timers pass.
			require.NoError(t, p.hs[0].dev.FreeDMA(src))
			require.NoError(t, p.hs[0].dev.FreeDMA(rcv))
			require.NoError(t, p.fab.Step(pastTimers))
			p.noEvent(t, 0) // once: the DREP (or the DREQ's giving up) and TIMEWAIT say nothing
			if tc.dead {
				assert.Equal(t, uint32(1), p.counters(t, 0).Timeouts, "the DREQ's retries gave up")
			}
			got, err = qa.Poll(16)
			require.NoError(t, err)
			assert.Empty(t, got, "no CQE after the failure's")

			// The number is free again: with the link back, CONNECTs take every number, and it
			// comes round (the free list is first in, first out).
			for i := 0; i < 2; i++ {
				require.NoError(t, p.fab.SetFaults(p.hs[i].dev, p.hs[1-i].dev, sim.LinkFaults{}))
			}
			reused := false
			for i := 0; i < 256 && !reused; i++ {
				id, err := p.cms[0].Connect(context.Background(), newQP(t, p.hs[0]), p.connectParams(1, 7007, nil))
				require.NoError(t, err, "connect %d", i)
				reused = id.Num() == ida.Num()
				if reused {
					assert.NotEqual(t, ida, id, "a new generation")
				}
			}
			assert.True(t, reused, "connection number %d handed out again", ida.Num())
		})
	}
}

// splitCompletions separates send from receive completions, each kind in CQ order.
func splitCompletions(cs []nic.Completion) (sends, recvs []nic.Completion) {
	for _, c := range cs {
		if c.Opcode == regs.CQEOpcodeRecv {
			recvs = append(recvs, c)
		} else {
			sends = append(sends, c)
		}
	}
	return sends, recvs
}

func outstanding(q *nic.QP) [2]int {
	s, r := q.Outstanding()
	return [2]int{s, r}
}

// TestCMStopFlushes: a connection stopped by a DREQ from the peer or by a local DISCONNECT
// completes every WQE still posted on it with FLUSHED (WR IDs as posted, in order) by the event
// that reports the stop (DISCONNECT_REQUEST, DISCONNECTED), and then makes no DMA for it: its
// buffers are freed, the clock runs past every timer, and the DMA guard saw nothing. A waiter
// armed on the CQ before the stop is woken by the flush.
func TestCMStopFlushes(t *testing.T) {
	for _, tc := range []struct {
		name  string
		local bool // the local side disconnects; else the peer does
	}{
		{"dreq from the peer", false},
		{"local disconnect", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), safety)
			defer cancel()
			p := newCMPair(t, pairConfig{seed: 0x21}, failCM)
			// The peer posts no receive: the sends wait out RNR NAKs for ever (RNR retry 7).
			p.tr = nic.Transport{RetryCount: 3, RNRRetry: 7, Timeout: 10, MinRNRTimer: 1}
			require.NoError(t, p.cms[1].Listen(6008, 4))
			qa, _, ida, idb := p.dial(t, 6008, nil, nil)

			src := alloc(t, p.hs[0], 2*1024)
			rcv := alloc(t, p.hs[0], 3*1024)
			for i := 0; i < 3; i++ {
				require.NoError(t, qa.PostRecv(nic.RecvWR{WRID: uint64(100 + i), Addr: rcv.IOVA + uint64(i*1024), Length: 1024}))
			}
			require.NoError(t, qa.PostSend(nic.SendWR{WRID: 1, Addr: src.IOVA, Length: 1024, Signaled: true},
				nic.SendWR{WRID: 2, Addr: src.IOVA + 1024, Length: 1024}))

			// A waiter armed on the CQ before the stop: the flush's CQEs wake it.
			woke := make(chan error, 1)
			require.NoError(t, qa.Arm())
			go func() { _, err := p.hs[0].dev.WaitInterrupt(ctx, qa.Vector()); woke <- err }()

			var ev nic.Event
			if tc.local {
				require.NoError(t, p.cms[0].Disconnect(ida, nil))
				ev = p.event(t, 0, regs.CMEventDisconnected)
				p.event(t, 1, regs.CMEventDisconnectRequest)
			} else {
				require.NoError(t, p.cms[1].Disconnect(idb, nil))
				ev = p.event(t, 0, regs.CMEventDisconnectRequest)
				p.event(t, 1, regs.CMEventDisconnected)
			}
			assert.Equal(t, ida, ev.Conn)
			require.NoError(t, <-woke, "the armed waiter woke")

			got, err := qa.Poll(16)
			require.NoError(t, err)
			sends, recvs := splitCompletions(got)
			require.Len(t, sends, 2, "every send flushed: %+v", got)
			require.Len(t, recvs, 3, "every receive flushed: %+v", got)
			for i, c := range sends {
				assert.Equal(t, regs.CQEStatusFlushed, c.Status, "send %d", i)
				assert.Equal(t, uint64(i+1), c.WRID, "send %d", i)
			}
			for i, c := range recvs {
				assert.Equal(t, regs.CQEStatusFlushed, c.Status, "receive %d", i)
				assert.Equal(t, uint64(100+i), c.WRID, "receive %d", i)
			}
			assert.Equal(t, [2]int{0, 0}, outstanding(qa), "nothing left posted")

			require.NoError(t, p.hs[0].dev.FreeDMA(src))
			require.NoError(t, p.hs[0].dev.FreeDMA(rcv))
			require.NoError(t, p.fab.Step(pastTimers))
			got, err = qa.Poll(16)
			require.NoError(t, err)
			assert.Empty(t, got, "no CQE after the flush")
		})
	}
}

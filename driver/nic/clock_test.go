package nic_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sanoffload/san/driver/nic"
	"github.com/sanoffload/san/driver/regs"
	"github.com/sanoffload/san/hw/sim"
)

// safety bounds a test's waits on the wall clock, so that a broken NIC fails the test instead
// of hanging it; nothing waits for it to pass.
const safety = 20 * time.Second

// waitCQ waits on q's CQ until want completions have arrived, and returns them.
func waitCQ(ctx context.Context, q *nic.QP, want int) ([]nic.Completion, error) {
	var got []nic.Completion
	for {
		cs, err := q.Poll(16)
		if err != nil {
			return got, err
		}
		got = append(got, cs...)
		if len(got) >= want {
			return got, nil
		}
		if err := q.Wait(ctx); err != nil {
			return got, err
		}
	}
}

// TestClockWakesBlockedWaiters: one goroutine blocked in a CM event wait and another blocked in
// a CQ wait both wake when their events happen, with no caller stepping the clock: the main
// goroutine only posts a send and a disconnect (BAR accesses).
func TestClockWakesBlockedWaiters(t *testing.T) {
	p := newCMPair(t, pairConfig{}, simCM)
	require.NoError(t, p.cms[1].Listen(6000, 4))
	qa, qb, _, idb := p.dial(t, 6000, nil, nil)
	src, dst := alloc(t, p.hs[1], 64), alloc(t, p.hs[0], 64)
	copy(src.Bytes, pattern(3, 64))
	require.NoError(t, qa.PostRecv(nic.RecvWR{WRID: 1, Addr: dst.IOVA, Length: 64}))

	ctx, cancel := context.WithTimeout(context.Background(), safety)
	defer cancel()
	cyclesBefore := p.fab.Cycles()
	var wg sync.WaitGroup
	var ev nic.Event
	var evErr, cqErr error
	var cs []nic.Completion
	cqDone := make(chan struct{})
	wg.Add(2)
	go func() {
		defer wg.Done()
		ev, evErr = p.cms[0].Wait(ctx)
	}()
	go func() {
		defer wg.Done()
		defer close(cqDone)
		cs, cqErr = waitCQ(ctx, qa, 1)
	}()
	// Both are blocked now or soon; the message wakes the CQ waiter, then (a disconnect stops
	// the connection, so after it) the DREQ wakes the CM waiter.
	require.NoError(t, qb.PostSend(nic.SendWR{WRID: 2, Addr: src.IOVA, Length: 64, Signaled: true}))
	<-cqDone
	require.NoError(t, p.cms[1].Disconnect(idb, nil))
	wg.Wait()

	require.NoError(t, evErr)
	assert.Equal(t, regs.CMEventDisconnectRequest, ev.Type, "the CM waiter woke with the peer's DREQ")
	require.NoError(t, cqErr)
	require.Len(t, cs, 1)
	assert.Equal(t, uint64(1), cs[0].WRID, "the CQ waiter woke with the receive")
	assert.Equal(t, pattern(3, 64), dst.Bytes)
	// The receive alone takes over 500 cycles after the doorbell (three dependent 150-cycle
	// reads: lat64_pcie), far more than the main goroutine's BAR accesses ran.
	assert.Greater(t, p.fab.Cycles()-cyclesBefore, uint64(500), "the clock ran by itself meanwhile")
}

// TestClockSixteenConnectionsAtOnce: 16 goroutines on one host each connect to a listener on
// the other, where 16 goroutines accept; each pair moves a message each way and the caller
// disconnects, all at once on one fabric. Events are routed to their connections by a
// dispatcher per host (one event ring per NIC); each connection waits on its own vector.
func TestClockSixteenConnectionsAtOnce(t *testing.T) {
	const conns, port = 16, 7000
	// A deterministic clock runs while anyone waits and moves over quiescent stretches, so host
	// work that overlaps NIC time (a goroutine busy while others wait) takes no NIC time at all,
	// and a wait for it can skip to a timeout. Concurrent hosts run in real time, with response
	// timeouts of rdma_cm's order (here 268 ms) rather than simCM's 65 us.
	cfg := simCM
	cfg.ResponseTimeout = 16
	p := newCMPair(t, pairConfig{}, cfg)
	require.NoError(t, p.fab.SetClockMode(sim.RealTime))
	require.NoError(t, p.cms[1].Listen(port, conns))
	ctx, cancel := context.WithTimeout(context.Background(), safety)
	defer cancel()

	// Dispatchers: events by connection; requests to whoever accepts next.
	var mu sync.Mutex
	routes := [2]map[nic.ConnID]chan nic.Event{{}, {}}
	early := [2]map[nic.ConnID][]nic.Event{{}, {}}
	route := func(h int, id nic.ConnID) chan nic.Event {
		mu.Lock()
		defer mu.Unlock()
		ch := make(chan nic.Event, 8)
		for _, ev := range early[h][id] {
			ch <- ev
		}
		delete(early[h], id)
		routes[h][id] = ch
		return ch
	}
	requests := make(chan nic.Event, conns)
	dctx, stop := context.WithCancel(ctx)
	var dwg sync.WaitGroup
	for h := 0; h < 2; h++ {
		dwg.Add(1)
		go func() {
			defer dwg.Done()
			for {
				ev, err := p.cms[h].Wait(dctx)
				if err != nil {
					return
				}
				if ev.Type == regs.CMEventRequest {
					requests <- ev
					continue
				}
				mu.Lock()
				if ch, ok := routes[h][ev.Conn]; ok {
					ch <- ev
				} else {
					early[h][ev.Conn] = append(early[h][ev.Conn], ev)
				}
				mu.Unlock()
			}
		}()
	}
	defer func() {
		stop()
		dwg.Wait()
	}()

	expect := func(ch chan nic.Event, want regs.CMEvent) error {
		select {
		case ev := <-ch:
			if ev.Type != want {
				return fmt.Errorf("event %v (reason %v) where %v was due", ev.Type, ev.Reason, want)
			}
			return nil
		case <-ctx.Done():
			return fmt.Errorf("waiting for %v: %w", want, ctx.Err())
		}
	}
	// pingPong sends a message of its own on q and receives the peer's.
	pingPong := func(h *host, q *nic.QP, seed int64) error {
		src, err := h.nic.Device().AllocDMA(256)
		if err != nil {
			return err
		}
		dst, err := h.nic.Device().AllocDMA(256)
		if err != nil {
			return err
		}
		copy(src.Bytes, pattern(seed, 256))
		if err := q.PostRecv(nic.RecvWR{WRID: 1, Addr: dst.IOVA, Length: 256}); err != nil {
			return err
		}
		if err := q.PostSend(nic.SendWR{WRID: 2, Addr: src.IOVA, Length: 256, Signaled: true}); err != nil {
			return err
		}
		cs, err := waitCQ(ctx, q, 2)
		if err != nil {
			st, _ := q.State()
			sends, recvs := q.Outstanding()
			cnt, _ := h.nic.Counters()
			return fmt.Errorf("qp %d: %d completions of 2 (%+v), state %+v, outstanding %d sends %d receives, counters %+v: %w",
				q.Num(), len(cs), cs, st, sends, recvs, cnt, err)
		}
		for _, c := range cs {
			if c.Status != regs.CQEStatusOk {
				return fmt.Errorf("completion %+v", c)
			}
		}
		return nil
	}

	errs := make(chan error, 2*conns)
	// A disconnect stops the connection at once, so a caller disconnects only once its peer has
	// its completions (acked[i], closed by whoever accepted caller i, named in its REQ's data).
	var acked [conns]chan struct{}
	for i := range acked {
		acked[i] = make(chan struct{})
	}
	var wg sync.WaitGroup
	for i := 0; i < conns; i++ {
		wg.Add(2)
		go func() { // the caller
			defer wg.Done()
			errs <- func() error {
				q, err := p.hs[0].nic.NewQP(nic.QPConfig{Vector: 8 + i})
				if err != nil {
					return err
				}
				id, err := p.cms[0].Connect(ctx, q, p.connectParams(1, port, []byte{byte(i)}))
				if err != nil {
					return err
				}
				ch := route(0, id)
				if err := expect(ch, regs.CMEventEstablished); err != nil {
					return fmt.Errorf("caller %d: %w", i, err)
				}
				if err := pingPong(p.hs[0], q, int64(100+i)); err != nil {
					return fmt.Errorf("caller %d: %w", i, err)
				}
				select {
				case <-acked[i]:
				case <-ctx.Done():
					return ctx.Err()
				}
				if err := p.cms[0].Disconnect(id, nil); err != nil {
					return err
				}
				return expect(ch, regs.CMEventDisconnected)
			}()
		}()
		go func() { // the acceptor
			defer wg.Done()
			errs <- func() error {
				var req nic.Event
				select {
				case req = <-requests:
				case <-ctx.Done():
					return ctx.Err()
				}
				q, err := p.hs[1].nic.NewQP(nic.QPConfig{Vector: 8 + i})
				if err != nil {
					return err
				}
				ch := route(1, req.Conn)
				if err := p.cms[1].Accept(req.Conn, q, nic.AcceptParams{UDPSource: 0xC200, StartPSN: 0x1000,
					Transport: nic.DefaultTransport}); err != nil {
					return err
				}
				if err := expect(ch, regs.CMEventEstablished); err != nil {
					return fmt.Errorf("acceptor %d: %w", i, err)
				}
				if err := pingPong(p.hs[1], q, int64(200+i)); err != nil {
					return fmt.Errorf("acceptor %d: %w", i, err)
				}
				if len(req.Data) == 0 || int(req.Data[0]) >= conns {
					return fmt.Errorf("acceptor %d: request data %x names no caller", i, req.Data)
				}
				close(acked[req.Data[0]])
				return expect(ch, regs.CMEventDisconnectRequest)
			}()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		assert.NoError(t, err)
	}
}

// farTimeout runs one send into a dead link with the given ACK timeout code and RetryCount 0,
// and returns the cycle in which the NIC raised the RETRY_EXCEEDED completion's interrupt, the
// cycle of the send's last frame, and the fabric.
func farTimeout(t *testing.T, timeout uint8, skip bool) (irq, sent uint64, fab *sim.Fabric) {
	fab, hs := newPair(t, pairConfig{})
	require.NoError(t, fab.SetSkip(skip))
	tr := nic.Transport{RetryCount: 0, RNRRetry: 7, Timeout: timeout, MinRNRTimer: 1}
	qps := connectWith(t, hs, 3, nic.QPConfig{Vector: 2}, [2]uint32{100, 200}, tr)
	drop, err := sim.FaultsOfKind("drop", 1, 1)
	require.NoError(t, err)
	require.NoError(t, fab.SetFaults(hs[0].dev, hs[1].dev, drop))
	require.NoError(t, hs[0].dev.Capture(true))
	src := alloc(t, hs[0], 64)
	require.NoError(t, qps[0].PostSend(nic.SendWR{WRID: 9, Addr: src.IOVA, Length: 64, Signaled: true}))
	ctx, cancel := context.WithTimeout(context.Background(), safety)
	defer cancel()
	require.NoError(t, qps[0].Arm())
	_, err = hs[0].dev.WaitInterrupt(ctx, 2)
	require.NoError(t, err)
	irq = fab.Cycles()
	cs, err := qps[0].Poll(4)
	require.NoError(t, err)
	require.Len(t, cs, 1)
	require.Equal(t, regs.CQEStatusRetryExceeded, cs[0].Status)
	frames, err := hs[0].dev.Transmitted()
	require.NoError(t, err)
	require.Len(t, frames, 1, "the send, once: no retries")
	return irq, frames[0].Last, fab
}

// TestClockSkipIsExact: a retransmit timeout 655,360 cycles away fires in the same cycle whether
// the clock runs every cycle or moves over the quiescent stretch.
func TestClockSkipIsExact(t *testing.T) {
	runIRQ, runSent, runFab := farTimeout(t, 10, false)
	skipIRQ, skipSent, skipFab := farTimeout(t, 10, true)
	assert.Equal(t, runSent, skipSent)
	assert.Equal(t, runIRQ, skipIRQ, "the timeout fires in the same cycle")
	assert.Zero(t, runFab.SkippedCycles())
	assert.Greater(t, skipFab.SkippedCycles(), (skipIRQ-skipSent)*9/10, "most of the wait moved over")
	t.Logf("timeout interrupt in cycle %d, %d cycles after the send (%d skipped)", skipIRQ, skipIRQ-skipSent,
		skipFab.SkippedCycles())
}

// TestClockFarTimeoutFiresOnTime: a retransmit timeout of 4.096 us x 2^20 (about 4.3 s, 671
// million cycles) fires within its tick and the timer scan of its deadline, in a run that
// moves over nearly all of it.
func TestClockFarTimeoutFiresOnTime(t *testing.T) {
	start := time.Now()
	irq, sent, fab := farTimeout(t, 20, true)
	const tickCyc = 160 // 1.024 us at 156.25 MHz
	ticks := uint64(4) << 20
	waited := irq - sent
	assert.GreaterOrEqual(t, waited, (ticks-1)*tickCyc, "not early")
	assert.LessOrEqual(t, waited, ticks*tickCyc+256+64, "within the tick, the scan and the completion")
	assert.Greater(t, fab.SkippedCycles(), waited*99/100)
	t.Logf("waited %d cycles (%.2f s of NIC time) in %v of wall time", waited, float64(waited)/156.25e6, time.Since(start))
}

// TestClockRealTimeTimersFollowTheWall: on a real-time clock the NIC's time is the wall clock's,
// however slowly the model runs: a retransmit timeout of 4.096 us x 2^12 (16.8 ms, 2.6 million
// cycles, far more than the model runs in that time) fires no earlier than that much wall time
// after the send, and the wait for it costs little CPU (the clock sleeps while quiescent).
func TestClockRealTimeTimersFollowTheWall(t *testing.T) {
	fab, hs := newPair(t, pairConfig{})
	require.NoError(t, fab.SetClockMode(sim.RealTime))
	assert.Equal(t, sim.RealTime, hs[0].dev.ClockMode())
	const timeout = 12
	tr := nic.Transport{RetryCount: 0, RNRRetry: 7, Timeout: timeout, MinRNRTimer: 1}
	qps := connectWith(t, hs, 3, nic.QPConfig{Vector: 2}, [2]uint32{100, 200}, tr)
	drop, err := sim.FaultsOfKind("drop", 1, 1)
	require.NoError(t, err)
	require.NoError(t, fab.SetFaults(hs[0].dev, hs[1].dev, drop))
	src := alloc(t, hs[0], 64)
	ctx, cancel := context.WithTimeout(context.Background(), safety)
	defer cancel()
	tick0, err := hs[0].dev.TimeTick()
	require.NoError(t, err)
	start := time.Now()
	require.NoError(t, qps[0].PostSend(nic.SendWR{WRID: 9, Addr: src.IOVA, Length: 64, Signaled: true}))
	cs, err := waitCQ(ctx, qps[0], 1)
	require.NoError(t, err)
	waited := time.Since(start)
	require.Equal(t, regs.CQEStatusRetryExceeded, cs[0].Status)
	tick1, err := hs[0].dev.TimeTick()
	require.NoError(t, err)
	ticks := uint32(4) << timeout
	want := time.Duration(ticks-1) * 1024 * time.Nanosecond
	assert.GreaterOrEqual(t, waited, want, "never before its wall-clock deadline")
	assert.GreaterOrEqual(t, tick1-tick0, ticks-1, "the NIC's time moved with the wall")
	cycles := fab.Cycles()
	assert.Less(t, cycles, uint64(ticks)*160, "the model ran fewer cycles than the hardware would have")
	t.Logf("timeout after %v of wall time (deadline %v), %d NIC ticks, %d cycles run", waited, want, tick1-tick0, cycles)
}

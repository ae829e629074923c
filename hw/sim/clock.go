package sim

import (
	"math"
	"sync"
	"time"
)

// ClockMode says how a simulated NIC's time relates to the wall clock.
type ClockMode int

const (
	// Deterministic time is the NIC's cycles at its build clock, as a board's shell counts it:
	// the clock runs while a caller waits on it (or steps it, or accesses the NIC), moves over
	// quiescent stretches at once and exactly, and a single-threaded run repeats bit for bit.
	// Host work takes no NIC time, so a goroutine busy while another waits may find that the
	// clock skipped to a timeout meanwhile: concurrent hosts belong in RealTime.
	Deterministic ClockMode = iota
	// RealTime time follows the wall clock however slowly the model runs, and never runs
	// ahead of it: the clock runs by itself, and its timers fire at their wall-clock deadlines,
	// for a NIC whose peer is another process or a real stack. A quiescent clock sleeps until
	// its next deadline or the next host access or frame.
	RealTime
)

func (m ClockMode) String() string {
	if m == RealTime {
		return "real time"
	}
	return "deterministic"
}

// runChunk is how many cycles the clock's goroutine runs one by one between looks at its
// waiters (quiescent stretches moved over do not count); it stops sooner at an interrupt.
const runChunk = 256

// clock is what NICs on one clock share: the lock that serialises every access to any of them
// (an access to one runs the clock of all), the NICs, and the goroutine that runs the clock
// for callers blocked in WaitInterrupt (deterministic) or always (real time).
type clock struct {
	mu   sync.Mutex
	nics []*NIC // guarded by mu; the NICs on this clock

	// All guarded by mu.
	mode  ClockMode
	waits map[*irqWait]struct{} // callers blocked in WaitInterrupt
	// quiet: the last run found the clock quiescent and no host access has come since; with
	// wakeAt set (real time) it is due to run again then.
	quiet   bool
	wakeAt  time.Time
	started bool
	stop    bool
	noSkip  bool // quiescent stretches are run, not moved over (Fabric.SetSkip)

	kick chan struct{} // buffered: something changed (a host access, a waiter, a mode, close)
	done chan struct{} // closed when the goroutine has ended
}

// irqWait is one caller blocked in WaitInterrupt; ch is closed when it should look again.
type irqWait struct {
	nic    *NIC
	vector int
	until  uint64 // with Config.IRQWaitCycles: the cycle at which the wait gives up; else 0
	ch     chan struct{}
}

func newClock(mode ClockMode) *clock {
	return &clock{mode: mode, waits: map[*irqWait]struct{}{}, kick: make(chan struct{}, 1),
		done: make(chan struct{})}
}

// startLocked starts the goroutine once the clock has a NIC.
// Preconditions: c.mu is held.
func (c *clock) startLocked() {
	if c.started {
		return
	}
	c.started = true
	go c.loop()
}

// pokeLocked tells the goroutine that the NICs' inputs changed: a quiescent clock is so no more.
// Only a goroutine asleep on a quiescent clock needs waking: otherwise it is running already, or
// has no reason to run (a deterministic clock nobody waits on), and waking it on every BAR
// access would cost a context switch each.
// Preconditions: c.mu is held.
func (c *clock) pokeLocked() {
	if c.quiet {
		c.quiet = false
		c.signal()
	}
}

func (c *clock) signal() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// stopLocked ends the goroutine; the caller waits for c.done after unlocking.
// Preconditions: c.mu is held.
func (c *clock) stopLocked() (wait bool) {
	if !c.started || c.stop {
		return false
	}
	c.stop = true
	for w := range c.waits {
		close(w.ch)
		delete(c.waits, w)
	}
	c.signal()
	return true
}

// loop runs the clock: in chunks while it should run, else asleep until kicked (or, in real
// time, until the next deadline).
func (c *clock) loop() {
	defer close(c.done)
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		c.mu.Lock()
		if c.stop {
			c.mu.Unlock()
			return
		}
		if c.quiet && c.mode == RealTime && !c.wakeAt.IsZero() && !time.Now().Before(c.wakeAt) {
			c.quiet = false
		}
		run := len(c.nics) > 0 && !c.quiet && (c.mode == RealTime || len(c.waits) > 0)
		if run {
			c.runLocked()
			c.mu.Unlock()
			continue
		}
		var due <-chan time.Time
		if c.quiet && c.mode == RealTime && !c.wakeAt.IsZero() {
			d := time.Until(c.wakeAt)
			if timer == nil {
				timer = time.NewTimer(d)
			} else {
				timer.Reset(d)
			}
			due = timer.C
		}
		c.mu.Unlock()
		select {
		case <-c.kick:
		case <-due:
		}
	}
}

// runLocked runs one chunk of the clock and wakes the waiters it satisfied.
// Preconditions: c.mu is held; c.nics is not empty.
func (c *clock) runLocked() {
	lead := c.nics[0]
	_, res := lead.model.run(math.MaxUint64/2, runChunk, true, true)
	for _, x := range c.nics {
		x.collectLocked()
	}
	if res.why == runQuiet {
		c.quiet = true
		c.wakeAt = time.Time{}
		if c.mode == RealTime && res.wakeIn >= 0 {
			c.wakeAt = time.Now().Add(res.wakeIn)
		}
	}
	for w := range c.waits {
		n := w.nic
		faulted := false
		if n.model != nil {
			cnt, _ := n.model.dmaFaults()
			faulted = cnt != n.faults
		}
		// Bounded waiters look again when their bound has passed, or when a deterministic clock
		// has gone quiet for good.
		bounded := w.until > 0
		expired := bounded && n.model != nil && n.model.cycles() >= w.until
		quietForGood := bounded && c.quiet && c.mode == Deterministic
		if n.model == nil || n.pending[w.vector] > 0 || faulted || expired || quietForGood {
			close(w.ch)
			delete(c.waits, w)
		}
	}
}

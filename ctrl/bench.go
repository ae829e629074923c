package ctrl

import (
	"errors"
	"fmt"
	"time"

	"github.com/sanoffload/san/driver/nic"
	"github.com/sanoffload/san/driver/regs"
	"github.com/sanoffload/san/hw/sim"
	"github.com/sanoffload/san/hw/wire"
	"golang.org/x/sys/unix"
)

// Figure is one measured figure of docs/METRICS: its value, unit and goal.
type Figure struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Unit  string  `json:"unit"`
	Goal  string  `json:"goal"`
	Note  string  `json:"note,omitempty"`
}

// latency measures one 64-byte SEND: from the cycle the sender's doorbell write is taken to the
// cycle the receiver's CQE has been written whole (its phase bit, in its last byte, is set).
func latency(c SimConfig, dma sim.DMAModel) (uint64, error) {
	p, err := newSimPair(c, pairOptions{dma: &dma, entries: 16})
	if err != nil {
		return 0, err
	}
	defer p.fab.Close()
	src, err := p.dev[0].AllocDMA(64)
	if err != nil {
		return 0, err
	}
	dst, err := p.dev[1].AllocDMA(64)
	if err != nil {
		return 0, err
	}
	if err := p.qp[1].PostRecv(nic.RecvWR{WRID: 1, Addr: dst.IOVA, Length: 64}); err != nil {
		return 0, err
	}
	if err := p.fab.Step(100); err != nil { // let the receive doorbell settle
		return 0, err
	}
	cq := regs.CQE(p.qp[1].CQEntry(0))
	if err := p.qp[0].PostSend(nic.SendWR{WRID: 2, Addr: src.IOVA, Length: 64}); err != nil {
		return 0, err
	}
	start := p.dev[0].LastWriteCycle()
	for i := 0; i < 100000; i++ {
		if cq.FlagsPhase() == 1 {
			// The CQE's last beat was taken at the edge ending the previous cycle.
			return p.fab.Cycles() - 1 - start, nil
		}
		if err := p.fab.Step(1); err != nil {
			return 0, err
		}
	}
	return 0, errors.New("bench: the 64-byte message never completed")
}

// stream sends n messages of size bytes back to back and returns the sender's transmitted data
// frames, the receiver's ACK frames and the cycles run.
func stream(c SimConfig, dma sim.DMAModel, n, size int) (data, acks []sim.Frame, cycles uint64, wall time.Duration, err error) {
	p, err := newSimPair(c, pairOptions{dma: &dma, entries: 1024, capture: true})
	if err != nil {
		return nil, nil, 0, 0, err
	}
	defer p.fab.Close()
	src, err := p.dev[0].AllocDMA(n * size)
	if err != nil {
		return nil, nil, 0, 0, err
	}
	dst, err := p.dev[1].AllocDMA(n * size)
	if err != nil {
		return nil, nil, 0, 0, err
	}
	var sends []nic.SendWR
	var recvs []nic.RecvWR
	for i := 0; i < n; i++ {
		off := uint64(i * size)
		sends = append(sends, nic.SendWR{WRID: uint64(i), Addr: src.IOVA + off, Length: uint32(size), Signaled: i == n-1})
		recvs = append(recvs, nic.RecvWR{WRID: uint64(i), Addr: dst.IOVA + off, Length: uint32(size)})
	}
	if err := p.qp[1].PostRecv(recvs...); err != nil {
		return nil, nil, 0, 0, err
	}
	if err := p.qp[0].PostSend(sends...); err != nil {
		return nil, nil, 0, 0, err
	}
	start := p.fab.Cycles()
	t0 := time.Now()
	got := 0
	for got < n {
		if p.fab.Cycles()-start > uint64(n*(size+2000)) {
			return nil, nil, 0, 0, fmt.Errorf("bench: %d of %d messages after %d cycles", got, n, p.fab.Cycles()-start)
		}
		if err := p.fab.Step(1024); err != nil {
			return nil, nil, 0, 0, err
		}
		cs, err := p.qp[1].Poll(n)
		if err != nil {
			return nil, nil, 0, 0, err
		}
		got += len(cs)
	}
	wall = time.Since(t0)
	cycles = p.fab.Cycles() - start
	if data, err = p.dev[0].Transmitted(); err != nil {
		return nil, nil, 0, 0, err
	}
	if acks, err = p.dev[1].Transmitted(); err != nil {
		return nil, nil, 0, 0, err
	}
	return data, acks, cycles, wall, nil
}

// frameBeats is the beats a frame of n bytes takes on the 64-bit link.
func frameBeats(n int) uint64 { return uint64(n+7) / 8 }

// linkShare is the fraction of the cycles from the first frame's first beat to the last frame's
// last beat that the frames' beats fill: 1 when they stream back to back.
func linkShare(frames []sim.Frame) float64 {
	if len(frames) == 0 {
		return 0
	}
	var beats uint64
	for _, f := range frames {
		beats += frameBeats(len(f.Bytes))
	}
	span := frames[len(frames)-1].Last - frames[0].First + 1
	return float64(beats) / float64(span)
}

// ackTurn is the receiver's turnaround: from the cycle the last beat of the sender's AckReq
// packet reaches the receiver (the cycle after it was sent, on a zero-latency link) to the
// first beat of the ACK for its PSN.
func ackTurn(data, acks []sim.Frame) (uint64, error) {
	for _, a := range acks {
		af, err := wire.Parse(a.Bytes)
		if err != nil || af.AETH == nil {
			continue
		}
		for _, d := range data {
			df, err := wire.Parse(d.Bytes)
			if err == nil && df.BTH.AckReq && df.BTH.PSN == af.BTH.PSN && a.First > d.Last {
				return a.First - (d.Last + 1), nil
			}
		}
	}
	return 0, errors.New("bench: no ACK matched a data packet")
}

// gbnRestart measures the sender's go-back-N restart: a 64-byte message is lost, the next one
// makes the receiver NAK (PSN sequence error), and the figure is from the cycle the NAK's last
// beat reaches the sender to the first beat of the lost packet sent again. Ideal DMA and a
// zero-latency link, as lat64.
func gbnRestart(c SimConfig) (uint64, error) {
	p, err := newSimPair(c, pairOptions{dma: &sim.DMAModel{}, entries: 16, capture: true})
	if err != nil {
		return 0, err
	}
	defer p.fab.Close()
	src, err := p.dev[0].AllocDMA(128)
	if err != nil {
		return 0, err
	}
	dst, err := p.dev[1].AllocDMA(128)
	if err != nil {
		return 0, err
	}
	for i := 0; i < 2; i++ {
		if err := p.qp[1].PostRecv(nic.RecvWR{WRID: uint64(i), Addr: dst.IOVA + uint64(64*i), Length: 64}); err != nil {
			return 0, err
		}
	}
	dead := sim.LinkFaults{Drop: sim.LinkFault{P: 1}}
	if err := p.fab.SetFaults(p.dev[0], p.dev[1], dead); err != nil {
		return 0, err
	}
	if err := p.qp[0].PostSend(nic.SendWR{WRID: 0, Addr: src.IOVA, Length: 64}); err != nil {
		return 0, err
	}
	for i := 0; ; i++ {
		sent, err := p.dev[0].Transmitted()
		if err != nil {
			return 0, err
		}
		if len(sent) > 0 {
			break
		}
		if i > 1000 {
			return 0, errors.New("bench: the first message was never sent")
		}
		if err := p.fab.Step(1); err != nil {
			return 0, err
		}
	}
	if err := p.fab.SetFaults(p.dev[0], p.dev[1], sim.LinkFaults{}); err != nil {
		return 0, err
	}
	if err := p.qp[0].PostSend(nic.SendWR{WRID: 1, Addr: src.IOVA + 64, Length: 64, Signaled: true}); err != nil {
		return 0, err
	}
	if err := p.fab.Step(2000); err != nil {
		return 0, err
	}
	data, err := p.dev[0].Transmitted()
	if err != nil {
		return 0, err
	}
	acks, err := p.dev[1].Transmitted()
	if err != nil {
		return 0, err
	}
	for _, a := range acks {
		af, err := wire.Parse(a.Bytes)
		if err != nil || af.AETH == nil || af.AETH.Syndrome != uint8(regs.AethSyndromeNAKPSNSeq) {
			continue
		}
		for _, d := range data {
			df, err := wire.Parse(d.Bytes)
			if err == nil && df.BTH.PSN == af.BTH.PSN && d.First > a.Last {
				return d.First - (a.Last + 1), nil
			}
		}
	}
	return 0, errors.New("bench: no NAK followed by a retransmission")
}

// lossMatrix runs the loss matrix (every fault kind at 1, 5 and 20 %) and returns the fraction
// of messages delivered exactly once, in order and byte-exact.
func lossMatrix(c SimConfig) (float64, string, error) {
	sent, delivered := 0, 0
	for k, kind := range sim.FaultKinds {
		for i, pr := range []float64{0.01, 0.05, 0.20} {
			r, err := SimLoss(c, LossOptions{Kind: kind, P: pr, Messages: 40, Seed: int64(100 + 10*k + i)})
			if err != nil {
				return 0, "", err
			}
			sent += r.Sent
			delivered += r.Delivered
		}
	}
	return float64(delivered) / float64(sent), fmt.Sprintf("%d of %d messages over %d runs", delivered, sent, 3*len(sim.FaultKinds)), nil
}

// goodputUnderLoss is the goodput of 1 KiB messages over a link dropping 1 % of frames each way,
// as a fraction of the same stream's over a clean link.
func goodputUnderLoss(c SimConfig) (float64, error) {
	var rate [2]float64
	for i, pr := range []float64{0, 0.01} {
		kind := ""
		if pr > 0 {
			kind = "drop"
		}
		r, err := SimLoss(c, LossOptions{Kind: kind, P: pr, Messages: 300, Size: 1024, Seed: 7})
		if err != nil {
			return 0, err
		}
		if r.Delivered != r.Sent {
			return 0, fmt.Errorf("bench: goodput run delivered %d of %d", r.Delivered, r.Sent)
		}
		rate[i] = float64(r.Bytes) / float64(r.Cycles)
	}
	return rate[1] / rate[0], nil
}

// SimBench measures the simulated hardware figures of docs/METRICS on two NICs linked back to
// back: cycles are exact, and only sim_speed depends on the machine.
func SimBench(c SimConfig) ([]Figure, error) {
	var figs []Figure
	ideal, err := latency(c, sim.DMAModel{})
	if err != nil {
		return nil, err
	}
	figs = append(figs, Figure{"lat64", float64(ideal), "cycles", "<= 80", "ideal DMA, zero-latency link"})
	pcie, err := latency(c, sim.PCIeDMA)
	if err != nil {
		return nil, err
	}
	figs = append(figs, Figure{"lat64_pcie", float64(pcie), "cycles", "<= 500", "read latency 150 cycles, posted writes"})

	data, acks, cycles, wall, err := stream(c, sim.PCIeDMA, 400, 1024)
	if err != nil {
		return nil, err
	}
	figs = append(figs, Figure{"tput_1k", linkShare(data), "fraction", ">= 0.99",
		"400 x 1 KiB messages at PMTU 1024, PCIe-like DMA: frame beats / cycles spanned"})
	turn, err := ackTurn(data, acks)
	if err != nil {
		return nil, err
	}
	figs = append(figs, Figure{"ack_turn", float64(turn), "cycles", "<= 16", "last beat in -> first ACK beat out"})
	figs = append(figs, Figure{"sim_speed", float64(cycles) / wall.Seconds(), "cycles/s", ">= 2000000",
		"one NIC pair streaming 1 KiB messages, capture on"})

	data, _, _, _, err = stream(c, sim.PCIeDMA, 1000, 64)
	if err != nil {
		return nil, err
	}
	figs = append(figs, Figure{"rate64", linkShare(data), "fraction", ">= 0.95",
		"1000 x 64 B messages, PCIe-like DMA: frame beats / cycles spanned"})

	gbn, err := gbnRestart(c)
	if err != nil {
		return nil, err
	}
	figs = append(figs, Figure{"gbn_restart", float64(gbn), "cycles", "<= 32",
		"NAK (PSN sequence error) last beat in -> first beat of the lost 64 B packet sent again; ideal DMA"})
	survived, note, err := lossMatrix(c)
	if err != nil {
		return nil, err
	}
	figs = append(figs, Figure{"loss_survived", survived, "fraction", "1",
		"drop/corrupt/duplicate/reorder/mixed at p = 1, 5, 20 % both ways: " + note})
	gp, err := goodputUnderLoss(c)
	if err != nil {
		return nil, err
	}
	figs = append(figs, Figure{"goodput_1pct", gp, "fraction", "record",
		"300 x 1 KiB messages, 1 % of frames dropped each way, vs the same over a clean link"})

	setup, contexts, err := cmSetup(c)
	if err != nil {
		return nil, err
	}
	figs = append(figs, Figure{"cm_setup", float64(setup), "cycles", "<= 1000",
		"CONNECT call -> REQUEST event, plus ACCEPT call -> both ESTABLISHED events (REQ/REP/RTU); PCIe-like DMA"})
	rate, err := cmRate(c, 200)
	if err != nil {
		return nil, err
	}
	figs = append(figs, Figure{"cm_rate", rate, "setups/s", ">= 100000",
		"200 setups, CONNECTs kept 16 ahead, each REQUEST accepted as it arrives; one NIC pair, host commands included"})
	figs = append(figs, Figure{"qps", float64(contexts), "contexts", ">= 256",
		"connection contexts in the reference build (BUILD_N_QP), every one usable at once (connection c is QP N_QP + c)"})
	idle, err := idleCPU(c)
	if err != nil {
		return nil, err
	}
	figs = append(figs, Figure{"idle_cpu", idle.Seconds(), "CPU s per wall s", "<= 0.01",
		"two NICs on a real-time clock, a listener open, CM enabled, nothing in flight; process rusage over 1 s"})
	return figs, nil
}

// idleCPU is the process CPU time an idle pair of NICs on a real-time clock costs over a
// wall-clock second: listener open, connection manager and a connection's QPs enabled,
// nothing in flight. The clock's goroutine finds it quiescent and sleeps until a deadline or
// an access; this is measured from the process's own rusage, not timed in a test.
func idleCPU(c SimConfig) (time.Duration, error) {
	p, err := newCMPair(c, ARPConfig{}, false)
	if err != nil {
		return 0, err
	}
	defer p.fab.Close()
	if err := p.cm[1].Listen(9000, 8); err != nil {
		return 0, err
	}
	if err := p.fab.SetClockMode(sim.RealTime); err != nil {
		return 0, err
	}
	// Let the clock settle into quiescence (the timer scans park within a few hundred cycles).
	time.Sleep(200 * time.Millisecond)
	before, err := processCPU()
	if err != nil {
		return 0, err
	}
	time.Sleep(time.Second)
	after, err := processCPU()
	if err != nil {
		return 0, err
	}
	return after - before, nil
}

// processCPU is the user and system time the process has used.
func processCPU() (time.Duration, error) {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return 0, fmt.Errorf("getrusage: %w", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}

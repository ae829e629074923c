package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/sanoffload/san/ctrl"
)

func newSimCmd(a *app) *cobra.Command {
	sim := &cobra.Command{
		Use:   "sim",
		Short: "Work with the simulated NIC (the Verilated RTL)",
	}
	info := &cobra.Command{
		Use:   "info",
		Short: "Bring up a simulated NIC and show its identity as read through BAR0",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := a.config()
			if err != nil {
				return err
			}
			info, err := ctrl.ReadSimInfo(cfg.Sim)
			if err != nil {
				return err
			}
			return a.render(cmd.OutOrStdout(), info, simInfoRows(info))
		},
	}
	info.Flags().String("model", "", "Verilated model library (default: search, see docs)")
	info.Flags().Int("host-memory-mib", 0, "simulated host memory for DMA in MiB (default 64)")
	mustBind(a, ctrl.KeySimModel, info, "model")
	mustBind(a, ctrl.KeySimHostMemory, info, "host-memory-mib")
	sim.AddCommand(info)

	var opts ctrl.ExchangeOptions
	exchange := &cobra.Command{
		Use:   "exchange",
		Short: "Run a scripted SEND/RECV exchange between two simulated NICs and check every message",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := a.config()
			if err != nil {
				return err
			}
			rep, err := ctrl.SimExchange(cfg.Sim, opts)
			if err != nil {
				return err
			}
			return a.render(cmd.OutOrStdout(), rep, []row{
				{"messages", fmt.Sprintf("%d", rep.Messages)},
				{"bytes", fmt.Sprintf("%d", rep.Bytes)},
				{"cycles", fmt.Sprintf("%d", rep.Cycles)},
				{"frames", fmt.Sprintf("%d", rep.Frames)},
				{"dropped by the link", fmt.Sprintf("%d", rep.Dropped)},
				{"recovery", fmt.Sprintf("%d timeouts, %d PSN sequence NAKs, %d RNR NAKs", rep.Timeouts, rep.SeqNAKs, rep.RNRNAKs)},
				{"pcap", rep.Pcap},
			})
		},
	}
	exchange.Flags().StringVar(&opts.Pcap, "pcap", "", "write the link's frames to this pcap file")
	exchange.Flags().IntVar(&opts.PMTU, "pmtu", 1024, "path MTU in bytes (256..4096)")
	exchange.Flags().Uint32Var(&opts.Latency, "latency", 10, "link latency in cycles")
	exchange.Flags().Int64Var(&opts.Seed, "seed", 1, "seed of the message contents")
	exchange.Flags().IntSliceVar(&opts.Sizes, "sizes", nil, "message sizes (default: the edges of segmentation)")
	exchange.Flags().Float64Var(&opts.Drop, "drop", 0, "probability that the link loses a frame, each direction (the NICs recover)")
	exchange.Flags().Uint64Var(&opts.LateRecv, "late-recv", 0, "post the receive buffers this many cycles late (provokes RNR NAKs)")
	sim.AddCommand(exchange)

	var cmPcap string
	cm := &cobra.Command{
		Use:   "cm",
		Short: "Run the connection manager's vocabulary between two simulated NICs (REJ, MRA, REQ/REP/RTU, DREQ/DREP)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := a.config()
			if err != nil {
				return err
			}
			rep, err := ctrl.SimCM(cfg.Sim, cfg.ARP, cmPcap)
			if err != nil {
				return err
			}
			return a.render(cmd.OutOrStdout(), rep, []row{
				{"connections", fmt.Sprintf("%d", rep.Connections)},
				{"rejected", fmt.Sprintf("%d", rep.Rejected)},
				{"cycles", fmt.Sprintf("%d", rep.Cycles)},
				{"frames", fmt.Sprintf("%d", rep.Frames)},
				{"pcap", rep.Pcap},
			})
		},
	}
	cm.Flags().StringVar(&cmPcap, "pcap", "", "write the link's frames to this pcap file")
	sim.AddCommand(cm)
	return sim
}

func newCaptureCmd(a *app) *cobra.Command {
	capture := &cobra.Command{
		Use:   "capture",
		Short: "Work with packet captures",
	}
	var expect []string
	check := &cobra.Command{
		Use:   "check FILE...",
		Short: "Check with tshark that every frame decodes as RoCEv2 (with a correct ICRC) or ARP, with no expert errors",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, files []string) error {
			var reps []ctrl.CaptureReport
			var rows []row
			var firstErr error
			for _, f := range files {
				rep, err := ctrl.CheckCapture(f)
				if err == nil {
					err = rep.Expect(expect)
				}
				reps = append(reps, rep)
				verdict := "ok"
				if err != nil {
					verdict = err.Error()
					if firstErr == nil {
						firstErr = err
					}
				}
				arp := ""
				if n := rep.ARPRequests + rep.ARPReplies; n > 0 {
					arp = fmt.Sprintf(", %d ARP (%d requests, %d replies, %d answering)", n, rep.ARPRequests, rep.ARPReplies, rep.ARPAnswered)
				}
				rows = append(rows, row{f, fmt.Sprintf("%d frames, %d RoCEv2 (%d ACKs, %d PSN sequence NAKs, %d RNR NAKs)%s: %s",
					rep.Frames, rep.RoCE, rep.ACKs, rep.SeqNAKs, rep.RNRNAKs, arp, verdict)})
			}
			if err := a.render(cmd.OutOrStdout(), reps, rows); err != nil {
				return err
			}
			return firstErr
		},
	}
	check.Flags().StringSliceVar(&expect, "expect", nil, "what the capture must hold: seq-nak, rnr-nak (acknowledgements), cm (a whole connection's CM messages matching its data), arp (an ARP request and the reply answering it)")
	capture.AddCommand(check)
	return capture
}

func mustBind(a *app, key string, cmd *cobra.Command, flag string) {
	if err := a.v.BindPFlag(key, cmd.Flags().Lookup(flag)); err != nil {
		panic(fmt.Sprintf("bind flag %s: %v", flag, err)) // a programming error: the flag is defined above
	}
}

func simInfoRows(i ctrl.SimInfo) []row {
	return []row{
		{"device", i.Device},
		{"type", fmt.Sprintf("SAN NIC (0x%08x)", i.Type)},
		{"version", i.Version()},
		{"contract", fmt.Sprintf("0x%08x", i.ContractID)},
		{"data width", fmt.Sprintf("%d bits", i.DataWidth)},
		{"connections", fmt.Sprintf("%d", i.NQP)},
		{"clock", fmt.Sprintf("%.2f MHz", float64(i.ClockKHz)/1000)},
		{"msix vectors", fmt.Sprintf("%d", i.NMSIX)},
		{"bar0 size", fmt.Sprintf("%d KiB", i.BAR0Size/1024)},
		{"cycles", fmt.Sprintf("%d", i.Cycles)},
		{"model", i.Model},
		{"verilator", i.Verilator},
	}
}

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
	return sim
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

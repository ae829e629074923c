package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/sanoffload/san/ctrl"
)

func newBenchCmd(a *app) *cobra.Command {
	var merge, out, build string
	bench := &cobra.Command{
		Use:   "bench",
		Short: "Measure the simulated hardware figures (latency, throughput, rate, ACK turnaround, sim speed)",
		Long: "Measure the simulated hardware figures of docs/METRICS on two simulated NICs linked back to\n" +
			"back. With --out, write them as one flat JSON object (merged with the figures in --merge).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := a.config()
			if err != nil {
				return err
			}
			figs, err := ctrl.SimBench(cfg.Sim)
			if err != nil {
				return err
			}
			if out != "" {
				flat := map[string]any{}
				if merge != "" {
					b, err := os.ReadFile(merge)
					if err != nil {
						return err
					}
					if err := json.Unmarshal(b, &flat); err != nil {
						return fmt.Errorf("%s: %w", merge, err)
					}
				}
				for _, f := range figs {
					flat[f.Name] = f.Value
				}
				if build != "" {
					flat["build"] = build
				}
				b, err := json.MarshalIndent(flat, "", "  ")
				if err != nil {
					return err
				}
				if err := os.WriteFile(out, append(b, '\n'), 0o644); err != nil {
					return err
				}
			}
			var rows []row
			for _, f := range figs {
				rows = append(rows, row{f.Name, fmt.Sprintf("%.4g %s (goal %s; %s)", f.Value, f.Unit, f.Goal, f.Note)})
			}
			return a.render(cmd.OutOrStdout(), figs, rows)
		},
	}
	bench.Flags().StringVar(&out, "out", "", "write the figures as a flat JSON object to this file")
	bench.Flags().StringVar(&merge, "merge", "", "JSON object of figures to include in --out (e.g. the synthesis figures)")
	bench.Flags().StringVar(&build, "build", "", "description of the configuration measured, stored as \"build\"")
	return bench
}

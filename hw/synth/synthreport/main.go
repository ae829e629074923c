// Command synthreport turns a Yosys JSON netlist into the resource figures of `make bench`:
// it prints a table and writes them as JSON (keys lut, ff, bram, levels, plus build).
//
//	synthreport -netlist build/synth/netlist.json -top san_nic_top -build "..." -o build/bench.json
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/sanoffload/san/hw/synth"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "synthreport:", err)
		os.Exit(1)
	}
}

func run() error {
	netlist := flag.String("netlist", "build/synth/netlist.json", "Yosys JSON netlist")
	top := flag.String("top", "san_nic_top", "top module")
	build := flag.String("build", "", "description of the configuration measured")
	out := flag.String("o", "build/bench.json", "figures to write")
	flag.Parse()
	data, err := os.ReadFile(*netlist)
	if err != nil {
		return err
	}
	r, err := synth.Parse(data, *top)
	if err != nil {
		return err
	}
	figures := map[string]any{"build": *build, "lut": r.LUT, "ff": r.FF, "bram": r.BRAM, "levels": r.Levels}
	b, err := json.MarshalIndent(figures, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(*out, append(b, '\n'), 0o644); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "figure\tvalue\tgoal\n")
	fmt.Fprintf(tw, "lut\t%d\trecord\n", r.LUT)
	fmt.Fprintf(tw, "ff\t%d\trecord\n", r.FF)
	fmt.Fprintf(tw, "bram\t%g\trecord\n", r.BRAM)
	fmt.Fprintf(tw, "levels\t%d\t<= 8\n", r.Levels)
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(r.Path) > 0 {
		fmt.Printf("a deepest path: %s\n", strings.Join(r.Path, " -> "))
	}
	if len(r.Over) > 0 {
		fmt.Printf("%d path ends deeper than %d levels; the deepest:\n", len(r.Over), synth.OverLevels)
		for _, e := range r.Over[:min(len(r.Over), 20)] {
			fmt.Printf("  %2d  %s\n", e.Levels, e.Net)
		}
	}
	fmt.Printf("build: %s\nwritten: %s\n", *build, *out)
	return nil
}

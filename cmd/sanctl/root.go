package main

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/spf13/viper"

	"github.com/sanoffload/san/ctrl"
)

// app is the state shared by sanctl's commands.
type app struct {
	v          *viper.Viper
	configFile string
	output     string
}

func newRoot() *cobra.Command {
	a := &app{v: ctrl.NewViper()}
	root := &cobra.Command{
		Use:           "sanctl",
		Short:         "Operate the SAN NIC and its sockets stack",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(*cobra.Command, []string) error {
			switch a.output {
			case "table", "json":
				return nil
			}
			return fmt.Errorf("unknown output format %q: use table or json", a.output)
		},
	}
	root.PersistentFlags().StringVar(&a.configFile, "config", "", "config file (default: sanctl.yaml in /etc/sanctl or $HOME/.config/sanctl)")
	root.PersistentFlags().StringVarP(&a.output, "output", "o", "table", "output format: table or json")
	root.AddCommand(newSimCmd(a))
	root.AddCommand(newCaptureCmd(a))
	root.AddCommand(newBenchCmd(a))
	root.AddCommand(newDeviceCmds(a)...)
	return root
}

// config loads the configuration after flags are bound.
func (a *app) config() (*ctrl.Config, error) { return ctrl.Load(a.v, a.configFile) }

// row is one line of a key/value table.
type row struct{ key, value string }

// render prints v as indented JSON, or rows as an aligned table.
func (a *app) render(w io.Writer, v any, rows []row) error {
	if a.output == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\n", r.key, r.value)
	}
	return tw.Flush()
}

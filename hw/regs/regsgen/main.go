// Command regsgen turns the hardware/software contract (hw/regs/*.yaml) into the Verilog
// localparams the RTL includes, the Go constants and accessors the driver uses, and the register
// reference in docs/. `make generate` runs it; `make check-generated` runs it with -check, which
// writes nothing and fails when an output differs from what the contract says it should be.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

func main() {
	if err := run(os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "regsgen:", err)
		os.Exit(1)
	}
}

// output is one generated file.
type output struct {
	path string
	data []byte
}

func run(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("regsgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	in := fs.String("in", "hw/regs/san_nic.yaml", "contract source")
	vh := fs.String("verilog", "hw/rtl/san_regs.vh", "Verilog header to write")
	goOut := fs.String("go", "driver/regs/zregs.go", "Go file to write")
	goPkg := fs.String("go-pkg", "regs", "package name of the Go file")
	md := fs.String("md", "docs/registers.md", "Markdown reference to write")
	check := fs.Bool("check", false, "write nothing; fail if any output is stale")
	if err := fs.Parse(args); err != nil {
		return err
	}
	src, err := os.ReadFile(*in)
	if err != nil {
		return err
	}
	c, err := Parse(src, *in)
	if err != nil {
		return err
	}
	goSrc, err := Go(c, *goPkg)
	if err != nil {
		return err
	}
	outs := []output{{*vh, Verilog(c)}, {*goOut, goSrc}, {*md, Markdown(c)}}
	if *check {
		return checkOutputs(outs)
	}
	for _, o := range outs {
		if err := os.WriteFile(o.path, o.data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// errStale reports generated files that no longer match their source.
var errStale = errors.New("generated files are stale")

func checkOutputs(outs []output) error {
	var stale []string
	for _, o := range outs {
		have, err := os.ReadFile(o.path)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		if !bytes.Equal(have, o.data) {
			stale = append(stale, o.path)
		}
	}
	if len(stale) > 0 {
		return fmt.Errorf("%w: %v differ from the contract; run 'make generate' and commit the result", errStale, stale)
	}
	return nil
}

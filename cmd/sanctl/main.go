// Command sanctl operates the SAN NIC and its sockets stack.
//
//	sanctl sim info [--model PATH] [--host-memory-mib N]
//	        bring up a simulated NIC and print its identity, version and build parameters
//	        as read through BAR0
//	sanctl sim exchange [--pcap FILE] [--pmtu N] [--latency CYCLES] [--sizes N,N,...]
//	        run a scripted SEND/RECV exchange between two simulated NICs on one clock and
//	        check every message; optionally capture the link to a pcap file
//	sanctl devices
//	        list the PCI functions with their drivers and IOMMU groups, marking SAN NICs
//	sanctl bind BDF / sanctl unbind BDF
//	        hand a PCI function to vfio-pci for the VFIO driver, or give it back to the kernel
//	sanctl capture check FILE...
//	        check with tshark that every frame decodes as RoCEv2, with no expert errors and
//	        a correct ICRC
//
// Global flags: --config FILE (default: sanctl.{yaml,toml,json} in /etc/sanctl or
// $HOME/.config/sanctl), -o/--output table|json. Every setting can also come from the
// environment as SANCTL_<KEY>, e.g. SANCTL_SIM_MODEL.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "sanctl:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	root := newRoot()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	return root.ExecuteContext(ctx)
}

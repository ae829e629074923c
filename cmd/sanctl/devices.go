package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/sanoffload/san/driver/vfio"
)

// newSysfs opens the sysfs tree the device commands work on; tests stand a fake kernel here.
var newSysfs = func(root string) *vfio.Sysfs { return &vfio.Sysfs{Root: root} }

// deviceRecord is one PCI function in sanctl devices -o json.
type deviceRecord struct {
	BDF        string `json:"bdf"`
	Vendor     uint16 `json:"vendor"`
	Device     uint16 `json:"device"`
	ID         string `json:"id"`    // vendor:device in hex, as lspci -n prints it
	Class      string `json:"class"` // six hex digits
	VendorName string `json:"vendor_name"`
	DeviceName string `json:"device_name"`
	Driver     string `json:"driver"`      // "" when none is bound
	IOMMUGroup *int   `json:"iommu_group"` // null when the function has none
	SANNIC     bool   `json:"san_nic"`
}

// devicesReport is sanctl devices -o json.
type devicesReport struct {
	Functions  []deviceRecord `json:"functions"`
	SANNICs    []string       `json:"san_nics"`    // addresses of the SAN NICs found
	LookingFor string         `json:"looking_for"` // the SAN NIC's vendor:device
}

func sanID() string { return fmt.Sprintf("%04x:%04x", vfio.VendorID, vfio.DeviceID) }

func newDeviceCmds(a *app) []*cobra.Command {
	var root string
	sysfsFlag := func(c *cobra.Command) {
		c.Flags().StringVar(&root, "sysfs", vfio.DefaultSysfs, "sysfs mount point (for tests)")
		_ = c.Flags().MarkHidden("sysfs")
	}

	devices := &cobra.Command{
		Use:   "devices",
		Short: "List the PCI functions, marking SAN NICs (" + sanID() + "), with their drivers and IOMMU groups",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fns, err := newSysfs(root).List()
			if err != nil {
				return err
			}
			rep := devicesReport{Functions: []deviceRecord{}, SANNICs: []string{}, LookingFor: sanID()}
			for _, f := range fns {
				r := deviceRecord{BDF: f.BDF, Vendor: f.Vendor, Device: f.Device, ID: fmt.Sprintf("%04x:%04x", f.Vendor, f.Device),
					Class: fmt.Sprintf("%06x", f.Class), Driver: f.Driver, SANNIC: f.IsSANNIC()}
				r.VendorName, r.DeviceName = f.Names()
				if f.IOMMUGroup >= 0 {
					g := f.IOMMUGroup
					r.IOMMUGroup = &g
				}
				if r.SANNIC {
					rep.SANNICs = append(rep.SANNICs, f.BDF)
				}
				rep.Functions = append(rep.Functions, r)
			}
			if a.output == "json" {
				return a.render(cmd.OutOrStdout(), rep, nil)
			}
			return devicesTable(cmd.OutOrStdout(), rep)
		},
	}
	sysfsFlag(devices)

	binding := func(use, short string, op func(s *vfio.Sysfs, bdf string) (vfio.Binding, error)) *cobra.Command {
		c := &cobra.Command{
			Use:   use + " BDF",
			Short: short,
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				b, err := op(newSysfs(root), args[0])
				if err != nil {
					return err
				}
				return a.render(cmd.OutOrStdout(), b, []row{
					{"device", b.BDF},
					{"previous driver", orNone(b.Previous)},
					{"driver", orNone(b.Driver)},
				})
			},
		}
		sysfsFlag(c)
		return c
	}
	bind := binding("bind", "Hand a PCI function to vfio-pci (driver_override), so that the VFIO driver can open it",
		(*vfio.Sysfs).Bind)
	unbind := binding("unbind", "Take a PCI function from vfio-pci and let the kernel give it its own driver back",
		(*vfio.Sysfs).Unbind)
	return []*cobra.Command{devices, bind, unbind}
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func devicesTable(w io.Writer, rep devicesReport) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "BDF\tID\tCLASS\tDRIVER\tIOMMU GROUP\tDEVICE")
	for _, r := range rep.Functions {
		group := "none"
		if r.IOMMUGroup != nil {
			group = fmt.Sprint(*r.IOMMUGroup)
		}
		name := r.VendorName + " " + r.DeviceName
		if r.SANNIC {
			name = "SAN NIC"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.BDF, r.ID, r.Class, orNone(r.Driver), group, name)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	switch len(rep.SANNICs) {
	case 0:
		_, err := fmt.Fprintf(w, "no SAN NIC found (looking for %s)\n", rep.LookingFor)
		return err
	default:
		_, err := fmt.Fprintf(w, "%d SAN NIC(s): %s\n", len(rep.SANNICs), strings.Join(rep.SANNICs, ", "))
		return err
	}
}

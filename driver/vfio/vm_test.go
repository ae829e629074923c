//go:build linux

package vfio

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sanoffload/san/driver/vfio/internal/vmtest"
)

// vmEnv names the directory scripts/vmdeps.sh filled (build/vm); make vfio-vm-test sets it.
// Without it the test skips, so that a plain go test ./... boots nothing.
const vmEnv = "SAN_VFIO_VM"

// TestVFIOInVM boots Debian's kernel under QEMU with an emulated VT-d IOMMU and QEMU's edu PCI
// device, and runs this package's tests inside, built with the vfiovm tag (edu_vm_test.go),
// against the real vfio-pci. The guest's verdict decides; on anything but a pass the whole
// guest console log is printed.
func TestVFIOInVM(t *testing.T) {
	dir := os.Getenv(vmEnv)
	if dir == "" {
		t.Skipf("set %s=build/vm (make vfio-vm-test does) to run the driver against the real kernel in QEMU", vmEnv)
	}
	dir, err := filepath.Abs(dir)
	require.NoError(t, err)
	kernels, _ := filepath.Glob(filepath.Join(dir, "kernel", "boot", "vmlinuz-*"))
	modDirs, _ := filepath.Glob(filepath.Join(dir, "kernel", "lib", "modules", "*"))
	require.Len(t, kernels, 1, "one guest kernel in %s/kernel (run scripts/vmdeps.sh %s)", dir, dir)
	require.Len(t, modDirs, 1, "one module tree in %s/kernel", dir)

	start := time.Now()
	work := t.TempDir()
	guest := filepath.Join(work, "guest.test")
	build := exec.Command(goTool(), "test", "-c", "-tags", "vfiovm", "-o", guest, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "build the guest test binary:\n%s", out)

	mods, err := vmtest.LoadOrder(modDirs[0], "vfio_iommu_type1", "vfio_pci")
	require.NoError(t, err)
	initrd := filepath.Join(work, "initramfs.cpio")
	require.NoError(t, writeInitramfs(initrd, guest, mods))
	built := time.Since(start)

	m := vmtest.Machine{
		Kernel: kernels[0],
		Initrd: initrd,
		// iommu=pt keeps host-owned devices out of translation; vfio still gets a DMA domain.
		Append: "console=ttyS0 intel_iommu=on iommu=pt panic=-1 loglevel=4",
		// edu sits behind a PCIe root port so that the kernel can reset it (a secondary bus
		// reset); on the root bus it would have no reset method at all.
		Devices: []string{"pcie-root-port,id=rp0,chassis=1,slot=1", "edu,bus=rp0"},
		Timeout: 120 * time.Second,
	}
	log, verdict, err := m.Run(context.Background())
	t.Logf("guest image built in %v, guest ran %v", built.Round(time.Millisecond), (time.Since(start) - built).Round(time.Millisecond))
	for _, l := range regexp.MustCompile(`(?m)^.*vfio-vm: .*$`).FindAll(log, -1) {
		t.Log(string(bytes.TrimSpace(l)))
	}
	if os.Getenv("SAN_VFIO_VM_LOG") != "" {
		t.Logf("guest console log:\n%s", log)
	}
	if err != nil || verdict != vmtest.Pass {
		t.Fatalf("guest verdict: %v (qemu: %v)\n----- guest console log -----\n%s\n----- end of guest log -----", verdict, err, log)
	}
}

// goTool is the go command that built this test.
func goTool() string {
	if p := filepath.Join(runtime.GOROOT(), "bin", "go"); fileExists(p) {
		return p
	}
	return "go"
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// writeInitramfs packs the guest: the test binary as /init, the modules in load order, and the
// directories and console node init needs before devtmpfs is mounted.
func writeInitramfs(path, initBin string, mods []string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	a := vmtest.NewArchive(f)
	for _, d := range []string{"dev", "proc", "sys", "tmp", "modules"} {
		if err := a.Dir(d, 0o755); err != nil {
			return err
		}
	}
	if err := a.CharDev("dev/console", 0o600, 5, 1); err != nil {
		return err
	}
	bin, err := os.ReadFile(initBin)
	if err != nil {
		return err
	}
	if err := a.File("init", 0o755, bin); err != nil {
		return err
	}
	for i, m := range mods {
		data, err := os.ReadFile(m)
		if err != nil {
			return err
		}
		name := filepath.Join(vmtest.ModulesDir, fmt.Sprintf("%02d-%s", i, filepath.Base(m)))
		if err := a.File(name, 0o644, data); err != nil {
			return err
		}
	}
	if err := a.Close(); err != nil {
		return err
	}
	return f.Close()
}

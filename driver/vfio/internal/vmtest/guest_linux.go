package vmtest

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"golang.org/x/sys/unix"
)

// ModulesDir is where the initramfs holds the modules, named so that sorting gives the load
// order (NN-name.ko).
const ModulesDir = "/modules"

// Boot does an init's work for the tests: it mounts proc, sysfs and devtmpfs and loads the
// modules in ModulesDir in order.
func Boot() error {
	for _, m := range []struct{ src, dir, fs string }{
		{"proc", "/proc", "proc"}, {"sysfs", "/sys", "sysfs"}, {"devtmpfs", "/dev", "devtmpfs"},
	} {
		if err := os.MkdirAll(m.dir, 0o755); err != nil {
			return err
		}
		if err := unix.Mount(m.src, m.dir, m.fs, 0, ""); err != nil {
			return fmt.Errorf("mount %s: %w", m.dir, err)
		}
	}
	mods, err := filepath.Glob(filepath.Join(ModulesDir, "*.ko"))
	if err != nil {
		return err
	}
	sort.Strings(mods)
	for _, p := range mods {
		if err := loadModule(p); err != nil {
			return err
		}
	}
	return nil
}

func loadModule(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.FinitModule(int(f.Fd()), "", 0); err != nil && err != unix.EEXIST {
		return fmt.Errorf("load %s: %w", filepath.Base(p), err)
	}
	return nil
}

// Report prints the verdict line the host looks for.
func Report(passed bool) {
	if passed {
		fmt.Println(VerdictPass)
	} else {
		fmt.Println(VerdictFail)
	}
}

// PowerOff stops the machine; QEMU then exits. It does not return.
func PowerOff() {
	unix.Sync()
	_ = unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
	os.Exit(1) // PID 1 exiting panics the kernel, and panic=-1 with -no-reboot ends QEMU too
}

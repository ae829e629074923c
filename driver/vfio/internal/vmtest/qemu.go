package vmtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"sync"
	"time"
)

// The guest prints exactly one of these lines when its tests are done.
const (
	VerdictPass = "SAN-VFIO-VM-VERDICT: PASS"
	VerdictFail = "SAN-VFIO-VM-VERDICT: FAIL"
)

// Verdict is what a guest run came to.
type Verdict int

// Verdicts.
const (
	NoVerdict Verdict = iota // the guest never said: it crashed, hung or was killed
	Pass
	Fail
)

func (v Verdict) String() string {
	switch v {
	case Pass:
		return "pass"
	case Fail:
		return "fail"
	}
	return "no verdict"
}

var verdictRE = regexp.MustCompile(`(?m)^SAN-VFIO-VM-VERDICT: (PASS|FAIL)\r?$`)

// ParseVerdict finds the guest's verdict in its console log; a second verdict, or a pass after
// a fail, counts as a fail.
func ParseVerdict(log []byte) Verdict {
	ms := verdictRE.FindAllSubmatch(log, -1)
	switch {
	case len(ms) == 0:
		return NoVerdict
	case len(ms) == 1 && string(ms[0][1]) == "PASS":
		return Pass
	}
	return Fail
}

// Machine is a QEMU guest to boot.
type Machine struct {
	QEMU    string   // binary; "" means qemu-system-x86_64
	Kernel  string   // bzImage (vmlinuz)
	Initrd  string   // initramfs
	Append  string   // kernel command line
	Devices []string // extra -device arguments, in order
	Timeout time.Duration
}

// Args is the QEMU command line: q35 with an interrupt-remapping VT-d IOMMU under TCG (KVM is
// not used: nested KVM on these hosts fails in several ways, and TCG boots in seconds).
func (m *Machine) Args() []string {
	args := []string{
		"-machine", "q35,kernel-irqchip=split", "-accel", "tcg", "-cpu", "max", "-m", "512", "-smp", "1",
		"-device", "intel-iommu,intremap=on",
	}
	for _, d := range m.Devices {
		args = append(args, "-device", d)
	}
	return append(args, "-nographic", "-no-reboot", "-nodefaults", "-serial", "stdio",
		"-kernel", m.Kernel, "-initrd", m.Initrd, "-append", m.Append)
}

// Run boots the machine and returns its console log and verdict. It kills QEMU at the timeout
// or when ctx ends; the error then says so, and the log so far is still returned.
func (m *Machine) Run(ctx context.Context) ([]byte, Verdict, error) {
	qemu := m.QEMU
	if qemu == "" {
		qemu = "qemu-system-x86_64"
	}
	if m.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, m.Timeout)
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, qemu, m.Args()...)
	var log syncBuffer
	cmd.Stdout, cmd.Stderr = &log, &log
	start := time.Now()
	err := cmd.Run()
	out := log.Bytes()
	if ctx.Err() != nil {
		return out, ParseVerdict(out), fmt.Errorf("qemu killed after %v: %w", time.Since(start).Round(time.Second), ctx.Err())
	}
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			return out, NoVerdict, fmt.Errorf("start %s: %w (run scripts/vmdeps.sh)", qemu, err)
		}
		return out, ParseVerdict(out), fmt.Errorf("qemu: %w", err)
	}
	return out, ParseVerdict(out), nil
}

// syncBuffer is a bytes.Buffer that QEMU's stdout and stderr copiers may share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer // guarded by mu
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) Bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]byte(nil), s.b.Bytes()...)
}

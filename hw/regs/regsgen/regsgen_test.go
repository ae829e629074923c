package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const root = "../../.."

// TestCommittedOutputsAreCurrent is `make check-generated` as a test: the files in the tree are
// exactly what the contract generates.
func TestCommittedOutputsAreCurrent(t *testing.T) {
	src, err := os.ReadFile(filepath.Join(root, "hw/regs/san_nic.yaml"))
	require.NoError(t, err)
	c, err := Parse(src, "hw/regs/san_nic.yaml")
	require.NoError(t, err)
	goSrc, err := Go(c, "regs")
	require.NoError(t, err)
	for path, want := range map[string][]byte{
		"hw/rtl/san_regs.vh":   Verilog(c),
		"driver/regs/zregs.go": goSrc,
		"docs/registers.md":    Markdown(c),
	} {
		have, err := os.ReadFile(filepath.Join(root, path))
		require.NoError(t, err)
		assert.Equal(t, string(want), string(have), "%s is stale: run make generate", path)
	}
}

func TestCheckModeReportsStaleFiles(t *testing.T) {
	dir := t.TempDir()
	args := []string{"-in", filepath.Join(root, "hw/regs/san_nic.yaml"),
		"-verilog", filepath.Join(dir, "r.vh"), "-go", filepath.Join(dir, "z.go"), "-md", filepath.Join(dir, "r.md")}
	err := run(append(args, "-check"), os.Stderr)
	require.ErrorIs(t, err, errStale, "nothing generated yet")
	require.NoError(t, run(args, os.Stderr))
	require.NoError(t, run(append(args, "-check"), os.Stderr))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "r.md"), []byte("edited by hand"), 0o644))
	err = run(append(args, "-check"), os.Stderr)
	require.ErrorIs(t, err, errStale)
	assert.Contains(t, err.Error(), "r.md")
	assert.Contains(t, err.Error(), "make generate")
}

const header = `name: t
blocks:
  - name: nic
    type: 0x1
    version: {major: 1, minor: 2, patch: 3}
    base: 0
    registers:
      - {name: BLK_TYPE, offset: 0, access: ro, reset: {block: type}}
      - {name: BLK_VERSION, offset: 4, access: ro, reset: {block: version}}
      - {name: BLK_NEXT, offset: 8, access: ro, reset: {value: 0}}
`

func TestValidationRejectsBadContracts(t *testing.T) {
	cases := []struct{ name, yaml, want string }{
		{"unknown key", header + "bogus: 1\n", "bogus"},
		{"misaligned", header + "      - {name: X, offset: 0x11, access: rw, reset: {value: 0}}\n", "not 32-bit aligned"},
		{"duplicate offset", header + "      - {name: X, offset: 8, access: rw, reset: {value: 0}}\n", "already used by BLK_NEXT"},
		{"duplicate name", header + "      - {name: BLK_NEXT, offset: 12, access: rw, reset: {value: 0}}\n", "defined twice"},
		{"bad access", header + "      - {name: X, offset: 12, access: rx, reset: {value: 0}}\n", "access \"rx\""},
		{"two resets", header + "      - {name: X, offset: 12, access: rw, reset: {value: 0, param: N}}\n", "exactly one"},
		{"field overflow", header + "      - {name: X, offset: 12, access: rw, reset: {value: 0}, fields: [{name: F, lsb: 30, width: 4}]}\n", "do not fit"},
		{"field overlap", header + "      - {name: X, offset: 12, access: rw, reset: {value: 0}, fields: [{name: F, lsb: 0, width: 4}, {name: G, lsb: 3, width: 1}]}\n", "overlaps"},
		{"header order", strings.Replace(header, "name: BLK_VERSION, offset: 4", "name: BLK_VERSION, offset: 12", 1), "must be BLK_VERSION"},
		{"doorbell stride", header + "doorbells: {base: 0x1000, stride: 0x100, registers: [{name: D, offset: 0}]}\n", "power of two"},
		{"register in doorbells", header + "      - {name: X, offset: 0x2000, access: rw, reset: {value: 0}}\ndoorbells: {base: 0x1000, stride: 0x1000, registers: [{name: D, offset: 0}]}\n", "overlaps the doorbell"},
		{"struct field past end", header + "structures: [{name: S, size: 8, fields: [{name: A, offset: 4, bytes: 8}]}]\n", "not aligned"},
		{"struct overlap", header + "structures: [{name: S, size: 8, fields: [{name: A, offset: 0, bytes: 4}, {name: B, offset: 2, bytes: 2}]}]\n", "overlaps"},
		{"struct odd int", header + "structures: [{name: S, size: 8, fields: [{name: A, offset: 0, bytes: 3}]}]\n", "1, 2, 4 or 8"},
		{"enum value too wide", header + "enums: [{name: E, width: 2, values: [{name: A, value: 4}]}]\n", "does not fit"},
		{"enum duplicate value", header + "enums: [{name: E, width: 2, values: [{name: A, value: 1}, {name: B, value: 1}]}]\n", "already used by A"},
		{"enum name", header + "enums: [{name: e_x, width: 2, values: [{name: A, value: 1}]}]\n", "CamelCase"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(c.yaml), "t.yaml")
			require.ErrorIs(t, err, errContract)
			assert.Contains(t, err.Error(), c.want)
			assert.Contains(t, err.Error(), "t.yaml")
		})
	}
}

const structContract = header + `      - {name: CTRL, offset: 12, access: rw, reset: {value: 5}, fields: [{name: EN, lsb: 0, width: 1}, {name: MODE, lsb: 4, width: 3}]}
structures:
  - name: CQE
    size: 32
    fields:
      - {name: BYTE_LEN, offset: 0, bytes: 4}
      - {name: QPN, offset: 4, bytes: 2}
      - {name: FLAGS, offset: 7, bytes: 1, bits: [{name: PHASE, lsb: 7, width: 1}, {name: STATUS, lsb: 0, width: 4}]}
      - {name: TAG, offset: 8, bytes: 8}
      - {name: DATA, offset: 16, bytes: 16}
enums:
  - name: CQEStatus
    width: 8
    values:
      - {name: OK, value: 0}
      - {name: LOCAL_LENGTH, value: 1}
`

// TestGeneratedAccessorsCompileAndWork builds the Go output of a contract with structures in a
// scratch module and runs a test against it.
func TestGeneratedAccessorsCompileAndWork(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a scratch module")
	}
	c, err := Parse([]byte(structContract), "t.yaml")
	require.NoError(t, err)
	src, err := Go(c, "regs")
	require.NoError(t, err)
	dir := t.TempDir()
	hand, err := os.ReadFile(filepath.Join(root, "driver/regs/regs.go"))
	require.NoError(t, err)
	files := map[string]string{
		"go.mod":   "module scratch\n\ngo 1.25\n",
		"regs.go":  string(hand),
		"zregs.go": string(src),
		"z_test.go": `package regs
import "testing"
func TestAccessors(t *testing.T) {
	s := make(CQE, CQESize)
	s.SetByteLen(0x01020304); s.SetQPN(0xbeef); s.SetTag(1<<63 | 7)
	s.SetFlagsPhase(1); s.SetFlagsStatus(0xf); s.SetFlagsStatus(0x3)
	copy(s.Data(), "0123456789abcdef")
	if s[0] != 4 || s[3] != 1 { t.Fatalf("little-endian ByteLen: % x", s[:4]) }
	if s.QPN() != 0xbeef || s.Tag() != 1<<63|7 { t.Fatal("round trip") }
	if s.Flags() != 0x83 || s.FlagsPhase() != 1 || s.FlagsStatus() != 3 { t.Fatalf("bits: %x", s.Flags()) }
	if string(s[16:32]) != "0123456789abcdef" || len(s.Data()) != 16 || cap(s.Data()) != 16 { t.Fatal("array") }
	if NICCtrl != 12 || NICCtrlModeShift != 4 || NICCtrlModeMask != 7 || NICVersionMinor != 2 { t.Fatal("consts") }
	if len(Registers) != 4 || Registers[3].Reset != 5 || Registers[3].Access != ReadWrite { t.Fatal("table") }
	if CQEStatusLocalLength != 1 || CQEStatusLocalLength.String() != "LOCAL_LENGTH" || CQEStatus(9).String() != "CQEStatus(9)" { t.Fatal("enum") }
}
`,
	}
	for name, body := range files {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644))
	}
	cmd := exec.Command("go", "test", "./...")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)

	v := string(Verilog(c))
	assert.Contains(t, v, "localparam [31:0] SAN_NIC_CTRL_ADDR = 32'hC;")
	assert.Contains(t, v, "localparam integer SAN_NIC_CTRL_MODE_LSB = 4;")
	assert.Contains(t, v, "localparam integer SAN_CQE_FLAGS_PHASE_LSB = 7;")
	assert.Contains(t, v, "localparam [7:0] SAN_CQE_STATUS_LOCAL_LENGTH = 8'h1;")
	md := string(Markdown(c))
	assert.Contains(t, md, "| 0x000C | `CTRL` | rw | 0x00000005 |")
	assert.Contains(t, md, "| | bits 7 | `FLAGS.PHASE` |")
	assert.Contains(t, md, "| 1 | `LOCAL_LENGTH` |")
}

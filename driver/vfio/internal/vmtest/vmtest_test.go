package vmtest

import (
	"bytes"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type entry struct {
	name       string
	mode       uint64
	rmaj, rmin uint64
	data       string
}

// readNewc parses a newc archive back, checking the alignment rules the kernel relies on.
func readNewc(t *testing.T, b []byte) []entry {
	t.Helper()
	var es []entry
	off := 0
	for {
		require.Zero(t, off%4, "entries start 4-aligned")
		require.GreaterOrEqual(t, len(b)-off, 110)
		h := string(b[off : off+110])
		require.Equal(t, "070701", h[:6])
		field := func(i int) uint64 {
			v, err := strconv.ParseUint(h[6+8*i:14+8*i], 16, 32)
			require.NoError(t, err)
			return v
		}
		size, nameSize := int(field(6)), int(field(11))
		name := string(b[off+110 : off+110+nameSize-1])
		require.Zero(t, b[off+110+nameSize-1], "name NUL-terminated")
		off += 110 + nameSize
		off += (4 - off%4) % 4
		data := string(b[off : off+size])
		off += size
		off += (4 - off%4) % 4
		if name == "TRAILER!!!" {
			require.Equal(t, len(b), off, "nothing after the trailer")
			return es
		}
		es = append(es, entry{name, field(1), field(9), field(10), data})
	}
}

func TestArchive(t *testing.T) {
	var buf bytes.Buffer
	a := NewArchive(&buf)
	require.NoError(t, a.Dir("/dev", 0o755))
	require.NoError(t, a.CharDev("dev/console", 0o600, 5, 1))
	require.NoError(t, a.File("init", 0o755, []byte("#!hello")))
	require.NoError(t, a.File("modules/01-vfio.ko", 0o644, []byte("abcd")))
	require.NoError(t, a.Close())
	assert.Equal(t, []entry{
		{"dev", 0o040755, 0, 0, ""},
		{"dev/console", 0o020600, 5, 1, ""},
		{"init", 0o100755, 0, 0, "#!hello"},
		{"modules/01-vfio.ko", 0o100644, 0, 0, "abcd"},
	}, readNewc(t, buf.Bytes()))
}

func TestParseVerdict(t *testing.T) {
	tests := map[string]Verdict{
		"boot\n" + VerdictPass + "\n[ 2.2] reboot: Power down\n": Pass,
		"boot\r\n" + VerdictPass + "\r\n":                        Pass,
		"--- FAIL: TestEdu\n" + VerdictFail + "\n":               Fail,
		VerdictPass + "\n" + VerdictFail + "\n":                  Fail,
		VerdictPass + "\n" + VerdictPass + "\n":                  Fail,
		"Kernel panic - not syncing\n":                           NoVerdict,
		"say " + VerdictPass + "\n":                              NoVerdict,
	}
	for log, want := range tests {
		assert.Equal(t, want, ParseVerdict([]byte(log)), log)
	}
}

func TestMachineArgs(t *testing.T) {
	m := Machine{Kernel: "vmlinuz", Initrd: "initrd", Append: "console=ttyS0", Devices: []string{"edu"}}
	args := strings.Join(m.Args(), " ")
	assert.Contains(t, args, "-accel tcg")
	assert.Contains(t, args, "-device intel-iommu,intremap=on -device edu", "the IOMMU comes before the devices it translates")
	assert.Contains(t, args, "-kernel vmlinuz -initrd initrd -append console=ttyS0")
}

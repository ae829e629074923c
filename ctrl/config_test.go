package ctrl

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func writeFile(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(p, []byte(body), 0o644))
	return p
}

func TestLoadDefaults(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	cfg, err := Load(NewViper(), "")
	require.NoError(t, err)
	assert.Equal(t, 64, cfg.Sim.HostMemoryMiB)
	assert.Equal(t, 10000, cfg.Sim.MMIOTimeoutCycles)
	assert.Equal(t, "", cfg.File)
}

func TestLoadFileThenEnvOverrides(t *testing.T) {
	p := writeFile(t, "sanctl.yaml", "sim:\n  host_memory_mib: 128\n  model: /x/libsanmodel.so\n")
	t.Setenv("SANCTL_SIM_MODEL", "/y/libsanmodel.so")
	cfg, err := Load(NewViper(), p)
	require.NoError(t, err)
	assert.Equal(t, p, cfg.File)
	assert.Equal(t, 128, cfg.Sim.HostMemoryMiB)
	assert.Equal(t, "/y/libsanmodel.so", cfg.Sim.Model, "environment beats the file")
}

func TestConfigErrorsNameKeyAndFile(t *testing.T) {
	cases := []struct {
		name, body, key string
		want            error
	}{
		{"typo", "sim:\n  host_memory_mb: 10\n", "sim.host_memory_mb", ErrUnknownKey},
		{"not a number", "sim:\n  host_memory_mib: lots\n", KeySimHostMemory, nil},
		{"too big", "sim:\n  host_memory_mib: 100000\n", KeySimHostMemory, nil},
		{"zero timeout", "sim:\n  mmio_timeout_cycles: 0\n", KeySimMMIOTimeout, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := writeFile(t, "sanctl.yaml", c.body)
			_, err := Load(NewViper(), p)
			var ce *ConfigError
			require.ErrorAs(t, err, &ce)
			assert.Equal(t, p, ce.File)
			assert.Equal(t, c.key, ce.Key)
			assert.Contains(t, err.Error(), p)
			assert.Contains(t, err.Error(), c.key)
			if c.want != nil {
				assert.ErrorIs(t, err, c.want)
			}
		})
	}
}

func TestMissingOrBrokenFile(t *testing.T) {
	_, err := Load(NewViper(), "/nonexistent/sanctl.yaml")
	var ce *ConfigError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, "/nonexistent/sanctl.yaml", ce.File)

	p := writeFile(t, "sanctl.yaml", "sim: [unclosed\n")
	_, err = Load(NewViper(), p)
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, p, ce.File)
}

func TestReadSimInfo(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	cfg, err := Load(NewViper(), "")
	require.NoError(t, err)
	info, err := ReadSimInfo(cfg.Sim)
	require.NoError(t, err)
	assert.Equal(t, "sim0", info.Device)
	assert.Equal(t, uint32(256), info.NQP)
	assert.NotEmpty(t, info.Verilator)
}

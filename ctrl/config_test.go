package ctrl

import (
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

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
	assert.Equal(t, ARPConfig{Timeout: time.Second, Tries: 3, Static: map[netip.Addr]net.HardwareAddr{}}, cfg.ARP)
	assert.Equal(t, "", cfg.File)
}

func TestLoadARP(t *testing.T) {
	p := writeFile(t, "sanctl.yaml", "arp:\n  tries: 5\n  timeout_ms: 250\n  static:\n    - 10.0.0.2=02:00:00:00:00:02\n    - 10.0.0.3=02:00:00:00:00:03\n")
	cfg, err := Load(NewViper(), p)
	require.NoError(t, err)
	assert.Equal(t, ARPConfig{Timeout: 250 * time.Millisecond, Tries: 5, Static: map[netip.Addr]net.HardwareAddr{
		netip.MustParseAddr("10.0.0.2"): {2, 0, 0, 0, 0, 2}, netip.MustParseAddr("10.0.0.3"): {2, 0, 0, 0, 0, 3}}}, cfg.ARP)
	t.Setenv("SANCTL_ARP_STATIC", "10.0.0.9=02:00:00:00:00:09,10.0.0.8=02:00:00:00:00:08")
	cfg, err = Load(NewViper(), p)
	require.NoError(t, err)
	assert.Len(t, cfg.ARP.Static, 2, "the environment replaces the file's list")
	assert.Equal(t, net.HardwareAddr{2, 0, 0, 0, 0, 9}, cfg.ARP.Static[netip.MustParseAddr("10.0.0.9")])
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
		{"no tries", "arp:\n  tries: 0\n", KeyARPTries, nil},
		{"arp timeout", "arp:\n  timeout_ms: -1\n", KeyARPTimeout, nil},
		{"neighbour without a mac", "arp:\n  static: [10.0.0.2]\n", KeyARPStatic, nil},
		{"neighbour with a group mac", "arp:\n  static: [10.0.0.2=01:00:5e:00:00:01]\n", KeyARPStatic, nil},
		{"ipv6 neighbour", "arp:\n  static: ['fe80::1=02:00:00:00:00:02']\n", KeyARPStatic, nil},
		{"neighbour twice", "arp:\n  static: [10.0.0.2=02:00:00:00:00:02, 10.0.0.2=02:00:00:00:00:03]\n", KeyARPStatic, nil},
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

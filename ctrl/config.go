package ctrl

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cast"
	"github.com/spf13/viper"

	"github.com/sanoffload/san/driver/nic"
)

// Config is sanctl's configuration. Sources, highest precedence first: flags, environment
// (SANCTL_ plus the key with dots as underscores, e.g. SANCTL_SIM_MODEL), the config file, the
// defaults below.
type Config struct {
	// File is the config file that was read, or "" when none was.
	File string
	Sim  SimConfig
	ARP  ARPConfig
}

// ARPConfig configures address resolution on the SAN link (the driver's nic.Resolver).
type ARPConfig struct {
	// Timeout is how long each ARP request waits for its reply; 0 means the driver's default.
	Timeout time.Duration
	// Tries is how many requests are sent before an address counts as unresolved; 0 means the
	// driver's default.
	Tries int
	// Static entries resolve without ARP and take precedence over learned ones.
	Static map[netip.Addr]net.HardwareAddr
}

// resolver is the driver's resolver configuration for vector.
func (a ARPConfig) resolver(vector int) nic.ResolverConfig {
	return nic.ResolverConfig{Vector: vector, Timeout: a.Timeout, Tries: a.Tries, Static: a.Static}
}

// SimConfig configures the simulated NIC.
type SimConfig struct {
	// Model is the Verilated model library; "" searches (see hw/sim.FindModel).
	Model string
	// HostMemoryMiB is the simulated host memory for DMA.
	HostMemoryMiB int
	// MMIOTimeoutCycles bounds a BAR access before the device counts as wedged.
	MMIOTimeoutCycles int
}

// Configuration keys.
const (
	KeySimModel       = "sim.model"
	KeySimHostMemory  = "sim.host_memory_mib"
	KeySimMMIOTimeout = "sim.mmio_timeout_cycles"
	KeyARPTimeout     = "arp.timeout_ms"
	KeyARPTries       = "arp.tries"
	KeyARPStatic      = "arp.static"
)

var defaults = map[string]any{
	KeySimModel:       "",
	KeySimHostMemory:  64,
	KeySimMMIOTimeout: 10000,
	KeyARPTimeout:     1000,
	KeyARPTries:       3,
	KeyARPStatic:      []string{},
}

// ConfigError is a configuration problem, naming the key and where its value came from.
type ConfigError struct {
	File string // config file read, "" if none
	Key  string // offending key, "" when the file as a whole is bad
	Err  error
}

func (e *ConfigError) Error() string {
	var b strings.Builder
	b.WriteString("config")
	if e.File != "" {
		fmt.Fprintf(&b, " file %s", e.File)
	}
	if e.Key != "" {
		fmt.Fprintf(&b, ": key %q (or $SANCTL_%s)", e.Key, strings.ToUpper(strings.ReplaceAll(e.Key, ".", "_")))
	}
	fmt.Fprintf(&b, ": %v", e.Err)
	return b.String()
}

func (e *ConfigError) Unwrap() error { return e.Err }

// ErrUnknownKey is wrapped by a ConfigError for a key sanctl does not know (often a typo).
var ErrUnknownKey = errors.New("unknown key")

// NewViper returns a viper instance with sanctl's defaults and environment binding; callers bind
// flags to it, then call Load.
func NewViper() *viper.Viper {
	v := viper.New()
	for k, d := range defaults {
		v.SetDefault(k, d)
	}
	v.SetEnvPrefix("SANCTL")
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_", "-", "_"))
	v.AutomaticEnv()
	return v
}

// Load reads the configuration. With file set, that file must exist; otherwise sanctl.{yaml,
// toml,json} is looked for in /etc/sanctl and $HOME/.config/sanctl, and none is fine.
func Load(v *viper.Viper, file string) (*Config, error) {
	if file != "" {
		v.SetConfigFile(file)
	} else {
		v.SetConfigName("sanctl")
		v.AddConfigPath("/etc/sanctl")
		v.AddConfigPath("$HOME/.config/sanctl")
	}
	if err := v.ReadInConfig(); err != nil {
		var notFound viper.ConfigFileNotFoundError
		if file != "" || !errors.As(err, &notFound) {
			return nil, &ConfigError{File: firstNonEmpty(v.ConfigFileUsed(), file), Err: err}
		}
	}
	cfg := &Config{File: v.ConfigFileUsed()}
	keys := v.AllKeys()
	sort.Strings(keys)
	for _, k := range keys {
		if _, ok := defaults[k]; !ok {
			return nil, &ConfigError{File: cfg.File, Key: k, Err: ErrUnknownKey}
		}
	}
	var err error
	bad := func(key string, e error) error { return &ConfigError{File: cfg.File, Key: key, Err: e} }
	if cfg.Sim.Model, err = cast.ToStringE(v.Get(KeySimModel)); err != nil {
		return nil, bad(KeySimModel, err)
	}
	if cfg.Sim.HostMemoryMiB, err = cast.ToIntE(v.Get(KeySimHostMemory)); err != nil {
		return nil, bad(KeySimHostMemory, err)
	}
	if cfg.Sim.HostMemoryMiB < 1 || cfg.Sim.HostMemoryMiB > 16384 {
		return nil, bad(KeySimHostMemory, fmt.Errorf("%d MiB is outside 1..16384", cfg.Sim.HostMemoryMiB))
	}
	if cfg.Sim.MMIOTimeoutCycles, err = cast.ToIntE(v.Get(KeySimMMIOTimeout)); err != nil {
		return nil, bad(KeySimMMIOTimeout, err)
	}
	if cfg.Sim.MMIOTimeoutCycles < 1 || cfg.Sim.MMIOTimeoutCycles > 1<<30 {
		return nil, bad(KeySimMMIOTimeout, fmt.Errorf("%d cycles is outside 1..%d", cfg.Sim.MMIOTimeoutCycles, 1<<30))
	}
	ms, err := cast.ToIntE(v.Get(KeyARPTimeout))
	if err != nil {
		return nil, bad(KeyARPTimeout, err)
	}
	if ms < 1 || ms > 600000 {
		return nil, bad(KeyARPTimeout, fmt.Errorf("%d ms is outside 1..600000", ms))
	}
	cfg.ARP.Timeout = time.Duration(ms) * time.Millisecond
	if cfg.ARP.Tries, err = cast.ToIntE(v.Get(KeyARPTries)); err != nil {
		return nil, bad(KeyARPTries, err)
	}
	if cfg.ARP.Tries < 1 || cfg.ARP.Tries > 100 {
		return nil, bad(KeyARPTries, fmt.Errorf("%d tries is outside 1..100", cfg.ARP.Tries))
	}
	if cfg.ARP.Static, err = parseNeighbours(v.Get(KeyARPStatic)); err != nil {
		return nil, bad(KeyARPStatic, err)
	}
	return cfg, nil
}

// parseNeighbours reads static neighbour entries, each "IPv4=MAC" (a list, or one string of
// entries separated by commas or spaces, as an environment variable gives them).
func parseNeighbours(v any) (map[netip.Addr]net.HardwareAddr, error) {
	entries, err := cast.ToStringSliceE(v)
	if err != nil {
		return nil, err
	}
	var split []string
	for _, e := range entries {
		split = append(split, strings.FieldsFunc(e, func(r rune) bool { return r == ',' || r == ' ' })...)
	}
	out := map[netip.Addr]net.HardwareAddr{}
	for _, e := range split {
		ipText, macText, ok := strings.Cut(e, "=")
		ip, ierr := netip.ParseAddr(ipText)
		mac, merr := net.ParseMAC(macText)
		if !ok || ierr != nil || merr != nil || !ip.Is4() || len(mac) != 6 || mac[0]&1 != 0 {
			return nil, fmt.Errorf("entry %q: want IPv4=MAC with a 6-byte unicast MAC", e)
		}
		if _, dup := out[ip]; dup {
			return nil, fmt.Errorf("entry %q: %s given twice", e, ip)
		}
		out[ip] = mac
	}
	return out, nil
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}

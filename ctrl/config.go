package ctrl

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/cast"
	"github.com/spf13/viper"
)

// Config is sanctl's configuration. Sources, highest precedence first: flags, environment
// (SANCTL_ plus the key with dots as underscores, e.g. SANCTL_SIM_MODEL), the config file, the
// defaults below.
type Config struct {
	// File is the config file that was read, or "" when none was.
	File string
	Sim  SimConfig
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
)

var defaults = map[string]any{
	KeySimModel:       "",
	KeySimHostMemory:  64,
	KeySimMMIOTimeout: 10000,
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
	return cfg, nil
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}

package sim

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/sanoffload/san/hw/sim/internal/srcroot"
)

// ModelFile is the file name of the Verilated model library.
const ModelFile = "libsanmodel.so"

// ErrModelNotBuilt means the Verilated model library could not be found.
var ErrModelNotBuilt = errors.New("verilated NIC model not built: run 'make model' (make test and make run build it)")

// FindModel returns the path of the model library: explicit if it is not empty, else the first
// of $SAN_SIM_MODEL, ../verilator/ beside the executable, and build/verilator/ of the source
// tree enclosing the working directory.
func FindModel(explicit string) (string, error) {
	if explicit != "" {
		if _, err := os.Stat(explicit); err != nil {
			return "", fmt.Errorf("%w: %v", ErrModelNotBuilt, err)
		}
		return explicit, nil
	}
	var tried []string
	try := func(p string) bool {
		tried = append(tried, p)
		_, err := os.Stat(p)
		return err == nil
	}
	if env := os.Getenv("SAN_SIM_MODEL"); env != "" {
		if try(env) {
			return env, nil
		}
	}
	if exe, err := os.Executable(); err == nil {
		if p := filepath.Join(filepath.Dir(exe), "..", "verilator", ModelFile); try(p) {
			return filepath.Clean(p), nil
		}
	}
	if root, ok := srcroot.Find(); ok {
		if p := filepath.Join(root, "build", "verilator", ModelFile); try(p) {
			return p, nil
		}
	}
	return "", fmt.Errorf("%w; looked in %s", ErrModelNotBuilt, strings.Join(tried, ", "))
}

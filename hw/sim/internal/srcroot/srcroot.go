// Package srcroot finds the source tree this module was built from, where `make` puts the
// Verilated models (build/verilator/...), by walking up from the working directory.
package srcroot

import (
	"os"
	"path/filepath"
	"strings"
)

// modulePath identifies this module's go.mod.
const modulePath = "github.com/sanoffload/san"

// Find returns the directory holding this module's go.mod at or above the working directory.
func Find() (string, bool) {
	dir, err := os.Getwd()
	if err != nil {
		return "", false
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.Contains(string(b), "module "+modulePath+"\n") {
			return dir, true
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", false
		}
		dir = parent
	}
}

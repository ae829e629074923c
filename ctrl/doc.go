// Package ctrl is the control plane: configuration (file, environment, flags, through viper),
// device bring-up, and the operations that cmd/sanctl exposes. Commands stay thin and call here.
package ctrl

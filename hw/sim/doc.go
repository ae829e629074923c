// Package sim runs the NIC's RTL as a device: NIC implements driver.Device over the Verilated
// model of hw/rtl (libsanmodel.so, built by `make model`), with host memory for DMA and MSI-X
// delivered as interrupts. BAR0 accesses go through real AXI4-Lite handshakes in the model, and
// every figure taken from it is counted in core-clock cycles, so runs are exact and repeatable.
//
// The model is loaded at run time with dlopen, so this package builds without Verilator; a test
// or command that needs the model and cannot find it fails with ErrModelNotBuilt, which says to
// run make. The library is found, in order, at Config.ModelPath, at $SAN_SIM_MODEL, beside the
// running executable (../verilator/libsanmodel.so, as `make` lays out build/), and under
// build/verilator/ of the enclosing source tree.
package sim

// Package dut drives one RTL block of hw/rtl, Verilated on its own (`make duts` builds
// build/verilator/dut/NAME/libdut.so), port by port from Go. Unit tests of the blocks use it with
// Go reference models and seeded random stimulus; the whole NIC is tested through hw/sim.
//
// A test sets inputs with Set, settles them with Eval, samples outputs with Get (so handshakes
// are seen as they stand before the clock edge), then runs a rising edge with Tick.
package dut

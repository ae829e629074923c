// Package driver defines Device, the one seam between the NIC driver and the hardware it runs
// on. Two backends implement it: driver/vfio (a real board through Linux VFIO) and hw/sim (the
// Verilated RTL with a host-memory model). Everything above this package sees only Device, so
// the same driver code runs on a board and in simulation.
//
// Errors are the sentinels below, usually wrapped in *AccessError with the access that failed;
// match them with errors.Is.
package driver

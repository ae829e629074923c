// Package nic is the SAN NIC driver over any driver.Device: it identifies the NIC through its
// register blocks and, as the data path and connection manager land, drives its queues,
// doorbells, completions and connection-management commands. The same code runs on a board
// (driver/vfio) and on the simulated NIC (hw/sim).
package nic

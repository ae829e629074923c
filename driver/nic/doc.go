// Package nic is the SAN NIC driver over any driver.Device: it identifies the NIC through its
// register blocks and drives its queues, doorbells, completions and connection-management
// commands, and resolves IPv4 addresses to MACs on the SAN link (Resolver: ARP through the
// NIC's ARP block, a neighbour cache whose static entries need no ARP), which the connection
// manager's Connect uses. The same code runs on a board (driver/vfio) and on the simulated NIC
// (hw/sim).
package nic

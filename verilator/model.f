// Pinned Verilator options for the simulation model (libsanmodel.so). The Makefile adds the
// sources (verilator/rtl.f), the parameter overrides and the output directory.
-f verilator/common.f
--top-module san_nic_top

// Pinned Verilator options for the simulation model (libsanmodel.so). The Makefile adds the
// sources (verilator/rtl.f), the parameter overrides and the output directory.
--cc
--top-module san_nic_top
-Wall
-Ihw/rtl
--x-assign unique
--x-initial unique
-O3
--output-split 20000
-CFLAGS -fPIC
-CFLAGS -O2

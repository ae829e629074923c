// Pinned Verilator options shared by the NIC model and the per-block unit-test models.
--cc
-Wall
-Ihw/rtl
--x-assign unique
--x-initial unique
-O3
--output-split 20000
-CFLAGS -fPIC
-CFLAGS -O2

# SAN offload project: an FPGA SAN NIC (hw/rtl), its simulator, and a Sockets-Direct stack in Go.
#
#   make run     bring up a simulated NIC and show its identity (sanctl sim info)
#   make test    everything CI checks: generated files, lint, synthesis, the Go and RTL tests,
#                the VFIO driver against the real kernel in QEMU (vfio-vm-test), and the tshark
#                conformance check of captured traffic
#
# Both install what is missing first (make deps). Other targets: generate, lint, synth, model,
# vfio-vm-test, conformance, bench, clean.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := test
export PATH := $(PATH):/usr/local/go/bin

GO ?= go
BUILD := build

# Reference build of the NIC: 64-bit data path at 156.25 MHz (10 Gb/s), 256 connections.
DATA_WIDTH ?= 64
N_QP ?= 256
CLK_KHZ ?= 156250
N_MSIX ?= 32
# BAR0 holds 1 MiB of register blocks, then one 4 KiB doorbell page per connection, rounded up
# to a power of two; the AXI4-Lite address width follows (the RTL checks it).
AXIL_ADDR_WIDTH := $(shell n=$$(( (1 << 20) + $(N_QP) * 4096 )); w=0; while [ $$(( 1 << w )) -lt $$n ]; do w=$$((w+1)); done; echo $$w)
RTL_PARAMS := -GDATA_WIDTH=$(DATA_WIDTH) -GN_QP=$(N_QP) -GCLK_KHZ=$(CLK_KHZ) -GN_MSIX=$(N_MSIX) \
	-GAXIL_ADDR_WIDTH=$(AXIL_ADDR_WIDTH)

RTL_SRCS := $(shell cat verilator/rtl.f)
RTL_HDRS := $(wildcard hw/rtl/*.vh)
MODEL_DIR := $(BUILD)/verilator
MODEL := $(MODEL_DIR)/libsanmodel.so
SANCTL := $(BUILD)/bin/sanctl
GO_SRCS := $(shell find . -name '*.go' -not -path './build/*')

.PHONY: deps vmdeps generate check-generated lint lint-rtl lint-go synth model duts test vfio-vm-test conformance run bench clean

deps:
	@scripts/deps.sh

# QEMU and Debian's kernel for vfio-vm-test; the kernel is cached under build/vm.
vmdeps:
	@scripts/vmdeps.sh $(BUILD)/vm

# --- the hardware/software contract -------------------------------------------------------------

generate:
	$(GO) run ./hw/regs/regsgen

check-generated:
	$(GO) run ./hw/regs/regsgen -check

# --- RTL ------------------------------------------------------------------------------------------

lint: lint-rtl lint-go

# The top with the reference parameters, then every block on its own with its defaults.
lint-rtl: deps
	verilator --lint-only -Wall $(RTL_PARAMS) -Ihw/rtl --top-module san_nic_top verilator/lint.vlt $(RTL_SRCS)
	@for m in $(DUTS); do \
		verilator --lint-only -Wall -Ihw/rtl --top-module $$m verilator/lint.vlt $(RTL_SRCS) || exit 1; \
	done
	@echo "lint-rtl: verilator -Wall clean (san_nic_top $(DUTS))"

lint-go:
	@out=$$(gofmt -l $(GO_SRCS)); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	@echo "lint-go: gofmt and go vet clean"

# Synthesis for a Xilinx 7-series/UltraScale-class FPGA with the reference parameters. The core
# sits inside a board shell, so no I/O buffers are inserted.
synth: $(BUILD)/synth/stat.txt

$(BUILD)/synth/stat.txt: $(RTL_SRCS) $(RTL_HDRS) | deps
	@mkdir -p $(@D)
	yosys -q -l $(BUILD)/synth/yosys.log -p "read_verilog -Ihw/rtl $(RTL_SRCS); \
		chparam -set DATA_WIDTH $(DATA_WIDTH) -set N_QP $(N_QP) -set CLK_KHZ $(CLK_KHZ) \
		        -set N_MSIX $(N_MSIX) -set AXIL_ADDR_WIDTH $(AXIL_ADDR_WIDTH) san_nic_top; \
		synth_xilinx -top san_nic_top -flatten -noiopad; \
		write_json $(BUILD)/synth/netlist.json; \
		tee -o $@.tmp stat"
	@mv $@.tmp $@
	@echo "synth: san_nic_top synthesized; resources in $@"

# --- simulation model -----------------------------------------------------------------------------

model: $(MODEL)

$(MODEL): $(RTL_SRCS) $(RTL_HDRS) verilator/common.f verilator/model.f verilator/lint.vlt verilator/san_model.cpp verilator/san_model.h | deps
	@rm -rf $(MODEL_DIR)/obj && mkdir -p $(MODEL_DIR)
	verilator -f verilator/model.f $(RTL_PARAMS) -CFLAGS -DSAN_CLK_KHZ=$(CLK_KHZ) verilator/lint.vlt --Mdir $(MODEL_DIR)/obj \
		$(RTL_SRCS) $(CURDIR)/verilator/san_model.cpp
	$(MAKE) -s -C $(MODEL_DIR)/obj -f Vsan_nic_top.mk -j2 \
		Vsan_nic_top__ALL.a verilated.o verilated_threads.o san_model.o
	g++ -shared -Wl,-z,defs -o $@ $(MODEL_DIR)/obj/san_model.o $(MODEL_DIR)/obj/verilated.o \
		$(MODEL_DIR)/obj/verilated_threads.o $(MODEL_DIR)/obj/Vsan_nic_top__ALL.a -lpthread
	@echo "model: $@"

# Per-block unit-test models: each RTL block Verilated on its own, with a wrapper (written by
# verilator/dutgen from the Verilated port list) that lets Go tests drive it port by port.
DUTS := san_csr san_icrc san_sync_fifo san_tx_builder san_rx_parser san_arp san_sq_engine san_rq_engine san_cq_writer san_dma_mux san_completer san_cm_engine
DUT_DIR := $(MODEL_DIR)/dut
DUT_LIBS := $(DUTS:%=$(DUT_DIR)/%/libdut.so)
VERILATOR_INC = $(shell verilator --getenv VERILATOR_ROOT)/include

duts: $(DUT_LIBS)

$(DUT_DIR)/%/libdut.so: $(RTL_SRCS) $(RTL_HDRS) verilator/common.f verilator/lint.vlt verilator/san_dut.h verilator/dutgen/main.go | deps
	@rm -rf $(DUT_DIR)/$* && mkdir -p $(DUT_DIR)/$*
	verilator -f verilator/common.f --top-module $* verilator/lint.vlt --Mdir $(DUT_DIR)/$*/obj $(RTL_SRCS)
	$(GO) run ./verilator/dutgen -header $(DUT_DIR)/$*/obj/V$*.h -o $(DUT_DIR)/$*/obj/san_dut_wrap.cpp
	$(MAKE) -s -C $(DUT_DIR)/$*/obj -f V$*.mk -j2 V$*__ALL.a verilated.o verilated_threads.o
	g++ -std=c++17 -fPIC -O2 -I$(DUT_DIR)/$*/obj -Iverilator -I$(VERILATOR_INC) -I$(VERILATOR_INC)/vltstd \
		-c -o $(DUT_DIR)/$*/obj/san_dut_wrap.o $(DUT_DIR)/$*/obj/san_dut_wrap.cpp
	g++ -shared -Wl,-z,defs -o $@ $(DUT_DIR)/$*/obj/san_dut_wrap.o $(DUT_DIR)/$*/obj/verilated.o \
		$(DUT_DIR)/$*/obj/verilated_threads.o $(DUT_DIR)/$*/obj/V$*__ALL.a -lpthread

# --- Go ---------------------------------------------------------------------------------------------

$(SANCTL): $(GO_SRCS) go.mod go.sum
	$(GO) build -o $@ ./cmd/sanctl

test: deps check-generated lint synth model duts
	$(GO) test -race -count=1 ./...
	$(MAKE) -s vfio-vm-test
	$(MAKE) -s conformance

# driver/vfio against the real vfio-pci: Debian's kernel boots under QEMU (TCG, emulated VT-d)
# with QEMU's edu device, and the package's own tests run inside as /init (see
# driver/vfio/vm_test.go). Fails with the guest's console log. About 10 s once vmdeps is cached.
vfio-vm-test: vmdeps
	SAN_VFIO_VM=$(CURDIR)/$(BUILD)/vm $(GO) test -count=1 -run '^TestVFIOInVM$$' -v ./driver/vfio

# A scripted exchange between two simulated NICs, captured, then checked with tshark: every frame
# must decode as RoCEv2 (with a correct ICRC) or ARP, with no expert errors.
conformance: $(MODEL) $(SANCTL) | deps
	@rm -rf $(BUILD)/pcap && mkdir -p $(BUILD)/pcap
	$(SANCTL) sim exchange --pcap $(BUILD)/pcap/exchange-pmtu1024.pcap
	$(SANCTL) sim exchange --pmtu 256 --latency 0 --sizes 0,1,255,256,257,3000 --pcap $(BUILD)/pcap/exchange-pmtu256.pcap
	$(SANCTL) sim exchange --pmtu 4096 --sizes 4095,4096,4097,20000 --pcap $(BUILD)/pcap/exchange-pmtu4096.pcap
	$(SANCTL) sim exchange --drop 0.05 --late-recv 20000 --seed 3 --pcap $(BUILD)/pcap/lossy-rnr.pcap
	$(SANCTL) capture check $(BUILD)/pcap/exchange-*.pcap
	$(SANCTL) capture check --expect seq-nak,rnr-nak $(BUILD)/pcap/lossy-rnr.pcap
	$(SANCTL) sim cm --pcap $(BUILD)/pcap/cm.pcap
	$(SANCTL) capture check --expect cm,arp $(BUILD)/pcap/cm.pcap

run: $(MODEL) $(SANCTL)
	$(SANCTL) sim info

# The figures of docs/METRICS: synthesis resources of the reference build (Yosys), then the
# simulated hardware figures measured in cycles on two linked NICs (sanctl bench), merged into
# build/bench.json.
BENCH_BUILD = san_nic_top DATA_WIDTH=$(DATA_WIDTH) N_QP=$(N_QP) CLK_KHZ=$(CLK_KHZ); yosys $$(yosys -V | awk '{print $$2}') synth_xilinx -flatten; verilator $$(verilator --version | awk '{print $$2}')
bench: synth $(MODEL) $(SANCTL)
	$(GO) run ./hw/synth/synthreport -netlist $(BUILD)/synth/netlist.json -top san_nic_top \
		-build "$(BENCH_BUILD)" -o $(BUILD)/synth/figures.json
	$(SANCTL) bench --merge $(BUILD)/synth/figures.json --out $(BUILD)/bench.json --build "$(BENCH_BUILD)"
	@echo "bench: figures in $(BUILD)/bench.json"

clean:
	rm -rf $(BUILD)

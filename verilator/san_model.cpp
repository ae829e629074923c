// SPDX-License-Identifier: MIT
// san_model.cpp: the harness around the Verilated san_nic_top. It owns the clock and drives the
// BAR0 AXI4-Lite port as a bus master would, one real handshake at a time; it collects MSI-X
// requests. Ports the RTL does not use yet are held idle (valid low, ready high).

#include "san_model.h"

#include <deque>
#include <memory>

#include "Vsan_nic_top.h"
#include "verilated.h"

struct san_model {
  std::unique_ptr<VerilatedContext> ctx;
  std::unique_ptr<Vsan_nic_top> top;
  uint64_t cycles = 0;
  std::deque<uint16_t> msix;
};

namespace {

// Pre-edge handshakes, sampled after inputs settle and before the rising edge.
struct Handshakes {
  bool aw, w, b, ar, r, msix;
};

void idle_inputs(Vsan_nic_top *t) {
  t->s_axil_awvalid = 0;
  t->s_axil_wvalid = 0;
  t->s_axil_bready = 0;
  t->s_axil_arvalid = 0;
  t->s_axil_rready = 0;
  t->s_axil_awprot = 0;
  t->s_axil_arprot = 0;
  t->m_dma_rd_req_ready = 1;
  t->s_axis_dma_rd_tvalid = 0;
  t->m_dma_wr_req_ready = 1;
  t->m_axis_dma_wr_tready = 1;
  t->s_dma_wr_done_valid = 0;
  t->m_msix_ready = 1;
  t->m_axis_tx_tready = 1;
  t->s_axis_rx_tvalid = 0;
}

// tick runs one clock cycle and reports which handshakes completed at its rising edge.
Handshakes tick(san_model *m) {
  Vsan_nic_top *t = m->top.get();
  t->clk = 0;
  t->eval();
  m->ctx->timeInc(1);
  Handshakes hs{};
  hs.aw = t->s_axil_awvalid && t->s_axil_awready;
  hs.w = t->s_axil_wvalid && t->s_axil_wready;
  hs.b = t->s_axil_bvalid && t->s_axil_bready;
  hs.ar = t->s_axil_arvalid && t->s_axil_arready;
  hs.r = t->s_axil_rvalid && t->s_axil_rready;
  hs.msix = t->m_msix_valid && t->m_msix_ready;
  uint16_t vector = t->m_msix_vector;
  t->clk = 1;
  t->eval();
  m->ctx->timeInc(1);
  m->cycles++;
  if (hs.msix) m->msix.push_back(vector);
  return hs;
}

}  // namespace

extern "C" {

void san_model_get_info(san_model_info *info) {
  info->abi = SAN_MODEL_ABI;
  info->verilator_version = Verilated::productVersion();
}

san_model *san_model_new(uint32_t reset_cycles) {
  auto m = std::make_unique<san_model>();
  m->ctx = std::make_unique<VerilatedContext>();
  m->top = std::make_unique<Vsan_nic_top>(m->ctx.get(), "san_nic_top");
  idle_inputs(m->top.get());
  san_model_reset(m.get(), reset_cycles);
  return m.release();
}

void san_model_free(san_model *m) {
  if (m == nullptr) return;
  m->top->final();
  delete m;
}

void san_model_reset(san_model *m, uint32_t cycles) {
  idle_inputs(m->top.get());
  m->top->rst = 1;
  for (uint32_t i = 0; i < (cycles ? cycles : 1); i++) tick(m);
  m->top->rst = 0;
  m->msix.clear();
}

void san_model_step(san_model *m, uint64_t n) {
  for (uint64_t i = 0; i < n; i++) tick(m);
}

uint64_t san_model_cycles(const san_model *m) { return m->cycles; }

int san_model_mmio_write32(san_model *m, uint32_t addr, uint32_t data, uint8_t strb,
                           uint32_t timeout) {
  Vsan_nic_top *t = m->top.get();
  t->s_axil_awaddr = addr;
  t->s_axil_awvalid = 1;
  t->s_axil_wdata = data;
  t->s_axil_wstrb = strb & 0xf;
  t->s_axil_wvalid = 1;
  t->s_axil_bready = 1;
  for (uint32_t i = 0; i < timeout; i++) {
    // bresp is sampled before the edge that completes the B handshake.
    t->clk = 0;
    t->eval();
    int resp = t->s_axil_bresp;
    Handshakes hs = tick(m);
    if (hs.aw) t->s_axil_awvalid = 0;
    if (hs.w) t->s_axil_wvalid = 0;
    if (hs.b) {
      t->s_axil_bready = 0;
      return resp;
    }
  }
  return SAN_RESP_TIMEOUT;
}

int san_model_mmio_read32(san_model *m, uint32_t addr, uint32_t *data, uint32_t timeout) {
  Vsan_nic_top *t = m->top.get();
  t->s_axil_araddr = addr;
  t->s_axil_arvalid = 1;
  t->s_axil_rready = 1;
  for (uint32_t i = 0; i < timeout; i++) {
    t->clk = 0;
    t->eval();
    uint32_t rdata = t->s_axil_rdata;
    int resp = t->s_axil_rresp;
    Handshakes hs = tick(m);
    if (hs.ar) t->s_axil_arvalid = 0;
    if (hs.r) {
      t->s_axil_rready = 0;
      *data = rdata;
      return resp;
    }
  }
  return SAN_RESP_TIMEOUT;
}

int san_model_msix_pop(san_model *m, uint16_t *vector) {
  if (m->msix.empty()) return 0;
  *vector = m->msix.front();
  m->msix.pop_front();
  return 1;
}

}  // extern "C"

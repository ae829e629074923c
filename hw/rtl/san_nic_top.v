// SPDX-License-Identifier: MIT
// san_nic_top: the SAN NIC core. BAR0 (AXI4-Lite), DMA request ports, MSI-X and the link's
// AXI4-Stream TX/RX are what a board shell (PCIe bridge + Ethernet MAC) or the simulator connect.
// The blocks and the interfaces between them are described in docs/datapath.md.

`resetall
`timescale 1ns / 1ps
`default_nettype none

module san_nic_top #(
    // Width of the link and DMA data paths in bits: 64 (10 Gb/s at 156.25 MHz) up to 512.
    parameter DATA_WIDTH = 64,
    // Connection contexts (queue pairs), a power of two from 2 to 4096; each has a doorbell page.
    parameter N_QP = 256,
    // Core clock in kHz, reported in BUILD_CLK_KHZ (timers count the shell's time, s_time_tick).
    parameter CLK_KHZ = 156250,
    // MSI-X vectors, 1..2048.
    parameter N_MSIX = 32,
    // DMA request tag width; 2**DMA_TAG_WIDTH reads may be in flight.
    parameter DMA_TAG_WIDTH = 8,
    // AXI4-Lite address width: must equal log2 of the BAR0 size that N_QP implies
    // (21 for N_QP <= 256, 25 for N_QP = 4096).
    parameter AXIL_ADDR_WIDTH = 21
) (
    input  wire                       clk,
    input  wire                       rst,

    // Time from the shell, in 1.024 us ticks (ns / 1024), free-running and never going back, as
    // Corundum's cores take PTP time: every protocol timer counts it. A board's shell counts it
    // from its clock; a simulator may move it on while the NIC is idle (m_timers_parked).
    input  wire [31:0]                s_time_tick,
    // The timer scans have stopped: nothing is due before m_wake_tick (when m_wake_valid), and
    // without a frame, a DMA answer or a BAR access the NIC changes nothing until then.
    output wire                       m_timers_parked,
    output wire                       m_wake_valid,
    output wire [31:0]                m_wake_tick,

    // BAR0: AXI4-Lite slave
    input  wire [AXIL_ADDR_WIDTH-1:0] s_axil_awaddr,
    input  wire [2:0]                 s_axil_awprot,
    input  wire                       s_axil_awvalid,
    output wire                       s_axil_awready,
    input  wire [31:0]                s_axil_wdata,
    input  wire [3:0]                 s_axil_wstrb,
    input  wire                       s_axil_wvalid,
    output wire                       s_axil_wready,
    output wire [1:0]                 s_axil_bresp,
    output wire                       s_axil_bvalid,
    input  wire                       s_axil_bready,
    input  wire [AXIL_ADDR_WIDTH-1:0] s_axil_araddr,
    input  wire [2:0]                 s_axil_arprot,
    input  wire                       s_axil_arvalid,
    output wire                       s_axil_arready,
    output wire [31:0]                s_axil_rdata,
    output wire [1:0]                 s_axil_rresp,
    output wire                       s_axil_rvalid,
    input  wire                       s_axil_rready,

    // DMA read request: {iova, length, tag}
    output wire [63:0]                m_dma_rd_req_addr,
    output wire [15:0]                m_dma_rd_req_len,
    output wire [DMA_TAG_WIDTH-1:0]   m_dma_rd_req_tag,
    output wire                       m_dma_rd_req_valid,
    input  wire                       m_dma_rd_req_ready,
    // DMA read data: stream per request, tag in tid, tuser = error
    input  wire [DATA_WIDTH-1:0]      s_axis_dma_rd_tdata,
    input  wire [DATA_WIDTH/8-1:0]    s_axis_dma_rd_tkeep,
    input  wire                       s_axis_dma_rd_tvalid,
    output wire                       s_axis_dma_rd_tready,
    input  wire                       s_axis_dma_rd_tlast,
    input  wire [DMA_TAG_WIDTH-1:0]   s_axis_dma_rd_tid,
    input  wire                       s_axis_dma_rd_tuser,

    // DMA write request: {iova, length, tag} followed by its data stream
    output wire [63:0]                m_dma_wr_req_addr,
    output wire [15:0]                m_dma_wr_req_len,
    output wire [DMA_TAG_WIDTH-1:0]   m_dma_wr_req_tag,
    output wire                       m_dma_wr_req_valid,
    input  wire                       m_dma_wr_req_ready,
    output wire [DATA_WIDTH-1:0]      m_axis_dma_wr_tdata,
    output wire [DATA_WIDTH/8-1:0]    m_axis_dma_wr_tkeep,
    output wire                       m_axis_dma_wr_tvalid,
    input  wire                       m_axis_dma_wr_tready,
    output wire                       m_axis_dma_wr_tlast,
    output wire                       m_axis_dma_wr_tuser,
    // DMA write completion: the tag of a finished write, error flag
    input  wire [DMA_TAG_WIDTH-1:0]   s_dma_wr_done_tag,
    input  wire                       s_dma_wr_done_error,
    input  wire                       s_dma_wr_done_valid,

    // MSI-X request
    output wire [15:0]                m_msix_vector,
    output wire                       m_msix_valid,
    input  wire                       m_msix_ready,

    // Link transmit (to the MAC); tuser = abort this frame
    output wire [DATA_WIDTH-1:0]      m_axis_tx_tdata,
    output wire [DATA_WIDTH/8-1:0]    m_axis_tx_tkeep,
    output wire                       m_axis_tx_tvalid,
    input  wire                       m_axis_tx_tready,
    output wire                       m_axis_tx_tlast,
    output wire                       m_axis_tx_tuser,

    // Link receive (from the MAC); tuser = bad frame (FCS or PHY error)
    input  wire [DATA_WIDTH-1:0]      s_axis_rx_tdata,
    input  wire [DATA_WIDTH/8-1:0]    s_axis_rx_tkeep,
    input  wire                       s_axis_rx_tvalid,
    output wire                       s_axis_rx_tready,
    input  wire                       s_axis_rx_tlast,
    input  wire                       s_axis_rx_tuser
);

`include "san_regs.vh"

// Doorbell pages follow the register blocks; BAR0 is the next power of two that holds them.
localparam integer DB_END = SAN_DB_BASE + N_QP * SAN_DB_STRIDE;
localparam integer BAR0_LOG2 = $clog2(DB_END);
localparam [31:0] BAR0_SIZE = 32'd1 << BAR0_LOG2;

initial begin
    if (DATA_WIDTH < 64 || DATA_WIDTH > 512 || (DATA_WIDTH & (DATA_WIDTH - 1)) != 0) begin
        $error("san_nic_top: DATA_WIDTH must be a power of two from 64 to 512");
        $finish;
    end
    if (N_QP < 2 || N_QP > 4096 || (N_QP & (N_QP - 1)) != 0) begin
        $error("san_nic_top: N_QP must be a power of two from 2 to 4096");
        $finish;
    end
    if (AXIL_ADDR_WIDTH != BAR0_LOG2) begin
        $error("san_nic_top: AXIL_ADDR_WIDTH must be log2 of the BAR0 size (%0d)", BAR0_LOG2);
        $finish;
    end
end

localparam integer QPN_W = $clog2(N_QP);

// --- time: the earliest deadline of the blocks with timers -----------------------------------------
wire        comp_parked, cm_parked;
wire        comp_wake_valid, cm_wake_valid;
wire [31:0] comp_wake_tick, cm_wake_tick;
wire [31:0] wake_cm_minus_comp = cm_wake_tick - comp_wake_tick;
wire        cm_wakes_first = wake_cm_minus_comp[31];   // wrap-around order: deadlines are near
wire unused_wake_diff = &{1'b0, wake_cm_minus_comp[30:0]};
assign m_timers_parked = comp_parked && cm_parked;
assign m_wake_valid = comp_wake_valid || cm_wake_valid;
assign m_wake_tick = !cm_wake_valid || (comp_wake_valid && !cm_wakes_first)
    ? comp_wake_tick : cm_wake_tick;

// --- configuration, context loads, doorbells, counters -------------------------------------------
wire        cfg_enable;
wire [47:0] cfg_mac;
wire [31:0] cfg_ip;
wire [3:0]  cfg_pmtu_log2;

wire             ctx_load_en;
wire             sq_ctx_ready, rq_ctx_ready, cq_ctx_ready, comp_ctx_ready;
wire [QPN_W-1:0] ctx_load_qpn;
wire             ctx_load_rts;
wire [23:0]      ctx_load_dest_qpn;
wire [47:0]      ctx_load_dmac;
wire [31:0]      ctx_load_dip;
wire [15:0]      ctx_load_udp_sport;
wire [23:0]      ctx_load_sq_psn, ctx_load_rq_psn;
wire [63:0]      ctx_load_sq_base, ctx_load_rq_base, ctx_load_cq_base;
wire [4:0]       ctx_load_sq_log, ctx_load_rq_log, ctx_load_cq_log;
wire [15:0]      ctx_load_cq_vector;
wire [2:0]       ctx_load_retry_cnt, ctx_load_rnr_retry;
wire [4:0]       ctx_load_timeout, ctx_load_min_rnr_timer;

wire [QPN_W-1:0] query_qpn;
wire             query_valid, query_ready, query_rts, query_err, query_ans;
wire             stat_timeout, stat_seq_nak, stat_rnr_nak, stat_ack_ignored;
wire [QPN_W-1:0] tr_err_qpn;
wire [7:0]       tr_err_status;
wire             tr_err_valid, tr_err_ready;

wire [QPN_W-1:0] db_sq_qpn, db_rq_qpn, db_cq_qpn;
wire [15:0]      db_sq_pi, db_rq_pi, db_cq_ci;
wire             db_cq_arm;
wire             db_sq_valid, db_sq_ready, db_rq_valid, db_rq_ready, db_cq_valid, db_cq_ready;

wire        parser_drop_valid, rq_drop_valid;
wire [4:0]  parser_drop_reason, rq_drop_reason;
wire        cq_overrun, dma_wr_error;

wire [15:0] cq_msix_vector;
wire        cq_msix_valid, cq_msix_ready;

// Context loads come from the connection manager or the test-only qpc block; the CM goes first.
wire             engines_ready = sq_ctx_ready && rq_ctx_ready && cq_ctx_ready && comp_ctx_ready;
wire             csr_ld_en, csr_ld_rts;
wire [QPN_W-1:0] csr_ld_qpn;
wire [23:0]      csr_ld_dest_qpn, csr_ld_sq_psn, csr_ld_rq_psn;
wire [47:0]      csr_ld_dmac;
wire [31:0]      csr_ld_dip;
wire [15:0]      csr_ld_udp_sport, csr_ld_cq_vector;
wire [63:0]      csr_ld_sq_base, csr_ld_rq_base, csr_ld_cq_base;
wire [4:0]       csr_ld_sq_log, csr_ld_rq_log, csr_ld_cq_log, csr_ld_timeout, csr_ld_min_rnr_timer;
wire [2:0]       csr_ld_retry_cnt, csr_ld_rnr_retry;
wire             cm_ld_valid, cm_ld_rts;
wire [QPN_W-1:0] cm_ld_qpn;
wire [23:0]      cm_ld_dest_qpn, cm_ld_sq_psn, cm_ld_rq_psn;
wire [47:0]      cm_ld_dmac;
wire [31:0]      cm_ld_dip;
wire [15:0]      cm_ld_udp_sport, cm_ld_cq_vector;
wire [63:0]      cm_ld_sq_base, cm_ld_rq_base, cm_ld_cq_base;
wire [4:0]       cm_ld_sq_log, cm_ld_rq_log, cm_ld_cq_log, cm_ld_timeout, cm_ld_min_rnr_timer;
wire [2:0]       cm_ld_retry_cnt, cm_ld_rnr_retry;
wire             cm_ld_take = cm_ld_valid && engines_ready;
// Only the connection manager's stops flush (the test-only QPC loads never do).
wire             cm_ld_flush;
wire             ctx_load_flush = cm_ld_valid && cm_ld_flush;
wire             rec_flush, sq_cqe_flush, rq_cqe_flush;
wire             cq_flushed_valid;
wire [QPN_W-1:0] cq_flushed_qpn;
assign ctx_load_en = cm_ld_take || csr_ld_en;
assign ctx_load_qpn = cm_ld_valid ? cm_ld_qpn : csr_ld_qpn;
assign ctx_load_rts = cm_ld_valid ? cm_ld_rts : csr_ld_rts;
assign ctx_load_dest_qpn = cm_ld_valid ? cm_ld_dest_qpn : csr_ld_dest_qpn;
assign ctx_load_dmac = cm_ld_valid ? cm_ld_dmac : csr_ld_dmac;
assign ctx_load_dip = cm_ld_valid ? cm_ld_dip : csr_ld_dip;
assign ctx_load_udp_sport = cm_ld_valid ? cm_ld_udp_sport : csr_ld_udp_sport;
assign ctx_load_sq_psn = cm_ld_valid ? cm_ld_sq_psn : csr_ld_sq_psn;
assign ctx_load_rq_psn = cm_ld_valid ? cm_ld_rq_psn : csr_ld_rq_psn;
assign ctx_load_sq_base = cm_ld_valid ? cm_ld_sq_base : csr_ld_sq_base;
assign ctx_load_sq_log = cm_ld_valid ? cm_ld_sq_log : csr_ld_sq_log;
assign ctx_load_rq_base = cm_ld_valid ? cm_ld_rq_base : csr_ld_rq_base;
assign ctx_load_rq_log = cm_ld_valid ? cm_ld_rq_log : csr_ld_rq_log;
assign ctx_load_cq_base = cm_ld_valid ? cm_ld_cq_base : csr_ld_cq_base;
assign ctx_load_cq_log = cm_ld_valid ? cm_ld_cq_log : csr_ld_cq_log;
assign ctx_load_cq_vector = cm_ld_valid ? cm_ld_cq_vector : csr_ld_cq_vector;
assign ctx_load_retry_cnt = cm_ld_valid ? cm_ld_retry_cnt : csr_ld_retry_cnt;
assign ctx_load_rnr_retry = cm_ld_valid ? cm_ld_rnr_retry : csr_ld_rnr_retry;
assign ctx_load_timeout = cm_ld_valid ? cm_ld_timeout : csr_ld_timeout;
assign ctx_load_min_rnr_timer = cm_ld_valid ? cm_ld_min_rnr_timer : csr_ld_min_rnr_timer;

// Connection manager configuration, doorbells, counters, interrupt.
wire        cfg_cm_enable;
wire [63:0] cfg_cmdq_base, cfg_eq_base;
wire [4:0]  cfg_cmdq_log, cfg_eq_log, cfg_cm_resp_timeout, cfg_cm_defer_timeout, cfg_cm_timewait;
wire [15:0] cfg_eq_vector;
wire [3:0]  cfg_cm_max_retries;
wire [15:0] cm_db_cmd_pi, cm_db_eq_ci;
wire        cm_db_cmd_valid, cm_db_eq_arm, cm_db_eq_valid;
wire        stat_cm_mad_tx, stat_cm_mad_rx, stat_cm_mad_drop, stat_cm_resend, stat_cm_timeout;
wire        stat_cm_refused;
wire [15:0] cm_msix_vector;
wire        cm_msix_valid, cm_msix_ready;
// ARP: the host's requests, the reply FIFO, counters, interrupt.
wire [31:0] arp_req_ip, arp_rep_ip;
wire [47:0] arp_rep_mac;
wire [7:0]  arp_rep_count;
wire        arp_req_valid, arp_req_ready, arp_rep_valid, arp_rep_pop, arp_rep_arm;
wire [15:0] cfg_arp_vector;
wire        stat_arp_answered, stat_arp_req_sent, stat_arp_rep_received, stat_arp_rep_lost;
wire [15:0] arp_msix_vector;
wire        arp_msix_valid, arp_msix_ready;
// The engines' interrupt requests: the event ring's first, then the ARP reply FIFO's (one per
// arm, so it cannot hold the CQs back), then the CQs'.
wire [15:0] eng_msix_vector = cm_msix_valid ? cm_msix_vector
    : arp_msix_valid ? arp_msix_vector : cq_msix_vector;
wire        eng_msix_valid = cm_msix_valid || arp_msix_valid || cq_msix_valid;
wire        eng_msix_ready;
assign cm_msix_ready = eng_msix_ready && cm_msix_valid;
assign arp_msix_ready = eng_msix_ready && !cm_msix_valid && arp_msix_valid;
assign cq_msix_ready = eng_msix_ready && !cm_msix_valid && !arp_msix_valid;

san_csr #(
    .DATA_WIDTH(DATA_WIDTH),
    .N_QP(N_QP),
    .CLK_KHZ(CLK_KHZ),
    .N_MSIX(N_MSIX),
    .BAR0_SIZE(BAR0_SIZE),
    .AXIL_ADDR_WIDTH(AXIL_ADDR_WIDTH)
) csr_inst (
    .clk(clk),
    .rst(rst),
    .s_axil_awaddr(s_axil_awaddr),
    .s_axil_awprot(s_axil_awprot),
    .s_axil_awvalid(s_axil_awvalid),
    .s_axil_awready(s_axil_awready),
    .s_axil_wdata(s_axil_wdata),
    .s_axil_wstrb(s_axil_wstrb),
    .s_axil_wvalid(s_axil_wvalid),
    .s_axil_wready(s_axil_wready),
    .s_axil_bresp(s_axil_bresp),
    .s_axil_bvalid(s_axil_bvalid),
    .s_axil_bready(s_axil_bready),
    .s_axil_araddr(s_axil_araddr),
    .s_axil_arprot(s_axil_arprot),
    .s_axil_arvalid(s_axil_arvalid),
    .s_axil_arready(s_axil_arready),
    .s_axil_rdata(s_axil_rdata),
    .s_axil_rresp(s_axil_rresp),
    .s_axil_rvalid(s_axil_rvalid),
    .s_axil_rready(s_axil_rready),
    .cfg_enable(cfg_enable),
    .cfg_mac(cfg_mac),
    .cfg_ip(cfg_ip),
    .cfg_pmtu_log2(cfg_pmtu_log2),
    .ctx_load_en(csr_ld_en),
    .ctx_load_ready(engines_ready && !cm_ld_valid),
    .ctx_load_qpn(csr_ld_qpn),
    .ctx_load_rts(csr_ld_rts),
    .ctx_load_dest_qpn(csr_ld_dest_qpn),
    .ctx_load_dmac(csr_ld_dmac),
    .ctx_load_dip(csr_ld_dip),
    .ctx_load_udp_sport(csr_ld_udp_sport),
    .ctx_load_sq_psn(csr_ld_sq_psn),
    .ctx_load_rq_psn(csr_ld_rq_psn),
    .ctx_load_sq_base(csr_ld_sq_base),
    .ctx_load_sq_log(csr_ld_sq_log),
    .ctx_load_rq_base(csr_ld_rq_base),
    .ctx_load_rq_log(csr_ld_rq_log),
    .ctx_load_cq_base(csr_ld_cq_base),
    .ctx_load_cq_log(csr_ld_cq_log),
    .ctx_load_cq_vector(csr_ld_cq_vector),
    .ctx_load_retry_cnt(csr_ld_retry_cnt),
    .ctx_load_rnr_retry(csr_ld_rnr_retry),
    .ctx_load_timeout(csr_ld_timeout),
    .ctx_load_min_rnr_timer(csr_ld_min_rnr_timer),
    .cfg_cm_enable(cfg_cm_enable),
    .cfg_cmdq_base(cfg_cmdq_base),
    .cfg_cmdq_log(cfg_cmdq_log),
    .cfg_eq_base(cfg_eq_base),
    .cfg_eq_log(cfg_eq_log),
    .cfg_eq_vector(cfg_eq_vector),
    .cfg_cm_resp_timeout(cfg_cm_resp_timeout),
    .cfg_cm_max_retries(cfg_cm_max_retries),
    .cfg_cm_defer_timeout(cfg_cm_defer_timeout),
    .cfg_cm_timewait(cfg_cm_timewait),
    .m_cm_db_cmd_pi(cm_db_cmd_pi),
    .m_cm_db_cmd_valid(cm_db_cmd_valid),
    .m_cm_db_eq_ci(cm_db_eq_ci),
    .m_cm_db_eq_arm(cm_db_eq_arm),
    .m_cm_db_eq_valid(cm_db_eq_valid),
    .m_arp_req_ip(arp_req_ip),
    .m_arp_req_valid(arp_req_valid),
    .m_arp_req_ready(arp_req_ready),
    .s_arp_rep_ip(arp_rep_ip),
    .s_arp_rep_mac(arp_rep_mac),
    .s_arp_rep_valid(arp_rep_valid),
    .s_arp_rep_count(arp_rep_count),
    .m_arp_rep_pop(arp_rep_pop),
    .m_arp_rep_arm(arp_rep_arm),
    .cfg_arp_vector(cfg_arp_vector),
    .m_query_qpn(query_qpn),
    .m_query_valid(query_valid),
    .m_query_ready(query_ready),
    .s_query_rts(query_rts),
    .s_query_err(query_err),
    .s_query_valid(query_ans),
    .m_db_sq_qpn(db_sq_qpn),
    .m_db_sq_pi(db_sq_pi),
    .m_db_sq_valid(db_sq_valid),
    .m_db_sq_ready(db_sq_ready),
    .m_db_rq_qpn(db_rq_qpn),
    .m_db_rq_pi(db_rq_pi),
    .m_db_rq_valid(db_rq_valid),
    .m_db_rq_ready(db_rq_ready),
    .m_db_cq_qpn(db_cq_qpn),
    .m_db_cq_ci(db_cq_ci),
    .m_db_cq_arm(db_cq_arm),
    .m_db_cq_valid(db_cq_valid),
    .m_db_cq_ready(db_cq_ready),
    .stat_tx_frame(m_axis_tx_tvalid && m_axis_tx_tready && m_axis_tx_tlast),
    .stat_rx_frame(rx_hdr_valid && rx_hdr_ready),
    .stat_drop0_valid(parser_drop_valid),
    .stat_drop0_reason(parser_drop_reason),
    .stat_drop1_valid(rq_drop_valid),
    .stat_drop1_reason(rq_drop_reason),
    .stat_cq_overrun(cq_overrun),
    .stat_dma_error(dma_wr_error),
    .stat_timeout(stat_timeout),
    .stat_seq_nak(stat_seq_nak),
    .stat_rnr_nak(stat_rnr_nak),
    .stat_ack_ignored(stat_ack_ignored),
    .stat_cm_mad_tx(stat_cm_mad_tx),
    .stat_cm_mad_rx(stat_cm_mad_rx),
    .stat_cm_mad_drop(stat_cm_mad_drop),
    .stat_cm_resend(stat_cm_resend),
    .stat_cm_timeout(stat_cm_timeout),
    .stat_cm_refused(stat_cm_refused),
    .stat_arp_answered(stat_arp_answered),
    .stat_arp_req_sent(stat_arp_req_sent),
    .stat_arp_rep_received(stat_arp_rep_received),
    .stat_arp_rep_lost(stat_arp_rep_lost),
    .s_msix_vector(eng_msix_vector),
    .s_msix_valid(eng_msix_valid),
    .s_msix_ready(eng_msix_ready),
    .m_msix_vector(m_msix_vector),
    .m_msix_valid(m_msix_valid),
    .m_msix_ready(m_msix_ready)
);

// --- DMA clients -----------------------------------------------------------------------------------
wire [63:0] sq_rd_req_addr, rq_rd_req_addr, rq_wr_req_addr, cq_wr_req_addr;
wire [15:0] sq_rd_req_len, rq_rd_req_len, rq_wr_req_len, cq_wr_req_len;
wire        sq_rd_req_valid, sq_rd_req_ready, rq_rd_req_valid, rq_rd_req_ready;
wire        rq_wr_req_valid, rq_wr_req_ready, cq_wr_req_valid, cq_wr_req_ready;

wire [DATA_WIDTH-1:0]   sq_rd_tdata, rq_rd_tdata, rq_wr_tdata, cq_wr_tdata;
wire [DATA_WIDTH/8-1:0] sq_rd_tkeep, rq_rd_tkeep, rq_wr_tkeep, cq_wr_tkeep;
wire sq_rd_tvalid, sq_rd_tready, sq_rd_tlast, sq_rd_tuser;
wire rq_rd_tvalid, rq_rd_tready, rq_rd_tlast, rq_rd_tuser;
wire rq_wr_tvalid, rq_wr_tready, rq_wr_tlast;
wire cq_wr_tvalid, cq_wr_tready, cq_wr_tlast;
wire [63:0] cm_rd_req_addr, cm_wr_req_addr;
wire [15:0] cm_rd_req_len, cm_wr_req_len;
wire        cm_rd_req_valid, cm_rd_req_ready, cm_wr_req_valid, cm_wr_req_ready;
wire [DATA_WIDTH-1:0]   cm_rd_tdata, cm_wr_tdata;
wire [DATA_WIDTH/8-1:0] cm_rd_tkeep, cm_wr_tkeep;
wire cm_rd_tvalid, cm_rd_tready, cm_rd_tlast, cm_rd_tuser;
wire cm_wr_tvalid, cm_wr_tready, cm_wr_tlast;

// --- transmit: the engines' descriptors, ACKs first ------------------------------------------------
wire [47:0] sq_tx_dst_mac, ack_tx_dst_mac;
wire [31:0] sq_tx_dst_ip, ack_tx_dst_ip;
wire [15:0] sq_tx_udp_sport, ack_tx_udp_sport;
wire [7:0]  sq_tx_opcode, ack_tx_opcode;
wire        sq_tx_se, ack_tx_se;
wire [23:0] sq_tx_dest_qp, ack_tx_dest_qp;
wire        sq_tx_ack_req, ack_tx_ack_req;
wire [23:0] sq_tx_psn, ack_tx_psn;
wire [1:0]  sq_tx_ext, ack_tx_ext;
wire [31:0] sq_tx_ext0, ack_tx_ext0;
wire [23:0] sq_tx_ext1, ack_tx_ext1;
wire [12:0] sq_tx_pay_len, ack_tx_pay_len;
wire        sq_tx_valid, sq_tx_ready, ack_tx_valid, ack_tx_ready;

// The frame builder's output, and the ARP block's frames, before the link mux.
wire [DATA_WIDTH-1:0]   bld_tdata, arp_tx_tdata;
wire [DATA_WIDTH/8-1:0] bld_tkeep, arp_tx_tkeep;
wire bld_tvalid, bld_tready, bld_tlast, bld_tuser;
wire arp_tx_tvalid, arp_tx_tready, arp_tx_tlast;

wire [DATA_WIDTH-1:0]   sq_pay_tdata;
wire [DATA_WIDTH/8-1:0] sq_pay_tkeep;
wire sq_pay_tvalid, sq_pay_tready, sq_pay_tlast;

// The connection manager's MADs (UD SEND_ONLY to QP1, DETH with the GSI Q_Key).
wire [47:0] cm_tx_dst_mac;
wire [31:0] cm_tx_dst_ip;
wire [15:0] cm_tx_udp_sport;
wire [23:0] cm_tx_psn;
wire        cm_tx_valid, cm_tx_ready;
wire [DATA_WIDTH-1:0]   cm_pay_tdata;
wire [DATA_WIDTH/8-1:0] cm_pay_tkeep;
wire cm_pay_tvalid, cm_pay_tready, cm_pay_tlast;

// Header priority: ACKs, then MADs, then the send queues. Payloads follow their headers in
// order: a small FIFO remembers whose payload (sq 0, cm 1) each taken header announced.
wire tx_hdr_ready;
wire sel_ack = ack_tx_valid;
wire sel_cm = !ack_tx_valid && cm_tx_valid;
reg  [3:0] txp_src = 4'd0;     // FIFO of payload sources, head at bit 0
reg  [2:0] txp_cnt = 3'd0;
wire txp_full = txp_cnt == 3'd4;
wire tx_take = tx_hdr_ready && !txp_full;
assign ack_tx_ready = tx_take;
assign cm_tx_ready = tx_take && !ack_tx_valid;
assign sq_tx_ready = tx_take && !ack_tx_valid && !cm_tx_valid;
wire txp_push = (cm_tx_valid && cm_tx_ready) || (sq_tx_valid && sq_tx_ready && sq_tx_pay_len != 13'd0);
wire txp_head_cm = txp_src[0];
wire [DATA_WIDTH-1:0]   txp_tdata = txp_head_cm ? cm_pay_tdata : sq_pay_tdata;
wire [DATA_WIDTH/8-1:0] txp_tkeep = txp_head_cm ? cm_pay_tkeep : sq_pay_tkeep;
wire txp_tvalid = txp_cnt != 3'd0 && (txp_head_cm ? cm_pay_tvalid : sq_pay_tvalid);
wire txp_tlast = txp_head_cm ? cm_pay_tlast : sq_pay_tlast;
wire txp_tready;
assign cm_pay_tready = txp_cnt != 3'd0 && txp_head_cm && txp_tready;
assign sq_pay_tready = txp_cnt != 3'd0 && !txp_head_cm && txp_tready;
wire txp_pop = txp_tvalid && txp_tready && txp_tlast;
wire [1:0] txp_slot = txp_cnt[1:0] - {1'b0, txp_pop};   // where a push lands (never when full)
always @(posedge clk) begin
    if (txp_pop) begin
        txp_src <= {1'b0, txp_src[3:1]};
    end
    if (txp_push) begin
        txp_src[txp_slot] <= cm_tx_valid && cm_tx_ready;
    end
    txp_cnt <= txp_cnt + {2'd0, txp_push} - {2'd0, txp_pop};
    if (rst) begin
        txp_src <= 4'd0;
        txp_cnt <= 3'd0;
    end
end

// --- completions -----------------------------------------------------------------------------------
// Send completions come from the completer (WQE index only), receive completions from the rq
// engine.
wire [QPN_W-1:0] sq_cqe_qpn, rq_cqe_qpn;
wire [63:0] rq_cqe_wr_id;
wire [31:0] rq_cqe_byte_len;
wire [7:0]  rq_cqe_opcode, sq_cqe_status, rq_cqe_status;
wire [15:0] sq_cqe_wqe_index, rq_cqe_wqe_index;
wire        rq_cqe_solicited;
wire        sq_cqe_valid, sq_cqe_ready, rq_cqe_valid, rq_cqe_ready;

// --- reliability: the sq engine's records, the completer's commands and progress, ACKs ---------
wire [QPN_W-1:0] rec_qpn, rw_qpn, una_qpn, ack_qpn;
wire        rec_last, rec_signaled, rec_valid, rec_ready;
wire [15:0] rec_idx, rw_idx, una_idx;
wire [23:0] rec_first_psn, rec_end_psn, rw_psn, rw_pkt, una_psn, ack_psn, ack_msn;
wire [3:0]  rec_gen, rw_gen;
wire [7:0]  rec_status, ack_syndrome;
wire        rw_hold, rw_valid, rw_ready, una_valid, ack_valid, ack_ready;

// --- receive: the parser's descriptors and payload -------------------------------------------------
wire [7:0]  rx_hdr_opcode;
wire        rx_hdr_se;
wire [23:0] rx_hdr_dest_qp;
wire        rx_hdr_ack_req;
wire [23:0] rx_hdr_psn;
wire [7:0]  rx_hdr_aeth_syndrome;
wire [23:0] rx_hdr_aeth_msn;
wire [12:0] rx_hdr_pay_len;
wire        rx_hdr_valid, rx_hdr_ready;
wire [DATA_WIDTH-1:0]   rx_pay_tdata;
wire [DATA_WIDTH/8-1:0] rx_pay_tkeep;
wire rx_pay_tvalid, rx_pay_tready, rx_pay_tlast;
wire [47:0] rx_hdr_src_mac;
wire [31:0] rx_hdr_src_ip, rx_hdr_deth_qkey;
// Good ARP frames, from the parser to the ARP block.
wire        rx_arp_reply, rx_arp_valid, rx_arp_ready;
wire [47:0] rx_arp_sha;
wire [31:0] rx_arp_spa;

// Receive demux: UD SEND_ONLY to QP1 (CM MADs) to the connection manager, the rest to the rq
// engine. Payloads follow their headers in order: a small FIFO remembers whose each one is.
wire rx_to_cm = rx_hdr_opcode == 8'h64 && rx_hdr_dest_qp == 24'd1;
wire rq_hdr_ready, cm_hdr_ready;
// Deep enough for every frame the rq engine can hold between header and payload (its items).
localparam integer RXP_AW = 6;
reg  [(1<<RXP_AW)-1:0] rxp_dst = {(1<<RXP_AW){1'b0}};   // destinations (1 = cm) by slot
reg  [RXP_AW-1:0] rxp_head = {RXP_AW{1'b0}}, rxp_tail = {RXP_AW{1'b0}};
reg  [RXP_AW:0]   rxp_cnt = {(RXP_AW+1){1'b0}};
wire rxp_full = rxp_cnt[RXP_AW];
wire rxp_any = rxp_cnt != {(RXP_AW+1){1'b0}};
wire rq_hdr_valid = rx_hdr_valid && !rx_to_cm && !rxp_full;
wire cm_hdr_valid = rx_hdr_valid && rx_to_cm && !rxp_full;
assign rx_hdr_ready = !rxp_full && (rx_to_cm ? cm_hdr_ready : rq_hdr_ready);
wire rxp_push = rx_hdr_valid && rx_hdr_ready && rx_hdr_pay_len != 13'd0;
wire rxp_head_cm = rxp_dst[rxp_head];
wire rq_pay_tvalid = rx_pay_tvalid && rxp_any && !rxp_head_cm;
wire cm_pay_rx_tvalid = rx_pay_tvalid && rxp_any && rxp_head_cm;
wire rq_pay_tready, cm_pay_rx_tready;
assign rx_pay_tready = rxp_any && (rxp_head_cm ? cm_pay_rx_tready : rq_pay_tready);
wire rxp_pop = rx_pay_tvalid && rx_pay_tready && rx_pay_tlast;
always @(posedge clk) begin
    if (rxp_push) begin
        rxp_dst[rxp_tail] <= rx_to_cm;
        rxp_tail <= rxp_tail + 1'b1;
    end
    if (rxp_pop) begin
        rxp_head <= rxp_head + 1'b1;
    end
    rxp_cnt <= rxp_cnt + {{RXP_AW{1'b0}}, rxp_push} - {{RXP_AW{1'b0}}, rxp_pop};
    if (rst) begin
        rxp_head <= {RXP_AW{1'b0}};
        rxp_tail <= {RXP_AW{1'b0}};
        rxp_cnt <= {(RXP_AW+1){1'b0}};
    end
end

san_sq_engine #(
    .DATA_WIDTH(DATA_WIDTH),
    .N_QP(N_QP)
) sq_inst (
    .clk(clk),
    .rst(rst),
    .cfg_enable(cfg_enable),
    .cfg_pmtu_log2(cfg_pmtu_log2),
    .ctx_load_en(ctx_load_en),
    .ctx_load_ready(sq_ctx_ready),
    .ctx_load_qpn(ctx_load_qpn),
    .ctx_load_rts(ctx_load_rts),
    .ctx_load_dest_qpn(ctx_load_dest_qpn),
    .ctx_load_dmac(ctx_load_dmac),
    .ctx_load_dip(ctx_load_dip),
    .ctx_load_udp_sport(ctx_load_udp_sport),
    .ctx_load_sq_psn(ctx_load_sq_psn),
    .ctx_load_sq_base(ctx_load_sq_base),
    .ctx_load_sq_log(ctx_load_sq_log),
    .ctx_load_flush(ctx_load_flush),
    .s_db_qpn(db_sq_qpn),
    .s_db_pi(db_sq_pi),
    .s_db_valid(db_sq_valid),
    .s_db_ready(db_sq_ready),
    .m_dma_rd_req_addr(sq_rd_req_addr),
    .m_dma_rd_req_len(sq_rd_req_len),
    .m_dma_rd_req_valid(sq_rd_req_valid),
    .m_dma_rd_req_ready(sq_rd_req_ready),
    .s_axis_dma_rd_tdata(sq_rd_tdata),
    .s_axis_dma_rd_tkeep(sq_rd_tkeep),
    .s_axis_dma_rd_tvalid(sq_rd_tvalid),
    .s_axis_dma_rd_tready(sq_rd_tready),
    .s_axis_dma_rd_tlast(sq_rd_tlast),
    .s_axis_dma_rd_tuser(sq_rd_tuser),
    .m_tx_dst_mac(sq_tx_dst_mac),
    .m_tx_dst_ip(sq_tx_dst_ip),
    .m_tx_udp_sport(sq_tx_udp_sport),
    .m_tx_opcode(sq_tx_opcode),
    .m_tx_se(sq_tx_se),
    .m_tx_dest_qp(sq_tx_dest_qp),
    .m_tx_ack_req(sq_tx_ack_req),
    .m_tx_psn(sq_tx_psn),
    .m_tx_ext(sq_tx_ext),
    .m_tx_ext0(sq_tx_ext0),
    .m_tx_ext1(sq_tx_ext1),
    .m_tx_pay_len(sq_tx_pay_len),
    .m_tx_valid(sq_tx_valid),
    .m_tx_ready(sq_tx_ready),
    .m_axis_pay_tdata(sq_pay_tdata),
    .m_axis_pay_tkeep(sq_pay_tkeep),
    .m_axis_pay_tvalid(sq_pay_tvalid),
    .m_axis_pay_tready(sq_pay_tready),
    .m_axis_pay_tlast(sq_pay_tlast),
    .m_rec_qpn(rec_qpn),
    .m_rec_last(rec_last),
    .m_rec_idx(rec_idx),
    .m_rec_first_psn(rec_first_psn),
    .m_rec_end_psn(rec_end_psn),
    .m_rec_signaled(rec_signaled),
    .m_rec_status(rec_status),
    .m_rec_flush(rec_flush),
    .m_rec_gen(rec_gen),
    .m_rec_valid(rec_valid),
    .m_rec_ready(rec_ready),
    .s_rw_qpn(rw_qpn),
    .s_rw_hold(rw_hold),
    .s_rw_gen(rw_gen),
    .s_rw_idx(rw_idx),
    .s_rw_psn(rw_psn),
    .s_rw_pkt(rw_pkt),
    .s_rw_valid(rw_valid),
    .s_rw_ready(rw_ready),
    .s_una_qpn(una_qpn),
    .s_una_psn(una_psn),
    .s_una_idx(una_idx),
    .s_una_valid(una_valid)
);

san_completer #(
    .N_QP(N_QP)
) comp_inst (
    .clk(clk),
    .rst(rst),
    .time_tick(s_time_tick),
    .m_parked(comp_parked),
    .m_wake_valid(comp_wake_valid),
    .m_wake_tick(comp_wake_tick),
    .ctx_load_en(ctx_load_en),
    .ctx_load_ready(comp_ctx_ready),
    .ctx_load_qpn(ctx_load_qpn),
    .ctx_load_rts(ctx_load_rts),
    .ctx_load_sq_psn(ctx_load_sq_psn),
    .ctx_load_retry_cnt(ctx_load_retry_cnt),
    .ctx_load_rnr_retry(ctx_load_rnr_retry),
    .ctx_load_timeout(ctx_load_timeout),
    .s_rec_qpn(rec_qpn),
    .s_rec_last(rec_last),
    .s_rec_idx(rec_idx),
    .s_rec_first_psn(rec_first_psn),
    .s_rec_end_psn(rec_end_psn),
    .s_rec_signaled(rec_signaled),
    .s_rec_status(rec_status),
    .s_rec_flush(rec_flush),
    .s_rec_gen(rec_gen),
    .s_rec_valid(rec_valid),
    .s_rec_ready(rec_ready),
    .s_ack_qpn(ack_qpn),
    .s_ack_psn(ack_psn),
    .s_ack_syndrome(ack_syndrome),
    .s_ack_msn(ack_msn),
    .s_ack_valid(ack_valid),
    .s_ack_ready(ack_ready),
    .m_rw_qpn(rw_qpn),
    .m_rw_hold(rw_hold),
    .m_rw_gen(rw_gen),
    .m_rw_idx(rw_idx),
    .m_rw_psn(rw_psn),
    .m_rw_pkt(rw_pkt),
    .m_rw_valid(rw_valid),
    .m_rw_ready(rw_ready),
    .m_una_qpn(una_qpn),
    .m_una_psn(una_psn),
    .m_una_idx(una_idx),
    .m_una_valid(una_valid),
    .m_cqe_qpn(sq_cqe_qpn),
    .m_cqe_wqe_index(sq_cqe_wqe_index),
    .m_cqe_status(sq_cqe_status),
    .m_cqe_flush(sq_cqe_flush),
    .m_cqe_valid(sq_cqe_valid),
    .m_cqe_ready(sq_cqe_ready),
    .s_query_qpn(query_qpn),
    .s_query_valid(query_valid),
    .s_query_ready(query_ready),
    .m_query_rts(query_rts),
    .m_query_err(query_err),
    .m_query_valid(query_ans),
    .stat_timeout(stat_timeout),
    .stat_seq_nak(stat_seq_nak),
    .stat_rnr_nak(stat_rnr_nak),
    .m_err_qpn(tr_err_qpn),
    .m_err_status(tr_err_status),
    .m_err_valid(tr_err_valid),
    .m_err_ready(tr_err_ready),
    .stat_ack_ignored(stat_ack_ignored)
);

san_tx_builder #(
    .DATA_WIDTH(DATA_WIDTH)
) tx_inst (
    .clk(clk),
    .rst(rst),
    .s_hdr_dst_mac(sel_ack ? ack_tx_dst_mac : sel_cm ? cm_tx_dst_mac : sq_tx_dst_mac),
    .s_hdr_src_mac(cfg_mac),
    .s_hdr_src_ip(cfg_ip),
    .s_hdr_dst_ip(sel_ack ? ack_tx_dst_ip : sel_cm ? cm_tx_dst_ip : sq_tx_dst_ip),
    .s_hdr_ip_id(16'd0),
    .s_hdr_udp_sport(sel_ack ? ack_tx_udp_sport : sel_cm ? cm_tx_udp_sport : sq_tx_udp_sport),
    .s_hdr_opcode(sel_ack ? ack_tx_opcode : sel_cm ? 8'h64 : sq_tx_opcode),
    .s_hdr_se(sel_ack ? ack_tx_se : sel_cm ? 1'b0 : sq_tx_se),
    .s_hdr_pkey(16'hFFFF),
    .s_hdr_dest_qp(sel_ack ? ack_tx_dest_qp : sel_cm ? 24'd1 : sq_tx_dest_qp),
    .s_hdr_ack_req(sel_ack ? ack_tx_ack_req : sel_cm ? 1'b0 : sq_tx_ack_req),
    .s_hdr_psn(sel_ack ? ack_tx_psn : sel_cm ? cm_tx_psn : sq_tx_psn),
    .s_hdr_ext(sel_ack ? ack_tx_ext : sel_cm ? 2'd2 : sq_tx_ext),
    .s_hdr_ext0(sel_ack ? ack_tx_ext0 : sel_cm ? 32'h8001_0000 : sq_tx_ext0),
    .s_hdr_ext1(sel_ack ? ack_tx_ext1 : sel_cm ? 24'd1 : sq_tx_ext1),
    .s_hdr_pay_len(sel_ack ? ack_tx_pay_len : sel_cm ? 13'd256 : sq_tx_pay_len),
    .s_hdr_valid((ack_tx_valid || cm_tx_valid || sq_tx_valid) && !txp_full),
    .s_hdr_ready(tx_hdr_ready),
    .s_axis_pay_tdata(txp_tdata),
    .s_axis_pay_tkeep(txp_tkeep),
    .s_axis_pay_tvalid(txp_tvalid),
    .s_axis_pay_tready(txp_tready),
    .s_axis_pay_tlast(txp_tlast),
    .m_axis_tx_tdata(bld_tdata),
    .m_axis_tx_tkeep(bld_tkeep),
    .m_axis_tx_tvalid(bld_tvalid),
    .m_axis_tx_tready(bld_tready),
    .m_axis_tx_tlast(bld_tlast),
    .m_axis_tx_tuser(bld_tuser)
);

// --- the link: the frame builder's frames and the ARP block's, a whole frame at a time ----------
// The choice is a register, so the link's data path gains only a 2:1 mux. The ARP block takes
// the link at a frame boundary when it has a frame and its turn: after each of the builder's
// frames, or while the builder shows nothing; its turn ends with its frame. So neither starves:
// under load they alternate frame by frame, and an ARP frame waits at most one builder frame.
// A beat the builder shows and the MAC has not taken is never withdrawn.
reg  arp_sel_reg = 1'b0, arp_sel_next;   // the link carries the ARP block's frame
reg  bld_mid_reg = 1'b0, bld_mid_next;   // a builder frame has begun on the link
reg  arp_turn_reg = 1'b1, arp_turn_next; // the ARP block may go before the builder's next frame
wire bld_fire = bld_tvalid && bld_tready;
wire arp_fire = arp_tx_tvalid && arp_tx_tready;
assign bld_tready = m_axis_tx_tready && !arp_sel_reg;
assign arp_tx_tready = m_axis_tx_tready && arp_sel_reg;
assign m_axis_tx_tdata = arp_sel_reg ? arp_tx_tdata : bld_tdata;
assign m_axis_tx_tkeep = arp_sel_reg ? arp_tx_tkeep : bld_tkeep;
assign m_axis_tx_tvalid = arp_sel_reg ? arp_tx_tvalid : bld_tvalid;
assign m_axis_tx_tlast = arp_sel_reg ? arp_tx_tlast : bld_tlast;
assign m_axis_tx_tuser = !arp_sel_reg && bld_tuser;

always @* begin
    arp_sel_next = arp_sel_reg;
    bld_mid_next = bld_fire ? !bld_tlast : bld_mid_reg;
    arp_turn_next = arp_turn_reg;
    if (arp_sel_reg) begin
        if (arp_fire && arp_tx_tlast) begin
            arp_sel_next = 1'b0;
            arp_turn_next = 1'b0;
        end
    end else begin
        if ((bld_fire && bld_tlast) || (!bld_tvalid && !bld_mid_reg)) begin
            arp_turn_next = 1'b1;
            arp_sel_next = arp_tx_tvalid && arp_turn_reg;
        end
    end
end

always @(posedge clk) begin
    arp_sel_reg <= arp_sel_next;
    bld_mid_reg <= bld_mid_next;
    arp_turn_reg <= arp_turn_next;
    if (rst) begin
        arp_sel_reg <= 1'b0;
        bld_mid_reg <= 1'b0;
        arp_turn_reg <= 1'b1;
    end
end

san_arp #(
    .DATA_WIDTH(DATA_WIDTH)
) arp_inst (
    .clk(clk),
    .rst(rst),
    .cfg_mac(cfg_mac),
    .cfg_ip(cfg_ip),
    .s_arp_reply(rx_arp_reply),
    .s_arp_sha(rx_arp_sha),
    .s_arp_spa(rx_arp_spa),
    .s_arp_valid(rx_arp_valid),
    .s_arp_ready(rx_arp_ready),
    .s_req_ip(arp_req_ip),
    .s_req_valid(arp_req_valid),
    .s_req_ready(arp_req_ready),
    .m_rep_ip(arp_rep_ip),
    .m_rep_mac(arp_rep_mac),
    .m_rep_valid(arp_rep_valid),
    .m_rep_count(arp_rep_count),
    .s_rep_pop(arp_rep_pop),
    .s_rep_arm(arp_rep_arm),
    .cfg_vector(cfg_arp_vector),
    .m_msix_vector(arp_msix_vector),
    .m_msix_valid(arp_msix_valid),
    .m_msix_ready(arp_msix_ready),
    .m_axis_tx_tdata(arp_tx_tdata),
    .m_axis_tx_tkeep(arp_tx_tkeep),
    .m_axis_tx_tvalid(arp_tx_tvalid),
    .m_axis_tx_tready(arp_tx_tready),
    .m_axis_tx_tlast(arp_tx_tlast),
    .stat_answered(stat_arp_answered),
    .stat_req_sent(stat_arp_req_sent),
    .stat_rep_received(stat_arp_rep_received),
    .stat_rep_lost(stat_arp_rep_lost)
);

san_rx_parser #(
    .DATA_WIDTH(DATA_WIDTH),
    .N_QP(N_QP)
) rx_inst (
    .clk(clk),
    .rst(rst),
    .pmtu_log2(cfg_pmtu_log2),
    .cfg_mac(cfg_mac),
    .cfg_ip(cfg_ip),
    .s_axis_rx_tdata(s_axis_rx_tdata),
    .s_axis_rx_tkeep(s_axis_rx_tkeep),
    .s_axis_rx_tvalid(s_axis_rx_tvalid),
    .s_axis_rx_tready(s_axis_rx_tready),
    .s_axis_rx_tlast(s_axis_rx_tlast),
    .s_axis_rx_tuser(s_axis_rx_tuser),
    .m_hdr_opcode(rx_hdr_opcode),
    .m_hdr_se(rx_hdr_se),
    .m_hdr_pad_cnt(),
    .m_hdr_dest_qp(rx_hdr_dest_qp),
    .m_hdr_ack_req(rx_hdr_ack_req),
    .m_hdr_psn(rx_hdr_psn),
    .m_hdr_src_mac(rx_hdr_src_mac),
    .m_hdr_src_ip(rx_hdr_src_ip),
    .m_hdr_dst_ip(),
    .m_hdr_udp_sport(),
    .m_hdr_aeth_syndrome(rx_hdr_aeth_syndrome),
    .m_hdr_aeth_msn(rx_hdr_aeth_msn),
    .m_hdr_deth_qkey(rx_hdr_deth_qkey),
    .m_hdr_deth_src_qp(),
    .m_hdr_pay_len(rx_hdr_pay_len),
    .m_hdr_valid(rx_hdr_valid),
    .m_hdr_ready(rx_hdr_ready),
    .m_axis_pay_tdata(rx_pay_tdata),
    .m_axis_pay_tkeep(rx_pay_tkeep),
    .m_axis_pay_tvalid(rx_pay_tvalid),
    .m_axis_pay_tready(rx_pay_tready),
    .m_axis_pay_tlast(rx_pay_tlast),
    .m_arp_reply(rx_arp_reply),
    .m_arp_sha(rx_arp_sha),
    .m_arp_spa(rx_arp_spa),
    .m_arp_valid(rx_arp_valid),
    .m_arp_ready(rx_arp_ready),
    .m_drop_valid(parser_drop_valid),
    .m_drop_reason(parser_drop_reason)
);

san_rq_engine #(
    .DATA_WIDTH(DATA_WIDTH),
    .N_QP(N_QP)
) rq_inst (
    .clk(clk),
    .rst(rst),
    .cfg_enable(cfg_enable),
    .ctx_load_en(ctx_load_en),
    .ctx_load_ready(rq_ctx_ready),
    .ctx_load_qpn(ctx_load_qpn),
    .ctx_load_rts(ctx_load_rts),
    .ctx_load_dest_qpn(ctx_load_dest_qpn),
    .ctx_load_dmac(ctx_load_dmac),
    .ctx_load_dip(ctx_load_dip),
    .ctx_load_udp_sport(ctx_load_udp_sport),
    .ctx_load_rq_psn(ctx_load_rq_psn),
    .ctx_load_min_rnr_timer(ctx_load_min_rnr_timer),
    .ctx_load_flush(ctx_load_flush),
    .ctx_load_rq_base(ctx_load_rq_base),
    .ctx_load_rq_log(ctx_load_rq_log),
    .s_db_qpn(db_rq_qpn),
    .s_db_pi(db_rq_pi),
    .s_db_valid(db_rq_valid),
    .s_db_ready(db_rq_ready),
    .s_hdr_opcode(rx_hdr_opcode),
    .s_hdr_se(rx_hdr_se),
    .s_hdr_dest_qp(rx_hdr_dest_qp),
    .s_hdr_ack_req(rx_hdr_ack_req),
    .s_hdr_psn(rx_hdr_psn),
    .s_hdr_src_ip(rx_hdr_src_ip),
    .s_hdr_aeth_syndrome(rx_hdr_aeth_syndrome),
    .s_hdr_aeth_msn(rx_hdr_aeth_msn),
    .s_hdr_pay_len(rx_hdr_pay_len),
    .s_hdr_valid(rq_hdr_valid),
    .s_hdr_ready(rq_hdr_ready),
    .s_axis_pay_tdata(rx_pay_tdata),
    .s_axis_pay_tkeep(rx_pay_tkeep),
    .s_axis_pay_tvalid(rq_pay_tvalid),
    .s_axis_pay_tready(rq_pay_tready),
    .s_axis_pay_tlast(rx_pay_tlast),
    .m_dma_rd_req_addr(rq_rd_req_addr),
    .m_dma_rd_req_len(rq_rd_req_len),
    .m_dma_rd_req_valid(rq_rd_req_valid),
    .m_dma_rd_req_ready(rq_rd_req_ready),
    .s_axis_dma_rd_tdata(rq_rd_tdata),
    .s_axis_dma_rd_tkeep(rq_rd_tkeep),
    .s_axis_dma_rd_tvalid(rq_rd_tvalid),
    .s_axis_dma_rd_tready(rq_rd_tready),
    .s_axis_dma_rd_tlast(rq_rd_tlast),
    .s_axis_dma_rd_tuser(rq_rd_tuser),
    .m_dma_wr_req_addr(rq_wr_req_addr),
    .m_dma_wr_req_len(rq_wr_req_len),
    .m_dma_wr_req_valid(rq_wr_req_valid),
    .m_dma_wr_req_ready(rq_wr_req_ready),
    .m_axis_dma_wr_tdata(rq_wr_tdata),
    .m_axis_dma_wr_tkeep(rq_wr_tkeep),
    .m_axis_dma_wr_tvalid(rq_wr_tvalid),
    .m_axis_dma_wr_tready(rq_wr_tready),
    .m_axis_dma_wr_tlast(rq_wr_tlast),
    .m_tx_dst_mac(ack_tx_dst_mac),
    .m_tx_dst_ip(ack_tx_dst_ip),
    .m_tx_udp_sport(ack_tx_udp_sport),
    .m_tx_opcode(ack_tx_opcode),
    .m_tx_se(ack_tx_se),
    .m_tx_dest_qp(ack_tx_dest_qp),
    .m_tx_ack_req(ack_tx_ack_req),
    .m_tx_psn(ack_tx_psn),
    .m_tx_ext(ack_tx_ext),
    .m_tx_ext0(ack_tx_ext0),
    .m_tx_ext1(ack_tx_ext1),
    .m_tx_pay_len(ack_tx_pay_len),
    .m_tx_valid(ack_tx_valid),
    .m_tx_ready(ack_tx_ready),
    .m_cqe_qpn(rq_cqe_qpn),
    .m_cqe_wr_id(rq_cqe_wr_id),
    .m_cqe_byte_len(rq_cqe_byte_len),
    .m_cqe_opcode(rq_cqe_opcode),
    .m_cqe_status(rq_cqe_status),
    .m_cqe_wqe_index(rq_cqe_wqe_index),
    .m_cqe_solicited(rq_cqe_solicited),
    .m_cqe_flush(rq_cqe_flush),
    .m_cqe_valid(rq_cqe_valid),
    .m_cqe_ready(rq_cqe_ready),
    .m_ack_qpn(ack_qpn),
    .m_ack_psn(ack_psn),
    .m_ack_syndrome(ack_syndrome),
    .m_ack_msn(ack_msn),
    .m_ack_valid(ack_valid),
    .m_ack_ready(ack_ready),
    .m_drop_valid(rq_drop_valid),
    .m_drop_reason(rq_drop_reason)
);

san_cq_writer #(
    .DATA_WIDTH(DATA_WIDTH),
    .N_QP(N_QP)
) cq_inst (
    .clk(clk),
    .rst(rst),
    .ctx_load_en(ctx_load_en),
    .ctx_load_ready(cq_ctx_ready),
    .ctx_load_qpn(ctx_load_qpn),
    .ctx_load_rts(ctx_load_rts),
    .ctx_load_cq_base(ctx_load_cq_base),
    .ctx_load_cq_log(ctx_load_cq_log),
    .ctx_load_cq_vector(ctx_load_cq_vector),
    .ctx_load_flush(ctx_load_flush),
    .s_db_qpn(db_cq_qpn),
    .s_db_ci(db_cq_ci),
    .s_db_arm(db_cq_arm),
    .s_db_valid(db_cq_valid),
    .s_db_ready(db_cq_ready),
    .s_cqe0_qpn(sq_cqe_qpn),
    .s_cqe0_wr_id(64'd0),
    .s_cqe0_byte_len(32'd0),
    .s_cqe0_opcode(SAN_CQE_OPCODE_SEND),
    .s_cqe0_status(sq_cqe_status),
    .s_cqe0_wqe_index(sq_cqe_wqe_index),
    .s_cqe0_solicited(1'b0),
    .s_cqe0_flush(sq_cqe_flush),
    .s_cqe0_valid(sq_cqe_valid),
    .s_cqe0_ready(sq_cqe_ready),
    .s_cqe1_qpn(rq_cqe_qpn),
    .s_cqe1_wr_id(rq_cqe_wr_id),
    .s_cqe1_byte_len(rq_cqe_byte_len),
    .s_cqe1_opcode(rq_cqe_opcode),
    .s_cqe1_status(rq_cqe_status),
    .s_cqe1_wqe_index(rq_cqe_wqe_index),
    .s_cqe1_solicited(rq_cqe_solicited),
    .s_cqe1_flush(rq_cqe_flush),
    .s_cqe1_valid(rq_cqe_valid),
    .s_cqe1_ready(rq_cqe_ready),
    .m_dma_wr_req_addr(cq_wr_req_addr),
    .m_dma_wr_req_len(cq_wr_req_len),
    .m_dma_wr_req_valid(cq_wr_req_valid),
    .m_dma_wr_req_ready(cq_wr_req_ready),
    .m_axis_dma_wr_tdata(cq_wr_tdata),
    .m_axis_dma_wr_tkeep(cq_wr_tkeep),
    .m_axis_dma_wr_tvalid(cq_wr_tvalid),
    .m_axis_dma_wr_tready(cq_wr_tready),
    .m_axis_dma_wr_tlast(cq_wr_tlast),
    .m_msix_vector(cq_msix_vector),
    .m_msix_valid(cq_msix_valid),
    .m_msix_ready(cq_msix_ready),
    .m_overrun_valid(cq_overrun),
    .m_flushed_qpn(cq_flushed_qpn),
    .m_flushed_valid(cq_flushed_valid)
);

san_cm_engine #(
    .DATA_WIDTH(DATA_WIDTH),
    .N_QP(N_QP),
    .N_MSIX(N_MSIX)
) cm_inst (
    .clk(clk),
    .rst(rst),
    .time_tick(s_time_tick),
    .m_parked(cm_parked),
    .m_wake_valid(cm_wake_valid),
    .m_wake_tick(cm_wake_tick),
    .cfg_mac(cfg_mac),
    .cfg_ip(cfg_ip),
    .cfg_pmtu_log2(cfg_pmtu_log2),
    .cfg_enable(cfg_cm_enable),
    .cfg_cmdq_base(cfg_cmdq_base),
    .cfg_cmdq_log(cfg_cmdq_log),
    .cfg_eq_base(cfg_eq_base),
    .cfg_eq_log(cfg_eq_log),
    .cfg_eq_vector(cfg_eq_vector),
    .cfg_resp_timeout(cfg_cm_resp_timeout),
    .cfg_max_retries(cfg_cm_max_retries),
    .cfg_defer_timeout(cfg_cm_defer_timeout),
    .cfg_timewait(cfg_cm_timewait),
    .s_db_cmd_pi(cm_db_cmd_pi),
    .s_db_cmd_valid(cm_db_cmd_valid),
    .s_db_eq_ci(cm_db_eq_ci),
    .s_db_eq_arm(cm_db_eq_arm),
    .s_db_eq_valid(cm_db_eq_valid),
    .s_hdr_src_mac(rx_hdr_src_mac),
    .s_hdr_src_ip(rx_hdr_src_ip),
    .s_hdr_qkey(rx_hdr_deth_qkey),
    .s_hdr_pay_len(rx_hdr_pay_len),
    .s_hdr_valid(cm_hdr_valid),
    .s_hdr_ready(cm_hdr_ready),
    .s_axis_pay_tdata(rx_pay_tdata),
    .s_axis_pay_tkeep(rx_pay_tkeep),
    .s_axis_pay_tvalid(cm_pay_rx_tvalid),
    .s_axis_pay_tready(cm_pay_rx_tready),
    .s_axis_pay_tlast(rx_pay_tlast),
    .m_tx_dst_mac(cm_tx_dst_mac),
    .m_tx_dst_ip(cm_tx_dst_ip),
    .m_tx_udp_sport(cm_tx_udp_sport),
    .m_tx_psn(cm_tx_psn),
    .m_tx_valid(cm_tx_valid),
    .m_tx_ready(cm_tx_ready),
    .m_axis_pay_tdata(cm_pay_tdata),
    .m_axis_pay_tkeep(cm_pay_tkeep),
    .m_axis_pay_tvalid(cm_pay_tvalid),
    .m_axis_pay_tready(cm_pay_tready),
    .m_axis_pay_tlast(cm_pay_tlast),
    .m_dma_rd_req_addr(cm_rd_req_addr),
    .m_dma_rd_req_len(cm_rd_req_len),
    .m_dma_rd_req_valid(cm_rd_req_valid),
    .m_dma_rd_req_ready(cm_rd_req_ready),
    .s_axis_dma_rd_tdata(cm_rd_tdata),
    .s_axis_dma_rd_tkeep(cm_rd_tkeep),
    .s_axis_dma_rd_tvalid(cm_rd_tvalid),
    .s_axis_dma_rd_tready(cm_rd_tready),
    .s_axis_dma_rd_tlast(cm_rd_tlast),
    .s_axis_dma_rd_tuser(cm_rd_tuser),
    .m_dma_wr_req_addr(cm_wr_req_addr),
    .m_dma_wr_req_len(cm_wr_req_len),
    .m_dma_wr_req_valid(cm_wr_req_valid),
    .m_dma_wr_req_ready(cm_wr_req_ready),
    .m_axis_dma_wr_tdata(cm_wr_tdata),
    .m_axis_dma_wr_tkeep(cm_wr_tkeep),
    .m_axis_dma_wr_tvalid(cm_wr_tvalid),
    .m_axis_dma_wr_tready(cm_wr_tready),
    .m_axis_dma_wr_tlast(cm_wr_tlast),
    .m_ld_valid(cm_ld_valid),
    .m_ld_ready(cm_ld_take),
    .m_ld_qpn(cm_ld_qpn),
    .m_ld_rts(cm_ld_rts),
    .m_ld_dest_qpn(cm_ld_dest_qpn),
    .m_ld_dmac(cm_ld_dmac),
    .m_ld_dip(cm_ld_dip),
    .m_ld_udp_sport(cm_ld_udp_sport),
    .m_ld_sq_psn(cm_ld_sq_psn),
    .m_ld_rq_psn(cm_ld_rq_psn),
    .m_ld_sq_base(cm_ld_sq_base),
    .m_ld_sq_log(cm_ld_sq_log),
    .m_ld_rq_base(cm_ld_rq_base),
    .m_ld_rq_log(cm_ld_rq_log),
    .m_ld_cq_base(cm_ld_cq_base),
    .m_ld_cq_log(cm_ld_cq_log),
    .m_ld_cq_vector(cm_ld_cq_vector),
    .m_ld_retry_cnt(cm_ld_retry_cnt),
    .m_ld_rnr_retry(cm_ld_rnr_retry),
    .m_ld_timeout(cm_ld_timeout),
    .m_ld_min_rnr_timer(cm_ld_min_rnr_timer),
    .m_ld_flush(cm_ld_flush),
    .s_flushed_qpn(cq_flushed_qpn),
    .s_flushed_valid(cq_flushed_valid),
    .m_msix_vector(cm_msix_vector),
    .m_msix_valid(cm_msix_valid),
    .m_msix_ready(cm_msix_ready),
    .s_err_qpn(tr_err_qpn),
    .s_err_status(tr_err_status),
    .s_err_valid(tr_err_valid),
    .s_err_ready(tr_err_ready),
    .stat_mad_tx(stat_cm_mad_tx),
    .stat_mad_rx(stat_cm_mad_rx),
    .stat_mad_drop(stat_cm_mad_drop),
    .stat_resend(stat_cm_resend),
    .stat_timeout(stat_cm_timeout),
    .stat_refused(stat_cm_refused)
);

san_dma_mux #(
    .DATA_WIDTH(DATA_WIDTH),
    .DMA_TAG_WIDTH(DMA_TAG_WIDTH)
) dma_inst (
    .clk(clk),
    .rst(rst),
    .s_rd0_req_addr(sq_rd_req_addr),
    .s_rd0_req_len(sq_rd_req_len),
    .s_rd0_req_valid(sq_rd_req_valid),
    .s_rd0_req_ready(sq_rd_req_ready),
    .m_axis_rd0_tdata(sq_rd_tdata),
    .m_axis_rd0_tkeep(sq_rd_tkeep),
    .m_axis_rd0_tvalid(sq_rd_tvalid),
    .m_axis_rd0_tready(sq_rd_tready),
    .m_axis_rd0_tlast(sq_rd_tlast),
    .m_axis_rd0_tuser(sq_rd_tuser),
    .s_rd1_req_addr(rq_rd_req_addr),
    .s_rd1_req_len(rq_rd_req_len),
    .s_rd1_req_valid(rq_rd_req_valid),
    .s_rd1_req_ready(rq_rd_req_ready),
    .m_axis_rd1_tdata(rq_rd_tdata),
    .m_axis_rd1_tkeep(rq_rd_tkeep),
    .m_axis_rd1_tvalid(rq_rd_tvalid),
    .m_axis_rd1_tready(rq_rd_tready),
    .m_axis_rd1_tlast(rq_rd_tlast),
    .m_axis_rd1_tuser(rq_rd_tuser),
    .s_rd2_req_addr(cm_rd_req_addr),
    .s_rd2_req_len(cm_rd_req_len),
    .s_rd2_req_valid(cm_rd_req_valid),
    .s_rd2_req_ready(cm_rd_req_ready),
    .m_axis_rd2_tdata(cm_rd_tdata),
    .m_axis_rd2_tkeep(cm_rd_tkeep),
    .m_axis_rd2_tvalid(cm_rd_tvalid),
    .m_axis_rd2_tready(cm_rd_tready),
    .m_axis_rd2_tlast(cm_rd_tlast),
    .m_axis_rd2_tuser(cm_rd_tuser),
    .m_dma_rd_req_addr(m_dma_rd_req_addr),
    .m_dma_rd_req_len(m_dma_rd_req_len),
    .m_dma_rd_req_tag(m_dma_rd_req_tag),
    .m_dma_rd_req_valid(m_dma_rd_req_valid),
    .m_dma_rd_req_ready(m_dma_rd_req_ready),
    .s_axis_dma_rd_tdata(s_axis_dma_rd_tdata),
    .s_axis_dma_rd_tkeep(s_axis_dma_rd_tkeep),
    .s_axis_dma_rd_tvalid(s_axis_dma_rd_tvalid),
    .s_axis_dma_rd_tready(s_axis_dma_rd_tready),
    .s_axis_dma_rd_tlast(s_axis_dma_rd_tlast),
    .s_axis_dma_rd_tid(s_axis_dma_rd_tid),
    .s_axis_dma_rd_tuser(s_axis_dma_rd_tuser),
    .s_wr0_req_addr(rq_wr_req_addr),
    .s_wr0_req_len(rq_wr_req_len),
    .s_wr0_req_valid(rq_wr_req_valid),
    .s_wr0_req_ready(rq_wr_req_ready),
    .s_axis_wr0_tdata(rq_wr_tdata),
    .s_axis_wr0_tkeep(rq_wr_tkeep),
    .s_axis_wr0_tvalid(rq_wr_tvalid),
    .s_axis_wr0_tready(rq_wr_tready),
    .s_axis_wr0_tlast(rq_wr_tlast),
    .s_wr1_req_addr(cq_wr_req_addr),
    .s_wr1_req_len(cq_wr_req_len),
    .s_wr1_req_valid(cq_wr_req_valid),
    .s_wr1_req_ready(cq_wr_req_ready),
    .s_axis_wr1_tdata(cq_wr_tdata),
    .s_axis_wr1_tkeep(cq_wr_tkeep),
    .s_axis_wr1_tvalid(cq_wr_tvalid),
    .s_axis_wr1_tready(cq_wr_tready),
    .s_axis_wr1_tlast(cq_wr_tlast),
    .s_wr2_req_addr(cm_wr_req_addr),
    .s_wr2_req_len(cm_wr_req_len),
    .s_wr2_req_valid(cm_wr_req_valid),
    .s_wr2_req_ready(cm_wr_req_ready),
    .s_axis_wr2_tdata(cm_wr_tdata),
    .s_axis_wr2_tkeep(cm_wr_tkeep),
    .s_axis_wr2_tvalid(cm_wr_tvalid),
    .s_axis_wr2_tready(cm_wr_tready),
    .s_axis_wr2_tlast(cm_wr_tlast),
    .m_dma_wr_req_addr(m_dma_wr_req_addr),
    .m_dma_wr_req_len(m_dma_wr_req_len),
    .m_dma_wr_req_tag(m_dma_wr_req_tag),
    .m_dma_wr_req_valid(m_dma_wr_req_valid),
    .m_dma_wr_req_ready(m_dma_wr_req_ready),
    .m_axis_dma_wr_tdata(m_axis_dma_wr_tdata),
    .m_axis_dma_wr_tkeep(m_axis_dma_wr_tkeep),
    .m_axis_dma_wr_tvalid(m_axis_dma_wr_tvalid),
    .m_axis_dma_wr_tready(m_axis_dma_wr_tready),
    .m_axis_dma_wr_tlast(m_axis_dma_wr_tlast),
    .m_axis_dma_wr_tuser(m_axis_dma_wr_tuser),
    .s_dma_wr_done_tag(s_dma_wr_done_tag),
    .s_dma_wr_done_error(s_dma_wr_done_error),
    .s_dma_wr_done_valid(s_dma_wr_done_valid),
    .m_wr_error_valid(dma_wr_error)
);

endmodule

`resetall

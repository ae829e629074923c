// SPDX-License-Identifier: MIT
// san_csr: AXI4-Lite slave for BAR0: the register blocks nic (identity, build parameters, scratch,
// control/status, interrupt self-test, cycle and bad-access counters), port (addresses, path MTU,
// traffic and drop counters), qpc (test-only connection loading), arp (requests, the reply FIFO's
// head, its interrupt vector and counters) and cm (the connection manager's rings, timing,
// counters and doorbells), and the doorbell pages.

`resetall
`timescale 1ns / 1ps
`default_nettype none

module san_csr #(
    // Width of the link/DMA data path in bits; reported in BUILD_DATA_WIDTH.
    parameter DATA_WIDTH = 64,
    // Connection contexts in the build; reported in BUILD_N_QP.
    parameter N_QP = 256,
    // Core clock in kHz; reported in BUILD_CLK_KHZ.
    parameter CLK_KHZ = 156250,
    // MSI-X vectors the NIC can raise, 1..2048; reported in BUILD_N_MSIX.
    parameter N_MSIX = 32,
    // BAR0 size in bytes (a power of two); reported in BUILD_BAR0_SIZE.
    parameter BAR0_SIZE = 32'h0020_0000,
    // AXI4-Lite address width; must be log2(BAR0_SIZE).
    parameter AXIL_ADDR_WIDTH = 21
) (
    input  wire                       clk,
    input  wire                       rst,

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

    // Configuration of the engines
    output wire                       cfg_enable,
    output wire [47:0]                cfg_mac,
    output wire [31:0]                cfg_ip,
    output wire [3:0]                 cfg_pmtu_log2,

    // Connection context load (see docs/datapath.md): a pulse when every engine is ready
    output wire                       ctx_load_en,
    input  wire                       ctx_load_ready,
    output wire [$clog2(N_QP)-1:0]    ctx_load_qpn,
    output wire                       ctx_load_rts,
    output wire [23:0]                ctx_load_dest_qpn,
    output wire [47:0]                ctx_load_dmac,
    output wire [31:0]                ctx_load_dip,
    output wire [15:0]                ctx_load_udp_sport,
    output wire [23:0]                ctx_load_sq_psn,
    output wire [23:0]                ctx_load_rq_psn,
    output wire [63:0]                ctx_load_sq_base,
    output wire [4:0]                 ctx_load_sq_log,
    output wire [63:0]                ctx_load_rq_base,
    output wire [4:0]                 ctx_load_rq_log,
    output wire [63:0]                ctx_load_cq_base,
    output wire [4:0]                 ctx_load_cq_log,
    output wire [15:0]                ctx_load_cq_vector,
    output wire [2:0]                 ctx_load_retry_cnt,
    output wire [2:0]                 ctx_load_rnr_retry,
    output wire [4:0]                 ctx_load_timeout,
    output wire [4:0]                 ctx_load_min_rnr_timer,

    // Connection manager: rings, timing, doorbells (pulses)
    output wire                       cfg_cm_enable,
    output wire [63:0]                cfg_cmdq_base,
    output wire [4:0]                 cfg_cmdq_log,
    output wire [63:0]                cfg_eq_base,
    output wire [4:0]                 cfg_eq_log,
    output wire [15:0]                cfg_eq_vector,
    output wire [4:0]                 cfg_cm_resp_timeout,
    output wire [3:0]                 cfg_cm_max_retries,
    output wire [4:0]                 cfg_cm_defer_timeout,
    output wire [4:0]                 cfg_cm_timewait,
    output wire [15:0]                m_cm_db_cmd_pi,
    output wire                       m_cm_db_cmd_valid,
    output wire [15:0]                m_cm_db_eq_ci,
    output wire                       m_cm_db_eq_arm,
    output wire                       m_cm_db_eq_valid,

    // ARP: the host's requests (held until taken), the reply FIFO's head and fill, its pop and
    // arm (pulses) and vector
    output wire [31:0]                m_arp_req_ip,
    output wire                       m_arp_req_valid,
    input  wire                       m_arp_req_ready,
    input  wire [31:0]                s_arp_rep_ip,
    input  wire [47:0]                s_arp_rep_mac,
    input  wire                       s_arp_rep_valid,
    input  wire [7:0]                 s_arp_rep_count,
    output wire                       m_arp_rep_pop,
    output wire                       m_arp_rep_arm,
    output wire [15:0]                cfg_arp_vector,

    // Transport state query (QPC CMD.QUERY) to the completer, and its answer
    output wire [$clog2(N_QP)-1:0]    m_query_qpn,
    output wire                       m_query_valid,
    input  wire                       m_query_ready,
    input  wire                       s_query_rts,
    input  wire                       s_query_err,
    input  wire                       s_query_valid,

    // Doorbells: send queue, receive queue, completion queue
    output wire [$clog2(N_QP)-1:0]    m_db_sq_qpn,
    output wire [15:0]                m_db_sq_pi,
    output wire                       m_db_sq_valid,
    input  wire                       m_db_sq_ready,
    output wire [$clog2(N_QP)-1:0]    m_db_rq_qpn,
    output wire [15:0]                m_db_rq_pi,
    output wire                       m_db_rq_valid,
    input  wire                       m_db_rq_ready,
    output wire [$clog2(N_QP)-1:0]    m_db_cq_qpn,
    output wire [15:0]                m_db_cq_ci,
    output wire                       m_db_cq_arm,
    output wire                       m_db_cq_valid,
    input  wire                       m_db_cq_ready,

    // Events to count (one-cycle pulses)
    input  wire                       stat_tx_frame,
    input  wire                       stat_rx_frame,
    input  wire                       stat_drop0_valid,
    input  wire [4:0]                 stat_drop0_reason,
    input  wire                       stat_drop1_valid,
    input  wire [4:0]                 stat_drop1_reason,
    input  wire                       stat_cq_overrun,
    input  wire                       stat_dma_error,
    input  wire                       stat_timeout,
    input  wire                       stat_seq_nak,
    input  wire                       stat_rnr_nak,
    input  wire                       stat_ack_ignored,
    input  wire                       stat_cm_mad_tx,
    input  wire                       stat_cm_mad_rx,
    input  wire                       stat_cm_mad_drop,
    input  wire                       stat_cm_resend,
    input  wire                       stat_cm_timeout,
    input  wire                       stat_cm_refused,
    input  wire                       stat_arp_answered,
    input  wire                       stat_arp_req_sent,
    input  wire                       stat_arp_rep_received,
    input  wire                       stat_arp_rep_lost,

    // Interrupt requests of the engines, passed on to m_msix behind the self-test's
    input  wire [15:0]                s_msix_vector,
    input  wire                       s_msix_valid,
    output wire                       s_msix_ready,

    // MSI-X request
    output wire [15:0]                m_msix_vector,
    output wire                       m_msix_valid,
    input  wire                       m_msix_ready
);

`include "san_regs.vh"

localparam integer QPN_W = $clog2(N_QP);
// Drop counters: index 0 counts every drop, 1..N_DROP-1 one RxDrop reason each (the codes
// come from the contract, so a new reason gets its counter).
localparam integer N_DROP = SAN_RX_DROP_MAX + 1;

localparam [1:0] RESP_OKAY = 2'b00;
localparam [1:0] RESP_SLVERR = 2'b10;

// Illegal parameter combinations stop elaboration.
initial begin
    if (BAR0_SIZE != (1 << AXIL_ADDR_WIDTH)) begin
        $error("san_csr: AXIL_ADDR_WIDTH must be log2(BAR0_SIZE)");
        $finish;
    end
    if (N_MSIX < 1 || N_MSIX > 2048) begin
        $error("san_csr: N_MSIX must be 1..2048");
        $finish;
    end
    if (N_QP < 2 || N_QP > 4096 || (N_QP & (N_QP - 1)) != 0) begin
        $error("san_csr: N_QP must be a power of two from 2 to 4096");
        $finish;
    end
    if (SAN_DB_BASE + N_QP * SAN_DB_STRIDE > BAR0_SIZE) begin
        $error("san_csr: the doorbell pages do not fit in BAR0");
        $finish;
    end
end

// The protection bits carry nothing a register file needs.
wire [5:0] unused_prot = {s_axil_awprot, s_axil_arprot};

reg         awready_reg = 1'b0, awready_next;
reg         wready_reg = 1'b0, wready_next;
reg  [1:0]  bresp_reg = RESP_OKAY, bresp_next;
reg         bvalid_reg = 1'b0, bvalid_next;
reg         arready_reg = 1'b0, arready_next;
reg  [31:0] rdata_reg = 32'd0, rdata_next;
reg  [1:0]  rresp_reg = RESP_OKAY, rresp_next;
reg         rvalid_reg = 1'b0, rvalid_next;

reg  [31:0] scratch_reg = 32'd0, scratch_next;
reg         enable_reg = 1'b0, enable_next;
reg  [15:0] msix_vector_reg = 16'd0, msix_vector_next;
reg         msix_valid_reg = 1'b0, msix_valid_next;
reg  [63:0] cycle_reg = 64'd0;
reg  [31:0] cycle_hi_reg = 32'd0, cycle_hi_next;
reg  [31:0] bad_access_reg = 32'd0, bad_access_next;

// Port block
reg  [15:0] mac_hi_reg = 16'd0, mac_hi_next;
reg  [31:0] mac_lo_reg = 32'd0, mac_lo_next;
reg  [31:0] ip_reg = 32'd0, ip_next;
reg  [3:0]  pmtu_log2_reg = 4'd10, pmtu_log2_next;
reg  [4:0]  drop_sel_reg = 5'd0, drop_sel_next;
reg  [31:0] tx_frames_reg = 32'd0, tx_frames_next;
reg  [31:0] rx_frames_reg = 32'd0, rx_frames_next;
reg  [31:0] cq_overruns_reg = 32'd0, cq_overruns_next;
reg  [31:0] dma_errors_reg = 32'd0, dma_errors_next;
reg  [31:0] timeouts_reg = 32'd0, timeouts_next;
reg  [31:0] seq_naks_reg = 32'd0, seq_naks_next;
reg  [31:0] rnr_naks_reg = 32'd0, rnr_naks_next;
reg  [31:0] acks_ignored_reg = 32'd0, acks_ignored_next;
reg  [31:0] cm_mads_tx_reg = 32'd0, cm_mads_rx_reg = 32'd0, cm_mads_drop_reg = 32'd0;
reg  [31:0] cm_resends_reg = 32'd0, cm_timeouts_reg = 32'd0, cm_refused_reg = 32'd0;
reg  [32*N_DROP-1:0] drop_cnt_reg = {32*N_DROP{1'b0}}, drop_cnt_next;

// QPC staging registers and the load in progress
reg  [31:0] qpc_qpn_reg = 32'd0, qpc_qpn_next;
reg         qpc_rts_reg = 1'b0, qpc_rts_next;
reg  [23:0] qpc_dest_qpn_reg = 24'd0, qpc_dest_qpn_next;
reg  [15:0] qpc_dmac_hi_reg = 16'd0, qpc_dmac_hi_next;
reg  [31:0] qpc_dmac_lo_reg = 32'd0, qpc_dmac_lo_next;
reg  [31:0] qpc_dip_reg = 32'd0, qpc_dip_next;
reg  [15:0] qpc_sport_reg = 16'd0, qpc_sport_next;
reg  [23:0] qpc_sq_psn_reg = 24'd0, qpc_sq_psn_next;
reg  [23:0] qpc_rq_psn_reg = 24'd0, qpc_rq_psn_next;
reg  [63:0] qpc_sq_base_reg = 64'd0, qpc_sq_base_next;
reg  [63:0] qpc_rq_base_reg = 64'd0, qpc_rq_base_next;
reg  [63:0] qpc_cq_base_reg = 64'd0, qpc_cq_base_next;
reg  [4:0]  qpc_sq_log_reg = 5'd0, qpc_sq_log_next;
reg  [4:0]  qpc_rq_log_reg = 5'd0, qpc_rq_log_next;
reg  [4:0]  qpc_cq_log_reg = 5'd0, qpc_cq_log_next;
reg  [15:0] qpc_vector_reg = 16'd0, qpc_vector_next;
reg         qpc_busy_reg = 1'b0, qpc_busy_next;
reg         qpc_error_reg = 1'b0, qpc_error_next;
reg  [15:0] qpc_tr_reg = 16'd0, qpc_tr_next;        // TRANSPORT bits 4:0 6:4 12:8 20:16 packed
reg         qpc_q_pend_reg = 1'b0, qpc_q_pend_next; // a query waits for the completer to take it
reg         qpc_q_wait_reg = 1'b0, qpc_q_wait_next; // a query waits for its answer
reg  [1:0]  qpc_qstate_reg = 2'd0, qpc_qstate_next; // the last answer: {err, rts}
wire        qpc_cmd_busy = qpc_busy_reg || qpc_q_pend_reg || qpc_q_wait_reg;

// Connection manager block
reg  [63:0] cm_cmdq_base_reg = 64'd0, cm_cmdq_base_next;
reg  [63:0] cm_eq_base_reg = 64'd0, cm_eq_base_next;
reg  [4:0]  cm_cmdq_log_reg = 5'd0, cm_cmdq_log_next;
reg  [4:0]  cm_eq_log_reg = 5'd0, cm_eq_log_next;
reg  [15:0] cm_eq_vector_reg = 16'd0, cm_eq_vector_next;
reg         cm_enable_reg = 1'b0, cm_enable_next;
reg  [4:0]  cm_resp_reg = SAN_CM_TIMING_RESET[4:0], cm_resp_next;
reg  [3:0]  cm_retries_reg = SAN_CM_TIMING_RESET[11:8], cm_retries_next;
reg  [4:0]  cm_defer_reg = SAN_CM_TIMING_RESET[20:16], cm_defer_next;
reg  [4:0]  cm_tw_reg = SAN_CM_TIMING_RESET[28:24], cm_tw_next;
reg  [15:0] cm_db_data_reg = 16'd0, cm_db_data_next;
reg         cm_db_arm_reg = 1'b0, cm_db_arm_next;
reg         cm_db_cmd_reg = 1'b0, cm_db_cmd_next;
reg         cm_db_eq_reg = 1'b0, cm_db_eq_next;
// ARP block
reg  [31:0] arp_req_ip_reg = 32'd0, arp_req_ip_next;
reg         arp_req_valid_reg = 1'b0, arp_req_valid_next;
reg         arp_pop_reg = 1'b0, arp_pop_next;
reg         arp_arm_reg = 1'b0, arp_arm_next;
reg  [15:0] arp_vector_reg = 16'd0, arp_vector_next;
reg  [31:0] arp_answered_reg = 32'd0, arp_req_sent_reg = 32'd0;
reg  [31:0] arp_rep_received_reg = 32'd0, arp_rep_lost_reg = 32'd0;

wire cm_rings_ok = cm_cmdq_log_reg >= 5'd1 && cm_cmdq_log_reg <= 5'd15
    && cm_eq_log_reg >= 5'd1 && cm_eq_log_reg <= 5'd15 && cm_eq_vector_reg < N_MSIX[15:0];

// Doorbells waiting for their engine
reg  [QPN_W-1:0] db_qpn_reg = {QPN_W{1'b0}}, db_qpn_next;
reg  [31:0] db_data_reg = 32'd0, db_data_next;
reg         db_sq_valid_reg = 1'b0, db_sq_valid_next;
reg         db_rq_valid_reg = 1'b0, db_rq_valid_next;
reg         db_cq_valid_reg = 1'b0, db_cq_valid_next;

assign s_axil_awready = awready_reg;
assign s_axil_wready = wready_reg;
assign s_axil_bresp = bresp_reg;
assign s_axil_bvalid = bvalid_reg;
assign s_axil_arready = arready_reg;
assign s_axil_rdata = rdata_reg;
assign s_axil_rresp = rresp_reg;
assign s_axil_rvalid = rvalid_reg;
// The self-test's request goes first; the engines' requests pass through otherwise.
assign m_msix_vector = msix_valid_reg ? msix_vector_reg : s_msix_vector;
assign m_msix_valid = msix_valid_reg || s_msix_valid;
assign s_msix_ready = m_msix_ready && !msix_valid_reg;

assign cfg_enable = enable_reg;
assign cfg_mac = {mac_hi_reg, mac_lo_reg};
assign cfg_ip = ip_reg;
assign cfg_pmtu_log2 = pmtu_log2_reg;

assign ctx_load_en = qpc_busy_reg && ctx_load_ready;
assign ctx_load_qpn = qpc_qpn_reg[QPN_W-1:0];
assign ctx_load_rts = qpc_rts_reg;
assign ctx_load_dest_qpn = qpc_dest_qpn_reg;
assign ctx_load_dmac = {qpc_dmac_hi_reg, qpc_dmac_lo_reg};
assign ctx_load_dip = qpc_dip_reg;
assign ctx_load_udp_sport = qpc_sport_reg;
assign ctx_load_sq_psn = qpc_sq_psn_reg;
assign ctx_load_rq_psn = qpc_rq_psn_reg;
assign ctx_load_sq_base = qpc_sq_base_reg;
assign ctx_load_sq_log = qpc_sq_log_reg;
assign ctx_load_rq_base = qpc_rq_base_reg;
assign ctx_load_rq_log = qpc_rq_log_reg;
assign ctx_load_cq_base = qpc_cq_base_reg;
assign ctx_load_cq_log = qpc_cq_log_reg;
assign ctx_load_cq_vector = qpc_vector_reg;
assign ctx_load_retry_cnt = qpc_tr_reg[2:0];
assign ctx_load_rnr_retry = qpc_tr_reg[5:3];
assign ctx_load_timeout = qpc_tr_reg[10:6];
assign ctx_load_min_rnr_timer = qpc_tr_reg[15:11];
assign cfg_cm_enable = cm_enable_reg;
assign cfg_cmdq_base = cm_cmdq_base_reg;
assign cfg_cmdq_log = cm_cmdq_log_reg;
assign cfg_eq_base = cm_eq_base_reg;
assign cfg_eq_log = cm_eq_log_reg;
assign cfg_eq_vector = cm_eq_vector_reg;
assign cfg_cm_resp_timeout = cm_resp_reg;
assign cfg_cm_max_retries = cm_retries_reg;
assign cfg_cm_defer_timeout = cm_defer_reg;
assign cfg_cm_timewait = cm_tw_reg;
assign m_cm_db_cmd_pi = cm_db_data_reg;
assign m_cm_db_cmd_valid = cm_db_cmd_reg;
assign m_cm_db_eq_ci = cm_db_data_reg;
assign m_cm_db_eq_arm = cm_db_arm_reg;
assign m_cm_db_eq_valid = cm_db_eq_reg;
assign m_arp_req_ip = arp_req_ip_reg;
assign m_arp_req_valid = arp_req_valid_reg;
assign m_arp_rep_pop = arp_pop_reg;
assign m_arp_rep_arm = arp_arm_reg;
assign cfg_arp_vector = arp_vector_reg;
assign m_query_qpn = qpc_qpn_reg[QPN_W-1:0];
assign m_query_valid = qpc_q_pend_reg;

assign m_db_sq_qpn = db_qpn_reg;
assign m_db_sq_pi = db_data_reg[15:0];
assign m_db_sq_valid = db_sq_valid_reg;
assign m_db_rq_qpn = db_qpn_reg;
assign m_db_rq_pi = db_data_reg[15:0];
assign m_db_rq_valid = db_rq_valid_reg;
assign m_db_cq_qpn = db_qpn_reg;
assign m_db_cq_ci = db_data_reg[15:0];
assign m_db_cq_arm = db_data_reg[31];
assign m_db_cq_valid = db_cq_valid_reg;

// An ARP request waits for the ARP block as a doorbell waits for its engine.
wire db_pending = db_sq_valid_reg || db_rq_valid_reg || db_cq_valid_reg || arp_req_valid_reg;

// Byte addresses widened to the contract's 32-bit constants.
wire [31:0] wr_addr = {{(32-AXIL_ADDR_WIDTH){1'b0}}, s_axil_awaddr};
wire [31:0] rd_addr = {{(32-AXIL_ADDR_WIDTH){1'b0}}, s_axil_araddr};

// Write path: AW and W are taken together, one cycle after both are valid, and only when the
// previous response has gone and nothing the previous write started is still waiting (a
// self-test interrupt, a doorbell, a context load).
wire wr_start = s_axil_awvalid && s_axil_wvalid && !awready_reg
    && (!bvalid_reg || s_axil_bready) && !msix_valid_reg && !db_pending && !qpc_cmd_busy;
wire wr_do = awready_reg && s_axil_awvalid && s_axil_wvalid;
// Read path: AR is taken one cycle after it is valid, when the previous data has gone.
wire rd_start = s_axil_arvalid && !arready_reg && (!rvalid_reg || s_axil_rready);
wire rd_do = arready_reg && s_axil_arvalid;

wire [31:0] wmask = {{8{s_axil_wstrb[3]}}, {8{s_axil_wstrb[2]}},
                     {8{s_axil_wstrb[1]}}, {8{s_axil_wstrb[0]}}};
// A register write keeps the bytes whose strobes are clear.
function [31:0] merge(input [31:0] old);
    merge = (old & ~wmask) | (s_axil_wdata & wmask);
endfunction
function [15:0] merge16(input [15:0] old);
    merge16 = (old & ~wmask[15:0]) | (s_axil_wdata[15:0] & wmask[15:0]);
endfunction
function [23:0] merge24(input [23:0] old);
    merge24 = (old & ~wmask[23:0]) | (s_axil_wdata[23:0] & wmask[23:0]);
endfunction

// Doorbell pages: the page (connection) and the offset within it.
localparam [31:0] DB_END = SAN_DB_BASE + N_QP * SAN_DB_STRIDE;
localparam integer PAGE_BITS = $clog2(SAN_DB_STRIDE);
wire wr_db = wr_addr >= SAN_DB_BASE && wr_addr < DB_END;
wire rd_db = rd_addr >= SAN_DB_BASE && rd_addr < DB_END;
wire [31:0] wr_db_rel = wr_addr - SAN_DB_BASE;
wire [31:0] rd_db_off = (rd_addr - SAN_DB_BASE) & (SAN_DB_STRIDE - 32'd1);
wire [31:0] wr_db_off = wr_db_rel & (SAN_DB_STRIDE - 32'd1);
wire [QPN_W-1:0] wr_db_qpn = wr_db_rel[PAGE_BITS +: QPN_W];
wire [31:0] unused_db_rel = wr_db_rel;

// A LOAD command is refused when the staging registers are out of range.
wire qpc_bad = qpc_qpn_reg >= N_QP
    || qpc_sq_log_reg < 5'd1 || qpc_sq_log_reg > 5'd15
    || qpc_rq_log_reg < 5'd1 || qpc_rq_log_reg > 5'd15
    || qpc_cq_log_reg < 5'd1 || qpc_cq_log_reg > 5'd15
    || qpc_vector_reg >= N_MSIX[15:0];

reg bad_wr;
reg bad_rd;

always @* begin
    awready_next = wr_start;
    wready_next = wr_start;
    bvalid_next = bvalid_reg && !s_axil_bready;
    bresp_next = bresp_reg;
    scratch_next = scratch_reg;
    enable_next = enable_reg;
    msix_vector_next = msix_vector_reg;
    msix_valid_next = msix_valid_reg && !m_msix_ready;
    bad_wr = 1'b0;
    mac_hi_next = mac_hi_reg;
    mac_lo_next = mac_lo_reg;
    ip_next = ip_reg;
    pmtu_log2_next = pmtu_log2_reg;
    drop_sel_next = drop_sel_reg;
    qpc_qpn_next = qpc_qpn_reg;
    qpc_rts_next = qpc_rts_reg;
    qpc_dest_qpn_next = qpc_dest_qpn_reg;
    qpc_dmac_hi_next = qpc_dmac_hi_reg;
    qpc_dmac_lo_next = qpc_dmac_lo_reg;
    qpc_dip_next = qpc_dip_reg;
    qpc_sport_next = qpc_sport_reg;
    qpc_sq_psn_next = qpc_sq_psn_reg;
    qpc_rq_psn_next = qpc_rq_psn_reg;
    qpc_sq_base_next = qpc_sq_base_reg;
    qpc_rq_base_next = qpc_rq_base_reg;
    qpc_cq_base_next = qpc_cq_base_reg;
    qpc_sq_log_next = qpc_sq_log_reg;
    qpc_rq_log_next = qpc_rq_log_reg;
    qpc_cq_log_next = qpc_cq_log_reg;
    qpc_vector_next = qpc_vector_reg;
    qpc_busy_next = qpc_busy_reg && !ctx_load_ready;
    qpc_error_next = qpc_error_reg;
    qpc_tr_next = qpc_tr_reg;
    qpc_q_pend_next = qpc_q_pend_reg && !m_query_ready;
    qpc_q_wait_next = (qpc_q_wait_reg || (qpc_q_pend_reg && m_query_ready)) && !s_query_valid;
    qpc_qstate_next = s_query_valid ? {s_query_err, s_query_rts} : qpc_qstate_reg;
    db_qpn_next = db_qpn_reg;
    db_data_next = db_data_reg;
    db_sq_valid_next = db_sq_valid_reg && !m_db_sq_ready;
    db_rq_valid_next = db_rq_valid_reg && !m_db_rq_ready;
    db_cq_valid_next = db_cq_valid_reg && !m_db_cq_ready;
    cm_cmdq_base_next = cm_cmdq_base_reg;
    cm_eq_base_next = cm_eq_base_reg;
    cm_cmdq_log_next = cm_cmdq_log_reg;
    cm_eq_log_next = cm_eq_log_reg;
    cm_eq_vector_next = cm_eq_vector_reg;
    cm_enable_next = cm_enable_reg;
    cm_resp_next = cm_resp_reg;
    cm_retries_next = cm_retries_reg;
    cm_defer_next = cm_defer_reg;
    cm_tw_next = cm_tw_reg;
    cm_db_data_next = cm_db_data_reg;
    cm_db_arm_next = cm_db_arm_reg;
    cm_db_cmd_next = 1'b0;
    cm_db_eq_next = 1'b0;
    arp_req_ip_next = arp_req_ip_reg;
    arp_req_valid_next = arp_req_valid_reg && !m_arp_req_ready;
    arp_pop_next = 1'b0;
    arp_arm_next = 1'b0;
    arp_vector_next = arp_vector_reg;

    if (wr_do) begin
        bvalid_next = 1'b1;
        bresp_next = RESP_OKAY;
        if (wr_addr[1:0] != 2'b00) begin
            bresp_next = RESP_SLVERR;
            bad_wr = 1'b1;
        end else if (wr_db) begin
            // A doorbell is answered at once (writes are posted) and handed to its engine;
            // the next write waits until the engine has taken it.
            db_qpn_next = wr_db_qpn;
            db_data_next = s_axil_wdata;
            case (wr_db_off)
                SAN_DB_SQ_PI_OFFSET: db_sq_valid_next = 1'b1;
                SAN_DB_RQ_PI_OFFSET: db_rq_valid_next = 1'b1;
                SAN_DB_CQ_CI_OFFSET: db_cq_valid_next = 1'b1;
                default: begin
                    bresp_next = RESP_SLVERR;
                    bad_wr = 1'b1;
                end
            endcase
        end else begin
            case (wr_addr)
                SAN_NIC_SCRATCH_ADDR: begin
                    scratch_next = (scratch_reg & ~wmask) | (s_axil_wdata & wmask);
                end
                SAN_NIC_CONTROL_ADDR: begin
                    if (s_axil_wstrb[0]) begin
                        enable_next = s_axil_wdata[SAN_NIC_CONTROL_ENABLE_LSB];
                    end
                end
                SAN_NIC_IRQ_TEST_ADDR: begin
                    if (s_axil_wdata[15:0] < N_MSIX[15:0]) begin
                        msix_vector_next = s_axil_wdata[15:0];
                        msix_valid_next = 1'b1;
                    end else begin
                        bad_wr = 1'b1;
                    end
                end
                SAN_PORT_MAC_HI_ADDR: mac_hi_next = merge16(mac_hi_reg);
                SAN_PORT_MAC_LO_ADDR: mac_lo_next = merge(mac_lo_reg);
                SAN_PORT_IP_ADDR_ADDR: ip_next = merge(ip_reg);
                SAN_PORT_PMTU_ADDR: begin
                    if (s_axil_wstrb[0] && s_axil_wdata[3:0] >= 4'd8 && s_axil_wdata[3:0] <= 4'd12
                            && s_axil_wdata[7:4] == 4'd0) begin
                        pmtu_log2_next = s_axil_wdata[3:0];
                    end else begin
                        bad_wr = 1'b1;
                    end
                end
                SAN_PORT_RX_DROP_SEL_ADDR: begin
                    if (s_axil_wstrb[0]) begin
                        drop_sel_next = s_axil_wdata[4:0];
                    end
                end
                SAN_QPC_QPN_ADDR: qpc_qpn_next = merge(qpc_qpn_reg);
                SAN_QPC_STATE_ADDR: begin
                    if (s_axil_wstrb[0]) begin
                        qpc_rts_next = s_axil_wdata[SAN_QPC_STATE_RTS_LSB];
                    end
                end
                SAN_QPC_DEST_QPN_ADDR: qpc_dest_qpn_next = merge24(qpc_dest_qpn_reg);
                SAN_QPC_DMAC_HI_ADDR: qpc_dmac_hi_next = merge16(qpc_dmac_hi_reg);
                SAN_QPC_DMAC_LO_ADDR: qpc_dmac_lo_next = merge(qpc_dmac_lo_reg);
                SAN_QPC_DIP_ADDR: qpc_dip_next = merge(qpc_dip_reg);
                SAN_QPC_UDP_SPORT_ADDR: qpc_sport_next = merge16(qpc_sport_reg);
                SAN_QPC_SQ_PSN_ADDR: qpc_sq_psn_next = merge24(qpc_sq_psn_reg);
                SAN_QPC_RQ_PSN_ADDR: qpc_rq_psn_next = merge24(qpc_rq_psn_reg);
                SAN_QPC_SQ_BASE_LO_ADDR: qpc_sq_base_next[31:0] = merge(qpc_sq_base_reg[31:0]);
                SAN_QPC_SQ_BASE_HI_ADDR: qpc_sq_base_next[63:32] = merge(qpc_sq_base_reg[63:32]);
                SAN_QPC_RQ_BASE_LO_ADDR: qpc_rq_base_next[31:0] = merge(qpc_rq_base_reg[31:0]);
                SAN_QPC_RQ_BASE_HI_ADDR: qpc_rq_base_next[63:32] = merge(qpc_rq_base_reg[63:32]);
                SAN_QPC_CQ_BASE_LO_ADDR: qpc_cq_base_next[31:0] = merge(qpc_cq_base_reg[31:0]);
                SAN_QPC_CQ_BASE_HI_ADDR: qpc_cq_base_next[63:32] = merge(qpc_cq_base_reg[63:32]);
                SAN_QPC_LOG_SIZES_ADDR: begin
                    if (s_axil_wstrb[0]) qpc_sq_log_next = s_axil_wdata[SAN_QPC_LOG_SIZES_SQ_LSB +: 5];
                    if (s_axil_wstrb[1]) qpc_rq_log_next = s_axil_wdata[SAN_QPC_LOG_SIZES_RQ_LSB +: 5];
                    if (s_axil_wstrb[2]) qpc_cq_log_next = s_axil_wdata[SAN_QPC_LOG_SIZES_CQ_LSB +: 5];
                end
                SAN_QPC_CQ_VECTOR_ADDR: qpc_vector_next = merge16(qpc_vector_reg);
                SAN_QPC_TRANSPORT_ADDR: begin
                    if (s_axil_wstrb[0]) begin
                        qpc_tr_next[2:0] = s_axil_wdata[SAN_QPC_TRANSPORT_RETRY_CNT_LSB +: 3];
                        qpc_tr_next[5:3] = s_axil_wdata[SAN_QPC_TRANSPORT_RNR_RETRY_LSB +: 3];
                    end
                    if (s_axil_wstrb[1]) begin
                        qpc_tr_next[10:6] = s_axil_wdata[SAN_QPC_TRANSPORT_TIMEOUT_LSB +: 5];
                    end
                    if (s_axil_wstrb[2]) begin
                        qpc_tr_next[15:11] = s_axil_wdata[SAN_QPC_TRANSPORT_MIN_RNR_TIMER_LSB +: 5];
                    end
                end
                SAN_QPC_CMD_ADDR: begin
                    if (s_axil_wstrb[0] && s_axil_wdata[SAN_QPC_CMD_LOAD_LSB]) begin
                        if (qpc_bad) begin
                            qpc_error_next = 1'b1;
                            bad_wr = 1'b1;
                        end else begin
                            qpc_error_next = 1'b0;
                            qpc_busy_next = 1'b1;
                        end
                    end else if (s_axil_wstrb[0] && s_axil_wdata[SAN_QPC_CMD_QUERY_LSB]) begin
                        if (qpc_qpn_reg >= N_QP) begin
                            qpc_error_next = 1'b1;
                            bad_wr = 1'b1;
                        end else begin
                            qpc_error_next = 1'b0;
                            qpc_q_pend_next = 1'b1;
                        end
                    end
                end
                SAN_CM_CMDQ_BASE_LO_ADDR: cm_cmdq_base_next[31:0] = merge(cm_cmdq_base_reg[31:0]);
                SAN_CM_CMDQ_BASE_HI_ADDR: cm_cmdq_base_next[63:32] = merge(cm_cmdq_base_reg[63:32]);
                SAN_CM_EQ_BASE_LO_ADDR: cm_eq_base_next[31:0] = merge(cm_eq_base_reg[31:0]);
                SAN_CM_EQ_BASE_HI_ADDR: cm_eq_base_next[63:32] = merge(cm_eq_base_reg[63:32]);
                SAN_CM_LOG_SIZES_ADDR: begin
                    if (s_axil_wstrb[0]) cm_cmdq_log_next = s_axil_wdata[SAN_CM_LOG_SIZES_CMDQ_LSB +: 5];
                    if (s_axil_wstrb[1]) cm_eq_log_next = s_axil_wdata[SAN_CM_LOG_SIZES_EQ_LSB +: 5];
                end
                SAN_CM_EQ_VECTOR_ADDR: cm_eq_vector_next = merge16(cm_eq_vector_reg);
                SAN_CM_CONTROL_ADDR: begin
                    if (s_axil_wstrb[0]) begin
                        if (s_axil_wdata[SAN_CM_CONTROL_ENABLE_LSB] && !cm_rings_ok) begin
                            bad_wr = 1'b1;
                        end else begin
                            cm_enable_next = s_axil_wdata[SAN_CM_CONTROL_ENABLE_LSB];
                        end
                    end
                end
                SAN_CM_TIMING_ADDR: begin
                    if (s_axil_wstrb[0]) cm_resp_next = s_axil_wdata[SAN_CM_TIMING_RESPONSE_TIMEOUT_LSB +: 5];
                    if (s_axil_wstrb[1]) cm_retries_next = s_axil_wdata[SAN_CM_TIMING_MAX_RETRIES_LSB +: 4];
                    if (s_axil_wstrb[2]) cm_defer_next = s_axil_wdata[SAN_CM_TIMING_DEFER_TIMEOUT_LSB +: 5];
                    if (s_axil_wstrb[3]) cm_tw_next = s_axil_wdata[SAN_CM_TIMING_TIMEWAIT_LSB +: 5];
                end
                SAN_CM_CMDQ_PI_ADDR: begin
                    cm_db_data_next = s_axil_wdata[15:0];
                    cm_db_cmd_next = 1'b1;
                end
                SAN_CM_EQ_CI_ADDR: begin
                    cm_db_data_next = s_axil_wdata[15:0];
                    cm_db_arm_next = s_axil_wdata[31];
                    cm_db_eq_next = 1'b1;
                end
                SAN_ARP_REQUEST_ADDR: begin
                    arp_req_ip_next = s_axil_wdata;
                    arp_req_valid_next = 1'b1;
                end
                SAN_ARP_REPLY_POP_ADDR: begin
                    arp_pop_next = s_axil_wstrb[0] && s_axil_wdata[SAN_ARP_REPLY_POP_POP_LSB];
                    arp_arm_next = s_axil_wstrb[3] && s_axil_wdata[SAN_ARP_REPLY_POP_ARM_LSB];
                end
                SAN_ARP_VECTOR_ADDR: begin
                    if (merge16(arp_vector_reg) < N_MSIX[15:0]) begin
                        arp_vector_next = merge16(arp_vector_reg);
                    end else begin
                        bad_wr = 1'b1;
                    end
                end
                // Read-only registers accept the write and keep their value: the write is
                // posted on PCIe, so an error response could never reach the host.
                SAN_NIC_BLK_TYPE_ADDR, SAN_NIC_BLK_VERSION_ADDR, SAN_NIC_BLK_NEXT_ADDR,
                SAN_NIC_CONTRACT_ID_ADDR, SAN_NIC_BUILD_DATA_WIDTH_ADDR,
                SAN_NIC_BUILD_N_QP_ADDR, SAN_NIC_BUILD_CLK_KHZ_ADDR,
                SAN_NIC_BUILD_N_MSIX_ADDR, SAN_NIC_BUILD_BAR0_SIZE_ADDR,
                SAN_NIC_STATUS_ADDR, SAN_NIC_CYCLE_LO_ADDR, SAN_NIC_CYCLE_HI_ADDR,
                SAN_NIC_BAD_ACCESS_ADDR,
                SAN_PORT_BLK_TYPE_ADDR, SAN_PORT_BLK_VERSION_ADDR, SAN_PORT_BLK_NEXT_ADDR,
                SAN_PORT_TX_FRAMES_ADDR, SAN_PORT_RX_FRAMES_ADDR, SAN_PORT_RX_DROP_COUNT_ADDR,
                SAN_PORT_CQ_OVERRUNS_ADDR, SAN_PORT_DMA_ERRORS_ADDR,
                SAN_PORT_TIMEOUTS_ADDR, SAN_PORT_SEQ_NAKS_ADDR, SAN_PORT_RNR_NAKS_ADDR,
                SAN_PORT_ACKS_IGNORED_ADDR,
                SAN_QPC_BLK_TYPE_ADDR, SAN_QPC_BLK_VERSION_ADDR, SAN_QPC_BLK_NEXT_ADDR,
                SAN_QPC_STATUS_ADDR, SAN_QPC_QSTATE_ADDR,
                SAN_ARP_BLK_TYPE_ADDR, SAN_ARP_BLK_VERSION_ADDR, SAN_ARP_BLK_NEXT_ADDR,
                SAN_ARP_REPLY_STATUS_ADDR, SAN_ARP_REPLY_IP_ADDR, SAN_ARP_REPLY_MAC_HI_ADDR,
                SAN_ARP_REPLY_MAC_LO_ADDR, SAN_ARP_ANSWERED_ADDR, SAN_ARP_REQUESTS_SENT_ADDR,
                SAN_ARP_REPLIES_RECEIVED_ADDR, SAN_ARP_REPLIES_LOST_ADDR,
                SAN_CM_BLK_TYPE_ADDR, SAN_CM_BLK_VERSION_ADDR, SAN_CM_BLK_NEXT_ADDR,
                SAN_CM_MADS_TX_ADDR, SAN_CM_MADS_RX_ADDR, SAN_CM_MADS_DROPPED_ADDR,
                SAN_CM_RESENDS_ADDR, SAN_CM_CM_TIMEOUTS_ADDR, SAN_CM_REFUSED_ADDR: begin
                end
                default: begin
                    bresp_next = RESP_SLVERR;
                    bad_wr = 1'b1;
                end
            endcase
        end
    end
end

always @* begin
    arready_next = rd_start;
    rvalid_next = rvalid_reg && !s_axil_rready;
    rdata_next = rdata_reg;
    rresp_next = rresp_reg;
    cycle_hi_next = cycle_hi_reg;
    bad_rd = 1'b0;

    if (rd_do) begin
        rvalid_next = 1'b1;
        rresp_next = RESP_OKAY;
        rdata_next = 32'd0;
        if (rd_addr[1:0] != 2'b00) begin
            rresp_next = RESP_SLVERR;
            bad_rd = 1'b1;
        end else if (rd_db) begin
            // Doorbells are write-only and read as zero; other offsets of a page are errors.
            if (rd_db_off != SAN_DB_SQ_PI_OFFSET && rd_db_off != SAN_DB_RQ_PI_OFFSET
                    && rd_db_off != SAN_DB_CQ_CI_OFFSET) begin
                rresp_next = RESP_SLVERR;
                bad_rd = 1'b1;
            end
        end else begin
            case (rd_addr)
                SAN_NIC_BLK_TYPE_ADDR: rdata_next = SAN_NIC_TYPE;
                SAN_NIC_BLK_VERSION_ADDR: rdata_next = SAN_NIC_VERSION;
                SAN_NIC_BLK_NEXT_ADDR: rdata_next = SAN_NIC_BLK_NEXT_RESET;
                SAN_NIC_CONTRACT_ID_ADDR: rdata_next = SAN_CONTRACT_ID;
                SAN_NIC_BUILD_DATA_WIDTH_ADDR: rdata_next = DATA_WIDTH;
                SAN_NIC_BUILD_N_QP_ADDR: rdata_next = N_QP;
                SAN_NIC_BUILD_CLK_KHZ_ADDR: rdata_next = CLK_KHZ;
                SAN_NIC_BUILD_N_MSIX_ADDR: rdata_next = N_MSIX;
                SAN_NIC_BUILD_BAR0_SIZE_ADDR: rdata_next = BAR0_SIZE;
                SAN_NIC_SCRATCH_ADDR: rdata_next = scratch_reg;
                SAN_NIC_CONTROL_ADDR: rdata_next[SAN_NIC_CONTROL_ENABLE_LSB] = enable_reg;
                SAN_NIC_STATUS_ADDR: rdata_next[SAN_NIC_STATUS_ENABLED_LSB] = enable_reg;
                // Write-only: reads as zero.
                SAN_NIC_IRQ_TEST_ADDR: rdata_next = 32'd0;
                SAN_NIC_CYCLE_LO_ADDR: begin
                    rdata_next = cycle_reg[31:0];
                    cycle_hi_next = cycle_reg[63:32];
                end
                SAN_NIC_CYCLE_HI_ADDR: rdata_next = cycle_hi_reg;
                SAN_NIC_BAD_ACCESS_ADDR: rdata_next = bad_access_reg;
                SAN_PORT_BLK_TYPE_ADDR: rdata_next = SAN_PORT_TYPE;
                SAN_PORT_BLK_VERSION_ADDR: rdata_next = SAN_PORT_VERSION;
                SAN_PORT_BLK_NEXT_ADDR: rdata_next = SAN_PORT_BLK_NEXT_RESET;
                SAN_PORT_MAC_HI_ADDR: rdata_next = {16'd0, mac_hi_reg};
                SAN_PORT_MAC_LO_ADDR: rdata_next = mac_lo_reg;
                SAN_PORT_IP_ADDR_ADDR: rdata_next = ip_reg;
                SAN_PORT_PMTU_ADDR: rdata_next = {28'd0, pmtu_log2_reg};
                SAN_PORT_TX_FRAMES_ADDR: rdata_next = tx_frames_reg;
                SAN_PORT_RX_FRAMES_ADDR: rdata_next = rx_frames_reg;
                SAN_PORT_RX_DROP_SEL_ADDR: rdata_next = {27'd0, drop_sel_reg};
                SAN_PORT_RX_DROP_COUNT_ADDR: begin
                    if ({27'd0, drop_sel_reg} < N_DROP) begin
                        rdata_next = drop_cnt_reg[32*drop_sel_reg +: 32];
                    end
                end
                SAN_PORT_CQ_OVERRUNS_ADDR: rdata_next = cq_overruns_reg;
                SAN_PORT_DMA_ERRORS_ADDR: rdata_next = dma_errors_reg;
                SAN_PORT_TIMEOUTS_ADDR: rdata_next = timeouts_reg;
                SAN_PORT_SEQ_NAKS_ADDR: rdata_next = seq_naks_reg;
                SAN_PORT_RNR_NAKS_ADDR: rdata_next = rnr_naks_reg;
                SAN_PORT_ACKS_IGNORED_ADDR: rdata_next = acks_ignored_reg;
                SAN_QPC_BLK_TYPE_ADDR: rdata_next = SAN_QPC_TYPE;
                SAN_QPC_BLK_VERSION_ADDR: rdata_next = SAN_QPC_VERSION;
                SAN_QPC_BLK_NEXT_ADDR: rdata_next = SAN_QPC_BLK_NEXT_RESET;
                SAN_QPC_QPN_ADDR: rdata_next = qpc_qpn_reg;
                SAN_QPC_STATE_ADDR: rdata_next = {31'd0, qpc_rts_reg};
                SAN_QPC_DEST_QPN_ADDR: rdata_next = {8'd0, qpc_dest_qpn_reg};
                SAN_QPC_DMAC_HI_ADDR: rdata_next = {16'd0, qpc_dmac_hi_reg};
                SAN_QPC_DMAC_LO_ADDR: rdata_next = qpc_dmac_lo_reg;
                SAN_QPC_DIP_ADDR: rdata_next = qpc_dip_reg;
                SAN_QPC_UDP_SPORT_ADDR: rdata_next = {16'd0, qpc_sport_reg};
                SAN_QPC_SQ_PSN_ADDR: rdata_next = {8'd0, qpc_sq_psn_reg};
                SAN_QPC_RQ_PSN_ADDR: rdata_next = {8'd0, qpc_rq_psn_reg};
                SAN_QPC_SQ_BASE_LO_ADDR: rdata_next = qpc_sq_base_reg[31:0];
                SAN_QPC_SQ_BASE_HI_ADDR: rdata_next = qpc_sq_base_reg[63:32];
                SAN_QPC_RQ_BASE_LO_ADDR: rdata_next = qpc_rq_base_reg[31:0];
                SAN_QPC_RQ_BASE_HI_ADDR: rdata_next = qpc_rq_base_reg[63:32];
                SAN_QPC_CQ_BASE_LO_ADDR: rdata_next = qpc_cq_base_reg[31:0];
                SAN_QPC_CQ_BASE_HI_ADDR: rdata_next = qpc_cq_base_reg[63:32];
                SAN_QPC_LOG_SIZES_ADDR: rdata_next = {11'd0, qpc_cq_log_reg, 3'd0, qpc_rq_log_reg,
                    3'd0, qpc_sq_log_reg};
                SAN_QPC_CQ_VECTOR_ADDR: rdata_next = {16'd0, qpc_vector_reg};
                SAN_QPC_CMD_ADDR: rdata_next = 32'd0;
                SAN_QPC_STATUS_ADDR: begin
                    rdata_next[SAN_QPC_STATUS_BUSY_LSB] = qpc_cmd_busy;
                    rdata_next[SAN_QPC_STATUS_ERROR_LSB] = qpc_error_reg;
                end
                SAN_QPC_TRANSPORT_ADDR: begin
                    rdata_next[SAN_QPC_TRANSPORT_RETRY_CNT_LSB +: 3] = qpc_tr_reg[2:0];
                    rdata_next[SAN_QPC_TRANSPORT_RNR_RETRY_LSB +: 3] = qpc_tr_reg[5:3];
                    rdata_next[SAN_QPC_TRANSPORT_TIMEOUT_LSB +: 5] = qpc_tr_reg[10:6];
                    rdata_next[SAN_QPC_TRANSPORT_MIN_RNR_TIMER_LSB +: 5] = qpc_tr_reg[15:11];
                end
                SAN_QPC_QSTATE_ADDR: begin
                    rdata_next[SAN_QPC_QSTATE_RTS_LSB] = qpc_qstate_reg[0];
                    rdata_next[SAN_QPC_QSTATE_ERROR_LSB] = qpc_qstate_reg[1];
                end
                SAN_ARP_BLK_TYPE_ADDR: rdata_next = SAN_ARP_TYPE;
                SAN_ARP_BLK_VERSION_ADDR: rdata_next = SAN_ARP_VERSION;
                SAN_ARP_BLK_NEXT_ADDR: rdata_next = SAN_ARP_BLK_NEXT_RESET;
                SAN_ARP_REPLY_STATUS_ADDR: begin
                    rdata_next[SAN_ARP_REPLY_STATUS_VALID_LSB] = s_arp_rep_valid;
                    rdata_next[SAN_ARP_REPLY_STATUS_COUNT_LSB +: 8] = s_arp_rep_count;
                end
                SAN_ARP_REPLY_IP_ADDR: rdata_next = s_arp_rep_valid ? s_arp_rep_ip : 32'd0;
                SAN_ARP_REPLY_MAC_HI_ADDR: rdata_next = s_arp_rep_valid ? {16'd0, s_arp_rep_mac[47:32]} : 32'd0;
                SAN_ARP_REPLY_MAC_LO_ADDR: rdata_next = s_arp_rep_valid ? s_arp_rep_mac[31:0] : 32'd0;
                SAN_ARP_VECTOR_ADDR: rdata_next = {16'd0, arp_vector_reg};
                SAN_ARP_ANSWERED_ADDR: rdata_next = arp_answered_reg;
                SAN_ARP_REQUESTS_SENT_ADDR: rdata_next = arp_req_sent_reg;
                SAN_ARP_REPLIES_RECEIVED_ADDR: rdata_next = arp_rep_received_reg;
                SAN_ARP_REPLIES_LOST_ADDR: rdata_next = arp_rep_lost_reg;
                SAN_ARP_REQUEST_ADDR, SAN_ARP_REPLY_POP_ADDR: rdata_next = 32'd0;
                SAN_CM_BLK_TYPE_ADDR: rdata_next = SAN_CM_TYPE;
                SAN_CM_BLK_VERSION_ADDR: rdata_next = SAN_CM_VERSION;
                SAN_CM_BLK_NEXT_ADDR: rdata_next = SAN_CM_BLK_NEXT_RESET;
                SAN_CM_CMDQ_BASE_LO_ADDR: rdata_next = cm_cmdq_base_reg[31:0];
                SAN_CM_CMDQ_BASE_HI_ADDR: rdata_next = cm_cmdq_base_reg[63:32];
                SAN_CM_EQ_BASE_LO_ADDR: rdata_next = cm_eq_base_reg[31:0];
                SAN_CM_EQ_BASE_HI_ADDR: rdata_next = cm_eq_base_reg[63:32];
                SAN_CM_LOG_SIZES_ADDR: rdata_next = {19'd0, cm_eq_log_reg, 3'd0, cm_cmdq_log_reg};
                SAN_CM_EQ_VECTOR_ADDR: rdata_next = {16'd0, cm_eq_vector_reg};
                SAN_CM_CONTROL_ADDR: rdata_next[SAN_CM_CONTROL_ENABLE_LSB] = cm_enable_reg;
                SAN_CM_TIMING_ADDR: rdata_next = {3'd0, cm_tw_reg, 3'd0, cm_defer_reg, 4'd0, cm_retries_reg, 3'd0, cm_resp_reg};
                SAN_CM_MADS_TX_ADDR: rdata_next = cm_mads_tx_reg;
                SAN_CM_MADS_RX_ADDR: rdata_next = cm_mads_rx_reg;
                SAN_CM_MADS_DROPPED_ADDR: rdata_next = cm_mads_drop_reg;
                SAN_CM_RESENDS_ADDR: rdata_next = cm_resends_reg;
                SAN_CM_CM_TIMEOUTS_ADDR: rdata_next = cm_timeouts_reg;
                SAN_CM_REFUSED_ADDR: rdata_next = cm_refused_reg;
                SAN_CM_CMDQ_PI_ADDR, SAN_CM_EQ_CI_ADDR: rdata_next = 32'd0;
                default: begin
                    rresp_next = RESP_SLVERR;
                    bad_rd = 1'b1;
                end
            endcase
        end
    end
end

// Saturating count of bad accesses; a read and a write may both be bad in one cycle.
always @* begin
    bad_access_next = bad_access_reg;
    if (bad_rd && bad_wr) begin
        bad_access_next = (bad_access_reg >= 32'hFFFF_FFFE) ? 32'hFFFF_FFFF : bad_access_reg + 32'd2;
    end else if (bad_rd || bad_wr) begin
        bad_access_next = (bad_access_reg == 32'hFFFF_FFFF) ? bad_access_reg : bad_access_reg + 32'd1;
    end
end

// Traffic counters wrap; a frame dropped by the parser and one dropped by the receive engine
// may be counted in the same cycle (they never share a reason).
integer di;
always @* begin
    tx_frames_next = tx_frames_reg + {31'd0, stat_tx_frame};
    rx_frames_next = rx_frames_reg + {31'd0, stat_rx_frame};
    cq_overruns_next = cq_overruns_reg + {31'd0, stat_cq_overrun};
    dma_errors_next = dma_errors_reg + {31'd0, stat_dma_error};
    timeouts_next = timeouts_reg + {31'd0, stat_timeout};
    seq_naks_next = seq_naks_reg + {31'd0, stat_seq_nak};
    rnr_naks_next = rnr_naks_reg + {31'd0, stat_rnr_nak};
    acks_ignored_next = acks_ignored_reg + {31'd0, stat_ack_ignored};
    drop_cnt_next = drop_cnt_reg;
    drop_cnt_next[31:0] = drop_cnt_reg[31:0] + {31'd0, stat_drop0_valid} + {31'd0, stat_drop1_valid};
    for (di = 1; di < N_DROP; di = di + 1) begin
        if ((stat_drop0_valid && stat_drop0_reason == di[4:0])
                || (stat_drop1_valid && stat_drop1_reason == di[4:0])) begin
            drop_cnt_next[32*di +: 32] = drop_cnt_reg[32*di +: 32] + 32'd1;
        end
    end
end

always @(posedge clk) begin
    arp_answered_reg <= arp_answered_reg + {31'd0, stat_arp_answered};
    arp_req_sent_reg <= arp_req_sent_reg + {31'd0, stat_arp_req_sent};
    arp_rep_received_reg <= arp_rep_received_reg + {31'd0, stat_arp_rep_received};
    arp_rep_lost_reg <= arp_rep_lost_reg + {31'd0, stat_arp_rep_lost};
    arp_req_ip_reg <= arp_req_ip_next;
    arp_req_valid_reg <= arp_req_valid_next;
    arp_pop_reg <= arp_pop_next;
    arp_arm_reg <= arp_arm_next;
    arp_vector_reg <= arp_vector_next;
    cm_mads_tx_reg <= cm_mads_tx_reg + {31'd0, stat_cm_mad_tx};
    cm_mads_rx_reg <= cm_mads_rx_reg + {31'd0, stat_cm_mad_rx};
    cm_mads_drop_reg <= cm_mads_drop_reg + {31'd0, stat_cm_mad_drop};
    cm_resends_reg <= cm_resends_reg + {31'd0, stat_cm_resend};
    cm_timeouts_reg <= cm_timeouts_reg + {31'd0, stat_cm_timeout};
    cm_refused_reg <= cm_refused_reg + {31'd0, stat_cm_refused};
    cm_cmdq_base_reg <= cm_cmdq_base_next;
    cm_eq_base_reg <= cm_eq_base_next;
    cm_cmdq_log_reg <= cm_cmdq_log_next;
    cm_eq_log_reg <= cm_eq_log_next;
    cm_eq_vector_reg <= cm_eq_vector_next;
    cm_enable_reg <= cm_enable_next;
    cm_resp_reg <= cm_resp_next;
    cm_retries_reg <= cm_retries_next;
    cm_defer_reg <= cm_defer_next;
    cm_tw_reg <= cm_tw_next;
    cm_db_data_reg <= cm_db_data_next;
    cm_db_arm_reg <= cm_db_arm_next;
    cm_db_cmd_reg <= cm_db_cmd_next;
    cm_db_eq_reg <= cm_db_eq_next;
    mac_hi_reg <= mac_hi_next;
    mac_lo_reg <= mac_lo_next;
    ip_reg <= ip_next;
    pmtu_log2_reg <= pmtu_log2_next;
    drop_sel_reg <= drop_sel_next;
    tx_frames_reg <= tx_frames_next;
    rx_frames_reg <= rx_frames_next;
    cq_overruns_reg <= cq_overruns_next;
    dma_errors_reg <= dma_errors_next;
    timeouts_reg <= timeouts_next;
    seq_naks_reg <= seq_naks_next;
    rnr_naks_reg <= rnr_naks_next;
    acks_ignored_reg <= acks_ignored_next;
    drop_cnt_reg <= drop_cnt_next;
    qpc_qpn_reg <= qpc_qpn_next;
    qpc_rts_reg <= qpc_rts_next;
    qpc_dest_qpn_reg <= qpc_dest_qpn_next;
    qpc_dmac_hi_reg <= qpc_dmac_hi_next;
    qpc_dmac_lo_reg <= qpc_dmac_lo_next;
    qpc_dip_reg <= qpc_dip_next;
    qpc_sport_reg <= qpc_sport_next;
    qpc_sq_psn_reg <= qpc_sq_psn_next;
    qpc_rq_psn_reg <= qpc_rq_psn_next;
    qpc_sq_base_reg <= qpc_sq_base_next;
    qpc_rq_base_reg <= qpc_rq_base_next;
    qpc_cq_base_reg <= qpc_cq_base_next;
    qpc_sq_log_reg <= qpc_sq_log_next;
    qpc_rq_log_reg <= qpc_rq_log_next;
    qpc_cq_log_reg <= qpc_cq_log_next;
    qpc_vector_reg <= qpc_vector_next;
    qpc_busy_reg <= qpc_busy_next;
    qpc_error_reg <= qpc_error_next;
    qpc_tr_reg <= qpc_tr_next;
    qpc_q_pend_reg <= qpc_q_pend_next;
    qpc_q_wait_reg <= qpc_q_wait_next;
    qpc_qstate_reg <= qpc_qstate_next;
    db_qpn_reg <= db_qpn_next;
    db_data_reg <= db_data_next;
    db_sq_valid_reg <= db_sq_valid_next;
    db_rq_valid_reg <= db_rq_valid_next;
    db_cq_valid_reg <= db_cq_valid_next;
    awready_reg <= awready_next;
    wready_reg <= wready_next;
    bresp_reg <= bresp_next;
    bvalid_reg <= bvalid_next;
    arready_reg <= arready_next;
    rdata_reg <= rdata_next;
    rresp_reg <= rresp_next;
    rvalid_reg <= rvalid_next;
    scratch_reg <= scratch_next;
    enable_reg <= enable_next;
    msix_vector_reg <= msix_vector_next;
    msix_valid_reg <= msix_valid_next;
    cycle_reg <= cycle_reg + 64'd1;
    cycle_hi_reg <= cycle_hi_next;
    bad_access_reg <= bad_access_next;

    if (rst) begin
        awready_reg <= 1'b0;
        wready_reg <= 1'b0;
        bresp_reg <= RESP_OKAY;
        bvalid_reg <= 1'b0;
        arready_reg <= 1'b0;
        rresp_reg <= RESP_OKAY;
        rvalid_reg <= 1'b0;
        scratch_reg <= SAN_NIC_SCRATCH_RESET;
        enable_reg <= 1'b0;
        msix_valid_reg <= 1'b0;
        cycle_reg <= 64'd0;
        cycle_hi_reg <= SAN_NIC_CYCLE_HI_RESET;
        bad_access_reg <= SAN_NIC_BAD_ACCESS_RESET;
        mac_hi_reg <= 16'd0;
        mac_lo_reg <= SAN_PORT_MAC_LO_RESET;
        ip_reg <= SAN_PORT_IP_ADDR_RESET;
        pmtu_log2_reg <= SAN_PORT_PMTU_RESET[3:0];
        drop_sel_reg <= 5'd0;
        tx_frames_reg <= SAN_PORT_TX_FRAMES_RESET;
        rx_frames_reg <= SAN_PORT_RX_FRAMES_RESET;
        cq_overruns_reg <= SAN_PORT_CQ_OVERRUNS_RESET;
        dma_errors_reg <= SAN_PORT_DMA_ERRORS_RESET;
        timeouts_reg <= SAN_PORT_TIMEOUTS_RESET;
        seq_naks_reg <= SAN_PORT_SEQ_NAKS_RESET;
        rnr_naks_reg <= SAN_PORT_RNR_NAKS_RESET;
        acks_ignored_reg <= SAN_PORT_ACKS_IGNORED_RESET;
        drop_cnt_reg <= {32*N_DROP{1'b0}};
        qpc_qpn_reg <= SAN_QPC_QPN_RESET;
        qpc_rts_reg <= 1'b0;
        qpc_dest_qpn_reg <= 24'd0;
        qpc_dmac_hi_reg <= 16'd0;
        qpc_dmac_lo_reg <= SAN_QPC_DMAC_LO_RESET;
        qpc_dip_reg <= SAN_QPC_DIP_RESET;
        qpc_sport_reg <= 16'd0;
        qpc_sq_psn_reg <= 24'd0;
        qpc_rq_psn_reg <= 24'd0;
        qpc_sq_base_reg <= 64'd0;
        qpc_rq_base_reg <= 64'd0;
        qpc_cq_base_reg <= 64'd0;
        qpc_sq_log_reg <= 5'd0;
        qpc_rq_log_reg <= 5'd0;
        qpc_cq_log_reg <= 5'd0;
        qpc_vector_reg <= 16'd0;
        qpc_busy_reg <= 1'b0;
        qpc_error_reg <= 1'b0;
        qpc_tr_reg <= 16'd0;
        qpc_q_pend_reg <= 1'b0;
        qpc_q_wait_reg <= 1'b0;
        qpc_qstate_reg <= 2'd0;
        db_sq_valid_reg <= 1'b0;
        db_rq_valid_reg <= 1'b0;
        db_cq_valid_reg <= 1'b0;
        cm_mads_tx_reg <= 32'd0;
        cm_mads_rx_reg <= 32'd0;
        cm_mads_drop_reg <= 32'd0;
        cm_resends_reg <= 32'd0;
        cm_timeouts_reg <= 32'd0;
        cm_refused_reg <= 32'd0;
        cm_cmdq_base_reg <= 64'd0;
        cm_eq_base_reg <= 64'd0;
        cm_cmdq_log_reg <= 5'd0;
        cm_eq_log_reg <= 5'd0;
        cm_eq_vector_reg <= 16'd0;
        cm_enable_reg <= 1'b0;
        cm_resp_reg <= SAN_CM_TIMING_RESET[4:0];
        cm_retries_reg <= SAN_CM_TIMING_RESET[11:8];
        cm_defer_reg <= SAN_CM_TIMING_RESET[20:16];
        cm_tw_reg <= SAN_CM_TIMING_RESET[28:24];
        cm_db_cmd_reg <= 1'b0;
        cm_db_eq_reg <= 1'b0;
        arp_answered_reg <= 32'd0;
        arp_req_sent_reg <= 32'd0;
        arp_rep_received_reg <= 32'd0;
        arp_rep_lost_reg <= 32'd0;
        arp_req_valid_reg <= 1'b0;
        arp_pop_reg <= 1'b0;
        arp_arm_reg <= 1'b0;
        arp_vector_reg <= 16'd0;
    end
end

endmodule

`resetall

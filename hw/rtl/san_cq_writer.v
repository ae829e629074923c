// SPDX-License-Identifier: MIT
// san_cq_writer: the completion queues: writes each CQE into its CQ ring in host memory with the
// lap's phase bit, takes the consumer's doorbells, drops CQEs for full or reset CQs, and raises an
// armed CQ's MSI-X vector once, after the CQE that fired it has been handed to the DMA mux.

`resetall
`timescale 1ns / 1ps
`default_nettype none

// Structure: one operation at a time (a context load, a doorbell or a CQE) on a per-CQ table in
// one simple dual-port RAM (block RAM for large N_QP):
//   ST_IDLE  takes a context load (written at once), or picks a doorbell or a CQE, reads its CQ
//   ST_LOOK  the CQ's entry is out of the RAM: apply the operation and write the entry back
// so a doorbell or CQE costs 2 cycles and the read-modify-write of one never overlaps another
// (no forwarding needed). A CQE to write, or an interrupt a doorbell raises, becomes a record in
// a small output FIFO; the output side sends each record's request and 32 data bytes, then pushes
// its vector (if it fired one) into the MSI-X FIFO. The output FIFO decouples the 4-beat writes
// from the 2-cycle operations, so CQEs stream back to back, one per SAN_CQE_SIZE*8/DATA_WIDTH
// beats. Records leave in operation order, so an interrupt also follows every CQE write taken
// before it. A full output FIFO holds new doorbells and CQEs (every doorbell needs a free record,
// even one that raises nothing); a full MSI-X FIFO holds the output. Doorbells and CQEs take
// turns when both wait; the two CQE sources take turns (round-robin).
//
// After reset the table is swept (N_QP cycles, ctx_load_ready and every s_*_ready low) so every CQ
// starts in reset. A CQE for a CQ in reset, like one for a full CQ, is dropped with a one-cycle
// m_overrun_valid pulse, two cycles after it was taken. Doorbells for a CQ in reset are taken and
// ignored. ctx_load_ready is low only while an operation is in ST_LOOK (one cycle) and during the
// reset sweep. Records already queued when their CQ is reloaded are still written.
//
// Flushing (a connection manager's stop, ctx_load_flush): the load leaves the CQ as it is (base,
// indices, armed, vector), so the flushed completions that follow are written and a waiter armed
// on the CQ gets its interrupt; the next load without flush resets it. An end-of-flush request
// (s_cqe*_flush) writes nothing: it pulses m_flushed_valid with its connection once every record
// taken before it has left (its CQE's request and data handed to the DMA mux), so a write the
// manager makes after the pulse lands after them.
module san_cq_writer #(
    // DMA write data width in bits: 64, 128 or 256 (a CQE is then 4, 2 or 1 beats).
    parameter DATA_WIDTH = 64,
    // Connections, each owning one CQ; a power of two from 2 to 4096.
    parameter N_QP = 256
) (
    input  wire                    clk,
    input  wire                    rst,

    // Context load (from san_csr): taken in any cycle where ctx_load_ready is 1
    input  wire                    ctx_load_en,
    output wire                    ctx_load_ready,
    input  wire [$clog2(N_QP)-1:0] ctx_load_qpn,
    input  wire                    ctx_load_rts,
    input  wire [63:0]             ctx_load_cq_base,
    input  wire [4:0]              ctx_load_cq_log,
    input  wire [15:0]             ctx_load_cq_vector,
    input  wire                    ctx_load_flush,

    // CQ doorbells: new consumer index, and arm (bit 31 of the doorbell write)
    input  wire [$clog2(N_QP)-1:0] s_db_qpn,
    input  wire [15:0]             s_db_ci,
    input  wire                    s_db_arm,
    input  wire                    s_db_valid,
    output wire                    s_db_ready,

    // Completion requests, source 0
    input  wire [$clog2(N_QP)-1:0] s_cqe0_qpn,
    input  wire [63:0]             s_cqe0_wr_id,
    input  wire [31:0]             s_cqe0_byte_len,
    input  wire [7:0]              s_cqe0_opcode,
    input  wire [7:0]              s_cqe0_status,
    input  wire [15:0]             s_cqe0_wqe_index,
    input  wire                    s_cqe0_solicited,
    input  wire                    s_cqe0_flush,
    input  wire                    s_cqe0_valid,
    output wire                    s_cqe0_ready,

    // Completion requests, source 1
    input  wire [$clog2(N_QP)-1:0] s_cqe1_qpn,
    input  wire [63:0]             s_cqe1_wr_id,
    input  wire [31:0]             s_cqe1_byte_len,
    input  wire [7:0]              s_cqe1_opcode,
    input  wire [7:0]              s_cqe1_status,
    input  wire [15:0]             s_cqe1_wqe_index,
    input  wire                    s_cqe1_solicited,
    input  wire                    s_cqe1_flush,
    input  wire                    s_cqe1_valid,
    output wire                    s_cqe1_ready,

    // CQE writes (to san_dma_mux): a request, then SAN_CQE_SIZE bytes
    output wire [63:0]             m_dma_wr_req_addr,
    output wire [15:0]             m_dma_wr_req_len,
    output wire                    m_dma_wr_req_valid,
    input  wire                    m_dma_wr_req_ready,
    output wire [DATA_WIDTH-1:0]   m_axis_dma_wr_tdata,
    output wire [DATA_WIDTH/8-1:0] m_axis_dma_wr_tkeep,
    output wire                    m_axis_dma_wr_tvalid,
    input  wire                    m_axis_dma_wr_tready,
    output wire                    m_axis_dma_wr_tlast,

    // MSI-X requests
    output wire [15:0]             m_msix_vector,
    output wire                    m_msix_valid,
    input  wire                    m_msix_ready,

    // One pulse per CQE dropped (CQ full or in reset)
    output wire                    m_overrun_valid,

    // End of a connection's flush: every CQE before its end marker is out (one-cycle pulse)
    output wire [$clog2(N_QP)-1:0] m_flushed_qpn,
    output wire                    m_flushed_valid
);

`include "san_regs.vh"

localparam integer QPN_W = $clog2(N_QP);
localparam integer CQE_BITS = 8 * SAN_CQE_SIZE;
localparam integer CQE_SHIFT = $clog2(SAN_CQE_SIZE);
localparam integer BEATS = CQE_BITS / DATA_WIDTH;
localparam integer BEAT_W = BEATS > 1 ? $clog2(BEATS) : 1;
// Records queued between the operations and the DMA output, and interrupts waiting for the host.
localparam integer OUT_DEPTH = 4;
localparam integer MSIX_DEPTH = 8;

initial begin
    if (DATA_WIDTH != 64 && DATA_WIDTH != 128 && DATA_WIDTH != 256) begin
        $error("san_cq_writer: DATA_WIDTH must be 64, 128 or 256");
        $finish;
    end
    if (N_QP < 2 || N_QP > 4096 || (N_QP & (N_QP - 1)) != 0) begin
        $error("san_cq_writer: N_QP must be a power of two from 2 to 4096");
        $finish;
    end
    // The CQE image below is built from fixed-width fields: the contract must agree.
    if (SAN_CQE_SIZE != 32 || SAN_CQE_WR_ID_BYTES != 8 || SAN_CQE_BYTE_LEN_BYTES != 4
            || SAN_CQE_QPN_BYTES != 4 || SAN_CQE_OPCODE_BYTES != 1 || SAN_CQE_STATUS_BYTES != 1
            || SAN_CQE_FLAGS_BYTES != 1 || SAN_CQE_WQE_INDEX_BYTES != 2) begin
        $error("san_cq_writer: the contract's CQE layout changed; update the CQE image");
        $finish;
    end
end

// --- the CQ table ------------------------------------------------------------------------------
// One entry per CQ: {armed, ci, pi, rts, vector, log, base}.
localparam integer T_BASE = 0;
localparam integer T_LOG = 64;
localparam integer T_VEC = 69;
localparam integer T_RTS = 85;
localparam integer T_PI = 86;
localparam integer T_CI = 102;
localparam integer T_ARMED = 118;
localparam integer TBL_W = 119;

reg [TBL_W-1:0] tbl_mem [0:N_QP-1];
reg [TBL_W-1:0] tbl_q;            // the entry read in the previous ST_IDLE cycle

reg             tbl_re;
reg [QPN_W-1:0] tbl_raddr;
reg             tbl_we;
reg [QPN_W-1:0] tbl_waddr;
reg [TBL_W-1:0] tbl_wdata;

// The storage: one write port, one registered read port; reads and writes never meet on one
// entry in one cycle (a read in ST_IDLE, the write-back in ST_LOOK).
always @(posedge clk) begin
    if (tbl_we) begin
        tbl_mem[tbl_waddr] <= tbl_wdata;
    end
    if (tbl_re) begin
        tbl_q <= tbl_mem[tbl_raddr];
    end
end

wire [63:0] e_base = tbl_q[T_BASE +: 64];
wire [4:0]  e_log = tbl_q[T_LOG +: 5];
wire [15:0] e_vector = tbl_q[T_VEC +: 16];
wire        e_rts = tbl_q[T_RTS];
wire [15:0] e_pi = tbl_q[T_PI +: 16];
wire [15:0] e_ci = tbl_q[T_CI +: 16];
wire        e_armed = tbl_q[T_ARMED];

// Ring geometry of the entry (log is 1..15; a larger one makes size 0 and the CQ never full).
wire [15:0] e_size = 16'd1 << e_log;
wire [15:0] e_slot = e_pi & (e_size - 16'd1);
wire        e_full = e_pi - e_ci == e_size;
wire        e_phase = (e_pi & e_size) == 16'd0;    // 1 on even laps: pi >> log even
wire [63:0] e_addr = e_base + ({48'd0, e_slot} << CQE_SHIFT);

// --- operations ---------------------------------------------------------------------------------

localparam [1:0]
    ST_INIT = 2'd0,   // after reset: each CQ in turn put in reset, one per cycle
    ST_IDLE = 2'd1,   // takes a context load, or a doorbell or CQE whose CQ is read
    ST_LOOK = 2'd2;   // the CQ's entry is read: apply the operation, write the entry back

reg [1:0] state_reg = ST_INIT, state_next;
reg [QPN_W-1:0] init_qpn_reg = {QPN_W{1'b0}}, init_qpn_next;
reg cqe_rr_reg = 1'b0, cqe_rr_next;          // 1: source 1 goes first when both are valid
reg last_db_reg = 1'b0, last_db_next;        // the last operation was a doorbell
reg overrun_reg = 1'b0, overrun_next;

// The operation in ST_LOOK.
reg        op_db_reg, op_db_next;            // 1: doorbell, 0: CQE
reg [QPN_W-1:0] op_qpn_reg, op_qpn_next;
reg [63:0] op_wr_id_reg, op_wr_id_next;
reg [31:0] op_byte_len_reg, op_byte_len_next;
reg [7:0]  op_opcode_reg, op_opcode_next;
reg [7:0]  op_status_reg, op_status_next;
reg [15:0] op_index_reg, op_index_next;
reg        op_sol_reg, op_sol_next;
reg        op_flush_reg, op_flush_next;     // an end-of-flush marker
reg [15:0] op_ci_reg, op_ci_next;
reg        op_arm_reg, op_arm_next;

// Output records: {data (a CQE to write), msix, vector, addr, wqe_index, wr_id, byte_len, qpn,
// opcode, status, solicited, phase}; a record without data only raises its vector.
localparam integer R_PHASE = 0;
localparam integer R_SOL = 1;
localparam integer R_STATUS = 2;
localparam integer R_OPCODE = 10;
localparam integer R_QPN = 18;
localparam integer R_BYTE_LEN = R_QPN + QPN_W;
localparam integer R_WR_ID = R_BYTE_LEN + 32;
localparam integer R_INDEX = R_WR_ID + 64;
localparam integer R_ADDR = R_INDEX + 16;
localparam integer R_VEC = R_ADDR + 64;
localparam integer R_MSIX = R_VEC + 16;
localparam integer R_DATA = R_MSIX + 1;
localparam integer R_FLUSH = R_DATA + 1;

localparam integer REC_W = R_FLUSH + 1;

reg              rec_valid;
reg              rec_data;
reg              rec_msix;
reg              rec_flush;
wire [REC_W-1:0] rec = {rec_flush, rec_data, rec_msix, e_vector, e_addr, op_index_reg, op_wr_id_reg, op_byte_len_reg,
    op_qpn_reg, op_opcode_reg, op_status_reg, op_sol_reg, e_phase};
wire             rec_room;

wire [REC_W-1:0] head;
wire             head_valid;
wire             head_pop;

san_sync_fifo #(
    .WIDTH(REC_W),
    .DEPTH(OUT_DEPTH)
) out_fifo_inst (
    .clk(clk),
    .rst(rst),
    .s_data(rec),
    .s_valid(rec_valid),
    .s_ready(rec_room),
    .m_data(head),
    .m_valid(head_valid),
    .m_ready(head_pop)
);

// Operation choice in ST_IDLE: a context load first (san_csr raises it only when we are ready),
// then doorbells and CQEs alternate when both wait; the CQE sources take turns. A new doorbell or
// CQE needs a free output record, which it keeps until ST_LOOK (only ST_LOOK pushes).
wire can_take = state_reg == ST_IDLE && !ctx_load_en && rec_room;
wire any_cqe = s_cqe0_valid || s_cqe1_valid;
wire take_db = can_take && s_db_valid && (!last_db_reg || !any_cqe);
wire take_cqe = can_take && any_cqe && !take_db;
wire pick1 = s_cqe1_valid && (!s_cqe0_valid || cqe_rr_reg);
wire take_cqe0 = take_cqe && !pick1;
wire take_cqe1 = take_cqe && pick1;

assign ctx_load_ready = state_reg == ST_IDLE;
assign s_db_ready = take_db;
assign s_cqe0_ready = take_cqe0;
assign s_cqe1_ready = take_cqe1;
assign m_overrun_valid = overrun_reg;

always @* begin
    state_next = state_reg;
    init_qpn_next = init_qpn_reg;
    cqe_rr_next = cqe_rr_reg;
    last_db_next = last_db_reg;
    overrun_next = 1'b0;

    op_db_next = op_db_reg;
    op_qpn_next = op_qpn_reg;
    op_wr_id_next = op_wr_id_reg;
    op_byte_len_next = op_byte_len_reg;
    op_index_next = op_index_reg;
    op_opcode_next = op_opcode_reg;
    op_status_next = op_status_reg;
    op_sol_next = op_sol_reg;
    op_flush_next = op_flush_reg;
    op_ci_next = op_ci_reg;
    op_arm_next = op_arm_reg;

    tbl_re = 1'b0;
    tbl_raddr = s_cqe0_qpn;
    tbl_we = 1'b0;
    tbl_waddr = op_qpn_reg;
    tbl_wdata = tbl_q;

    rec_valid = 1'b0;
    rec_data = 1'b0;
    rec_msix = 1'b0;
    rec_flush = 1'b0;

    case (state_reg)
        // Every CQ to reset, one entry per cycle.
        ST_INIT: begin
            tbl_we = 1'b1;
            tbl_waddr = init_qpn_reg;
            tbl_wdata = {TBL_W{1'b0}};
            init_qpn_next = init_qpn_reg + 1'b1;
            if (&init_qpn_reg) begin
                state_next = ST_IDLE;
            end
        end
        // Take a context load, or start a doorbell or CQE by reading its CQ.
        ST_IDLE: begin
            if (ctx_load_en && !ctx_load_flush) begin
                tbl_we = 1'b1;
                tbl_waddr = ctx_load_qpn;
                tbl_wdata = {TBL_W{1'b0}};
                tbl_wdata[T_BASE +: 64] = ctx_load_cq_base;
                tbl_wdata[T_LOG +: 5] = ctx_load_cq_log;
                tbl_wdata[T_VEC +: 16] = ctx_load_cq_vector;
                tbl_wdata[T_RTS] = ctx_load_rts;
            end
            if (take_db) begin
                tbl_re = 1'b1;
                tbl_raddr = s_db_qpn;
                op_db_next = 1'b1;
                op_qpn_next = s_db_qpn;
                op_ci_next = s_db_ci;
                op_arm_next = s_db_arm;
                last_db_next = 1'b1;
                state_next = ST_LOOK;
            end
            if (take_cqe) begin
                tbl_re = 1'b1;
                op_db_next = 1'b0;
                last_db_next = 1'b0;
                cqe_rr_next = !pick1;
                state_next = ST_LOOK;
                if (pick1) begin
                    tbl_raddr = s_cqe1_qpn;
                    op_qpn_next = s_cqe1_qpn;
                    op_wr_id_next = s_cqe1_wr_id;
                    op_byte_len_next = s_cqe1_byte_len;
                    op_opcode_next = s_cqe1_opcode;
                    op_status_next = s_cqe1_status;
                    op_index_next = s_cqe1_wqe_index;
                    op_sol_next = s_cqe1_solicited;
                    op_flush_next = s_cqe1_flush;
                end else begin
                    tbl_raddr = s_cqe0_qpn;
                    op_qpn_next = s_cqe0_qpn;
                    op_wr_id_next = s_cqe0_wr_id;
                    op_byte_len_next = s_cqe0_byte_len;
                    op_opcode_next = s_cqe0_opcode;
                    op_status_next = s_cqe0_status;
                    op_index_next = s_cqe0_wqe_index;
                    op_sol_next = s_cqe0_solicited;
                    op_flush_next = s_cqe0_flush;
                end
            end
        end
        // Apply the operation to the CQ's entry and write it back.
        ST_LOOK: begin
            state_next = ST_IDLE;
            if (op_db_reg) begin
                // Doorbell: new ci; arming with entries pending raises the vector now.
                if (e_rts) begin
                    tbl_we = 1'b1;
                    tbl_wdata[T_CI +: 16] = op_ci_reg;
                    if (op_arm_reg) begin
                        if (e_pi != op_ci_reg) begin
                            rec_valid = 1'b1;
                            rec_msix = 1'b1;
                            tbl_wdata[T_ARMED] = 1'b0;
                        end else begin
                            tbl_wdata[T_ARMED] = 1'b1;
                        end
                    end
                end
            end else if (op_flush_reg) begin
                // End of a flush: a record that only marks its place in the output order.
                rec_valid = 1'b1;
                rec_flush = 1'b1;
            end else if (!e_rts || e_full) begin
                // CQE for a CQ in reset or full: dropped.
                overrun_next = 1'b1;
            end else begin
                // CQE written at slot pi; an armed CQ fires once it is out, and is disarmed.
                rec_valid = 1'b1;
                rec_data = 1'b1;
                rec_msix = e_armed;
                tbl_we = 1'b1;
                tbl_wdata[T_PI +: 16] = e_pi + 16'd1;
                tbl_wdata[T_ARMED] = 1'b0;
            end
        end
        default: begin
            state_next = ST_IDLE;
        end
    endcase
end

// --- output: CQE writes and interrupts ----------------------------------------------------------

wire             h_flush = head[R_FLUSH];
wire             h_data = head[R_DATA];
wire             h_msix = head[R_MSIX];
wire [15:0]      h_vector = head[R_VEC +: 16];
wire [63:0]      h_addr = head[R_ADDR +: 64];
wire [63:0]      h_wr_id = head[R_WR_ID +: 64];
wire [31:0]      h_byte_len = head[R_BYTE_LEN +: 32];
wire [QPN_W-1:0] h_qpn = head[R_QPN +: QPN_W];
wire [7:0]       h_opcode = head[R_OPCODE +: 8];
wire [7:0]       h_status = head[R_STATUS +: 8];
wire             h_sol = head[R_SOL];
wire             h_phase = head[R_PHASE];

// The head record's CQE as it sits in host memory (byte i in bits 8*i +: 8).
reg [CQE_BITS-1:0] cqe_img;

always @* begin
    cqe_img = {CQE_BITS{1'b0}};
    cqe_img[8*SAN_CQE_WR_ID_OFFSET +: 64] = h_wr_id;
    cqe_img[8*SAN_CQE_BYTE_LEN_OFFSET +: 32] = h_byte_len;
    cqe_img[8*SAN_CQE_QPN_OFFSET +: 32] = {{(32-QPN_W){1'b0}}, h_qpn};
    cqe_img[8*SAN_CQE_OPCODE_OFFSET +: 8] = h_opcode;
    cqe_img[8*SAN_CQE_STATUS_OFFSET +: 8] = h_status;
    cqe_img[8*SAN_CQE_WQE_INDEX_OFFSET +: 16] = head[R_INDEX +: 16];
    cqe_img[8*SAN_CQE_FLAGS_OFFSET + SAN_CQE_FLAGS_SOLICITED_LSB] = h_sol;
    cqe_img[8*SAN_CQE_FLAGS_OFFSET + SAN_CQE_FLAGS_PHASE_LSB] = h_phase;
end

reg [BEAT_W-1:0] beat_reg = {BEAT_W{1'b0}}, beat_next;   // data beats of the head sent
reg req_done_reg = 1'b0, req_done_next;                   // its request was taken
reg data_done_reg = 1'b0, data_done_next;                 // its last beat was taken

wire last_beat = beat_reg == BEATS[BEAT_W-1:0] - 1'b1;
wire req_fire = m_dma_wr_req_valid && m_dma_wr_req_ready;
wire beat_fire = m_axis_dma_wr_tvalid && m_axis_dma_wr_tready;
wire req_done = !h_data || req_done_reg || req_fire;
wire data_done = !h_data || data_done_reg || (beat_fire && last_beat);
wire msix_room;
// The head is done when its request and data are out and its interrupt (if any) is queued.
assign head_pop = head_valid && req_done && data_done && (!h_msix || msix_room);

assign m_dma_wr_req_addr = h_addr;
assign m_dma_wr_req_len = SAN_CQE_SIZE[15:0];
assign m_dma_wr_req_valid = head_valid && h_data && !req_done_reg;
assign m_axis_dma_wr_tdata = cqe_img[beat_reg*DATA_WIDTH +: DATA_WIDTH];
assign m_axis_dma_wr_tkeep = {DATA_WIDTH/8{1'b1}};
assign m_axis_dma_wr_tvalid = head_valid && h_data && !data_done_reg;
assign m_axis_dma_wr_tlast = last_beat;

always @* begin
    beat_next = beat_reg;
    req_done_next = req_done_reg || req_fire;
    data_done_next = data_done_reg || (beat_fire && last_beat);
    if (beat_fire) begin
        beat_next = last_beat ? {BEAT_W{1'b0}} : beat_reg + 1'b1;
    end
    if (head_pop) begin
        req_done_next = 1'b0;
        data_done_next = 1'b0;
    end
end

san_sync_fifo #(
    .WIDTH(16),
    .DEPTH(MSIX_DEPTH)
) msix_fifo_inst (
    .clk(clk),
    .rst(rst),
    .s_data(h_vector),
    .s_valid(head_pop && h_msix),
    .s_ready(msix_room),
    .m_data(m_msix_vector),
    .m_valid(m_msix_valid),
    .m_ready(m_msix_ready)
);

reg flushed_valid_reg = 1'b0;
reg [QPN_W-1:0] flushed_qpn_reg = {QPN_W{1'b0}};
assign m_flushed_valid = flushed_valid_reg;
assign m_flushed_qpn = flushed_qpn_reg;

always @(posedge clk) begin
    flushed_valid_reg <= head_pop && h_flush;
    flushed_qpn_reg <= h_qpn;
    state_reg <= state_next;
    init_qpn_reg <= init_qpn_next;
    cqe_rr_reg <= cqe_rr_next;
    last_db_reg <= last_db_next;
    overrun_reg <= overrun_next;
    op_db_reg <= op_db_next;
    op_qpn_reg <= op_qpn_next;
    op_wr_id_reg <= op_wr_id_next;
    op_byte_len_reg <= op_byte_len_next;
    op_index_reg <= op_index_next;
    op_opcode_reg <= op_opcode_next;
    op_status_reg <= op_status_next;
    op_sol_reg <= op_sol_next;
    op_flush_reg <= op_flush_next;
    op_ci_reg <= op_ci_next;
    op_arm_reg <= op_arm_next;
    beat_reg <= beat_next;
    req_done_reg <= req_done_next;
    data_done_reg <= data_done_next;

    if (rst) begin
        state_reg <= ST_INIT;
        init_qpn_reg <= {QPN_W{1'b0}};
        cqe_rr_reg <= 1'b0;
        last_db_reg <= 1'b0;
        overrun_reg <= 1'b0;
        flushed_valid_reg <= 1'b0;
        beat_reg <= {BEAT_W{1'b0}};
        req_done_reg <= 1'b0;
        data_done_reg <= 1'b0;
    end
end

endmodule

`resetall

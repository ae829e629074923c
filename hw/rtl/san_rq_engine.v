// SPDX-License-Identifier: MIT
// san_rq_engine: the receive queues and the responder of the reliable transport: checks each
// received RC packet against its connection, takes receive WQEs from host memory, writes payload
// there, and emits ACKs and NAKs, completions and drops; received ACKs go on to the completer.

`resetall
`timescale 1ns / 1ps
`default_nettype none

// Two stages, each in order, with a FIFO of work items between them, so that the receive WQE
// fetches (about 150 cycles on PCIe) overlap across packets:
//
// Stage A, per parser descriptor (2 cycles): reads the connection's context (block RAM) and its
// RQ producer index (own RAM, written by doorbells) in the cycle it takes the descriptor, and
// decides in the next, with the first rule that applies:
// - QP_STATE drop: not an RC SEND or ACK, a DestQP that is not a connection's (connection c is
//   QP N_QP + c on the wire; anything else, QP 1 included, is dropped), or not ready (RTS).
// - PEER_IP drop: the IPv4 source is not the connection's peer (its loaded dip), as rxe's
//   address check does: a packet of another connection that happens to use the same QP
//   number changes nothing, ACKs included.
// - An ACK (opcode 0x11) goes to the completer (m_ack_*: QP, PSN, AETH syndrome and MSN).
// - DUPLICATE drop, PSN behind the expected one (epsn - PSN mod 2^24 in [1, 2^23]): re-ACKed
//   with an ACK of epsn - 1 (what rxe does for every duplicate SEND).
// - PSN drop, PSN ahead (PSN - epsn mod 2^24 in [1, 2^23 - 1]): the first of a gap is answered
//   with a NAK (PSN sequence error) of epsn and marks the connection (nak_sent); further ones
//   are dropped silently until a packet is accepted.
// - SEQUENCE drop, at the expected PSN a MIDDLE/LAST outside a message or a FIRST/ONLY inside
//   one: NAK (invalid request) of epsn.
// - NO_RECV drop, a FIRST/ONLY with the RQ empty: RNR NAK (0x20 | the connection's
//   min_rnr_timer) of the packet's PSN; the sender resends it after its RNR timer. It marks
//   the connection as a gap does, so the packets behind it get no PSN sequence NAK.
// - Otherwise the packet is accepted: the context moves on (expected PSN, in-message, consumer
//   index, MSN, nak_sent cleared), FIRST/ONLY queue the read of the next receive WQE, and
//   AckReq makes an ACK of the packet's PSN.
// Dropped packets leave the expected PSN where it is. Every ACK and NAK carries the MSN after the
// packet and goes out on m_tx_* 2 cycles after the descriptor was taken when nothing is queued
// ahead of it. A plain ACK (syndrome 0x1F) is merged into the queue's tail instead of queued
// behind it when the tail is a plain ACK of the same connection (same load) that the transmitter
// is not yet shown: re-ACK storms from go-back-N retransmissions stay short. NAKs are never
// merged or dropped. Every accepted packet, and every other one with payload (to drain it),
// becomes a work item. Stage A waits only for room in the item, ACK and completer FIFOs.
//
// Stage B, per work item: a FIRST/ONLY takes the next fetched WQE (they return in the order
// stage A asked for them), any other packet its message's state (block RAM: WQE fields, offset,
// read error); it writes the part of the payload that fits the buffer at WQE.addr + offset and
// drains the rest, and a LAST/ONLY then makes its CQE, once the write's last beat is taken.
// WQE reads go out only while the WQE FIFO has room for their data, so read data is never held
// up for long. A 64 B SEND_ONLY takes stage B 12 cycles, less than its 16-beat frame.
//
// A context load needs stage A between descriptors (ctx_load_ready); items already past stage A
// finish with the state they had, as if the load came after them. A load with ctx_load_flush (the
// connection manager stopping the connection) reads the old context as it writes the new one, and
// stage A then queues a flush item behind those items: stage B makes a FLUSHED RECV CQE for each
// receive WQE from the first incomplete one (the consumer index, less the one a message in
// progress took) up to the producer index (a doorbell still waiting counts), then an end marker
// (m_cqe_flush, no CQE). No WQE is fetched for it. After reset, the engine
// clears its N_QP contexts (one per cycle) before it takes loads, doorbells or packets.
module san_rq_engine #(
    // Payload and DMA stream width in bits; a power of two from 64 to 512.
    parameter DATA_WIDTH = 64,
    // Connections (QPs); a power of two from 2 to 4096.
    parameter N_QP = 256,
    // Work items stage A may be ahead of stage B; a power of two from 2 to 1024.
    parameter ITEM_DEPTH = 32,
    // Receive WQEs requested and not yet used by stage B: the WQE FIFO's entries and the limit on
    // reads in flight; a power of two from 2 to 1024. 16 hides a 150-cycle read latency at one
    // message per 10 cycles.
    parameter WQE_DEPTH = 16,
    // ACK and NAK descriptors waiting for the transmitter; a power of two from 2 to 1024.
    parameter ACK_DEPTH = 4,
    // Received ACKs waiting for the completer (m_ack_*); a power of two from 2 to 1024.
    parameter RX_ACK_DEPTH = 4
) (
    input  wire                     clk,
    input  wire                     rst,

    // CONTROL.ENABLE: when 0 no packet is taken (doorbells and loads still are)
    input  wire                     cfg_enable,

    // Context load: taken in a cycle with ctx_load_en, which comes only with ctx_load_ready
    input  wire                     ctx_load_en,
    output wire                     ctx_load_ready,
    input  wire [$clog2(N_QP)-1:0]  ctx_load_qpn,
    input  wire                     ctx_load_rts,
    input  wire [23:0]              ctx_load_dest_qpn,
    input  wire [47:0]              ctx_load_dmac,
    input  wire [31:0]              ctx_load_dip,
    input  wire [15:0]              ctx_load_udp_sport,
    input  wire [23:0]              ctx_load_rq_psn,
    input  wire [63:0]              ctx_load_rq_base,
    input  wire [4:0]               ctx_load_rq_log,
    input  wire [4:0]               ctx_load_min_rnr_timer,
    input  wire                     ctx_load_flush,

    // RQ doorbells: the new producer index
    input  wire [$clog2(N_QP)-1:0]  s_db_qpn,
    input  wire [15:0]              s_db_pi,
    input  wire                     s_db_valid,
    output wire                     s_db_ready,

    // Header descriptors from san_rx_parser
    input  wire [7:0]               s_hdr_opcode,
    input  wire                     s_hdr_se,
    input  wire [23:0]              s_hdr_dest_qp,
    input  wire                     s_hdr_ack_req,
    input  wire [23:0]              s_hdr_psn,
    input  wire [31:0]              s_hdr_src_ip,
    input  wire [12:0]              s_hdr_pay_len,
    input  wire [7:0]               s_hdr_aeth_syndrome,    // ACKs only
    input  wire [23:0]              s_hdr_aeth_msn,
    input  wire                     s_hdr_valid,
    output wire                     s_hdr_ready,

    // Payload of each descriptor with s_hdr_pay_len > 0, in descriptor order, from lane 0
    input  wire [DATA_WIDTH-1:0]    s_axis_pay_tdata,
    input  wire [DATA_WIDTH/8-1:0]  s_axis_pay_tkeep,
    input  wire                     s_axis_pay_tvalid,
    output wire                     s_axis_pay_tready,
    input  wire                     s_axis_pay_tlast,

    // DMA reads (receive WQEs); data in request order, tuser: the host could not read it
    output wire [63:0]              m_dma_rd_req_addr,
    output wire [15:0]              m_dma_rd_req_len,
    output wire                     m_dma_rd_req_valid,
    input  wire                     m_dma_rd_req_ready,
    input  wire [DATA_WIDTH-1:0]    s_axis_dma_rd_tdata,
    input  wire [DATA_WIDTH/8-1:0]  s_axis_dma_rd_tkeep,
    input  wire                     s_axis_dma_rd_tvalid,
    output wire                     s_axis_dma_rd_tready,
    input  wire                     s_axis_dma_rd_tlast,
    input  wire                     s_axis_dma_rd_tuser,

    // DMA writes (payload): a request, then exactly len bytes from lane 0
    output wire [63:0]              m_dma_wr_req_addr,
    output wire [15:0]              m_dma_wr_req_len,
    output wire                     m_dma_wr_req_valid,
    input  wire                     m_dma_wr_req_ready,
    output wire [DATA_WIDTH-1:0]    m_axis_dma_wr_tdata,
    output wire [DATA_WIDTH/8-1:0]  m_axis_dma_wr_tkeep,
    output wire                     m_axis_dma_wr_tvalid,
    input  wire                     m_axis_dma_wr_tready,
    output wire                     m_axis_dma_wr_tlast,

    // Received ACKs (opcode 0x11) of ready connections, for the requester's completer
    output wire [$clog2(N_QP)-1:0]  m_ack_qpn,
    output wire [23:0]              m_ack_psn,
    output wire [7:0]               m_ack_syndrome,
    output wire [23:0]              m_ack_msn,
    output wire                     m_ack_valid,
    input  wire                     m_ack_ready,

    // ACK and NAK descriptors to the transmitter (no payload)
    output wire [47:0]              m_tx_dst_mac,
    output wire [31:0]              m_tx_dst_ip,
    output wire [15:0]              m_tx_udp_sport,
    output wire [7:0]               m_tx_opcode,
    output wire                     m_tx_se,
    output wire [23:0]              m_tx_dest_qp,
    output wire                     m_tx_ack_req,
    output wire [23:0]              m_tx_psn,
    output wire [1:0]               m_tx_ext,
    output wire [31:0]              m_tx_ext0,
    output wire [23:0]              m_tx_ext1,
    output wire [12:0]              m_tx_pay_len,
    output wire                     m_tx_valid,
    input  wire                     m_tx_ready,

    // Receive completions to san_cq_writer
    output wire [$clog2(N_QP)-1:0]  m_cqe_qpn,
    output wire [63:0]              m_cqe_wr_id,
    output wire [31:0]              m_cqe_byte_len,
    output wire [7:0]               m_cqe_opcode,
    output wire [7:0]               m_cqe_status,
    output wire [15:0]              m_cqe_wqe_index,
    output wire                     m_cqe_solicited,
    output wire                     m_cqe_flush,
    output wire                     m_cqe_valid,
    input  wire                     m_cqe_ready,

    // One pulse per dropped packet, with its reason (SAN_RX_DROP_*); no backpressure
    output wire                     m_drop_valid,
    output wire [4:0]               m_drop_reason
);

localparam integer QPN_W = $clog2(N_QP);
localparam integer BYTES = DATA_WIDTH / 8;
localparam integer LANE_BITS = $clog2(BYTES);
localparam integer LEN_W = 13;                      // payload lengths, 0..4096
localparam integer BEAT_W = LEN_W - LANE_BITS;      // payload beat counts, 0..4096/BYTES
localparam integer WQE_CNT_W = $clog2(WQE_DEPTH) + 1;
// A receive WQE read comes back in WQE_BEATS beats of WQE_W useful bits.
localparam integer WQE_W = DATA_WIDTH < 256 ? DATA_WIDTH : 256;
localparam integer WQE_BEATS = 256 / WQE_W;
localparam integer WQE_BEAT_W = $clog2(WQE_BEATS) + 1;

localparam [7:0] OP_SEND_FIRST = 8'h00;
localparam [7:0] OP_SEND_MIDDLE = 8'h01;
localparam [7:0] OP_SEND_LAST = 8'h02;
localparam [7:0] OP_SEND_ONLY = 8'h04;
localparam [7:0] OP_ACK = 8'h11;

// RecvWQE offsets, CQE opcode and status codes, drop reasons, AETH syndromes: from the contract.
`include "san_regs.vh"

initial begin
    if (DATA_WIDTH < 64 || DATA_WIDTH > 512 || (DATA_WIDTH & (DATA_WIDTH - 1)) != 0) begin
        $error("san_rq_engine: DATA_WIDTH must be a power of two from 64 to 512");
        $finish;
    end
    if (N_QP < 2 || N_QP > 4096 || (N_QP & (N_QP - 1)) != 0) begin
        $error("san_rq_engine: N_QP must be a power of two from 2 to 4096");
        $finish;
    end
    if (ITEM_DEPTH < 2 || ITEM_DEPTH > 1024 || (ITEM_DEPTH & (ITEM_DEPTH - 1)) != 0
            || WQE_DEPTH < 2 || WQE_DEPTH > 1024 || (WQE_DEPTH & (WQE_DEPTH - 1)) != 0
            || ACK_DEPTH < 2 || ACK_DEPTH > 1024 || (ACK_DEPTH & (ACK_DEPTH - 1)) != 0
            || RX_ACK_DEPTH < 2 || RX_ACK_DEPTH > 1024
            || (RX_ACK_DEPTH & (RX_ACK_DEPTH - 1)) != 0) begin
        $error("san_rq_engine: ITEM_DEPTH, WQE_DEPTH, ACK_DEPTH and RX_ACK_DEPTH must be powers of two from 2 to 1024");
        $finish;
    end
end

function [BYTES-1:0] lanes_below(input [LANE_BITS:0] n);
    integer k;
    begin
        for (k = 0; k < BYTES; k = k + 1) begin
            lanes_below[k] = k < n;
        end
    end
endfunction

function [DATA_WIDTH-1:0] mask_lanes(input [DATA_WIDTH-1:0] d, input [BYTES-1:0] keep);
    integer k;
    begin
        for (k = 0; k < BYTES; k = k + 1) begin
            mask_lanes[8*k +: 8] = keep[k] ? d[8*k +: 8] : 8'h00;
        end
    end
endfunction

// --- tables ----------------------------------------------------------------------------------------

// Connection context, read and written by stage A and loads: the fields stage A changes (low),
// then the ones only a load sets.
localparam integer CTX_DYN_W = 1 + 24 + 1 + 16 + 24 + 1;
localparam integer CTX_STAT_W = 64 + 5 + 24 + 48 + 32 + 16 + 5;
localparam integer CTX_W = CTX_DYN_W + CTX_STAT_W;

reg [CTX_W-1:0] ctx_mem [0:N_QP-1];
reg [CTX_W-1:0] ctx_q = {CTX_W{1'b0}};
reg ctx_we;
reg [QPN_W-1:0] ctx_waddr;
reg [CTX_W-1:0] ctx_wdata;

// RQ producer indices, written by doorbells (and loads), read by stage A.
reg [15:0] pi_mem [0:N_QP-1];
reg [15:0] pi_q = 16'd0;
reg pi_we;
reg [QPN_W-1:0] pi_waddr;
reg [15:0] pi_wdata;

// Message state, stage B's: WQE fields, bytes of the message so far, the WQE read failed.
localparam integer MSG_W = 16 + 64 + 64 + 32 + 32 + 1;

reg [MSG_W-1:0] msg_mem [0:N_QP-1];
reg [MSG_W-1:0] msg_q = {MSG_W{1'b0}};
reg msg_we;
reg [MSG_W-1:0] msg_wdata;

// --- stage A -------------------------------------------------------------------------------------

localparam [1:0]
    A_INIT = 2'd0,      // after reset: clearing context a_qpn_reg, one per cycle
    A_IDLE = 2'd1,      // taking a descriptor (the RAMs read its QP) or a load (they read its)
    A_DECIDE = 2'd2,    // the context is on ctx_q: judge, update, push
    A_FLUSH = 2'd3;     // a flush load's old context is on ctx_q: queue the flush item

reg [1:0] a_state_reg = A_INIT, a_state_next;
reg [QPN_W-1:0] a_qpn_reg = {QPN_W{1'b0}}, a_qpn_next;   // A_INIT's sweep
reg [7:0] d_opcode_reg = 8'd0, d_opcode_next;
reg d_se_reg = 1'b0, d_se_next;
reg [23:0] d_qp_reg = 24'd0, d_qp_next;
reg d_ack_req_reg = 1'b0, d_ack_req_next;
reg [23:0] d_psn_reg = 24'd0, d_psn_next;
reg [31:0] d_src_ip_reg = 32'd0, d_src_ip_next;
reg [LEN_W-1:0] d_pay_len_reg = {LEN_W{1'b0}}, d_pay_len_next;
reg [7:0] d_aeth_syn_reg = 8'd0, d_aeth_syn_next;
reg [23:0] d_aeth_msn_reg = 24'd0, d_aeth_msn_next;

reg drop_valid_reg = 1'b0, drop_valid_next;
reg [4:0] drop_reason_reg = 5'd0, drop_reason_next;

reg [WQE_CNT_W-1:0] wqe_cnt_reg = {WQE_CNT_W{1'b0}}, wqe_cnt_next;   // reads issued, WQEs not used

// A doorbell waits here for the producer-index RAM's write port.
reg db_valid_reg = 1'b0, db_valid_next;
reg [QPN_W-1:0] db_qpn_reg = {QPN_W{1'b0}}, db_qpn_next;
reg [15:0] db_pi_reg = 16'd0, db_pi_next;
// A flush load: its connection, and a doorbell for it that was still waiting.
reg [QPN_W-1:0] fl_qpn_reg = {QPN_W{1'b0}}, fl_qpn_next;
reg fl_db_reg = 1'b0, fl_db_next;
reg [15:0] fl_db_pi_reg = 16'd0, fl_db_pi_next;

wire c_rts;
wire [23:0] c_epsn;
wire c_in_msg;
wire [15:0] c_ci;
wire [23:0] c_msn;
wire c_nak_sent;            // a PSN sequence NAK went out for the current gap
wire [CTX_STAT_W-1:0] c_static;
wire [63:0] c_rq_base;
wire [4:0] c_rq_log;
wire [23:0] c_dest_qpn;
wire [47:0] c_dmac;
wire [31:0] c_dip;
wire [15:0] c_sport;
wire [4:0] c_min_rnr;

assign {c_static, c_nak_sent, c_msn, c_ci, c_in_msg, c_epsn, c_rts} = ctx_q;
assign {c_min_rnr, c_sport, c_dip, c_dmac, c_dest_qpn, c_rq_log, c_rq_base} = c_static;

wire d_first = d_opcode_reg == OP_SEND_FIRST;
wire d_middle = d_opcode_reg == OP_SEND_MIDDLE;
wire d_last = d_opcode_reg == OP_SEND_LAST;
wire d_only = d_opcode_reg == OP_SEND_ONLY;
wire d_is_send = d_first || d_middle || d_last || d_only;
wire d_is_ack = d_opcode_reg == OP_ACK;
wire d_starts = d_first || d_only;      // takes a WQE
wire d_ends = d_last || d_only;         // completes a message
wire d_qp_bad = d_qp_reg[23:QPN_W] != {{(23-QPN_W){1'b0}}, 1'b1};   // not N_QP + c

// 24-bit serial number arithmetic: the half of the PSN space before epsn is behind (already
// received), the half after it ahead.
wire [23:0] a_psn_diff = d_psn_reg - c_epsn;
wire a_behind = a_psn_diff[23];
wire a_ahead = !a_psn_diff[23] && a_psn_diff != 24'd0;

reg [4:0] a_reason;
always @* begin
    if (!(d_is_send || d_is_ack) || d_qp_bad || !c_rts) begin
        a_reason = SAN_RX_DROP_QP_STATE;
    end else if (d_src_ip_reg != c_dip) begin
        a_reason = SAN_RX_DROP_PEER_IP;
    end else if (d_is_ack) begin
        a_reason = 5'd0;
    end else if (a_behind) begin
        a_reason = SAN_RX_DROP_DUPLICATE;
    end else if (a_ahead) begin
        a_reason = SAN_RX_DROP_PSN;
    end else if (d_starts == c_in_msg) begin
        a_reason = SAN_RX_DROP_SEQUENCE;
    end else if (d_starts && c_ci == pi_q) begin
        a_reason = SAN_RX_DROP_NO_RECV;
    end else begin
        a_reason = 5'd0;
    end
end

wire a_accept = !d_is_ack && a_reason == 5'd0;
wire a_fwd = d_is_ack && a_reason == 5'd0;
wire a_drop = a_reason != 5'd0;
// The first of a gap; an RNR NAK also marks the connection, so the packets the sender already
// had in flight behind the refused one get no PSN sequence NAK (the RNR NAK already names the
// PSN to resume from, and a second NAK would cut the sender's RNR wait short).
wire a_nak_gap = (a_reason == SAN_RX_DROP_PSN || a_reason == SAN_RX_DROP_NO_RECV) && !c_nak_sent;

// The ACK or NAK this packet makes, if any: its syndrome and PSN (the MSN is a_ack_msn).
reg a_need_ack;
reg [7:0] a_ack_syn;
reg [23:0] a_ack_psn;
always @* begin
    a_need_ack = 1'b1;
    a_ack_syn = SAN_AETH_SYNDROME_ACK;
    a_ack_psn = d_psn_reg;
    case (a_reason)
        5'd0: begin
            a_need_ack = a_accept && d_ack_req_reg;
        end
        SAN_RX_DROP_DUPLICATE: begin
            a_ack_psn = c_epsn - 24'd1;
        end
        SAN_RX_DROP_PSN: begin
            a_need_ack = !c_nak_sent;
            a_ack_syn = SAN_AETH_SYNDROME_NAK_PSN_SEQ;
            a_ack_psn = c_epsn;
        end
        SAN_RX_DROP_SEQUENCE: begin
            a_ack_syn = SAN_AETH_SYNDROME_NAK_INVALID_REQUEST;
        end
        SAN_RX_DROP_NO_RECV: begin
            a_ack_syn = SAN_AETH_SYNDROME_RNR_NAK | {3'd0, c_min_rnr};
        end
        default: begin
            a_need_ack = 1'b0;
        end
    endcase
end
wire a_ack_plain = a_reason == 5'd0 || a_reason == SAN_RX_DROP_DUPLICATE;
wire a_need_item = a_accept || d_pay_len_reg != {LEN_W{1'b0}};
wire a_need_wqe = a_accept && d_starts;

wire item_s_ready;
wire ack_s_ready;
wire rdq_s_ready;
wire rx_ack_s_ready;
wire a_go = a_state_reg == A_DECIDE
    && (!a_need_item || item_s_ready)
    && (!a_need_wqe || rdq_s_ready)
    && (!a_need_ack || ack_s_ready)
    && (!a_fwd || rx_ack_s_ready);

// The context after an accepted packet, and the WQE it takes.
wire [23:0] a_epsn_new = c_epsn + 24'd1;
wire [15:0] a_ci_new = c_ci + {15'd0, d_starts};
wire [23:0] a_msn_new = c_msn + {23'd0, d_ends};
wire [15:0] a_rq_mask = ~(16'hFFFF << c_rq_log);
wire [63:0] a_wqe_addr = c_rq_base + {43'd0, c_ci & a_rq_mask, 5'd0};
wire [23:0] a_ack_msn = a_accept ? a_msn_new : c_msn;

assign ctx_load_ready = a_state_reg == A_IDLE;
// The context RAMs' read address in A_IDLE: a load's connection (for a flush), else the
// descriptor's.
wire [QPN_W-1:0] a_rd_qpn = ctx_load_en ? ctx_load_qpn : s_hdr_dest_qp[QPN_W-1:0];
// A load writes the context in its cycle, so no descriptor is taken (and its QP read) then.
assign s_hdr_ready = a_state_reg == A_IDLE && cfg_enable && !ctx_load_en;
assign s_db_ready = a_state_reg != A_INIT && !db_valid_reg;
assign m_drop_valid = drop_valid_reg;
assign m_drop_reason = drop_reason_reg;

// Work items: flush, its end index, ring index, SE, payload length, ends, starts, drain (dropped
// or ACK, payload only), QP.
localparam integer ITEM_W = 1 + 16 + 16 + QPN_W + 4 + LEN_W;

// A start carries its receive WQE's ring index (the consumer index it takes), for the CQE. A
// flush item: the first receive WQE to flush and the producer index (none when not ready).
wire [15:0] fl_from = c_rts ? c_ci - {15'd0, c_in_msg} : 16'd0;
wire [15:0] fl_to = !c_rts ? 16'd0 : (fl_db_reg ? fl_db_pi_reg : pi_q);
wire fl_item = a_state_reg == A_FLUSH;
wire [ITEM_W-1:0] item_in = fl_item
    ? {1'b1, fl_to, fl_from, 1'b0, {LEN_W{1'b0}}, 1'b0, 1'b0, 1'b0, fl_qpn_reg}
    : {1'b0, 16'd0, c_ci, d_se_reg, d_pay_len_reg, d_ends, d_starts, !a_accept,
    d_qp_reg[QPN_W-1:0]};
wire [ITEM_W-1:0] item_out;
wire item_m_valid;
reg item_m_ready;

san_sync_fifo #(
    .WIDTH(ITEM_W),
    .DEPTH(ITEM_DEPTH)
) item_fifo_inst (
    .clk(clk),
    .rst(rst),
    .s_data(item_in),
    .s_valid((a_go && a_need_item) || fl_item),
    .s_ready(item_s_ready),
    .m_data(item_out),
    .m_valid(item_m_valid),
    .m_ready(item_m_ready)
);

wire h_flush;
wire [15:0] h_end;
wire [15:0] h_idx;
wire h_se;
wire [LEN_W-1:0] h_pay_len;
wire h_ends;
wire h_starts;
wire h_drain;
wire [QPN_W-1:0] h_qpn;
assign {h_flush, h_end, h_idx, h_se, h_pay_len, h_ends, h_starts, h_drain, h_qpn} = item_out;

// ACK and NAK descriptors: syndrome, MAC, IP, port, QP from the context, PSN, MSN. A queue of
// its own rather than a san_sync_fifo, for the merge: a plain ACK replaces the tail entry when
// that is a plain ACK of the same connection, so a burst of them (duplicates re-ACKed during a
// go-back-N retransmission) costs one descriptor per stretch the transmitter is busy. Only a
// tail that is not also the head is replaced: the head is shown on m_tx_* and must hold. A
// context load ends the merging for its connection (its ACKs go to a new peer).
localparam integer ACK_W = 8 + 48 + 32 + 16 + 24 + 24 + 24;
localparam integer ACK_AW = $clog2(ACK_DEPTH);

reg [ACK_W-1:0] ackq_mem [0:ACK_DEPTH-1];
reg [ACK_AW:0] ackq_wr_reg = {(ACK_AW+1){1'b0}}, ackq_wr_next;
reg [ACK_AW:0] ackq_rd_reg = {(ACK_AW+1){1'b0}}, ackq_rd_next;
reg [QPN_W-1:0] ackq_tail_qpn_reg = {QPN_W{1'b0}}, ackq_tail_qpn_next;
reg ackq_tail_plain_reg = 1'b0, ackq_tail_plain_next;  // the tail is a plain ACK, may merge

wire [ACK_AW:0] ackq_cnt = ackq_wr_reg - ackq_rd_reg;
wire ackq_merge = ackq_cnt > {{ACK_AW{1'b0}}, 1'b1} && ackq_tail_plain_reg && a_ack_plain
    && ackq_tail_qpn_reg == d_qp_reg[QPN_W-1:0];
assign ack_s_ready = ackq_merge || ackq_cnt != ACK_DEPTH[ACK_AW:0];
wire ackq_put = a_go && a_need_ack;
wire [ACK_AW-1:0] ackq_waddr = ackq_merge ? ackq_wr_reg[ACK_AW-1:0] - 1'b1
    : ackq_wr_reg[ACK_AW-1:0];

wire [ACK_W-1:0] ack_out = ackq_mem[ackq_rd_reg[ACK_AW-1:0]];
wire [7:0] ack_syn;
wire [23:0] ack_msn;

assign {ack_syn, m_tx_dst_mac, m_tx_dst_ip, m_tx_udp_sport, m_tx_dest_qp, m_tx_psn, ack_msn}
    = ack_out;
assign m_tx_opcode = OP_ACK;
assign m_tx_se = 1'b0;
assign m_tx_ack_req = 1'b0;
assign m_tx_ext = 2'd1;
assign m_tx_ext0 = {ack_syn, ack_msn};
assign m_tx_ext1 = 24'd0;
assign m_tx_pay_len = 13'd0;
assign m_tx_valid = ackq_cnt != {(ACK_AW+1){1'b0}};

always @* begin
    ackq_wr_next = ackq_wr_reg;
    ackq_rd_next = ackq_rd_reg;
    ackq_tail_qpn_next = ackq_tail_qpn_reg;
    ackq_tail_plain_next = ackq_tail_plain_reg;
    if (ackq_put) begin
        if (!ackq_merge) begin
            ackq_wr_next = ackq_wr_reg + 1'b1;
        end
        ackq_tail_qpn_next = d_qp_reg[QPN_W-1:0];
        ackq_tail_plain_next = a_ack_plain;
    end
    if (ctx_load_en && ctx_load_qpn == ackq_tail_qpn_reg) begin
        ackq_tail_plain_next = 1'b0;
    end
    if (m_tx_valid && m_tx_ready) begin
        ackq_rd_next = ackq_rd_reg + 1'b1;
    end
end

always @(posedge clk) begin
    if (ackq_put) begin
        ackq_mem[ackq_waddr] <= {a_ack_syn, c_dmac, c_dip, c_sport, c_dest_qpn,
            a_ack_psn, a_ack_msn};
    end
end

// Received ACKs, to the completer.
san_sync_fifo #(
    .WIDTH(QPN_W + 24 + 8 + 24),
    .DEPTH(RX_ACK_DEPTH)
) rx_ack_fifo_inst (
    .clk(clk),
    .rst(rst),
    .s_data({d_qp_reg[QPN_W-1:0], d_psn_reg, d_aeth_syn_reg, d_aeth_msn_reg}),
    .s_valid(a_go && a_fwd),
    .s_ready(rx_ack_s_ready),
    .m_data({m_ack_qpn, m_ack_psn, m_ack_syndrome, m_ack_msn}),
    .m_valid(m_ack_valid),
    .m_ready(m_ack_ready)
);

// --- receive WQEs: reads issued while the WQE FIFO has room for them; the data gathered into
// WQEs, in request order. Stage A queues the reads, so it never waits for a WQE credit (and its
// ACKs are not held up behind a read).

// At most one read per work item, so reads in this queue never outnumber ITEM_DEPTH + 1.
wire rdq_m_valid;
wire rd_credit = wqe_cnt_reg != WQE_DEPTH[WQE_CNT_W-1:0];

san_sync_fifo #(
    .WIDTH(64),
    .DEPTH(ITEM_DEPTH)
) rdq_fifo_inst (
    .clk(clk),
    .rst(rst),
    .s_data(a_wqe_addr),
    .s_valid(a_go && a_need_wqe),
    .s_ready(rdq_s_ready),
    .m_data(m_dma_rd_req_addr),
    .m_valid(rdq_m_valid),
    .m_ready(m_dma_rd_req_ready && rd_credit)
);

assign m_dma_rd_req_len = SAN_RECVWQE_SIZE[15:0];
assign m_dma_rd_req_valid = rdq_m_valid && rd_credit;
wire rd_issue = m_dma_rd_req_valid && m_dma_rd_req_ready;

reg [255:0] wqe_buf_reg = 256'd0;
reg [255:0] wqe_cur;                                  // the WQE with this beat's bytes in place
reg [WQE_BEAT_W-1:0] wqe_beat_reg = {WQE_BEAT_W{1'b0}}, wqe_beat_next;
reg wqe_err_reg = 1'b0, wqe_err_next;

wire wqe_s_ready;
wire rd_beat = s_axis_dma_rd_tvalid && wqe_s_ready;
assign s_axis_dma_rd_tready = wqe_s_ready;

integer wb;
always @* begin
    wqe_cur = wqe_buf_reg;
    for (wb = 0; wb < WQE_BEATS; wb = wb + 1) begin
        if (rd_beat && wqe_beat_reg == wb[WQE_BEAT_W-1:0]) begin
            wqe_cur[wb*WQE_W +: WQE_W] = s_axis_dma_rd_tdata[WQE_W-1:0];
        end
    end
end

localparam integer WQE_FIFO_W = 1 + 32 + 64 + 64;

wire [WQE_FIFO_W-1:0] wqe_out;
wire wqe_m_valid;
reg wqe_m_ready;

san_sync_fifo #(
    .WIDTH(WQE_FIFO_W),
    .DEPTH(WQE_DEPTH)
) wqe_fifo_inst (
    .clk(clk),
    .rst(rst),
    .s_data({wqe_err_reg || s_axis_dma_rd_tuser,
             wqe_cur[8*SAN_RECVWQE_LENGTH_OFFSET +: 32],
             wqe_cur[8*SAN_RECVWQE_ADDR_OFFSET +: 64],
             wqe_cur[8*SAN_RECVWQE_WR_ID_OFFSET +: 64]}),
    .s_valid(rd_beat && s_axis_dma_rd_tlast),
    .s_ready(wqe_s_ready),
    .m_data(wqe_out),
    .m_valid(wqe_m_valid),
    .m_ready(wqe_m_ready)
);

// --- stage B ---------------------------------------------------------------------------------------

localparam [2:0]
    B_IDLE = 3'd0,      // waiting for a work item
    B_LOAD = 3'd1,      // the item's message state: the next WQE, or msg_q (or kept, fwd_reg)
    B_REQ = 3'd2,       // the write request for the part of the payload that fits
    B_DATA = 3'd3,      // payload: written up to wbeats_reg beats, the rest drained
    B_DRAIN = 3'd4,     // payload of a packet that was not accepted: drained
    B_DONE = 3'd5,      // message state stored; CQE for a LAST/ONLY once its write is done
    B_FLUSH = 3'd6;     // a flush item: FLUSHED CQEs up to its end index, then the end marker

reg [2:0] b_state_reg = B_IDLE, b_state_next;
reg [QPN_W-1:0] it_qpn_reg = {QPN_W{1'b0}}, it_qpn_next;
reg it_starts_reg = 1'b0, it_starts_next;
reg it_ends_reg = 1'b0, it_ends_next;
reg it_se_reg = 1'b0, it_se_next;
reg [LEN_W-1:0] it_pay_len_reg = {LEN_W{1'b0}}, it_pay_len_next;
reg fwd_reg = 1'b0, fwd_next;   // the item continues the previous one's message: keep m_*_reg

reg [15:0] it_idx_reg = 16'd0, it_idx_next;
reg [15:0] m_idx_reg = 16'd0, m_idx_next;
reg [63:0] m_wr_id_reg = 64'd0, m_wr_id_next;
reg [63:0] m_addr_reg = 64'd0, m_addr_next;
reg [31:0] m_len_reg = 32'd0, m_len_next;
reg [31:0] m_off_reg = 32'd0, m_off_next;
reg m_err_reg = 1'b0, m_err_next;

reg [BEAT_W-1:0] wbeats_reg = {BEAT_W{1'b0}}, wbeats_next;      // payload beats to write
reg [LANE_BITS:0] wlast_n_reg = {(LANE_BITS+1){1'b0}}, wlast_n_next;  // bytes in the last
reg [BEAT_W-1:0] pb_reg = {BEAT_W{1'b0}}, pb_next;              // payload beats taken

reg wr_req_valid_reg = 1'b0, wr_req_valid_next;
reg [63:0] wr_req_addr_reg = 64'd0, wr_req_addr_next;
reg [LEN_W-1:0] wr_req_len_reg = {LEN_W{1'b0}}, wr_req_len_next;
reg wr_valid_reg = 1'b0, wr_valid_next;
reg [DATA_WIDTH-1:0] wr_data_reg = {DATA_WIDTH{1'b0}}, wr_data_next;
reg [BYTES-1:0] wr_keep_reg = {BYTES{1'b0}}, wr_keep_next;
reg wr_last_reg = 1'b0, wr_last_next;

reg cqe_valid_reg = 1'b0, cqe_valid_next;
reg [QPN_W-1:0] cqe_qpn_reg = {QPN_W{1'b0}}, cqe_qpn_next;
reg [63:0] cqe_wr_id_reg = 64'd0, cqe_wr_id_next;
reg [15:0] cqe_idx_reg = 16'd0, cqe_idx_next;
reg [31:0] cqe_byte_len_reg = 32'd0, cqe_byte_len_next;
reg [7:0] cqe_status_reg = 8'd0, cqe_status_next;
reg cqe_se_reg = 1'b0, cqe_se_next;
reg cqe_flush_reg = 1'b0, cqe_flush_next;
reg [15:0] fl_end_reg = 16'd0, fl_end_next;    // stage B's flush: the producer index

assign m_dma_wr_req_addr = wr_req_addr_reg;
assign m_dma_wr_req_len = {{(16-LEN_W){1'b0}}, wr_req_len_reg};
assign m_dma_wr_req_valid = wr_req_valid_reg;
assign m_axis_dma_wr_tdata = wr_data_reg;
assign m_axis_dma_wr_tkeep = wr_keep_reg;
assign m_axis_dma_wr_tvalid = wr_valid_reg;
assign m_axis_dma_wr_tlast = wr_last_reg;

assign m_cqe_qpn = cqe_qpn_reg;
assign m_cqe_wr_id = cqe_wr_id_reg;
assign m_cqe_wqe_index = cqe_idx_reg;
assign m_cqe_byte_len = cqe_byte_len_reg;
assign m_cqe_opcode = SAN_CQE_OPCODE_RECV;
assign m_cqe_status = cqe_status_reg;
assign m_cqe_solicited = cqe_se_reg;
assign m_cqe_valid = cqe_valid_reg;
assign m_cqe_flush = cqe_flush_reg;

wire [15:0] q_idx;
wire [63:0] q_wr_id;
wire [63:0] q_addr;
wire [31:0] q_len;
wire [31:0] q_off;
wire q_err;
assign {q_idx, q_err, q_off, q_len, q_addr, q_wr_id} = msg_q;

wire [63:0] w_wr_id;
wire [63:0] w_addr;
wire [31:0] w_len;
wire w_err;
assign {w_err, w_len, w_addr, w_wr_id} = wqe_out;

// The part of this packet's payload that fits the buffer; none after a WQE read error.
wire [31:0] b_room = m_len_reg > m_off_reg ? m_len_reg - m_off_reg : 32'd0;
wire [LEN_W-1:0] b_wlen = m_err_reg ? {LEN_W{1'b0}}
    : (b_room < {{(32-LEN_W){1'b0}}, it_pay_len_reg} ? b_room[LEN_W-1:0] : it_pay_len_reg);
wire [BEAT_W-1:0] b_wbeats = b_wlen[LEN_W-1:LANE_BITS]
    + {{(BEAT_W-1){1'b0}}, b_wlen[LANE_BITS-1:0] != {LANE_BITS{1'b0}}};
wire [LANE_BITS:0] b_wlast_n = b_wlen[LANE_BITS-1:0] == {LANE_BITS{1'b0}}
    ? BYTES[LANE_BITS:0] : {1'b0, b_wlen[LANE_BITS-1:0]};

// The write stream's output register can take a beat; a write's last beat is going or gone.
wire wr_free = !wr_valid_reg || m_axis_dma_wr_tready;
wire b_fwd_beat = pb_reg < wbeats_reg;
wire b_wlast = pb_reg == wbeats_reg - 1'b1;
assign s_axis_pay_tready = (b_state_reg == B_DATA && !wr_req_valid_reg && (!b_fwd_beat || wr_free))
    || b_state_reg == B_DRAIN;
wire pay_beat = s_axis_pay_tvalid && s_axis_pay_tready;

// A LAST/ONLY's CQE is made after its payload write's last beat was taken.
wire b_done_go = !it_ends_reg || (wr_free && (!cqe_valid_reg || m_cqe_ready));
wire b_take = item_m_valid && (b_state_reg == B_IDLE || (b_state_reg == B_DONE && b_done_go));

wire [BYTES-1:0] unused_pay_tkeep = s_axis_pay_tkeep;   // full beats but the last, which is cut
wire [BYTES-1:0] unused_rd_tkeep = s_axis_dma_rd_tkeep; // by its length anyway
wire [DATA_WIDTH-1:0] unused_rd_tdata = s_axis_dma_rd_tdata; // past byte 32 when 512 bits wide

// --- next state ------------------------------------------------------------------------------------

always @* begin
    a_state_next = a_state_reg;
    a_qpn_next = a_qpn_reg;
    d_opcode_next = d_opcode_reg;
    d_se_next = d_se_reg;
    d_qp_next = d_qp_reg;
    d_ack_req_next = d_ack_req_reg;
    d_psn_next = d_psn_reg;
    d_src_ip_next = d_src_ip_reg;
    d_pay_len_next = d_pay_len_reg;
    d_aeth_syn_next = d_aeth_syn_reg;
    d_aeth_msn_next = d_aeth_msn_reg;
    drop_valid_next = 1'b0;
    drop_reason_next = drop_reason_reg;
    wqe_cnt_next = wqe_cnt_reg;
    db_valid_next = db_valid_reg;
    db_qpn_next = db_qpn_reg;
    db_pi_next = db_pi_reg;
    fl_qpn_next = fl_qpn_reg;
    fl_db_next = fl_db_reg;
    fl_db_pi_next = fl_db_pi_reg;

    ctx_we = 1'b0;
    ctx_waddr = d_qp_reg[QPN_W-1:0];
    // An accepted packet moves the context on and ends a gap; the first packet of a gap (or one
    // refused for want of a receive) marks it.
    ctx_wdata = a_accept ? {c_static, 1'b0, a_msn_new, a_ci_new, !d_ends, a_epsn_new, 1'b1}
        : {c_static, 1'b1, c_msn, c_ci, c_in_msg, c_epsn, c_rts};
    pi_we = 1'b0;
    pi_waddr = db_qpn_reg;
    pi_wdata = db_pi_reg;

    case (a_state_reg)
        A_INIT: begin
            ctx_we = 1'b1;
            ctx_waddr = a_qpn_reg;
            ctx_wdata = {CTX_W{1'b0}};
            pi_we = 1'b1;
            pi_waddr = a_qpn_reg;
            pi_wdata = 16'd0;
            a_qpn_next = a_qpn_reg + 1'b1;
            if (a_qpn_reg == {QPN_W{1'b1}}) begin
                a_state_next = A_IDLE;
            end
        end
        A_IDLE: begin
            if (s_hdr_valid && s_hdr_ready) begin
                d_opcode_next = s_hdr_opcode;
                d_se_next = s_hdr_se;
                d_qp_next = s_hdr_dest_qp;
                d_ack_req_next = s_hdr_ack_req;
                d_psn_next = s_hdr_psn;
                d_src_ip_next = s_hdr_src_ip;
                d_pay_len_next = s_hdr_pay_len;
                d_aeth_syn_next = s_hdr_aeth_syndrome;
                d_aeth_msn_next = s_hdr_aeth_msn;
                a_state_next = A_DECIDE;
            end
        end
        A_DECIDE: begin
            if (a_go) begin
                ctx_we = a_accept || a_nak_gap;
                drop_valid_next = a_drop;
                drop_reason_next = a_reason;
                a_state_next = A_IDLE;
            end
        end
        A_FLUSH: begin
            if (item_s_ready) begin
                a_state_next = A_IDLE;
            end
        end
        default: begin
            a_state_next = A_IDLE;
        end
    endcase

    // Loads (only in A_IDLE, so never with a stage A write) reset the connection's indices. A
    // waiting doorbell goes in a cycle without a load; one for the QP being loaded was taken
    // before the load, which resets its producer index, so it is dropped.
    if (ctx_load_en) begin
        ctx_we = 1'b1;
        ctx_waddr = ctx_load_qpn;
        ctx_wdata = {ctx_load_min_rnr_timer, ctx_load_udp_sport, ctx_load_dip, ctx_load_dmac,
            ctx_load_dest_qpn, ctx_load_rq_log, ctx_load_rq_base, 1'b0, 24'd0, 16'd0, 1'b0,
            ctx_load_rq_psn, ctx_load_rts};
        pi_we = 1'b1;
        pi_waddr = ctx_load_qpn;
        pi_wdata = 16'd0;
        if (db_qpn_reg == ctx_load_qpn) begin
            db_valid_next = 1'b0;
        end
        if (ctx_load_flush) begin
            fl_qpn_next = ctx_load_qpn;
            fl_db_next = db_valid_reg && db_qpn_reg == ctx_load_qpn;
            fl_db_pi_next = db_pi_reg;
            a_state_next = A_FLUSH;
        end
    end else if (db_valid_reg && a_state_reg != A_INIT) begin
        pi_we = 1'b1;
        db_valid_next = 1'b0;
    end
    if (s_db_valid && s_db_ready) begin
        db_valid_next = 1'b1;
        db_qpn_next = s_db_qpn;
        db_pi_next = s_db_pi;
    end

    if (rd_issue) begin
        wqe_cnt_next = wqe_cnt_next + 1'b1;
    end
    if (wqe_m_ready && wqe_m_valid) begin
        wqe_cnt_next = wqe_cnt_next - 1'b1;
    end
end

always @* begin
    wqe_beat_next = wqe_beat_reg;
    wqe_err_next = wqe_err_reg;
    if (rd_beat) begin
        if (s_axis_dma_rd_tlast) begin
            wqe_beat_next = {WQE_BEAT_W{1'b0}};
            wqe_err_next = 1'b0;
        end else begin
            if (wqe_beat_reg != WQE_BEATS[WQE_BEAT_W-1:0]) begin
                wqe_beat_next = wqe_beat_reg + 1'b1;
            end
            wqe_err_next = wqe_err_reg || s_axis_dma_rd_tuser;
        end
    end
end

always @* begin
    b_state_next = b_state_reg;
    it_qpn_next = it_qpn_reg;
    it_starts_next = it_starts_reg;
    it_ends_next = it_ends_reg;
    it_se_next = it_se_reg;
    it_pay_len_next = it_pay_len_reg;
    fwd_next = fwd_reg;
    m_wr_id_next = m_wr_id_reg;
    m_idx_next = m_idx_reg;
    it_idx_next = it_idx_reg;
    m_addr_next = m_addr_reg;
    m_len_next = m_len_reg;
    m_off_next = m_off_reg;
    m_err_next = m_err_reg;
    wbeats_next = wbeats_reg;
    wlast_n_next = wlast_n_reg;
    pb_next = pb_reg;
    wr_req_valid_next = wr_req_valid_reg && !m_dma_wr_req_ready;
    wr_req_addr_next = wr_req_addr_reg;
    wr_req_len_next = wr_req_len_reg;
    wr_valid_next = wr_valid_reg && !m_axis_dma_wr_tready;
    wr_data_next = wr_data_reg;
    wr_keep_next = wr_keep_reg;
    wr_last_next = wr_last_reg;
    cqe_valid_next = cqe_valid_reg && !m_cqe_ready;
    cqe_qpn_next = cqe_qpn_reg;
    cqe_wr_id_next = cqe_wr_id_reg;
    cqe_idx_next = cqe_idx_reg;
    cqe_byte_len_next = cqe_byte_len_reg;
    cqe_status_next = cqe_status_reg;
    cqe_se_next = cqe_se_reg;
    cqe_flush_next = cqe_flush_reg;
    fl_end_next = fl_end_reg;
    item_m_ready = 1'b0;
    wqe_m_ready = 1'b0;
    msg_we = 1'b0;
    msg_wdata = {m_idx_reg, m_err_reg, m_off_reg, m_len_reg, m_addr_reg, m_wr_id_reg};

    case (b_state_reg)
        B_IDLE: begin
        end
        B_LOAD: begin
            if (it_starts_reg) begin
                if (wqe_m_valid) begin
                    wqe_m_ready = 1'b1;
                    m_wr_id_next = w_wr_id;
                    m_idx_next = it_idx_reg;
                    m_addr_next = w_addr;
                    m_len_next = w_len;
                    m_off_next = 32'd0;
                    m_err_next = w_err;
                    b_state_next = B_REQ;
                end
            end else begin
                if (!fwd_reg) begin
                    m_wr_id_next = q_wr_id;
                    m_idx_next = q_idx;
                    m_addr_next = q_addr;
                    m_len_next = q_len;
                    m_off_next = q_off;
                    m_err_next = q_err;
                end
                b_state_next = B_REQ;
            end
        end
        B_REQ: begin
            // One write at a time: the previous one's last beat goes before this request.
            if (b_wlen == {LEN_W{1'b0}} || wr_free) begin
                if (b_wlen != {LEN_W{1'b0}}) begin
                    wr_req_valid_next = 1'b1;
                    wr_req_addr_next = m_addr_reg + {32'd0, m_off_reg};
                    wr_req_len_next = b_wlen;
                end
                wbeats_next = b_wbeats;
                wlast_n_next = b_wlast_n;
                pb_next = {BEAT_W{1'b0}};
                m_off_next = m_off_reg + {{(32-LEN_W){1'b0}}, it_pay_len_reg};
                b_state_next = it_pay_len_reg != {LEN_W{1'b0}} ? B_DATA : B_DONE;
            end
        end
        B_DATA: begin
            if (pay_beat) begin
                pb_next = pb_reg + 1'b1;
                if (b_fwd_beat) begin
                    wr_valid_next = 1'b1;
                    wr_keep_next = b_wlast ? lanes_below(wlast_n_reg) : {BYTES{1'b1}};
                    wr_data_next = mask_lanes(s_axis_pay_tdata, wr_keep_next);
                    wr_last_next = b_wlast;
                end
                if (s_axis_pay_tlast) begin
                    b_state_next = B_DONE;
                end
            end
        end
        B_FLUSH: begin
            // One FLUSHED CQE per receive WQE, then the end marker.
            if (!cqe_valid_reg || m_cqe_ready) begin
                cqe_valid_next = 1'b1;
                cqe_qpn_next = it_qpn_reg;
                cqe_wr_id_next = 64'd0;
                cqe_idx_next = it_idx_reg;
                cqe_byte_len_next = 32'd0;
                cqe_se_next = 1'b0;
                cqe_status_next = SAN_CQE_STATUS_FLUSHED;
                cqe_flush_next = it_idx_reg == fl_end_reg;
                it_idx_next = it_idx_reg + 16'd1;
                if (it_idx_reg == fl_end_reg) begin
                    b_state_next = B_IDLE;
                end
            end
        end
        B_DRAIN: begin
            if (pay_beat && s_axis_pay_tlast) begin
                b_state_next = B_IDLE;
            end
        end
        B_DONE: begin
            if (b_done_go) begin
                msg_we = 1'b1;
                if (it_ends_reg) begin
                    cqe_valid_next = 1'b1;
                    cqe_flush_next = 1'b0;
                    cqe_qpn_next = it_qpn_reg;
                    cqe_wr_id_next = m_wr_id_reg;
                    cqe_idx_next = m_idx_reg;
                    cqe_byte_len_next = m_off_reg;
                    cqe_se_next = it_se_reg;
                    if (m_err_reg) begin
                        cqe_status_next = SAN_CQE_STATUS_DMA_ERROR;
                    end else if (m_off_reg > m_len_reg) begin
                        cqe_status_next = SAN_CQE_STATUS_LOCAL_LENGTH;
                    end else begin
                        cqe_status_next = SAN_CQE_STATUS_OK;
                    end
                end
                b_state_next = B_IDLE;
            end
        end
        default: begin
            b_state_next = B_IDLE;
        end
    endcase

    // The next work item, when idle or as the previous one finishes. Its message state is read
    // from msg_mem now; if the finishing item is writing it back in this very cycle, the RAM
    // would give the old state, so the registers are kept instead (fwd_reg).
    if (b_take) begin
        item_m_ready = 1'b1;
        it_qpn_next = h_qpn;
        it_starts_next = h_starts;
        it_idx_next = h_idx;
        it_ends_next = h_ends;
        it_se_next = h_se;
        it_pay_len_next = h_pay_len;
        fwd_next = b_state_reg == B_DONE && h_qpn == it_qpn_reg;
        fl_end_next = h_end;
        b_state_next = h_flush ? B_FLUSH : (h_drain ? B_DRAIN : B_LOAD);
    end
end

// --- registers and RAMs ------------------------------------------------------------------------------

always @(posedge clk) begin
    if (ctx_we) begin
        ctx_mem[ctx_waddr] <= ctx_wdata;
    end
    if (a_state_reg == A_IDLE) begin
        ctx_q <= ctx_mem[a_rd_qpn];
    end
end

always @(posedge clk) begin
    if (pi_we) begin
        pi_mem[pi_waddr] <= pi_wdata;
    end
    if (a_state_reg == A_IDLE) begin
        pi_q <= pi_mem[a_rd_qpn];
    end
end

always @(posedge clk) begin
    if (msg_we) begin
        msg_mem[it_qpn_reg] <= msg_wdata;
    end
    if (b_take) begin
        msg_q <= msg_mem[h_qpn];
    end
end

always @(posedge clk) begin
    a_state_reg <= a_state_next;
    a_qpn_reg <= a_qpn_next;
    d_opcode_reg <= d_opcode_next;
    d_se_reg <= d_se_next;
    d_qp_reg <= d_qp_next;
    d_ack_req_reg <= d_ack_req_next;
    d_psn_reg <= d_psn_next;
    d_src_ip_reg <= d_src_ip_next;
    d_pay_len_reg <= d_pay_len_next;
    d_aeth_syn_reg <= d_aeth_syn_next;
    d_aeth_msn_reg <= d_aeth_msn_next;
    drop_valid_reg <= drop_valid_next;
    drop_reason_reg <= drop_reason_next;
    wqe_cnt_reg <= wqe_cnt_next;
    db_valid_reg <= db_valid_next;
    db_qpn_reg <= db_qpn_next;
    db_pi_reg <= db_pi_next;
    ackq_wr_reg <= ackq_wr_next;
    ackq_rd_reg <= ackq_rd_next;
    ackq_tail_qpn_reg <= ackq_tail_qpn_next;
    ackq_tail_plain_reg <= ackq_tail_plain_next;

    wqe_buf_reg <= wqe_cur;
    wqe_beat_reg <= wqe_beat_next;
    wqe_err_reg <= wqe_err_next;

    b_state_reg <= b_state_next;
    it_qpn_reg <= it_qpn_next;
    it_starts_reg <= it_starts_next;
    it_ends_reg <= it_ends_next;
    it_se_reg <= it_se_next;
    it_idx_reg <= it_idx_next;
    m_idx_reg <= m_idx_next;
    cqe_idx_reg <= cqe_idx_next;
    it_pay_len_reg <= it_pay_len_next;
    fwd_reg <= fwd_next;
    m_wr_id_reg <= m_wr_id_next;
    m_addr_reg <= m_addr_next;
    m_len_reg <= m_len_next;
    m_off_reg <= m_off_next;
    m_err_reg <= m_err_next;
    wbeats_reg <= wbeats_next;
    wlast_n_reg <= wlast_n_next;
    pb_reg <= pb_next;
    wr_req_valid_reg <= wr_req_valid_next;
    wr_req_addr_reg <= wr_req_addr_next;
    wr_req_len_reg <= wr_req_len_next;
    wr_valid_reg <= wr_valid_next;
    wr_data_reg <= wr_data_next;
    wr_keep_reg <= wr_keep_next;
    wr_last_reg <= wr_last_next;
    cqe_valid_reg <= cqe_valid_next;
    cqe_qpn_reg <= cqe_qpn_next;
    cqe_wr_id_reg <= cqe_wr_id_next;
    cqe_byte_len_reg <= cqe_byte_len_next;
    cqe_status_reg <= cqe_status_next;
    cqe_se_reg <= cqe_se_next;
    cqe_flush_reg <= cqe_flush_next;
    fl_end_reg <= fl_end_next;
    fl_qpn_reg <= fl_qpn_next;
    fl_db_reg <= fl_db_next;
    fl_db_pi_reg <= fl_db_pi_next;

    if (rst) begin
        a_state_reg <= A_INIT;
        a_qpn_reg <= {QPN_W{1'b0}};
        drop_valid_reg <= 1'b0;
        wqe_cnt_reg <= {WQE_CNT_W{1'b0}};
        db_valid_reg <= 1'b0;
        ackq_wr_reg <= {(ACK_AW+1){1'b0}};
        ackq_rd_reg <= {(ACK_AW+1){1'b0}};
        ackq_tail_plain_reg <= 1'b0;
        wqe_beat_reg <= {WQE_BEAT_W{1'b0}};
        wqe_err_reg <= 1'b0;
        b_state_reg <= B_IDLE;
        wr_req_valid_reg <= 1'b0;
        wr_valid_reg <= 1'b0;
        cqe_valid_reg <= 1'b0;
    end
end

endmodule

`resetall

// SPDX-License-Identifier: MIT
// san_sq_engine: the send queues of all connections: doorbells schedule connections round-robin;
// each turn fetches one SendWQE, segments its message at the path MTU, reads each packet's
// payload into a buffer and hands on transmit descriptors and payload, and records for the
// completer (san_completer), which acknowledges them, completes WQEs and asks for go-back-N.

`resetall
`timescale 1ns / 1ps
`default_nettype none

// Every stage works in order, so messages leave in the order their WQEs were fetched:
//
//  table FSM   owns the context tables (block RAM) and serialises, one at a time, context loads
//              (1 cycle), doorbells (2: read the entry, record the PI) and turns (2: read the
//              entry, fetch one WQE at the consumer index and advance it). A connection with
//              work waits in the work ring (one entry each, guarded by its pending bit); a turn
//              that leaves work behind puts it back at the tail: round-robin, one message a turn.
//  read port   payload reads first, then WQE fetches, through one output register; each
//              request issued pushes its kind into the order FIFO. A WQE fetch reads only
//              WR_ID..FLAGS (22 bytes). Fetches run ahead of the message stage by up to
//              WQ_AHEAD WQEs, or further while fewer than RD_AHEAD read beats are in flight.
//  read data   never stalled (s_axis_dma_rd_tready is 1): every read has its room reserved
//              before it is issued. WQE reads are parsed into the WQE FIFO; payload beats are
//              written to the payload buffer in issue order, and each packet's last beat pushes
//              its error bit into the arrival FIFO.
//  message     pairs a fetched WQE with its connection, checks it, gives it its PSNs
//              (read-modify-write of the PSN table) and cuts it into chunks: packets up to the
//              message's end or a PSN whose low 6 bits are all ones, so AckReq (on each chunk's
//              last packet) comes at least every 64 packets. A chunk starts only once all its
//              PSNs are inside the window (WINDOW PSNs from the oldest unacknowledged one); each
//              is queued for the emitter, then one read per packet is issued, each once the
//              buffer has room for the packet (whole beats) and a packet credit is free.
//  emitter     segments each chunk again and presents a packet's descriptor only once its
//              payload is entirely in the buffer (its arrival record is there), so the frame
//              builder never waits for host memory mid-frame. Every packet pushes a record for
//              the completer in the same cycle (before the frame can be acked): the PSN after
//              it, and on a message's last packet the WQE's index, first PSN, flags and status.
//  payload     streams each handed-over descriptor's bytes from the buffer (or drops them).
//
// Reliability. The completer sends two things. Progress (s_una_*: the oldest unacknowledged PSN
// and the ring index of the oldest incomplete WQE) bounds the PSN window and the WQEs fetched
// ahead (MSG_WINDOW, the completer's table). Commands (s_rw_*) make a connection go back: its
// epoch is bumped at once, so everything of it already in the pipeline (fetched WQEs, chunks,
// packets whose payload is buffered) is dropped where it stands - chunks at the message stage,
// packets at the emitter, whose payload is then read out of the buffer and discarded; then,
// unless the command holds the connection (RNR wait, error), its consumer index goes back to
// the WQE named and the next turn fetches it again from host memory and resumes it at the
// packet named, with that WQE's PSNs: payload is re-read at the right offset, mid-message
// too. Resent messages get the same PSNs and the same records as the first time, and each record
// carries the generation of the latest command (s_rw_gen; 0 after a load), so the completer can
// tell the records of its latest go-back from those queued before it. A WQE behind the oldest
// incomplete one, or a chunk behind the oldest unacknowledged PSN, is complete (acknowledgements
// of a first sending can pass the point being resent): it is never fetched or read; the
// connection waits for the completer's next command, which goes back forward to them.
//
// Reads in flight are bounded by the WQE FIFO (WQ_DEPTH fetches) and the packet credits
// (PKT_DEPTH payload reads); the order FIFO holds both. Errors (in the record's status, for the
// completer's CQE): a WQE read that returns tuser gives DMA_ERROR, and a WQE with an unknown
// opcode or a length of 2^31 or more BAD_WQE; both send nothing and take no PSN. tuser on a
// payload read still sends the message and records it with DMA_ERROR.
//
// The window stalls the message stage for every connection (one in-order pipeline): a
// connection waiting for acknowledgements holds up those behind it until they come, or until
// its retransmit timer makes it go back (which drops its waiting chunk).
//
// Flushing. A load with ctx_load_flush (the connection manager stopping a connection) also
// remembers the old context's oldest incomplete WQE (the completer's cidx, as last reported) and
// producer index; the flush generator then pushes, between the emitter's records, one record with
// flush = 1 and status FLUSHED for each WQE index from there up to the producer index, then an end
// record (flush = 1, last = 0). It fetches nothing, so a flush makes no DMA. ctx_load_ready is low
// until the last of them is pushed.
//
// A context load is taken whenever ctx_load_ready is 1: whenever the table FSM is between
// operations and no progress update arrives, at least every other cycle (the message stage
// defers its PSN write to it). It bumps the connection's epoch, so anything of the previous
// context still in the pipeline is dropped.
module san_sq_engine #(
    // Stream width in bits; a power of two from 64 to 512.
    parameter DATA_WIDTH = 64,
    // Connections (queue pairs); a power of two from 2 to 4096.
    parameter N_QP = 256,
    // Payload buffer in bytes: a power of two of at least 8192 (two of the largest packets),
    // a ring of DATA_WIDTH-bit beats in one simple dual-port block RAM. It bounds how far the
    // payload reads run ahead of the link.
    parameter BUF_BYTES = 16384,
    // WQE fetches in flight or fetched and not yet started; a power of two from 2 to 1024
    // (distributed-RAM FIFOs of that depth hold their connections and their fields).
    parameter WQ_DEPTH = 32,
    // Packets whose payload is being read or waits in the buffer for its descriptor;
    // a power of two from 2 to 1024.
    parameter PKT_DEPTH = 32,
    // Messages started and not yet fully handed to the emitter's output; a power of two from
    // 2 to 1024.
    parameter MSG_DEPTH = 32,
    // Read beats in flight below which WQE fetches may run more than WQ_AHEAD messages ahead;
    // 1 to 65535. Data returns in request order, so a fetch far ahead delays the payload
    // behind it; too few in flight starve small messages. 128 keeps 64-byte messages at link
    // rate up to 200 cycles of read latency (256: to ~350, but a stream of 1 KiB messages
    // starting from idle with 0-cycle reads then waits 79 cycles once).
    parameter RD_AHEAD = 128,
    // WQEs that may always be fetched ahead of the message stage; 1 to WQ_DEPTH.
    parameter WQ_AHEAD = 4,
    // PSNs that may be sent beyond the oldest unacknowledged one; 64 to 2^22.
    parameter WINDOW = 128,
    // WQEs that may be fetched beyond the oldest incomplete one (the completer's table);
    // a power of two from 2 to 256, equal to the completer's.
    parameter MSG_WINDOW = 32
) (
    input  wire                     clk,
    input  wire                     rst,

    // Configuration (steady)
    input  wire                     cfg_enable,
    input  wire [3:0]               cfg_pmtu_log2,

    // Context load: taken in a cycle where ctx_load_en and ctx_load_ready are both 1
    input  wire                     ctx_load_en,
    output wire                     ctx_load_ready,
    input  wire [$clog2(N_QP)-1:0]  ctx_load_qpn,
    input  wire                     ctx_load_rts,
    input  wire [23:0]              ctx_load_dest_qpn,
    input  wire [47:0]              ctx_load_dmac,
    input  wire [31:0]              ctx_load_dip,
    input  wire [15:0]              ctx_load_udp_sport,
    input  wire [23:0]              ctx_load_sq_psn,
    input  wire [63:0]              ctx_load_sq_base,
    input  wire [4:0]               ctx_load_sq_log,
    input  wire                     ctx_load_flush,

    // SQ doorbells: the new producer index
    input  wire [$clog2(N_QP)-1:0]  s_db_qpn,
    input  wire [15:0]              s_db_pi,
    input  wire                     s_db_valid,
    output wire                     s_db_ready,

    // DMA reads: requests, and their data in request order
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

    // Transmit descriptors (san_tx_builder's s_hdr_* meanings)
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

    // Payload of each descriptor with pay_len > 0, in descriptor order: full beats but the last
    output wire [DATA_WIDTH-1:0]    m_axis_pay_tdata,
    output wire [DATA_WIDTH/8-1:0]  m_axis_pay_tkeep,
    output wire                     m_axis_pay_tvalid,
    input  wire                     m_axis_pay_tready,
    output wire                     m_axis_pay_tlast,

    // Records for the completer: one per packet handed over, in order, so it knows every PSN
    // sent (an acknowledgement may come for any of them). last: the WQE's last packet (or a WQE
    // that sends nothing), with its ring index, first PSN, the PSN after it, signaled and status
    // (SAN_CQE_STATUS_OK, _BAD_WQE or _DMA_ERROR); otherwise only end_psn counts. flush: a
    // stopped connection's flushed WQE (last = 1, idx, FLUSHED) or the flush's end (last = 0).
    output wire [$clog2(N_QP)-1:0]  m_rec_qpn,
    output wire                     m_rec_last,
    output wire [15:0]              m_rec_idx,
    output wire [23:0]              m_rec_first_psn,
    output wire [23:0]              m_rec_end_psn,
    output wire                     m_rec_signaled,
    output wire [7:0]               m_rec_status,
    output wire                     m_rec_flush,
    output wire [3:0]               m_rec_gen,
    output wire                     m_rec_valid,
    input  wire                     m_rec_ready,

    // Go-back-N commands from the completer: drop everything in flight for qpn; unless hold,
    // resend from packet pkt of the WQE at ring index idx, whose first PSN is psn; gen names the
    // command, and every record made after it carries it (m_rec_gen; 0 after a load)
    input  wire [$clog2(N_QP)-1:0]  s_rw_qpn,
    input  wire                     s_rw_hold,
    input  wire [3:0]               s_rw_gen,
    input  wire [15:0]              s_rw_idx,
    input  wire [23:0]              s_rw_psn,
    input  wire [23:0]              s_rw_pkt,
    input  wire                     s_rw_valid,
    output wire                     s_rw_ready,

    // Progress from the completer (always taken): oldest unacknowledged PSN, oldest incomplete WQE
    input  wire [$clog2(N_QP)-1:0]  s_una_qpn,
    input  wire [23:0]              s_una_psn,
    input  wire [15:0]              s_una_idx,
    input  wire                     s_una_valid
);

`include "san_regs.vh"

localparam integer QPN_W = $clog2(N_QP);
localparam integer QPN_MAX = N_QP - 1;
localparam integer BYTES = DATA_WIDTH / 8;
localparam integer LANE_BITS = $clog2(BYTES);
localparam integer BUF_BEATS = BUF_BYTES / BYTES;
localparam integer BUF_AW = $clog2(BUF_BEATS);
// Width to compare buffer beat counts in (a packet is up to 4096/BYTES beats).
localparam integer CNT_W = BUF_AW + 2 > 14 ? BUF_AW + 2 : 14;
// Width of the count of read beats in flight (bounded by the buffer and the WQE FIFO).
localparam integer RDO_W = CNT_W + 1 > 17 ? CNT_W + 1 : 17;
// Every request in flight has an order entry: WQE fetches hold a WQE FIFO slot, payload reads
// a packet credit.
localparam integer ORD_DEPTH = 2 ** $clog2(WQ_DEPTH + PKT_DEPTH);
localparam integer PKT_W = $clog2(PKT_DEPTH) + 1;
// Handed-over (or dropped) packets whose payload is still to be read out of the buffer, and
// records waiting for the completer.
localparam integer LEN_DEPTH = 16;
localparam integer REC_DEPTH = 4;
// Epochs: bumped per go-back-N command and load; pipeline items of an older one are dropped.
localparam integer EP_W = 8;
// Beat index within a packet (up to 4096 bytes).
localparam integer PBEAT_W = 13 - LANE_BITS;
// A WQE fetch reads only the fields used, WR_ID to FLAGS (22 of the 64 bytes): at PMTU 1024 a
// whole WQE plus 1 KiB of payload would take as many read beats as the frame takes link beats,
// leaving the reads no slack to get ahead of the link.
localparam integer WQE_READ = SAN_SENDWQE_FLAGS_OFFSET + SAN_SENDWQE_FLAGS_BYTES;
localparam integer WQE_BEATS = (WQE_READ + BYTES - 1) / BYTES;

// Context table entry: the fields only a load writes.
localparam integer CTX_W = 1 + 24 + 48 + 32 + 16 + 64 + 5;
// The addressing a connection's packets carry.
localparam integer ADR_W = 24 + 48 + 32 + 16;
// A fetched WQE's connection, addressing, epoch, ring index and resume point {resume, first
// PSN, packet}.
localparam integer TOK_W = QPN_W + ADR_W + EP_W + 16 + 1 + 24 + 24;
// A fetched WQE: read error, opcode, flags {solicited, signaled}, length, address, wr_id.
localparam integer WQE_W = 1 + 8 + 2 + 32 + 64 + 64;
// A chunk: connection, addressing, epoch, ring index, the message's first PSN, the chunk's
// first PSN and bytes, PMTU, signaled, solicited, status, {starts the message, ends it,
// continues the chunk before}.
localparam integer CHB_W = 20;
localparam integer MSG_W = QPN_W + ADR_W + EP_W + 16 + 24 + 24 + CHB_W + 4 + 1 + 1 + 2 + 3;
// A record: connection, last, ring index, first PSN, end PSN, signaled, status.
localparam integer REC_W = QPN_W + 1 + 16 + 24 + 24 + 1 + 8 + 1 + 4;

localparam [7:0] OP_SEND_FIRST = 8'h00;
localparam [7:0] OP_SEND_MIDDLE = 8'h01;
localparam [7:0] OP_SEND_LAST = 8'h02;
localparam [7:0] OP_SEND_ONLY = 8'h04;

// Message status inside the pipeline.
localparam [1:0] MS_OK = 2'd0;
localparam [1:0] MS_BAD = 2'd1;
localparam [1:0] MS_DMA = 2'd2;

initial begin
    if (DATA_WIDTH < 64 || DATA_WIDTH > 512 || (DATA_WIDTH & (DATA_WIDTH - 1)) != 0) begin
        $error("san_sq_engine: DATA_WIDTH must be a power of two from 64 to 512");
        $finish;
    end
    if (N_QP < 2 || N_QP > 4096 || (N_QP & (N_QP - 1)) != 0) begin
        $error("san_sq_engine: N_QP must be a power of two from 2 to 4096");
        $finish;
    end
    if (BUF_BYTES < 8192 || (BUF_BYTES & (BUF_BYTES - 1)) != 0) begin
        $error("san_sq_engine: BUF_BYTES must be a power of two of at least 8192");
        $finish;
    end
    if (WQ_DEPTH < 2 || WQ_DEPTH > 1024 || (WQ_DEPTH & (WQ_DEPTH - 1)) != 0
            || PKT_DEPTH < 2 || PKT_DEPTH > 1024 || (PKT_DEPTH & (PKT_DEPTH - 1)) != 0
            || MSG_DEPTH < 2 || MSG_DEPTH > 1024 || (MSG_DEPTH & (MSG_DEPTH - 1)) != 0
            || WQ_DEPTH + PKT_DEPTH > 1024 || WQ_AHEAD < 1 || WQ_AHEAD > WQ_DEPTH
            || RD_AHEAD < 1 || RD_AHEAD > 65535 || WINDOW < 64 || WINDOW > 4194304
            || MSG_WINDOW < 2 || MSG_WINDOW > 256 || (MSG_WINDOW & (MSG_WINDOW - 1)) != 0) begin
        $error("san_sq_engine: bad WQ_DEPTH, PKT_DEPTH, MSG_DEPTH, WQ_AHEAD, RD_AHEAD, WINDOW or MSG_WINDOW");
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

// Path MTU, held to the legal 256..4096 so that a bad setting cannot make zero-length packets.
wire [3:0] pmtu_log2 = cfg_pmtu_log2 < 4'd8 ? 4'd8 : (cfg_pmtu_log2 > 4'd12 ? 4'd12 : cfg_pmtu_log2);

// --- context tables (block RAM, one write port each, registered reads) ---------------------------

// ctx: {rts, dest_qpn, dmac, dip, sport, sq_base, sq_log}; written by loads (and the reset sweep).
// idx: {pi, ci}; written by loads, doorbells and turns. pend: the connection is in the work
// ring or in its turn; written by doorbells, turns (and the sweep). psn: next PSN; written by
// loads and the message stage.
reg [CTX_W-1:0] ctx_mem [0:N_QP-1];
reg [31:0] idx_mem [0:N_QP-1];
reg pend_mem [0:N_QP-1];
reg [23:0] psn_mem [0:N_QP-1];
reg [CTX_W-1:0] ctx_q;
reg [31:0] idx_q;
reg pend_q;
reg [23:0] psn_q;

reg ctx_we;
reg [QPN_W-1:0] ctx_wa;
reg [CTX_W-1:0] ctx_wd;
reg idx_we;
reg [QPN_W-1:0] idx_wa;
reg [31:0] idx_wd;
reg pend_we;
reg [QPN_W-1:0] pend_wa;
reg pend_wd;
reg psn_we;
reg [QPN_W-1:0] psn_wa;
reg [23:0] psn_wd;
reg [QPN_W-1:0] tbl_ra;    // the table FSM's read address
wire [QPN_W-1:0] psn_ra;   // the message stage's

always @(posedge clk) begin
    if (ctx_we) begin
        ctx_mem[ctx_wa] <= ctx_wd;
    end
    ctx_q <= ctx_mem[tbl_ra];
end

always @(posedge clk) begin
    if (idx_we) begin
        idx_mem[idx_wa] <= idx_wd;
    end
    idx_q <= idx_mem[tbl_ra];
end

always @(posedge clk) begin
    if (pend_we) begin
        pend_mem[pend_wa] <= pend_wd;
    end
    pend_q <= pend_mem[tbl_ra];
end

always @(posedge clk) begin
    if (psn_we) begin
        psn_mem[psn_wa] <= psn_wd;
    end
    psn_q <= psn_mem[psn_ra];
end

// ep: epoch; written by loads and go-back-N commands, read asynchronously (distributed RAM) by
// turns, the message stage and the emitter. gen: the generation of the latest command (0 after
// a load), read by the emitter for its records: a record is made only of what is not stale, so
// of what came after that command. una, cidx: the completer's progress; written by its
// updates and loads, read asynchronously by the message stage and turns. rs: {hold, resume,
// ring index, first PSN, packet}; written by loads, commands and turns, read with the table FSM.
localparam integer RS_W = 1 + 1 + 16 + 24 + 24;
reg [EP_W-1:0] ep_mem [0:N_QP-1];
reg [3:0] gen_mem [0:N_QP-1];
reg [23:0] una_mem [0:N_QP-1];
reg [15:0] cidx_mem [0:N_QP-1];
reg [RS_W-1:0] rs_mem [0:N_QP-1];
reg [RS_W-1:0] rs_q;
reg ep_we;
reg [QPN_W-1:0] ep_wa;
reg [EP_W-1:0] ep_wd;
reg [3:0] gen_wd;
reg rs_we;
reg [QPN_W-1:0] rs_wa;
reg [RS_W-1:0] rs_wd;

always @(posedge clk) begin
    if (ep_we) begin
        ep_mem[ep_wa] <= ep_wd;
        gen_mem[ep_wa] <= gen_wd;
    end
end

// A load and a progress update never come in the same cycle (ctx_load_ready).
always @(posedge clk) begin
    if (ctx_load_en && ctx_load_ready) begin
        una_mem[ctx_load_qpn] <= ctx_load_sq_psn;
        cidx_mem[ctx_load_qpn] <= 16'd0;
    end else if (s_una_valid) begin
        una_mem[s_una_qpn] <= s_una_psn;
        cidx_mem[s_una_qpn] <= s_una_idx;
    end
end

always @(posedge clk) begin
    if (rs_we) begin
        rs_mem[rs_wa] <= rs_wd;
    end
    rs_q <= rs_mem[tbl_ra];
end

wire rs_hold = rs_q[RS_W-1];
wire rs_resume = rs_q[RS_W-2];
wire [15:0] rs_idx = rs_q[48 +: 16];
wire [23:0] rs_psn = rs_q[24 +: 24];
wire [23:0] rs_pkt = rs_q[0 +: 24];

wire c_rts;
wire [23:0] c_dest_qpn;
wire [47:0] c_dmac;
wire [31:0] c_dip;
wire [15:0] c_sport;
wire [63:0] c_base;
wire [4:0] c_log;
assign {c_rts, c_dest_qpn, c_dmac, c_dip, c_sport, c_base, c_log} = ctx_q;
wire [15:0] c_pi = idx_q[31:16];
wire [15:0] c_ci = idx_q[15:0];
wire [15:0] c_ci_inc = c_ci + 16'd1;
// The WQE at the consumer index: base + (ci mod 2^log) * 64.
wire [15:0] c_slot = c_ci & ~(16'hFFFF << c_log);
wire [63:0] c_wqe_addr = c_base + {42'd0, c_slot, 6'd0};

// --- work ring: connections with work, each at most once (block RAM, registered head) -----------

// A pushed entry is visible two cycles later (its write, then the head read), hence the empty
// test against the write pointer of the cycle before.
reg [QPN_W-1:0] work_mem [0:N_QP-1];
reg [QPN_W-1:0] work_head;
reg [QPN_W:0] work_wr_reg = {(QPN_W+1){1'b0}}, work_wr_next;
reg [QPN_W:0] work_wr_d_reg = {(QPN_W+1){1'b0}};
reg [QPN_W:0] work_rd_reg = {(QPN_W+1){1'b0}}, work_rd_next;
reg work_push;
reg [QPN_W-1:0] work_push_qpn;
wire work_valid = work_rd_reg != work_wr_d_reg;

always @(posedge clk) begin
    if (work_push) begin
        work_mem[work_wr_reg[QPN_W-1:0]] <= work_push_qpn;
    end
    work_head <= work_mem[work_rd_next[QPN_W-1:0]];
end

// --- table FSM ----------------------------------------------------------------------------------

localparam [2:0]
    S_INIT = 3'd0,   // after reset: clearing every connection's rts and pending bit, one a cycle
    S_IDLE = 3'd1,   // taking a load, or starting a command, a doorbell or a turn
    S_DB = 3'd2,     // doorbell: the entry has been read; record the PI, schedule if new work
    S_SCH = 3'd3,    // turn: the entry has been read; fetch one WQE and advance the CI
    S_RW = 3'd4;     // command: the entry has been read; hold, or go back and schedule

reg [2:0] s_state_reg = S_INIT, s_state_next;
reg [QPN_W-1:0] init_reg = {QPN_W{1'b0}}, init_next;
reg [QPN_W-1:0] s_qpn_reg, s_qpn_next;          // connection of the doorbell or turn
reg [15:0] s_pi_reg, s_pi_next;                 // the doorbell's PI
reg rw_hold_reg, rw_hold_next;                  // the command's fields
reg [15:0] rw_idx_reg, rw_idx_next;
reg [23:0] rw_psn_reg, rw_psn_next;
reg [23:0] rw_pkt_reg, rw_pkt_next;
reg prefer_sch_reg = 1'b0, prefer_sch_next;     // a turn goes first when both wait
// The WQE fetch waiting for the read port.
reg wqe_req_valid_reg = 1'b0, wqe_req_valid_next;
reg [63:0] wqe_req_addr_reg, wqe_req_addr_next;

localparam [1:0]
    P_IDLE = 2'd0,   // waiting for a fetched WQE (its PSN is read meanwhile)
    P_START = 2'd1,  // check it, write the PSN after it (not while a load takes the PSN table)
    P_CHUNK = 2'd2,  // queue its next chunk once inside the window
    P_ISSUE = 2'd3;  // issue the chunk's packets' payload reads

reg [1:0] p_state_reg = P_IDLE, p_state_next;

// A load takes the PSN table's write port from the message stage, which waits a cycle, and the
// progress tables' from the completer, so it waits for a cycle without an update.
reg fl_cap_reg = 1'b0, fl_act_reg = 1'b0;   // a flush: capturing its range, generating records
assign ctx_load_ready = s_state_reg == S_IDLE && !s_una_valid && !fl_cap_reg && !fl_act_reg;
wire ld = ctx_load_en && ctx_load_ready;

wire tok_s_ready;
reg tok_push;
// A turn starts only with room for its WQE (a WQE FIFO slot and the fetch register), and while
// few WQEs are ahead of the message stage or few read beats are in flight.
reg [RDO_W-1:0] rd_out_reg = {RDO_W{1'b0}}, rd_out_next;   // read beats requested, not returned
reg [$clog2(WQ_DEPTH):0] tok_n_reg = {($clog2(WQ_DEPTH)+1){1'b0}}, tok_n_next;  // WQEs fetched, not started
wire ahead_ok = tok_n_reg < WQ_AHEAD[$clog2(WQ_DEPTH):0] || rd_out_reg < RD_AHEAD[RDO_W-1:0];
wire sch_can = s_state_reg == S_IDLE && !ld && !s_rw_valid && work_valid && cfg_enable
    && tok_s_ready && !wqe_req_valid_reg && ahead_ok;
assign s_rw_ready = s_state_reg == S_IDLE && !ld;
wire rw_take = s_rw_valid && s_rw_ready;
assign s_db_ready = s_state_reg == S_IDLE && !ld && !s_rw_valid && !(sch_can && prefer_sch_reg);
wire db_take = s_db_valid && s_db_ready;
wire sch_take = sch_can && !db_take;
// WQEs fetched beyond the oldest incomplete one stay within the completer's table. A WQE behind
// it is complete (progress passed the point a go-back-N resends from): it is never fetched, as
// the driver may have reused its slot; the connection waits for the completer, which then goes
// back again, forward to its oldest incomplete WQE.
wire [15:0] s_ahead = c_ci - cidx_mem[s_qpn_reg];
wire s_win_ok = s_ahead < MSG_WINDOW[15:0];
wire [EP_W-1:0] s_ep = ep_mem[s_qpn_reg];
wire [EP_W-1:0] rw_ep = ep_mem[s_rw_qpn];
wire w_issue;

always @* begin
    s_state_next = s_state_reg;
    init_next = init_reg;
    s_qpn_next = s_qpn_reg;
    s_pi_next = s_pi_reg;
    prefer_sch_next = prefer_sch_reg;
    wqe_req_valid_next = wqe_req_valid_reg && !w_issue;
    wqe_req_addr_next = wqe_req_addr_reg;
    work_rd_next = work_rd_reg;
    work_wr_next = work_wr_reg;
    work_push = 1'b0;
    work_push_qpn = s_qpn_reg;
    tok_push = 1'b0;
    rw_hold_next = rw_hold_reg;
    rw_idx_next = rw_idx_reg;
    rw_psn_next = rw_psn_reg;
    rw_pkt_next = rw_pkt_reg;
    // A load reads the old context (read before write) for a flush's range.
    tbl_ra = ld ? ctx_load_qpn : (rw_take ? s_rw_qpn : (db_take ? s_db_qpn : work_head));
    ep_we = 1'b0;
    ep_wa = ctx_load_qpn;
    ep_wd = ep_mem[ctx_load_qpn] + 1'b1;
    gen_wd = 4'd0;
    rs_we = 1'b0;
    rs_wa = s_qpn_reg;
    rs_wd = {RS_W{1'b0}};
    ctx_we = 1'b0;
    ctx_wa = ctx_load_qpn;
    ctx_wd = {ctx_load_rts, ctx_load_dest_qpn, ctx_load_dmac, ctx_load_dip, ctx_load_udp_sport,
        ctx_load_sq_base, ctx_load_sq_log};
    idx_we = 1'b0;
    idx_wa = s_qpn_reg;
    idx_wd = {c_pi, c_ci_inc};
    pend_we = 1'b0;
    pend_wa = s_qpn_reg;
    pend_wd = 1'b0;

    case (s_state_reg)
        S_INIT: begin
            ctx_we = 1'b1;
            ctx_wa = init_reg;
            ctx_wd = {CTX_W{1'b0}};
            pend_we = 1'b1;
            pend_wa = init_reg;
            rs_we = 1'b1;
            rs_wa = init_reg;
            init_next = init_reg + 1'b1;
            if (init_reg == QPN_MAX[QPN_W-1:0]) begin
                s_state_next = S_IDLE;
            end
        end
        S_IDLE: begin
            if (ld) begin
                // A load: the context as given, ring indices from 0. The pending bit stays: a
                // connection in the work ring finds no work on its turn and leaves it.
                ctx_we = 1'b1;
                idx_we = 1'b1;
                idx_wa = ctx_load_qpn;
                idx_wd = 32'd0;
                ep_we = 1'b1;
                rs_we = 1'b1;
                rs_wa = ctx_load_qpn;
            end else if (rw_take) begin
                // The epoch moves at once: what is in flight is stale from the next cycle.
                ep_we = 1'b1;
                ep_wa = s_rw_qpn;
                ep_wd = rw_ep + 1'b1;
                gen_wd = s_rw_gen;
                s_qpn_next = s_rw_qpn;
                rw_hold_next = s_rw_hold;
                rw_idx_next = s_rw_idx;
                rw_psn_next = s_rw_psn;
                rw_pkt_next = s_rw_pkt;
                s_state_next = S_RW;
            end else if (db_take) begin
                s_qpn_next = s_db_qpn;
                s_pi_next = s_db_pi;
                prefer_sch_next = 1'b1;
                s_state_next = S_DB;
            end else if (sch_take) begin
                s_qpn_next = work_head;
                work_rd_next = work_rd_reg + 1'b1;
                prefer_sch_next = 1'b0;
                s_state_next = S_SCH;
            end
        end
        S_DB: begin
            // A connection in reset ignores its doorbells.
            if (c_rts) begin
                idx_we = 1'b1;
                idx_wd = {s_pi_reg, c_ci};
                if (!pend_q && s_pi_reg != c_ci) begin
                    pend_we = 1'b1;
                    pend_wd = 1'b1;
                    work_push = 1'b1;
                end
            end
            s_state_next = S_IDLE;
        end
        S_SCH: begin
            // Leaves the ring (not pending) unless it fetches with more to come, or waits for
            // the completer's table to have room (then it goes round again).
            pend_we = 1'b1;
            if (c_rts && !rs_hold && c_pi != c_ci) begin
                if (s_win_ok) begin
                    wqe_req_valid_next = 1'b1;
                    wqe_req_addr_next = c_wqe_addr;
                    tok_push = 1'b1;
                    idx_we = 1'b1;
                    // The resume point is used once, by the fetch of the WQE it names.
                    rs_we = rs_resume;
                    if (c_pi != c_ci_inc) begin
                        pend_we = 1'b0;
                        work_push = 1'b1;
                    end
                end else begin
                    pend_we = 1'b0;
                    work_push = 1'b1;
                end
            end
            s_state_next = S_IDLE;
        end
        S_RW: begin
            if (c_rts) begin
                rs_we = 1'b1;
                if (rw_hold_reg) begin
                    rs_wd = {1'b1, 1'b0, 16'd0, 24'd0, 24'd0};
                end else begin
                    rs_wd = {1'b0, 1'b1, rw_idx_reg, rw_psn_reg, rw_pkt_reg};
                    idx_we = 1'b1;
                    idx_wd = {c_pi, rw_idx_reg};
                    if (!pend_q && c_pi != rw_idx_reg) begin
                        pend_we = 1'b1;
                        pend_wd = 1'b1;
                        work_push = 1'b1;
                    end
                end
            end
            s_state_next = S_IDLE;
        end
        default: begin
            s_state_next = S_IDLE;
        end
    endcase
    if (work_push) begin
        work_wr_next = work_wr_reg + 1'b1;
    end
end

always @(posedge clk) begin
    s_state_reg <= s_state_next;
    init_reg <= init_next;
    s_qpn_reg <= s_qpn_next;
    s_pi_reg <= s_pi_next;
    rw_hold_reg <= rw_hold_next;
    rw_idx_reg <= rw_idx_next;
    rw_psn_reg <= rw_psn_next;
    rw_pkt_reg <= rw_pkt_next;
    prefer_sch_reg <= prefer_sch_next;
    wqe_req_valid_reg <= wqe_req_valid_next;
    wqe_req_addr_reg <= wqe_req_addr_next;
    work_wr_reg <= work_wr_next;
    work_wr_d_reg <= work_wr_reg;
    work_rd_reg <= work_rd_next;

    if (rst) begin
        s_state_reg <= S_INIT;
        init_reg <= {QPN_W{1'b0}};
        prefer_sch_reg <= 1'b0;
        wqe_req_valid_reg <= 1'b0;
        work_wr_reg <= {(QPN_W+1){1'b0}};
        work_wr_d_reg <= {(QPN_W+1){1'b0}};
        work_rd_reg <= {(QPN_W+1){1'b0}};
    end
end

// --- FIFOs between the stages --------------------------------------------------------------------

// Fetched WQEs' connections, in fetch order (pushed by turns, popped by the message stage).
wire [TOK_W-1:0] tok_m_data;
wire tok_m_valid;
wire msg_pop_tok;   // the message stage takes a token and its WQE together

san_sync_fifo #(
    .WIDTH(TOK_W),
    .DEPTH(WQ_DEPTH)
) tok_fifo_inst (
    .clk(clk),
    .rst(rst),
    .s_data({s_qpn_reg, c_dest_qpn, c_dmac, c_dip, c_sport, s_ep, c_ci,
        rs_resume && rs_idx == c_ci, rs_psn, rs_pkt}),
    .s_valid(tok_push),
    .s_ready(tok_s_ready),
    .m_data(tok_m_data),
    .m_valid(tok_m_valid),
    .m_ready(msg_pop_tok)
);

// Kind of each read in flight: 1 WQE, 0 payload.
reg req_valid_reg = 1'b0, req_valid_next;
reg [63:0] req_addr_reg, req_addr_next;
reg [15:0] req_len_reg, req_len_next;
reg req_kind_reg, req_kind_next;
wire ord_m_data;
wire ord_m_valid;
wire ord_s_ready_unused;   // never full: see ORD_DEPTH
wire ord_pop;

san_sync_fifo #(
    .WIDTH(1),
    .DEPTH(ORD_DEPTH)
) ord_fifo_inst (
    .clk(clk),
    .rst(rst),
    .s_data(req_kind_reg),
    .s_valid(req_valid_reg && m_dma_rd_req_ready),
    .s_ready(ord_s_ready_unused),
    .m_data(ord_m_data),
    .m_valid(ord_m_valid),
    .m_ready(ord_pop)
);

// --- read data: WQEs parsed, payload into the buffer ------------------------------------------------

reg [3:0] d_beat_reg = 4'd0, d_beat_next;     // beat within a WQE read
reg d_err_reg = 1'b0, d_err_next;             // tuser seen in this read
reg [8*WQE_READ-1:0] wqe_buf_reg = {8*WQE_READ{1'b0}};
reg [8*WQE_READ-1:0] wqe_cur;                 // the WQE bytes with this beat's in place
reg [BUF_AW-1:0] buf_wr_reg = {BUF_AW{1'b0}}, buf_wr_next;

assign s_axis_dma_rd_tready = 1'b1;
wire d_beat = s_axis_dma_rd_tvalid && ord_m_valid;
wire d_is_wqe = ord_m_data;
assign ord_pop = d_beat && s_axis_dma_rd_tlast;
wire d_err = d_err_reg || s_axis_dma_rd_tuser;
wire wqe_push = d_beat && d_is_wqe && s_axis_dma_rd_tlast;
wire arr_push = d_beat && !d_is_wqe && s_axis_dma_rd_tlast;
wire buf_we = d_beat && !d_is_wqe;

integer wb;
always @* begin
    wqe_cur = wqe_buf_reg;
    for (wb = 0; wb < WQE_READ; wb = wb + 1) begin
        if (d_beat && d_is_wqe && {28'd0, d_beat_reg} == wb / BYTES) begin
            wqe_cur[8*wb +: 8] = s_axis_dma_rd_tdata[8*(wb % BYTES) +: 8];
        end
    end
end

always @* begin
    d_beat_next = d_beat_reg;
    d_err_next = d_err_reg;
    buf_wr_next = buf_wr_reg;
    if (d_beat) begin
        d_beat_next = s_axis_dma_rd_tlast ? 4'd0 : d_beat_reg + 4'd1;
        d_err_next = s_axis_dma_rd_tlast ? 1'b0 : d_err;
    end
    if (buf_we) begin
        buf_wr_next = buf_wr_reg + 1'b1;
    end
end

always @(posedge clk) begin
    d_beat_reg <= d_beat_next;
    d_err_reg <= d_err_next;
    wqe_buf_reg <= wqe_cur;
    buf_wr_reg <= buf_wr_next;
    if (rst) begin
        d_beat_reg <= 4'd0;
        d_err_reg <= 1'b0;
        buf_wr_reg <= {BUF_AW{1'b0}};
    end
end

wire [7:0] wqe_flags = wqe_cur[8*SAN_SENDWQE_FLAGS_OFFSET +: 8];
wire [WQE_W-1:0] wqe_in = {d_err, wqe_cur[8*SAN_SENDWQE_OPCODE_OFFSET +: 8],
    wqe_flags[SAN_SENDWQE_FLAGS_SOLICITED_LSB], wqe_flags[SAN_SENDWQE_FLAGS_SIGNALED_LSB],
    wqe_cur[8*SAN_SENDWQE_LENGTH_OFFSET +: 32], wqe_cur[8*SAN_SENDWQE_ADDR_OFFSET +: 64],
    wqe_cur[8*SAN_SENDWQE_WR_ID_OFFSET +: 64]};
wire [WQE_W-1:0] wqe_m_data;
wire wqe_m_valid;
wire wqe_s_ready_unused;   // never full: a slot was reserved with the token

san_sync_fifo #(
    .WIDTH(WQE_W),
    .DEPTH(WQ_DEPTH)
) wqe_fifo_inst (
    .clk(clk),
    .rst(rst),
    .s_data(wqe_in),
    .s_valid(wqe_push),
    .s_ready(wqe_s_ready_unused),
    .m_data(wqe_m_data),
    .m_valid(wqe_m_valid),
    .m_ready(msg_pop_tok)
);

// Packets whose payload has fully arrived, with their read error; never full (packet credits).
wire arr_m_data;
wire arr_m_valid;
wire arr_s_ready_unused;
wire arr_pop;

san_sync_fifo #(
    .WIDTH(1),
    .DEPTH(PKT_DEPTH)
) arr_fifo_inst (
    .clk(clk),
    .rst(rst),
    .s_data(d_err),
    .s_valid(arr_push),
    .s_ready(arr_s_ready_unused),
    .m_data(arr_m_data),
    .m_valid(arr_m_valid),
    .m_ready(arr_pop)
);

// The payload buffer: one write port (read data), one registered read port (payload out).
reg [DATA_WIDTH-1:0] buf_mem [0:BUF_BEATS-1];
reg [DATA_WIDTH-1:0] buf_q;
reg [BUF_AW-1:0] buf_rd_reg = {BUF_AW{1'b0}}, buf_rd_next;
wire rd_en;    // a beat leaves the buffer
wire buf_re;   // and is read (not when its packet is dropped)

always @(posedge clk) begin
    if (buf_we) begin
        buf_mem[buf_wr_reg] <= s_axis_dma_rd_tdata;
    end
    if (buf_re) begin
        buf_q <= buf_mem[buf_rd_reg];
    end
end

// --- message stage ---------------------------------------------------------------------------------

wire [QPN_W-1:0] t_qpn;
wire [ADR_W-1:0] t_adr;
wire [EP_W-1:0] t_ep;
wire [15:0] t_idx;
wire t_resume;
wire [23:0] t_rs_psn;
wire [23:0] t_rs_pkt;
assign {t_qpn, t_adr, t_ep, t_idx, t_resume, t_rs_psn, t_rs_pkt} = tok_m_data;

wire w_err;
wire [7:0] w_opcode;
wire w_sol;
wire w_sig;
wire [31:0] w_len;
wire [63:0] w_addr;
wire [63:0] w_wr_id;
assign {w_err, w_opcode, w_sol, w_sig, w_len, w_addr, w_wr_id} = wqe_m_data;

assign psn_ra = t_qpn;

// The message being cut into chunks (its token's fields, first PSN, PMTU, flags, whether a
// chunk of it has been queued in this pass), and the packet to read next: its PSN, address,
// the message's bytes from it on, and (worked out a packet ahead, to keep issuing it a short
// path) whether it is the message's last, its length and its beats; the chunk's packets left.
reg [QPN_W-1:0] r_qpn_reg;
reg [ADR_W-1:0] r_adr_reg;
reg [EP_W-1:0] r_ep_reg;
reg [15:0] r_idx_reg;
reg [23:0] r_first_reg;
reg [3:0] r_log_reg;
reg r_sig_reg, r_sol_reg, r_cont_reg;
reg [23:0] p_psn_reg;
reg [63:0] p_addr_reg;
reg [31:0] p_rem_reg;
reg [12:0] p_pmtu_reg;
reg p_last_reg;
reg [12:0] p_pay_reg;
reg [CNT_W-1:0] p_beats_reg;
reg [6:0] p_cn_reg;
reg [BUF_AW:0] free_reg = BUF_BEATS[BUF_AW:0], free_next;  // buffer beats not reserved
reg [PKT_W-1:0] pkt_reg = {PKT_W{1'b0}}, pkt_next;         // packet credits taken

wire msg_s_ready;
wire [1:0] w_status = w_err ? MS_DMA
    : ((w_opcode != SAN_WQE_OPCODE_SEND || w_len[31]) ? MS_BAD : MS_OK);
// Packets of the message: 1 up to a PMTU (0 bytes too), else ceil(length / PMTU).
wire [31:0] w_len_m1 = w_len - 32'd1;
wire [31:0] w_npk_m1 = w_len == 32'd0 ? 32'd0 : w_len_m1 >> pmtu_log2;
// A resumed WQE starts at packet t_rs_pkt with the PSNs it had; any other at the next PSN.
wire [23:0] w_first = t_resume ? t_rs_psn : psn_q;
wire [23:0] w_skip = t_resume ? t_rs_pkt : 24'd0;
wire [31:0] w_off = {8'd0, w_skip} << pmtu_log2;
wire [31:0] w_rem = w_len - w_off;
wire [23:0] w_psn_after = w_status == MS_OK ? w_first + w_npk_m1[23:0] + 24'd1 : w_first;
wire t_stale = t_ep != ep_mem[t_qpn];
wire p_start = p_state_reg == P_START && !ld;
assign msg_pop_tok = p_start;

localparam integer LANES_M1 = BYTES - 1;
function [CNT_W-1:0] beats_of(input [12:0] n);
    begin
        beats_of = ({{(CNT_W-13){1'b0}}, n} + LANES_M1[CNT_W-1:0]) >> LANE_BITS;
    end
endfunction

// The first packet to read of the WQE at the head, and the packet after the one to read.
wire [12:0] pmtu = 13'd1 << pmtu_log2;
wire w_last = w_rem <= {19'd0, pmtu};
wire [12:0] w_pay = w_last ? w_rem[12:0] : pmtu;
wire [31:0] p_rem_after = p_rem_reg - {19'd0, p_pmtu_reg};
wire p_last_after = p_rem_reg <= {18'd0, p_pmtu_reg, 1'b0};
wire [12:0] p_pay_after = p_last_after ? p_rem_after[12:0] : p_pmtu_reg;
wire p_room = p_beats_reg <= {{(CNT_W-BUF_AW-1){1'b0}}, free_reg};
wire req_free = !req_valid_reg || m_dma_rd_req_ready;
wire p_issue = p_state_reg == P_ISSUE && req_free && pkt_reg != PKT_DEPTH[PKT_W-1:0] && p_room;
assign w_issue = !p_issue && wqe_req_valid_reg && req_free;

// The next chunk: packets up to the message's end or the next PSN with its low 6 bits set.
wire [31:0] c_rem_m1 = p_rem_reg - 32'd1;
wire [31:0] c_left = p_rem_reg == 32'd0 ? 32'd1 : (c_rem_m1 >> r_log_reg) + 32'd1;
wire [6:0] c_bnd = 7'd64 - {1'b0, p_psn_reg[5:0]};
wire c_end = c_left <= {25'd0, c_bnd};
wire [6:0] c_n = c_end ? c_left[6:0] : c_bnd;
wire [CHB_W-1:0] c_bytes = c_end ? p_rem_reg[CHB_W-1:0]
    : ({{(CHB_W-7){1'b0}}, c_n} << r_log_reg);
wire [23:0] c_last_psn = p_psn_reg + {17'd0, c_n} - 24'd1;
// Inside the window: its last PSN less than WINDOW after una. A chunk behind una (progress
// passed the point a go-back-N resends from) waits, reading no payload, until the completer's
// go-back forward to una makes it stale.
wire [23:0] c_out = c_last_psn - una_mem[r_qpn_reg];
wire c_win = c_out < WINDOW[23:0];
wire c_stale = r_ep_reg != ep_mem[r_qpn_reg];
wire c_go = p_state_reg == P_CHUNK && !c_stale && c_win && msg_s_ready;

reg msg_push;
reg [MSG_W-1:0] msg_in;

always @* begin
    p_state_next = p_state_reg;
    msg_push = 1'b0;
    msg_in = {r_qpn_reg, r_adr_reg, r_ep_reg, r_idx_reg, r_first_reg, p_psn_reg, c_bytes,
        r_log_reg, r_sig_reg, r_sol_reg, MS_OK, p_psn_reg == r_first_reg, c_end, r_cont_reg};
    psn_we = 1'b0;
    psn_wa = t_qpn;
    psn_wd = w_psn_after;

    case (p_state_reg)
        P_IDLE: begin
            if (tok_m_valid && wqe_m_valid && msg_s_ready) begin
                p_state_next = P_START;
            end
        end
        P_START: begin
            if (p_start) begin
                if (t_stale) begin
                    // Fetched before its connection went back or was loaded: dropped.
                    p_state_next = P_IDLE;
                end else begin
                    psn_we = 1'b1;
                    if (w_status != MS_OK) begin
                        // Sends nothing: one entry, for its record.
                        msg_push = 1'b1;
                        msg_in = {t_qpn, t_adr, t_ep, t_idx, w_first, w_first, {CHB_W{1'b0}},
                            pmtu_log2, w_sig, w_sol, w_status, 3'b110};
                        p_state_next = P_IDLE;
                    end else begin
                        p_state_next = P_CHUNK;
                    end
                end
            end
        end
        P_CHUNK: begin
            if (c_stale) begin
                // Went back while waiting for the window: the rest of the message is dropped.
                p_state_next = P_IDLE;
            end else if (c_go) begin
                msg_push = 1'b1;
                p_state_next = p_rem_reg == 32'd0 ? P_IDLE : P_ISSUE;
            end
        end
        P_ISSUE: begin
            if (p_issue && p_cn_reg == 7'd1) begin
                p_state_next = p_last_reg ? P_IDLE : P_CHUNK;
            end
        end
        default: begin
            p_state_next = P_IDLE;
        end
    endcase
    if (ld) begin
        psn_we = 1'b1;
        psn_wa = ctx_load_qpn;
        psn_wd = ctx_load_sq_psn;
    end
end

always @(posedge clk) begin
    if (p_start) begin
        r_qpn_reg <= t_qpn;
        r_adr_reg <= t_adr;
        r_ep_reg <= t_ep;
        r_idx_reg <= t_idx;
        r_first_reg <= w_first;
        r_log_reg <= pmtu_log2;
        r_sig_reg <= w_sig;
        r_sol_reg <= w_sol;
        r_cont_reg <= 1'b0;
        p_psn_reg <= w_first + w_skip;
        p_addr_reg <= w_addr + {32'd0, w_off};
        p_rem_reg <= w_rem;
        p_pmtu_reg <= pmtu;
        p_last_reg <= w_last;
        p_pay_reg <= w_pay;
        p_beats_reg <= beats_of(w_pay);
    end
    if (c_go) begin
        r_cont_reg <= 1'b1;
        p_cn_reg <= c_n;
    end
    if (p_issue) begin
        p_psn_reg <= p_psn_reg + 24'd1;
        p_cn_reg <= p_cn_reg - 7'd1;
        p_addr_reg <= p_addr_reg + {51'd0, p_pay_reg};
        p_rem_reg <= p_rem_after;
        p_last_reg <= p_last_after;
        p_pay_reg <= p_pay_after;
        p_beats_reg <= beats_of(p_pay_after);
    end
end

// The read port: payload reads before WQE fetches.
always @* begin
    req_valid_next = req_valid_reg && !m_dma_rd_req_ready;
    req_addr_next = req_addr_reg;
    req_len_next = req_len_reg;
    req_kind_next = req_kind_reg;
    if (p_issue) begin
        req_valid_next = 1'b1;
        req_addr_next = p_addr_reg;
        req_len_next = {3'd0, p_pay_reg};
        req_kind_next = 1'b0;
    end else if (w_issue) begin
        req_valid_next = 1'b1;
        req_addr_next = wqe_req_addr_reg;
        req_len_next = WQE_READ[15:0];
        req_kind_next = 1'b1;
    end
end

assign m_dma_rd_req_addr = req_addr_reg;
assign m_dma_rd_req_len = req_len_reg;
assign m_dma_rd_req_valid = req_valid_reg;

// Buffer beats: reserved per packet read issued, freed per beat read out. Packet credits:
// taken per read issued, returned when the emitter takes the packet's arrival record.
always @* begin
    free_next = free_reg;
    if (p_issue) begin
        free_next = free_next - p_beats_reg[BUF_AW:0];
    end
    if (rd_en) begin
        free_next = free_next + 1'b1;
    end
    pkt_next = pkt_reg + {{(PKT_W-1){1'b0}}, p_issue} - {{(PKT_W-1){1'b0}}, arr_pop};
    rd_out_next = rd_out_reg;
    if (p_issue) begin
        rd_out_next = rd_out_next + {{(RDO_W-CNT_W){1'b0}}, p_beats_reg};
    end else if (w_issue) begin
        rd_out_next = rd_out_next + WQE_BEATS[RDO_W-1:0];
    end
    if (d_beat) begin
        rd_out_next = rd_out_next - 1'b1;
    end
    tok_n_next = tok_n_reg + {{$clog2(WQ_DEPTH){1'b0}}, tok_push}
        - {{$clog2(WQ_DEPTH){1'b0}}, msg_pop_tok};
end

always @(posedge clk) begin
    p_state_reg <= p_state_next;
    free_reg <= free_next;
    pkt_reg <= pkt_next;
    rd_out_reg <= rd_out_next;
    tok_n_reg <= tok_n_next;
    req_valid_reg <= req_valid_next;
    req_addr_reg <= req_addr_next;
    req_len_reg <= req_len_next;
    req_kind_reg <= req_kind_next;
    if (rst) begin
        p_state_reg <= P_IDLE;
        free_reg <= BUF_BEATS[BUF_AW:0];
        pkt_reg <= {PKT_W{1'b0}};
        rd_out_reg <= {RDO_W{1'b0}};
        tok_n_reg <= {($clog2(WQ_DEPTH)+1){1'b0}};
        req_valid_reg <= 1'b0;
    end
end

wire [MSG_W-1:0] msg_m_data;
wire msg_m_valid;
wire msg_pop;

san_sync_fifo #(
    .WIDTH(MSG_W),
    .DEPTH(MSG_DEPTH)
) msg_fifo_inst (
    .clk(clk),
    .rst(rst),
    .s_data(msg_in),
    .s_valid(msg_push),
    .s_ready(msg_s_ready),
    .m_data(msg_m_data),
    .m_valid(msg_m_valid),
    .m_ready(msg_pop)
);

// --- emitter -----------------------------------------------------------------------------------------

wire [QPN_W-1:0] m_qpn;
wire [23:0] m_dest_qpn;
wire [47:0] m_dmac;
wire [31:0] m_dip;
wire [15:0] m_sport;
wire [EP_W-1:0] m_ep;
wire [15:0] m_idx;
wire [23:0] m_first;
wire [23:0] m_cpsn;
wire [CHB_W-1:0] m_bytes;
wire [3:0] m_log;
wire m_sig;
wire m_sol;
wire [1:0] m_status;
wire m_mfirst;
wire m_mend;
wire m_cont;
assign {m_qpn, m_dest_qpn, m_dmac, m_dip, m_sport, m_ep, m_idx, m_first, m_cpsn, m_bytes, m_log,
    m_sig, m_sol, m_status, m_mfirst, m_mend, m_cont} = msg_m_data;

reg e_active_reg = 1'b0, e_active_next;   // the head chunk has sent or dropped a packet
reg [CHB_W-1:0] e_rem_reg, e_rem_next;    // its bytes not yet described
reg [23:0] e_psn_reg, e_psn_next;         // its next PSN
reg e_err_reg = 1'b0, e_err_next;         // a payload read of its message failed (this pass)

// The output descriptor.
reg tx_valid_reg = 1'b0, tx_valid_next;
reg [47:0] tx_dmac_reg, tx_dmac_next;
reg [31:0] tx_dip_reg, tx_dip_next;
reg [15:0] tx_sport_reg, tx_sport_next;
reg [7:0] tx_opcode_reg, tx_opcode_next;
reg tx_se_reg, tx_se_next;
reg [23:0] tx_dest_qp_reg, tx_dest_qp_next;
reg tx_ack_req_reg, tx_ack_req_next;
reg [23:0] tx_psn_reg, tx_psn_next;
reg [12:0] tx_pay_len_reg, tx_pay_len_next;

// A chunk is stale once its connection's epoch has moved (go-back-N or a load): its packets
// are dropped, from wherever it has got to.
wire m_stale = m_ep != ep_mem[m_qpn];
wire [CHB_W-1:0] e_rem = e_active_reg ? e_rem_reg : m_bytes;
wire [23:0] e_psn = e_active_reg ? e_psn_reg : m_cpsn;
wire [12:0] e_pmtu = 13'd1 << m_log;
wire e_last = e_rem <= {{(CHB_W-13){1'b0}}, e_pmtu};
wire [12:0] e_pay = e_last ? e_rem[12:0] : e_pmtu;
wire e_need_arr = e_pay != 13'd0;
wire e_err_before = (e_active_reg || m_cont) && e_err_reg;
wire e_err = e_err_before || (e_need_arr && arr_m_data);
wire e_mfirst = !e_active_reg && m_mfirst;
wire e_mlast = e_last && m_mend;
reg [7:0] e_opcode;
always @* begin
    if (e_mfirst) begin
        e_opcode = e_mlast ? OP_SEND_ONLY : OP_SEND_FIRST;
    end else begin
        e_opcode = e_mlast ? OP_SEND_LAST : OP_SEND_MIDDLE;
    end
end

wire len_s_ready;
wire rec_s_ready;
wire tx_fire = tx_valid_reg && m_tx_ready;
// A packet: once its payload is in the buffer, with the output register empty (so the length
// FIFO gets one push at a time), and room for its record. A stale
// packet the same way, but dropped. A WQE that sends nothing: its record.
wire e_go = msg_m_valid && m_status == MS_OK && !tx_valid_reg && (!e_need_arr || arr_m_valid)
    && len_s_ready;
wire e_send = e_go && !m_stale && rec_s_ready;
wire e_drop = e_go && m_stale;
wire e_fail = msg_m_valid && m_status != MS_OK && (m_stale || rec_s_ready);
assign arr_pop = (e_send || e_drop) && e_need_arr;
assign msg_pop = ((e_send || e_drop) && e_last) || e_fail;

reg rec_push;
reg [REC_W-1:0] rec_in;
reg len_push;
reg [13:0] len_in;

always @* begin
    e_active_next = e_active_reg;
    e_rem_next = e_rem_reg;
    e_psn_next = e_psn_reg;
    e_err_next = e_err_reg;
    tx_valid_next = tx_valid_reg && !m_tx_ready;
    tx_dmac_next = tx_dmac_reg;
    tx_dip_next = tx_dip_reg;
    tx_sport_next = tx_sport_reg;
    tx_opcode_next = tx_opcode_reg;
    tx_se_next = tx_se_reg;
    tx_dest_qp_next = tx_dest_qp_reg;
    tx_ack_req_next = tx_ack_req_reg;
    tx_psn_next = tx_psn_reg;
    tx_pay_len_next = tx_pay_len_reg;
    rec_push = 1'b0;
    rec_in = {m_qpn, e_mlast, m_idx, m_first, e_psn + 24'd1, m_sig,
        (e_mlast && e_err) ? SAN_CQE_STATUS_DMA_ERROR : SAN_CQE_STATUS_OK, 1'b0, gen_mem[m_qpn]};
    len_push = 1'b0;
    len_in = {1'b0, tx_pay_len_reg};

    if (e_send || e_drop) begin
        e_active_next = !e_last;
        e_rem_next = e_rem - {{(CHB_W-13){1'b0}}, e_pay};
        e_psn_next = e_psn + 24'd1;
        e_err_next = e_err;
    end
    if (e_send) begin
        tx_valid_next = 1'b1;
        tx_dmac_next = m_dmac;
        tx_dip_next = m_dip;
        tx_sport_next = m_sport;
        tx_opcode_next = e_opcode;
        tx_se_next = e_mlast && m_sol;
        tx_dest_qp_next = m_dest_qpn;
        tx_ack_req_next = e_last;
        tx_psn_next = e_psn;
        tx_pay_len_next = e_pay;
        rec_push = 1'b1;
    end
    if (e_drop && e_need_arr) begin
        // Its payload is read out of the buffer and thrown away.
        len_push = 1'b1;
        len_in = {1'b1, e_pay};
    end
    if (e_fail && !m_stale) begin
        rec_push = 1'b1;
        rec_in = {m_qpn, 1'b1, m_idx, m_first, m_first, m_sig,
            m_status == MS_DMA ? SAN_CQE_STATUS_DMA_ERROR : SAN_CQE_STATUS_BAD_WQE, 1'b0, gen_mem[m_qpn]};
    end
    if (tx_fire && tx_pay_len_reg != 13'd0) begin
        len_push = 1'b1;
    end
end

always @(posedge clk) begin
    e_active_reg <= e_active_next;
    e_rem_reg <= e_rem_next;
    e_psn_reg <= e_psn_next;
    e_err_reg <= e_err_next;
    tx_valid_reg <= tx_valid_next;
    tx_dmac_reg <= tx_dmac_next;
    tx_dip_reg <= tx_dip_next;
    tx_sport_reg <= tx_sport_next;
    tx_opcode_reg <= tx_opcode_next;
    tx_se_reg <= tx_se_next;
    tx_dest_qp_reg <= tx_dest_qp_next;
    tx_ack_req_reg <= tx_ack_req_next;
    tx_psn_reg <= tx_psn_next;
    tx_pay_len_reg <= tx_pay_len_next;
    if (rst) begin
        e_active_reg <= 1'b0;
        e_err_reg <= 1'b0;
        tx_valid_reg <= 1'b0;
    end
end

assign m_tx_dst_mac = tx_dmac_reg;
assign m_tx_dst_ip = tx_dip_reg;
assign m_tx_udp_sport = tx_sport_reg;
assign m_tx_opcode = tx_opcode_reg;
assign m_tx_se = tx_se_reg;
assign m_tx_dest_qp = tx_dest_qp_reg;
assign m_tx_ack_req = tx_ack_req_reg;
assign m_tx_psn = tx_psn_reg;
assign m_tx_ext = 2'd0;
assign m_tx_ext0 = 32'd0;
assign m_tx_ext1 = 24'd0;
assign m_tx_pay_len = tx_pay_len_reg;
assign m_tx_valid = tx_valid_reg;

// --- flush generator -----------------------------------------------------------------------------

// The cycle after a flush load, ctx_q and idx_q hold the old context: the range is the old
// producer index back to the completer's cidx (none for a connection that was not ready). Then
// one record a cycle in which the emitter pushes none.
reg fl_cap_next, fl_act_next;
reg [QPN_W-1:0] fl_qpn_reg, fl_qpn_next;
reg [15:0] fl_idx_reg, fl_idx_next;
reg [15:0] fl_end_reg, fl_end_next;
wire fl_push = fl_act_reg && !rec_push && rec_s_ready;
wire fl_more = fl_idx_reg != fl_end_reg;

always @* begin
    fl_cap_next = ld && ctx_load_flush;
    fl_act_next = fl_act_reg;
    fl_qpn_next = fl_qpn_reg;
    fl_idx_next = fl_idx_reg;
    fl_end_next = fl_end_reg;
    if (ld && ctx_load_flush) begin
        fl_qpn_next = ctx_load_qpn;
        fl_idx_next = cidx_mem[ctx_load_qpn];
    end
    if (fl_cap_reg) begin
        fl_act_next = 1'b1;
        fl_end_next = c_rts ? c_pi : fl_idx_reg;
    end
    if (fl_push) begin
        fl_idx_next = fl_idx_reg + 16'd1;
        fl_act_next = fl_more;
    end
end

always @(posedge clk) begin
    fl_cap_reg <= fl_cap_next;
    fl_act_reg <= fl_act_next;
    fl_qpn_reg <= fl_qpn_next;
    fl_idx_reg <= fl_idx_next;
    fl_end_reg <= fl_end_next;
    if (rst) begin
        fl_cap_reg <= 1'b0;
        fl_act_reg <= 1'b0;
    end
end

wire [REC_W-1:0] fl_rec = {fl_qpn_reg, fl_more, fl_idx_reg, 24'd0, 24'd0, 1'b0,
    SAN_CQE_STATUS_FLUSHED, 1'b1, 4'd0};

san_sync_fifo #(
    .WIDTH(REC_W),
    .DEPTH(REC_DEPTH)
) rec_fifo_inst (
    .clk(clk),
    .rst(rst),
    .s_data(rec_push ? rec_in : fl_rec),
    .s_valid(rec_push || fl_push),
    .s_ready(rec_s_ready),
    .m_data({m_rec_qpn, m_rec_last, m_rec_idx, m_rec_first_psn, m_rec_end_psn, m_rec_signaled,
        m_rec_status, m_rec_flush, m_rec_gen}),
    .m_valid(m_rec_valid),
    .m_ready(m_rec_ready)
);

// --- payload out ---------------------------------------------------------------------------------

// Per packet with payload, handed over or dropped: {drop, payload bytes}.
wire [13:0] len_m_data;
wire len_m_valid;
wire len_pop;

san_sync_fifo #(
    .WIDTH(14),
    .DEPTH(LEN_DEPTH)
) len_fifo_inst (
    .clk(clk),
    .rst(rst),
    .s_data(len_in),
    .s_valid(len_push),
    .s_ready(len_s_ready),
    .m_data(len_m_data),
    .m_valid(len_m_valid),
    .m_ready(len_pop)
);

reg [PBEAT_W-1:0] r_beat_reg = {PBEAT_W{1'b0}}, r_beat_next;   // beat of the packet to read
reg pay_valid_reg = 1'b0, pay_valid_next;
reg pay_last_reg = 1'b0, pay_last_next;
reg [BYTES-1:0] pay_keep_reg = {BYTES{1'b0}}, pay_keep_next;

wire r_drop = len_m_data[13];
wire [12:0] r_len = len_m_data[12:0];
wire [12:0] r_len_m1 = r_len - 13'd1;
wire r_last = r_beat_reg == r_len_m1[12:LANE_BITS];
wire [LANE_BITS:0] r_last_n = {1'b0, r_len_m1[LANE_BITS-1:0]} + 1'b1;
wire r_free = !pay_valid_reg || m_axis_pay_tready;
wire pay_fire = pay_valid_reg && m_axis_pay_tready;
assign rd_en = len_m_valid && (r_drop || r_free);
// A dropped packet's beats are skipped, not read: buf_q may hold the payload beat waiting for
// ready.
assign buf_re = rd_en && !r_drop;
assign len_pop = rd_en && r_last;

always @* begin
    r_beat_next = r_beat_reg;
    buf_rd_next = buf_rd_reg;
    pay_valid_next = pay_valid_reg && !m_axis_pay_tready;
    pay_last_next = pay_last_reg;
    pay_keep_next = pay_keep_reg;
    if (rd_en) begin
        buf_rd_next = buf_rd_reg + 1'b1;
        r_beat_next = r_last ? {PBEAT_W{1'b0}} : r_beat_reg + 1'b1;
    end
    if (rd_en && !r_drop) begin
        pay_valid_next = 1'b1;
        pay_last_next = r_last;
        pay_keep_next = r_last ? lanes_below(r_last_n) : {BYTES{1'b1}};
    end
end

always @(posedge clk) begin
    r_beat_reg <= r_beat_next;
    buf_rd_reg <= buf_rd_next;
    pay_valid_reg <= pay_valid_next;
    pay_last_reg <= pay_last_next;
    pay_keep_reg <= pay_keep_next;
    if (rst) begin
        r_beat_reg <= {PBEAT_W{1'b0}};
        buf_rd_reg <= {BUF_AW{1'b0}};
        pay_valid_reg <= 1'b0;
    end
end

assign m_axis_pay_tdata = mask_lanes(buf_q, pay_keep_reg);
assign m_axis_pay_tkeep = pay_keep_reg;
assign m_axis_pay_tvalid = pay_valid_reg;
assign m_axis_pay_tlast = pay_last_reg;

// Bits nothing reads: keep (beats are whole but the last, whose length is known), the WQE
// fields and flags this engine does not use, and the FIFOs' status that sizing makes constant.
wire unused_sq = &{1'b0, s_axis_dma_rd_tkeep, wqe_flags, ord_s_ready_unused, wqe_s_ready_unused,
    arr_s_ready_unused, w_npk_m1[31:24], w_wr_id, pay_fire, c_left[31:7], c_rem_m1[31:0]};

endmodule

`resetall

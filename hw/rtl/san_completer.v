// SPDX-License-Identifier: MIT
// san_completer: the requester's completer for RoCEv2 RC: per connection, the acknowledgement state
// of what san_sq_engine has sent. It takes the sq engine's send records and the ACK/NAKs the rq
// engine forwards, completes send WQEs in order, runs the retransmit and RNR timers and the retry
// counters, and tells the sq engine to go back (go-back-N) or to hold.

`resetall
`timescale 1ns / 1ps
`default_nettype none

// Ports (PSNs are 24 bits, compared modulo 2^24: a <= b when (b - a) mod 2^24 < 2^23):
//   ctx_load_*  a connection's context: rts, first PSN, retry_cnt, rnr_retry (7 = unlimited),
//               timeout (retransmit after 4.096 us << timeout; 0 = never). Taken in a cycle with
//               ctx_load_en, which comes only with ctx_load_ready (high exactly in ST_IDLE).
//   s_rec_*     one record per packet the sq engine hands to the transmitter, in that order:
//               end_psn = the PSN after the packet; on the last (s_rec_last) also the WQE's ring
//               index, first PSN, signaled flag and completion status (a WQE that sends nothing,
//               e.g. BAD_WQE, is one record with last = 1 and end_psn = first_psn).
//               flush = 1: a stopped connection's flush (after a load with ctx_load_flush, from the
//               oldest incomplete WQE to the producer index): with last = 1, a FLUSHED CQE for idx
//               at once (whatever the state); with last = 0, the end of the flush, passed on as
//               an end marker (m_cqe_flush) behind every CQE before it. gen: the generation
//               of the latest command the sq engine had taken when it made the record (0 after
//               a load).
//   s_ack_*     AETH of each ACK/NAK received for a connection in RTS (PSN and syndrome; the MSN
//               is not needed: the PSN says everything an in-order sender needs).
//   m_rw_*      to the sq engine: hold = 0: drop what is in flight and send again from packet pkt
//               of the WQE at ring index idx whose first PSN is psn; hold = 1: drop what is in
//               flight and send nothing until the next command. gen: the command's generation,
//               one more than the last (mod 16, from 0 at a load), which the sq engine copies
//               into every record it makes after taking the command.
//   m_una_*     to the sq engine, no backpressure: the oldest unacknowledged PSN and the ring
//               index of the oldest incomplete WQE, sent whenever an event changed either.
//   m_cqe_*     send completions (wqe_index, status) to the CQ writer; flush: an end marker.
//   m_err_*     one report per connection that enters the error state (its failed WQE's status),
//               for the connection manager, which ends the connection; sent with the error CQE.
//   s_query_*   the CSR block's state query; m_query_* answers {rts, err} the cycle after.
//   stat_*      one-cycle pulses: retransmit timer expiries, PSN-sequence NAKs acted on with a
//               retry, RNR NAKs acted on with a wait, ACK/NAKs ignored (stale, duplicate, unknown).
//
// Structure: one event at a time on a per-connection context table (simple dual-port block RAM,
// read-modify-write) and an entry table of recorded WQEs ({end_psn, signaled, status} at slot
// {qpn, index mod MSG_WINDOW}), so no forwarding is needed:
//   ST_INIT  after reset, every connection to not-RTS, one per cycle (N_QP cycles)
//   ST_IDLE  takes a context load (written at once), else starts an event: a record (first), an
//            ACK/NAK, or an expired timer found by the scan; with nothing to take, a scan step
//   ST_EVT   the context is out of the RAM: apply the event to it (a record's entry is written
//            here), and read the entry of the oldest incomplete WQE
//   ST_CMP   complete WQEs in order while the oldest is acknowledged (one per cycle, a CQE each
//            when signaled or failed, into a small FIFO); then write the context back, send
//            m_una, the error CQE and the go-back/hold command, and return to ST_IDLE
// An event costs 3 cycles plus one per completed WQE (more while the CQE FIFO or m_rw is full);
// ctx_load_ready is low for all but the first. The statistics pulse 2 cycles after the event is
// taken; m_una and m_rw come the cycle after ST_CMP. s_query_ready is high from the end of ST_INIT.
//
// Timers: the shell's time in 1.024 us ticks (time_tick, a free-running 32-bit count that never
// goes back). Each connection has one timer (retransmit or RNR wait) with a deadline; it has
// expired when (now - deadline), signed, is >= 0. A scan step reads the next connection's context
// in ST_IDLE and checks it in the next ST_IDLE cycle, where an expired timer becomes the event.
// With nothing else to do the scan visits one connection per cycle; under a stream of events, a
// scan step is forced after every SCAN_EVERY events. So an expired timer fires within
// (N_QP + 1) * (SCAN_EVERY + 1) ST_IDLE cycles, N_QP + 1 cycles on an idle block. Deadlines count
// from the tick of the event's ST_EVT cycle, so a wait of T ticks lasts T - 1 to T ticks plus the
// scan.
//
// Parking: once N_QP scan checks in a row have found nothing expired with no event in between
// (every connection seen since the last change), the scan stops (m_parked) with the earliest
// deadline it saw (m_wake_valid, m_wake_tick), and the block's state stops changing. It resumes
// at the first event or context load, or when time reaches that deadline. So an idle block holds
// still until its next deadline, and a simulator may move the time of an idle NIC forward to it;
// the scan then finds the expired timer within N_QP + 1 cycles as before.
//
// Semantics per event (rts and not in error; otherwise an event is ignored and not counted):
//   record   hw = end_psn if after hw. A last record whose idx == ridx and first_psn == rpsn,
//            with ridx - cidx < MSG_WINDOW, is written at ridx (ridx++, rpsn = end_psn); any
//            other (a re-send after go-back-N, a stale one) is ignored. Then, if the timer is off,
//            timeout != 0 and una != hw, the retransmit timer starts.
//   ACK      p in [una, hw-1]: progress to una = p + 1; p == una - 1 (duplicate) or outside:
//            ignored, counted.
//   NAK seq  p in [una, hw-1]: progress to p if p != una; a repeat for the same una is ignored
//            (nak_done), and so is one for una during an RNR wait; then a retry (retry_left--, go-back-N, timer restarted) or, with none
//            left, RETRY_EXCEEDED.
//   RNR NAK  p in [una, hw-1] and not a repeat of a running wait for p == una: progress to p; then
//            HOLD and an RNR wait of the code's time (rnr_left--, unless rnr_retry is 7), or, with
//            none left, RNR_RETRY_EXCEEDED. The wait's expiry goes back to una and restarts the
//            retransmit timer.
//   NAK 1..3 p in [una, hw-1]: progress to p, then REMOTE_INVALID_REQUEST / REMOTE_ACCESS_ERROR /
//            REMOTE_OP_ERROR. Other syndromes (type 10, NAK codes 4..31, reserved bit 7 set):
//            ignored, counted.
//   timeout  a retry (retry_left--, nak_done = 0, go-back-N, timer restarted) or RETRY_EXCEEDED.
// The resend point: {sidx, spsn}, the next WQE to record and the PSN after the latest packet, from
// the records of the current generation (set to {cidx, una} by every command, {0, first PSN} by
// a load; records of an older generation, queued before the command was taken, are ignored, as
// is one that does not follow on: end PSN spsn + 1, or spsn for a WQE that sends nothing).
// The sq engine never fetches a WQE behind cidx nor sends a chunk behind una: it waits. So after
// every event that leaves the connection live, not held (RNR wait) and with no command of its
// own, if cidx is after sidx or una after spsn (acknowledgements of a first sending arriving
// after a go-back and passing the point being resent), the completer goes back again: forward,
// {idx = cidx, psn = cpsn, pkt = una - cpsn}, so the sq engine skips what is complete.
// Progress resets retry_left, rnr_left and nak_done and restarts the retransmit timer (so it also
// ends an RNR wait, as does a PSN-sequence NAK that acts). "Restart" means: on, deadline
// now + 4 << timeout ticks (at most 2^31 - 1), if timeout != 0 and una != hw; else off. Go-back-N sends {idx = cidx, psn = cpsn, pkt = una - cpsn} after completion. An error
// completes the oldest incomplete WQE (cidx) with its status and moves cidx past it (m_una says so,
// so a flush starts after it), stops the timer, sends HOLD, reports
// {qpn, status} on m_err (the connection manager ends the connection) and leaves the connection in
// err, where it ignores everything until a context load.
module san_completer #(
    // Connections; a power of two from 2 to 4096.
    parameter N_QP = 256,
    // Recorded, not yet completed WQEs per connection (the entry table holds N_QP * MSG_WINDOW);
    // a power of two from 2 to 256. The sq engine must not run further ahead (it sees cidx).
    parameter MSG_WINDOW = 32,
    // Under a stream of events, one timer-scan step is forced after every SCAN_EVERY events; 1..15.
    parameter SCAN_EVERY = 4
) (
    input  wire                    clk,
    input  wire                    rst,

    // The shell's time in 1.024 us ticks (never goes back)
    input  wire [31:0]             time_tick,

    // The scan has stopped (see Parking), with the earliest running timer's deadline, if any
    output wire                    m_parked,
    output wire                    m_wake_valid,
    output wire [31:0]             m_wake_tick,

    // Context load
    input  wire                    ctx_load_en,
    output wire                    ctx_load_ready,
    input  wire [$clog2(N_QP)-1:0] ctx_load_qpn,
    input  wire                    ctx_load_rts,
    input  wire [23:0]             ctx_load_sq_psn,
    input  wire [2:0]              ctx_load_retry_cnt,
    input  wire [2:0]              ctx_load_rnr_retry,
    input  wire [4:0]              ctx_load_timeout,

    // Send records from the sq engine
    input  wire [$clog2(N_QP)-1:0] s_rec_qpn,
    input  wire                    s_rec_last,
    input  wire [15:0]             s_rec_idx,
    input  wire [23:0]             s_rec_first_psn,
    input  wire [23:0]             s_rec_end_psn,
    input  wire                    s_rec_signaled,
    input  wire [7:0]              s_rec_status,
    input  wire                    s_rec_flush,
    input  wire [3:0]              s_rec_gen,
    input  wire                    s_rec_valid,
    output wire                    s_rec_ready,

    // ACK/NAKs from the rq engine
    input  wire [$clog2(N_QP)-1:0] s_ack_qpn,
    input  wire [23:0]             s_ack_psn,
    input  wire [7:0]              s_ack_syndrome,
    input  wire [23:0]             s_ack_msn,
    input  wire                    s_ack_valid,
    output wire                    s_ack_ready,

    // Go-back-N and hold commands to the sq engine
    output wire [$clog2(N_QP)-1:0] m_rw_qpn,
    output wire                    m_rw_hold,
    output wire [3:0]              m_rw_gen,
    output wire [15:0]             m_rw_idx,
    output wire [23:0]             m_rw_psn,
    output wire [23:0]             m_rw_pkt,
    output wire                    m_rw_valid,
    input  wire                    m_rw_ready,

    // Progress to the sq engine (no backpressure)
    output wire [$clog2(N_QP)-1:0] m_una_qpn,
    output wire [23:0]             m_una_psn,
    output wire [15:0]             m_una_idx,
    output wire                    m_una_valid,

    // Send completions to the CQ writer
    output wire [$clog2(N_QP)-1:0] m_cqe_qpn,
    output wire [15:0]             m_cqe_wqe_index,
    output wire [7:0]              m_cqe_status,
    output wire                    m_cqe_flush,
    output wire                    m_cqe_valid,
    input  wire                    m_cqe_ready,

    // Transport failures to the connection manager
    output wire [$clog2(N_QP)-1:0] m_err_qpn,
    output wire [7:0]              m_err_status,
    output wire                    m_err_valid,
    input  wire                    m_err_ready,

    // State query from the CSR block
    input  wire [$clog2(N_QP)-1:0] s_query_qpn,
    input  wire                    s_query_valid,
    output wire                    s_query_ready,
    output wire                    m_query_rts,
    output wire                    m_query_err,
    output wire                    m_query_valid,

    // Statistics: one-cycle pulses
    output wire                    stat_timeout,
    output wire                    stat_seq_nak,
    output wire                    stat_rnr_nak,
    output wire                    stat_ack_ignored
);

`include "san_regs.vh"

localparam integer QPN_W = $clog2(N_QP);
localparam integer WIN_W = $clog2(MSG_WINDOW);
localparam integer EVC_W = $clog2(SCAN_EVERY + 1);
localparam [15:0] WINDOW = MSG_WINDOW[15:0];
localparam integer CQE_DEPTH = 4;

initial begin
    if (N_QP < 2 || N_QP > 4096 || (N_QP & (N_QP - 1)) != 0) begin
        $error("san_completer: N_QP must be a power of two from 2 to 4096");
        $finish;
    end
    if (MSG_WINDOW < 2 || MSG_WINDOW > 256 || (MSG_WINDOW & (MSG_WINDOW - 1)) != 0) begin
        $error("san_completer: MSG_WINDOW must be a power of two from 2 to 256");
        $finish;
    end
    if (SCAN_EVERY < 1 || SCAN_EVERY > 15) begin
        $error("san_completer: SCAN_EVERY must be from 1 to 15");
        $finish;
    end
end

// a <= b for PSNs.
function psn_le;
    input [23:0] a;
    input [23:0] b;
    reg [23:0] d;
    begin
        d = b - a;
        psn_le = d < 24'h800000;
    end
endfunction

// RNR wait of each timer code (the IBA table, rxe's rnrnak_usec, in units of 10 us) in ticks,
// rounded up: a constant table.
function integer rnr_ticks;
    input integer code;
    integer units;
    begin
        case (code)
            0: units = 65536;  1: units = 1;      2: units = 2;      3: units = 3;
            4: units = 4;      5: units = 6;      6: units = 8;      7: units = 12;
            8: units = 16;     9: units = 24;     10: units = 32;    11: units = 48;
            12: units = 64;    13: units = 96;    14: units = 128;   15: units = 192;
            16: units = 256;   17: units = 384;   18: units = 512;   19: units = 768;
            20: units = 1024;  21: units = 1536;  22: units = 2048;  23: units = 3072;
            24: units = 4096;  25: units = 6144;  26: units = 8192;  27: units = 12288;
            28: units = 16384; 29: units = 24576; 30: units = 32768; default: units = 49152;
        endcase
        // 10 us / 1.024 us = 625 / 64
        rnr_ticks = (units * 625 + 63) / 64;
    end
endfunction

wire [32*20-1:0] rnr_rom;

genvar g;
generate
    for (g = 0; g < 32; g = g + 1) begin : g_rnr
        localparam integer TICKS = rnr_ticks(g);
        assign rnr_rom[20*g +: 20] = TICKS[19:0];
    end
endgenerate

// --- time -----------------------------------------------------------------------------------------

wire [31:0] now_reg = time_tick;

// Parking (see the header): clean scan checks since the last event, and the earliest deadline
// among the running timers they saw.
reg             pk_reg = 1'b0, pk_next;
reg [QPN_W:0]   pk_cnt_reg = {(QPN_W+1){1'b0}}, pk_cnt_next;
reg             pk_vld_reg = 1'b0, pk_vld_next;
reg [31:0]      pk_dl_reg = 32'd0, pk_dl_next;
wire [31:0]     pk_late = now_reg - pk_dl_reg;
wire            pk_due = pk_vld_reg && pk_late < 32'h8000_0000;

assign m_parked = pk_reg;
assign m_wake_valid = pk_reg && pk_vld_reg;
assign m_wake_tick = pk_dl_reg;

// --- the context table ----------------------------------------------------------------------------
// One entry per connection (field offsets below).
localparam integer C_RTS = 0;               // ready to send
localparam integer C_ERR = 1;               // in error: ignores everything until a load
localparam integer C_UNA = 2;               // oldest unacknowledged PSN
localparam integer C_HW = C_UNA + 24;       // PSN after the highest PSN known sent
localparam integer C_CIDX = C_HW + 24;      // ring index of the oldest incomplete WQE
localparam integer C_CPSN = C_CIDX + 16;    // its first PSN
localparam integer C_RIDX = C_CPSN + 24;    // ring index of the next WQE to record
localparam integer C_RPSN = C_RIDX + 16;    // its first PSN
localparam integer C_RETRY = C_RPSN + 24;   // retries left
localparam integer C_RNR = C_RETRY + 3;     // RNR retries left
localparam integer C_RCNT = C_RNR + 3;      // configured retry_cnt
localparam integer C_RNRR = C_RCNT + 3;     // configured rnr_retry
localparam integer C_TMO = C_RNRR + 3;      // configured timeout
localparam integer C_TON = C_TMO + 5;       // timer running
localparam integer C_TRNR = C_TON + 1;      // 1: it is an RNR wait, 0: the retransmit timer
localparam integer C_DL = C_TRNR + 1;       // its deadline (ticks)
localparam integer C_NAKD = C_DL + 32;      // a PSN-sequence NAK for this una was acted on
localparam integer C_GEN = C_NAKD + 1;      // generation of the latest command (0 after a load)
localparam integer C_SIDX = C_GEN + 4;      // the resend point: the next WQE the sq engine records,
localparam integer C_SPSN = C_SIDX + 16;    // and the PSN after its latest packet, in this generation
localparam integer CTX_W = C_SPSN + 24;

reg [CTX_W-1:0] ctx_mem [0:N_QP-1];
reg [CTX_W-1:0] ctx_q;              // the entry read in the previous cycle
reg             ctx_re;
reg [QPN_W-1:0] ctx_raddr;
reg             ctx_we;
reg [QPN_W-1:0] ctx_waddr;
reg [CTX_W-1:0] ctx_wdata;

always @(posedge clk) begin
    if (ctx_we) begin
        ctx_mem[ctx_waddr] <= ctx_wdata;
    end
    if (ctx_re) begin
        ctx_q <= ctx_mem[ctx_raddr];
    end
end

// {err, rts} again, for queries: their own read port.
reg [1:0] qst_mem [0:N_QP-1];
reg [1:0] qst_q;

always @(posedge clk) begin
    if (ctx_we) begin
        qst_mem[ctx_waddr] <= {ctx_wdata[C_ERR], ctx_wdata[C_RTS]};
    end
    if (s_query_valid && s_query_ready) begin
        qst_q <= qst_mem[s_query_qpn];
    end
end

wire        e_rts = ctx_q[C_RTS];
wire        e_err = ctx_q[C_ERR];
wire [23:0] e_una = ctx_q[C_UNA +: 24];
wire [23:0] e_hw = ctx_q[C_HW +: 24];
wire [15:0] e_cidx = ctx_q[C_CIDX +: 16];
wire [15:0] e_ridx = ctx_q[C_RIDX +: 16];
wire [23:0] e_rpsn = ctx_q[C_RPSN +: 24];
wire [2:0]  e_retry = ctx_q[C_RETRY +: 3];
wire [2:0]  e_rnr = ctx_q[C_RNR +: 3];
wire [2:0]  e_rcnt = ctx_q[C_RCNT +: 3];
wire [2:0]  e_rnrr = ctx_q[C_RNRR +: 3];
wire [4:0]  e_tmo = ctx_q[C_TMO +: 5];
wire        e_ton = ctx_q[C_TON];
wire        e_trnr = ctx_q[C_TRNR];
wire [31:0] e_dl = ctx_q[C_DL +: 32];
wire        e_nakd = ctx_q[C_NAKD];
wire [3:0]  e_gen = ctx_q[C_GEN +: 4];
wire [15:0] e_sidx = ctx_q[C_SIDX +: 16];
wire [23:0] e_spsn = ctx_q[C_SPSN +: 24];

wire [31:0] e_late = now_reg - e_dl;
wire        e_expired = e_rts && !e_err && e_ton && e_late < 32'h8000_0000;

// --- the entry table ------------------------------------------------------------------------------
// One entry per recorded WQE: {status, signaled, end_psn}.
localparam integer ENT_W = 33;

reg [ENT_W-1:0]       ent_mem [0:N_QP*MSG_WINDOW-1];
reg [ENT_W-1:0]       ent_q;
reg                   ent_re;
reg [QPN_W+WIN_W-1:0] ent_raddr;
reg                   ent_we;
reg [QPN_W+WIN_W-1:0] ent_waddr;
reg [ENT_W-1:0]       ent_wdata;

always @(posedge clk) begin
    if (ent_we) begin
        ent_mem[ent_waddr] <= ent_wdata;
    end
    if (ent_re) begin
        ent_q <= ent_mem[ent_raddr];
    end
end

// --- the event state machine ------------------------------------------------------------------------

localparam [1:0]
    ST_INIT = 2'd0,   // after reset: each connection in turn to not-RTS, one per cycle
    ST_IDLE = 2'd1,   // takes a load, or starts an event (record, ACK, expired timer), or scans
    ST_EVT = 2'd2,    // the context is read: apply the event, read the oldest WQE's entry
    ST_CMP = 2'd3;    // complete acknowledged WQEs, then write back and send the results

localparam [1:0]
    OP_REC = 2'd0,
    OP_ACK = 2'd1,
    OP_TMR = 2'd2;

reg [1:0]       state_reg = ST_INIT, state_next;
reg [QPN_W-1:0] init_qpn_reg = {QPN_W{1'b0}}, init_qpn_next;
reg [QPN_W-1:0] scan_qpn_reg = {QPN_W{1'b0}}, scan_qpn_next;   // the next connection to check
reg             scan_vld_reg = 1'b0, scan_vld_next;             // ctx_q holds scan_qpn_reg's
reg [EVC_W-1:0] evc_reg = {EVC_W{1'b0}}, evc_next;              // events since the last scan step

// The event in hand.
reg [1:0]       op_kind_reg, op_kind_next;
reg [QPN_W-1:0] op_qpn_reg, op_qpn_next;
reg [23:0]      op_psn_reg, op_psn_next;         // ACK: its PSN; record: end_psn
reg [23:0]      op_first_reg, op_first_next;
reg [15:0]      op_idx_reg, op_idx_next;
reg             op_last_reg, op_last_next;
reg             op_sig_reg, op_sig_next;
reg [7:0]       op_status_reg, op_status_next;   // record: its status
reg [7:0]       op_syn_reg, op_syn_next;
reg [3:0]       op_gen_reg, op_gen_next;         // record: the generation it was made in

// The context as the event leaves it (cidx and cpsn move on in ST_CMP), and what it asks for.
reg [CTX_W-1:0] wk_reg, wk_next;
reg             skip_reg, skip_next;             // connection not live: nothing to do or write
reg             gbn_reg, gbn_next;               // go back to una
reg             hold_reg, hold_next;             // hold (RNR wait)
reg             fail_reg, fail_next;             // error, with fail_status
reg [7:0]       fail_status_reg, fail_status_next;
reg             byp_reg, byp_next;               // the oldest WQE's entry was written in ST_EVT:
reg [ENT_W-1:0] byp_data_reg, byp_data_next;     // use this, not ent_q

// Outputs.
reg             rw_valid_reg = 1'b0, rw_valid_next;
reg [QPN_W+68:0] rw_reg, rw_next;                // {qpn, hold, gen, idx, psn, pkt}
reg             una_valid_reg = 1'b0, una_valid_next;
reg [QPN_W+39:0] una_reg, una_next;              // {qpn, psn, idx}
reg             query_valid_reg = 1'b0;
reg             err_valid_reg = 1'b0, err_valid_next;
reg [QPN_W+7:0] err_reg, err_next;                // {qpn, status}
reg             st_to_reg = 1'b0, st_to_next;
reg             st_seq_reg = 1'b0, st_seq_next;
reg             st_rnr_reg = 1'b0, st_rnr_next;
reg             st_ign_reg = 1'b0, st_ign_next;

// Completions, queued for the CQ writer: {qpn, wqe_index, status, end of a flush}.
localparam integer CQE_W = QPN_W + 25;

reg              cqe_push;
reg [CQE_W-1:0]  cqe_in;
wire             cqe_room;
wire [CQE_W-1:0] cqe_out;

assign {m_cqe_qpn, m_cqe_wqe_index, m_cqe_status, m_cqe_flush} = cqe_out;

san_sync_fifo #(
    .WIDTH(CQE_W),
    .DEPTH(CQE_DEPTH)
) cqe_fifo_inst (
    .clk(clk),
    .rst(rst),
    .s_data(cqe_in),
    .s_valid(cqe_push),
    .s_ready(cqe_room),
    .m_data(cqe_out),
    .m_valid(m_cqe_valid),
    .m_ready(m_cqe_ready)
);

// ST_IDLE's choice: a load first (san_csr raises it only when we are ready); an expired timer the
// scan found; then records before ACKs (a packet's record enters before its ACK can come back),
// unless a scan step is due.
wire idle = state_reg == ST_IDLE;
wire scan_due = evc_reg >= SCAN_EVERY[EVC_W-1:0];
wire fire_tmr = idle && !ctx_load_en && scan_vld_reg && e_expired;
wire can_take = idle && !ctx_load_en && !fire_tmr && !scan_due;
// A flush record is a CQE (or end marker) at once: it needs room in the CQE FIFO.
wire take_rec = can_take && s_rec_valid && (!s_rec_flush || cqe_room);
wire take_ack = can_take && !s_rec_valid && s_ack_valid;

assign ctx_load_ready = idle;
assign s_rec_ready = take_rec;
assign s_ack_ready = take_ack;
assign s_query_ready = state_reg != ST_INIT;

assign {m_rw_qpn, m_rw_hold, m_rw_gen, m_rw_idx, m_rw_psn, m_rw_pkt} = rw_reg;
assign m_rw_valid = rw_valid_reg;
assign {m_una_qpn, m_una_psn, m_una_idx} = una_reg;
assign m_una_valid = una_valid_reg;
assign {m_err_qpn, m_err_status} = err_reg;
assign m_err_valid = err_valid_reg;
assign m_query_rts = qst_q[0];
assign m_query_err = qst_q[1];
assign m_query_valid = query_valid_reg;
assign stat_timeout = st_to_reg;
assign stat_seq_nak = st_seq_reg;
assign stat_rnr_nak = st_rnr_reg;
assign stat_ack_ignored = st_ign_reg;

// ST_EVT: the event applied to the context (blocking temporaries, in the order of the rules).
reg [23:0] n_una, n_hw, n_ridx_psn, n_spsn;
reg [15:0] n_ridx, n_sidx;
reg [2:0]  n_retry, n_rnr;
reg        n_ton, n_trnr, n_nakd, n_err;
reg [31:0] n_dl;
reg        ev_progress, ev_restart, ev_rnr_wait, ev_gbn, ev_fail, ev_ign;
reg [7:0]  ev_status;

wire [23:0] d_p = op_psn_reg - e_una;         // ACK PSN from una
wire [23:0] d_hw = e_hw - e_una;              // PSNs outstanding
// Bits 6:5 are the type (bit 7 is reserved: a syndrome with it set is not one we know).
wire        syn_ack = op_syn_reg[7:5] == 3'b000;
wire        syn_rnr = op_syn_reg[7:5] == 3'b001;
wire        syn_nak = op_syn_reg[7:5] == 3'b011;
wire [4:0]  syn_code = op_syn_reg[4:0];
wire [31:0] rto = e_tmo >= 5'd29 ? 32'h7FFF_FFFF : 32'd4 << e_tmo;
wire [15:0] e_recorded = e_ridx - e_cidx;    // WQEs recorded, not complete
wire        rec_ok = op_last_reg && op_idx_reg == e_ridx && op_first_reg == e_rpsn
                     && e_recorded < WINDOW;

always @* begin
    n_una = e_una;
    n_hw = e_hw;
    n_ridx = e_ridx;
    n_ridx_psn = e_rpsn;
    n_sidx = e_sidx;
    n_spsn = e_spsn;
    n_retry = e_retry;
    n_rnr = e_rnr;
    n_ton = e_ton;
    n_trnr = e_trnr;
    n_dl = e_dl;
    n_nakd = e_nakd;
    n_err = e_err;
    ev_progress = 1'b0;     // una moves to n_una
    ev_restart = 1'b0;      // restart the retransmit timer
    ev_rnr_wait = 1'b0;     // start an RNR wait and hold
    ev_gbn = 1'b0;
    ev_fail = 1'b0;
    ev_ign = 1'b0;          // an ACK/NAK ignored (counted)
    ev_status = SAN_CQE_STATUS_RETRY_EXCEEDED;

    case (op_kind_reg)
        OP_REC: begin
            if (psn_le(e_hw, op_psn_reg) && op_psn_reg != e_hw) begin
                n_hw = op_psn_reg;
            end
            if (rec_ok) begin
                n_ridx = e_ridx + 16'd1;
                n_ridx_psn = op_psn_reg;
            end
            if (op_gen_reg == e_gen && (op_psn_reg == e_spsn + 24'd1
                    || (op_psn_reg == e_spsn && op_first_reg == e_spsn))) begin
                // Made since the latest command, and next in line (a packet after the latest,
                // or a WQE that sends nothing): where the resend has got to. The records of one
                // generation are contiguous; the test keeps out a stale record of an earlier
                // load (whose generation may be the same) and one 16 generations old.
                n_spsn = op_psn_reg;
                if (op_last_reg) begin
                    n_sidx = op_idx_reg + 16'd1;
                end
            end
            if (!e_ton && e_tmo != 5'd0 && e_una != n_hw) begin
                n_ton = 1'b1;
                n_trnr = 1'b0;
                n_dl = now_reg + rto;
            end
        end
        OP_ACK: begin
            if (syn_ack) begin
                if (d_p != 24'hFFFFFF && d_p < d_hw) begin
                    ev_progress = 1'b1;
                    n_una = op_psn_reg + 24'd1;
                end else begin
                    ev_ign = 1'b1;
                end
            end else if (syn_nak && syn_code == 5'd0) begin
                // Valid for a PSN sent and not acknowledged (a responder NAKs only after
                // receiving a later packet); a repeat for una is ignored, and so is one during
                // an RNR wait (the RNR NAK already named the PSN to resume from).
                if (d_p >= d_hw || (d_p == 24'd0 && (e_nakd || (e_ton && e_trnr)))) begin
                    ev_ign = 1'b1;
                end else begin
                    ev_progress = d_p != 24'd0;
                    n_una = op_psn_reg;
                end
            end else if ((syn_nak && syn_code <= 5'd3) || syn_rnr) begin
                if (d_p >= d_hw || (syn_rnr && e_ton && e_trnr && d_p == 24'd0)) begin
                    ev_ign = 1'b1;
                end else begin
                    ev_progress = d_p != 24'd0;
                    n_una = op_psn_reg;
                end
            end else begin
                ev_ign = 1'b1;
            end
        end
        default: begin
            // OP_TMR: an expired timer.
        end
    endcase

    if (ev_progress) begin
        n_retry = e_rcnt;
        n_rnr = e_rnrr;
        n_nakd = 1'b0;
        ev_restart = 1'b1;
    end

    if (op_kind_reg == OP_ACK && !ev_ign && syn_nak && syn_code == 5'd0) begin
        // PSN sequence error: retry from the PSN the responder expects.
        if (n_retry == 3'd0) begin
            ev_fail = 1'b1;
        end else begin
            n_retry = n_retry - 3'd1;
            n_nakd = 1'b1;
            ev_gbn = 1'b1;
            ev_restart = 1'b1;
        end
    end
    if (op_kind_reg == OP_ACK && !ev_ign && syn_rnr) begin
        if (e_rnrr != 3'd7 && n_rnr == 3'd0) begin
            ev_fail = 1'b1;
            ev_status = SAN_CQE_STATUS_RNR_RETRY_EXCEEDED;
        end else begin
            if (e_rnrr != 3'd7) begin
                n_rnr = n_rnr - 3'd1;
            end
            ev_rnr_wait = 1'b1;
        end
    end
    if (op_kind_reg == OP_ACK && !ev_ign && syn_nak && syn_code != 5'd0) begin
        ev_fail = 1'b1;
        ev_status = syn_code == 5'd1 ? SAN_CQE_STATUS_REMOTE_INVALID_REQUEST
                  : syn_code == 5'd2 ? SAN_CQE_STATUS_REMOTE_ACCESS_ERROR
                  : SAN_CQE_STATUS_REMOTE_OP_ERROR;
    end
    if (op_kind_reg == OP_TMR) begin
        ev_restart = 1'b1;
        if (e_trnr) begin
            ev_gbn = 1'b1;
        end else if (n_retry == 3'd0) begin
            ev_fail = 1'b1;
        end else begin
            n_retry = n_retry - 3'd1;
            n_nakd = 1'b0;
            ev_gbn = 1'b1;
        end
    end

    if (ev_fail) begin
        n_err = 1'b1;
        n_ton = 1'b0;
    end else if (ev_rnr_wait) begin
        n_ton = 1'b1;
        n_trnr = 1'b1;
        n_dl = now_reg + {12'd0, rnr_rom[20*syn_code +: 20]};
    end else if (ev_restart) begin
        n_ton = e_tmo != 5'd0 && n_una != n_hw;
        n_trnr = 1'b0;
        n_dl = now_reg + rto;
    end
end

// ST_CMP: the oldest incomplete WQE and whether it is acknowledged.
wire [15:0]      wk_cidx = wk_reg[C_CIDX +: 16];
wire [23:0]      wk_cpsn = wk_reg[C_CPSN +: 24];
wire [15:0]      wk_ridx = wk_reg[C_RIDX +: 16];
wire [23:0]      wk_una = wk_reg[C_UNA +: 24];
wire [ENT_W-1:0] head = byp_reg ? byp_data_reg : ent_q;
wire [23:0]      head_end = head[23:0];
wire             head_sig = head[24];
wire [7:0]       head_status = head[32:25];
wire             head_done = !skip_reg && wk_cidx != wk_ridx && psn_le(head_end, wk_una);
wire             head_cqe = head_sig || head_status != SAN_CQE_STATUS_OK;
wire             rw_free = !rw_valid_reg || m_rw_ready;
wire             err_free = !err_valid_reg || m_err_ready;
wire [15:0]      wk_cidx_next = wk_cidx + 16'd1;
wire [3:0]       wk_gen_next = wk_reg[C_GEN +: 4] + 4'd1;
// Progress passed the resend point (acknowledgements of a first sending that came after a
// go-back): the sq engine would fetch complete WQEs or resend acknowledged packets, and waits
// instead; go back again, forward to cidx and una. Not while held (an RNR wait ends in a go-back).
wire [15:0]      wk_sbehind = wk_cidx - wk_reg[C_SIDX +: 16];
wire [23:0]      wk_sback = wk_una - wk_reg[C_SPSN +: 24];
wire             fwd = !skip_reg && !gbn_reg && !hold_reg && !fail_reg
                       && !(wk_reg[C_TON] && wk_reg[C_TRNR])
                       && ((wk_sbehind != 16'd0 && !wk_sbehind[15]) || (wk_sback != 24'd0 && !wk_sback[23]));
wire             need_rw = gbn_reg || hold_reg || fail_reg || fwd;

always @* begin
    state_next = state_reg;
    init_qpn_next = init_qpn_reg;
    scan_qpn_next = scan_qpn_reg;
    scan_vld_next = 1'b0;
    evc_next = evc_reg;
    pk_next = pk_reg;
    pk_cnt_next = pk_cnt_reg;
    pk_vld_next = pk_vld_reg;
    pk_dl_next = pk_dl_reg;

    op_kind_next = op_kind_reg;
    op_qpn_next = op_qpn_reg;
    op_psn_next = op_psn_reg;
    op_first_next = op_first_reg;
    op_idx_next = op_idx_reg;
    op_last_next = op_last_reg;
    op_sig_next = op_sig_reg;
    op_status_next = op_status_reg;
    op_syn_next = op_syn_reg;
    op_gen_next = op_gen_reg;

    wk_next = wk_reg;
    skip_next = skip_reg;
    gbn_next = gbn_reg;
    hold_next = hold_reg;
    fail_next = fail_reg;
    fail_status_next = fail_status_reg;
    byp_next = byp_reg;
    byp_data_next = byp_data_reg;

    rw_valid_next = rw_valid_reg && !m_rw_ready;
    rw_next = rw_reg;
    una_valid_next = 1'b0;
    una_next = una_reg;
    err_valid_next = err_valid_reg && !m_err_ready;
    err_next = err_reg;
    st_to_next = 1'b0;
    st_seq_next = 1'b0;
    st_rnr_next = 1'b0;
    st_ign_next = 1'b0;

    ctx_re = 1'b0;
    ctx_raddr = scan_qpn_reg;
    ctx_we = 1'b0;
    ctx_waddr = op_qpn_reg;
    ctx_wdata = wk_reg;
    ent_re = 1'b0;
    ent_raddr = {op_qpn_reg, e_cidx[WIN_W-1:0]};
    ent_we = 1'b0;
    ent_waddr = {op_qpn_reg, e_ridx[WIN_W-1:0]};
    ent_wdata = {op_status_reg, op_sig_reg, op_psn_reg};
    cqe_push = 1'b0;
    cqe_in = {op_qpn_reg, wk_cidx, head_status, 1'b0};

    case (state_reg)
        // Every connection to not-RTS, one per cycle.
        ST_INIT: begin
            ctx_we = 1'b1;
            ctx_waddr = init_qpn_reg;
            ctx_wdata = {CTX_W{1'b0}};
            init_qpn_next = init_qpn_reg + 1'b1;
            if (&init_qpn_reg) begin
                state_next = ST_IDLE;
            end
        end
        // A load is written at once. Else an expired timer (ctx_q holds the connection the scan
        // read last cycle), a record, an ACK: read its context. Else a scan step.
        ST_IDLE: begin
            if (ctx_load_en || fire_tmr || take_rec || take_ack || (pk_reg && pk_due)) begin
                // A change, or a deadline reached: the next pass starts afresh.
                pk_next = 1'b0;
                pk_cnt_next = {(QPN_W+1){1'b0}};
                pk_vld_next = 1'b0;
            end
            if (ctx_load_en) begin
                // The scan result, if any, may be of this connection: dropped, read again later.
                ctx_we = 1'b1;
                ctx_waddr = ctx_load_qpn;
                ctx_wdata = {CTX_W{1'b0}};
                ctx_wdata[C_RTS] = ctx_load_rts;
                ctx_wdata[C_UNA +: 24] = ctx_load_sq_psn;
                ctx_wdata[C_HW +: 24] = ctx_load_sq_psn;
                ctx_wdata[C_CPSN +: 24] = ctx_load_sq_psn;
                ctx_wdata[C_RPSN +: 24] = ctx_load_sq_psn;
                ctx_wdata[C_RETRY +: 3] = ctx_load_retry_cnt;
                ctx_wdata[C_RNR +: 3] = ctx_load_rnr_retry;
                ctx_wdata[C_RCNT +: 3] = ctx_load_retry_cnt;
                ctx_wdata[C_RNRR +: 3] = ctx_load_rnr_retry;
                ctx_wdata[C_TMO +: 5] = ctx_load_timeout;
                ctx_wdata[C_SPSN +: 24] = ctx_load_sq_psn;
            end else if (fire_tmr) begin
                op_kind_next = OP_TMR;
                op_qpn_next = scan_qpn_reg;
                scan_qpn_next = scan_qpn_reg + 1'b1;
                state_next = ST_EVT;
            end else begin
                if (scan_vld_reg) begin
                    // Checked: nothing expired.
                    scan_qpn_next = scan_qpn_reg + 1'b1;
                end
                op_qpn_next = s_rec_qpn;
                op_psn_next = s_rec_end_psn;
                op_first_next = s_rec_first_psn;
                op_idx_next = s_rec_idx;
                op_last_next = s_rec_last;
                op_sig_next = s_rec_signaled;
                op_status_next = s_rec_status;
                op_gen_next = s_rec_gen;
                if (take_rec && s_rec_flush) begin
                    // A flushed WQE or the flush's end: no context involved.
                    cqe_push = 1'b1;
                    cqe_in = {s_rec_qpn, s_rec_idx, SAN_CQE_STATUS_FLUSHED, !s_rec_last};
                end else if (take_rec || take_ack) begin
                    ctx_re = 1'b1;
                    ctx_raddr = take_rec ? s_rec_qpn : s_ack_qpn;
                    op_kind_next = take_rec ? OP_REC : OP_ACK;
                    evc_next = evc_reg + 1'b1;
                    state_next = ST_EVT;
                end
                if (take_ack) begin
                    op_qpn_next = s_ack_qpn;
                    op_psn_next = s_ack_psn;
                    op_syn_next = s_ack_syndrome;
                end
                if (!take_rec && !take_ack && scan_vld_reg && !pk_reg) begin
                    // A clean check: note a running timer's deadline; a whole round parks.
                    if (e_rts && !e_err && e_ton && (!pk_vld_reg || (e_dl - pk_dl_reg) >= 32'h8000_0000)) begin
                        pk_vld_next = 1'b1;
                        pk_dl_next = e_dl;
                    end
                    pk_cnt_next = pk_cnt_reg + 1'b1;
                    if (pk_cnt_reg == N_QP[QPN_W:0] - 1'b1) begin
                        pk_next = 1'b1;
                    end
                end
                if (!take_rec && !take_ack && !(pk_reg && !pk_due) && !pk_next) begin
                    // A scan step: read the next connection, checked in the next cycle.
                    ctx_re = 1'b1;
                    ctx_raddr = scan_vld_reg ? scan_qpn_reg + 1'b1 : scan_qpn_reg;
                    scan_vld_next = 1'b1;
                    evc_next = {EVC_W{1'b0}};
                end
            end
        end
        // Apply the event; write a record's entry; read the oldest incomplete WQE's entry.
        ST_EVT: begin
            skip_next = !e_rts || e_err;
            wk_next = ctx_q;
            if (!skip_next) begin
                wk_next[C_ERR] = n_err;
                wk_next[C_UNA +: 24] = n_una;
                wk_next[C_HW +: 24] = n_hw;
                wk_next[C_RIDX +: 16] = n_ridx;
                wk_next[C_RPSN +: 24] = n_ridx_psn;
                wk_next[C_RETRY +: 3] = n_retry;
                wk_next[C_RNR +: 3] = n_rnr;
                wk_next[C_TON] = n_ton;
                wk_next[C_TRNR] = n_trnr;
                wk_next[C_DL +: 32] = n_dl;
                wk_next[C_NAKD] = n_nakd;
                wk_next[C_SIDX +: 16] = n_sidx;
                wk_next[C_SPSN +: 24] = n_spsn;
            end
            gbn_next = ev_gbn && !ev_fail;
            hold_next = ev_rnr_wait && !ev_fail;
            fail_next = ev_fail;
            fail_status_next = ev_status;
            ent_re = 1'b1;
            ent_we = op_kind_reg == OP_REC && rec_ok && !skip_next;
            byp_next = ent_we && e_ridx == e_cidx;
            byp_data_next = ent_wdata;
            if (!skip_next) begin
                st_to_next = op_kind_reg == OP_TMR && !e_trnr;
                st_seq_next = op_kind_reg == OP_ACK && ev_gbn && !ev_fail;
                st_rnr_next = ev_rnr_wait && !ev_fail;
                st_ign_next = op_kind_reg == OP_ACK && ev_ign;
            end else begin
                gbn_next = 1'b0;
                hold_next = 1'b0;
                fail_next = 1'b0;
            end
            state_next = ST_CMP;
        end
        // Complete the oldest WQE if acknowledged (its CQE if signaled or failed), reading the
        // next; else finish: context back, progress, error CQE, command.
        ST_CMP: begin
            if (head_done) begin
                if (!head_cqe || cqe_room) begin
                    cqe_push = head_cqe;
                    wk_next[C_CIDX +: 16] = wk_cidx_next;
                    wk_next[C_CPSN +: 24] = head_end;
                    byp_next = 1'b0;
                    ent_re = 1'b1;
                    ent_raddr = {op_qpn_reg, wk_cidx_next[WIN_W-1:0]};
                end
            end else if ((!need_rw || rw_free) && (!fail_reg || (cqe_room && err_free))) begin
                ctx_we = !skip_reg;
                if (wk_una != e_una || wk_cidx != e_cidx) begin
                    una_valid_next = 1'b1;
                    una_next = {op_qpn_reg, wk_una, wk_cidx};
                end
                if (fail_reg) begin
                    cqe_push = 1'b1;
                    cqe_in = {op_qpn_reg, wk_cidx, fail_status_reg, 1'b0};
                    // The failed WQE is complete: a flush starts after it.
                    ctx_wdata[C_CIDX +: 16] = wk_cidx_next;
                    una_valid_next = 1'b1;
                    una_next = {op_qpn_reg, wk_una, wk_cidx_next};
                    err_valid_next = 1'b1;
                    err_next = {op_qpn_reg, fail_status_reg};
                end
                if (need_rw) begin
                    // A new generation: the resend starts at cidx and una.
                    rw_valid_next = 1'b1;
                    rw_next = {op_qpn_reg, !(gbn_reg || fwd), wk_gen_next, wk_cidx, wk_cpsn,
                        wk_una - wk_cpsn};
                    ctx_wdata[C_GEN +: 4] = wk_gen_next;
                    ctx_wdata[C_SIDX +: 16] = wk_cidx;
                    ctx_wdata[C_SPSN +: 24] = wk_una;
                end
                state_next = ST_IDLE;
            end
        end
        default: begin
            state_next = ST_IDLE;
        end
    endcase
end

// MSN of the AETH: not needed by an in-order go-back-N sender.
wire [23:0] unused_msn = s_ack_msn;

always @(posedge clk) begin
    state_reg <= state_next;
    init_qpn_reg <= init_qpn_next;
    scan_qpn_reg <= scan_qpn_next;
    scan_vld_reg <= scan_vld_next;
    evc_reg <= evc_next;
    pk_reg <= pk_next;
    pk_cnt_reg <= pk_cnt_next;
    pk_vld_reg <= pk_vld_next;
    pk_dl_reg <= pk_dl_next;
    op_kind_reg <= op_kind_next;
    op_qpn_reg <= op_qpn_next;
    op_psn_reg <= op_psn_next;
    op_first_reg <= op_first_next;
    op_idx_reg <= op_idx_next;
    op_last_reg <= op_last_next;
    op_sig_reg <= op_sig_next;
    op_status_reg <= op_status_next;
    op_syn_reg <= op_syn_next;
    op_gen_reg <= op_gen_next;
    wk_reg <= wk_next;
    skip_reg <= skip_next;
    gbn_reg <= gbn_next;
    hold_reg <= hold_next;
    fail_reg <= fail_next;
    fail_status_reg <= fail_status_next;
    byp_reg <= byp_next;
    byp_data_reg <= byp_data_next;
    rw_valid_reg <= rw_valid_next;
    rw_reg <= rw_next;
    una_valid_reg <= una_valid_next;
    una_reg <= una_next;
    query_valid_reg <= s_query_valid && s_query_ready;
    err_valid_reg <= err_valid_next;
    err_reg <= err_next;
    st_to_reg <= st_to_next;
    st_seq_reg <= st_seq_next;
    st_rnr_reg <= st_rnr_next;
    st_ign_reg <= st_ign_next;

    if (rst) begin
        state_reg <= ST_INIT;
        init_qpn_reg <= {QPN_W{1'b0}};
        scan_qpn_reg <= {QPN_W{1'b0}};
        scan_vld_reg <= 1'b0;
        evc_reg <= {EVC_W{1'b0}};
        pk_reg <= 1'b0;
        pk_cnt_reg <= {(QPN_W+1){1'b0}};
        pk_vld_reg <= 1'b0;
        rw_valid_reg <= 1'b0;
        una_valid_reg <= 1'b0;
        query_valid_reg <= 1'b0;
        err_valid_reg <= 1'b0;
        st_to_reg <= 1'b0;
        st_seq_reg <= 1'b0;
        st_rnr_reg <= 1'b0;
        st_ign_reg <= 1'b0;
    end
end

endmodule

`resetall

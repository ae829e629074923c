// SPDX-License-Identifier: MIT
// san_cm_engine: the connection manager. IB CM (REQ, MRA, REJ, REP, RTU, DREQ, DREP) over QP1 as
// UD SEND_ONLY MADs, with the rdma_cm conventions (IP service IDs, the 36-byte IP header in REQ
// private data); a listen table; a state machine per connection context; response timers and
// retries; the host's command ring (fetched by DMA, each command completed by a RESULT written
// back) and event ring (EQEs with phase bits and an armed MSI-X vector). On establishment it loads
// the connection context into the engines itself.
//
// Structure: one sequential engine takes one job at a time - a received MAD, a command, or a timer
// that expired - and carries it out in steps: decide (from the job and the connection's context),
// build a MAD into the connection's slot of the MAD store and queue it for sending, load the
// connection into the engines, write an event, write the command's result, write the context
// back. MADs are kept per connection (slot = connection number; one scratch slot for answers that
// have no connection), so a resend after a timeout or for a duplicate sends the slot again.
// A sender streams queued slots to the transmit builder.
//
// Buffers hold bytes in stream order (lane 0 = first byte). Wire fields are big-endian and
// host-memory fields little-endian; words are 32 bits, MAD word w is MAD bytes 4w..4w+3.
//
// Every connection number 0..N_QP-1 is handed out; connection c is QP N_QP + c on the wire (QP
// numbers 0 and 1 are the management QPs), which is what REQ and REP announce.
// A REQ is checked for a duplicate of one a connection already holds by its (remote comm ID, peer
// IP): one look in a hashed index of those keys, and a scan of all N_QP only while some key could
// not have its bucket (a collision) and the look did not settle it (see docs/ARCHITECTURE.md).

`resetall
`timescale 1ns / 1ps
`default_nettype none

module san_cm_engine #(
    // Stream and DMA data width in bits; 64 to 512.
    parameter DATA_WIDTH = 64,
    // Connection contexts, a power of two from 4 to 4096.
    parameter N_QP = 256,
    // MSI-X vectors, for checking the rings' vectors.
    parameter N_MSIX = 32
) (
    input  wire                     clk,
    input  wire                     rst,

    // The shell's time in 1.024 us ticks (never goes back); the CM's timers count 4.096 us.
    input  wire [31:0]              time_tick,
    // The timer scan has stopped (every timer seen since the last job, none due), with the shell
    // tick at which the earliest armed timer fires, if any
    output wire                     m_parked,
    output wire                     m_wake_valid,
    output wire [31:0]              m_wake_tick,

    // Configuration (the cm register block and the port's)
    input  wire [47:0]              cfg_mac,
    input  wire [31:0]              cfg_ip,
    input  wire [3:0]               cfg_pmtu_log2,
    input  wire                     cfg_enable,
    input  wire [63:0]              cfg_cmdq_base,
    input  wire [4:0]               cfg_cmdq_log,
    input  wire [63:0]              cfg_eq_base,
    input  wire [4:0]               cfg_eq_log,
    input  wire [15:0]              cfg_eq_vector,
    input  wire [4:0]               cfg_resp_timeout,
    input  wire [3:0]               cfg_max_retries,
    input  wire [4:0]               cfg_defer_timeout,
    input  wire [4:0]               cfg_timewait,

    // Doorbells: command ring producer index; event ring consumer index and arm
    input  wire [15:0]              s_db_cmd_pi,
    input  wire                     s_db_cmd_valid,
    input  wire [15:0]              s_db_eq_ci,
    input  wire                     s_db_eq_arm,
    input  wire                     s_db_eq_valid,

    // Received QP1 frames: the parser's descriptor and the payload (the MAD)
    input  wire [47:0]              s_hdr_src_mac,
    input  wire [31:0]              s_hdr_src_ip,
    input  wire [31:0]              s_hdr_qkey,
    input  wire [12:0]              s_hdr_pay_len,
    input  wire                     s_hdr_valid,
    output wire                     s_hdr_ready,
    input  wire [DATA_WIDTH-1:0]    s_axis_pay_tdata,
    input  wire [DATA_WIDTH/8-1:0]  s_axis_pay_tkeep,
    input  wire                     s_axis_pay_tvalid,
    output wire                     s_axis_pay_tready,
    input  wire                     s_axis_pay_tlast,

    // MADs to send: a descriptor (UD SEND_ONLY to QP1 with DETH; the rest is fixed at the top)
    // and its 256-byte payload
    output wire [47:0]              m_tx_dst_mac,
    output wire [31:0]              m_tx_dst_ip,
    output wire [15:0]              m_tx_udp_sport,
    output wire [23:0]              m_tx_psn,
    output wire                     m_tx_valid,
    input  wire                     m_tx_ready,
    output wire [DATA_WIDTH-1:0]    m_axis_pay_tdata,
    output wire [DATA_WIDTH/8-1:0]  m_axis_pay_tkeep,
    output wire                     m_axis_pay_tvalid,
    input  wire                     m_axis_pay_tready,
    output wire                     m_axis_pay_tlast,

    // DMA reads (commands) and writes (events, command results)
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
    output wire [63:0]              m_dma_wr_req_addr,
    output wire [15:0]              m_dma_wr_req_len,
    output wire                     m_dma_wr_req_valid,
    input  wire                     m_dma_wr_req_ready,
    output wire [DATA_WIDTH-1:0]    m_axis_dma_wr_tdata,
    output wire [DATA_WIDTH/8-1:0]  m_axis_dma_wr_tkeep,
    output wire                     m_axis_dma_wr_tvalid,
    input  wire                     m_axis_dma_wr_tready,
    output wire                     m_axis_dma_wr_tlast,

    // Connection context load into the engines: held valid until ready
    output wire                     m_ld_valid,
    input  wire                     m_ld_ready,
    output wire [$clog2(N_QP)-1:0]  m_ld_qpn,
    output wire                     m_ld_rts,
    output wire [23:0]              m_ld_dest_qpn,
    output wire [47:0]              m_ld_dmac,
    output wire [31:0]              m_ld_dip,
    output wire [15:0]              m_ld_udp_sport,
    output wire [23:0]              m_ld_sq_psn,
    output wire [23:0]              m_ld_rq_psn,
    output wire [63:0]              m_ld_sq_base,
    output wire [4:0]               m_ld_sq_log,
    output wire [63:0]              m_ld_rq_base,
    output wire [4:0]               m_ld_rq_log,
    output wire [63:0]              m_ld_cq_base,
    output wire [4:0]               m_ld_cq_log,
    output wire [15:0]              m_ld_cq_vector,
    output wire [2:0]               m_ld_retry_cnt,
    output wire [2:0]               m_ld_rnr_retry,
    output wire [4:0]               m_ld_timeout,
    output wire [4:0]               m_ld_min_rnr_timer,
    // A stop (rts = 0) flushes the connection's posted WQEs; the engines' end markers come back
    // through the CQ writer as s_flushed pulses (two: send side and receive side) once every
    // flushed CQE before them is out
    output wire                     m_ld_flush,
    input  wire [$clog2(N_QP)-1:0]  s_flushed_qpn,
    input  wire                     s_flushed_valid,

    // Transport failures (san_completer): the connection entered the error state, with the
    // CQEStatus of its failed send
    input  wire [$clog2(N_QP)-1:0]  s_err_qpn,
    input  wire [7:0]               s_err_status,
    input  wire                     s_err_valid,
    output wire                     s_err_ready,

    // MSI-X request of the event ring
    output wire [15:0]              m_msix_vector,
    output wire                     m_msix_valid,
    input  wire                     m_msix_ready,

    // Events to count (one-cycle pulses)
    output wire                     stat_mad_tx,
    output wire                     stat_mad_rx,
    output wire                     stat_mad_drop,
    output wire                     stat_resend,
    output wire                     stat_timeout,
    output wire                     stat_refused
);

`include "san_regs.vh"

localparam integer QPN_W = $clog2(N_QP);
localparam integer BYTES = DATA_WIDTH / 8;
localparam integer WPB = DATA_WIDTH / 32;          // 32-bit words per beat
localparam integer BL = WPB < 4 ? WPB : 4;         // MAD and event words built per cycle
localparam [5:0] BL6 = BL[5:0];
localparam integer LAST_BW_I = 64 - BL;
localparam [5:0] LAST_BW = LAST_BW_I[5:0];       // the first word of a build's last cycle
localparam integer MAD_ROWS = 256 / BYTES;         // beats per MAD
localparam integer ROW_W = $clog2(MAD_ROWS) > 0 ? $clog2(MAD_ROWS) : 1;
localparam integer HDR_ROWS = 64 / BYTES;          // beats of a command's header
localparam integer PD_ROWS = 256 / BYTES;          // beats of the private-data buffer
localparam integer N_LISTEN = 16;
localparam [ROW_W:0] LAST_ROW = MAD_ROWS[ROW_W:0] - 1'b1;
localparam integer SLOTS = N_QP + 1;               // MAD store: one per connection + scratch
localparam [QPN_W:0] SCRATCH = N_QP[QPN_W:0];

initial begin
    if (DATA_WIDTH < 64 || DATA_WIDTH > 512 || (DATA_WIDTH & (DATA_WIDTH - 1)) != 0) begin
        $error("san_cm_engine: DATA_WIDTH must be a power of two from 64 to 512");
        $finish;
    end
    if (N_QP < 4 || N_QP > 4096 || (N_QP & (N_QP - 1)) != 0) begin
        $error("san_cm_engine: N_QP must be a power of two from 4 to 4096");
        $finish;
    end
end

// --- MAD and protocol constants --------------------------------------------------------------------
localparam [2:0] M_REQ = 3'd0, M_MRA = 3'd1, M_REJ = 3'd2, M_REP = 3'd3, M_RTU = 3'd4,
                 M_DREQ = 3'd5, M_DREP = 3'd6;

localparam [3:0]
    C_IDLE = 4'd0,
    C_REQ_SENT = 4'd1,
    C_REQ_RCVD = 4'd2,
    C_MRA_SENT = 4'd3,
    C_REP_SENT = 4'd4,
    C_ESTAB = 4'd5,
    C_DREQ_SENT = 4'd6,
    C_TIMEWAIT = 4'd7,
    C_DREQ_ERR = 4'd8;      // DREQ sent after a transport failure: DREP, DREQ or retries end it
                            // in TIMEWAIT without another event (CONN_ERROR was the host's)

localparam [31:0] GSI_QKEY = 32'h8001_0000;

function [31:0] bswap(input [31:0] w);
    bswap = {w[7:0], w[15:8], w[23:16], w[31:24]};
endfunction

// Private data of each message: first MAD word, words, bytes.
function [5:0] pd_word(input [2:0] m);
    case (m)
        M_REQ: pd_word = 6'd50;   // after the 36-byte IP header
        M_REJ: pd_word = 6'd27;
        M_REP: pd_word = 6'd15;
        M_DREQ: pd_word = 6'd9;
        default: pd_word = 6'd8;  // RTU, DREP; MRA's starts two bytes into word 8 (see mra_pd)
    endcase
endfunction
function [5:0] pd_words(input [2:0] m);
    case (m)
        M_REQ: pd_words = 6'd14;
        M_REJ: pd_words = 6'd37;
        M_REP: pd_words = 6'd49;
        M_DREQ: pd_words = 6'd55;
        M_RTU, M_DREP, M_MRA: pd_words = 6'd56;
        default: pd_words = 6'd0;
    endcase
endfunction
function [7:0] pd_bytes(input [2:0] m);
    case (m)
        M_REQ: pd_bytes = 8'd56;
        M_REJ: pd_bytes = 8'd148;
        M_REP: pd_bytes = 8'd196;
        M_DREQ: pd_bytes = 8'd220;
        M_RTU, M_DREP: pd_bytes = 8'd224;
        M_MRA: pd_bytes = 8'd222;   // from MAD byte 34: two bytes into word 8
        default: pd_bytes = 8'd0;
    endcase
endfunction

// --- timers: 4.096 us ticks ----------------------------------------------------------------------
wire [23:0] now_reg = time_tick[25:2];
wire unused_time = &{1'b0, time_tick[1:0]};
// A deadline 2^code ticks from now (codes above 22 count as 22), one tick more so a timer never
// fires early however far the current tick has run.
function [23:0] after(input [4:0] code);
    after = now_reg + (24'd1 << (code > 5'd22 ? 5'd22 : code)) + 24'd1;
endfunction
// code + k, saturating at 22 (the longest timer).
function [4:0] sat_code(input [4:0] code, input [4:0] k);
    sat_code = code >= 5'd22 - k ? 5'd22 : code + k;
endfunction
// How long a deferred request waits for its caller's next repeat: the caller waits the MRA's
// service timeout and its own response timeout before repeating; four times the longer of them.
function [4:0] defer_wait(input [4:0] prto);
    defer_wait = sat_code(cfg_defer_timeout > prto ? cfg_defer_timeout : prto, 5'd2);
endfunction

// --- rings ---------------------------------------------------------------------------------------
reg        en_reg = 1'b0;
reg [15:0] cmd_pi_reg = 16'd0, cmd_ci_reg = 16'd0;
reg [15:0] eq_pi_reg = 16'd0, eq_ci_reg = 16'd0;
reg        eq_armed_reg = 1'b0;
reg        msix_valid_reg = 1'b0;
wire       enable_rise = cfg_enable && !en_reg;
wire [15:0] eq_used = eq_pi_reg - eq_ci_reg;
wire       eq_full = {1'b0, eq_used} >= (17'd1 << cfg_eq_log);
wire [15:0] cmd_mask = (16'd1 << cfg_cmdq_log) - 16'd1;
wire [15:0] eq_mask = (16'd1 << cfg_eq_log) - 16'd1;
wire [63:0] cmd_addr = cfg_cmdq_base + {39'd0, cmd_ci_reg & cmd_mask, 9'd0};
wire [63:0] eq_addr = cfg_eq_base + {40'd0, eq_pi_reg & eq_mask, 8'd0};
wire        eq_phase = ~|(eq_pi_reg & (16'd1 << cfg_eq_log));

assign m_msix_vector = cfg_eq_vector;
assign m_msix_valid = msix_valid_reg;

// --- transport failures, queued (the completer reports each failed connection once per load) ---
wire [QPN_W-1:0] err_qpn;
wire [7:0]       err_status;
wire             err_valid;
reg              err_pop;
reg [7:0]        f_status_reg = 8'd0;

san_sync_fifo #(
    .WIDTH(QPN_W + 8),
    .DEPTH(16)
) err_fifo_inst (
    .clk(clk),
    .rst(rst),
    .s_data({s_err_qpn, s_err_status}),
    .s_valid(s_err_valid),
    .s_ready(s_err_ready),
    .m_data({err_qpn, err_status}),
    .m_valid(err_valid),
    .m_ready(err_pop)
);

// --- receive: QP1 frames into the receive buffer ---------------------------------------------------
reg [DATA_WIDTH-1:0] rxbuf [0:MAD_ROWS-1];
reg        rx_busy_reg = 1'b0;   // a header was taken, its payload is coming
reg        rx_ok_reg = 1'b0;     // the frame is kept (length, Q_Key, enabled)
reg        rx_full_reg = 1'b0;   // a MAD waits for the engine
reg [ROW_W:0] rx_row_reg = 0;
reg [47:0] rx_mac_reg = 48'd0;
reg [31:0] rx_ip_reg = 32'd0;
reg        rx_drop_pulse = 1'b0;
// Header words of interest, big-endian values.
reg [31:0] rw0, rw4, rw6, rw7, rw8, rw9, rw11, rw14, rw16, rw17, rw18, rw41;
// Fields the CM reads none of: attribute modifier low half, reserved bytes, the REQ's other
// settings (the connection uses this side's own), the IP header's version bytes.
wire unused_rw = &{1'b0, rw4[15:0], rw11[7:0], rw14[7:0], rw16[31:8], rw16[2:0], rw17[7:0], rw18[31:16],
                   rw18[11:0], rw41[31:16]};

assign s_hdr_ready = !rx_busy_reg && !rx_full_reg;
assign s_axis_pay_tready = rx_busy_reg;

wire rx_hdr_take = s_hdr_valid && s_hdr_ready;
wire rx_beat = s_axis_pay_tvalid && rx_busy_reg;
wire unused_rx_keep = &{1'b0, s_axis_pay_tkeep};

integer ri;
always @(posedge clk) begin
    rx_drop_pulse <= 1'b0;
    if (rx_hdr_take) begin
        rx_mac_reg <= s_hdr_src_mac;
        rx_ip_reg <= s_hdr_src_ip;
        rx_ok_reg <= s_hdr_pay_len == 13'd256 && s_hdr_qkey == GSI_QKEY && cfg_enable;
        rx_row_reg <= 0;
        // A frame without payload has no beats: it ends here.
        if (s_hdr_pay_len == 13'd0) begin
            rx_drop_pulse <= 1'b1;
        end else begin
            rx_busy_reg <= 1'b1;
        end
    end
    if (rx_beat) begin
        if (rx_row_reg <= LAST_ROW) begin
            rxbuf[rx_row_reg[ROW_W-1:0]] <= s_axis_pay_tdata;
            for (ri = 0; ri < WPB; ri = ri + 1) begin
                case (rx_row_reg * WPB + ri)
                    0: rw0 <= bswap(s_axis_pay_tdata[32*ri +: 32]);
                    4: rw4 <= bswap(s_axis_pay_tdata[32*ri +: 32]);
                    6: rw6 <= bswap(s_axis_pay_tdata[32*ri +: 32]);
                    7: rw7 <= bswap(s_axis_pay_tdata[32*ri +: 32]);
                    8: rw8 <= bswap(s_axis_pay_tdata[32*ri +: 32]);
                    9: rw9 <= bswap(s_axis_pay_tdata[32*ri +: 32]);
                    11: rw11 <= bswap(s_axis_pay_tdata[32*ri +: 32]);
                    14: rw14 <= bswap(s_axis_pay_tdata[32*ri +: 32]);
                    16: rw16 <= bswap(s_axis_pay_tdata[32*ri +: 32]);
                    17: rw17 <= bswap(s_axis_pay_tdata[32*ri +: 32]);
                    18: rw18 <= bswap(s_axis_pay_tdata[32*ri +: 32]);
                    41: rw41 <= bswap(s_axis_pay_tdata[32*ri +: 32]);
                    default: begin
                    end
                endcase
            end
        end
        rx_row_reg <= rx_row_reg + 1'b1;
        if (s_axis_pay_tlast) begin
            rx_busy_reg <= 1'b0;
            if (rx_ok_reg && rx_row_reg == LAST_ROW) begin
                rx_full_reg <= 1'b1;
            end else begin
                rx_drop_pulse <= 1'b1;
            end
        end
    end
    if (rx_done) begin
        rx_full_reg <= 1'b0;
    end
    if (rst) begin
        rx_busy_reg <= 1'b0;
        rx_full_reg <= 1'b0;
        rx_drop_pulse <= 1'b0;
    end
end

// Word w of the received MAD, as bytes in stream order.
function [31:0] rx_raw(input [5:0] w);
    reg [DATA_WIDTH-1:0] row;
    begin
        row = rxbuf[{26'd0, w} / WPB];
        rx_raw = row[32 * ({26'd0, w} % WPB) +: 32];
    end
endfunction

// Half-word h (bytes 2h, 2h+1) of the received MAD.
function [15:0] rx_half(input [6:0] h);
    reg [DATA_WIDTH-1:0] row;
    begin
        row = rxbuf[{25'd0, h} / (2 * WPB)];
        rx_half = row[16 * ({25'd0, h} % (2 * WPB)) +: 16];
    end
endfunction
// Received MAD bytes 4w+2 .. 4w+5 (an MRA's private data starts at byte 34, two bytes into word
// 8): zeros past the MAD's end.
function [31:0] rx_shifted(input [5:0] w);
    begin
        rx_shifted = {w == 6'd63 ? 16'd0 : rx_half({w, 1'b0} + 7'd2), rx_half({w, 1'b1})};
    end
endfunction

// --- command buffer: the header latched, the private data in a buffer ---------------------------
reg [511:0] ch_reg = 512'd0;
reg [DATA_WIDTH-1:0] pdbuf [0:PD_ROWS-1];
function [31:0] pd_raw(input [5:0] w);
    reg [DATA_WIDTH-1:0] row;
    begin
        row = pdbuf[{26'd0, w} / WPB];
        pd_raw = row[32 * ({26'd0, w} % WPB) +: 32];
    end
endfunction
// Half-word h (bytes 2h, 2h+1) of the command's private data.
function [15:0] pd_half(input [6:0] h);
    reg [DATA_WIDTH-1:0] row;
    begin
        row = pdbuf[{25'd0, h} / (2 * WPB)];
        pd_half = row[16 * ({25'd0, h} % (2 * WPB)) +: 16];
    end
endfunction
// The command's private data bytes 4k-2 .. 4k+1 (k >= 1), for an MRA, whose data starts two
// bytes into a MAD word; for k = 0, bytes 0 and 1 in the high half.
function [31:0] pd_shifted(input [5:0] k);
    begin
        pd_shifted = {pd_half({k, 1'b0}), k == 6'd0 ? 16'd0 : pd_half({k, 1'b0} - 7'd1)};
    end
endfunction
wire [7:0]  ch_op = ch_reg[7:0];
wire [7:0]  ch_pdlen = ch_reg[15:8];
wire [15:0] ch_port = ch_reg[31:16];
wire [31:0] ch_conn = ch_reg[63:32];
wire [15:0] ch_backlog = ch_reg[79:64];
wire [15:0] ch_reason = ch_reg[95:80];
wire [15:0] ch_sport = ch_reg[111:96];
wire [15:0] ch_vector = ch_reg[127:112];
wire [31:0] ch_dip = ch_reg[159:128];
wire [23:0] ch_psn = ch_reg[183:160];
wire [20:0] ch_tr = ch_reg[212:192];
wire [20:0] ch_logs = ch_reg[244:224];
wire [47:0] ch_dmac = {ch_reg[263:256], ch_reg[271:264], ch_reg[279:272], ch_reg[287:280],
                       ch_reg[295:288], ch_reg[303:296]};
wire [63:0] ch_sqb = ch_reg[383:320];
wire [63:0] ch_rqb = ch_reg[447:384];
wire [63:0] ch_cqb = ch_reg[511:448];
wire unused_ch = &{1'b0, ch_reg[319:304], ch_reg[255:245], ch_reg[223:213], ch_reg[191:184]};
wire ch_rings_ok = ch_logs[4:0] >= 5'd1 && ch_logs[4:0] <= 5'd15
    && ch_logs[12:8] >= 5'd1 && ch_logs[12:8] <= 5'd15
    && ch_logs[20:16] >= 5'd1 && ch_logs[20:16] <= 5'd15
    && ch_vector < N_MSIX[15:0];

// --- connection contexts -------------------------------------------------------------------------
// Packed: see the c_* registers below for the fields.
localparam integer CTX_W = 4 + 16 + 1 + 4 + 32 + 24 + 24 + 32 + 48 + 16 + 16 + 24 + 16 + 21 + 21
    + 16 + 64 * 3 + 4 + 5;
reg [CTX_W-1:0] ctx_mem [0:N_QP-1];
reg [CTX_W-1:0] ctx_q;
reg [QPN_W-1:0] ctx_ra;
reg             ctx_we;
reg [QPN_W-1:0] ctx_wa;
reg [CTX_W-1:0] ctx_wd;
always @(posedge clk) begin
    ctx_q <= ctx_mem[ctx_ra];
    if (ctx_we) begin
        ctx_mem[ctx_wa] <= ctx_wd;
    end
end

// The context being worked on.
reg [3:0]  c_state;
reg [15:0] c_gen;
reg        c_passive;
reg [3:0]  c_lidx;
reg [31:0] c_rcomm;
reg [23:0] c_rqpn, c_rpsn;
reg [31:0] c_rip;
reg [47:0] c_rmac;
reg [15:0] c_rport, c_lport;
reg [23:0] c_spsn;
reg [15:0] c_sport;
reg [20:0] c_tr, c_logs;
reg [15:0] c_vec;
reg [63:0] c_sqb, c_rqb, c_cqb;
reg [3:0]  c_retries;
reg [4:0]  c_prto;     // passive: the caller's CM response timeout, from its REQ

wire [CTX_W-1:0] c_packed = {c_state, c_gen, c_passive, c_lidx, c_rcomm, c_rqpn, c_rpsn, c_rip,
    c_rmac, c_rport, c_lport, c_spsn, c_sport, c_tr, c_logs, c_vec, c_sqb, c_rqb, c_cqb, c_retries,
    c_prto};

reg [QPN_W-1:0] qpn_reg;
// Our communication ID for a connection: {generation, number}.
function [31:0] comm_of(input [15:0] gen, input [QPN_W-1:0] q);
    comm_of = {gen, {(16-QPN_W){1'b0}}, q};
endfunction
wire [23:0] qpn_reg_24 = {{(23-QPN_W){1'b0}}, 1'b1, qpn_reg};   // on the wire: N_QP + c

// Duplicate-REQ keys and timers, per connection.
reg [64:0] key_mem [0:N_QP-1];      // {valid, remote comm ID, peer IP}
reg [24:0] tmr_mem [0:N_QP-1];      // {armed, deadline}

// The keys' index: a bucket per hash value naming the connection whose key is there. A key
// whose bucket was taken when it was set lives only in key_mem and is counted in hx_over; while
// that count is zero, every key is in its bucket and one look finds a duplicate or proves there
// is none; otherwise a REQ its bucket does not match is checked by a scan of every key.
reg [QPN_W:0] hx_mem [0:N_QP-1];    // {valid, connection}
reg [QPN_W:0] hx_over = 0;
reg [QPN_W-1:0] hx_reg = 0;         // the received REQ's bucket
function [QPN_W-1:0] key_hash(input [15:0] comm_lo, input [31:0] ip);
    reg [31:0] x;
    integer i;
    begin
        // The low half of a comm ID is where CMs put their connection number (ours do).
        x = {16'd0, comm_lo ^ ip[15:0] ^ ip[31:16]};
        key_hash = {QPN_W{1'b0}};
        for (i = 0; i < 16; i = i + QPN_W) begin
            key_hash = key_hash ^ x[i +: QPN_W];
        end
    end
endfunction

// Free connection numbers.
reg [QPN_W-1:0] fl_mem [0:N_QP-1];
reg [QPN_W-1:0] fl_head = 0, fl_tail = 0;
reg [QPN_W:0]   fl_count = 0;

// Listen table.
reg [N_LISTEN-1:0] l_valid = {N_LISTEN{1'b0}};
reg [15:0] l_port [0:N_LISTEN-1];
reg [15:0] l_backlog [0:N_LISTEN-1];
reg [15:0] l_pend [0:N_LISTEN-1];

// --- MAD store and the sender -----------------------------------------------------------------------
reg [DATA_WIDTH-1:0] mad_mem [0:SLOTS*MAD_ROWS-1];
reg [DATA_WIDTH-1:0] mad_rd;
reg [QPN_W+ROW_W:0]  mad_ra;
reg                  mad_we;
reg [QPN_W+ROW_W:0]  mad_wa;
reg [DATA_WIDTH-1:0] mad_wd;
always @(posedge clk) begin
    mad_rd <= mad_mem[mad_ra];
    if (mad_we) begin
        mad_mem[mad_wa] <= mad_wd;
    end
end

// Send queue: {slot, dmac, dip, sport}, four entries.
localparam integer SQ_W = (QPN_W + 1) + 48 + 32 + 16;
reg [SQ_W-1:0] sq_mem [0:3];
reg [1:0] sq_head = 2'd0, sq_tail = 2'd0;
reg [2:0] sq_count = 3'd0;
wire sq_full = sq_count == 3'd4;
wire [SQ_W-1:0] sq_top = sq_mem[sq_head];
wire [QPN_W:0] sq_slot = sq_top[SQ_W-1 -: QPN_W+1];

reg        tx_hdr_reg = 1'b0;    // the head's descriptor is offered
reg        tx_data_reg = 1'b0;   // its payload streams
reg        tx_prime_reg = 1'b0;  // the first row is being read
reg [ROW_W-1:0] tx_row_reg = 0;
reg [QPN_W:0] tx_slot_reg = 0;
reg [23:0] tx_psn_reg = 24'd0;

assign m_tx_dst_mac = sq_top[48 +: 48];
assign m_tx_dst_ip = sq_top[16 +: 32];
assign m_tx_udp_sport = sq_top[15:0];
assign m_tx_psn = tx_psn_reg;
assign m_tx_valid = tx_hdr_reg;
assign m_axis_pay_tdata = mad_rd;
assign m_axis_pay_tkeep = {BYTES{1'b1}};
assign m_axis_pay_tvalid = tx_data_reg && !tx_prime_reg;
assign m_axis_pay_tlast = tx_row_reg == LAST_ROW[ROW_W-1:0];
wire tx_beat = m_axis_pay_tvalid && m_axis_pay_tready;
wire tx_end = tx_beat && m_axis_pay_tlast;
wire sq_pop = tx_end;
reg  sq_push;
reg [SQ_W-1:0] sq_push_data;

always @* begin
    mad_ra = {tx_slot_reg, tx_row_reg};
    if (tx_beat && !m_axis_pay_tlast) begin
        mad_ra = {tx_slot_reg, tx_row_reg + 1'b1};
    end else if (tx_hdr_reg && m_tx_ready) begin
        mad_ra = {sq_slot, {ROW_W{1'b0}}};
    end
end

always @(posedge clk) begin
    if (tx_hdr_reg && m_tx_ready) begin
        tx_hdr_reg <= 1'b0;
        tx_data_reg <= 1'b1;
        tx_prime_reg <= 1'b1;
        tx_slot_reg <= sq_slot;
        tx_row_reg <= 0;
        tx_psn_reg <= tx_psn_reg + 24'd1;
    end else if (tx_prime_reg) begin
        tx_prime_reg <= 1'b0;
    end else if (tx_beat) begin
        tx_row_reg <= tx_row_reg + 1'b1;
        if (m_axis_pay_tlast) begin
            tx_data_reg <= 1'b0;
        end
    end
    if (!tx_hdr_reg && !tx_data_reg && sq_count != 3'd0) begin
        tx_hdr_reg <= 1'b1;
    end
    if (sq_push) begin
        sq_mem[sq_tail] <= sq_push_data;
        sq_tail <= sq_tail + 2'd1;
    end
    if (sq_pop) begin
        sq_head <= sq_head + 2'd1;
    end
    sq_count <= sq_count + {2'd0, sq_push} - {2'd0, sq_pop};
    if (rst) begin
        tx_hdr_reg <= 1'b0;
        tx_data_reg <= 1'b0;
        tx_prime_reg <= 1'b0;
        tx_psn_reg <= 24'd0;
        sq_head <= 2'd0;
        sq_tail <= 2'd0;
        sq_count <= 3'd0;
    end
end

// --- event buffer -----------------------------------------------------------------------------------
reg [DATA_WIDTH-1:0] eq_mem [0:MAD_ROWS-1];
reg [DATA_WIDTH-1:0] eq_rd;
reg [ROW_W-1:0] eq_ra;
reg             eq_we;
reg [ROW_W-1:0] eq_wa;
reg [DATA_WIDTH-1:0] eq_wd;
always @* begin
    eq_ra = wr_row_reg;
    if (wr_req_reg && m_dma_wr_req_ready) begin
        eq_ra = {ROW_W{1'b0}};
    end else if (wr_beat && !m_axis_dma_wr_tlast) begin
        eq_ra = wr_row_reg + 1'b1;
    end
end
always @(posedge clk) begin
    eq_rd <= eq_mem[eq_ra];
    if (eq_we) begin
        eq_mem[eq_wa] <= eq_wd;
    end
end

// --- the engine --------------------------------------------------------------------------------------
localparam [4:0]
    E_INIT = 5'd0,     // filling the free list after reset
    E_IDLE = 5'd1,
    E_RX = 5'd2,       // a received MAD: check it, find its connection
    E_SCAN = 5'd3,     // a REQ: look for a duplicate among all the connections
    E_RXCTX = 5'd4,    // the connection's context is being read
    E_RXDEC = 5'd5,    // decide on a MAD for a connection
    E_REQNEW = 5'd6,   // a new REQ: listener, backlog, room
    E_ALLOC = 5'd7,    // a number was taken from the free list: its context is being read
    E_HASH = 5'd8,     // a REQ: its key's bucket is being read
    E_HKEY = 5'd12,    // a REQ: the bucket names a connection; compare its key
    E_CHDR = 5'd9,     // command: header data
    E_CPD = 5'd10,     // command: private data
    E_CDEC = 5'd11,    // command: decide
    E_CCONN = 5'd13,   // command on a connection: decide
    E_TMR = 5'd14,     // a timer expired: its context is being read
    E_TDEC = 5'd15,    // decide on the expiry
    E_BUILD = 5'd16,   // build a MAD, BL words a cycle
    E_SEND = 5'd17,    // queue it for the sender
    E_LOAD = 5'd18,    // load the connection into the engines
    E_EQB = 5'd19,     // build the event, BL words a cycle
    E_EQREQ = 5'd20,   // event: DMA write request
    E_EQDATA = 5'd21,  // event: data
    E_RESREQ = 5'd22,  // command result: DMA write request
    E_RESDATA = 5'd23, // command result: data
    E_FIN = 5'd24,     // write back, timers, counters
    E_ALLOC0 = 5'd25,  // the new number's context read is under way
    E_CWAIT = 5'd26,   // command: the context read is under way
    E_FAIL = 5'd27,    // a transport failure: its context is being read
    E_FDEC = 5'd28;    // decide on the failure

reg [4:0] e_state = E_INIT;
reg [QPN_W:0] init_cnt = 0;

// The job's actions.
reg        a_mad, a_load, a_rts, a_eqe, a_res, a_ctxw, a_free, a_resend;
reg [2:0]  a_type;           // MAD to build
reg [QPN_W:0] a_slot;
reg        a_pd;             // its private data from the command
reg [7:0]  a_pdlen;
reg [15:0] a_reason;
reg [1:0]  a_msg;            // REJ/MRA: the message concerned
reg [31:0] a_lcomm, a_rcomm, a_tid;
reg [47:0] a_dmac;
reg [31:0] a_dip;
reg [15:0] a_sport;
reg [7:0]  e_type;           // event
reg [15:0] e_reason;
reg [5:0]  e_pw;             // its private data: first MAD word, words, bytes
reg [5:0]  e_pn;
reg        e_sh;             // the private data starts two bytes into word e_pw (an MRA's)
reg [7:0]  e_pdlen;
reg [7:0]  r_status;         // command result
reg [31:0] r_conn;
reg [1:0]  a_tmr;            // 0 keep, 1 arm at t_dl, 2 disarm
reg [23:0] t_dl;
reg [1:0]  a_key;            // 0 keep, 1 set, 2 clear
reg        a_lpend_inc, a_lpend_dec;
reg [3:0]  a_lidx;
reg        rx_done;
reg        st_tx, st_rx, st_drop, st_resend, st_timeout, st_refused;

reg [5:0]  b_w;              // word being built
wire [31:0] b_w32 = {26'd0, b_w};
wire [31:0] b_lane = b_w32 % WPB;
wire [31:0] b_rowi32 = b_w32 / WPB;
wire [ROW_W-1:0] b_rowi = b_rowi32[ROW_W-1:0];
wire unused_b_rowi = &{1'b0, b_rowi32[31:ROW_W]};
reg [DATA_WIDTH-1:0] b_row;
reg [QPN_W-1:0] scan_reg;
reg [QPN_W-1:0] tscan_reg = 0;
reg        rd_req_reg = 1'b0;
reg [63:0] rd_addr_reg;
reg [15:0] rd_len_reg;
reg [ROW_W:0] rd_row_reg;
reg        rd_err_reg;
reg        wr_req_reg = 1'b0;
reg [63:0] wr_addr_reg;
reg [15:0] wr_len_reg;
reg        wr_data_reg = 1'b0;
reg        wr_prime_reg = 1'b0;
reg        wr_res_reg = 1'b0;     // the data is the command result
reg [ROW_W-1:0] wr_row_reg;
reg        ld_valid_reg = 1'b0;
reg        ld_issued = 1'b0;
// End-of-flush pulses seen for the connection since its stop was issued (the event waits for 2).
reg [1:0]  fl_seen = 2'd0;
wire [63:0] res_addr = cfg_cmdq_base + {39'd0, (cmd_ci_reg - 16'd1) & cmd_mask, 9'd0} + 64'd504;
// The sender must not be streaming the slot being rebuilt.
wire tx_busy_slot = tx_data_reg && tx_slot_reg == a_slot;

assign m_dma_rd_req_addr = rd_addr_reg;
assign m_dma_rd_req_len = rd_len_reg;
assign m_dma_rd_req_valid = rd_req_reg;
assign s_axis_dma_rd_tready = e_state == E_CHDR || e_state == E_CPD;
wire unused_rd_keep = &{1'b0, s_axis_dma_rd_tkeep};

assign m_dma_wr_req_addr = wr_addr_reg;
assign m_dma_wr_req_len = wr_len_reg;
assign m_dma_wr_req_valid = wr_req_reg;
wire [63:0] res_word = {r_conn, 16'd0, 8'd1, r_status};
assign m_axis_dma_wr_tdata = wr_res_reg ? {{(DATA_WIDTH-64){1'b0}}, res_word} : eq_rd;
assign m_axis_dma_wr_tkeep = wr_res_reg ? {{(BYTES-8){1'b0}}, 8'hFF} : {BYTES{1'b1}};
assign m_axis_dma_wr_tvalid = wr_data_reg && !wr_prime_reg;
assign m_axis_dma_wr_tlast = wr_res_reg || wr_row_reg == LAST_ROW[ROW_W-1:0];
wire wr_beat = m_axis_dma_wr_tvalid && m_axis_dma_wr_tready;

assign m_ld_valid = ld_valid_reg;
assign m_ld_qpn = qpn_reg;
assign m_ld_rts = a_rts;
assign m_ld_flush = !a_rts;
assign m_ld_dest_qpn = c_rqpn;
assign m_ld_dmac = c_rmac;
assign m_ld_dip = c_rip;
assign m_ld_udp_sport = c_sport;
assign m_ld_sq_psn = c_spsn;
assign m_ld_rq_psn = c_rpsn;
assign m_ld_sq_base = c_sqb;
assign m_ld_sq_log = c_logs[4:0];
assign m_ld_rq_base = c_rqb;
assign m_ld_rq_log = c_logs[12:8];
assign m_ld_cq_base = c_cqb;
assign m_ld_cq_log = c_logs[20:16];
assign m_ld_cq_vector = c_vec;
assign m_ld_retry_cnt = c_tr[2:0];
assign m_ld_rnr_retry = c_tr[6:4];
assign m_ld_timeout = c_tr[12:8];
assign m_ld_min_rnr_timer = c_tr[20:16];

assign stat_mad_tx = st_tx;
assign stat_mad_rx = st_rx;
assign stat_mad_drop = st_drop || rx_drop_pulse;
assign stat_resend = st_resend;
assign stat_timeout = st_timeout;
assign stat_refused = st_refused;

// The received message.
wire [2:0]  rx_m = rw4[18:16];
wire        rx_hdr_ok = rw0 == 32'h0107_0203 && rw4[31:19] == 13'h0002 && rw4[18:16] <= M_DREP;
wire [31:0] rx_their = rw6;           // the sender's comm ID
wire [QPN_W-1:0] rx_mine_qpn = rw7[QPN_W-1:0];
wire        rx_mine_ok = rw7[15:QPN_W] == 0;
wire        rx_ipsvc = rw8 == 32'd0 && rw9[31:16] == 16'h0106;
wire [15:0] rx_port = rw9[15:0];
wire [3:0]  our_mtu = cfg_pmtu_log2 - 4'd7;

// Listener lookup (REQ's port).
reg [3:0] l_hit;
reg       l_found;
reg [3:0] l_free;
reg       l_room;
integer li;
always @* begin
    l_hit = 4'd0;
    l_found = 1'b0;
    l_free = 4'd0;
    l_room = 1'b0;
    for (li = N_LISTEN - 1; li >= 0; li = li - 1) begin
        if (l_valid[li] && l_port[li] == (e_state == E_REQNEW ? rx_port : ch_port)) begin
            l_hit = li[3:0];
            l_found = 1'b1;
        end
        if (!l_valid[li]) begin
            l_free = li[3:0];
            l_room = 1'b1;
        end
    end
end

// Word w of the MAD being built, as bytes in stream order: the fields (big-endian values) or
// the private data, raw.
function [31:0] mad_word(input [5:0] w);
    reg [31:0] be;
    reg        israw;
    reg [31:0] raw;
    reg [5:0]  pdw;
    reg [7:0]  mra_b0;
    begin
        be = 32'd0;
        israw = 1'b0;
        raw = 32'd0;
        pdw = w - pd_word(a_type);
        case (w)
            6'd0: be = 32'h0107_0203;
            6'd3: be = a_tid;
            6'd4: be = {13'h0002, a_type, 16'd0};
            6'd6: be = a_lcomm;
            6'd7: be = a_type == M_REQ ? 32'd0 : a_rcomm;
            default: begin
            end
        endcase
        case (a_type)
            M_REQ: begin
                case (w)
                    6'd8: be = 32'd0;
                    6'd9: be = {16'h0106, c_rport};     // service ID: IP CM, TCP, the port
                    6'd10: be = {cfg_mac[47:24], 8'hFF};
                    6'd11: be = {8'hFE, cfg_mac[23:0]};
                    6'd14: be = {qpn_reg_24, 8'd0};
                    6'd16: be = {24'd0, cfg_resp_timeout, 3'd0};
                    6'd17: be = {c_spsn, cfg_resp_timeout, c_tr[2:0]};
                    6'd18: be = {16'hFFFF, our_mtu, 1'b0, c_tr[6:4], cfg_max_retries, 4'd0};
                    6'd19: be = 32'hFFFF_FFFF;
                    6'd22: be = 32'h0000_FFFF;
                    6'd23: be = cfg_ip;
                    6'd26: be = 32'h0000_FFFF;
                    6'd27: be = c_rip;
                    6'd29: be = {8'd0, 8'd64, 8'h08, c_tr[12:8], 3'd0};
                    6'd41: be = {8'h00, 8'h40, c_lport};  // IP header: version, IPv4, source port
                    6'd45: be = cfg_ip;
                    6'd49: be = c_rip;
                    default: begin
                    end
                endcase
            end
            M_MRA: begin
                if (w == 6'd8) be = {a_msg, 6'd0, cfg_defer_timeout, 3'd0, 16'd0};
            end
            M_REJ: begin
                if (w == 6'd8) be = {a_msg, 6'd0, 8'd0, a_reason};
            end
            M_REP: begin
                case (w)
                    6'd9: be = {qpn_reg_24, 8'd0};
                    6'd11: be = {c_spsn, 8'd0};
                    6'd12: be = {16'd0, 8'd0, c_tr[6:4], 5'd0};
                    6'd13: be = {cfg_mac[47:24], 8'hFF};
                    6'd14: be = {8'hFE, cfg_mac[23:0]};
                    default: begin
                    end
                endcase
            end
            M_DREQ: begin
                if (w == 6'd8) be = {c_rqpn, 8'd0};
            end
            default: begin
            end
        endcase
        // Private data: the command's bytes up to a_pdlen, zeros after.
        if (a_pd && a_type != M_MRA && w >= pd_word(a_type) && pdw < 6'd56 && {pdw, 2'b00} < {a_pdlen}) begin
            israw = 1'b1;
            raw = pd_raw(pdw);
            if ({pdw, 2'b00} + 8'd1 >= a_pdlen) raw[15:8] = 8'd0;
            if ({pdw, 2'b00} + 8'd2 >= a_pdlen) raw[23:16] = 8'd0;
            if ({pdw, 2'b00} + 8'd3 >= a_pdlen) raw[31:24] = 8'd0;
        end
        // An MRA's private data starts at MAD byte 34: word 8's last two bytes, then whole words;
        // byte i of word w is private-data byte 4 (w - 8) - 2 + i.
        mra_b0 = {pdw, 2'b00} - 8'd2;
        if (a_pd && a_type == M_MRA && w >= 6'd8 && (pdw != 6'd0 || a_pdlen != 8'd0)) begin
            israw = 1'b1;
            raw = pd_shifted(pdw);
            if (pdw == 6'd0) begin
                raw[15:0] = {be[23:16], be[31:24]};   // word 8's fields, as bswap lays them
                if (a_pdlen < 8'd2) raw[31:24] = 8'd0;
            end else begin
                if (mra_b0 >= a_pdlen) raw[7:0] = 8'd0;
                if (mra_b0 + 8'd1 >= a_pdlen) raw[15:8] = 8'd0;
                if (mra_b0 + 8'd2 >= a_pdlen) raw[23:16] = 8'd0;
                if (mra_b0 + 8'd3 >= a_pdlen) raw[31:24] = 8'd0;
            end
        end

        mad_word = israw ? raw : bswap(be);
    end
endfunction

// Word w of the event being built (little-endian value).
function [31:0] eqe_word(input [5:0] w);
    reg [5:0] pdw;
    begin
        eqe_word = 32'd0;
        pdw = w - 6'd6;
        case (w)
            6'd0: eqe_word = {c_lport, e_pdlen, e_type};
            6'd1: eqe_word = comm_of(c_gen, qpn_reg);
            6'd2: eqe_word = c_rip;
            6'd3: eqe_word = {e_reason, c_rport};
            6'd4: eqe_word = {8'd0, c_rqpn};
            6'd63: eqe_word = {eq_phase, 31'd0};
            default: begin
                if (w >= 6'd6 && w < 6'd62 && pdw < e_pn) begin
                    eqe_word = e_sh ? rx_shifted(e_pw + pdw) : rx_raw(e_pw + pdw);
                end
            end
        endcase
    end
endfunction

// The row being built with the BL words from word b_w set, for a MAD and for an event.
reg [DATA_WIDTH-1:0] b_row_mad, b_row_eqe;
reg [5:0] b_wl;
integer bl;
always @* begin
    b_row_mad = b_row;
    b_row_eqe = b_row;
    for (bl = 0; bl < BL; bl = bl + 1) begin
        b_wl = b_w + bl[5:0];
        b_row_mad[32 * (b_lane + bl) +: 32] = mad_word(b_wl);
        b_row_eqe[32 * (b_lane + bl) +: 32] = eqe_word(b_wl);
    end
end

// Unpacking a context read.
task unpack(input [CTX_W-1:0] v);
    begin
        {c_state, c_gen, c_passive, c_lidx, c_rcomm, c_rqpn, c_rpsn, c_rip, c_rmac, c_rport,
         c_lport, c_spsn, c_sport, c_tr, c_logs, c_vec, c_sqb, c_rqb, c_cqb, c_retries, c_prto} = v;
    end
endtask

// Parking of the timer scan: clean checks since the last job, and the earliest armed deadline
// they saw. Once every connection has been checked the scan stops and the engine holds still
// until a job comes or time reaches that deadline.
reg             tp_reg = 1'b0;
reg [QPN_W:0]   tp_cnt = 0;
reg             tp_vld = 1'b0;
reg [23:0]      tp_dl = 24'd0;
wire [23:0]     tp_left = now_reg - tp_dl;
wire            tp_due = tp_vld && !tp_left[23] && tp_left != 24'd0;
// The first tick at which the earliest timer fires, as a shell tick.
wire [23:0]     tp_delta = tp_dl + 24'd1 - now_reg;
assign m_parked = tp_reg;
assign m_wake_valid = tp_reg && tp_vld;
assign m_wake_tick = {time_tick[31:2] + {6'd0, tp_delta}, 2'b00};

wire [24:0] tmr_scan = tmr_mem[tscan_reg];
wire [23:0] tmr_from_min = tmr_scan[23:0] - tp_dl;
wire tp_earlier = tmr_from_min[23];
wire unused_tmr_from_min = &{1'b0, tmr_from_min[22:0]};
wire [23:0] tmr_left = now_reg - tmr_scan[23:0];
// The deadline has passed: now is at most 2^23 ticks after it.
wire tmr_fire = tmr_scan[24] && !tmr_left[23] && tmr_left != 24'd0;
wire unused_tmr = &{1'b0, tmr_left[22:0]};
wire [64:0] key_scan = key_mem[scan_reg];
wire key_scan_hit = key_scan[64] && key_scan[63:32] == rx_their && key_scan[31:0] == rx_ip_reg;
wire [QPN_W:0] hx_look = hx_mem[hx_reg];
// At E_FIN: the job's connection's key as stored, and the buckets of that key and of the new one.
wire [64:0] key_old = key_mem[qpn_reg];
wire [QPN_W-1:0] hx_old_at = key_hash(key_old[47:32], key_old[31:0]);
wire unused_key_old = &{1'b0, key_old[63:48]};   // the hash takes the comm ID's low half
wire [QPN_W-1:0] hx_new_at = key_hash(c_rcomm[15:0], c_rip);
wire [QPN_W:0] hx_old = hx_mem[hx_old_at];
wire [QPN_W:0] hx_new = hx_mem[hx_new_at];

// Default actions for a new job.
task clear_actions;
    begin
        a_mad = 1'b0; a_load = 1'b0; a_rts = 1'b0; a_eqe = 1'b0; a_res = 1'b0; a_ctxw = 1'b0;
        a_free = 1'b0; a_resend = 1'b0; a_type = M_REQ; a_slot = {1'b0, qpn_reg}; a_pd = 1'b0;
        a_pdlen = 8'd0; a_reason = 16'd0; a_msg = 2'd0; a_lcomm = 32'd0; a_rcomm = 32'd0;
        a_tid = 32'd0; a_dmac = 48'd0; a_dip = 32'd0; a_sport = 16'hC000;
        e_type = 8'd0; e_reason = 16'd0; e_pw = 6'd0; e_pn = 6'd0; e_pdlen = 8'd0; e_sh = 1'b0;
        r_status = 8'd0; r_conn = 32'd0; a_tmr = 2'd0; t_dl = 24'd0; a_key = 2'd0;
        a_lpend_inc = 1'b0; a_lpend_dec = 1'b0; a_lidx = 4'd0;
    end
endtask

// A MAD for the connection in qpn_reg, to its peer.
task mad_to_peer(input [2:0] m);
    begin
        a_mad = 1'b1;
        a_type = m;
        a_slot = {1'b0, qpn_reg};
        a_lcomm = comm_of(c_gen, qpn_reg);
        a_rcomm = c_rcomm;
        a_tid = (m == M_REQ || m == M_RTU || m == M_DREQ) ? comm_of(c_gen, qpn_reg) : c_rcomm;
        a_dmac = c_rmac;
        a_dip = c_rip;
        a_sport = c_sport;
    end
endtask

// The received message's private data, for an event.
task ev_pdata(input [2:0] m);
    begin
        e_pw = pd_word(m);
        e_pdlen = pd_bytes(m);
        e_pn = pd_words(m);
        e_sh = m == M_MRA;
    end
endtask

task post_event(input [7:0] t);
    begin
        a_eqe = 1'b1;
        e_type = t;
    end
endtask

// A REQ whose key is not in its bucket: new, unless some key lives outside its bucket; then
// the scan decides.
task not_indexed;
    begin
        if (hx_over != 0) begin
            scan_reg <= 0;
            e_state <= E_SCAN;
        end else begin
            e_state <= E_REQNEW;
        end
    end
endtask

// A passive request is answered, withdrawn or expired: it leaves its listener's backlog.
task leave_backlog;
    begin
        a_lpend_dec = 1'b1;
        a_lidx = c_lidx;
    end
endtask

// The connection leaves for good: engines stopped (if it was loaded), number freed.
task release_conn(input loaded);
    begin
        c_state = C_IDLE;
        a_free = 1'b1;
        a_tmr = 2'd2;
        a_key = 2'd2;
        if (loaded) begin
            a_load = 1'b1;
            a_rts = 1'b0;
        end
    end
endtask

task arm(input [23:0] dl);
    begin
        a_tmr = 2'd1;
        t_dl = dl;
    end
endtask

// Per-job registers kept between steps (the combinational decisions land in these).
reg [QPN_W-1:0] fl_pop_qpn;
always @* fl_pop_qpn = fl_mem[fl_head];

always @* err_pop = e_state == E_IDLE && !(rx_full_reg && !rx_done)
    && !(en_reg && cfg_enable && cmd_ci_reg != cmd_pi_reg) && err_valid;

always @(posedge clk) begin
    ctx_we <= 1'b0;
    mad_we <= 1'b0;
    eq_we <= 1'b0;
    sq_push <= 1'b0;
    rx_done <= 1'b0;
    st_tx <= 1'b0;
    st_rx <= 1'b0;
    st_drop <= 1'b0;
    st_resend <= 1'b0;
    st_timeout <= 1'b0;
    st_refused <= 1'b0;
    en_reg <= cfg_enable;

    // Doorbells and the event ring's interrupt.
    if (s_db_cmd_valid) begin
        cmd_pi_reg <= s_db_cmd_pi;
    end
    if (s_db_eq_valid) begin
        eq_ci_reg <= s_db_eq_ci;
        if (s_db_eq_arm) begin
            eq_armed_reg <= 1'b1;
        end
    end
    if (msix_valid_reg && m_msix_ready) begin
        msix_valid_reg <= 1'b0;
    end
    if (eq_armed_reg && eq_pi_reg != eq_ci_reg && !msix_valid_reg && !s_db_eq_valid) begin
        eq_armed_reg <= 1'b0;
        msix_valid_reg <= 1'b1;
    end
    if (enable_rise) begin
        cmd_ci_reg <= 16'd0;
        cmd_pi_reg <= 16'd0;
        eq_pi_reg <= 16'd0;
        eq_ci_reg <= 16'd0;
        eq_armed_reg <= 1'b0;
    end

    if (rd_req_reg && m_dma_rd_req_ready) rd_req_reg <= 1'b0;
    if (wr_req_reg && m_dma_wr_req_ready) begin
        wr_req_reg <= 1'b0;
        wr_data_reg <= 1'b1;
        wr_prime_reg <= 1'b1;
        wr_row_reg <= 0;
    end
    if (wr_prime_reg) wr_prime_reg <= 1'b0;
    if (ld_valid_reg && m_ld_ready) ld_valid_reg <= 1'b0;
    if (s_flushed_valid && s_flushed_qpn == qpn_reg && fl_seen != 2'd2) fl_seen <= fl_seen + 2'd1;

    case (e_state)
        E_INIT: begin
            // Contexts cleared, every number into the free list, timers and keys cleared.
            if (!init_cnt[QPN_W]) begin
                ctx_we <= 1'b1;
                ctx_wa <= init_cnt[QPN_W-1:0];
                ctx_wd <= {CTX_W{1'b0}};
                tmr_mem[init_cnt[QPN_W-1:0]] <= 25'd0;
                key_mem[init_cnt[QPN_W-1:0]] <= 65'd0;
                hx_mem[init_cnt[QPN_W-1:0]] <= {(QPN_W+1){1'b0}};
                fl_mem[fl_tail] <= init_cnt[QPN_W-1:0];
                fl_tail <= fl_tail + 1'b1;
                fl_count <= fl_count + 1'b1;
                init_cnt <= init_cnt + 1'b1;
            end else begin
                e_state <= E_IDLE;
            end
        end

        E_IDLE: begin
            clear_actions;
            // (rx_done clears the buffer at the end of this cycle: the MAD was taken already.)
            if (rx_full_reg && !rx_done) begin
                e_state <= E_RX;
            end else if (en_reg && cfg_enable && cmd_ci_reg != cmd_pi_reg) begin
                rd_req_reg <= 1'b1;
                rd_addr_reg <= cmd_addr;
                rd_len_reg <= 16'd64;
                rd_row_reg <= 0;
                rd_err_reg <= 1'b0;
                e_state <= E_CHDR;
            end else if (err_valid) begin
                qpn_reg <= err_qpn;
                ctx_ra <= err_qpn;
                f_status_reg <= err_status;
                e_state <= E_FAIL;
            end else if (tmr_fire) begin
                qpn_reg <= tscan_reg;
                ctx_ra <= tscan_reg;
                e_state <= E_TMR;
            end else if (!tp_reg) begin
                // A clean check: note an armed timer's deadline; a whole round parks the scan.
                if (tmr_scan[24] && (!tp_vld || tp_earlier)) begin
                    tp_vld <= 1'b1;
                    tp_dl <= tmr_scan[23:0];
                end
                tscan_reg <= tscan_reg + 1'b1;
                tp_cnt <= tp_cnt + 1'b1;
                if (tp_cnt == N_QP[QPN_W:0] - 1'b1) tp_reg <= 1'b1;
            end else if (tp_due) begin
                tp_reg <= 1'b0;
                tp_cnt <= 0;
                tp_vld <= 1'b0;
            end
            if (rx_full_reg && !rx_done || en_reg && cfg_enable && cmd_ci_reg != cmd_pi_reg || err_valid || tmr_fire) begin
                // A job: the next round of the scan starts afresh.
                tp_reg <= 1'b0;
                tp_cnt <= 0;
                tp_vld <= 1'b0;
            end
        end

        // --- received MADs ---
        E_RX: begin
            if (!rx_hdr_ok) begin
                st_drop <= 1'b1;
                rx_done <= 1'b1;
                e_state <= E_IDLE;
            end else if (rx_m == M_REQ) begin
                hx_reg <= key_hash(rx_their[15:0], rx_ip_reg);
                e_state <= E_HASH;
            end else if (!rx_mine_ok) begin
                st_drop <= 1'b1;
                rx_done <= 1'b1;
                e_state <= E_IDLE;
            end else begin
                qpn_reg <= rx_mine_qpn;
                ctx_ra <= rx_mine_qpn;
                e_state <= E_RXCTX;
            end
        end

        E_HASH: begin
            if (hx_look[QPN_W]) begin
                scan_reg <= hx_look[QPN_W-1:0];
                e_state <= E_HKEY;
            end else begin
                not_indexed;
            end
        end

        E_HKEY: begin
            if (key_scan_hit) begin
                qpn_reg <= scan_reg;
                ctx_ra <= scan_reg;
                e_state <= E_RXCTX;
            end else begin
                not_indexed;
            end
        end

        E_SCAN: begin
            if (key_scan_hit) begin
                qpn_reg <= scan_reg;
                ctx_ra <= scan_reg;
                e_state <= E_RXCTX;
            end else if (&scan_reg) begin
                e_state <= E_REQNEW;
            end else begin
                scan_reg <= scan_reg + 1'b1;
            end
        end

        E_RXCTX: begin
            e_state <= E_RXDEC;
        end

        E_RXDEC: begin
            unpack(ctx_q);
            rx_done <= 1'b1;
            if (c_state == C_IDLE || (rx_m != M_REQ && (c_gen != rw7[31:16] || c_rip != rx_ip_reg))) begin
                st_drop <= 1'b1;        // stale or unknown communication ID
                e_state <= E_IDLE;
            end else begin
                st_rx <= 1'b1;
                a_ctxw = 1'b1;
                case (rx_m)
                    // A duplicate REQ: answer again with what was sent, or ignore it.
                    M_REQ: begin
                        if (c_state == C_MRA_SENT || c_state == C_REP_SENT || c_state == C_TIMEWAIT) begin
                            a_resend = 1'b1;
                        end
                        if (c_state == C_MRA_SENT) begin
                            arm(after(defer_wait(c_prto)));   // the caller is still there
                        end
                        a_ctxw = 1'b0;
                    end
                    M_MRA: begin
                        if (c_state == C_REQ_SENT) begin
                            arm(after(rw8[23:19]) + (24'd1 << (cfg_resp_timeout > 5'd22 ? 5'd22 : cfg_resp_timeout)));
                            // The listener wants more time: the host hears of it, with its data.
                            post_event(SAN_CM_EVENT_DEFERRED);
                            ev_pdata(M_MRA);
                        end else begin
                            a_ctxw = 1'b0;
                        end
                    end
                    M_REJ: begin
                        if (c_state == C_REQ_SENT || c_state == C_REP_SENT) begin
                            release_conn(c_state == C_REP_SENT);
                            post_event(SAN_CM_EVENT_REJECTED);
                            e_reason = rw8[15:0];
                            ev_pdata(M_REJ);
                        end else if (c_state == C_REQ_RCVD || c_state == C_MRA_SENT) begin
                            // The caller withdrew its request.
                            leave_backlog;
                            release_conn(1'b0);
                            post_event(SAN_CM_EVENT_REJECTED);
                            e_reason = rw8[15:0];
                            ev_pdata(M_REJ);
                        end else begin
                            a_ctxw = 1'b0;
                        end
                    end
                    M_REP: begin
                        if (c_state == C_REQ_SENT) begin
                            c_rcomm = rx_their;
                            c_rqpn = rw9[31:8];
                            c_rpsn = rw11[31:8];
                            c_state = C_ESTAB;
                            a_tmr = 2'd2;
                            a_load = 1'b1;
                            a_rts = 1'b1;
                            mad_to_peer(M_RTU);
                            post_event(SAN_CM_EVENT_ESTABLISHED);
                            ev_pdata(M_REP);
                        end else if (c_state == C_ESTAB && !c_passive) begin
                            a_resend = 1'b1;      // our RTU was lost
                            a_ctxw = 1'b0;
                        end else begin
                            a_ctxw = 1'b0;
                        end
                    end
                    M_RTU: begin
                        if (c_state == C_REP_SENT) begin
                            c_state = C_ESTAB;
                            a_tmr = 2'd2;
                            post_event(SAN_CM_EVENT_ESTABLISHED);
                        end else begin
                            a_ctxw = 1'b0;
                        end
                    end
                    M_DREQ: begin
                        if (c_state == C_ESTAB || c_state == C_REP_SENT || c_state == C_DREQ_SENT
                                || c_state == C_DREQ_ERR) begin
                            if (c_state != C_DREQ_ERR) begin
                                post_event(c_state == C_DREQ_SENT ? SAN_CM_EVENT_DISCONNECTED
                                                             : SAN_CM_EVENT_DISCONNECT_REQUEST);
                                ev_pdata(M_DREQ);
                            end
                            // A DREQ sender stopped already.
                            a_load = c_state != C_DREQ_SENT && c_state != C_DREQ_ERR;
                            a_rts = 1'b0;
                            c_state = C_TIMEWAIT;
                            mad_to_peer(M_DREP);
                            arm(after(cfg_timewait));
                        end else if (c_state == C_TIMEWAIT) begin
                            a_resend = 1'b1;      // our DREP was lost
                            a_ctxw = 1'b0;
                        end else begin
                            a_ctxw = 1'b0;
                        end
                    end
                    M_DREP: begin
                        if (c_state == C_DREQ_ERR) begin
                            c_state = C_TIMEWAIT;
                            arm(after(cfg_timewait));
                        end else if (c_state == C_DREQ_SENT) begin
                            c_state = C_TIMEWAIT;
                            arm(after(cfg_timewait));
                            post_event(SAN_CM_EVENT_DISCONNECTED);
                            ev_pdata(M_DREP);
                        end else begin
                            a_ctxw = 1'b0;
                        end
                    end
                    default: begin
                        a_ctxw = 1'b0;
                    end
                endcase
                if (a_resend) begin
                    st_resend <= 1'b1;
                    a_dmac = c_rmac;
                    a_dip = c_rip;
                    a_sport = c_sport;
                    a_slot = {1'b0, qpn_reg};
                end
                e_state <= a_mad ? E_BUILD : a_load ? E_LOAD : a_resend ? E_SEND : a_eqe ? E_EQB : E_FIN;
            end
        end

        // A REQ that is no duplicate: listener, backlog, room, MTU; else the NIC refuses it.
        E_REQNEW: begin
            st_rx <= 1'b1;
            a_mad = 1'b1;
            a_type = M_REJ;
            a_slot = SCRATCH;
            a_lcomm = 32'd0;
            a_rcomm = rx_their;
            a_tid = rx_their;
            a_dmac = rx_mac_reg;
            a_dip = rx_ip_reg;
            a_sport = 16'hC000;
            a_msg = 2'd0;
            if (!rx_ipsvc || !l_found) begin
                a_reason = SAN_CM_REJ_REASON_INVALID_SERVICE_ID;
            end else if (l_pend[l_hit] >= l_backlog[l_hit]) begin
                a_reason = SAN_CM_REJ_REASON_NO_RESOURCES;
            end else if (rw18[15:12] != our_mtu) begin
                a_reason = SAN_CM_REJ_REASON_INVALID_MTU;
            end else if (fl_count == 0) begin
                a_reason = SAN_CM_REJ_REASON_NO_QP;
            end else begin
                a_mad = 1'b0;
            end
            if (a_mad) begin
                rx_done <= 1'b1;
                st_refused <= 1'b1;
                e_state <= E_BUILD;
            end else begin
                // Take a number; its context (for the generation) is read next.
                a_lidx = l_hit;
                qpn_reg <= fl_pop_qpn;
                ctx_ra <= fl_pop_qpn;
                fl_head <= fl_head + 1'b1;
                fl_count <= fl_count - 1'b1;
                e_state <= E_ALLOC0;
            end
        end

        E_ALLOC0: begin
            e_state <= E_ALLOC;
        end

        E_ALLOC: begin
            unpack(ctx_q);
            rx_done <= 1'b1;
            c_gen = c_gen + 16'd1 == 16'd0 ? 16'd1 : c_gen + 16'd1;
            c_state = C_REQ_RCVD;
            c_passive = 1'b1;
            c_lidx = a_lidx;
            c_rcomm = rx_their;
            c_rqpn = rw14[31:8];
            c_rpsn = rw17[31:8];
            c_rip = rx_ip_reg;
            c_rmac = rx_mac_reg;
            c_rport = rw41[15:0];
            c_lport = rx_port;
            c_retries = 4'd0;
            c_prto = rw16[7:3];
            // The request expires if the host has not answered when the caller has long given
            // up (32 of its response timeouts: more than its 15 retries at most).
            arm(after(sat_code(c_prto, 5'd5)));
            a_ctxw = 1'b1;
            a_key = 2'd1;
            a_lpend_inc = 1'b1;
            post_event(SAN_CM_EVENT_REQUEST);
            ev_pdata(M_REQ);
            e_state <= E_EQB;
        end

        // --- commands ---
        E_CHDR: begin
            if (s_axis_dma_rd_tvalid) begin
                if ({{(31-ROW_W){1'b0}}, rd_row_reg} < HDR_ROWS) begin
                    ch_reg[DATA_WIDTH * rd_row_reg[$clog2(HDR_ROWS+1)-1:0] +: DATA_WIDTH] <= s_axis_dma_rd_tdata;
                end
                rd_row_reg <= rd_row_reg + 1'b1;
                if (s_axis_dma_rd_tuser) rd_err_reg <= 1'b1;
                if (s_axis_dma_rd_tlast) begin
                    e_state <= E_CDEC;
                end
            end
        end

        E_CPD: begin
            if (s_axis_dma_rd_tvalid) begin
                if ({{(31-ROW_W){1'b0}}, rd_row_reg} < PD_ROWS) begin
                    pdbuf[rd_row_reg[ROW_W-1:0]] <= s_axis_dma_rd_tdata;
                end
                rd_row_reg <= rd_row_reg + 1'b1;
                if (s_axis_dma_rd_tuser) rd_err_reg <= 1'b1;
                if (s_axis_dma_rd_tlast) begin
                    e_state <= E_CWAIT;
                end
            end
        end

        E_CDEC: begin
            a_res = 1'b1;
            cmd_ci_reg <= cmd_ci_reg + 16'd1;
            e_state <= E_RESREQ;
            if (rd_err_reg) begin
                r_status = SAN_CM_STATUS_DMA_ERROR;
            end else begin
                case (ch_op)
                    SAN_CM_OP_LISTEN: begin
                        if (l_found) begin
                            r_status = SAN_CM_STATUS_PORT_IN_USE;
                        end else if (!l_room) begin
                            r_status = SAN_CM_STATUS_TABLE_FULL;
                        end else if (ch_backlog == 16'd0) begin
                            r_status = SAN_CM_STATUS_BAD_LENGTH;
                        end else begin
                            l_valid[l_free] <= 1'b1;
                            l_port[l_free] <= ch_port;
                            l_backlog[l_free] <= ch_backlog;
                            l_pend[l_free] <= 16'd0;
                        end
                    end
                    SAN_CM_OP_UNLISTEN: begin
                        if (!l_found) begin
                            r_status = SAN_CM_STATUS_NOT_LISTENING;
                        end else begin
                            l_valid[l_hit] <= 1'b0;
                        end
                    end
                    SAN_CM_OP_CONNECT, SAN_CM_OP_ACCEPT, SAN_CM_OP_REJECT, SAN_CM_OP_DEFER,
                    SAN_CM_OP_DISCONNECT: begin
                        if (ch_pdlen > (ch_op == SAN_CM_OP_CONNECT ? 8'd56 : ch_op == SAN_CM_OP_ACCEPT ? 8'd196
                                : ch_op == SAN_CM_OP_REJECT ? 8'd148 : ch_op == SAN_CM_OP_DISCONNECT ? 8'd220
                                : 8'd222)) begin
                            r_status = SAN_CM_STATUS_BAD_LENGTH;
                        end else if ((ch_op == SAN_CM_OP_CONNECT || ch_op == SAN_CM_OP_ACCEPT) && !ch_rings_ok) begin
                            r_status = SAN_CM_STATUS_BAD_RING;
                        end else if (ch_op == SAN_CM_OP_CONNECT && fl_count == 0) begin
                            r_status = SAN_CM_STATUS_NO_CONTEXT;
                        end else if (ch_op != SAN_CM_OP_CONNECT && ch_conn[15:QPN_W] != 0) begin
                            r_status = SAN_CM_STATUS_BAD_CONN;
                        end else begin
                            // Read the private data, then the context.
                            a_res = 1'b0;
                            if (ch_op == SAN_CM_OP_CONNECT) begin
                                qpn_reg <= fl_pop_qpn;
                                ctx_ra <= fl_pop_qpn;
                                fl_head <= fl_head + 1'b1;
                                fl_count <= fl_count - 1'b1;
                            end else begin
                                qpn_reg <= ch_conn[QPN_W-1:0];
                                ctx_ra <= ch_conn[QPN_W-1:0];
                            end
                            rd_row_reg <= 0;
                            if (ch_pdlen != 8'd0) begin
                                rd_req_reg <= 1'b1;
                                rd_addr_reg <= cmd_addr + 64'd64;
                                rd_len_reg <= {8'd0, ch_pdlen + 8'd3} & 16'hFFFC;
                                e_state <= E_CPD;
                            end else begin
                                e_state <= E_CWAIT;
                            end
                        end
                    end
                    default: begin
                        r_status = SAN_CM_STATUS_BAD_OPCODE;
                    end
                endcase
            end
        end

        E_CWAIT: begin
            e_state <= E_CCONN;
        end

        E_CCONN: begin
            unpack(ctx_q);
            a_res = 1'b1;
            r_conn = comm_of(c_gen, qpn_reg);
            if (rd_err_reg) begin
                r_status = SAN_CM_STATUS_DMA_ERROR;
                if (ch_op == SAN_CM_OP_CONNECT) begin
                    a_free = 1'b1;
                end
            end else if (ch_op == SAN_CM_OP_CONNECT) begin
                c_gen = c_gen + 16'd1 == 16'd0 ? 16'd1 : c_gen + 16'd1;
                r_conn = comm_of(c_gen, qpn_reg);
                c_state = C_REQ_SENT;
                c_passive = 1'b0;
                c_lidx = 4'd0;
                c_rcomm = 32'd0;
                c_rqpn = 24'd0;
                c_rpsn = 24'd0;
                c_rip = ch_dip;
                c_rmac = ch_dmac;
                c_rport = ch_port;
                c_lport = ch_conn[15:0];
                c_spsn = ch_psn;
                c_sport = ch_sport;
                c_tr = ch_tr;
                c_logs = ch_logs;
                c_vec = ch_vector;
                c_sqb = ch_sqb;
                c_rqb = ch_rqb;
                c_cqb = ch_cqb;
                c_retries = cfg_max_retries;
                a_ctxw = 1'b1;
                a_mad = 1'b1;
                a_type = M_REQ;
                a_slot = {1'b0, qpn_reg};
                a_lcomm = comm_of(c_gen, qpn_reg);
                a_tid = comm_of(c_gen, qpn_reg);
                a_dmac = ch_dmac;
                a_dip = ch_dip;
                a_sport = ch_sport;
                a_pd = 1'b1;
                a_pdlen = ch_pdlen;
                arm(after(cfg_resp_timeout));
            end else if (c_state == C_IDLE || c_gen != ch_conn[31:16]) begin
                r_status = SAN_CM_STATUS_BAD_CONN;
            end else begin
                case (ch_op)
                    SAN_CM_OP_ACCEPT: begin
                        if (c_state == C_REQ_RCVD || c_state == C_MRA_SENT) begin
                            c_state = C_REP_SENT;
                            c_spsn = ch_psn;
                            c_sport = ch_sport;
                            c_tr = ch_tr;
                            c_logs = ch_logs;
                            c_vec = ch_vector;
                            c_sqb = ch_sqb;
                            c_rqb = ch_rqb;
                            c_cqb = ch_cqb;
                            c_retries = cfg_max_retries;
                            a_ctxw = 1'b1;
                            leave_backlog;
                            mad_to_peer(M_REP);
                            a_sport = ch_sport;
                            a_pd = 1'b1;
                            a_pdlen = ch_pdlen;
                            a_load = 1'b1;
                            a_rts = 1'b1;
                            arm(after(cfg_resp_timeout));
                        end else begin
                            r_status = SAN_CM_STATUS_BAD_STATE;
                        end
                    end
                    SAN_CM_OP_REJECT: begin
                        if (c_state == C_REQ_RCVD || c_state == C_MRA_SENT) begin
                            c_state = C_TIMEWAIT;     // answers a repeated REQ with the REJ
                            a_ctxw = 1'b1;
                            leave_backlog;
                            mad_to_peer(M_REJ);
                            a_msg = 2'd0;
                            a_reason = ch_reason;
                            a_pd = 1'b1;
                            a_pdlen = ch_pdlen;
                            arm(after(cfg_timewait));
                        end else begin
                            r_status = SAN_CM_STATUS_BAD_STATE;
                        end
                    end
                    SAN_CM_OP_DEFER: begin
                        if (c_state == C_REQ_RCVD || c_state == C_MRA_SENT) begin
                            c_state = C_MRA_SENT;
                            arm(after(defer_wait(c_prto)));
                            a_ctxw = 1'b1;
                            mad_to_peer(M_MRA);
                            a_msg = 2'd0;
                            a_pd = 1'b1;
                            a_pdlen = ch_pdlen;
                        end else begin
                            r_status = SAN_CM_STATUS_BAD_STATE;
                        end
                    end
                    SAN_CM_OP_DISCONNECT: begin
                        if (c_state == C_ESTAB || c_state == C_REP_SENT) begin
                            c_state = C_DREQ_SENT;
                            c_retries = cfg_max_retries;
                            a_ctxw = 1'b1;
                            mad_to_peer(M_DREQ);
                            a_pd = 1'b1;
                            a_pdlen = ch_pdlen;
                            a_load = 1'b1;
                            a_rts = 1'b0;
                            arm(after(cfg_resp_timeout));
                        end else begin
                            r_status = SAN_CM_STATUS_BAD_STATE;
                        end
                    end
                    default: begin
                        r_status = SAN_CM_STATUS_BAD_OPCODE;
                    end
                endcase
            end
            e_state <= a_mad ? E_BUILD : a_load ? E_LOAD : E_RESREQ;
        end

        // --- timers ---
        E_TMR: begin
            e_state <= E_TDEC;
        end

        E_TDEC: begin
            unpack(ctx_q);
            a_ctxw = 1'b1;
            if (c_state == C_TIMEWAIT) begin
                release_conn(1'b0);
            end else if ((c_state == C_REQ_SENT || c_state == C_REP_SENT || c_state == C_DREQ_SENT
                    || c_state == C_DREQ_ERR) && c_retries != 4'd0) begin
                c_retries = c_retries - 4'd1;
                a_resend = 1'b1;
                a_dmac = c_rmac;
                a_dip = c_rip;
                a_sport = c_sport;
                a_slot = {1'b0, qpn_reg};
                st_resend <= 1'b1;
                arm(after(cfg_resp_timeout));
            end else if (c_state == C_REQ_SENT || c_state == C_REP_SENT) begin
                // Given up: tell the peer (REJ timeout), then the host.
                st_timeout <= 1'b1;
                a_msg = c_state == C_REQ_SENT ? 2'd0 : 2'd1;
                release_conn(c_state == C_REP_SENT);
                mad_to_peer(M_REJ);
                a_reason = SAN_CM_REJ_REASON_TIMEOUT;
                post_event(SAN_CM_EVENT_TIMED_OUT);
                e_reason = SAN_CM_REJ_REASON_TIMEOUT;
            end else if (c_state == C_DREQ_SENT || c_state == C_DREQ_ERR) begin
                st_timeout <= 1'b1;
                if (c_state == C_DREQ_SENT) begin
                    post_event(SAN_CM_EVENT_DISCONNECTED);
                    e_reason = SAN_CM_REJ_REASON_TIMEOUT;
                end
                c_state = C_TIMEWAIT;
                arm(after(cfg_timewait));
            end else if (c_state == C_REQ_RCVD || c_state == C_MRA_SENT) begin
                // A request the caller stopped repeating (its REJ withdrawing it lost): gone.
                st_timeout <= 1'b1;
                leave_backlog;
                release_conn(1'b0);
                post_event(SAN_CM_EVENT_TIMED_OUT);
                e_reason = SAN_CM_REJ_REASON_TIMEOUT;
            end else begin
                a_tmr = 2'd2;      // nothing to time in this state
            end
            e_state <= a_mad ? E_BUILD : a_resend ? E_SEND : a_eqe ? E_EQB : E_FIN;
        end

        // --- transport failures ---
        E_FAIL: begin
            e_state <= E_FDEC;
        end

        // An established connection (or one whose REP awaits its RTU: loaded already) whose
        // transport failed: the host hears of it once (CONN_ERROR with the failed send's
        // status), the engines stop, and the peer is told with a DREQ, as IB CM does on a
        // transport error; then TIMEWAIT. A report for a connection in any other state (it was
        // stopped meanwhile) changes nothing.
        E_FDEC: begin
            unpack(ctx_q);
            if (c_state == C_ESTAB || c_state == C_REP_SENT) begin
                a_ctxw = 1'b1;
                c_state = C_DREQ_ERR;
                c_retries = cfg_max_retries;
                mad_to_peer(M_DREQ);
                a_load = 1'b1;
                a_rts = 1'b0;
                arm(after(cfg_resp_timeout));
                post_event(SAN_CM_EVENT_CONN_ERROR);
                e_reason = {8'd0, f_status_reg};
                e_state <= E_BUILD;
            end else begin
                e_state <= E_IDLE;
            end
        end

        // --- the steps ---
        E_BUILD: begin
            if (!tx_busy_slot) begin
                b_row <= b_row_mad;
                if (b_lane == WPB - BL) begin
                    mad_we <= 1'b1;
                    mad_wa <= {a_slot, b_rowi};
                    mad_wd <= b_row_mad;
                end
                b_w <= b_w + BL6;
                if (b_w == LAST_BW) begin
                    b_w <= 6'd0;
                    e_state <= a_load ? E_LOAD : E_SEND;
                end
            end
        end

        E_SEND: begin
            if (!sq_full && !sq_push) begin
                sq_push <= 1'b1;
                sq_push_data <= {a_slot, a_dmac, a_dip, a_sport};
                st_tx <= 1'b1;
                e_state <= a_eqe ? E_EQB : a_res ? E_RESREQ : E_FIN;
            end
        end

        E_LOAD: begin
            if (!ld_valid_reg && !ld_issued) begin
                ld_valid_reg <= 1'b1;
                ld_issued <= 1'b1;
                fl_seen <= 2'd0;
            end else if (ld_issued && !ld_valid_reg && (a_rts || fl_seen == 2'd2)) begin
                // A stop goes on (MAD, event) only once both flushes have drained: the event is
                // the point after which the connection's CQEs are all in host memory.
                ld_issued <= 1'b0;
                e_state <= (a_mad || a_resend) ? E_SEND : a_eqe ? E_EQB : a_res ? E_RESREQ : E_FIN;
            end
        end

        E_EQB: begin
            if (!eq_full) begin
                b_row <= b_row_eqe;
                if (b_lane == WPB - BL) begin
                    eq_we <= 1'b1;
                    eq_wa <= b_rowi;
                    eq_wd <= b_row_eqe;
                end
                b_w <= b_w + BL6;
                if (b_w == LAST_BW) begin
                    b_w <= 6'd0;
                    e_state <= E_EQREQ;
                end
            end
        end

        E_EQREQ: begin
            if (!wr_req_reg && !wr_data_reg) begin
                wr_req_reg <= 1'b1;
                wr_addr_reg <= eq_addr;
                wr_len_reg <= 16'd256;
                wr_res_reg <= 1'b0;
                e_state <= E_EQDATA;
            end
        end

        E_EQDATA: begin
            if (wr_beat) begin
                wr_row_reg <= wr_row_reg + 1'b1;
                if (m_axis_dma_wr_tlast) begin
                    wr_data_reg <= 1'b0;
                    eq_pi_reg <= eq_pi_reg + 16'd1;
                    e_state <= a_res ? E_RESREQ : E_FIN;
                end
            end
        end

        E_RESREQ: begin
            if (!wr_req_reg && !wr_data_reg) begin
                wr_req_reg <= 1'b1;
                wr_addr_reg <= res_addr;
                wr_len_reg <= 16'd8;
                wr_res_reg <= 1'b1;
                e_state <= E_RESDATA;
            end
        end

        E_RESDATA: begin
            if (wr_beat) begin
                wr_data_reg <= 1'b0;
                e_state <= E_FIN;
            end
        end

        E_FIN: begin
            if (a_ctxw) begin
                ctx_we <= 1'b1;
                ctx_wa <= qpn_reg;
                ctx_wd <= c_packed;
            end
            if (a_tmr == 2'd1) tmr_mem[qpn_reg] <= {1'b1, t_dl};
            if (a_tmr == 2'd2) tmr_mem[qpn_reg] <= 25'd0;
            if (a_key == 2'd1) begin
                key_mem[qpn_reg] <= {1'b1, c_rcomm, c_rip};
                if (!hx_new[QPN_W]) begin
                    hx_mem[hx_new_at] <= {1'b1, qpn_reg};
                end else begin
                    hx_over <= hx_over + 1'b1;
                end
            end
            if (a_key == 2'd2 && key_old[64]) begin
                key_mem[qpn_reg] <= 65'd0;
                if (hx_old == {1'b1, qpn_reg}) begin
                    hx_mem[hx_old_at] <= {(QPN_W+1){1'b0}};
                end else begin
                    hx_over <= hx_over - 1'b1;
                end
            end
            if (a_free) begin
                fl_mem[fl_tail] <= qpn_reg;
                fl_tail <= fl_tail + 1'b1;
                fl_count <= fl_count + 1'b1;
            end
            if (a_lpend_inc && l_pend[a_lidx] != 16'hFFFF) l_pend[a_lidx] <= l_pend[a_lidx] + 16'd1;
            if (a_lpend_dec && l_pend[a_lidx] != 16'd0) l_pend[a_lidx] <= l_pend[a_lidx] - 16'd1;
            e_state <= E_IDLE;
        end

        default: begin
            e_state <= E_IDLE;
        end
    endcase

    if (rst || enable_rise) begin
        // Enabling starts the rings afresh; connections and listeners stay.
        wr_req_reg <= 1'b0;
        wr_data_reg <= 1'b0;
        rd_req_reg <= 1'b0;
    end
    if (rst) begin
        e_state <= E_INIT;
        init_cnt <= 0;
        fl_head <= 0;
        fl_tail <= 0;
        fl_count <= 0;
        hx_over <= 0;
        l_valid <= {N_LISTEN{1'b0}};
        ld_valid_reg <= 1'b0;
        ld_issued <= 1'b0;
        fl_seen <= 2'd0;
        msix_valid_reg <= 1'b0;
        eq_armed_reg <= 1'b0;
        cmd_pi_reg <= 16'd0;
        cmd_ci_reg <= 16'd0;
        eq_pi_reg <= 16'd0;
        eq_ci_reg <= 16'd0;
        b_w <= 6'd0;
        tscan_reg <= 0;
        tp_reg <= 1'b0;
        tp_cnt <= 0;
        tp_vld <= 1'b0;
    end
end


endmodule

`resetall

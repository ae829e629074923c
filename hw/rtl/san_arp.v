// SPDX-License-Identifier: MIT
// san_arp: ARP (RFC 826, Ethernet and IPv4) for the port's address: answers requests for it,
// sends requests on the host's command, and queues the replies it receives for the host, with
// an armed interrupt.

`resetall
`timescale 1ns / 1ps
`default_nettype none

// The receiver (san_rx_parser) has already checked each ARP frame: for Ethernet and IPv4, a
// request or a reply, its target our address. Here:
// - A request is answered with a reply to its sender's MAC (Ethernet destination and target
//   hardware address), its target IP the sender's, from cfg_mac and cfg_ip.
// - A reply is queued in the reply FIFO (sender IP and MAC) for the host, or counted lost when
//   the FIFO is full. Replies are taken in any cycle, also while a frame is being sent.
// - A host request (s_req_*) sends a request to the broadcast address for s_req_ip, its
//   target hardware address zero.
// One frame is built at a time; when an answer and a host request both wait they take turns.
// Frames are MinEthernetFrameLen (60) bytes, the 42 of the ARP frame and zero padding, one beat
// a cycle on m_axis_tx_* from the cycle after the job is taken; the transmitter may stall them.
//
// Interrupt: s_rep_arm arms the vector cfg_vector; while armed and the FIFO holds a reply, one
// MSI-X request is raised and the arm is cleared. A pop and an arm in the same cycle (one
// REPLY_POP write) act on the FIFO as it is after the pop.
module san_arp #(
    // Frame stream width in bits; a power of two from 64 to 512.
    parameter DATA_WIDTH = 64,
    // Reply FIFO entries for the host; a power of two from 2 to 64.
    parameter REPLY_DEPTH = 16
) (
    input  wire                    clk,
    input  wire                    rst,

    // The port's addresses
    input  wire [47:0]             cfg_mac,
    input  wire [31:0]             cfg_ip,

    // ARP frames the receiver took: a reply (1) or a request (0), the sender's MAC and IP
    input  wire                    s_arp_reply,
    input  wire [47:0]             s_arp_sha,
    input  wire [31:0]             s_arp_spa,
    input  wire                    s_arp_valid,
    output wire                    s_arp_ready,

    // The host's requests (REQUEST writes): the IPv4 address to ask for
    input  wire [31:0]             s_req_ip,
    input  wire                    s_req_valid,
    output wire                    s_req_ready,

    // The reply FIFO's head for the host, its fill, and the host's pop and arm (pulses)
    output wire [31:0]             m_rep_ip,
    output wire [47:0]             m_rep_mac,
    output wire                    m_rep_valid,
    output wire [7:0]              m_rep_count,
    input  wire                    s_rep_pop,
    input  wire                    s_rep_arm,
    input  wire [15:0]             cfg_vector,

    // MSI-X request
    output wire [15:0]             m_msix_vector,
    output wire                    m_msix_valid,
    input  wire                    m_msix_ready,

    // Frames to the transmitter (no FCS; never aborted)
    output wire [DATA_WIDTH-1:0]   m_axis_tx_tdata,
    output wire [DATA_WIDTH/8-1:0] m_axis_tx_tkeep,
    output wire                    m_axis_tx_tvalid,
    input  wire                    m_axis_tx_tready,
    output wire                    m_axis_tx_tlast,

    // Events to count (one-cycle pulses): a request answered, a host request sent, a reply
    // queued, a reply lost to a full FIFO
    output wire                    stat_answered,
    output wire                    stat_req_sent,
    output wire                    stat_rep_received,
    output wire                    stat_rep_lost
);

localparam integer BYTES = DATA_WIDTH / 8;
localparam integer FRAME_BYTES = 60;
localparam integer BEATS = (FRAME_BYTES + BYTES - 1) / BYTES;
localparam integer BEAT_W = BEATS > 1 ? $clog2(BEATS) : 1;
localparam integer LAST_LANES = FRAME_BYTES - (BEATS - 1) * BYTES;
localparam integer CNT_W = $clog2(REPLY_DEPTH) + 1;

initial begin
    if (DATA_WIDTH < 64 || DATA_WIDTH > 512 || (DATA_WIDTH & (DATA_WIDTH - 1)) != 0) begin
        $error("san_arp: DATA_WIDTH must be a power of two from 64 to 512");
        $finish;
    end
    if (REPLY_DEPTH < 2 || REPLY_DEPTH > 64 || (REPLY_DEPTH & (REPLY_DEPTH - 1)) != 0) begin
        $error("san_arp: REPLY_DEPTH must be a power of two from 2 to 64");
        $finish;
    end
end

// The frame's bytes from a big-endian value (byte 0 in the top bits) to lanes (byte 0 in the
// low bits).
function [8*FRAME_BYTES-1:0] to_lanes(input [8*FRAME_BYTES-1:0] be);
    integer k;
    begin
        for (k = 0; k < FRAME_BYTES; k = k + 1) begin
            to_lanes[8*k +: 8] = be[8*(FRAME_BYTES-1-k) +: 8];
        end
    end
endfunction

// --- the reply FIFO and its interrupt -----------------------------------------------------------

wire rep_push = s_arp_valid && s_arp_reply;     // a reply is always taken at once
wire rep_s_ready;
wire rep_pop = s_rep_pop && m_rep_valid;

san_sync_fifo #(
    .WIDTH(32 + 48),
    .DEPTH(REPLY_DEPTH)
) rep_fifo_inst (
    .clk(clk),
    .rst(rst),
    .s_data({s_arp_spa, s_arp_sha}),
    .s_valid(rep_push),
    .s_ready(rep_s_ready),
    .m_data({m_rep_ip, m_rep_mac}),
    .m_valid(m_rep_valid),
    .m_ready(s_rep_pop)
);

reg [CNT_W-1:0] count_reg = {CNT_W{1'b0}}, count_next;
reg armed_reg = 1'b0, armed_next;
reg msix_valid_reg = 1'b0, msix_valid_next;
reg [15:0] msix_vector_reg = 16'd0, msix_vector_next;

assign m_rep_count = {{(8-CNT_W){1'b0}}, count_reg};
assign m_msix_vector = msix_vector_reg;
assign m_msix_valid = msix_valid_reg;
assign stat_rep_received = rep_push && rep_s_ready;
assign stat_rep_lost = rep_push && !rep_s_ready;

always @* begin
    count_next = count_reg + {{(CNT_W-1){1'b0}}, rep_push && rep_s_ready}
        - {{(CNT_W-1){1'b0}}, rep_pop};
    armed_next = armed_reg || s_rep_arm;
    msix_valid_next = msix_valid_reg && !m_msix_ready;
    msix_vector_next = msix_vector_reg;
    // The FIFO as the arm found it (after a pop of the same write) is on m_rep_valid a cycle
    // after the arm.
    if (armed_reg && m_rep_valid && !msix_valid_reg) begin
        armed_next = s_rep_arm;
        msix_valid_next = 1'b1;
        msix_vector_next = cfg_vector;
    end
end

// --- frames ---------------------------------------------------------------------------------------

localparam [0:0]
    S_IDLE = 1'd0,      // choosing the next job
    S_SEND = 1'd1;      // streaming the frame of the job taken

reg state_reg = S_IDLE, state_next;
reg host_turn_reg = 1'b0, host_turn_next;       // a host request goes first when both wait
reg [BEAT_W-1:0] beat_reg = {BEAT_W{1'b0}}, beat_next;
// The job: an answer (op reply) or a host request; its Ethernet destination and target.
reg op_reply_reg = 1'b0, op_reply_next;
reg [47:0] dst_reg = 48'd0, dst_next;
reg [47:0] tha_reg = 48'd0, tha_next;
reg [31:0] tpa_reg = 32'd0, tpa_next;

wire answer_waits = s_arp_valid && !s_arp_reply;
wire take_host = state_reg == S_IDLE && s_req_valid && (host_turn_reg || !answer_waits);
wire take_answer = state_reg == S_IDLE && answer_waits && !take_host;

assign s_arp_ready = s_arp_reply || take_answer;
assign s_req_ready = take_host;

wire [8*FRAME_BYTES-1:0] frame = to_lanes({dst_reg, cfg_mac, 16'h0806, 16'h0001, 16'h0800,
    8'd6, 8'd4, 14'd0, op_reply_reg, !op_reply_reg, cfg_mac, cfg_ip, tha_reg, tpa_reg,
    {(8*(FRAME_BYTES-42)){1'b0}}});
wire [BEATS*DATA_WIDTH-1:0] beats = {{(BEATS*DATA_WIDTH-8*FRAME_BYTES){1'b0}}, frame};
wire last = beat_reg == BEATS[BEAT_W-1:0] - 1'b1;
wire fire = state_reg == S_SEND && m_axis_tx_tready;

assign m_axis_tx_tdata = beats[beat_reg*DATA_WIDTH +: DATA_WIDTH];
assign m_axis_tx_tkeep = last ? {{(BYTES-LAST_LANES){1'b0}}, {LAST_LANES{1'b1}}} : {BYTES{1'b1}};
assign m_axis_tx_tvalid = state_reg == S_SEND;
assign m_axis_tx_tlast = last;
assign stat_answered = fire && last && op_reply_reg;
assign stat_req_sent = fire && last && !op_reply_reg;

always @* begin
    state_next = state_reg;
    host_turn_next = host_turn_reg;
    beat_next = beat_reg;
    op_reply_next = op_reply_reg;
    dst_next = dst_reg;
    tha_next = tha_reg;
    tpa_next = tpa_reg;

    case (state_reg)
        S_IDLE: begin
            beat_next = {BEAT_W{1'b0}};
            if (take_host) begin
                op_reply_next = 1'b0;
                dst_next = 48'hFFFF_FFFF_FFFF;
                tha_next = 48'd0;
                tpa_next = s_req_ip;
                host_turn_next = 1'b0;
                state_next = S_SEND;
            end else if (take_answer) begin
                op_reply_next = 1'b1;
                dst_next = s_arp_sha;
                tha_next = s_arp_sha;
                tpa_next = s_arp_spa;
                host_turn_next = 1'b1;
                state_next = S_SEND;
            end
        end
        S_SEND: begin
            if (fire) begin
                beat_next = beat_reg + 1'b1;
                if (last) begin
                    state_next = S_IDLE;
                end
            end
        end
        default: begin
            state_next = S_IDLE;
        end
    endcase
end

always @(posedge clk) begin
    state_reg <= state_next;
    host_turn_reg <= host_turn_next;
    beat_reg <= beat_next;
    op_reply_reg <= op_reply_next;
    dst_reg <= dst_next;
    tha_reg <= tha_next;
    tpa_reg <= tpa_next;
    count_reg <= count_next;
    armed_reg <= armed_next;
    msix_valid_reg <= msix_valid_next;
    msix_vector_reg <= msix_vector_next;

    if (rst) begin
        state_reg <= S_IDLE;
        host_turn_reg <= 1'b0;
        beat_reg <= {BEAT_W{1'b0}};
        count_reg <= {CNT_W{1'b0}};
        armed_reg <= 1'b0;
        msix_valid_reg <= 1'b0;
    end
end

endmodule

`resetall

// SPDX-License-Identifier: MIT
// san_dma_mux: three DMA read clients and three DMA write clients onto the core's single DMA read and
// write ports: round-robin requests, read data routed back by tag, each write's data kept whole.

`resetall
`timescale 1ns / 1ps
`default_nettype none

// Reads: the granted request goes out through a register (1 cycle), tagged {client, sequence}:
// the top two tag bits name the client and the rest count that client's reads. The host returns each
// read's data contiguously and in request order; every beat goes, unregistered, to the client in
// its tid's top bit, and that client's tready is the host's.
//
// Writes: a granted request goes out through a register; its data may pass only once the host has
// taken the request, and then only the granted client's, until its tlast. The next request is
// granted in the cycle of that tlast, so the host sees request, its data, request, its data, ...
// and between the data of consecutive writes there is one idle cycle (the next request's).
// Tags count the writes. A write completion with error raises m_wr_error_valid for one cycle,
// one cycle later.
module san_dma_mux #(
    // DMA data width in bits; a multiple of 8 (64 in the reference build).
    parameter DATA_WIDTH = 64,
    // DMA request tag width; 3 or more. Reads in flight per client are not limited by it: the
    // host returns data in order, so only the client bits route data.
    parameter DMA_TAG_WIDTH = 8
) (
    input  wire                     clk,
    input  wire                     rst,

    // Read client 0: requests, then its data
    input  wire [63:0]              s_rd0_req_addr,
    input  wire [15:0]              s_rd0_req_len,
    input  wire                     s_rd0_req_valid,
    output wire                     s_rd0_req_ready,
    output wire [DATA_WIDTH-1:0]    m_axis_rd0_tdata,
    output wire [DATA_WIDTH/8-1:0]  m_axis_rd0_tkeep,
    output wire                     m_axis_rd0_tvalid,
    input  wire                     m_axis_rd0_tready,
    output wire                     m_axis_rd0_tlast,
    output wire                     m_axis_rd0_tuser,

    // Read client 1
    input  wire [63:0]              s_rd1_req_addr,
    input  wire [15:0]              s_rd1_req_len,
    input  wire                     s_rd1_req_valid,
    output wire                     s_rd1_req_ready,
    output wire [DATA_WIDTH-1:0]    m_axis_rd1_tdata,
    output wire [DATA_WIDTH/8-1:0]  m_axis_rd1_tkeep,
    output wire                     m_axis_rd1_tvalid,
    input  wire                     m_axis_rd1_tready,
    output wire                     m_axis_rd1_tlast,
    output wire                     m_axis_rd1_tuser,

    // Read client 2
    input  wire [63:0]              s_rd2_req_addr,
    input  wire [15:0]              s_rd2_req_len,
    input  wire                     s_rd2_req_valid,
    output wire                     s_rd2_req_ready,
    output wire [DATA_WIDTH-1:0]    m_axis_rd2_tdata,
    output wire [DATA_WIDTH/8-1:0]  m_axis_rd2_tkeep,
    output wire                     m_axis_rd2_tvalid,
    input  wire                     m_axis_rd2_tready,
    output wire                     m_axis_rd2_tlast,
    output wire                     m_axis_rd2_tuser,

    // Host reads: requests, and their data in request order with the request's tag in tid
    output wire [63:0]              m_dma_rd_req_addr,
    output wire [15:0]              m_dma_rd_req_len,
    output wire [DMA_TAG_WIDTH-1:0] m_dma_rd_req_tag,
    output wire                     m_dma_rd_req_valid,
    input  wire                     m_dma_rd_req_ready,
    input  wire [DATA_WIDTH-1:0]    s_axis_dma_rd_tdata,
    input  wire [DATA_WIDTH/8-1:0]  s_axis_dma_rd_tkeep,
    input  wire                     s_axis_dma_rd_tvalid,
    output wire                     s_axis_dma_rd_tready,
    input  wire                     s_axis_dma_rd_tlast,
    input  wire [DMA_TAG_WIDTH-1:0] s_axis_dma_rd_tid,
    input  wire                     s_axis_dma_rd_tuser,

    // Write client 0: a request, then exactly its bytes
    input  wire [63:0]              s_wr0_req_addr,
    input  wire [15:0]              s_wr0_req_len,
    input  wire                     s_wr0_req_valid,
    output wire                     s_wr0_req_ready,
    input  wire [DATA_WIDTH-1:0]    s_axis_wr0_tdata,
    input  wire [DATA_WIDTH/8-1:0]  s_axis_wr0_tkeep,
    input  wire                     s_axis_wr0_tvalid,
    output wire                     s_axis_wr0_tready,
    input  wire                     s_axis_wr0_tlast,

    // Write client 1
    input  wire [63:0]              s_wr1_req_addr,
    input  wire [15:0]              s_wr1_req_len,
    input  wire                     s_wr1_req_valid,
    output wire                     s_wr1_req_ready,
    input  wire [DATA_WIDTH-1:0]    s_axis_wr1_tdata,
    input  wire [DATA_WIDTH/8-1:0]  s_axis_wr1_tkeep,
    input  wire                     s_axis_wr1_tvalid,
    output wire                     s_axis_wr1_tready,
    input  wire                     s_axis_wr1_tlast,

    // Write client 2
    input  wire [63:0]              s_wr2_req_addr,
    input  wire [15:0]              s_wr2_req_len,
    input  wire                     s_wr2_req_valid,
    output wire                     s_wr2_req_ready,
    input  wire [DATA_WIDTH-1:0]    s_axis_wr2_tdata,
    input  wire [DATA_WIDTH/8-1:0]  s_axis_wr2_tkeep,
    input  wire                     s_axis_wr2_tvalid,
    output wire                     s_axis_wr2_tready,
    input  wire                     s_axis_wr2_tlast,

    // Host writes: a request, then its data
    output wire [63:0]              m_dma_wr_req_addr,
    output wire [15:0]              m_dma_wr_req_len,
    output wire [DMA_TAG_WIDTH-1:0] m_dma_wr_req_tag,
    output wire                     m_dma_wr_req_valid,
    input  wire                     m_dma_wr_req_ready,
    output wire [DATA_WIDTH-1:0]    m_axis_dma_wr_tdata,
    output wire [DATA_WIDTH/8-1:0]  m_axis_dma_wr_tkeep,
    output wire                     m_axis_dma_wr_tvalid,
    input  wire                     m_axis_dma_wr_tready,
    output wire                     m_axis_dma_wr_tlast,
    output wire                     m_axis_dma_wr_tuser,

    // Host write completions; an error one pulses m_wr_error_valid
    input  wire [DMA_TAG_WIDTH-1:0] s_dma_wr_done_tag,
    input  wire                     s_dma_wr_done_error,
    input  wire                     s_dma_wr_done_valid,
    output wire                     m_wr_error_valid
);

localparam integer TW = DMA_TAG_WIDTH;

initial begin
    if (DATA_WIDTH < 8 || DATA_WIDTH % 8 != 0) begin
        $error("san_dma_mux: DATA_WIDTH must be a multiple of 8");
        $finish;
    end
    if (DMA_TAG_WIDTH < 3) begin
        $error("san_dma_mux: DMA_TAG_WIDTH must be 3 or more");
        $finish;
    end
end

// --- reads --------------------------------------------------------------------------------------

reg          rd_valid_reg = 1'b0, rd_valid_next;
reg [63:0]   rd_addr_reg, rd_addr_next;
reg [15:0]   rd_len_reg, rd_len_next;
reg [TW-1:0] rd_tag_reg, rd_tag_next;
reg [TW-3:0] rd_seq0_reg = {(TW-2){1'b0}}, rd_seq0_next;   // each client's reads so far
reg [TW-3:0] rd_seq1_reg = {(TW-2){1'b0}}, rd_seq1_next;
reg [TW-3:0] rd_seq2_reg = {(TW-2){1'b0}}, rd_seq2_next;
reg [1:0]    rd_rr_reg = 2'd0, rd_rr_next;                  // the client asked first

// Round robin: the first requesting client from the one after the last granted.
function [1:0] rr_pick(input [1:0] first, input [2:0] req);
    begin
        rr_pick = 2'd3;
        case (first)
            2'd1: rr_pick = req[1] ? 2'd1 : req[2] ? 2'd2 : req[0] ? 2'd0 : 2'd3;
            2'd2: rr_pick = req[2] ? 2'd2 : req[0] ? 2'd0 : req[1] ? 2'd1 : 2'd3;
            default: rr_pick = req[0] ? 2'd0 : req[1] ? 2'd1 : req[2] ? 2'd2 : 2'd3;
        endcase
    end
endfunction

// The output register takes a request when it is empty or being emptied.
wire rd_take = !rd_valid_reg || m_dma_rd_req_ready;
wire [1:0] rd_pick = rr_pick(rd_rr_reg, {s_rd2_req_valid, s_rd1_req_valid, s_rd0_req_valid});
wire rd_grant0 = rd_take && rd_pick == 2'd0;
wire rd_grant1 = rd_take && rd_pick == 2'd1;
wire rd_grant2 = rd_take && rd_pick == 2'd2;

assign s_rd0_req_ready = rd_grant0;
assign s_rd1_req_ready = rd_grant1;
assign s_rd2_req_ready = rd_grant2;
assign m_dma_rd_req_addr = rd_addr_reg;
assign m_dma_rd_req_len = rd_len_reg;
assign m_dma_rd_req_tag = rd_tag_reg;
assign m_dma_rd_req_valid = rd_valid_reg;

always @* begin
    rd_valid_next = rd_valid_reg && !m_dma_rd_req_ready;
    rd_addr_next = rd_addr_reg;
    rd_len_next = rd_len_reg;
    rd_tag_next = rd_tag_reg;
    rd_seq0_next = rd_seq0_reg;
    rd_seq1_next = rd_seq1_reg;
    rd_seq2_next = rd_seq2_reg;
    rd_rr_next = rd_rr_reg;
    if (rd_grant0) begin
        rd_valid_next = 1'b1;
        rd_addr_next = s_rd0_req_addr;
        rd_len_next = s_rd0_req_len;
        rd_tag_next = {2'd0, rd_seq0_reg};
        rd_seq0_next = rd_seq0_reg + 1'b1;
        rd_rr_next = 2'd1;
    end
    if (rd_grant1) begin
        rd_valid_next = 1'b1;
        rd_addr_next = s_rd1_req_addr;
        rd_len_next = s_rd1_req_len;
        rd_tag_next = {2'd1, rd_seq1_reg};
        rd_seq1_next = rd_seq1_reg + 1'b1;
        rd_rr_next = 2'd2;
    end
    if (rd_grant2) begin
        rd_valid_next = 1'b1;
        rd_addr_next = s_rd2_req_addr;
        rd_len_next = s_rd2_req_len;
        rd_tag_next = {2'd2, rd_seq2_reg};
        rd_seq2_next = rd_seq2_reg + 1'b1;
        rd_rr_next = 2'd0;
    end
end

// Read data: each beat to the client its tag names.
wire [1:0] rd_to = s_axis_dma_rd_tid[TW-1:TW-2];

assign m_axis_rd0_tdata = s_axis_dma_rd_tdata;
assign m_axis_rd0_tkeep = s_axis_dma_rd_tkeep;
assign m_axis_rd0_tvalid = s_axis_dma_rd_tvalid && rd_to == 2'd0;
assign m_axis_rd0_tlast = s_axis_dma_rd_tlast;
assign m_axis_rd0_tuser = s_axis_dma_rd_tuser;
assign m_axis_rd1_tdata = s_axis_dma_rd_tdata;
assign m_axis_rd1_tkeep = s_axis_dma_rd_tkeep;
assign m_axis_rd1_tvalid = s_axis_dma_rd_tvalid && rd_to == 2'd1;
assign m_axis_rd1_tlast = s_axis_dma_rd_tlast;
assign m_axis_rd1_tuser = s_axis_dma_rd_tuser;
assign m_axis_rd2_tdata = s_axis_dma_rd_tdata;
assign m_axis_rd2_tkeep = s_axis_dma_rd_tkeep;
assign m_axis_rd2_tvalid = s_axis_dma_rd_tvalid && rd_to == 2'd2;
assign m_axis_rd2_tlast = s_axis_dma_rd_tlast;
assign m_axis_rd2_tuser = s_axis_dma_rd_tuser;
// A tag of client 3 (never issued) is taken and dropped so the host cannot wedge the port.
assign s_axis_dma_rd_tready = rd_to == 2'd0 ? m_axis_rd0_tready
    : rd_to == 2'd1 ? m_axis_rd1_tready : rd_to == 2'd2 ? m_axis_rd2_tready : 1'b1;

// --- writes -------------------------------------------------------------------------------------

localparam [1:0]
    WR_IDLE = 2'd0,   // no write granted
    WR_REQ = 2'd1,    // the granted request waits in the output register for the host
    WR_DATA = 2'd2;   // the granted client's data passes until its tlast

reg [1:0]    wr_state_reg = WR_IDLE, wr_state_next;
reg [1:0]    wr_sel_reg = 2'd0, wr_sel_next;                // the granted client
reg [1:0]    wr_rr_reg = 2'd0, wr_rr_next;                  // the client asked first
reg [63:0]   wr_addr_reg, wr_addr_next;
reg [15:0]   wr_len_reg, wr_len_next;
reg [TW-1:0] wr_tag_reg, wr_tag_next;
reg [TW-1:0] wr_count_reg = {TW{1'b0}}, wr_count_next;     // writes granted so far
reg          wr_error_reg = 1'b0, wr_error_next;

wire wr_data_on = wr_state_reg == WR_DATA;
assign m_axis_dma_wr_tdata = wr_sel_reg == 2'd2 ? s_axis_wr2_tdata
    : wr_sel_reg == 2'd1 ? s_axis_wr1_tdata : s_axis_wr0_tdata;
assign m_axis_dma_wr_tkeep = wr_sel_reg == 2'd2 ? s_axis_wr2_tkeep
    : wr_sel_reg == 2'd1 ? s_axis_wr1_tkeep : s_axis_wr0_tkeep;
assign m_axis_dma_wr_tvalid = wr_data_on && (wr_sel_reg == 2'd2 ? s_axis_wr2_tvalid
    : wr_sel_reg == 2'd1 ? s_axis_wr1_tvalid : s_axis_wr0_tvalid);
assign m_axis_dma_wr_tlast = wr_sel_reg == 2'd2 ? s_axis_wr2_tlast
    : wr_sel_reg == 2'd1 ? s_axis_wr1_tlast : s_axis_wr0_tlast;
assign m_axis_dma_wr_tuser = 1'b0;
assign s_axis_wr0_tready = wr_data_on && wr_sel_reg == 2'd0 && m_axis_dma_wr_tready;
assign s_axis_wr1_tready = wr_data_on && wr_sel_reg == 2'd1 && m_axis_dma_wr_tready;
assign s_axis_wr2_tready = wr_data_on && wr_sel_reg == 2'd2 && m_axis_dma_wr_tready;

// A new request is granted when no write is open, or in the cycle its data ends.
wire wr_end = m_axis_dma_wr_tvalid && m_axis_dma_wr_tready && m_axis_dma_wr_tlast;
wire wr_free = wr_state_reg == WR_IDLE || wr_end;
wire [1:0] wr_pick = rr_pick(wr_rr_reg, {s_wr2_req_valid, s_wr1_req_valid, s_wr0_req_valid});
wire wr_grant0 = wr_free && wr_pick == 2'd0;
wire wr_grant1 = wr_free && wr_pick == 2'd1;
wire wr_grant2 = wr_free && wr_pick == 2'd2;

assign s_wr0_req_ready = wr_grant0;
assign s_wr1_req_ready = wr_grant1;
assign s_wr2_req_ready = wr_grant2;
assign m_dma_wr_req_addr = wr_addr_reg;
assign m_dma_wr_req_len = wr_len_reg;
assign m_dma_wr_req_tag = wr_tag_reg;
assign m_dma_wr_req_valid = wr_state_reg == WR_REQ;
assign m_wr_error_valid = wr_error_reg;

always @* begin
    wr_state_next = wr_state_reg;
    wr_sel_next = wr_sel_reg;
    wr_rr_next = wr_rr_reg;
    wr_addr_next = wr_addr_reg;
    wr_len_next = wr_len_reg;
    wr_tag_next = wr_tag_reg;
    wr_count_next = wr_count_reg;
    wr_error_next = s_dma_wr_done_valid && s_dma_wr_done_error;

    case (wr_state_reg)
        // Nothing open: wait for a request.
        WR_IDLE: begin
        end
        // The request is offered to the host.
        WR_REQ: begin
            if (m_dma_wr_req_ready) begin
                wr_state_next = WR_DATA;
            end
        end
        // Data until tlast; a request granted in the same cycle follows.
        WR_DATA: begin
            if (wr_end) begin
                wr_state_next = WR_IDLE;
            end
        end
        default: begin
            wr_state_next = WR_IDLE;
        end
    endcase

    if (wr_grant0 || wr_grant1 || wr_grant2) begin
        wr_state_next = WR_REQ;
        wr_sel_next = wr_pick;
        wr_rr_next = wr_pick == 2'd2 ? 2'd0 : wr_pick + 2'd1;
        wr_addr_next = wr_grant2 ? s_wr2_req_addr : wr_grant1 ? s_wr1_req_addr : s_wr0_req_addr;
        wr_len_next = wr_grant2 ? s_wr2_req_len : wr_grant1 ? s_wr1_req_len : s_wr0_req_len;
        wr_tag_next = wr_count_reg;
        wr_count_next = wr_count_reg + 1'b1;
    end
end

// Completion tags are the host's business until something retries by tag.
wire unused_wr_done_tag = &{1'b0, s_dma_wr_done_tag};
wire unused_rd_tid_seq = &{1'b0, s_axis_dma_rd_tid[TW-3:0]};

always @(posedge clk) begin
    rd_valid_reg <= rd_valid_next;
    rd_addr_reg <= rd_addr_next;
    rd_len_reg <= rd_len_next;
    rd_tag_reg <= rd_tag_next;
    rd_seq0_reg <= rd_seq0_next;
    rd_seq1_reg <= rd_seq1_next;
    rd_seq2_reg <= rd_seq2_next;
    rd_rr_reg <= rd_rr_next;
    wr_state_reg <= wr_state_next;
    wr_sel_reg <= wr_sel_next;
    wr_rr_reg <= wr_rr_next;
    wr_addr_reg <= wr_addr_next;
    wr_len_reg <= wr_len_next;
    wr_tag_reg <= wr_tag_next;
    wr_count_reg <= wr_count_next;
    wr_error_reg <= wr_error_next;

    if (rst) begin
        rd_valid_reg <= 1'b0;
        rd_seq0_reg <= {(TW-2){1'b0}};
        rd_seq1_reg <= {(TW-2){1'b0}};
        rd_seq2_reg <= {(TW-2){1'b0}};
        rd_rr_reg <= 2'd0;
        wr_state_reg <= WR_IDLE;
        wr_sel_reg <= 2'd0;
        wr_rr_reg <= 2'd0;
        wr_count_reg <= {TW{1'b0}};
        wr_error_reg <= 1'b0;
    end
end

endmodule

`resetall

// SPDX-License-Identifier: MIT
// san_sync_fifo: a small first-word-fall-through FIFO in distributed RAM (LUT RAM): the head
// entry is on m_data, read asynchronously, whenever m_valid is high.

`resetall
`timescale 1ns / 1ps
`default_nettype none

// An entry written in one cycle is visible on m_data in the next. s_ready depends only on
// registers (full or not), so a writer may make s_valid depend on it; likewise m_valid.
module san_sync_fifo #(
    // Bits per entry; 1 or more.
    parameter WIDTH = 8,
    // Entries; a power of two from 2 to 1024 (distributed RAM is meant for shallow FIFOs).
    parameter DEPTH = 16
) (
    input  wire             clk,
    input  wire             rst,

    // Write side
    input  wire [WIDTH-1:0] s_data,
    input  wire             s_valid,
    output wire             s_ready,

    // Read side: the head entry
    output wire [WIDTH-1:0] m_data,
    output wire             m_valid,
    input  wire             m_ready
);

localparam integer ADDR_WIDTH = $clog2(DEPTH);

initial begin
    if (WIDTH < 1) begin
        $error("san_sync_fifo: WIDTH must be 1 or more");
        $finish;
    end
    if (DEPTH < 2 || DEPTH > 1024 || (DEPTH & (DEPTH - 1)) != 0) begin
        $error("san_sync_fifo: DEPTH must be a power of two from 2 to 1024");
        $finish;
    end
end

// Pointers carry one bit more than the address, to tell full from empty.
reg [ADDR_WIDTH:0] wr_ptr_reg = {(ADDR_WIDTH+1){1'b0}}, wr_ptr_next;
reg [ADDR_WIDTH:0] rd_ptr_reg = {(ADDR_WIDTH+1){1'b0}}, rd_ptr_next;

reg [WIDTH-1:0] mem [0:DEPTH-1];

wire full = wr_ptr_reg == (rd_ptr_reg ^ {1'b1, {ADDR_WIDTH{1'b0}}});
wire empty = wr_ptr_reg == rd_ptr_reg;
wire push = s_valid && !full;
wire pop = m_ready && !empty;

assign s_ready = !full;
assign m_valid = !empty;
assign m_data = mem[rd_ptr_reg[ADDR_WIDTH-1:0]];

always @* begin
    wr_ptr_next = wr_ptr_reg;
    rd_ptr_next = rd_ptr_reg;
    if (push) begin
        wr_ptr_next = wr_ptr_reg + 1'b1;
    end
    if (pop) begin
        rd_ptr_next = rd_ptr_reg + 1'b1;
    end
end

// The storage: one write port, read asynchronously at the head.
always @(posedge clk) begin
    if (push) begin
        mem[wr_ptr_reg[ADDR_WIDTH-1:0]] <= s_data;
    end
end

always @(posedge clk) begin
    wr_ptr_reg <= wr_ptr_next;
    rd_ptr_reg <= rd_ptr_next;
    if (rst) begin
        wr_ptr_reg <= {(ADDR_WIDTH+1){1'b0}};
        rd_ptr_reg <= {(ADDR_WIDTH+1){1'b0}};
    end
end

endmodule

`resetall

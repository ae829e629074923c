// SPDX-License-Identifier: MIT
// san_icrc: RoCEv2 invariant CRC over a frame as it streams past (a monitor: it never stalls
// the stream). Gives the ICRC to append on transmit and the check of a received frame's ICRC in
// the cycle of the frame's last beat.

`resetall
`timescale 1ns / 1ps
`default_nettype none

// The ICRC is CRC-32 (reflected IEEE 802.3) over 8 bytes of 0xFF, then the frame from the IPv4
// header on with the variant fields forced to all-ones: IPv4 TOS, TTL and header checksum, the
// UDP checksum and BTH byte 4 (FECN/BECN/reserved). It is stored least-significant byte first,
// as an Ethernet FCS is, so running the CRC over a received frame *including* its ICRC leaves
// the fixed residue 0xDEBB20E3 in the state register when the ICRC is right: the receive check
// needs no look-ahead for where the ICRC starts.
module san_icrc #(
    // Stream width in bits; a power of two from 64 to 512.
    parameter DATA_WIDTH = 64
) (
    input  wire                    clk,
    input  wire                    rst,

    // The monitored stream: one frame per packet, starting at the Ethernet header; tkeep is
    // contiguous from lane 0.
    input  wire [DATA_WIDTH-1:0]   mon_axis_tdata,
    input  wire [DATA_WIDTH/8-1:0] mon_axis_tkeep,
    input  wire                    mon_axis_tvalid,
    input  wire                    mon_axis_tready,
    input  wire                    mon_axis_tlast,

    // Valid in the cycle of the last beat's handshake (combinational).
    output wire [31:0]             icrc,      // ICRC of the bytes so far, to append on transmit
    output wire                    icrc_ok    // the frame ended with its correct ICRC
);

localparam integer BYTES = DATA_WIDTH / 8;
// CRC state after 8 bytes of 0xFF from the all-ones start; also the good-frame residue.
localparam [31:0] CRC_SEED = 32'hDEBB20E3;
localparam integer ETH_HDR = 14;
localparam integer OFFSET_WIDTH = 16;

initial begin
    if (DATA_WIDTH < 64 || DATA_WIDTH > 512 || (DATA_WIDTH & (DATA_WIDTH - 1)) != 0) begin
        $error("san_icrc: DATA_WIDTH must be a power of two from 64 to 512");
        $finish;
    end
end

// One byte through the reflected CRC-32 register.
function [31:0] crc_byte(input [31:0] crc, input [7:0] data);
    integer k;
    reg [31:0] c;
    begin
        c = crc ^ {24'd0, data};
        for (k = 0; k < 8; k = k + 1) begin
            c = (c >> 1) ^ (32'hEDB88320 & {32{c[0]}});
        end
        crc_byte = c;
    end
endfunction

// Frame offsets of the variant bytes, replaced by 0xFF: IPv4 TOS (15), TTL (22), header
// checksum (24, 25), UDP checksum (40, 41), BTH byte 4 (46).
function is_variant(input [OFFSET_WIDTH-1:0] pos);
    begin
        is_variant = pos == 16'd15 || pos == 16'd22 || pos == 16'd24 || pos == 16'd25
            || pos == 16'd40 || pos == 16'd41 || pos == 16'd46;
    end
endfunction

reg [31:0] crc_reg = CRC_SEED, crc_next;
reg [OFFSET_WIDTH-1:0] offset_reg = {OFFSET_WIDTH{1'b0}}, offset_next;
reg [31:0] crc_beat;

wire beat = mon_axis_tvalid && mon_axis_tready;

integer i;
reg [OFFSET_WIDTH-1:0] pos;
reg [7:0] b;

always @* begin
    crc_beat = crc_reg;
    for (i = 0; i < BYTES; i = i + 1) begin
        pos = offset_reg + i[OFFSET_WIDTH-1:0];
        b = is_variant(pos) ? 8'hFF : mon_axis_tdata[8*i +: 8];
        if (mon_axis_tkeep[i] && pos >= ETH_HDR[OFFSET_WIDTH-1:0]) begin
            crc_beat = crc_byte(crc_beat, b);
        end
    end

    crc_next = crc_reg;
    offset_next = offset_reg;
    if (beat) begin
        if (mon_axis_tlast) begin
            crc_next = CRC_SEED;
            offset_next = {OFFSET_WIDTH{1'b0}};
        end else begin
            crc_next = crc_beat;
            // Saturates: nothing past 64 KiB is variant.
            if (offset_reg <= {OFFSET_WIDTH{1'b1}} - BYTES[OFFSET_WIDTH-1:0]) begin
                offset_next = offset_reg + BYTES[OFFSET_WIDTH-1:0];
            end
        end
    end
end

assign icrc = ~crc_beat;
assign icrc_ok = crc_beat == CRC_SEED;

always @(posedge clk) begin
    crc_reg <= crc_next;
    offset_reg <= offset_next;
    if (rst) begin
        crc_reg <= CRC_SEED;
        offset_reg <= {OFFSET_WIDTH{1'b0}};
    end
end

endmodule

`resetall

// SPDX-License-Identifier: MIT
// san_rx_parser: receives frames from the Ethernet MAC, checks each as hw/wire's receiver
// reference (ParseOptions.Receive) does and delivers only whole good ones (store-and-forward):
// a RoCEv2 frame as a header descriptor, then the payload realigned to lane 0; an ARP frame as
// its opcode and sender. Every other frame vanishes with a drop-reason pulse.

`resetall
`timescale 1ns / 1ps
`default_nettype none

// Each frame's bytes from the payload offset on (payload, pad, ICRC) are realigned to lane 0 as
// they arrive and written to a ring of beats in one simple dual-port RAM. After the last beat the
// frame is judged: a good frame is committed (its descriptor is pushed to a FIFO and its payload
// beats become readable), any other is dropped (the write pointer rewinds to the frame's start).
//
// Latency: the last beat of a frame is taken in cycle T; the checks are evaluated on registered
// values in cycle T+1; the drop pulse, or the descriptor at the head of an empty descriptor FIFO,
// is valid in cycle T+2, and the first payload beat in cycle T+3. A new frame may start in T+1.
//
// Drop reasons (m_drop_reason), the first that applies in this order:
//   13 MACError    the MAC flagged the frame (tuser on its last beat)
//   16 Oversize    longer than 14+20+8+12+8+4096+3+4 = 4165 bytes (the longest legal frame)
//   1..12, 22..25  the reason of hw/wire's ParseOptions{PKey: 0xFFFF, PMTU: 2^pmtu_log2,
//                  Local: {cfg_mac, cfg_ip}}.Receive, with its conditions in its order:
//                  Truncated (no Ethernet header), DstMAC (not cfg_mac; the broadcast address
//                  only for ARP), then for an ARP frame ARPMalformed and ARPTarget, for any
//                  other Truncated, EtherType, IPVersion, Truncated, IPLength, DstIP (not
//                  cfg_ip), IPProtocol, ..., Length (Truncated is checked at four places)
//   14 QPRange     BTH DestQP is not one of the connections' (N_QP to 2*N_QP-1: connection c
//                  is QP N_QP + c on the wire) and not 1 (QP 1 is the CM's)
//   15 NoRoom      the payload does not fit in the free buffer space, or the descriptor FIFO
//                  (or the payload length FIFO) is full; for an ARP frame, the ARP FIFO is
//
// A good ARP frame (request or reply for cfg_ip) is pushed, in its judging cycle, into a FIFO
// of ARP_DEPTH entries: its opcode (reply or request) and its sender's MAC and IPv4 address.
//
// Input beats are expected full (all tkeep lanes) except a frame's last, as MACs deliver them;
// the last beat's tkeep is contiguous from lane 0. Nothing hangs whatever arrives: an oversize
// frame stops being stored at 4165 bytes, and its drop is reported like any other, after its
// tlast (the parser resynchronises on it).
module san_rx_parser #(
    // Stream width in bits; a power of two from 64 to 512.
    parameter DATA_WIDTH = 64,
    // Payload buffer size in bytes: a power of two of at least 8192 (room for two of the largest
    // payloads). It is a ring of DATA_WIDTH-bit beats in one simple dual-port RAM (block RAM).
    parameter BUF_BYTES = 16384,
    // Descriptor FIFO entries (distributed RAM), and as many in the FIFO of payload lengths
    // the buffer reader follows; a power of two from 2 to 1024.
    parameter DESC_DEPTH = 32,
    // Connections: their QPs on the wire are N_QP to 2*N_QP-1 (QP numbers 0 and 1 are the
    // subnet's and the CM's); frames to any other DestQP but 1 are dropped. 2 to 2^23.
    parameter N_QP = 256,
    // ARP frames waiting for the ARP block (m_arp_*); a power of two from 2 to 1024.
    parameter ARP_DEPTH = 4
) (
    input  wire                    clk,
    input  wire                    rst,

    // Path MTU for the payload length rules, as log2 of its bytes: 8 (256) to 12 (4096)
    input  wire [3:0]              pmtu_log2,
    // The port's addresses (MAC_HI/LO, IP_ADDR): frames to others are dropped
    input  wire [47:0]             cfg_mac,
    input  wire [31:0]             cfg_ip,

    // Frames from the MAC, without FCS. tuser on the last beat: bad FCS or PHY error.
    // Never backpressured: tready is always 1.
    input  wire [DATA_WIDTH-1:0]   s_axis_rx_tdata,
    input  wire [DATA_WIDTH/8-1:0] s_axis_rx_tkeep,
    input  wire                    s_axis_rx_tvalid,
    output wire                    s_axis_rx_tready,
    input  wire                    s_axis_rx_tlast,
    input  wire                    s_axis_rx_tuser,

    // Header descriptor: one per delivered frame
    output wire [7:0]              m_hdr_opcode,
    output wire                    m_hdr_se,
    output wire [1:0]              m_hdr_pad_cnt,
    output wire [23:0]             m_hdr_dest_qp,
    output wire                    m_hdr_ack_req,
    output wire [23:0]             m_hdr_psn,
    output wire [47:0]             m_hdr_src_mac,
    output wire [31:0]             m_hdr_src_ip,
    output wire [31:0]             m_hdr_dst_ip,
    output wire [15:0]             m_hdr_udp_sport,
    // AETH of an RC ACK (opcode 0x11); zero for other opcodes
    output wire [7:0]              m_hdr_aeth_syndrome,
    output wire [23:0]             m_hdr_aeth_msn,
    // DETH of a UD SEND_ONLY (opcode 0x64); zero for other opcodes
    output wire [31:0]             m_hdr_deth_qkey,
    output wire [23:0]             m_hdr_deth_src_qp,
    // Payload bytes (pad excluded, 0..4096) that follow on m_axis_pay; none when 0
    output wire [12:0]             m_hdr_pay_len,
    output wire                    m_hdr_valid,
    input  wire                    m_hdr_ready,

    // Payload of each delivered frame with m_hdr_pay_len > 0, from lane 0: full beats except
    // the last (tlast), lanes past the payload zero
    output wire [DATA_WIDTH-1:0]   m_axis_pay_tdata,
    output wire [DATA_WIDTH/8-1:0] m_axis_pay_tkeep,
    output wire                    m_axis_pay_tvalid,
    input  wire                    m_axis_pay_tready,
    output wire                    m_axis_pay_tlast,

    // Good ARP frames: a reply (1) or a request (0), the sender's MAC and IPv4 address
    output wire                    m_arp_reply,
    output wire [47:0]             m_arp_sha,
    output wire [31:0]             m_arp_spa,
    output wire                    m_arp_valid,
    input  wire                    m_arp_ready,

    // One pulse per dropped frame, with its reason (see above); no backpressure
    output wire                    m_drop_valid,
    output wire [4:0]              m_drop_reason
);

localparam integer BYTES = DATA_WIDTH / 8;
localparam integer LANE_BITS = $clog2(BYTES);
// Frame lengths and offsets: up to MAX_FRAME, and the payload length fits too.
localparam integer LEN_WIDTH = 13;
localparam integer BEAT_WIDTH = LEN_WIDTH - LANE_BITS;   // beat index within a frame
localparam [LEN_WIDTH-1:0] MAX_FRAME = 13'd4165;
// Header bytes kept: up to the end of a DETH (62), in whole beats.
localparam integer HDR_MAX = 62;
localparam integer HDR_BEATS = (HDR_MAX + BYTES - 1) / BYTES;
// The payload buffer, in beats.
localparam integer DEPTH = BUF_BYTES / BYTES;
localparam integer ADDR_WIDTH = $clog2(DEPTH);
// Width to compare beat counts of the buffer and of a payload in.
localparam integer CNT_WIDTH = ADDR_WIDTH + 1 > 14 ? ADDR_WIDTH + 1 : 14;
localparam [24:0] QP_BASE = N_QP[24:0];
localparam [24:0] QP_LIMIT = 2 * N_QP[24:0];

// Where the payload starts (after the BTH, the AETH or the DETH): its beat and lane.
localparam integer P_BTH = 54;
localparam integer P_AETH = 58;
localparam integer P_DETH = 62;
localparam integer BASE_BTH = P_BTH / BYTES;
localparam integer BASE_AETH = P_AETH / BYTES;
localparam integer BASE_DETH = P_DETH / BYTES;
localparam integer SHIFT_BTH = P_BTH % BYTES;
localparam integer SHIFT_AETH = P_AETH % BYTES;
localparam integer SHIFT_DETH = P_DETH % BYTES;
// Offset of the beat that holds bytes 58 and 59, which a MAC's minimum-frame padding may fill.
localparam integer PAD_BEAT = (58 / BYTES) * BYTES;
localparam integer LANE58 = 58 % BYTES;
localparam integer LANE59 = 59 % BYTES;

// Opcodes the NIC supports.
localparam [7:0] OP_SEND_FIRST = 8'h00;
localparam [7:0] OP_SEND_MIDDLE = 8'h01;
localparam [7:0] OP_SEND_LAST = 8'h02;
localparam [7:0] OP_SEND_ONLY = 8'h04;
localparam [7:0] OP_ACK = 8'h11;
localparam [7:0] OP_UD_SEND_ONLY = 8'h64;

// Drop reasons: hw/wire's DropReason values, then the RTL's own.
// Drop reason codes (SAN_RX_DROP_*) come from the contract, hw/regs/san_nic.yaml.
`include "san_regs.vh"

initial begin
    if (DATA_WIDTH < 64 || DATA_WIDTH > 512 || (DATA_WIDTH & (DATA_WIDTH - 1)) != 0) begin
        $error("san_rx_parser: DATA_WIDTH must be a power of two from 64 to 512");
        $finish;
    end
    if (BUF_BYTES < 8192 || (BUF_BYTES & (BUF_BYTES - 1)) != 0) begin
        $error("san_rx_parser: BUF_BYTES must be a power of two of at least 8192");
        $finish;
    end
    if (DESC_DEPTH < 2 || DESC_DEPTH > 1024 || (DESC_DEPTH & (DESC_DEPTH - 1)) != 0) begin
        $error("san_rx_parser: DESC_DEPTH must be a power of two from 2 to 1024");
        $finish;
    end
    if (N_QP < 2 || N_QP > 8388608) begin
        $error("san_rx_parser: N_QP must be from 2 to 2^23");
        $finish;
    end
    if (ARP_DEPTH < 2 || ARP_DEPTH > 1024 || (ARP_DEPTH & (ARP_DEPTH - 1)) != 0) begin
        $error("san_rx_parser: ARP_DEPTH must be a power of two from 2 to 1024");
        $finish;
    end
end

function [LANE_BITS:0] keep_count(input [BYTES-1:0] keep);
    integer k;
    begin
        keep_count = {(LANE_BITS+1){1'b0}};
        for (k = 0; k < BYTES; k = k + 1) begin
            if (keep[k]) keep_count = k[LANE_BITS:0] + 1'b1;
        end
    end
endfunction

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

assign s_axis_rx_tready = 1'b1;

// --- receive side: one beat per cycle ------------------------------------------------------------

reg in_frame_reg = 1'b0, in_frame_next;            // beats of a frame have arrived, not its last
reg [LEN_WIDTH-1:0] len_reg = {LEN_WIDTH{1'b0}}, len_next;  // its bytes so far (frozen if oversize)
reg oversize_reg = 1'b0, oversize_next;
reg stop_reg = 1'b0, stop_next;                    // no more buffer writes for this frame
reg flush_reg = 1'b0, flush_next;                  // carry holds bytes to write after the last beat
reg mac_err_reg = 1'b0, mac_err_next;              // tuser of the last beat
reg icrc_ok_reg = 1'b0, icrc_ok_next;              // ICRC check at the last beat
reg eof_reg = 1'b0, eof_next;                      // a frame's last beat came in the cycle before
reg [DATA_WIDTH-1:0] carry_reg = {DATA_WIDTH{1'b0}}, carry_next;  // realigned bytes to write
reg [HDR_BEATS*DATA_WIDTH-1:0] hdr_reg = {HDR_BEATS*DATA_WIDTH{1'b0}};  // byte i: [8*i +: 8]
reg [HDR_BEATS*DATA_WIDTH-1:0] hdr_cur;            // the header bytes with this beat's in place

wire rx_beat = s_axis_rx_tvalid;
wire [LEN_WIDTH-1:0] off = in_frame_reg ? len_reg : {LEN_WIDTH{1'b0}};  // this beat's offset
wire [BEAT_WIDTH-1:0] beat_idx = off[LEN_WIDTH-1:LANE_BITS];
wire [LANE_BITS:0] keep_n = keep_count(s_axis_rx_tkeep);
wire [LANE_BITS:0] beat_n = s_axis_rx_tlast ? keep_n : BYTES[LANE_BITS:0];
wire [LEN_WIDTH:0] len_sum = {1'b0, off} + {{(LEN_WIDTH-LANE_BITS){1'b0}}, beat_n};
wire too_long = len_sum > {1'b0, MAX_FRAME};

integer hb;
always @* begin
    hdr_cur = hdr_reg;
    for (hb = 0; hb < HDR_BEATS; hb = hb + 1) begin
        if (rx_beat && beat_idx == hb[BEAT_WIDTH-1:0]) begin
            hdr_cur[hb*DATA_WIDTH +: DATA_WIDTH] = s_axis_rx_tdata;
        end
    end
end

// The opcode (byte 42) is in hdr_cur by the beat where the payload starts.
wire [7:0] cur_opcode = hdr_cur[8*42 +: 8];
wire [15:0] cur_total = {hdr_cur[8*16 +: 8], hdr_cur[8*17 +: 8]};

// Realignment: the beat where the payload starts keeps its bytes from the payload lane on in
// carry; each later beat completes carry with its bytes below that lane and writes it.
reg [BEAT_WIDTH-1:0] base_beat;
reg [LANE_BITS:0] shift_n;
reg [DATA_WIDTH-1:0] beat_carry;
reg [DATA_WIDTH-1:0] beat_joined;

always @* begin
    if (cur_opcode == OP_UD_SEND_ONLY) begin
        base_beat = BASE_DETH[BEAT_WIDTH-1:0];
        shift_n = SHIFT_DETH[LANE_BITS:0];
        beat_carry = s_axis_rx_tdata >> (8 * SHIFT_DETH);
        beat_joined = carry_reg | (s_axis_rx_tdata << (8 * (BYTES - SHIFT_DETH)));
    end else if (cur_opcode == OP_ACK) begin
        base_beat = BASE_AETH[BEAT_WIDTH-1:0];
        shift_n = SHIFT_AETH[LANE_BITS:0];
        beat_carry = s_axis_rx_tdata >> (8 * SHIFT_AETH);
        beat_joined = carry_reg | (s_axis_rx_tdata << (8 * (BYTES - SHIFT_AETH)));
    end else begin
        base_beat = BASE_BTH[BEAT_WIDTH-1:0];
        shift_n = SHIFT_BTH[LANE_BITS:0];
        beat_carry = s_axis_rx_tdata >> (8 * SHIFT_BTH);
        beat_joined = carry_reg | (s_axis_rx_tdata << (8 * (BYTES - SHIFT_BTH)));
    end
end

wire from_base = rx_beat && beat_idx >= base_beat;     // the beat has payload-region bytes
wire past_base = rx_beat && beat_idx > base_beat;      // ... and completes a realigned beat

// The ICRC covers the IPv4 datagram only: when a MAC padded a short frame to 60 bytes, bytes 58
// and 59 past the datagram's end are kept from the ICRC engine (for any other frame whose
// datagram ends there the IPv4 length check drops it first, so the trim changes nothing).
reg [BYTES-1:0] icrc_keep;
always @* begin
    icrc_keep = s_axis_rx_tkeep;
    if (off == PAD_BEAT[LEN_WIDTH-1:0]) begin
        if (cur_total <= 16'd44) icrc_keep[LANE58] = 1'b0;
        if (cur_total <= 16'd45) icrc_keep[LANE59] = 1'b0;
    end
end

wire icrc_ok;
wire [31:0] icrc_unused;   // the transmit-side output

san_icrc #(
    .DATA_WIDTH(DATA_WIDTH)
) icrc_inst (
    .clk(clk),
    .rst(rst),
    .mon_axis_tdata(s_axis_rx_tdata),
    .mon_axis_tkeep(icrc_keep),
    .mon_axis_tvalid(s_axis_rx_tvalid),
    .mon_axis_tready(1'b1),
    .mon_axis_tlast(s_axis_rx_tlast),
    .icrc(icrc_unused),
    .icrc_ok(icrc_ok)
);

// --- payload buffer --------------------------------------------------------------------------------

// Pointers into the ring of DEPTH beats, one bit wider than the address: write, start of the
// frame being received (everything below it is committed), read.
reg [ADDR_WIDTH:0] wr_ptr_reg = {(ADDR_WIDTH+1){1'b0}}, wr_ptr_next;
reg [ADDR_WIDTH:0] base_ptr_reg = {(ADDR_WIDTH+1){1'b0}}, base_ptr_next;
reg [ADDR_WIDTH:0] rd_ptr_reg = {(ADDR_WIDTH+1){1'b0}}, rd_ptr_next;

wire buf_full = wr_ptr_reg == (rd_ptr_reg ^ {1'b1, {ADDR_WIDTH{1'b0}}});

// A frame's writes: one per beat past the payload's first beat, then the carry after the last
// beat (in the judging cycle, when the next frame's first beat cannot write). The first write
// that finds the buffer full stops the frame's writes, so what is stored is always a prefix.
wire st_wr_try = past_base && !stop_reg && !too_long;
wire fl_wr_try = eof_reg && flush_reg && !stop_reg;
wire wr_en = (st_wr_try || fl_wr_try) && !buf_full;
wire [DATA_WIDTH-1:0] wr_data = eof_reg ? carry_reg : beat_joined;

wire rd_en;

reg [DATA_WIDTH-1:0] buf_mem [0:DEPTH-1];
reg [DATA_WIDTH-1:0] buf_q;

// The RAM: one write port, one read port with a registered output that holds when not read.
always @(posedge clk) begin
    if (wr_en) begin
        buf_mem[wr_ptr_reg[ADDR_WIDTH-1:0]] <= wr_data;
    end
    if (rd_en) begin
        buf_q <= buf_mem[rd_ptr_reg[ADDR_WIDTH-1:0]];
    end
end

// --- judging a frame, in the cycle after its last beat -----------------------------------------------

wire [47:0] f_dst_mac = {hdr_reg[8*0 +: 8], hdr_reg[8*1 +: 8], hdr_reg[8*2 +: 8],
                         hdr_reg[8*3 +: 8], hdr_reg[8*4 +: 8], hdr_reg[8*5 +: 8]};
wire [15:0] f_ethertype = {hdr_reg[8*12 +: 8], hdr_reg[8*13 +: 8]};
wire [7:0]  f_ver_ihl = hdr_reg[8*14 +: 8];
wire [15:0] f_total = {hdr_reg[8*16 +: 8], hdr_reg[8*17 +: 8]};
wire [7:0]  f_protocol = hdr_reg[8*23 +: 8];
wire [47:0] f_src_mac = {hdr_reg[8*6 +: 8], hdr_reg[8*7 +: 8], hdr_reg[8*8 +: 8],
                         hdr_reg[8*9 +: 8], hdr_reg[8*10 +: 8], hdr_reg[8*11 +: 8]};
wire [31:0] f_src_ip = {hdr_reg[8*26 +: 8], hdr_reg[8*27 +: 8], hdr_reg[8*28 +: 8], hdr_reg[8*29 +: 8]};
wire [31:0] f_dst_ip = {hdr_reg[8*30 +: 8], hdr_reg[8*31 +: 8], hdr_reg[8*32 +: 8], hdr_reg[8*33 +: 8]};
wire [15:0] f_sport = {hdr_reg[8*34 +: 8], hdr_reg[8*35 +: 8]};
wire [15:0] f_dport = {hdr_reg[8*36 +: 8], hdr_reg[8*37 +: 8]};
wire [15:0] f_udp_len = {hdr_reg[8*38 +: 8], hdr_reg[8*39 +: 8]};
wire [7:0]  f_opcode = hdr_reg[8*42 +: 8];
wire        f_se = hdr_reg[8*43 + 7];
wire [1:0]  f_pad = hdr_reg[8*43 + 4 +: 2];
wire [3:0]  f_tver = hdr_reg[8*43 +: 4];
wire [15:0] f_pkey = {hdr_reg[8*44 +: 8], hdr_reg[8*45 +: 8]};
wire [23:0] f_dest_qp = {hdr_reg[8*47 +: 8], hdr_reg[8*48 +: 8], hdr_reg[8*49 +: 8]};
wire        f_ack_req = hdr_reg[8*50 + 7];
wire [23:0] f_psn = {hdr_reg[8*51 +: 8], hdr_reg[8*52 +: 8], hdr_reg[8*53 +: 8]};
wire [31:0] f_ext0 = {hdr_reg[8*54 +: 8], hdr_reg[8*55 +: 8], hdr_reg[8*56 +: 8], hdr_reg[8*57 +: 8]};
wire [23:0] f_ext1 = {hdr_reg[8*59 +: 8], hdr_reg[8*60 +: 8], hdr_reg[8*61 +: 8]};

// ARP (Ethernet, IPv4): hardware and protocol types and lengths, opcode, sender, target IP.
wire [15:0] a_htype = {hdr_reg[8*14 +: 8], hdr_reg[8*15 +: 8]};
wire [15:0] a_ptype = {hdr_reg[8*16 +: 8], hdr_reg[8*17 +: 8]};
wire [15:0] a_lens = {hdr_reg[8*18 +: 8], hdr_reg[8*19 +: 8]};
wire [15:0] a_op = {hdr_reg[8*20 +: 8], hdr_reg[8*21 +: 8]};
wire [47:0] a_sha = {hdr_reg[8*22 +: 8], hdr_reg[8*23 +: 8], hdr_reg[8*24 +: 8],
                     hdr_reg[8*25 +: 8], hdr_reg[8*26 +: 8], hdr_reg[8*27 +: 8]};
wire [31:0] a_spa = {hdr_reg[8*28 +: 8], hdr_reg[8*29 +: 8], hdr_reg[8*30 +: 8], hdr_reg[8*31 +: 8]};
wire [31:0] a_tpa = {hdr_reg[8*38 +: 8], hdr_reg[8*39 +: 8], hdr_reg[8*40 +: 8], hdr_reg[8*41 +: 8]};
wire f_is_arp = f_ethertype == 16'h0806;
// The Ethernet destination: ours, or the broadcast address for ARP.
wire mac_ok = f_dst_mac == cfg_mac || (f_is_arp && f_dst_mac == 48'hFFFF_FFFF_FFFF);
wire arpq_ready;

wire f_is_ack = f_opcode == OP_ACK;
wire f_is_ud = f_opcode == OP_UD_SEND_ONLY;
wire [16:0] f_ext_len = f_is_ack ? 17'd4 : (f_is_ud ? 17'd8 : 17'd0);

// Lengths, as Parse computes them: the datagram ends at ip_end; payload and pad ("body") lie
// between the headers and the ICRC.
wire [16:0] flen = {4'd0, len_reg};
wire a_malformed = flen < 17'd42 || a_htype != 16'd1 || a_ptype != 16'h0800 || a_lens != 16'h0604
    || (a_op != 16'd1 && a_op != 16'd2) || a_sha[40];
wire [16:0] ip_end = 17'd14 + {1'b0, f_total};
wire [16:0] body = ip_end - 17'd58 - f_ext_len;
wire [LEN_WIDTH-1:0] pay_n = body[LEN_WIDTH-1:0] - {11'd0, f_pad};
wire [LEN_WIDTH:0] pmtu = {{LEN_WIDTH{1'b0}}, 1'b1} << pmtu_log2;
localparam integer LANES_M1 = BYTES - 1;
wire [CNT_WIDTH-1:0] pay_beats =
    ({{(CNT_WIDTH-LEN_WIDTH){1'b0}}, pay_n} + LANES_M1[CNT_WIDTH-1:0]) >> LANE_BITS;

reg supported;
reg len_ok;
always @* begin
    supported = 1'b0;
    len_ok = 1'b0;
    case (f_opcode)
        OP_SEND_FIRST, OP_SEND_MIDDLE: begin
            supported = 1'b1;
            len_ok = {1'b0, pay_n} == pmtu;
        end
        OP_SEND_LAST: begin
            supported = 1'b1;
            len_ok = pay_n != {LEN_WIDTH{1'b0}} && {1'b0, pay_n} <= pmtu;
        end
        OP_SEND_ONLY, OP_UD_SEND_ONLY: begin
            supported = 1'b1;
            len_ok = {1'b0, pay_n} <= pmtu;
        end
        OP_ACK: begin
            supported = 1'b1;
            len_ok = pay_n == {LEN_WIDTH{1'b0}};
        end
        default: begin
        end
    endcase
end

// Buffer beats this frame holds, counting the carry written in this cycle.
wire [ADDR_WIDTH:0] stored = wr_ptr_reg + {{ADDR_WIDTH{1'b0}}, fl_wr_try && !buf_full} - base_ptr_reg;
wire desc_ready;
wire lenq_ready;
wire no_room = {{(CNT_WIDTH-ADDR_WIDTH-1){1'b0}}, stored} < pay_beats || !desc_ready
    || (pay_n != {LEN_WIDTH{1'b0}} && !lenq_ready);
wire qp_bad = ({1'b0, f_dest_qp} < QP_BASE || {1'b0, f_dest_qp} >= QP_LIMIT) && f_dest_qp != 24'd1;

reg [4:0] reason;
always @* begin
    reason = 5'd0;
    if (mac_err_reg) begin
        reason = SAN_RX_DROP_MAC_ERROR;
    end else if (oversize_reg) begin
        reason = SAN_RX_DROP_OVERSIZE;
    end else if (flen < 17'd14) begin
        reason = SAN_RX_DROP_TRUNCATED;
    end else if (!mac_ok) begin
        reason = SAN_RX_DROP_DST_MAC;
    end else if (f_is_arp) begin
        if (a_malformed) begin
            reason = SAN_RX_DROP_ARP_MALFORMED;
        end else if (a_tpa != cfg_ip) begin
            reason = SAN_RX_DROP_ARP_TARGET;
        end else if (!arpq_ready) begin
            reason = SAN_RX_DROP_NO_ROOM;
        end
    end else if (flen < 17'd58) begin
        reason = SAN_RX_DROP_TRUNCATED;
    end else if (f_ethertype != 16'h0800) begin
        reason = SAN_RX_DROP_ETHER_TYPE;
    end else if (f_ver_ihl != 8'h45) begin
        reason = SAN_RX_DROP_IP_VERSION;
    end else if (ip_end > flen) begin
        reason = SAN_RX_DROP_TRUNCATED;
    end else if (ip_end < 17'd58 || (ip_end < flen && flen != 17'd60)) begin
        reason = SAN_RX_DROP_IP_LENGTH;
    end else if (f_dst_ip != cfg_ip) begin
        reason = SAN_RX_DROP_DST_IP;
    end else if (f_protocol != 8'd17) begin
        reason = SAN_RX_DROP_IP_PROTOCOL;
    end else if (f_dport != 16'd4791) begin
        reason = SAN_RX_DROP_UDP_PORT;
    end else if (f_udp_len != f_total - 16'd20) begin
        reason = SAN_RX_DROP_UDP_LENGTH;
    end else if (f_tver != 4'd0) begin
        reason = SAN_RX_DROP_TVER;
    end else if (f_pkey != 16'hFFFF) begin
        reason = SAN_RX_DROP_PKEY;
    end else if (!supported) begin
        reason = SAN_RX_DROP_OPCODE;
    end else if (ip_end < 17'd58 + f_ext_len) begin
        reason = SAN_RX_DROP_TRUNCATED;
    end else if (!icrc_ok_reg) begin
        reason = SAN_RX_DROP_ICRC;
    end else if (body[1:0] != 2'd0 || {15'd0, f_pad} > body || !len_ok) begin
        reason = SAN_RX_DROP_LENGTH;
    end else if (qp_bad) begin
        reason = SAN_RX_DROP_QP_RANGE;
    end else if (no_room) begin
        reason = SAN_RX_DROP_NO_ROOM;
    end
end

// A good frame: a RoCEv2 one is committed to the descriptor FIFO and the buffer, an ARP one to
// the ARP FIFO.
wire good = eof_reg && reason == 5'd0;
wire commit = good && !f_is_arp;
wire arp_commit = good && f_is_arp;

san_sync_fifo #(
    .WIDTH(1 + 48 + 32),
    .DEPTH(ARP_DEPTH)
) arp_fifo_inst (
    .clk(clk),
    .rst(rst),
    .s_data({a_op == 16'd2, a_sha, a_spa}),
    .s_valid(arp_commit),
    .s_ready(arpq_ready),
    .m_data({m_arp_reply, m_arp_sha, m_arp_spa}),
    .m_valid(m_arp_valid),
    .m_ready(m_arp_ready)
);

reg drop_valid_reg = 1'b0, drop_valid_next;
reg [4:0] drop_reason_reg = 5'd0, drop_reason_next;

assign m_drop_valid = drop_valid_reg;
assign m_drop_reason = drop_reason_reg;

// --- descriptors, and the payload lengths the buffer reader follows -----------------------------

localparam integer DESC_WIDTH = 8 + 1 + 2 + 24 + 1 + 24 + 48 + 32 + 32 + 16 + 32 + 24 + 13;

wire [DESC_WIDTH-1:0] desc_in = {pay_n, f_ext1, f_ext0, f_sport, f_dst_ip, f_src_ip, f_src_mac,
    f_psn, f_ack_req, f_dest_qp, f_pad, f_se, f_opcode};
wire [DESC_WIDTH-1:0] desc_out;

san_sync_fifo #(
    .WIDTH(DESC_WIDTH),
    .DEPTH(DESC_DEPTH)
) desc_fifo_inst (
    .clk(clk),
    .rst(rst),
    .s_data(desc_in),
    .s_valid(commit),
    .s_ready(desc_ready),
    .m_data(desc_out),
    .m_valid(m_hdr_valid),
    .m_ready(m_hdr_ready)
);

wire [31:0] out_ext0;
wire [23:0] out_ext1;

assign {m_hdr_pay_len, out_ext1, out_ext0, m_hdr_udp_sport, m_hdr_dst_ip, m_hdr_src_ip,
    m_hdr_src_mac, m_hdr_psn, m_hdr_ack_req, m_hdr_dest_qp, m_hdr_pad_cnt, m_hdr_se,
    m_hdr_opcode} = desc_out;
assign {m_hdr_aeth_syndrome, m_hdr_aeth_msn} = m_hdr_opcode == OP_ACK ? out_ext0 : 32'd0;
assign m_hdr_deth_qkey = m_hdr_opcode == OP_UD_SEND_ONLY ? out_ext0 : 32'd0;
assign m_hdr_deth_src_qp = m_hdr_opcode == OP_UD_SEND_ONLY ? out_ext1 : 24'd0;

wire [LEN_WIDTH-1:0] rd_len;
wire rd_len_valid;
wire rd_last;

san_sync_fifo #(
    .WIDTH(LEN_WIDTH),
    .DEPTH(DESC_DEPTH)
) len_fifo_inst (
    .clk(clk),
    .rst(rst),
    .s_data(pay_n),
    .s_valid(commit && pay_n != {LEN_WIDTH{1'b0}}),
    .s_ready(lenq_ready),
    .m_data(rd_len),
    .m_valid(rd_len_valid),
    .m_ready(rd_en && rd_last)
);

// --- payload reader: committed frames' beats, the RAM output register as the output stage -----

reg [BEAT_WIDTH-1:0] rd_beat_reg = {BEAT_WIDTH{1'b0}}, rd_beat_next;   // beat of the frame to read
reg pay_valid_reg = 1'b0, pay_valid_next;
reg pay_last_reg = 1'b0, pay_last_next;
reg [BYTES-1:0] pay_keep_reg = {BYTES{1'b0}}, pay_keep_next;

wire [LEN_WIDTH-1:0] rd_len_m1 = rd_len - 1'b1;
assign rd_last = rd_beat_reg == rd_len_m1[LEN_WIDTH-1:LANE_BITS];
wire [LANE_BITS:0] rd_last_n = {1'b0, rd_len_m1[LANE_BITS-1:0]} + 1'b1;
assign rd_en = rd_len_valid && (!pay_valid_reg || m_axis_pay_tready);

assign m_axis_pay_tdata = mask_lanes(buf_q, pay_keep_reg);
assign m_axis_pay_tkeep = pay_keep_reg;
assign m_axis_pay_tvalid = pay_valid_reg;
assign m_axis_pay_tlast = pay_last_reg;

// --- next state ------------------------------------------------------------------------------------

always @* begin
    in_frame_next = in_frame_reg;
    len_next = len_reg;
    oversize_next = oversize_reg;
    stop_next = stop_reg;
    flush_next = flush_reg;
    mac_err_next = mac_err_reg;
    icrc_ok_next = icrc_ok_reg;
    eof_next = 1'b0;
    carry_next = carry_reg;
    wr_ptr_next = wr_ptr_reg;
    base_ptr_next = base_ptr_reg;
    rd_ptr_next = rd_ptr_reg;
    drop_valid_next = 1'b0;
    drop_reason_next = drop_reason_reg;
    rd_beat_next = rd_beat_reg;
    pay_valid_next = pay_valid_reg;
    pay_last_next = pay_last_reg;
    pay_keep_next = pay_keep_reg;

    // A beat from the MAC. Per-frame state starts afresh on a first beat (off is then 0).
    if (rx_beat) begin
        in_frame_next = !s_axis_rx_tlast;
        eof_next = s_axis_rx_tlast;
        mac_err_next = s_axis_rx_tuser;
        icrc_ok_next = icrc_ok;
        if (!in_frame_reg) begin
            oversize_next = 1'b0;
            stop_next = 1'b0;
        end
        if (too_long) begin
            oversize_next = 1'b1;
            stop_next = 1'b1;
            len_next = off;
        end else begin
            len_next = len_sum[LEN_WIDTH-1:0];
        end
        if (st_wr_try && buf_full) begin
            stop_next = 1'b1;
        end
        if (from_base) begin
            carry_next = beat_carry;
        end
        flush_next = from_base && keep_n > shift_n;
    end
    if (wr_en) begin
        wr_ptr_next = wr_ptr_reg + 1'b1;
    end

    // The frame that ended in the cycle before: commit it or rewind.
    if (eof_reg) begin
        drop_valid_next = reason != 5'd0;
        drop_reason_next = reason;
        if (commit) begin
            base_ptr_next = base_ptr_reg + pay_beats[ADDR_WIDTH:0];
        end
        wr_ptr_next = base_ptr_next;
    end

    // The payload reader.
    if (m_axis_pay_tready) begin
        pay_valid_next = 1'b0;
    end
    if (rd_en) begin
        rd_ptr_next = rd_ptr_reg + 1'b1;
        pay_valid_next = 1'b1;
        pay_last_next = rd_last;
        pay_keep_next = rd_last ? lanes_below(rd_last_n) : {BYTES{1'b1}};
        rd_beat_next = rd_last ? {BEAT_WIDTH{1'b0}} : rd_beat_reg + 1'b1;
    end
end

always @(posedge clk) begin
    in_frame_reg <= in_frame_next;
    len_reg <= len_next;
    oversize_reg <= oversize_next;
    stop_reg <= stop_next;
    flush_reg <= flush_next;
    mac_err_reg <= mac_err_next;
    icrc_ok_reg <= icrc_ok_next;
    eof_reg <= eof_next;
    carry_reg <= carry_next;
    hdr_reg <= hdr_cur;
    wr_ptr_reg <= wr_ptr_next;
    base_ptr_reg <= base_ptr_next;
    rd_ptr_reg <= rd_ptr_next;
    drop_valid_reg <= drop_valid_next;
    drop_reason_reg <= drop_reason_next;
    rd_beat_reg <= rd_beat_next;
    pay_valid_reg <= pay_valid_next;
    pay_last_reg <= pay_last_next;
    pay_keep_reg <= pay_keep_next;

    if (rst) begin
        in_frame_reg <= 1'b0;
        eof_reg <= 1'b0;
        wr_ptr_reg <= {(ADDR_WIDTH+1){1'b0}};
        base_ptr_reg <= {(ADDR_WIDTH+1){1'b0}};
        rd_ptr_reg <= {(ADDR_WIDTH+1){1'b0}};
        drop_valid_reg <= 1'b0;
        rd_beat_reg <= {BEAT_WIDTH{1'b0}};
        pay_valid_reg <= 1'b0;
    end
end

endmodule

`resetall

// SPDX-License-Identifier: MIT
// san_tx_builder: builds one RoCEv2 frame per header descriptor: Ethernet / IPv4 / UDP 4791 /
// BTH / [AETH | DETH] / payload / pad / ICRC, streaming the payload behind the header at full
// rate and starting the next frame in the cycle after the last one ends (no bubble).

`resetall
`timescale 1ns / 1ps
`default_nettype none

module san_tx_builder #(
    // Stream width in bits; a power of two from 64 to 512.
    parameter DATA_WIDTH = 64
) (
    input  wire                    clk,
    input  wire                    rst,

    // Header descriptor: one per frame
    input  wire [47:0]             s_hdr_dst_mac,
    input  wire [47:0]             s_hdr_src_mac,
    input  wire [31:0]             s_hdr_src_ip,
    input  wire [31:0]             s_hdr_dst_ip,
    input  wire [15:0]             s_hdr_ip_id,
    input  wire [15:0]             s_hdr_udp_sport,
    input  wire [7:0]              s_hdr_opcode,
    input  wire                    s_hdr_se,
    input  wire [15:0]             s_hdr_pkey,
    input  wire [23:0]             s_hdr_dest_qp,
    input  wire                    s_hdr_ack_req,
    input  wire [23:0]             s_hdr_psn,
    // Extension header: 0 none, 1 AETH {syndrome, MSN} = ext0, 2 DETH {Q_Key = ext0, SrcQP = ext1}
    input  wire [1:0]              s_hdr_ext,
    input  wire [31:0]             s_hdr_ext0,
    input  wire [23:0]             s_hdr_ext1,
    // Payload bytes that follow on s_axis_pay (0..4096); none when 0
    input  wire [12:0]             s_hdr_pay_len,
    input  wire                    s_hdr_valid,
    output wire                    s_hdr_ready,

    // Payload: full beats except the last, tkeep contiguous from lane 0
    input  wire [DATA_WIDTH-1:0]   s_axis_pay_tdata,
    input  wire [DATA_WIDTH/8-1:0] s_axis_pay_tkeep,
    input  wire                    s_axis_pay_tvalid,
    output wire                    s_axis_pay_tready,
    input  wire                    s_axis_pay_tlast,

    // Frames to the MAC
    output wire [DATA_WIDTH-1:0]   m_axis_tx_tdata,
    output wire [DATA_WIDTH/8-1:0] m_axis_tx_tkeep,
    output wire                    m_axis_tx_tvalid,
    input  wire                    m_axis_tx_tready,
    output wire                    m_axis_tx_tlast,
    output wire                    m_axis_tx_tuser
);

localparam integer BYTES = DATA_WIDTH / 8;
localparam integer LANE_BITS = $clog2(BYTES);
// Longest header: 14 + 20 + 8 + 12 + 8 (DETH), held in whole beats.
localparam integer HDR_MAX = 62;
localparam integer HDR_BEATS = (HDR_MAX + BYTES - 1) / BYTES;
localparam integer HDR_BYTES = HDR_BEATS * BYTES;

localparam [1:0] EXT_AETH = 2'd1;
localparam [1:0] EXT_DETH = 2'd2;

initial begin
    if (DATA_WIDTH < 64 || DATA_WIDTH > 512 || (DATA_WIDTH & (DATA_WIDTH - 1)) != 0) begin
        $error("san_tx_builder: DATA_WIDTH must be a power of two from 64 to 512");
        $finish;
    end
end

// States of the output side.
localparam [2:0]
    ST_IDLE = 3'd0,   // no frame: waiting for a descriptor
    ST_HDR = 3'd1,    // whole header beats
    ST_DATA = 3'd2,   // header tail or carried payload bytes, then a payload beat's bytes
    ST_TAIL = 3'd3,   // the carried bytes that end the frame, then the ICRC
    ST_SPILL = 3'd4;  // the ICRC bytes that did not fit in the previous beat

reg [2:0] state_reg = ST_IDLE, state_next;

// The descriptor of the frame being built.
reg [47:0] dst_mac_reg, dst_mac_next;
reg [47:0] src_mac_reg, src_mac_next;
reg [31:0] src_ip_reg, src_ip_next;
reg [31:0] dst_ip_reg, dst_ip_next;
reg [15:0] ip_id_reg, ip_id_next;
reg [15:0] sport_reg, sport_next;
reg [7:0]  opcode_reg, opcode_next;
reg        se_reg, se_next;
reg [15:0] pkey_reg, pkey_next;
reg [23:0] dest_qp_reg, dest_qp_next;
reg        ack_req_reg, ack_req_next;
reg [23:0] psn_reg, psn_next;
reg [1:0]  ext_reg, ext_next;
reg [31:0] ext0_reg, ext0_next;
reg [23:0] ext1_reg, ext1_next;
reg [12:0] pay_len_reg, pay_len_next;

reg [7:0] hbeat_reg = 8'd0, hbeat_next;                    // header beat being sent
reg [DATA_WIDTH-1:0] carry_reg = {DATA_WIDTH{1'b0}}, carry_next;  // bytes in lanes below carry_n
reg [LANE_BITS:0] carry_n_reg = {(LANE_BITS+1){1'b0}}, carry_n_next;
reg [31:0] icrc_spill_reg = 32'd0, icrc_spill_next;        // ICRC bytes left for ST_SPILL
reg [2:0] spill_n_reg = 3'd0, spill_n_next;

// --- header bytes of the current descriptor ------------------------------------------------------
wire [6:0] ext_len = ext_reg == EXT_AETH ? 7'd4 : (ext_reg == EXT_DETH ? 7'd8 : 7'd0);
wire [6:0] hdr_len = 7'd54 + ext_len;
wire [1:0] pad = 2'd0 - pay_len_reg[1:0];
wire [15:0] udp_len = 16'd8 + 16'd12 + {9'd0, ext_len} + {3'd0, pay_len_reg} + {14'd0, pad} + 16'd4;
wire [15:0] ip_len = 16'd20 + udp_len;

// IPv4 header checksum: ones' complement of the ones' complement sum of its 16-bit words.
wire [19:0] ip_sum0 = 20'h04500 + {4'd0, ip_len} + {4'd0, ip_id_reg} + 20'h04000 + 20'h04011
    + {4'd0, src_ip_reg[31:16]} + {4'd0, src_ip_reg[15:0]}
    + {4'd0, dst_ip_reg[31:16]} + {4'd0, dst_ip_reg[15:0]};
wire [16:0] ip_sum1 = {1'b0, ip_sum0[15:0]} + {13'd0, ip_sum0[19:16]};
wire [15:0] ip_csum = ~(ip_sum1[15:0] + {15'd0, ip_sum1[16]});

// Wire order: byte i of the frame is hdr[8*i +: 8].
reg [8*HDR_BYTES-1:0] hdr;

task put8(input integer at, input [7:0] v);
    begin
        hdr[8*at +: 8] = v;
    end
endtask

task put16(input integer at, input [15:0] v);
    begin
        put8(at, v[15:8]);
        put8(at + 1, v[7:0]);
    end
endtask

task put24(input integer at, input [23:0] v);
    begin
        put8(at, v[23:16]);
        put16(at + 1, v[15:0]);
    end
endtask

task put32(input integer at, input [31:0] v);
    begin
        put16(at, v[31:16]);
        put16(at + 2, v[15:0]);
    end
endtask

always @* begin
    hdr = {8*HDR_BYTES{1'b0}};
    // Ethernet
    put24(0, dst_mac_reg[47:24]);
    put24(3, dst_mac_reg[23:0]);
    put24(6, src_mac_reg[47:24]);
    put24(9, src_mac_reg[23:0]);
    put16(12, 16'h0800);
    // IPv4: version 4, IHL 5, DF, TTL 64, UDP
    put16(14, 16'h4500);
    put16(16, ip_len);
    put16(18, ip_id_reg);
    put16(20, 16'h4000);
    put16(22, 16'h4011);
    put16(24, ip_csum);
    put32(26, src_ip_reg);
    put32(30, dst_ip_reg);
    // UDP, checksum 0
    put16(34, sport_reg);
    put16(36, 16'd4791);
    put16(38, udp_len);
    put16(40, 16'h0000);
    // BTH: TVer 0, MigReq 0, FECN/BECN 0
    put8(42, opcode_reg);
    put8(43, {se_reg, 1'b0, pad, 4'h0});
    put16(44, pkey_reg);
    put8(46, 8'h00);
    put24(47, dest_qp_reg);
    put8(50, {ack_req_reg, 7'd0});
    put24(51, psn_reg);
    if (ext_reg == EXT_AETH) begin
        put32(54, ext0_reg);
    end else if (ext_reg == EXT_DETH) begin
        put32(54, ext0_reg);
        put8(58, 8'h00);
        put24(59, ext1_reg);
    end
end

// Header split into whole beats and a tail of hdr_rem bytes that the first payload beat joins.
wire [7:0] hdr_full_beats = {1'b0, hdr_len} >> LANE_BITS;
wire [LANE_BITS:0] hdr_rem = {1'b0, hdr_len[LANE_BITS-1:0]};
wire [DATA_WIDTH-1:0] hdr_beat = hdr[hbeat_reg[3:0]*DATA_WIDTH +: DATA_WIDTH];
wire [DATA_WIDTH-1:0] hdr_tail = hdr[hdr_full_beats[3:0]*DATA_WIDTH +: DATA_WIDTH];

// --- the payload beat, its pad, and where the frame's bytes end ---------------------------------

function [LANE_BITS:0] keep_count(input [BYTES-1:0] keep);
    integer k;
    begin
        keep_count = {(LANE_BITS+1){1'b0}};
        for (k = 0; k < BYTES; k = k + 1) begin
            if (keep[k]) keep_count = k[LANE_BITS:0] + 1'b1;
        end
    end
endfunction

function [BYTES-1:0] lanes_below(input [LANE_BITS+1:0] n);
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

// Bytes of the payload beat, pad included on the last one (pad bytes are zero and always fit:
// a last beat short of a 4-byte multiple has free lanes up to the next multiple).
wire [LANE_BITS:0] pay_n = keep_count(s_axis_pay_tkeep)
    + (s_axis_pay_tlast ? {{(LANE_BITS-1){1'b0}}, pad} : {(LANE_BITS+1){1'b0}});
wire [DATA_WIDTH-1:0] pay_data = mask_lanes(s_axis_pay_tdata, s_axis_pay_tkeep);
// Carried bytes then the payload beat; anything past the beat is carried to the next.
wire [2*DATA_WIDTH-1:0] joined = {{DATA_WIDTH{1'b0}}, carry_reg}
    | ({{DATA_WIDTH{1'b0}}, pay_data} << (8 * carry_n_reg));
wire [LANE_BITS+1:0] joined_n = {1'b0, carry_n_reg} + {1'b0, pay_n};

reg [DATA_WIDTH-1:0] out_data;     // frame bytes of this beat, before the ICRC is added
reg [LANE_BITS+1:0] out_n;         // how many of them
reg out_valid;
reg out_end;                       // the frame's bytes end in this beat; the ICRC follows

wire out_fire = out_valid && m_axis_tx_tready;

wire [31:0] icrc;
wire icrc_ok_unused;

san_icrc #(
    .DATA_WIDTH(DATA_WIDTH)
) icrc_inst (
    .clk(clk),
    .rst(rst),
    .mon_axis_tdata(out_data),
    .mon_axis_tkeep(lanes_below(out_n)),
    .mon_axis_tvalid(out_valid && state_reg != ST_SPILL),
    .mon_axis_tready(m_axis_tx_tready),
    .mon_axis_tlast(out_end),
    .icrc(icrc),
    .icrc_ok(icrc_ok_unused)
);

// The ICRC, least-significant byte first, placed right after the frame's bytes.
// Lanes past the beat drop out here; ST_SPILL sends them.
wire [DATA_WIDTH-1:0] icrc_placed = {{(DATA_WIDTH-32){1'b0}}, icrc} << (8 * out_n);
localparam [LANE_BITS+2:0] ICRC_BYTES = 4;
wire [LANE_BITS+2:0] end_n = {1'b0, out_n} + ICRC_BYTES;   // frame's bytes in this beat + ICRC

reg [DATA_WIDTH-1:0] tx_data;
reg [BYTES-1:0] tx_keep;
reg tx_last;

wire take_desc = s_hdr_valid && (state_reg == ST_IDLE || (out_fire && tx_last));
assign s_hdr_ready = state_reg == ST_IDLE || (out_fire && tx_last);
assign s_axis_pay_tready = state_reg == ST_DATA && m_axis_tx_tready;

assign m_axis_tx_tdata = tx_data;
assign m_axis_tx_tkeep = tx_keep;
assign m_axis_tx_tvalid = out_valid;
assign m_axis_tx_tlast = tx_last;
assign m_axis_tx_tuser = 1'b0;

always @* begin
    out_data = {DATA_WIDTH{1'b0}};
    out_n = {(LANE_BITS+2){1'b0}};
    out_valid = 1'b0;
    out_end = 1'b0;

    case (state_reg)
        ST_HDR: begin
            out_data = hdr_beat;
            out_n = BYTES[LANE_BITS+1:0];
            out_valid = 1'b1;
        end
        ST_DATA: begin
            out_valid = s_axis_pay_tvalid;
            out_data = joined[DATA_WIDTH-1:0];
            if (s_axis_pay_tlast && joined_n <= BYTES[LANE_BITS+1:0]) begin
                out_n = joined_n;
                out_end = 1'b1;
            end else begin
                out_n = BYTES[LANE_BITS+1:0];
            end
        end
        ST_TAIL: begin
            out_valid = 1'b1;
            out_data = carry_reg;
            out_n = {1'b0, carry_n_reg};
            out_end = 1'b1;
        end
        ST_SPILL: begin
            out_valid = 1'b1;
        end
        default: begin
        end
    endcase
end

// The beat as sent: the ICRC joins the frame's last bytes, or what is left of it is sent alone.
always @* begin
    tx_data = out_data;
    tx_keep = lanes_below(out_n);
    tx_last = 1'b0;
    if (state_reg == ST_SPILL) begin
        tx_data = {{(DATA_WIDTH-32){1'b0}}, icrc_spill_reg};
        tx_keep = lanes_below({{(LANE_BITS-1){1'b0}}, spill_n_reg});
        tx_last = 1'b1;
    end else if (out_end) begin
        tx_data = out_data | icrc_placed;
        if (end_n <= {1'b0, BYTES[LANE_BITS+1:0]}) begin
            tx_keep = lanes_below(end_n[LANE_BITS+1:0]);
            tx_last = 1'b1;
        end else begin
            tx_keep = {BYTES{1'b1}};
        end
    end
end

always @* begin
    state_next = state_reg;
    hbeat_next = hbeat_reg;
    carry_next = carry_reg;
    carry_n_next = carry_n_reg;
    icrc_spill_next = icrc_spill_reg;
    spill_n_next = spill_n_reg;

    dst_mac_next = dst_mac_reg;
    src_mac_next = src_mac_reg;
    src_ip_next = src_ip_reg;
    dst_ip_next = dst_ip_reg;
    ip_id_next = ip_id_reg;
    sport_next = sport_reg;
    opcode_next = opcode_reg;
    se_next = se_reg;
    pkey_next = pkey_reg;
    dest_qp_next = dest_qp_reg;
    ack_req_next = ack_req_reg;
    psn_next = psn_reg;
    ext_next = ext_reg;
    ext0_next = ext0_reg;
    ext1_next = ext1_reg;
    pay_len_next = pay_len_reg;

    if (out_fire) begin
        case (state_reg)
            // Whole header beats; after the last, the header tail waits in carry.
            ST_HDR: begin
                hbeat_next = hbeat_reg + 8'd1;
                if (hbeat_reg + 8'd1 == hdr_full_beats) begin
                    carry_next = hdr_tail;
                    carry_n_next = hdr_rem;
                    state_next = pay_len_reg == 13'd0 ? ST_TAIL : ST_DATA;
                end
            end
            // Carried bytes joined by one payload beat.
            ST_DATA: begin
                carry_next = joined[2*DATA_WIDTH-1:DATA_WIDTH];
                carry_n_next = carry_n_reg;
                if (s_axis_pay_tlast) begin
                    if (joined_n > BYTES[LANE_BITS+1:0]) begin
                        carry_n_next = joined_n[LANE_BITS:0] - BYTES[LANE_BITS:0];
                        state_next = ST_TAIL;
                    end else if (!tx_last) begin
                        state_next = ST_SPILL;
                    end
                end
            end
            // Frame bytes end here.
            ST_TAIL: begin
                if (!tx_last) begin
                    state_next = ST_SPILL;
                end
            end
            // The rest of the ICRC.
            ST_SPILL: begin
            end
            default: begin
            end
        endcase
        if (out_end && !tx_last) begin
            icrc_spill_next = icrc >> (8 * (BYTES[LANE_BITS+2:0] - {1'b0, out_n}));
            spill_n_next = end_n[2:0] - BYTES[2:0];
        end
        if (tx_last) begin
            state_next = ST_IDLE;
        end
    end

    if (take_desc) begin
        dst_mac_next = s_hdr_dst_mac;
        src_mac_next = s_hdr_src_mac;
        src_ip_next = s_hdr_src_ip;
        dst_ip_next = s_hdr_dst_ip;
        ip_id_next = s_hdr_ip_id;
        sport_next = s_hdr_udp_sport;
        opcode_next = s_hdr_opcode;
        se_next = s_hdr_se;
        pkey_next = s_hdr_pkey;
        dest_qp_next = s_hdr_dest_qp;
        ack_req_next = s_hdr_ack_req;
        psn_next = s_hdr_psn;
        ext_next = s_hdr_ext;
        ext0_next = s_hdr_ext0;
        ext1_next = s_hdr_ext1;
        pay_len_next = s_hdr_pay_len;
        hbeat_next = 8'd0;
        state_next = ST_HDR;
    end
end

always @(posedge clk) begin
    state_reg <= state_next;
    hbeat_reg <= hbeat_next;
    carry_reg <= carry_next;
    carry_n_reg <= carry_n_next;
    icrc_spill_reg <= icrc_spill_next;
    spill_n_reg <= spill_n_next;
    dst_mac_reg <= dst_mac_next;
    src_mac_reg <= src_mac_next;
    src_ip_reg <= src_ip_next;
    dst_ip_reg <= dst_ip_next;
    ip_id_reg <= ip_id_next;
    sport_reg <= sport_next;
    opcode_reg <= opcode_next;
    se_reg <= se_next;
    pkey_reg <= pkey_next;
    dest_qp_reg <= dest_qp_next;
    ack_req_reg <= ack_req_next;
    psn_reg <= psn_next;
    ext_reg <= ext_next;
    ext0_reg <= ext0_next;
    ext1_reg <= ext1_next;
    pay_len_reg <= pay_len_next;

    if (rst) begin
        state_reg <= ST_IDLE;
        hbeat_reg <= 8'd0;
        carry_n_reg <= {(LANE_BITS+1){1'b0}};
        spill_n_reg <= 3'd0;
    end
end

endmodule

`resetall

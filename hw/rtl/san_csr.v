// SPDX-License-Identifier: MIT
// san_csr: AXI4-Lite slave for BAR0 holding the NIC register block (identity, build parameters,
// scratch, control/status, interrupt self-test, cycle counter, bad-access counter).

`resetall
`timescale 1ns / 1ps
`default_nettype none

module san_csr #(
    // Width of the link/DMA data path in bits; reported in BUILD_DATA_WIDTH.
    parameter DATA_WIDTH = 64,
    // Connection contexts in the build; reported in BUILD_N_QP.
    parameter N_QP = 256,
    // Core clock in kHz; reported in BUILD_CLK_KHZ.
    parameter CLK_KHZ = 156250,
    // MSI-X vectors the NIC can raise, 1..2048; reported in BUILD_N_MSIX.
    parameter N_MSIX = 32,
    // BAR0 size in bytes (a power of two); reported in BUILD_BAR0_SIZE.
    parameter BAR0_SIZE = 32'h0020_0000,
    // AXI4-Lite address width; must be log2(BAR0_SIZE).
    parameter AXIL_ADDR_WIDTH = 21
) (
    input  wire                       clk,
    input  wire                       rst,

    // BAR0: AXI4-Lite slave
    input  wire [AXIL_ADDR_WIDTH-1:0] s_axil_awaddr,
    input  wire [2:0]                 s_axil_awprot,
    input  wire                       s_axil_awvalid,
    output wire                       s_axil_awready,
    input  wire [31:0]                s_axil_wdata,
    input  wire [3:0]                 s_axil_wstrb,
    input  wire                       s_axil_wvalid,
    output wire                       s_axil_wready,
    output wire [1:0]                 s_axil_bresp,
    output wire                       s_axil_bvalid,
    input  wire                       s_axil_bready,
    input  wire [AXIL_ADDR_WIDTH-1:0] s_axil_araddr,
    input  wire [2:0]                 s_axil_arprot,
    input  wire                       s_axil_arvalid,
    output wire                       s_axil_arready,
    output wire [31:0]                s_axil_rdata,
    output wire [1:0]                 s_axil_rresp,
    output wire                       s_axil_rvalid,
    input  wire                       s_axil_rready,

    // MSI-X request (from the IRQ_TEST register)
    output wire [15:0]                m_msix_vector,
    output wire                       m_msix_valid,
    input  wire                       m_msix_ready
);

`include "san_regs.vh"

localparam [1:0] RESP_OKAY = 2'b00;
localparam [1:0] RESP_SLVERR = 2'b10;

// Illegal parameter combinations stop elaboration.
initial begin
    if (BAR0_SIZE != (1 << AXIL_ADDR_WIDTH)) begin
        $error("san_csr: AXIL_ADDR_WIDTH must be log2(BAR0_SIZE)");
        $finish;
    end
    if (N_MSIX < 1 || N_MSIX > 2048) begin
        $error("san_csr: N_MSIX must be 1..2048");
        $finish;
    end
end

// The protection bits carry nothing a register file needs.
wire [5:0] unused_prot = {s_axil_awprot, s_axil_arprot};

reg         awready_reg = 1'b0, awready_next;
reg         wready_reg = 1'b0, wready_next;
reg  [1:0]  bresp_reg = RESP_OKAY, bresp_next;
reg         bvalid_reg = 1'b0, bvalid_next;
reg         arready_reg = 1'b0, arready_next;
reg  [31:0] rdata_reg = 32'd0, rdata_next;
reg  [1:0]  rresp_reg = RESP_OKAY, rresp_next;
reg         rvalid_reg = 1'b0, rvalid_next;

reg  [31:0] scratch_reg = 32'd0, scratch_next;
reg         enable_reg = 1'b0, enable_next;
reg  [15:0] msix_vector_reg = 16'd0, msix_vector_next;
reg         msix_valid_reg = 1'b0, msix_valid_next;
reg  [63:0] cycle_reg = 64'd0;
reg  [31:0] cycle_hi_reg = 32'd0, cycle_hi_next;
reg  [31:0] bad_access_reg = 32'd0, bad_access_next;

assign s_axil_awready = awready_reg;
assign s_axil_wready = wready_reg;
assign s_axil_bresp = bresp_reg;
assign s_axil_bvalid = bvalid_reg;
assign s_axil_arready = arready_reg;
assign s_axil_rdata = rdata_reg;
assign s_axil_rresp = rresp_reg;
assign s_axil_rvalid = rvalid_reg;
assign m_msix_vector = msix_vector_reg;
assign m_msix_valid = msix_valid_reg;

// Byte addresses widened to the contract's 32-bit constants.
wire [31:0] wr_addr = {{(32-AXIL_ADDR_WIDTH){1'b0}}, s_axil_awaddr};
wire [31:0] rd_addr = {{(32-AXIL_ADDR_WIDTH){1'b0}}, s_axil_araddr};

// Write path: AW and W are taken together, one cycle after both are valid, and only when the
// previous response has gone and no self-test interrupt is still waiting to be sent.
wire wr_start = s_axil_awvalid && s_axil_wvalid && !awready_reg
    && (!bvalid_reg || s_axil_bready) && !msix_valid_reg;
wire wr_do = awready_reg && s_axil_awvalid && s_axil_wvalid;
// Read path: AR is taken one cycle after it is valid, when the previous data has gone.
wire rd_start = s_axil_arvalid && !arready_reg && (!rvalid_reg || s_axil_rready);
wire rd_do = arready_reg && s_axil_arvalid;

wire [31:0] wmask = {{8{s_axil_wstrb[3]}}, {8{s_axil_wstrb[2]}},
                     {8{s_axil_wstrb[1]}}, {8{s_axil_wstrb[0]}}};

reg bad_wr;
reg bad_rd;

always @* begin
    awready_next = wr_start;
    wready_next = wr_start;
    bvalid_next = bvalid_reg && !s_axil_bready;
    bresp_next = bresp_reg;
    scratch_next = scratch_reg;
    enable_next = enable_reg;
    msix_vector_next = msix_vector_reg;
    msix_valid_next = msix_valid_reg && !m_msix_ready;
    bad_wr = 1'b0;

    if (wr_do) begin
        bvalid_next = 1'b1;
        bresp_next = RESP_OKAY;
        if (wr_addr[1:0] != 2'b00) begin
            bresp_next = RESP_SLVERR;
            bad_wr = 1'b1;
        end else begin
            case (wr_addr)
                SAN_NIC_SCRATCH_ADDR: begin
                    scratch_next = (scratch_reg & ~wmask) | (s_axil_wdata & wmask);
                end
                SAN_NIC_CONTROL_ADDR: begin
                    if (s_axil_wstrb[0]) begin
                        enable_next = s_axil_wdata[SAN_NIC_CONTROL_ENABLE_LSB];
                    end
                end
                SAN_NIC_IRQ_TEST_ADDR: begin
                    if (s_axil_wdata[15:0] < N_MSIX[15:0]) begin
                        msix_vector_next = s_axil_wdata[15:0];
                        msix_valid_next = 1'b1;
                    end else begin
                        bad_wr = 1'b1;
                    end
                end
                // Read-only registers accept the write and keep their value: the write is
                // posted on PCIe, so an error response could never reach the host.
                SAN_NIC_BLK_TYPE_ADDR, SAN_NIC_BLK_VERSION_ADDR, SAN_NIC_BLK_NEXT_ADDR,
                SAN_NIC_CONTRACT_ID_ADDR, SAN_NIC_BUILD_DATA_WIDTH_ADDR,
                SAN_NIC_BUILD_N_QP_ADDR, SAN_NIC_BUILD_CLK_KHZ_ADDR,
                SAN_NIC_BUILD_N_MSIX_ADDR, SAN_NIC_BUILD_BAR0_SIZE_ADDR,
                SAN_NIC_STATUS_ADDR, SAN_NIC_CYCLE_LO_ADDR, SAN_NIC_CYCLE_HI_ADDR,
                SAN_NIC_BAD_ACCESS_ADDR: begin
                end
                default: begin
                    bresp_next = RESP_SLVERR;
                    bad_wr = 1'b1;
                end
            endcase
        end
    end
end

always @* begin
    arready_next = rd_start;
    rvalid_next = rvalid_reg && !s_axil_rready;
    rdata_next = rdata_reg;
    rresp_next = rresp_reg;
    cycle_hi_next = cycle_hi_reg;
    bad_rd = 1'b0;

    if (rd_do) begin
        rvalid_next = 1'b1;
        rresp_next = RESP_OKAY;
        rdata_next = 32'd0;
        if (rd_addr[1:0] != 2'b00) begin
            rresp_next = RESP_SLVERR;
            bad_rd = 1'b1;
        end else begin
            case (rd_addr)
                SAN_NIC_BLK_TYPE_ADDR: rdata_next = SAN_NIC_TYPE;
                SAN_NIC_BLK_VERSION_ADDR: rdata_next = SAN_NIC_VERSION;
                SAN_NIC_BLK_NEXT_ADDR: rdata_next = SAN_NIC_BLK_NEXT_RESET;
                SAN_NIC_CONTRACT_ID_ADDR: rdata_next = SAN_CONTRACT_ID;
                SAN_NIC_BUILD_DATA_WIDTH_ADDR: rdata_next = DATA_WIDTH;
                SAN_NIC_BUILD_N_QP_ADDR: rdata_next = N_QP;
                SAN_NIC_BUILD_CLK_KHZ_ADDR: rdata_next = CLK_KHZ;
                SAN_NIC_BUILD_N_MSIX_ADDR: rdata_next = N_MSIX;
                SAN_NIC_BUILD_BAR0_SIZE_ADDR: rdata_next = BAR0_SIZE;
                SAN_NIC_SCRATCH_ADDR: rdata_next = scratch_reg;
                SAN_NIC_CONTROL_ADDR: rdata_next[SAN_NIC_CONTROL_ENABLE_LSB] = enable_reg;
                SAN_NIC_STATUS_ADDR: rdata_next[SAN_NIC_STATUS_ENABLED_LSB] = enable_reg;
                // Write-only: reads as zero.
                SAN_NIC_IRQ_TEST_ADDR: rdata_next = 32'd0;
                SAN_NIC_CYCLE_LO_ADDR: begin
                    rdata_next = cycle_reg[31:0];
                    cycle_hi_next = cycle_reg[63:32];
                end
                SAN_NIC_CYCLE_HI_ADDR: rdata_next = cycle_hi_reg;
                SAN_NIC_BAD_ACCESS_ADDR: rdata_next = bad_access_reg;
                default: begin
                    rresp_next = RESP_SLVERR;
                    bad_rd = 1'b1;
                end
            endcase
        end
    end
end

// Saturating count of bad accesses; a read and a write may both be bad in one cycle.
always @* begin
    bad_access_next = bad_access_reg;
    if (bad_rd && bad_wr) begin
        bad_access_next = (bad_access_reg >= 32'hFFFF_FFFE) ? 32'hFFFF_FFFF : bad_access_reg + 32'd2;
    end else if (bad_rd || bad_wr) begin
        bad_access_next = (bad_access_reg == 32'hFFFF_FFFF) ? bad_access_reg : bad_access_reg + 32'd1;
    end
end

always @(posedge clk) begin
    awready_reg <= awready_next;
    wready_reg <= wready_next;
    bresp_reg <= bresp_next;
    bvalid_reg <= bvalid_next;
    arready_reg <= arready_next;
    rdata_reg <= rdata_next;
    rresp_reg <= rresp_next;
    rvalid_reg <= rvalid_next;
    scratch_reg <= scratch_next;
    enable_reg <= enable_next;
    msix_vector_reg <= msix_vector_next;
    msix_valid_reg <= msix_valid_next;
    cycle_reg <= cycle_reg + 64'd1;
    cycle_hi_reg <= cycle_hi_next;
    bad_access_reg <= bad_access_next;

    if (rst) begin
        awready_reg <= 1'b0;
        wready_reg <= 1'b0;
        bresp_reg <= RESP_OKAY;
        bvalid_reg <= 1'b0;
        arready_reg <= 1'b0;
        rresp_reg <= RESP_OKAY;
        rvalid_reg <= 1'b0;
        scratch_reg <= SAN_NIC_SCRATCH_RESET;
        enable_reg <= 1'b0;
        msix_valid_reg <= 1'b0;
        cycle_reg <= 64'd0;
        cycle_hi_reg <= SAN_NIC_CYCLE_HI_RESET;
        bad_access_reg <= SAN_NIC_BAD_ACCESS_RESET;
    end
end

endmodule

`resetall

// SPDX-License-Identifier: MIT
// san_nic_top: the SAN NIC core. BAR0 (AXI4-Lite), DMA request ports, MSI-X and the link's
// AXI4-Stream TX/RX are what a board shell (PCIe bridge + Ethernet MAC) or the simulator connect.

`resetall
`timescale 1ns / 1ps
`default_nettype none

module san_nic_top #(
    // Width of the link and DMA data paths in bits: 64 (10 Gb/s at 156.25 MHz) up to 512.
    parameter DATA_WIDTH = 64,
    // Connection contexts (queue pairs), a power of two from 2 to 4096; each has a doorbell page.
    parameter N_QP = 256,
    // Core clock in kHz, used to convert protocol timers to cycles.
    parameter CLK_KHZ = 156250,
    // MSI-X vectors, 1..2048.
    parameter N_MSIX = 32,
    // DMA request tag width; 2**DMA_TAG_WIDTH reads may be in flight.
    parameter DMA_TAG_WIDTH = 8,
    // AXI4-Lite address width: must equal log2 of the BAR0 size that N_QP implies
    // (21 for N_QP <= 256, 25 for N_QP = 4096).
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

    // DMA read request: {iova, length, tag}
    output wire [63:0]                m_dma_rd_req_addr,
    output wire [15:0]                m_dma_rd_req_len,
    output wire [DMA_TAG_WIDTH-1:0]   m_dma_rd_req_tag,
    output wire                       m_dma_rd_req_valid,
    input  wire                       m_dma_rd_req_ready,
    // DMA read data: stream per request, tag in tid, tuser = error
    input  wire [DATA_WIDTH-1:0]      s_axis_dma_rd_tdata,
    input  wire [DATA_WIDTH/8-1:0]    s_axis_dma_rd_tkeep,
    input  wire                       s_axis_dma_rd_tvalid,
    output wire                       s_axis_dma_rd_tready,
    input  wire                       s_axis_dma_rd_tlast,
    input  wire [DMA_TAG_WIDTH-1:0]   s_axis_dma_rd_tid,
    input  wire                       s_axis_dma_rd_tuser,

    // DMA write request: {iova, length, tag} followed by its data stream
    output wire [63:0]                m_dma_wr_req_addr,
    output wire [15:0]                m_dma_wr_req_len,
    output wire [DMA_TAG_WIDTH-1:0]   m_dma_wr_req_tag,
    output wire                       m_dma_wr_req_valid,
    input  wire                       m_dma_wr_req_ready,
    output wire [DATA_WIDTH-1:0]      m_axis_dma_wr_tdata,
    output wire [DATA_WIDTH/8-1:0]    m_axis_dma_wr_tkeep,
    output wire                       m_axis_dma_wr_tvalid,
    input  wire                       m_axis_dma_wr_tready,
    output wire                       m_axis_dma_wr_tlast,
    output wire                       m_axis_dma_wr_tuser,
    // DMA write completion: the tag of a finished write, error flag
    input  wire [DMA_TAG_WIDTH-1:0]   s_dma_wr_done_tag,
    input  wire                       s_dma_wr_done_error,
    input  wire                       s_dma_wr_done_valid,

    // MSI-X request
    output wire [15:0]                m_msix_vector,
    output wire                       m_msix_valid,
    input  wire                       m_msix_ready,

    // Link transmit (to the MAC); tuser = abort this frame
    output wire [DATA_WIDTH-1:0]      m_axis_tx_tdata,
    output wire [DATA_WIDTH/8-1:0]    m_axis_tx_tkeep,
    output wire                       m_axis_tx_tvalid,
    input  wire                       m_axis_tx_tready,
    output wire                       m_axis_tx_tlast,
    output wire                       m_axis_tx_tuser,

    // Link receive (from the MAC); tuser = bad frame (FCS or PHY error)
    input  wire [DATA_WIDTH-1:0]      s_axis_rx_tdata,
    input  wire [DATA_WIDTH/8-1:0]    s_axis_rx_tkeep,
    input  wire                       s_axis_rx_tvalid,
    output wire                       s_axis_rx_tready,
    input  wire                       s_axis_rx_tlast,
    input  wire                       s_axis_rx_tuser
);

`include "san_regs.vh"

// Doorbell pages follow the register blocks; BAR0 is the next power of two that holds them.
localparam integer DB_END = SAN_DB_BASE + N_QP * SAN_DB_STRIDE;
localparam integer BAR0_LOG2 = $clog2(DB_END);
localparam [31:0] BAR0_SIZE = 32'd1 << BAR0_LOG2;

initial begin
    if (DATA_WIDTH < 64 || DATA_WIDTH > 512 || (DATA_WIDTH & (DATA_WIDTH - 1)) != 0) begin
        $error("san_nic_top: DATA_WIDTH must be a power of two from 64 to 512");
        $finish;
    end
    if (N_QP < 2 || N_QP > 4096 || (N_QP & (N_QP - 1)) != 0) begin
        $error("san_nic_top: N_QP must be a power of two from 2 to 4096");
        $finish;
    end
    if (AXIL_ADDR_WIDTH != BAR0_LOG2) begin
        $error("san_nic_top: AXIL_ADDR_WIDTH must be log2 of the BAR0 size (%0d)", BAR0_LOG2);
        $finish;
    end
end

san_csr #(
    .DATA_WIDTH(DATA_WIDTH),
    .N_QP(N_QP),
    .CLK_KHZ(CLK_KHZ),
    .N_MSIX(N_MSIX),
    .BAR0_SIZE(BAR0_SIZE),
    .AXIL_ADDR_WIDTH(AXIL_ADDR_WIDTH)
) csr_inst (
    .clk(clk),
    .rst(rst),
    .s_axil_awaddr(s_axil_awaddr),
    .s_axil_awprot(s_axil_awprot),
    .s_axil_awvalid(s_axil_awvalid),
    .s_axil_awready(s_axil_awready),
    .s_axil_wdata(s_axil_wdata),
    .s_axil_wstrb(s_axil_wstrb),
    .s_axil_wvalid(s_axil_wvalid),
    .s_axil_wready(s_axil_wready),
    .s_axil_bresp(s_axil_bresp),
    .s_axil_bvalid(s_axil_bvalid),
    .s_axil_bready(s_axil_bready),
    .s_axil_araddr(s_axil_araddr),
    .s_axil_arprot(s_axil_arprot),
    .s_axil_arvalid(s_axil_arvalid),
    .s_axil_arready(s_axil_arready),
    .s_axil_rdata(s_axil_rdata),
    .s_axil_rresp(s_axil_rresp),
    .s_axil_rvalid(s_axil_rvalid),
    .s_axil_rready(s_axil_rready),
    .m_msix_vector(m_msix_vector),
    .m_msix_valid(m_msix_valid),
    .m_msix_ready(m_msix_ready)
);

// The engines that use these ports (send/receive queues, DMA, link) arrive with the data path.
// Until then: no DMA requests, nothing transmitted, and every received beat and stray DMA
// data beat is accepted and discarded, so a connected MAC or host model can never stall.
assign m_dma_rd_req_addr = 64'd0;
assign m_dma_rd_req_len = 16'd0;
assign m_dma_rd_req_tag = {DMA_TAG_WIDTH{1'b0}};
assign m_dma_rd_req_valid = 1'b0;
assign s_axis_dma_rd_tready = 1'b1;

assign m_dma_wr_req_addr = 64'd0;
assign m_dma_wr_req_len = 16'd0;
assign m_dma_wr_req_tag = {DMA_TAG_WIDTH{1'b0}};
assign m_dma_wr_req_valid = 1'b0;
assign m_axis_dma_wr_tdata = {DATA_WIDTH{1'b0}};
assign m_axis_dma_wr_tkeep = {DATA_WIDTH/8{1'b0}};
assign m_axis_dma_wr_tvalid = 1'b0;
assign m_axis_dma_wr_tlast = 1'b0;
assign m_axis_dma_wr_tuser = 1'b0;

assign m_axis_tx_tdata = {DATA_WIDTH{1'b0}};
assign m_axis_tx_tkeep = {DATA_WIDTH/8{1'b0}};
assign m_axis_tx_tvalid = 1'b0;
assign m_axis_tx_tlast = 1'b0;
assign m_axis_tx_tuser = 1'b0;

assign s_axis_rx_tready = 1'b1;

// Inputs with no consumer yet; the unused_ prefix tells lint they are deliberately unread.
wire unused_inputs = &{1'b0, m_dma_rd_req_ready, s_axis_dma_rd_tdata, s_axis_dma_rd_tkeep,
    s_axis_dma_rd_tvalid, s_axis_dma_rd_tlast, s_axis_dma_rd_tid, s_axis_dma_rd_tuser,
    m_dma_wr_req_ready, m_axis_dma_wr_tready, s_dma_wr_done_tag, s_dma_wr_done_error,
    s_dma_wr_done_valid, m_axis_tx_tready, s_axis_rx_tdata, s_axis_rx_tkeep, s_axis_rx_tvalid,
    s_axis_rx_tlast, s_axis_rx_tuser};

endmodule

`resetall

hw/rtl/san_csr.v
hw/rtl/san_nic_top.v
hw/rtl/san_icrc.v
hw/rtl/san_tx_builder.v
hw/rtl/san_sync_fifo.v
hw/rtl/san_rx_parser.v

hw/rtl/san_csr.v
hw/rtl/san_nic_top.v
hw/rtl/san_icrc.v

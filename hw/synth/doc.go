// Package synth reads what Yosys synthesis leaves behind (a JSON netlist from `write_json` after
// `synth_xilinx`) and reports the resource figures of docs/METRICS: LUTs, flip-flops, block RAMs
// and logic levels, the longest chain of LUTs between registers, which bounds the clock rate.
package synth

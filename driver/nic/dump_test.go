package nic_test

import (
	"fmt"
	"os"
	"testing"

	"github.com/sanoffload/san/hw/wire"
)

// dumpFrames logs the last frames each host sent (opcode, PSN, AETH), for diagnosing a failed
// run: set SAN_DUMP=1, which also turns capture on in the tests that call it.
func dumpFrames(t *testing.T, hs [2]*host) {
	if os.Getenv("SAN_DUMP") == "" {
		return
	}
	for i, h := range hs {
		fs, err := h.dev.Transmitted()
		if err != nil {
			t.Log(err)
			continue
		}
		start := max(0, len(fs)-40)
		for _, f := range fs[start:] {
			p, err := wire.Parse(f.Bytes)
			if err != nil {
				continue
			}
			s := fmt.Sprintf("host %d @%d-%d op %#x psn %d ackreq %v len %d", i, f.First, f.Last, p.BTH.OpCode, p.BTH.PSN, p.BTH.AckReq, len(p.Payload))
			if p.AETH != nil {
				s += fmt.Sprintf(" syn %#x msn %d", p.AETH.Syndrome, p.AETH.MSN)
			}
			t.Log(s)
		}
	}
}

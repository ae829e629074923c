package wire

import "fmt"

// SegmentInfo describes one packet of a message sent with RC SEND.
type SegmentInfo struct {
	OpCode uint8 // OpRCSendFirst, OpRCSendMiddle, OpRCSendLast or OpRCSendOnly
	Offset int   // offset of the packet's payload in the message
	Len    int   // payload length
}

// Segment splits a message of payloadLen bytes into the packets that carry it over a path MTU
// of pmtu: one SEND_ONLY if it fits in one packet (an empty message is one SEND_ONLY with no
// payload), and otherwise a SEND_FIRST, as many SEND_MIDDLEs as needed, all of pmtu bytes, and a
// SEND_LAST of 1 to pmtu bytes. It panics if pmtu is not a valid path MTU or payloadLen is
// negative.
func Segment(payloadLen, pmtu int) []SegmentInfo {
	if !ValidPMTU(pmtu) || payloadLen < 0 {
		panic(fmt.Sprintf("wire: Segment(%d, %d): bad length or path MTU", payloadLen, pmtu))
	}
	if payloadLen <= pmtu {
		return []SegmentInfo{{OpCode: OpRCSendOnly, Len: payloadLen}}
	}
	n := (payloadLen + pmtu - 1) / pmtu
	segs := make([]SegmentInfo, n)
	for i := range segs {
		segs[i] = SegmentInfo{OpCode: OpRCSendMiddle, Offset: i * pmtu, Len: pmtu}
	}
	segs[0].OpCode = OpRCSendFirst
	segs[n-1].OpCode = OpRCSendLast
	segs[n-1].Len = payloadLen - (n-1)*pmtu
	return segs
}

package wire

import (
	"errors"
	"testing"
)

// FuzzParse checks that Parse never panics, that every failure is a *ParseError with a named
// reason, and that every frame it accepts marshals back to a frame that parses the same.
func FuzzParse(f *testing.F) {
	for _, op := range []uint8{OpRCSendFirst, OpRCSendMiddle, OpRCSendLast, OpRCSendOnly, OpRCAck, OpUDSendOnly} {
		n := 0
		switch op {
		case OpRCSendFirst, OpRCSendMiddle:
			n = DefaultPMTU
		case OpRCSendLast, OpRCSendOnly:
			n = 7
		case OpUDSendOnly:
			n = 256
		}
		var p []byte
		if n > 0 {
			p = pattern(n)
		}
		f.Add(testFrame(op, p).Marshal())
	}
	f.Add(append(testFrame(OpRCSendOnly, nil).Marshal(), 0, 0))
	f.Add(testFrame(OpRCSendOnly, nil).Marshal()[:MinFrameLen-1])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		in := append([]byte(nil), b...)
		fr, err := Parse(b)
		if string(in) != string(b) {
			t.Fatal("Parse modified its input")
		}
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) || pe.Reason < DropTruncated || pe.Reason > DropLength {
				t.Fatalf("error %v (%T) is not a *ParseError with a known reason", err, err)
			}
			if fr != nil {
				t.Fatal("frame returned with an error")
			}
			return
		}
		out := fr.Marshal()
		fr2, err := Parse(out)
		if err != nil {
			t.Fatalf("re-marshalled frame rejected: %v", err)
		}
		if string(fr2.Marshal()) != string(out) {
			t.Fatal("marshal, parse, marshal is not stable")
		}
	})
}

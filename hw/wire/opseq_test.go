package wire

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestOpSeq(t *testing.T) {
	const (
		F = OpRCSendFirst
		M = OpRCSendMiddle
		L = OpRCSendLast
		O = OpRCSendOnly
	)
	tests := []struct {
		name    string
		ops     []uint8
		badAt   int // index of the first rejected opcode, -1 for none
		badFrom SeqState
		end     SeqState
	}{
		{"only", []uint8{O, O, O}, -1, 0, SeqIdle},
		{"first last", []uint8{F, L}, -1, 0, SeqIdle},
		{"first middles last", []uint8{F, M, M, M, L, O}, -1, 0, SeqIdle},
		{"open message", []uint8{O, F, M}, -1, 0, SeqInMessage},
		{"middle without first", []uint8{M}, 0, SeqIdle, SeqIdle},
		{"last without first", []uint8{O, L}, 1, SeqIdle, SeqIdle},
		{"first after first", []uint8{F, F}, 1, SeqInMessage, SeqInMessage},
		{"only in message", []uint8{F, M, O}, 2, SeqInMessage, SeqInMessage},
		{"last twice", []uint8{F, L, L}, 2, SeqIdle, SeqIdle},
		{"ack is not a send", []uint8{OpRCAck}, 0, SeqIdle, SeqIdle},
		{"ud is not an rc send", []uint8{F, OpUDSendOnly}, 1, SeqInMessage, SeqInMessage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s OpSeq
			require.Equal(t, SeqIdle, s.State(), "zero value is idle")
			for i, op := range tt.ops {
				err := s.Next(op)
				if i != tt.badAt {
					require.NoError(t, err, "opcode %d (%s)", i, OpcodeName(op))
					continue
				}
				var se *SeqError
				require.True(t, errors.As(err, &se), "opcode %d (%s) must be rejected", i, OpcodeName(op))
				assert.Equal(t, tt.badFrom, se.State)
				assert.Equal(t, op, se.OpCode)
				assert.Equal(t, tt.badFrom, s.State(), "state unchanged by a rejected opcode")
				break
			}
			assert.Equal(t, tt.end, s.State())
			s.Reset()
			assert.Equal(t, SeqIdle, s.State())
		})
	}
}

func TestSeqErrorMessages(t *testing.T) {
	assert.Equal(t, "wire: RC_SEND_MIDDLE not allowed in state Idle",
		(&SeqError{State: SeqIdle, OpCode: OpRCSendMiddle}).Error())
	assert.Equal(t, "wire: RC_ACKNOWLEDGE is not an RC SEND opcode",
		(&SeqError{State: SeqInMessage, OpCode: OpRCAck}).Error())
	assert.Equal(t, "InMessage", SeqInMessage.String())
	assert.Equal(t, "SeqState(7)", SeqState(7).String())
}

// TestOpSeqAcceptsSegments: every message Segment splits is a valid sequence.
func TestOpSeqAcceptsSegments(t *testing.T) {
	var s OpSeq
	for _, n := range []int{0, 1, 256, 257, 1000, 5000} {
		for _, seg := range Segment(n, PMTU256) {
			require.NoError(t, s.Next(seg.OpCode), "message of %d bytes", n)
		}
		require.Equal(t, SeqIdle, s.State(), "message of %d bytes ends idle", n)
	}
}

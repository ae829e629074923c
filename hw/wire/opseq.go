package wire

import "fmt"

// SeqState is the state of an OpSeq.
type SeqState uint8

// The states of an OpSeq.
const (
	// SeqIdle: between messages; the next packet must start one (SEND_FIRST or SEND_ONLY).
	SeqIdle SeqState = iota
	// SeqInMessage: after SEND_FIRST or SEND_MIDDLE; the next packet must be SEND_MIDDLE or
	// SEND_LAST.
	SeqInMessage
)

// String returns the state's name.
func (s SeqState) String() string {
	switch s {
	case SeqIdle:
		return "Idle"
	case SeqInMessage:
		return "InMessage"
	}
	return fmt.Sprintf("SeqState(%d)", uint8(s))
}

// SeqError is the error OpSeq.Next returns for an opcode that may not come next.
type SeqError struct {
	State  SeqState // state the opcode arrived in
	OpCode uint8    // the opcode
}

// Error describes the bad sequence.
func (e *SeqError) Error() string {
	if !isRCSend(e.OpCode) {
		return fmt.Sprintf("wire: %s is not an RC SEND opcode", OpcodeName(e.OpCode))
	}
	return fmt.Sprintf("wire: %s not allowed in state %s", OpcodeName(e.OpCode), e.State)
}

// OpSeq checks the opcode sequence of RC SEND packets on one queue pair, in order of PSN. Its
// zero value is in state SeqIdle.
type OpSeq struct {
	state SeqState
}

// State returns the current state.
func (s *OpSeq) State() SeqState { return s.state }

// Reset returns to SeqIdle, as after a connection is (re)established.
func (s *OpSeq) Reset() { s.state = SeqIdle }

// Next takes the opcode of the next RC SEND packet. If the opcode may come next it moves to the
// following state and returns nil; otherwise it returns a *SeqError and stays in its state.
// Opcodes other than the four RC SENDs are always errors.
func (s *OpSeq) Next(op uint8) error {
	next, ok := seqTransition(s.state, op)
	if !ok {
		return &SeqError{State: s.state, OpCode: op}
	}
	s.state = next
	return nil
}

// seqTransition is the state machine: the state after op arrives in state s, and whether op is
// allowed there.
func seqTransition(s SeqState, op uint8) (SeqState, bool) {
	switch {
	case s == SeqIdle && op == OpRCSendOnly:
		return SeqIdle, true
	case s == SeqIdle && op == OpRCSendFirst:
		return SeqInMessage, true
	case s == SeqInMessage && op == OpRCSendMiddle:
		return SeqInMessage, true
	case s == SeqInMessage && op == OpRCSendLast:
		return SeqIdle, true
	}
	return s, false
}

func isRCSend(op uint8) bool {
	switch op {
	case OpRCSendFirst, OpRCSendMiddle, OpRCSendLast, OpRCSendOnly:
		return true
	}
	return false
}

package synth

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A register feeds LUT -> MUXF7 -> LUT -> register, and a separate LUT feeds a CARRY4 whose
// output feeds another LUT: two levels on each path.
const netlistJSON = `{"modules": {"top": {"cells": {
 "ff1": {"type": "FDRE", "port_directions": {"C": "input", "D": "input", "Q": "output"}, "connections": {"C": [2], "D": [9], "Q": [3]}},
 "l1": {"type": "LUT2", "port_directions": {"I0": "input", "I1": "input", "O": "output"}, "connections": {"I0": [3], "I1": ["0"], "O": [4]}},
 "mx": {"type": "MUXF7", "port_directions": {"I0": "input", "I1": "input", "S": "input", "O": "output"}, "connections": {"I0": [4], "I1": [4], "S": [3], "O": [5]}},
 "l2": {"type": "LUT6", "port_directions": {"I0": "input", "O": "output"}, "connections": {"I0": [5], "O": [9]}},
 "l3": {"type": "LUT1", "port_directions": {"I0": "input", "O": "output"}, "connections": {"I0": [3], "O": [10]}},
 "c4": {"type": "CARRY4", "port_directions": {"S": "input", "CO": "output"}, "connections": {"S": [10, 3, 3, 3], "CO": [11, 12, 13, 14]}},
 "l4": {"type": "LUT3", "port_directions": {"I0": "input", "O": "output"}, "connections": {"I0": [14], "O": [15]}},
 "ram": {"type": "RAMB18E1", "port_directions": {"DI": "input", "DO": "output"}, "connections": {"DI": [15], "DO": [16]}}
}}}}`

func TestParseCountsAndLevels(t *testing.T) {
	r, err := Parse([]byte(netlistJSON), "top")
	require.NoError(t, err)
	assert.Equal(t, 4, r.LUT)
	assert.Equal(t, 1, r.FF)
	assert.Equal(t, 0.5, r.BRAM)
	assert.Equal(t, 2, r.Levels)
	assert.Equal(t, 1, r.Cells["CARRY4"])
}

func TestParseErrors(t *testing.T) {
	_, err := Parse([]byte(netlistJSON), "other")
	assert.ErrorIs(t, err, ErrNoModule)
	_, err = Parse([]byte("{"), "top")
	assert.Error(t, err)
	loop := `{"modules": {"top": {"cells": {
 "a": {"type": "LUT1", "port_directions": {"I0": "input", "O": "output"}, "connections": {"I0": [2], "O": [3]}},
 "b": {"type": "LUT1", "port_directions": {"I0": "input", "O": "output"}, "connections": {"I0": [3], "O": [2]}}}}}}`
	_, err = Parse([]byte(loop), "top")
	assert.ErrorContains(t, err, "combinational loop")
}

// TestParsePath: the nets of the one deepest path are named, from the register it starts at to
// the last LUT's output; a hidden (Yosys-made) name gives way to a user-given one.
func TestParsePath(t *testing.T) {
	const nl = `{"modules": {"top": {"cells": {
 "ff1": {"type": "FDRE", "port_directions": {"D": "input", "Q": "output"}, "connections": {"D": [9], "Q": [3]}},
 "l1": {"type": "LUT2", "port_directions": {"I0": "input", "I1": "input", "O": "output"}, "connections": {"I0": [3], "I1": ["0"], "O": [4]}},
 "mx": {"type": "MUXF7", "port_directions": {"I0": "input", "S": "input", "O": "output"}, "connections": {"I0": [4], "S": [3], "O": [5]}},
 "l2": {"type": "LUT6", "port_directions": {"I0": "input", "O": "output"}, "connections": {"I0": [5], "O": [9]}},
 "l5": {"type": "LUT1", "port_directions": {"I0": "input", "O": "output"}, "connections": {"I0": [9], "O": [17]}}
 }, "netnames": {
 "q": {"hide_name": 0, "bits": [3]},
 "$abc$1": {"hide_name": 1, "bits": [5]},
 "sel": {"hide_name": 0, "bits": [5]},
 "bus": {"hide_name": 0, "bits": [9, 17]}
}}}}`
	r, err := Parse([]byte(nl), "top")
	require.NoError(t, err)
	assert.Equal(t, 3, r.Levels)
	assert.Equal(t, []string{"q", "sel", "bus[0]", "bus[1]"}, r.Path)
}

// TestParseOver: path ends deeper than the goal are listed deepest first - a register (named by
// its output net) and an output port at the end of LUT chains of 11 and 9, not the shallow
// register behind two LUTs - and a deepest path is found the same way every run.
func TestParseOver(t *testing.T) {
	var cells []string
	lut := func(name string, in, out int) {
		cells = append(cells, fmt.Sprintf(`%q: {"type": "LUT1", "port_directions": {"I0": "input", "O": "output"}, "connections": {"I0": [%d], "O": [%d]}}`, name, in, out))
	}
	// Bit 2 is a register's output; chain a: 100..111 (11 LUTs) into ff "deep"; chain b:
	// 200..209 (9 LUTs) to port "out"; chain c: 300..302 (2 LUTs) into ff "shallow".
	chain := func(prefix string, base, n int) { // LUTs base -> base+1 -> ... -> base+n, fed by bit 2
		for k := 0; k < n; k++ {
			in := base + k
			if k == 0 {
				in = 2
			}
			lut(fmt.Sprintf("%s%d", prefix, k), in, base+k+1)
		}
	}
	chain("a", 100, 11)
	chain("b", 200, 9)
	chain("c", 300, 2)
	ff := func(name string, d, q int) {
		cells = append(cells, fmt.Sprintf(`%q: {"type": "FDRE", "port_directions": {"D": "input", "Q": "output"}, "connections": {"D": [%d], "Q": [%d]}}`, name, d, q))
	}
	ff("deep", 111, 2)
	ff("shallow", 302, 3)
	nl := `{"modules": {"top": {"ports": {"out": {"direction": "output", "bits": [209]}},
 "cells": {` + strings.Join(cells, ",\n") + `},
 "netnames": {"acc_next": {"hide_name": 0, "bits": [111]}, "out": {"hide_name": 0, "bits": [209]},
  "acc": {"hide_name": 0, "bits": [2]}, "small": {"hide_name": 0, "bits": [3]}}}}}`
	r, err := Parse([]byte(nl), "top")
	require.NoError(t, err)
	assert.Equal(t, 11, r.Levels)
	assert.Equal(t, []Endpoint{{Net: "acc", Levels: 11}, {Net: "out", Levels: 9}}, r.Over)
	for i := 0; i < 5; i++ {
		again, err := Parse([]byte(nl), "top")
		require.NoError(t, err)
		assert.Equal(t, r.Path, again.Path)
	}
	assert.Equal(t, "acc", r.Path[0])
	assert.Equal(t, "acc_next", r.Path[len(r.Path)-1])
}

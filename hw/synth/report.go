package synth

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Report holds the resource figures of one synthesized module.
type Report struct {
	Top    string         `json:"top"`
	LUT    int            `json:"lut"`
	FF     int            `json:"ff"`
	BRAM   float64        `json:"bram"`   // 36 Kb blocks; an 18 Kb block counts half
	Levels int            `json:"levels"` // most LUTs on a path between registers or ports
	Cells  map[string]int `json:"cells"`  // every cell type and its count
	// Path names the nets along one deepest path, from the register or port it starts at to
	// the last LUT's output (a net without a user-given name is shown by its Yosys name).
	Path []string `json:"path,omitempty"`
	// Over lists the path ends whose deepest input path has more than OverLevels LUTs, deepest
	// first: registers and RAMs by their output net's name, output ports by theirs, without the
	// bit index (cells whose outputs have only Yosys-made names count under those).
	Over []Endpoint `json:"over,omitempty"`
}

// OverLevels is the logic-level goal (METRICS: levels <= 8); Report.Over lists what exceeds it.
const OverLevels = 8

// Endpoint is a path end and the most LUTs on a path into it.
type Endpoint struct {
	Net    string `json:"net"`
	Levels int    `json:"levels"`
}

// netlist is the part of Yosys's JSON netlist format that the report reads.
type netlist struct {
	Modules map[string]struct {
		Cells map[string]struct {
			Type           string                       `json:"type"`
			PortDirections map[string]string            `json:"port_directions"`
			Connections    map[string][]json.RawMessage `json:"connections"`
		} `json:"cells"`
		Ports map[string]struct {
			Direction string            `json:"direction"`
			Bits      []json.RawMessage `json:"bits"`
		} `json:"ports"`
		Netnames map[string]netname `json:"netnames"`
	} `json:"modules"`
}

type netname struct {
	HideName int               `json:"hide_name"`
	Bits     []json.RawMessage `json:"bits"`
}

// bitOf is a connection's net bit, or false for a constant ("0", "1", "x").
func bitOf(raw json.RawMessage) (int, bool) {
	var bit int
	return bit, json.Unmarshal(raw, &bit) == nil
}

// ErrNoModule means the netlist does not hold the requested top module.
var ErrNoModule = errors.New("module not in netlist")

// isSequential reports cells whose outputs start a new path: flip-flops, latches, RAMs, DSPs
// and clock buffers.
func isSequential(t string) bool {
	return strings.HasPrefix(t, "FD") || strings.HasPrefix(t, "LD") || strings.HasPrefix(t, "RAM") ||
		strings.HasPrefix(t, "DSP") || strings.HasPrefix(t, "BUFG") || strings.HasPrefix(t, "SRL")
}

// isLUT reports LUT cells; Yosys's INV becomes a LUT1 in the vendor flow.
func isLUT(t string) bool { return strings.HasPrefix(t, "LUT") || t == "INV" }

// Parse computes the report for module top from a Yosys JSON netlist. CARRY4 and MUXF7/F8
// cells are dedicated slice logic and add no level; each LUT adds one.
func Parse(data []byte, top string) (*Report, error) {
	var n netlist
	if err := json.Unmarshal(data, &n); err != nil {
		return nil, fmt.Errorf("parse netlist: %w", err)
	}
	m, ok := n.Modules[top]
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrNoModule, top)
	}
	r := &Report{Top: top, Cells: map[string]int{}}

	type cell struct {
		typ    string
		inputs []int
		output int // one output bit, for naming the path
	}
	cells := make([]cell, 0, len(m.Cells))
	driver := map[int]int{} // net bit -> index of the combinational cell driving it
	// Path ends: a sequential cell's input bits, named by one of its output bits; output ports.
	type end struct{ in, namedBy int }
	var ends []end
	for _, p := range m.Ports {
		if p.Direction == "output" {
			for _, raw := range p.Bits {
				if bit, ok := bitOf(raw); ok {
					ends = append(ends, end{bit, bit})
				}
			}
		}
	}
	// In name order, so that ties resolve the same way every run.
	for _, name := range slices.Sorted(maps.Keys(m.Cells)) {
		c := m.Cells[name]
		r.Cells[c.Type]++
		switch {
		case isLUT(c.Type):
			r.LUT++
		case strings.HasPrefix(c.Type, "FD"):
			r.FF++
		case strings.HasPrefix(c.Type, "RAMB36"):
			r.BRAM++
		case strings.HasPrefix(c.Type, "RAMB18"):
			r.BRAM += 0.5
		}
		if isSequential(c.Type) {
			var ins []int
			out := -1
			for _, port := range slices.Sorted(maps.Keys(c.Connections)) {
				for _, raw := range c.Connections[port] {
					if bit, ok := bitOf(raw); !ok {
						continue
					} else if c.PortDirections[port] == "input" {
						ins = append(ins, bit)
					} else if out < 0 {
						out = bit
					}
				}
			}
			for _, b := range ins {
				ends = append(ends, end{b, out})
			}
			continue
		}
		idx := len(cells)
		cl := cell{typ: c.Type}
		for _, port := range slices.Sorted(maps.Keys(c.Connections)) {
			for _, raw := range c.Connections[port] {
				bit, ok := bitOf(raw)
				if !ok {
					continue
				}
				if c.PortDirections[port] == "output" {
					driver[bit] = idx
					cl.output = bit
				} else {
					cl.inputs = append(cl.inputs, bit)
				}
			}
		}
		cells = append(cells, cl)
	}

	// Longest LUT count into each combinational cell's outputs, by depth-first search.
	const unvisited, visiting = -1, -2
	depth := make([]int, len(cells))
	pred := make([]int, len(cells))    // the input cell the depth came through; -1 none
	predBit := make([]int, len(cells)) // the net from it (or, with no pred, the deepest start)
	for i := range depth {
		depth[i] = unvisited
		pred[i] = -1
	}
	var visit func(i int) (int, error)
	visit = func(i int) (int, error) {
		switch depth[i] {
		case visiting:
			return 0, fmt.Errorf("combinational loop through a %s cell", cells[i].typ)
		case unvisited:
		default:
			return depth[i], nil
		}
		depth[i] = visiting
		d := 0
		if len(cells[i].inputs) > 0 {
			predBit[i] = cells[i].inputs[0]
		}
		for _, b := range cells[i].inputs {
			if j, ok := driver[b]; ok {
				dj, err := visit(j)
				if err != nil {
					return 0, err
				}
				if dj > d || pred[i] < 0 {
					d, pred[i], predBit[i] = max(d, dj), j, b
				}
			}
		}
		if isLUT(cells[i].typ) {
			d++
		}
		depth[i] = d
		return d, nil
	}
	deepest := -1
	for i := range cells {
		d, err := visit(i)
		if err != nil {
			return nil, err
		}
		if d > r.Levels {
			r.Levels, deepest = d, i
		}
	}
	names := bitNames(m.Netnames)
	over := map[string]int{}
	for _, e := range ends {
		if j, ok := driver[e.in]; ok && depth[j] > OverLevels {
			net, _, _ := strings.Cut(names.of(e.namedBy), "[")
			over[net] = max(over[net], depth[j])
		}
	}
	for net, d := range over {
		r.Over = append(r.Over, Endpoint{Net: net, Levels: d})
	}
	slices.SortFunc(r.Over, func(a, b Endpoint) int {
		if a.Levels != b.Levels {
			return b.Levels - a.Levels
		}
		return strings.Compare(a.Net, b.Net)
	})
	if deepest >= 0 {
		path := []string{names.of(cells[deepest].output)}
		for i := deepest; i >= 0; i = pred[i] {
			if isLUT(cells[i].typ) || pred[i] < 0 {
				path = append(path, names.of(predBit[i]))
			}
		}
		slices.Reverse(path)
		r.Path = slices.Compact(path)
	}
	return r, nil
}

// bitNamer names net bits: a user-given name where one exists (the shortest), else Yosys's.
type bitNamer map[int]string

func bitNames(nets map[string]netname) bitNamer {
	out := bitNamer{}
	hidden := map[int]bool{}
	for name, n := range nets {
		for k, raw := range n.Bits {
			bit, ok := bitOf(raw)
			if !ok {
				continue
			}
			full := name
			if len(n.Bits) > 1 {
				full = fmt.Sprintf("%s[%d]", name, k)
			}
			old, ok := out[bit]
			better := !ok || (hidden[bit] && n.HideName == 0) ||
				(hidden[bit] == (n.HideName != 0) && (len(full) < len(old) || len(full) == len(old) && full < old))
			if better {
				out[bit], hidden[bit] = full, n.HideName != 0
			}
		}
	}
	return out
}

func (b bitNamer) of(bit int) string {
	if name, ok := b[bit]; ok {
		return name
	}
	return fmt.Sprintf("net %d", bit)
}

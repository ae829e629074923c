package main

import (
	"bytes"
	"errors"
	"fmt"
	"hash/crc32"
	"regexp"
	"sort"

	"go.yaml.in/yaml/v3"
)

// Contract is the parsed and validated hardware/software contract.
type Contract struct {
	Name       string      `yaml:"name"`
	Doc        string      `yaml:"doc"`
	Bars       []Bar       `yaml:"bars"`
	Blocks     []Block     `yaml:"blocks"`
	Doorbells  Doorbells   `yaml:"doorbells"`
	Structures []Structure `yaml:"structures"`
	Enums      []Enum      `yaml:"enums"`

	// ID is the CRC-32 (IEEE) of the source file's bytes.
	ID uint32 `yaml:"-"`
	// Source is the path the contract was read from, as given to the generator.
	Source string `yaml:"-"`
}

// Bar documents one PCI BAR.
type Bar struct {
	Index int    `yaml:"index"`
	Doc   string `yaml:"doc"`
}

// Version is a block's major.minor.patch version.
type Version struct {
	Major uint32 `yaml:"major"`
	Minor uint32 `yaml:"minor"`
	Patch uint32 `yaml:"patch"`
}

// Word packs the version as the BLK_VERSION register holds it.
func (v Version) Word() uint32 { return v.Major<<16 | v.Minor<<8 | v.Patch }

func (v Version) String() string { return fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch) }

// Block is a register block that begins with a type/version/next header.
type Block struct {
	Name      string     `yaml:"name"`
	Type      uint32     `yaml:"type"`
	Version   Version    `yaml:"version"`
	Base      uint32     `yaml:"base"`
	Doc       string     `yaml:"doc"`
	Registers []Register `yaml:"registers"`
}

// Reset says where a register's reset (or constant) value comes from: exactly one of the fields
// is set.
type Reset struct {
	Value    *uint32 `yaml:"value"`
	Param    string  `yaml:"param"`
	Block    string  `yaml:"block"`    // "type" or "version"
	Contract string  `yaml:"contract"` // "id"
}

// Register is one 32-bit register.
type Register struct {
	Name   string  `yaml:"name"`
	Offset uint32  `yaml:"offset"`
	Access string  `yaml:"access"`
	Reset  Reset   `yaml:"reset"`
	Doc    string  `yaml:"doc"`
	Fields []Field `yaml:"fields"`
}

// Field is a bit field of a register or of a structure word.
type Field struct {
	Name  string `yaml:"name"`
	LSB   int    `yaml:"lsb"`
	Width int    `yaml:"width"`
	Doc   string `yaml:"doc"`
}

// Mask is the field's mask after shifting right by LSB.
func (f Field) Mask() uint64 { return (uint64(1) << uint(f.Width)) - 1 }

// Doorbells describes the per-connection doorbell pages.
type Doorbells struct {
	Base      uint32     `yaml:"base"`
	Stride    uint32     `yaml:"stride"`
	Doc       string     `yaml:"doc"`
	Registers []Doorbell `yaml:"registers"`
}

// Doorbell is one write-only register within a doorbell page.
type Doorbell struct {
	Name   string `yaml:"name"`
	Offset uint32 `yaml:"offset"`
	Doc    string `yaml:"doc"`
}

// Structure is a little-endian host-memory structure (descriptor, completion, event).
type Structure struct {
	Name    string   `yaml:"name"`
	Size    int      `yaml:"size"`
	Doc     string   `yaml:"doc"`
	Members []Member `yaml:"fields"`
}

// Enum is a set of named codes shared by hardware and software (status codes, reasons).
type Enum struct {
	Name   string      `yaml:"name"`
	Width  int         `yaml:"width"` // bits the hardware carries the code in
	Doc    string      `yaml:"doc"`
	Values []EnumValue `yaml:"values"`
}

// EnumValue is one code of an Enum.
type EnumValue struct {
	Name  string `yaml:"name"`
	Value uint64 `yaml:"value"`
	Doc   string `yaml:"doc"`
}

func (e *Enum) validate() error {
	if !camelName.MatchString(e.Name) {
		return invalid("enum %q: name must be CamelCase", e.Name)
	}
	if e.Width < 1 || e.Width > 32 {
		return invalid("enum %s: width %d is outside 1..32", e.Name, e.Width)
	}
	if len(e.Values) == 0 {
		return invalid("enum %s: no values", e.Name)
	}
	names, values := map[string]bool{}, map[uint64]string{}
	for _, v := range e.Values {
		if !upperName.MatchString(v.Name) {
			return invalid("enum %s value %s: name must be UPPER_SNAKE_CASE", e.Name, v.Name)
		}
		if names[v.Name] {
			return invalid("enum %s value %s: defined twice", e.Name, v.Name)
		}
		names[v.Name] = true
		if v.Value >= 1<<uint(e.Width) {
			return invalid("enum %s value %s: %d does not fit in %d bits", e.Name, v.Name, v.Value, e.Width)
		}
		if other, ok := values[v.Value]; ok {
			return invalid("enum %s value %s: %d already used by %s", e.Name, v.Name, v.Value, other)
		}
		values[v.Value] = v.Name
	}
	return nil
}

// Member is a field of a structure: an unsigned integer of 1, 2, 4 or 8 bytes, optionally split
// into bit fields, or a byte array (Bytes > 8 or Array set).
type Member struct {
	Name   string  `yaml:"name"`
	Offset int     `yaml:"offset"`
	Bytes  int     `yaml:"bytes"`
	Array  bool    `yaml:"array"`
	Doc    string  `yaml:"doc"`
	Bits   []Field `yaml:"bits"`
}

var (
	upperName = regexp.MustCompile(`^[A-Z][A-Z0-9_]*$`)
	lowerName = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
	camelName = regexp.MustCompile(`^[A-Z][A-Za-z0-9]*$`)
)

// errContract marks every validation failure so callers can tell them from I/O errors.
var errContract = errors.New("invalid contract")

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errContract}, args...)...)
}

// Parse decodes and validates a contract. Unknown keys are errors, so a typo cannot silently
// drop a register.
func Parse(src []byte, source string) (*Contract, error) {
	var c Contract
	dec := yaml.NewDecoder(bytes.NewReader(src))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("%s: %w: %v", source, errContract, err)
	}
	c.ID = crc32.ChecksumIEEE(src)
	c.Source = source
	if err := c.validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	return &c, nil
}

func (c *Contract) validate() error {
	if !lowerName.MatchString(c.Name) {
		return invalid("name %q must be lower_snake_case", c.Name)
	}
	if len(c.Blocks) == 0 {
		return invalid("no register blocks")
	}
	seenBlock := map[string]bool{}
	for i := range c.Blocks {
		b := &c.Blocks[i]
		if !lowerName.MatchString(b.Name) {
			return invalid("block %q: name must be lower_snake_case", b.Name)
		}
		if seenBlock[b.Name] {
			return invalid("block %q defined twice", b.Name)
		}
		seenBlock[b.Name] = true
		if b.Base%4 != 0 {
			return invalid("block %q: base 0x%x is not 32-bit aligned", b.Name, b.Base)
		}
		if err := b.validate(); err != nil {
			return err
		}
	}
	if err := c.Doorbells.validate(); err != nil {
		return err
	}
	// Blocks must not reach into the doorbell pages.
	for _, b := range c.Blocks {
		for _, r := range b.Registers {
			if c.Doorbells.Base != 0 && b.Base+r.Offset >= c.Doorbells.Base {
				return invalid("block %q register %s at 0x%x overlaps the doorbell pages at 0x%x",
					b.Name, r.Name, b.Base+r.Offset, c.Doorbells.Base)
			}
		}
	}
	seenEnum := map[string]bool{}
	for i := range c.Enums {
		e := &c.Enums[i]
		if seenEnum[e.Name] {
			return invalid("enum %q defined twice", e.Name)
		}
		seenEnum[e.Name] = true
		if err := e.validate(); err != nil {
			return err
		}
	}
	seenStruct := map[string]bool{}
	for i := range c.Structures {
		s := &c.Structures[i]
		if seenStruct[s.Name] {
			return invalid("structure %q defined twice", s.Name)
		}
		seenStruct[s.Name] = true
		if err := s.validate(); err != nil {
			return err
		}
	}
	return nil
}

func (b *Block) validate() error {
	if len(b.Registers) < 3 {
		return invalid("block %q: must begin with BLK_TYPE, BLK_VERSION and BLK_NEXT", b.Name)
	}
	for i, want := range []string{"BLK_TYPE", "BLK_VERSION", "BLK_NEXT"} {
		r := b.Registers[i]
		if r.Name != want || r.Offset != uint32(4*i) || r.Access != "ro" {
			return invalid("block %q: register %d must be %s, read-only at offset 0x%x (got %s at 0x%x)",
				b.Name, i, want, 4*i, r.Name, r.Offset)
		}
	}
	if b.Registers[0].Reset.Block != "type" || b.Registers[1].Reset.Block != "version" {
		return invalid("block %q: BLK_TYPE and BLK_VERSION must reset to {block: type} and {block: version}", b.Name)
	}
	names := map[string]bool{}
	offsets := map[uint32]string{}
	for i := range b.Registers {
		r := &b.Registers[i]
		where := fmt.Sprintf("block %q register %s", b.Name, r.Name)
		if !upperName.MatchString(r.Name) {
			return invalid("%s: name must be UPPER_SNAKE_CASE", where)
		}
		if names[r.Name] {
			return invalid("%s: defined twice", where)
		}
		names[r.Name] = true
		if r.Offset%4 != 0 {
			return invalid("%s: offset 0x%x is not 32-bit aligned", where, r.Offset)
		}
		if other, ok := offsets[r.Offset]; ok {
			return invalid("%s: offset 0x%x already used by %s", where, r.Offset, other)
		}
		offsets[r.Offset] = r.Name
		switch r.Access {
		case "ro", "rw", "wo":
		default:
			return invalid("%s: access %q is not ro, rw or wo", where, r.Access)
		}
		if err := r.Reset.validate(where); err != nil {
			return err
		}
		if err := validateFields(where, r.Fields, 32); err != nil {
			return err
		}
	}
	return nil
}

func (r Reset) validate(where string) error {
	n := 0
	if r.Value != nil {
		n++
	}
	if r.Param != "" {
		n++
		if !upperName.MatchString(r.Param) {
			return invalid("%s: reset param %q must be an UPPER_SNAKE_CASE parameter name", where, r.Param)
		}
	}
	if r.Block != "" {
		n++
		if r.Block != "type" && r.Block != "version" {
			return invalid("%s: reset block %q is not type or version", where, r.Block)
		}
	}
	if r.Contract != "" {
		n++
		if r.Contract != "id" {
			return invalid("%s: reset contract %q is not id", where, r.Contract)
		}
	}
	if n != 1 {
		return invalid("%s: reset needs exactly one of value, param, block or contract", where)
	}
	return nil
}

func validateFields(where string, fields []Field, bits int) error {
	var used uint64
	names := map[string]bool{}
	for _, f := range fields {
		if !upperName.MatchString(f.Name) {
			return invalid("%s field %s: name must be UPPER_SNAKE_CASE", where, f.Name)
		}
		if names[f.Name] {
			return invalid("%s field %s: defined twice", where, f.Name)
		}
		names[f.Name] = true
		if f.Width < 1 || f.LSB < 0 || f.LSB+f.Width > bits {
			return invalid("%s field %s: bits [%d+:%d] do not fit in %d bits", where, f.Name, f.LSB, f.Width, bits)
		}
		m := f.Mask() << uint(f.LSB)
		if used&m != 0 {
			return invalid("%s field %s: overlaps another field", where, f.Name)
		}
		used |= m
	}
	return nil
}

func (d *Doorbells) validate() error {
	if d.Base == 0 && len(d.Registers) == 0 {
		return nil
	}
	if d.Stride < 4096 || d.Stride&(d.Stride-1) != 0 {
		return invalid("doorbells: stride 0x%x must be a power of two of at least 4 KiB (a page)", d.Stride)
	}
	if d.Base%d.Stride != 0 {
		return invalid("doorbells: base 0x%x must be aligned to the stride 0x%x", d.Base, d.Stride)
	}
	seen := map[uint32]string{}
	for _, r := range d.Registers {
		if !upperName.MatchString(r.Name) {
			return invalid("doorbell %s: name must be UPPER_SNAKE_CASE", r.Name)
		}
		if r.Offset%4 != 0 || r.Offset >= d.Stride {
			return invalid("doorbell %s: offset 0x%x must be 32-bit aligned and inside the page", r.Name, r.Offset)
		}
		if other, ok := seen[r.Offset]; ok {
			return invalid("doorbell %s: offset 0x%x already used by %s", r.Name, r.Offset, other)
		}
		seen[r.Offset] = r.Name
	}
	return nil
}

func (s *Structure) validate() error {
	if !camelName.MatchString(s.Name) {
		return invalid("structure %q: name must be CamelCase", s.Name)
	}
	if s.Size <= 0 || s.Size%4 != 0 {
		return invalid("structure %s: size %d must be a positive multiple of 4", s.Name, s.Size)
	}
	members := append([]Member(nil), s.Members...)
	sort.Slice(members, func(i, j int) bool { return members[i].Offset < members[j].Offset })
	end := 0
	names := map[string]bool{}
	for _, m := range members {
		where := fmt.Sprintf("structure %s field %s", s.Name, m.Name)
		if !upperName.MatchString(m.Name) {
			return invalid("%s: name must be UPPER_SNAKE_CASE", where)
		}
		if names[m.Name] {
			return invalid("%s: defined twice", where)
		}
		names[m.Name] = true
		if m.Bytes < 1 {
			return invalid("%s: bytes must be positive", where)
		}
		if !m.IsArray() {
			switch m.Bytes {
			case 1, 2, 4, 8:
			default:
				return invalid("%s: an integer field has 1, 2, 4 or 8 bytes (set array: true for %d)", where, m.Bytes)
			}
			if m.Offset%m.Bytes != 0 {
				return invalid("%s: offset %d is not aligned to its size %d", where, m.Offset, m.Bytes)
			}
		} else if len(m.Bits) > 0 {
			return invalid("%s: a byte array has no bit fields", where)
		}
		if m.Offset < end {
			return invalid("%s: offset %d overlaps the previous field", where, m.Offset)
		}
		end = m.Offset + m.Bytes
		if end > s.Size {
			return invalid("%s: ends at byte %d, past the structure's size %d", where, end, s.Size)
		}
		if err := validateFields(where, m.Bits, 8*m.Bytes); err != nil {
			return err
		}
	}
	return nil
}

// IsArray reports whether the member is a byte array rather than an integer.
func (m Member) IsArray() bool { return m.Array || m.Bytes > 8 }

// ResetValue returns the register's constant reset value, or ok=false when it depends on a
// build parameter.
func (c *Contract) ResetValue(b Block, r Register) (v uint32, ok bool) {
	switch {
	case r.Reset.Value != nil:
		return *r.Reset.Value, true
	case r.Reset.Block == "type":
		return b.Type, true
	case r.Reset.Block == "version":
		return b.Version.Word(), true
	case r.Reset.Contract == "id":
		return c.ID, true
	}
	return 0, false
}

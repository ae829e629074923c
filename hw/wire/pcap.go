package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"
)

// Classic libpcap file format constants.
const (
	PcapMagic        = 0xa1b2c3d4 // microsecond timestamps, written in the writer's byte order
	PcapMagicNano    = 0xa1b23c4d // nanosecond timestamps (read only)
	PcapSnapLen      = 65535      // snapshot length PcapWriter declares
	PcapLinkEthernet = 1          // LINKTYPE_ETHERNET
	pcapHeaderLen    = 24
	pcapRecordLen    = 16
)

// PcapWriter writes frames to a classic libpcap file, little-endian, with microsecond
// timestamps and Ethernet link type. It is not safe for concurrent use.
type PcapWriter struct {
	w   io.Writer
	hdr [pcapRecordLen]byte
}

// NewPcapWriter writes the pcap global header to w and returns a writer for the records.
func NewPcapWriter(w io.Writer) (*PcapWriter, error) {
	var h [pcapHeaderLen]byte
	le := binary.LittleEndian
	le.PutUint32(h[0:], PcapMagic)
	le.PutUint16(h[4:], 2) // version 2.4
	le.PutUint16(h[6:], 4)
	// h[8:16]: time zone offset and timestamp accuracy, both 0.
	le.PutUint32(h[16:], PcapSnapLen)
	le.PutUint32(h[20:], PcapLinkEthernet)
	if _, err := w.Write(h[:]); err != nil {
		return nil, err
	}
	return &PcapWriter{w: w}, nil
}

// WritePacket writes one frame captured at ts, a simulated time since time zero, so that files
// are the same from run to run. The timestamp is truncated to whole microseconds; a frame longer
// than PcapSnapLen is cut to that length, with its full length recorded. A negative ts is an
// error.
func (p *PcapWriter) WritePacket(ts time.Duration, frame []byte) error {
	if ts < 0 {
		return fmt.Errorf("wire: negative pcap timestamp %v", ts)
	}
	data := frame
	if len(data) > PcapSnapLen {
		data = data[:PcapSnapLen]
	}
	le := binary.LittleEndian
	le.PutUint32(p.hdr[0:], uint32(ts/time.Second))
	le.PutUint32(p.hdr[4:], uint32(ts%time.Second/time.Microsecond))
	le.PutUint32(p.hdr[8:], uint32(len(data)))
	le.PutUint32(p.hdr[12:], uint32(len(frame)))
	if _, err := p.w.Write(p.hdr[:]); err != nil {
		return err
	}
	_, err := p.w.Write(data)
	return err
}

// PcapRecord is one packet read from a pcap file.
type PcapRecord struct {
	Timestamp time.Duration // time since time zero
	OrigLen   int           // length of the packet on the wire
	Data      []byte        // captured bytes, at most OrigLen
}

// maxPcapRecord bounds the captured length ReadPcap accepts, so that a corrupt file cannot make
// it allocate without limit.
const maxPcapRecord = 1 << 18

// ReadPcap reads a whole classic pcap file of Ethernet frames, in either byte order, with
// microsecond or nanosecond timestamps. It is meant for tests and checks little beyond what it
// needs to read the records.
func ReadPcap(r io.Reader) ([]PcapRecord, error) {
	var h [pcapHeaderLen]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return nil, fmt.Errorf("wire: pcap header: %w", err)
	}
	var order binary.ByteOrder
	unit := time.Microsecond
	for _, o := range []binary.ByteOrder{binary.LittleEndian, binary.BigEndian} {
		switch o.Uint32(h[0:]) {
		case PcapMagic:
			order = o
		case PcapMagicNano:
			order, unit = o, time.Nanosecond
		}
		if order != nil {
			break
		}
	}
	if order == nil {
		return nil, fmt.Errorf("wire: not a pcap file (magic %x)", h[0:4])
	}
	if lt := order.Uint32(h[20:]); lt != PcapLinkEthernet {
		return nil, fmt.Errorf("wire: pcap link type %d, not Ethernet", lt)
	}
	var recs []PcapRecord
	for {
		var rh [pcapRecordLen]byte
		if _, err := io.ReadFull(r, rh[:]); err != nil {
			if errors.Is(err, io.EOF) {
				return recs, nil
			}
			return recs, fmt.Errorf("wire: pcap record %d header: %w", len(recs), err)
		}
		incl := order.Uint32(rh[8:])
		if incl > maxPcapRecord {
			return recs, fmt.Errorf("wire: pcap record %d: captured length %d", len(recs), incl)
		}
		data := make([]byte, incl)
		if _, err := io.ReadFull(r, data); err != nil {
			return recs, fmt.Errorf("wire: pcap record %d data: %w", len(recs), err)
		}
		recs = append(recs, PcapRecord{
			Timestamp: time.Duration(order.Uint32(rh[0:]))*time.Second + time.Duration(order.Uint32(rh[4:]))*unit,
			OrigLen:   int(order.Uint32(rh[12:])),
			Data:      data,
		})
	}
}

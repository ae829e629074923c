package ctrl

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"

	"github.com/sanoffload/san/hw/wire"
)

// CaptureReport is the verdict on one pcap file.
type CaptureReport struct {
	File   string `json:"file"`
	Frames int    `json:"frames"`
	RoCE   int    `json:"roce"`
	// Acknowledgements as tshark decodes their AETH: ACKs, NAKs (PSN sequence error), RNR NAKs
	// and other NAKs.
	ACKs      int `json:"acks"`
	SeqNAKs   int `json:"seq_naks"`
	RNRNAKs   int `json:"rnr_naks"`
	OtherNAKs int `json:"other_naks"`
	// CM MADs as tshark decodes them, by message (ConnectRequest, ...), and the connections
	// whose data frames used exactly the QPNs and first PSNs their REQ and REP announced.
	CM          map[string]int `json:"cm,omitempty"`
	Connections int            `json:"connections,omitempty"`
	// ARP frames as tshark decodes them: requests, replies, and the replies that answer an
	// earlier request (from its target, to its sender, with the sender's MAC).
	ARPRequests int      `json:"arp_requests,omitempty"`
	ARPReplies  int      `json:"arp_replies,omitempty"`
	ARPAnswered int      `json:"arp_answered,omitempty"`
	Errors      []string `json:"errors,omitempty"`
}

// cmNames are the CM attributes tshark names, by attribute ID.
var cmNames = map[uint64]string{0x10: "ConnectRequest", 0x11: "MsgRcptAck", 0x12: "ConnectReject",
	0x13: "ConnectReply", 0x14: "ReadyToUse", 0x15: "DisconnectRequest", 0x16: "DisconnectReply"}

// Expect checks that the capture holds what kinds names: seq-nak, rnr-nak (acknowledgements),
// cm (every CM message of a connection's life: request, reply, ready to use, reject,
// disconnect request and reply, and at least one connection whose data matched its CM), or
// arp (an ARP request and a reply that answers it).
func (rep CaptureReport) Expect(kinds []string) error {
	for _, k := range kinds {
		switch k {
		case "seq-nak":
			if rep.SeqNAKs == 0 {
				return fmt.Errorf("%w: %s: no PSN sequence NAK", ErrCapture, rep.File)
			}
		case "rnr-nak":
			if rep.RNRNAKs == 0 {
				return fmt.Errorf("%w: %s: no RNR NAK", ErrCapture, rep.File)
			}
		case "cm":
			for _, m := range []string{"ConnectRequest", "ConnectReply", "ReadyToUse", "ConnectReject",
				"DisconnectRequest", "DisconnectReply"} {
				if rep.CM[m] == 0 {
					return fmt.Errorf("%w: %s: no CM %s", ErrCapture, rep.File, m)
				}
			}
			if rep.Connections == 0 {
				return fmt.Errorf("%w: %s: no connection's data matched its REQ/REP", ErrCapture, rep.File)
			}
		case "arp":
			if rep.ARPAnswered == 0 {
				return fmt.Errorf("%w: %s: no ARP request answered by a reply (%d requests, %d replies)",
					ErrCapture, rep.File, rep.ARPRequests, rep.ARPReplies)
			}
		default:
			return fmt.Errorf("expect %q: the kinds are seq-nak, rnr-nak, cm and arp", k)
		}
	}
	return nil
}

// ErrCapture means a capture holds frames that are not clean RoCEv2 or ARP.
var ErrCapture = errors.New("capture check failed")

// expertProblem matches what tshark's expert summary lists for a malformed or suspicious frame.
var expertProblem = regexp.MustCompile(`(?i)\b(error|warn|malformed)`)

// CheckCapture checks a pcap file with tshark, a decoder nobody here wrote: every frame must
// decode as RoCEv2 (InfiniBand over UDP 4791) or as ARP, tshark's expert analysis must find
// nothing, every ICRC must be right (checked here, because Wireshark does not verify it) and
// sit where tshark finds it, and every ARP frame must be one for Ethernet and IPv4 whose fields
// tshark reads as wire.DecodeARP does.
func CheckCapture(path string) (CaptureReport, error) {
	rep := CaptureReport{File: path}
	f, err := os.Open(path)
	if err != nil {
		return rep, err
	}
	recs, err := wire.ReadPcap(f)
	f.Close()
	if err != nil {
		return rep, fmt.Errorf("%s: %w", path, err)
	}
	rep.Frames = len(recs)
	if _, err := exec.LookPath("tshark"); err != nil {
		return rep, fmt.Errorf("tshark not on PATH (make deps installs it): %w", err)
	}
	// Our SEND payloads are opaque application bytes. Wireshark's heuristics would otherwise
	// guess at protocols inside them (RPC-over-RDMA, SMB Direct, ...) and call a 1-byte message a
	// malformed RPC, so the protocols that claim InfiniBand payloads by heuristic are turned off
	// (all but the Ethernet layer, which the frame itself needs).
	off, err := payloadGuessers()
	if err != nil {
		return rep, err
	}
	out, err := tshark(append(off, "-r", path, "-T", "fields", "-E", "separator=/t", "-E", "occurrence=f",
		"-e", "frame.number", "-e", "frame.protocols", "-e", "infiniband.bth.opcode", "-e", "infiniband.invariant.crc",
		"-e", "infiniband.aeth.syndrome.opcode", "-e", "infiniband.aeth.syndrome.error_code",
		"-e", "arp.opcode", "-e", "arp.src.hw_mac", "-e", "arp.src.proto_ipv4", "-e", "arp.dst.hw_mac",
		"-e", "arp.dst.proto_ipv4")...)
	if err != nil {
		return rep, err
	}
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(recs) == 0 {
		lines = nil
	}
	if len(lines) != len(recs) {
		return rep, fmt.Errorf("%w: %s: tshark decoded %d frames of %d", ErrCapture, path, len(lines), len(recs))
	}
	var asked []*wire.ARP // requests seen, for the replies that answer them
	for i, line := range lines {
		cols := strings.Split(line, "\t")
		fail := func(format string, args ...any) {
			rep.Errors = append(rep.Errors, fmt.Sprintf("frame %d: ", i+1)+fmt.Sprintf(format, args...))
		}
		if len(cols) != 11 {
			fail("tshark gave %d fields", len(cols))
			continue
		}
		if strings.HasSuffix(cols[1], ":arp") {
			a, err := checkARP(recs[i].Data, cols[6:11])
			if err != nil {
				fail("%v", err)
				continue
			}
			if a.Op == wire.ARPOpRequest {
				rep.ARPRequests++
				asked = append(asked, a)
				continue
			}
			rep.ARPReplies++
			for _, q := range asked {
				if q.TargetIP == a.SenderIP && q.SenderIP == a.TargetIP && q.SenderMAC == a.TargetMAC &&
					a.DstMAC == q.SenderMAC {
					rep.ARPAnswered++
					break
				}
			}
			continue
		}
		if !strings.Contains(cols[1], ":ip:udp:infiniband") {
			fail("not decoded as RoCEv2: %s", cols[1])
			continue
		}
		frame := recs[i].Data
		if !wire.CheckICRC(frame) {
			fail("wrong ICRC")
			continue
		}
		crc, err := strconv.ParseUint(cols[3], 0, 32)
		trailer := binary.BigEndian.Uint32(frame[len(frame)-4:])
		if err != nil || uint32(crc) != trailer {
			fail("tshark's ICRC field %q is not the frame's last 4 bytes 0x%08x", cols[3], trailer)
			continue
		}
		rep.RoCE++
		if cols[2] == "17" { // ACKNOWLEDGE: what kind, by tshark's decode of the AETH
			switch {
			case cols[4] == "0":
				rep.ACKs++
			case cols[4] == "1":
				rep.RNRNAKs++
			case cols[4] == "3" && cols[5] == "0":
				rep.SeqNAKs++
			case cols[4] == "3":
				rep.OtherNAKs++
			default:
				fail("AETH syndrome type %q", cols[4])
			}
		}
	}
	if err := checkCM(&rep, off, path); err != nil {
		return rep, err
	}
	expert, err := tshark(append(off, "-r", path, "-q", "-z", "expert")...)
	if err != nil {
		return rep, err
	}
	for _, l := range strings.Split(expert, "\n") {
		if expertProblem.MatchString(l) {
			rep.Errors = append(rep.Errors, "tshark expert: "+strings.TrimSpace(l))
		}
	}
	if len(rep.Errors) > 0 {
		return rep, fmt.Errorf("%w: %s: %d problems, the first: %s", ErrCapture, path, len(rep.Errors), rep.Errors[0])
	}
	return rep, nil
}

// checkARP decodes an ARP frame itself and compares what tshark read (opcode, sender MAC and
// IP, target MAC and IP) with it.
func checkARP(frame []byte, cols []string) (*wire.ARP, error) {
	a, err := wire.DecodeARP(frame)
	if err != nil {
		return nil, fmt.Errorf("ARP frame the NIC would not take: %w", err)
	}
	want := []string{strconv.Itoa(int(a.Op)), net.HardwareAddr(a.SenderMAC[:]).String(),
		netip.AddrFrom4(a.SenderIP).String(), net.HardwareAddr(a.TargetMAC[:]).String(), netip.AddrFrom4(a.TargetIP).String()}
	for k, w := range want {
		if cols[k] != w {
			return nil, fmt.Errorf("tshark reads ARP field %d as %q, the frame says %q", k, cols[k], w)
		}
	}
	return a, nil
}

func tshark(args ...string) (string, error) {
	cmd := exec.Command("tshark", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("tshark %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return string(out), nil
}

// payloadGuessers returns tshark flags that disable the protocols with a heuristic on
// InfiniBand payloads.
func payloadGuessers() ([]string, error) {
	heur, err := tshark("-G", "heuristic-decodes")
	if err != nil {
		return nil, err
	}
	protos, err := tshark("-G", "protocols")
	if err != nil {
		return nil, err
	}
	known := map[string]bool{}
	for _, l := range strings.Split(protos, "\n") {
		if f := strings.Split(l, "\t"); len(f) >= 3 {
			known[f[2]] = true
		}
	}
	var off []string
	for _, l := range strings.Split(heur, "\n") {
		f := strings.Fields(l)
		if len(f) >= 2 && f[0] == "infiniband.payload" && known[f[1]] && f[1] != "ethertype" && f[1] != "eth" {
			off = append(off, "--disable-protocol", f[1])
		}
	}
	return off, nil
}

// checkCM decodes the capture's CM MADs with tshark: each REQ must carry the IP CM service ID
// (prefix 0000000001, protocol TCP), and the RC data frames between two addresses must use the
// QPN the receiving side announced (REQ or REP LocalQPN) and begin at the PSN the sending side
// announced (StartingPSN).
func checkCM(rep *CaptureReport, off []string, path string) error {
	out, err := tshark(append(off, "-r", path, "-T", "fields", "-E", "separator=/t", "-E", "occurrence=f",
		"-e", "frame.number", "-e", "ip.src", "-e", "ip.dst", "-e", "infiniband.bth.opcode", "-e", "infiniband.bth.destqp",
		"-e", "infiniband.bth.psn", "-e", "infiniband.mad.attributeid",
		"-e", "infiniband.cm.req.serviceid.prefix", "-e", "infiniband.cm.req.serviceid.protocol",
		"-e", "infiniband.cm.req.localqpn", "-e", "infiniband.cm.req.startpsn",
		"-e", "infiniband.cm.rep.localqpn", "-e", "infiniband.cm.rep.startpsn")...)
	if err != nil {
		return err
	}
	type side struct{ qpn, psn uint64 }
	announced := map[string]side{}  // by IP: what its last REQ/REP announced
	firstPSN := map[string]bool{}   // flows (src>dst) whose first data frame was checked
	matched := map[[2]string]bool{} // address pairs with a flow that matched its CM
	num := func(s string) (uint64, bool) {
		v, err := strconv.ParseUint(s, 0, 64)
		return v, err == nil
	}
	for _, line := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		cols := strings.Split(line, "\t")
		if len(cols) != 13 {
			continue
		}
		fail := func(format string, args ...any) {
			rep.Errors = append(rep.Errors, "frame "+cols[0]+": "+fmt.Sprintf(format, args...))
		}
		src, dst := cols[1], cols[2]
		if src == "" {
			continue // not IPv4: ARP
		}
		op, _ := num(cols[3])
		if attr, ok := num(cols[6]); ok && op == 0x64 {
			name, known := cmNames[attr]
			if !known {
				fail("CM attribute 0x%x", attr)
				continue
			}
			if rep.CM == nil {
				rep.CM = map[string]int{}
			}
			rep.CM[name]++
			switch attr {
			case 0x10:
				if strings.TrimPrefix(cols[7], "0x") != "0000000001" {
					fail("REQ service ID prefix %q is not the IP CM one", cols[7])
				}
				if cols[8] != "0x06" {
					fail("REQ service ID protocol %q is not TCP", cols[8])
				}
				q, ok1 := num(cols[9])
				p, ok2 := num(cols[10])
				if !ok1 || !ok2 {
					fail("REQ without LocalQPN/StartingPSN")
				}
				announced[src] = side{q, p}
			case 0x13:
				q, ok1 := num(cols[11])
				p, ok2 := num(cols[12])
				if !ok1 || !ok2 {
					fail("REP without LocalQPN/StartingPSN")
				}
				announced[src] = side{q, p}
			}
			continue
		}
		if op > 5 { // RC SEND opcodes 0..5 carry data; ACKs and the rest are not checked here
			continue
		}
		qp, _ := num(cols[4])
		psn, _ := num(cols[5])
		to, okTo := announced[dst]
		from, okFrom := announced[src]
		if !okTo || !okFrom {
			continue // a connection loaded without the CM
		}
		if qp != to.qpn {
			fail("data to QP %d, but %s announced QP %d", qp, dst, to.qpn)
			continue
		}
		flow := src + ">" + dst
		if !firstPSN[flow] {
			firstPSN[flow] = true
			if psn != from.psn {
				fail("first data PSN %d, but %s announced %d", psn, src, from.psn)
				continue
			}
			pair := [2]string{min(src, dst), max(src, dst)}
			matched[pair] = true
		}
	}
	rep.Connections = len(matched)
	return nil
}

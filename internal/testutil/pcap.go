package testutil

import (
	"encoding/binary"
	"net"
	"os"
	"slices"
	"testing"
	"time"
)

// KnockUntilCaptured connects to addr again and again until the pcap file
// (Ethernet link type, IPv4, written by tshark or dumpcap as it captures)
// holds a packet from one of those connections. Packets are written in
// order, so once it returns every packet sent before the call is in the
// file: tests call it instead of sleeping before they read a capture.
func KnockUntilCaptured(t *testing.T, addr, pcap string) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	var ports []uint16
	for {
		if nc, err := net.Dial("tcp", addr); err == nil {
			ports = append(ports, uint16(nc.LocalAddr().(*net.TCPAddr).Port))
			nc.Close()
		}
		time.Sleep(100 * time.Millisecond)
		if raw, err := os.ReadFile(pcap); err == nil && pcapHasSourcePort(raw, ports) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("tshark captured none of the knocks")
		}
	}
}

// pcapHasSourcePort reports whether a TCP packet of the pcap file raw
// comes from one of ports.
func pcapHasSourcePort(raw []byte, ports []uint16) bool {
	const global, record, ether = 24, 16, 14
	for off := global; off+record <= len(raw); {
		n := int(binary.LittleEndian.Uint32(raw[off+8:]))
		pkt := raw[off+record : min(off+record+n, len(raw))]
		off += record + n
		if len(pkt) < ether+20 || pkt[12] != 0x08 || pkt[13] != 0x00 || pkt[ether+9] != 6 {
			continue // not IPv4 TCP
		}
		ip := pkt[ether:]
		ihl := int(ip[0]&0x0f) * 4
		if len(ip) < ihl+2 {
			continue
		}
		if slices.Contains(ports, binary.BigEndian.Uint16(ip[ihl:])) {
			return true
		}
	}
	return false
}

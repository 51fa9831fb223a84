package ndmp

import (
	"fmt"
	"net/netip"
)

// NewTCPAddrs returns the Addr of the given TCP end points: an AddrTCP
// address when all are IPv4, an AddrTCPIPv6 address (the NetApp connection
// address extension) when all are IPv6. Mixing the families is an error.
func NewTCPAddrs(eps ...netip.AddrPort) (Addr, error) {
	if len(eps) == 0 {
		return Addr{}, fmt.Errorf("ndmp: no TCP end points")
	}
	v4 := eps[0].Addr().Unmap().Is4()
	var a Addr
	if v4 {
		a.AddrType = AddrTCP
	} else {
		a.AddrType = AddrTCPIPv6
	}
	for _, ep := range eps {
		ip := ep.Addr().Unmap()
		if ip.Is4() != v4 {
			return Addr{}, fmt.Errorf("ndmp: end points %v mix IPv4 and IPv6", eps)
		}
		if v4 {
			b := ip.As4()
			a.TCPAddr = append(a.TCPAddr, TCPAddr{
				IPAddr: uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]),
				Port:   ep.Port(),
			})
		} else {
			a.TCPIPv6Addr = append(a.TCPIPv6Addr, TCPIPv6Addr{IPv6Addr: ip.As16(), Port: ep.Port()})
		}
	}
	return a, nil
}

// AddrPort returns the end point of a.
func (a *TCPAddr) AddrPort() netip.AddrPort {
	v := a.IPAddr
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), a.Port)
}

// AddrPort returns the end point of a.
func (a *TCPIPv6Addr) AddrPort() netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom16(a.IPv6Addr), a.Port)
}

// AddrPorts returns the TCP end points of a (IPv4 or IPv6); it returns nil
// for other address types.
func (a *Addr) AddrPorts() []netip.AddrPort {
	var out []netip.AddrPort
	switch a.AddrType {
	case AddrTCP:
		for i := range a.TCPAddr {
			out = append(out, a.TCPAddr[i].AddrPort())
		}
	case AddrTCPIPv6:
		for i := range a.TCPIPv6Addr {
			out = append(out, a.TCPIPv6Addr[i].AddrPort())
		}
	}
	return out
}

// Env converts a list of name/value pairs to a map; when a name repeats,
// the last value wins.
func Env(pv []Pval) map[string]string {
	m := make(map[string]string, len(pv))
	for _, p := range pv {
		m[p.Name] = p.Value
	}
	return m
}

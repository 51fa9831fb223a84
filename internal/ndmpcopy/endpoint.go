package ndmpcopy

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/tapestry-ndmp/tapestry/ndmp"
)

// An Endpoint is one side of a copy: the NDMP server to talk to and the path
// on it, with the credentials given in the endpoint itself, if any.
type Endpoint struct {
	// User and Password come from a "user:password@" prefix; HasCreds
	// reports whether the prefix was there.
	User, Password string
	HasCreds       bool
	// Host is a host name or an IP address (an IPv6 address without its
	// brackets; it may carry a zone).
	Host string
	// Port is the NDMP port, ndmp.DefaultPort unless given.
	Port uint16
	// Path is the absolute path /svm/volume[/path], cleaned of a trailing
	// slash.
	Path string
}

// ParseEndpoint parses [user:password@]host[:port]:/svm/volume[/path].
// host is a host name, an IPv4 address or an IPv6 address in square
// brackets, for example 192.0.2.1:10001:/vs1/vol1 or
// [2001:db8::1]:/vs1/vol1/dir.
func ParseEndpoint(s string) (Endpoint, error) {
	if s == "" {
		return Endpoint{}, errors.New("empty endpoint: want host:/svm/volume[/path]")
	}
	ep, err := parseHostPath(s)
	if err == nil {
		return ep, nil
	}
	// A user:password@ prefix: try each '@' from the left, so that a
	// password may hold '@' and so may the path.
	for i := 0; i < len(s); i++ {
		if s[i] != '@' {
			continue
		}
		rest, perr := parseHostPath(s[i+1:])
		if perr != nil {
			continue
		}
		user, pw, hasPw := strings.Cut(s[:i], ":")
		if user == "" {
			return Endpoint{}, fmt.Errorf("endpoint %q: empty user name before '@'", redact(s))
		}
		rest.User, rest.HasCreds = user, true
		if hasPw {
			rest.Password = pw
		}
		return rest, nil
	}
	if at := strings.LastIndexByte(s, '@'); at >= 0 {
		// Report the error of the part after the credentials, which
		// does not hold the password.
		_, err = parseHostPath(s[at+1:])
	}
	return Endpoint{}, fmt.Errorf("endpoint %q: %w", redact(s), err)
}

// redact hides the password of an endpoint for error messages.
func redact(s string) string {
	at := strings.LastIndex(s, "@")
	colon := strings.Index(s, ":")
	if at < 0 || colon < 0 || colon > at {
		return s
	}
	return s[:colon] + ":***" + s[at:]
}

// parseHostPath parses host[:port]:/path without credentials.
func parseHostPath(s string) (Endpoint, error) {
	var ep Endpoint
	var rest string
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return ep, errors.New("missing ']' after the IPv6 address")
		}
		a, err := netip.ParseAddr(s[1:end])
		if err != nil || !a.Is6() || a.Is4In6() {
			return ep, fmt.Errorf("%q in brackets is not an IPv6 address", s[1:end])
		}
		ep.Host = s[1:end]
		rest = s[end+1:]
		if !strings.HasPrefix(rest, ":") {
			return ep, errors.New("want ':' and a path after the IPv6 address")
		}
		rest = rest[1:]
	} else {
		i := strings.Index(s, ":/")
		if i < 0 {
			return ep, errors.New("want host[:port]:/svm/volume[/path]")
		}
		hostPort := s[:i]
		if strings.Count(hostPort, ":") > 1 {
			return ep, fmt.Errorf("%q looks like an IPv6 address: enclose it in square brackets, as in [2001:db8::1]:/svm/volume", hostPort)
		}
		host, _, _ := strings.Cut(hostPort, ":")
		if host == "" {
			return ep, errors.New("missing host before ':'")
		}
		if a, err := netip.ParseAddr(host); err == nil {
			if a.Is6() {
				return ep, fmt.Errorf("IPv6 address %s must be enclosed in square brackets", host)
			}
		} else if !validHostName(host) {
			return ep, fmt.Errorf("%q is not a valid host name or IP address", host)
		}
		ep.Host = host
		rest = s[len(host)+1:]
	}
	ep.Port = ndmp.DefaultPort
	if !strings.HasPrefix(rest, "/") {
		portStr, path, ok := strings.Cut(rest, ":")
		if !ok {
			return ep, errors.New("want host[:port]:/svm/volume[/path]")
		}
		p, err := strconv.ParseUint(portStr, 10, 16)
		if err != nil || p == 0 || strings.HasPrefix(portStr, "+") {
			return ep, fmt.Errorf("port %q is not a number from 1 to 65535", portStr)
		}
		ep.Port = uint16(p)
		rest = path
	}
	path, err := checkPath(rest)
	if err != nil {
		return ep, err
	}
	ep.Path = path
	return ep, nil
}

// validHostName reports whether h is a DNS host name (letters, digits,
// hyphens and underscores in dot-separated labels).
func validHostName(h string) bool {
	if len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(strings.TrimSuffix(h, "."), ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range []byte(label) {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// checkPath checks an endpoint path: absolute, /svm/volume at least, no "."
// or ".." component and no NUL byte.
func checkPath(p string) (string, error) {
	if !strings.HasPrefix(p, "/") {
		return "", fmt.Errorf("path %q is not absolute: want /svm/volume[/path]", p)
	}
	if strings.IndexByte(p, 0) >= 0 {
		return "", errors.New("path holds a NUL byte")
	}
	clean := strings.TrimRight(p, "/")
	if clean == "" {
		return "", fmt.Errorf("path %q names no volume: want /svm/volume[/path]", p)
	}
	parts := strings.Split(strings.TrimPrefix(clean, "/"), "/")
	for _, c := range parts {
		switch c {
		case "":
			return "", fmt.Errorf("path %q has an empty component", p)
		case ".", "..":
			return "", fmt.Errorf("path %q has a %q component", p, c)
		}
	}
	if len(parts) < 2 {
		return "", fmt.Errorf("path %q names no volume: want /svm/volume[/path]", p)
	}
	return clean, nil
}

// Address returns host:port for dialing (an IPv6 host in brackets).
func (e Endpoint) Address() string {
	return net.JoinHostPort(e.Host, strconv.Itoa(int(e.Port)))
}

// String returns the endpoint as written on the command line, without
// credentials and with the port only when it is not the default.
func (e Endpoint) String() string {
	h := e.Host
	if strings.Contains(h, ":") {
		h = "[" + h + "]"
	}
	if e.Port != ndmp.DefaultPort {
		h += ":" + strconv.Itoa(int(e.Port))
	}
	return h + ":" + e.Path
}

// Family is an address family for a connection: -mcs, -mcd and -md take
// "inet" or "inet6".
type Family int

// Values of Family.
const (
	FamilyAny   Family = iota // not chosen: decided by the addressing rules
	FamilyInet                // IPv4 ("inet")
	FamilyInet6               // IPv6 ("inet6")
)

// ParseFamily parses "inet" or "inet6".
func ParseFamily(s string) (Family, error) {
	switch s {
	case "inet":
		return FamilyInet, nil
	case "inet6":
		return FamilyInet6, nil
	}
	return FamilyAny, fmt.Errorf("address mode %q: want inet or inet6", s)
}

// String returns "inet", "inet6" or "any".
func (f Family) String() string {
	switch f {
	case FamilyInet:
		return "inet"
	case FamilyInet6:
		return "inet6"
	}
	return "any"
}

// network returns the Go network name for dialing TCP in family f.
func (f Family) network() string {
	switch f {
	case FamilyInet:
		return "tcp4"
	case FamilyInet6:
		return "tcp6"
	}
	return "tcp"
}

// familyOf returns the family of an address.
func familyOf(a netip.Addr) Family {
	if a.Unmap().Is4() {
		return FamilyInet
	}
	return FamilyInet6
}

// DataFamilies returns the address families to try, in order, for the data
// connection, following ONTAP's rules: the -md choice if given; IPv6 if
// either control connection uses IPv6; otherwise IPv6 first, then IPv4.
func DataFamilies(md Family, srcCtl, dstCtl netip.Addr) []Family {
	if md != FamilyAny {
		return []Family{md}
	}
	if familyOf(srcCtl) == FamilyInet6 || familyOf(dstCtl) == FamilyInet6 {
		return []Family{FamilyInet6}
	}
	return []Family{FamilyInet6, FamilyInet}
}

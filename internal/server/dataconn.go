package server

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/tapestry-ndmp/tapestry/internal/storage"
	"github.com/tapestry-ndmp/tapestry/ndmp"
)

// DialTimeout bounds the set-up of an outgoing data connection.
const DialTimeout = 30 * time.Second

// addrTypeName is the name ONTAP's messages use for an address type.
func addrTypeName(t ndmp.AddrType) string {
	if t == ndmp.AddrTCPIPv6 {
		return "NDMP4_ADDR_TCP_IPv6"
	}
	return "NDMP4_ADDR_TCP"
}

// checkFamily enforces N11: in node scope a data connection uses the
// address family of the control connection.
func (ss *session) checkFamily(t ndmp.AddrType) ndmp.Error {
	if !ss.nodeScope || (t != ndmp.AddrTCP && t != ndmp.AddrTCPIPv6) {
		return ndmp.NoErr
	}
	ctl6 := ss.local.Addr().Unmap().Is6()
	if ctl6 == (t == ndmp.AddrTCPIPv6) {
		return ndmp.NoErr
	}
	fam := "IPv4"
	if ctl6 {
		fam = "IPv6"
	}
	msg := fmt.Sprintf("Data connection type [%q] not supported for [%q] control connections", addrTypeName(t), fam)
	ss.log.Error(msg)
	ss.logMessage(ndmp.LogError, msg)
	return ndmp.ErrIllegalArgs
}

// portRange returns the data port range in force (0, 0 for any port).
func (ss *session) portRange() (int, int) {
	r := ss.svmSet.DataPortRange
	if ss.nodeScope {
		r = ss.nodeSet.DataPortRange
	}
	lo, hi, err := ParsePortRange(r)
	if err != nil {
		return 0, 0
	}
	return lo, hi
}

// dataIP picks the address a data connection listener uses: a LIF of this
// node in the wanted family whose role is allowed by
// -preferred-interface-role, in the order of that list (N7). The control
// connection's own address is preferred among LIFs of the same role.
func (ss *session) dataIP(ctx context.Context, v6 bool) (netip.Addr, error) {
	ctl := ss.local.Addr().Unmap()
	famOK := func(a netip.Addr) bool { return a.Unmap().Is6() == v6 }
	var roles []storage.LIFRole
	if !ss.nodeScope {
		roles = ss.svmSet.PreferredInterfaceRole
	}
	var lifs []storage.LIF
	for _, svm := range []string{ss.lif.SVM, ""} {
		name := svm
		if name == "" {
			admin, err := ss.srv.o.Storage.AdminSVM(ctx)
			if err != nil || admin == ss.lif.SVM {
				continue
			}
			name = admin
		}
		l, err := ss.srv.o.Storage.ListLIFs(ctx, name)
		if err != nil {
			return netip.Addr{}, err
		}
		for _, x := range l {
			if x.HomeNode == "" || x.HomeNode == ss.srv.o.Node {
				lifs = append(lifs, x)
			}
		}
	}
	if len(roles) == 0 {
		if famOK(ctl) {
			return ctl, nil
		}
		for _, l := range lifs {
			if famOK(l.Address) {
				return l.Address.Unmap(), nil
			}
		}
		return netip.Addr{}, errors.New("no LIF of the address family")
	}
	for _, r := range roles {
		if ss.lif.Role == r && famOK(ctl) {
			return ctl, nil
		}
		for _, l := range lifs {
			if l.Role == r && famOK(l.Address) {
				return l.Address.Unmap(), nil
			}
		}
	}
	return netip.Addr{}, fmt.Errorf("no LIF of role %v has an address of the family", roles)
}

// listenData opens a listener for a TCP data connection of type t.
func (ss *session) listenData(ctx context.Context, t ndmp.AddrType) (net.Listener, ndmp.Addr, ndmp.Error) {
	if e := ss.checkFamily(t); e != ndmp.NoErr {
		return nil, ndmp.Addr{}, e
	}
	ip, err := ss.dataIP(ctx, t == ndmp.AddrTCPIPv6)
	if err != nil {
		msg := "data connection refused: " + err.Error()
		ss.log.Warn(msg)
		ss.logMessage(ndmp.LogError, msg)
		return nil, ndmp.Addr{}, ndmp.ErrConnect
	}
	lo, hi := ss.portRange()
	var ln net.Listener
	if lo == 0 {
		ln, err = net.Listen("tcp", netip.AddrPortFrom(ip, 0).String())
	} else {
		n := hi - lo + 1
		start := rand.IntN(n)
		for i := 0; i < n; i++ {
			p := lo + (start+i)%n
			ln, err = net.Listen("tcp", netip.AddrPortFrom(ip, uint16(p)).String())
			if err == nil {
				break
			}
		}
	}
	if err != nil {
		ss.log.Warn("data connection listen failed", "err", err)
		return nil, ndmp.Addr{}, ndmp.ErrConnect
	}
	ap, err := netip.ParseAddrPort(ln.Addr().String())
	if err != nil {
		_ = ln.Close()
		return nil, ndmp.Addr{}, ndmp.ErrUndefined
	}
	a, err := ndmp.NewTCPAddrs(netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()))
	if err != nil {
		_ = ln.Close()
		return nil, ndmp.Addr{}, ndmp.ErrUndefined
	}
	return ln, a, ndmp.NoErr
}

// dialData connects to one of the end points of a TCP or TCP/IPv6 address.
func (ss *session) dialData(ctx context.Context, a ndmp.Addr) (net.Conn, ndmp.Error) {
	if e := ss.checkFamily(a.AddrType); e != ndmp.NoErr {
		return nil, e
	}
	eps := a.AddrPorts()
	if len(eps) == 0 {
		return nil, ndmp.ErrIllegalArgs
	}
	if e := ss.checkDialTarget(ctx, eps); e != ndmp.NoErr {
		return nil, e
	}
	ctx, cancel := context.WithTimeout(ctx, DialTimeout)
	defer cancel()
	var d net.Dialer
	var errs []error
	for _, ep := range eps {
		c, err := d.DialContext(ctx, "tcp", ep.String())
		if err == nil {
			return c, ndmp.NoErr
		}
		errs = append(errs, err)
	}
	ss.log.Warn("data connection failed", "err", errors.Join(errs...))
	ss.logMessage(ndmp.LogError, "Network communication error")
	return nil, ndmp.ErrConnect
}

// openData opens the data connection a DATA_CONNECT or MOVER_CONNECT
// names: for LOCAL the other service's end, taken from its acceptLocal
// (it must be listening LOCAL in this session), otherwise a TCP connection
// dialled to one of a's end points.
func (ss *session) openData(ctx context.Context, a ndmp.Addr, acceptLocal func() (net.Conn, ndmp.Error)) (net.Conn, ndmp.Error) {
	if a.AddrType == ndmp.AddrLocal {
		return acceptLocal()
	}
	return ss.dialData(ctx, a)
}

// validConnType checks the address type of a LISTEN or CONNECT.
func (ss *session) validConnType(t ndmp.AddrType) ndmp.Error {
	if !slices.Contains([]ndmp.AddrType{ndmp.AddrLocal, ndmp.AddrTCP, ndmp.AddrTCPIPv6}, t) {
		return ndmp.ErrIllegalArgs
	}
	if !ss.connTypeAllowed(t) {
		return ndmp.ErrIllegalArgs
	}
	return ndmp.NoErr
}

package server

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"time"

	"github.com/tapestry-ndmp/tapestry/ndmp"
)

// Admission of connections (issue 10). A connection is unauthenticated
// from accept until CONNECT_CLIENT_AUTH succeeds, and only then takes one
// of the MaxSessions session slots (N12): connections that never
// authenticate cannot keep DMAs out. Unauthenticated connections have
// caps of their own (NodeSettings.UnauthenticatedLimits) and a deadline
// to authenticate (NodeSettings.AuthDeadline).

// refuseDrainWait and refuseDrainBytes bound what a refused connection may
// still send while the server waits for its peer to take the refusal:
// those bytes are discarded, never decoded.
const (
	refuseDrainWait  = time.Second
	refuseDrainBytes = 64 << 10
)

// refuse sends NOTIFY_CONNECTION_STATUS REFUSED on nc and closes it
// without decoding a single request: anything the peer sent, even in the
// same packet as its connection, is discarded. Before closing, it waits
// (refuseDrainWait at most) for the peer to close: closing a socket with
// unread bytes resets the connection, and a DMA could lose the notice.
func (s *Server) refuse(nc net.Conn, reason string) {
	s.refused.Add(1)
	defer nc.Close()
	b, err := ndmp.MarshalMessage(nil, &ndmp.Message{
		Header: ndmp.Header{Sequence: 1, TimeStamp: uint32(time.Now().Unix()), MessageType: ndmp.MessageRequest, MessageCode: ndmp.NotifyConnectionStatus},
		Body:   &ndmp.NotifyConnectionStatusPost{Reason: ndmp.Refused, ProtocolVersion: ndmp.ProtocolVersion, TextReason: reason},
	})
	if err != nil {
		return
	}
	_ = nc.SetDeadline(time.Now().Add(refuseDrainWait))
	if err := ndmp.NewRecordWriter(nc, 0).WriteRecord(b); err != nil {
		return
	}
	_, _ = io.CopyN(io.Discard, nc, refuseDrainBytes)
}

// sessionLimitMessage is the refusal of a connection or authentication
// beyond the session limit.
func (s *Server) sessionLimitMessage() string {
	return fmt.Sprintf("Maximum number of NDMP sessions (%d) reached", s.o.MaxSessions)
}

// clientAddr is the key of a session's client address in the caps.
func (ss *session) clientAddr() netip.Addr { return ss.remote.Addr().Unmap() }

// admitConn registers ss, an unauthenticated connection (an authenticated
// one when the server assumes authentication), or returns why it is
// refused. When the node-wide cap of unauthenticated connections is
// reached it returns the oldest of them, which the caller closes to make
// room.
func (s *Server) admitConn(ss *session) (refusal string, evict *session) {
	total, perAddr := ss.nodeSet.UnauthenticatedLimits()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.authedCount >= s.o.MaxSessions {
		return s.sessionLimitMessage(), nil
	}
	if ss.authed {
		s.authedCount++
		ss.counted = true
		s.sessions[ss.id] = ss
		return "", nil
	}
	a := ss.clientAddr()
	if s.unauthByAddr[a] >= perAddr {
		return fmt.Sprintf("Maximum number of unauthenticated NDMP connections from %s (%d) reached", a, perAddr), nil
	}
	if s.unauthCount >= total {
		evict = s.oldestUnauthLocked()
	}
	s.unauthCount++
	s.unauthByAddr[a]++
	s.sessions[ss.id] = ss
	return "", evict
}

// oldestUnauthLocked returns the oldest unauthenticated session not yet
// chosen for eviction, and marks it. Call with s.mu held.
func (s *Server) oldestUnauthLocked() *session {
	var old *session
	for _, o := range s.sessions {
		if !o.counted && !o.evicted && (old == nil || o.id < old.id) {
			old = o
		}
	}
	if old != nil {
		old.evicted = true
	}
	return old
}

// promote moves an authenticated ss from the unauthenticated connections
// to the session slots; false when the session limit is reached.
func (s *Server) promote(ss *session) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ss.counted {
		return true
	}
	if s.authedCount >= s.o.MaxSessions {
		return false
	}
	s.releaseUnauthLocked(ss)
	s.authedCount++
	ss.counted = true
	return true
}

// releaseUnauthLocked drops ss from the unauthenticated counts. Call with
// s.mu held.
func (s *Server) releaseUnauthLocked(ss *session) {
	a := ss.clientAddr()
	s.unauthCount--
	if s.unauthByAddr[a]--; s.unauthByAddr[a] <= 0 {
		delete(s.unauthByAddr, a)
	}
}

// unregister drops an ended session and the slot or count it held.
func (s *Server) unregister(ss *session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.sessions[ss.id]; !ok {
		return
	}
	delete(s.sessions, ss.id)
	if ss.counted {
		s.authedCount--
	} else {
		s.releaseUnauthLocked(ss)
	}
}

// authDeadline closes ss unless it authenticates within d.
func (ss *session) authDeadline(d time.Duration) (stop func() bool) {
	t := time.AfterFunc(d, func() {
		ss.mu.Lock()
		authed := ss.authed
		ss.mu.Unlock()
		if authed {
			return
		}
		ss.srv.authTimeouts.Add(1)
		ss.log.Warn("NDMP connection closed: not authenticated in time", "timeout", d.String())
		ss.kill(fmt.Sprintf("not authenticated within %v", d))
	})
	return t.Stop
}

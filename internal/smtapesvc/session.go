// Package smtapesvc runs the SMTape sessions of `system smtape` (S10): tape
// seeding from the command line. A session backs a volume up to, or
// restores it from, one of the node's tape drives with the SMTape engine;
// when a tape is full (or, on restore, ends) the session waits for the
// administrator to load the next one and `continue` it. Sessions are
// listed by `status show` until `status clear` removes the finished ones.
package smtapesvc

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/tapestry-ndmp/tapestry/internal/engine/volimage"
	"github.com/tapestry-ndmp/tapestry/internal/storage"
	"github.com/tapestry-ndmp/tapestry/internal/tape"
)

// Status is a session's state, as `system smtape status show` prints it.
type Status string

// The session states.
const (
	Active    Status = "ACTIVE"
	Waiting   Status = "WAITING"
	Aborting  Status = "ABORTING"
	Completed Status = "COMPLETED"
	Failed    Status = "FAILED"
	Unknown   Status = "UNKNOWN"
)

// Session is one SMTape session, as `status show -instance` lists it.
type Session struct {
	ID             int
	Node           string
	Type           string // backup or restore
	Status         Status
	Path           string // /vserver/volume
	Device         string // the tape device in use
	Progress       int64  // bytes moved
	StartTime      time.Time
	EndTime        time.Time
	UpdateTime     time.Time
	BackupSnapshot string
	TapeBlockSize  int // KB
	Tape           int // the tape of the image being written or read, from 1
	Error          string
}

// Finished reports whether the session ended.
func (s Session) Finished() bool {
	return s.Status == Completed || s.Status == Failed || s.Status == Unknown
}

// Config holds what the sessions of a node use.
type Config struct {
	Node    string
	Engine  *volimage.Engine
	Tapes   *tape.Registry
	Storage *storage.Service
	// StateDir keeps the restore state of restored volumes.
	StateDir string
}

// Manager runs a node's SMTape sessions. Its methods are safe for
// concurrent use.
type Manager struct {
	cfg Config

	mu       sync.Mutex
	next     int
	sessions map[int]*session
	changed  chan struct{} // closed and replaced whenever a session changes
}

// New returns the session manager of a node.
func New(cfg Config) *Manager {
	return &Manager{cfg: cfg, next: 1, sessions: map[int]*session{}, changed: make(chan struct{})}
}

// session is a running or finished session.
type session struct {
	m      *Manager
	info   Session
	cancel context.CancelFunc
	cont   chan string // the device named by continue ("" for the same)
	done   chan struct{}
}

// reserveID returns the id of a session about to start.
func (m *Manager) reserveID() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	id := m.next
	m.next++
	return id
}

// start registers session id and runs work in the background.
func (m *Manager) start(id int, typ, path, device, snap string, blockKB int, work func(context.Context, *session) error) *Session {
	ctx, cancel := context.WithCancel(context.Background())
	now := time.Now()
	m.mu.Lock()
	s := &session{m: m, cancel: cancel, cont: make(chan string, 1), done: make(chan struct{}),
		info: Session{ID: id, Node: m.cfg.Node, Type: typ, Status: Active, Path: path, Device: device,
			StartTime: now, UpdateTime: now, BackupSnapshot: snap, TapeBlockSize: blockKB, Tape: 1}}
	m.sessions[id] = s
	info := s.info
	m.mu.Unlock()
	go func() {
		defer close(s.done)
		defer cancel()
		err := work(ctx, s)
		s.finish(err)
	}()
	return &info
}

// notify wakes WaitFor; call with m.mu held.
func (m *Manager) notify() {
	close(m.changed)
	m.changed = make(chan struct{})
}

// finish records how the session ended.
func (s *session) finish(err error) {
	s.m.mu.Lock()
	defer s.m.mu.Unlock()
	defer s.m.notify()
	now := time.Now()
	s.info.EndTime, s.info.UpdateTime = now, now
	switch {
	case err == nil:
		s.info.Status = Completed
	case s.info.Status == Aborting || errors.Is(err, context.Canceled):
		s.info.Status, s.info.Error = Failed, "Operation aborted by user"
	default:
		s.info.Status, s.info.Error = Failed, s.m.cfg.Engine.Failure(err).Message
	}
}

// update changes a running session's record.
func (s *session) update(f func(*Session)) {
	s.m.mu.Lock()
	defer s.m.mu.Unlock()
	f(&s.info)
	s.info.UpdateTime = time.Now()
	s.m.notify()
}

// waitContinue waits for `continue` and returns the device to go on with.
func (s *session) waitContinue(ctx context.Context) (string, error) {
	s.update(func(i *Session) { i.Status = Waiting })
	select {
	case dev := <-s.cont:
		return dev, nil
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// lookup returns a session by id.
func (m *Manager) lookup(id int) (*session, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.sessions[id]
	if !ok {
		return nil, fmt.Errorf("SMTape session %d does not exist", id)
	}
	return s, nil
}

// Continue goes on with a session waiting for a tape, on device (or the
// same device, with the next tape loaded, when device is empty).
func (m *Manager) Continue(id int, device string) error {
	s, err := m.lookup(id)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if s.info.Status != Waiting {
		return fmt.Errorf("SMTape session %d is not waiting for a tape", id)
	}
	if device != "" {
		s.info.Device = device
	}
	s.info.Status, s.info.UpdateTime = Active, time.Now()
	s.info.Tape++
	s.cont <- s.info.Device // room for one: the status said none is pending
	m.notify()
	return nil
}

// Abort stops a running session.
func (m *Manager) Abort(id int) error {
	s, err := m.lookup(id)
	if err != nil {
		return err
	}
	m.mu.Lock()
	if s.info.Finished() {
		m.mu.Unlock()
		return fmt.Errorf("SMTape session %d has already ended", id)
	}
	s.info.Status = Aborting
	m.mu.Unlock()
	s.cancel()
	return nil
}

// Wait waits for a session to end and returns its record.
func (m *Manager) Wait(ctx context.Context, id int) (Session, error) {
	s, err := m.lookup(id)
	if err != nil {
		return Session{}, err
	}
	select {
	case <-s.done:
	case <-ctx.Done():
		return Session{}, ctx.Err()
	}
	return m.Get(id)
}

// WaitFor waits until session id satisfies cond and returns its record.
func (m *Manager) WaitFor(ctx context.Context, id int, cond func(Session) bool) (Session, error) {
	s, err := m.lookup(id)
	if err != nil {
		return Session{}, err
	}
	for {
		m.mu.Lock()
		info, ch := s.info, m.changed
		m.mu.Unlock()
		if cond(info) {
			return info, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return info, ctx.Err()
		}
	}
}

// Get returns a session's record.
func (m *Manager) Get(id int) (Session, error) {
	s, err := m.lookup(id)
	if err != nil {
		return Session{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return s.info, nil
}

// Sessions lists the sessions by id.
func (m *Manager) Sessions() []Session {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Session, 0, len(m.sessions))
	for _, s := range m.sessions {
		out = append(out, s.info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Clear removes the finished sessions that match (status clear) and
// returns how many.
func (m *Manager) Clear(match func(Session) bool) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for id, s := range m.sessions {
		if s.info.Finished() && (match == nil || match(s.info)) {
			delete(m.sessions, id)
			n++
		}
	}
	return n
}

// Holds reports whether a running session holds the tape registry session
// name (for the registry's liveness check).
func (m *Manager) Holds(name string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, s := range m.sessions {
		if tapeSession(s.info.ID) == name && !s.info.Finished() {
			return true
		}
	}
	return false
}

// tapeSession is the name a session opens drives under.
func tapeSession(id int) string { return fmt.Sprintf("smtape-%d", id) }

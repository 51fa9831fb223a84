package ndmp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// ErrClosed is returned by operations on a Conn that has been closed.
var ErrClosed = errors.New("ndmp: connection closed")

// ErrReplyLater is what a Handler returns for a request to tell the Conn
// not to reply: the handler has arranged to send the reply itself with
// Conn.Reply, for example from another goroutine.
var ErrReplyLater = errors.New("ndmp: reply sent later")

// A Handler serves the requests and posts that arrive on a Conn. A server's
// handler answers requests; a DMA's handler receives notifications, log
// messages and file history.
//
// ServeNDMP is called for one message at a time, in arrival order, on a
// goroutine of the Conn that is not the one reading the connection, so a
// handler may itself call Conn.Call, Conn.Post and Conn.Close. While it runs,
// further incoming requests and posts wait (up to Config.QueueLength of
// them; then the Conn stops reading), but replies to calls are still
// delivered. Once the queue is full a reply cannot overtake the queued
// messages, so a handler that calls Conn.Call while its peer floods it with
// posts can wait until the queue drains; in NDMP only the DMA receives posts
// and it rarely needs to call from a post handler.
//
// For a request that expects a reply, ServeNDMP returns the reply body or an
// error. An Error value (possibly wrapped) is sent as the header error code
// of a reply without body; any other error, or a nil body, is sent as
// NDMP_UNDEFINED_ERR. ErrReplyLater sends nothing. For posts and
// NDMP_CONNECT_CLOSE the return values are ignored. ctx is canceled when the
// Conn closes.
type Handler interface {
	ServeNDMP(ctx context.Context, c *Conn, m *Message) (Body, error)
}

// HandlerFunc adapts a function to the Handler interface.
type HandlerFunc func(ctx context.Context, c *Conn, m *Message) (Body, error)

// ServeNDMP calls f(ctx, c, m).
func (f HandlerFunc) ServeNDMP(ctx context.Context, c *Conn, m *Message) (Body, error) {
	return f(ctx, c, m)
}

// Config holds the options of a Conn. The zero value is usable.
type Config struct {
	// Handler serves incoming requests and posts. If nil, requests are
	// answered with NDMP_NOT_SUPPORTED_ERR and posts are dropped.
	Handler Handler
	// MaxRecordSize bounds incoming records (DefaultMaxRecordSize if 0).
	MaxRecordSize int
	// FragmentSize is the fragment size of outgoing records
	// (DefaultFragmentSize if 0).
	FragmentSize int
	// QueueLength is how many incoming requests and posts may wait for the
	// handler before the Conn stops reading (256 if 0).
	QueueLength int
	// MaxMalformed is how many malformed records in a row the Conn
	// tolerates before it closes the connection (8 if 0). A request that
	// cannot be decoded is answered with NDMP_XDR_DECODE_ERR; a request
	// with an unknown message code is answered with NDMP_NOT_SUPPORTED_ERR
	// and is not counted as malformed.
	MaxMalformed int
	// ErrorLog, if not nil, is told about malformed incoming records and
	// handler failures.
	ErrorLog func(err error)
	// Greeting, if not nil, is a post that NewConn sends before the Conn
	// reads anything, so that it is the first message on the connection
	// whatever the peer does: a server's NOTIFY_CONNECTION_STATUS. If it
	// cannot be sent, the Conn is closed with that error.
	Greeting Body

	// observe, if not nil, sees every incoming post on the goroutine that
	// reads the connection, before the post is queued for the Handler and
	// before any later reply is delivered. It must not block. The Client
	// uses it for its typed notifications.
	observe func(m *Message)
}

// A Conn is an NDMP message connection. It numbers outgoing messages, sends
// requests and matches their replies by reply sequence (any number of
// calls may be in flight), sends posts, and passes incoming requests and
// posts to its Handler. All methods are safe for concurrent use.
type Conn struct {
	nc      net.Conn
	cfg     Config
	rr      *RecordReader
	wmu     sync.Mutex
	rw      *RecordWriter
	wbuf    []byte
	seq     atomic.Uint32
	queue   chan *Message
	ctx     context.Context
	cancel  context.CancelFunc
	done    chan struct{}
	reader  sync.WaitGroup
	dispWG  sync.WaitGroup
	mu      sync.Mutex
	pending map[uint32]*call
	err     error // why the Conn closed; set once before done is closed
	serving atomic.Bool

	// queued counts the messages read for the Handler; handled those it
	// has served. waiters wait for handled to reach a mark (waitHandled).
	queued  atomic.Uint64
	hmu     sync.Mutex
	handled uint64
	waiters []handledWaiter
}

// handledWaiter is a waitHandled call: ch is closed once the Handler has
// served mark messages.
type handledWaiter struct {
	mark uint64
	ch   chan struct{}
}

type call struct {
	code MessageCode
	ch   chan callResult
}

type callResult struct {
	m   *Message
	err error
}

// NewConn starts a Conn on nc. The Conn owns nc from now on; Close closes
// it. cfg may be nil.
func NewConn(nc net.Conn, cfg *Config) *Conn {
	c := &Conn{nc: nc, done: make(chan struct{}), pending: map[uint32]*call{}}
	if cfg != nil {
		c.cfg = *cfg
	}
	if c.cfg.QueueLength <= 0 {
		c.cfg.QueueLength = 256
	}
	if c.cfg.MaxMalformed <= 0 {
		c.cfg.MaxMalformed = 8
	}
	c.rr = NewRecordReader(nc, c.cfg.MaxRecordSize)
	c.rw = NewRecordWriter(nc, c.cfg.FragmentSize)
	c.queue = make(chan *Message, c.cfg.QueueLength)
	c.ctx, c.cancel = context.WithCancel(context.Background())
	if g := c.cfg.Greeting; g != nil {
		var err error
		if !g.MessageCode().IsPost() {
			err = fmt.Errorf("ndmp: greeting %v is not a post", g.MessageCode())
		} else {
			_, err = c.send(Header{MessageType: MessageRequest, MessageCode: g.MessageCode()}, g)
		}
		if err != nil {
			c.shutdown(fmt.Errorf("ndmp: send greeting: %w", err))
		}
	}
	c.reader.Add(1)
	c.dispWG.Add(1)
	go c.readLoop()
	go c.dispatch()
	return c
}

// NetConn returns the underlying network connection.
func (c *Conn) NetConn() net.Conn { return c.nc }

// Done returns a channel that is closed when the Conn has closed, by Close,
// by the peer or by an error.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Err returns why the Conn closed: ErrClosed after Close, io.EOF when the
// peer closed the connection, or the read or write error. It returns nil
// while the Conn is open.
func (c *Conn) Err() error {
	select {
	case <-c.done:
		return c.err
	default:
		return nil
	}
}

// Close closes the connection. Calls in flight fail with ErrClosed, the
// handler's context is canceled, and Close waits until the Conn's goroutines
// have ended, except that when a handler is running (for example the one
// calling Close) Close does not wait for it to return; the last goroutine
// then ends as soon as it does.
func (c *Conn) Close() error {
	c.shutdown(ErrClosed)
	c.reader.Wait()
	if !c.serving.Load() {
		c.dispWG.Wait()
	}
	return nil
}

// shutdown closes the Conn with reason err (first reason wins).
func (c *Conn) shutdown(err error) {
	c.mu.Lock()
	select {
	case <-c.done:
		c.mu.Unlock()
		return
	default:
	}
	c.err = err
	close(c.done)
	pending := c.pending
	c.pending = map[uint32]*call{}
	c.mu.Unlock()
	c.cancel()
	_ = c.nc.Close()
	for _, p := range pending {
		p.ch <- callResult{err: err}
	}
}

func (c *Conn) logf(format string, args ...any) {
	if c.cfg.ErrorLog != nil {
		c.cfg.ErrorLog(fmt.Errorf(format, args...))
	}
}

// send encodes and writes one message with the next sequence number,
// filling in sequence and time stamp, and returns the sequence used.
func (c *Conn) send(h Header, body Body) (uint32, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	select {
	case <-c.done:
		return 0, c.err
	default:
	}
	h.Sequence = c.seq.Add(1)
	h.TimeStamp = uint32(time.Now().Unix())
	b, err := MarshalMessage(c.wbuf[:0], &Message{Header: h, Body: body})
	if err != nil {
		return 0, err
	}
	c.wbuf = b
	if cap(c.wbuf) > 1<<20 {
		c.wbuf = nil
	}
	if err := c.rw.WriteRecord(b); err != nil {
		c.shutdown(err)
		return 0, err
	}
	return h.Sequence, nil
}

// Call sends the request req and waits for its reply. It returns the reply
// body, or an error: the header error code of the reply as an Error value
// (the reply then has no body), a *DecodeError for a reply that cannot be
// decoded, ctx.Err() when ctx ends first, or the reason the Conn closed.
//
// Errors reported in the reply body's own error field are not turned into
// Go errors here; see Client for that. ctx bounds the wait for the reply; a
// request that is still being written (a large TAPE_WRITE to a peer that
// does not read) finishes writing first, unless the Conn is closed. For NDMP_CONNECT_CLOSE, which has no
// reply, Call returns (nil, nil) once the request is sent.
func (c *Conn) Call(ctx context.Context, req Body) (Body, error) {
	code := req.MessageCode()
	info, ok := lookupMessage(code)
	if !ok {
		return nil, fmt.Errorf("ndmp: call %v: unknown message", code)
	}
	if info.Post {
		return nil, fmt.Errorf("ndmp: call %v: a post has no reply; use Post", code)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	h := Header{MessageType: MessageRequest, MessageCode: code}
	if info.newReply == nil {
		_, err := c.send(h, req)
		return nil, err
	}
	cl := &call{code: code, ch: make(chan callResult, 1)}
	// Register before sending so a fast reply finds its caller. The
	// sequence number is taken under wmu in send, so reserve it there.
	seq, err := c.sendCall(h, req, cl)
	if err != nil {
		return nil, fmt.Errorf("ndmp: call %v: %w", code, err)
	}
	select {
	case r := <-cl.ch:
		if r.err != nil {
			return nil, r.err
		}
		if e := r.m.Header.ErrorCode; e != NoErr {
			return nil, fmt.Errorf("ndmp: %v: %w", code, e)
		}
		return r.m.Body, nil
	case <-ctx.Done():
		c.mu.Lock()
		delete(c.pending, seq)
		c.mu.Unlock()
		return nil, ctx.Err()
	}
}

func (c *Conn) sendCall(h Header, req Body, cl *call) (uint32, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.mu.Lock()
	select {
	case <-c.done:
		c.mu.Unlock()
		return 0, c.err
	default:
	}
	h.Sequence = c.seq.Add(1)
	c.pending[h.Sequence] = cl
	c.mu.Unlock()
	h.TimeStamp = uint32(time.Now().Unix())
	b, err := MarshalMessage(c.wbuf[:0], &Message{Header: h, Body: req})
	if err == nil {
		c.wbuf = b
		if cap(c.wbuf) > 1<<20 {
			c.wbuf = nil
		}
		if err = c.rw.WriteRecord(b); err != nil {
			c.mu.Lock()
			delete(c.pending, h.Sequence)
			c.mu.Unlock()
			c.shutdown(err)
			return 0, err
		}
		return h.Sequence, nil
	}
	c.mu.Lock()
	delete(c.pending, h.Sequence)
	c.mu.Unlock()
	return 0, err
}

// Post sends the post body (a NOTIFY_*, LOG_* or FH_* message), which gets
// no reply.
func (c *Conn) Post(ctx context.Context, body Body) error {
	code := body.MessageCode()
	if !code.IsPost() {
		return fmt.Errorf("ndmp: post %v: not a post message", code)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if _, err := c.send(Header{MessageType: MessageRequest, MessageCode: code}, body); err != nil {
		return fmt.Errorf("ndmp: post %v: %w", code, err)
	}
	return nil
}

// Reply sends a reply to the request with sequence number reqSeq and code
// msg: the header error code and, when code is NoErr, body. A Handler need
// not call Reply, since the Conn sends what ServeNDMP returns; Reply is for
// requests whose handler returned ErrReplyLater.
func (c *Conn) Reply(reqSeq uint32, msg MessageCode, code Error, body Body) error {
	h := Header{MessageType: MessageReply, MessageCode: msg, ReplySequence: reqSeq, ErrorCode: code}
	if code != NoErr {
		body = nil
	}
	if _, err := c.send(h, body); err != nil {
		return fmt.Errorf("ndmp: reply to %v #%d: %w", msg, reqSeq, err)
	}
	return nil
}

func (c *Conn) readLoop() {
	defer c.reader.Done()
	defer close(c.queue)
	malformed := 0
	for {
		rec, err := c.rr.ReadRecord()
		if err != nil {
			c.shutdown(err)
			return
		}
		m, err := UnmarshalMessage(rec)
		if err != nil {
			if c.malformed(err) {
				malformed++
			}
			if malformed >= c.cfg.MaxMalformed {
				c.shutdown(fmt.Errorf("ndmp: %d malformed messages in a row, last: %w", malformed, err))
				return
			}
			continue
		}
		malformed = 0
		if m.Header.IsReply() {
			c.deliver(m.Header.ReplySequence, callResult{m: m})
			continue
		}
		if c.cfg.observe != nil && m.Header.MessageCode.IsPost() {
			c.cfg.observe(m)
		}
		c.queued.Add(1)
		select {
		case c.queue <- m:
		case <-c.done:
			return
		}
	}
}

// malformed handles a record that failed to decode. It reports whether
// the record counts as malformed: a well-formed request for a message this
// package does not know is answered with NDMP_NOT_SUPPORTED_ERR and does not
// count.
func (c *Conn) malformed(err error) bool {
	c.logf("ndmp: malformed message from %v: %w", c.nc.RemoteAddr(), err)
	var de *DecodeError
	if !errors.As(err, &de) || !de.HeaderOK {
		return true // discard: nothing to answer (draft section 2.6)
	}
	h := de.Header
	if h.IsReply() {
		// Tell the waiting caller that its reply was unreadable.
		c.deliver(h.ReplySequence, callResult{err: err})
		return true
	}
	if info, ok := lookupMessage(h.MessageCode); ok && (info.Post || info.newReply == nil) {
		return true
	}
	if rerr := c.Reply(h.Sequence, h.MessageCode, de.Code, nil); rerr != nil {
		c.logf("ndmp: %w", rerr)
	}
	return !(de.Code == ErrNotSupported && !h.MessageCode.Known())
}

func (c *Conn) deliver(seq uint32, r callResult) {
	c.mu.Lock()
	cl, ok := c.pending[seq]
	if ok {
		delete(c.pending, seq)
	}
	c.mu.Unlock()
	if !ok {
		return // no such call, or it was canceled: drop
	}
	if r.m != nil && r.m.Header.MessageCode != cl.code {
		r = callResult{err: &DecodeError{Header: r.m.Header, HeaderOK: true, Code: ErrXDRDecode,
			Err: fmt.Errorf("reply is %v, request was %v", r.m.Header.MessageCode, cl.code)}}
	}
	cl.ch <- r
}

func (c *Conn) dispatch() {
	defer c.dispWG.Done()
	for m := range c.queue {
		select {
		case <-c.done:
			return
		default:
		}
		c.serve(m)
		c.served()
	}
}

// served counts one message as handled and releases the waitHandled calls
// it satisfies.
func (c *Conn) served() {
	c.hmu.Lock()
	defer c.hmu.Unlock()
	c.handled++
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if c.handled >= w.mark {
			close(w.ch)
		} else {
			kept = append(kept, w)
		}
	}
	c.waiters = kept
}

// waitHandled waits until the Handler has served every request and post
// read so far: it returns nil then, the reason the Conn closed if it closes
// first, or ctx.Err(). It must not be called from the Handler, which would
// wait for itself.
func (c *Conn) waitHandled(ctx context.Context) error {
	mark := c.queued.Load()
	c.hmu.Lock()
	if c.handled >= mark {
		c.hmu.Unlock()
		return nil
	}
	w := handledWaiter{mark: mark, ch: make(chan struct{})}
	c.waiters = append(c.waiters, w)
	c.hmu.Unlock()
	select {
	case <-w.ch:
		return nil
	case <-c.done:
		return c.err
	case <-ctx.Done():
		c.hmu.Lock()
		for i := range c.waiters {
			if c.waiters[i].ch == w.ch {
				c.waiters = append(c.waiters[:i], c.waiters[i+1:]...)
				break
			}
		}
		c.hmu.Unlock()
		return ctx.Err()
	}
}

func (c *Conn) serve(m *Message) {
	code := m.Header.MessageCode
	wantsReply := code.HasReply()
	if c.cfg.Handler == nil {
		if wantsReply {
			_ = c.Reply(m.Header.Sequence, code, ErrNotSupported, nil)
		}
		return
	}
	c.serving.Store(true)
	body, err := c.safeServe(m)
	c.serving.Store(false)
	if !wantsReply || errors.Is(err, ErrReplyLater) {
		return
	}
	var ecode Error
	switch {
	case err != nil && errors.As(err, &ecode) && ecode != NoErr:
	case err != nil:
		c.logf("ndmp: handler for %v: %w", code, err)
		ecode = ErrUndefined
	case body == nil || body.MessageCode() != code:
		c.logf("ndmp: handler for %v returned no reply body", code)
		ecode = ErrUndefined
	default:
		ecode = NoErr
	}
	if rerr := c.Reply(m.Header.Sequence, code, ecode, body); rerr != nil {
		c.logf("%w", rerr)
		if c.Err() == nil {
			// The body could not be encoded; the caller still gets an answer.
			_ = c.Reply(m.Header.Sequence, code, ErrXDREncode, nil)
		}
	}
}

// safeServe runs the handler and turns a panic into an error, so one bad
// request cannot take the process down.
func (c *Conn) safeServe(m *Message) (body Body, err error) {
	defer func() {
		if r := recover(); r != nil {
			body, err = nil, fmt.Errorf("ndmp: handler panic serving %v: %v", m.Header.MessageCode, r)
		}
	}()
	return c.cfg.Handler.ServeNDMP(c.ctx, c, m)
}

package ndmp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/tapestry-ndmp/tapestry/internal/testutil"
)

// hangGuard is how long a test waits for something that must happen
// before it calls it a hang.
const hangGuard = testutil.HangGuard

// waitGoroutines fails the test unless the number of goroutines drops back
// to at most base (within hangGuard).
func waitGoroutines(t *testing.T, base int) {
	t.Helper()
	deadline := time.Now().Add(hangGuard)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			n := runtime.Stack(buf, true)
			t.Fatalf("goroutine leak: %d running, %d before\n%s", runtime.NumGoroutine(), base, buf[:n])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// listen returns a loopback listener and a function that accepts one
// connection.
func listen(t *testing.T) (net.Listener, func() net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln, func() net.Conn {
		nc, err := ln.Accept()
		if err != nil {
			t.Error(err)
			return nil
		}
		return nc
	}
}

// rawPeer speaks NDMP with RecordReader/RecordWriter only, so tests can
// control order and content byte by byte.
type rawPeer struct {
	nc  net.Conn
	rr  *RecordReader
	rw  *RecordWriter
	seq uint32
}

func newRawPeer(nc net.Conn) *rawPeer {
	return &rawPeer{nc: nc, rr: NewRecordReader(nc, 0), rw: NewRecordWriter(nc, 13)}
}

func (p *rawPeer) read() (*Message, error) {
	rec, err := p.rr.ReadRecord()
	if err != nil {
		return nil, err
	}
	return UnmarshalMessage(rec)
}

func (p *rawPeer) send(h Header, body Body) error {
	p.seq++
	h.Sequence = p.seq
	b, err := MarshalMessage(nil, &Message{Header: h, Body: body})
	if err != nil {
		return err
	}
	return p.rw.WriteRecord(b)
}

// TestConnPipelinedOutOfOrder sends many requests at once; the raw server
// reads them all, then answers in reverse order with posts in between.
// Every caller must get its own reply and the handler every post, in order.
func TestConnPipelinedOutOfOrder(t *testing.T) {
	base := runtime.NumGoroutine()
	ln, accept := listen(t)
	const n = 20
	serverDone := make(chan error, 1)
	go func() {
		nc := accept()
		if nc == nil {
			serverDone <- errors.New("accept failed")
			return
		}
		defer nc.Close()
		p := newRawPeer(nc)
		var reqs []*Message
		for range n {
			m, err := p.read()
			if err != nil {
				serverDone <- err
				return
			}
			reqs = append(reqs, m)
		}
		for i := len(reqs) - 1; i >= 0; i-- {
			m := reqs[i]
			if err := p.send(Header{MessageCode: LogMessage}, &LogMessagePost{MessageID: uint32(n - 1 - i), Entry: "before reply"}); err != nil {
				serverDone <- err
				return
			}
			echo := m.Body.(*TestEchoRequest).EchoMsg
			if err := p.send(Header{MessageType: MessageReply, MessageCode: TestEcho, ReplySequence: m.Header.Sequence}, &TestEchoReply{EchoMsg: "re: " + echo}); err != nil {
				serverDone <- err
				return
			}
		}
		// Wait for the client to close.
		_, err := p.read()
		if err == io.EOF {
			err = nil
		}
		serverDone <- err
	}()

	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var posts []uint32
	c := NewConn(nc, &Config{FragmentSize: 11, Handler: HandlerFunc(func(ctx context.Context, _ *Conn, m *Message) (Body, error) {
		mu.Lock()
		defer mu.Unlock()
		posts = append(posts, m.Body.(*LogMessagePost).MessageID)
		return nil, nil
	})})
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			msg := fmt.Sprintf("call %d", i)
			rep, err := c.Call(ctx, &TestEchoRequest{EchoMsg: msg})
			if err != nil {
				errs <- err
				return
			}
			if got := rep.(*TestEchoReply).EchoMsg; got != "re: "+msg {
				errs <- fmt.Errorf("call %d got reply %q", i, got)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// Posts are handled asynchronously; wait for all of them.
	deadline := time.Now().Add(hangGuard)
	for {
		mu.Lock()
		got := len(posts)
		mu.Unlock()
		if got == n || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	mu.Lock()
	for i, id := range posts {
		if id != uint32(i) {
			t.Fatalf("posts out of order: %v", posts)
		}
	}
	if len(posts) != n {
		t.Fatalf("%d posts, want %d", len(posts), n)
	}
	mu.Unlock()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-serverDone; err != nil {
		t.Fatal(err)
	}
	if !errors.Is(c.Err(), ErrClosed) {
		t.Fatalf("Err after Close = %v", c.Err())
	}
	waitGoroutines(t, base)
}

// serveConn accepts one connection and serves it with a Conn and handler h.
func serveConn(t *testing.T, h Handler) (addr string, server chan *Conn) {
	ln, accept := listen(t)
	server = make(chan *Conn, 1)
	go func() {
		nc := accept()
		if nc == nil {
			close(server)
			return
		}
		server <- NewConn(nc, &Config{Handler: h})
	}()
	return ln.Addr().String(), server
}

// TestConnHandlerReplies checks how the Conn turns handler results into
// replies: a body, an Error code, another error, a panic, no body.
func TestConnHandlerReplies(t *testing.T) {
	base := runtime.NumGoroutine()
	addr, server := serveConn(t, HandlerFunc(func(ctx context.Context, c *Conn, m *Message) (Body, error) {
		switch b := m.Body.(type) {
		case *TestEchoRequest:
			switch b.EchoMsg {
			case "panic":
				panic("boom")
			case "nil":
				return nil, nil
			case "plain error":
				return nil, errors.New("plain")
			case "later":
				seq := m.Header.Sequence
				go func() {
					time.Sleep(20 * time.Millisecond)
					_ = c.Reply(seq, TestEcho, NoErr, &TestEchoReply{EchoMsg: "later"})
				}()
				return nil, ErrReplyLater
			case "post first":
				if err := c.Post(ctx, &NotifyDataHaltedPost{Reason: DataHaltSuccessful}); err != nil {
					return nil, err
				}
			}
			return &TestEchoReply{EchoMsg: b.EchoMsg}, nil
		case *TapeOpenRequest:
			return nil, fmt.Errorf("open %s: %w", b.Device, ErrNoDevice)
		case *TapeCloseRequest:
			return &TapeCloseReply{Error: ErrDevNotOpen}, nil
		}
		return nil, ErrNotSupported
	}))
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	halted := make(chan DataHaltReason, 1)
	c := NewConn(nc, &Config{Handler: HandlerFunc(func(ctx context.Context, _ *Conn, m *Message) (Body, error) {
		halted <- m.Body.(*NotifyDataHaltedPost).Reason
		return nil, nil
	})})
	ctx := context.Background()

	rep, err := c.Call(ctx, &TestEchoRequest{EchoMsg: "post first"})
	if err != nil || rep.(*TestEchoReply).EchoMsg != "post first" {
		t.Fatalf("echo: %v %v", rep, err)
	}
	if r := <-halted; r != DataHaltSuccessful {
		t.Fatalf("post reason %v", r)
	}
	if rep, err := c.Call(ctx, &TestEchoRequest{EchoMsg: "later"}); err != nil || rep.(*TestEchoReply).EchoMsg != "later" {
		t.Fatalf("deferred reply: %v %v", rep, err)
	}
	for msg, want := range map[string]Error{"panic": ErrUndefined, "nil": ErrUndefined, "plain error": ErrUndefined} {
		if _, err := c.Call(ctx, &TestEchoRequest{EchoMsg: msg}); !errors.Is(err, want) {
			t.Errorf("%s: err = %v, want %v", msg, err, want)
		}
	}
	if _, err := c.Call(ctx, &TapeOpenRequest{Device: "x"}); !errors.Is(err, ErrNoDevice) {
		t.Errorf("TAPE_OPEN: %v", err)
	}
	// Body errors are not Go errors at the Conn level.
	rep, err = c.Call(ctx, &TapeCloseRequest{})
	if err != nil || rep.(*TapeCloseReply).Error != ErrDevNotOpen {
		t.Errorf("TAPE_CLOSE: %v %v", rep, err)
	}
	if _, err := c.Call(ctx, &MoverStopRequest{}); !errors.Is(err, ErrNotSupported) {
		t.Errorf("MOVER_STOP: %v", err)
	}
	if _, err := c.Call(ctx, &NotifyDataHaltedPost{}); err == nil {
		t.Error("Call with a post succeeded")
	}
	if err := c.Post(ctx, &TapeOpenRequest{}); err == nil {
		t.Error("Post with a request succeeded")
	}
	c.Close()
	s := <-server
	<-s.Done()
	if !errors.Is(s.Err(), io.EOF) {
		t.Errorf("server Err after client close = %v", s.Err())
	}
	s.Close()
	waitGoroutines(t, base)
}

// TestConnMalformedRequests sends broken records to a serving Conn, which
// must answer what it can and survive.
func TestConnMalformedRequests(t *testing.T) {
	base := runtime.NumGoroutine()
	addr, server := serveConn(t, HandlerFunc(func(ctx context.Context, c *Conn, m *Message) (Body, error) {
		return &TestEchoReply{EchoMsg: m.Body.(*TestEchoRequest).EchoMsg}, nil
	}))
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	p := newRawPeer(nc)
	// Unknown message code: NOT_SUPPORTED in the reply header.
	if err := p.rw.WriteRecord([]byte{0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x12, 0x34, 0, 0, 0, 0, 0, 0, 0, 0}); err != nil {
		t.Fatal(err)
	}
	m, err := p.read()
	if err != nil || m.Header.ErrorCode != ErrNotSupported || m.Header.ReplySequence != 1 || !m.Header.IsReply() {
		t.Fatalf("reply to unknown code: %v %v", m, err)
	}
	// Many unknown codes in a row are not malformed: each gets its answer.
	for i := range 20 {
		p.seq = uint32(100 + i)
		if err := p.rw.WriteRecord([]byte{0, 0, 0, byte(100 + i), 0, 0, 0, 0, 0, 0, 0, 0, 0x20, 0x50, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0}); err != nil {
			t.Fatal(err)
		}
		m, err := p.read()
		if err != nil || m.Header.ErrorCode != ErrNotSupported || m.Header.ReplySequence != uint32(100+i) {
			t.Fatalf("reply to unknown code %d: %v %v", i, m, err)
		}
	}
	// Truncated body: XDR_DECODE_ERR.
	if err := p.rw.WriteRecord([]byte{0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0x7f, 0xf0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9}); err != nil {
		t.Fatal(err)
	}
	m, err = p.read()
	if err != nil || m.Header.ErrorCode != ErrXDRDecode || m.Header.ReplySequence != 2 {
		t.Fatalf("reply to truncated body: %v %v", m, err)
	}
	// A short record is discarded silently; the next request still works.
	if err := p.rw.WriteRecord([]byte{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	p.seq = 2
	if err := p.send(Header{MessageCode: TestEcho}, &TestEchoRequest{EchoMsg: "still here"}); err != nil {
		t.Fatal(err)
	}
	m, err = p.read()
	if err != nil || m.Body.(*TestEchoReply).EchoMsg != "still here" {
		t.Fatalf("echo after garbage: %v %v", m, err)
	}
	// Too many malformed records in a row close the connection.
	for range 8 {
		if err := p.rw.WriteRecord([]byte{1}); err != nil {
			break
		}
	}
	s := <-server
	select {
	case <-s.Done():
	case <-time.After(hangGuard):
		t.Fatal("server did not close after a flood of malformed records")
	}
	if _, err := p.read(); err == nil {
		t.Fatal("connection still open")
	}
	nc.Close()
	s.Close()
	waitGoroutines(t, base)
}

// TestConnCloseWithCallsInFlight closes a Conn while calls wait for replies
// that never come; every call must return and no goroutine may be left.
func TestConnCloseWithCallsInFlight(t *testing.T) {
	base := runtime.NumGoroutine()
	ln, accept := listen(t)
	got := make(chan int, 1)
	reads := make(chan struct{}, 64) // one per request the server read
	go func() {
		nc := accept()
		if nc == nil {
			return
		}
		defer nc.Close()
		p := newRawPeer(nc)
		n := 0
		for {
			if _, err := p.read(); err != nil {
				got <- n
				return
			}
			n++
			reads <- struct{}{}
		}
	}()
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c := NewConn(nc, nil)
	const n = 8
	errs := make(chan error, n)
	for range n {
		go func() {
			_, err := c.Call(context.Background(), &MoverGetStateRequest{})
			errs <- err
		}()
	}
	// Cancelation of one call leaves the others waiting.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	if _, err := c.Call(ctx, &DataGetStateRequest{}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("canceled call: %v", err)
	}
	cancel()
	for i := range n + 1 { // the server has read every request
		select {
		case <-reads:
		case <-time.After(hangGuard):
			t.Fatalf("the server read %d requests of %d", i, n+1)
		}
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	for range n {
		select {
		case err := <-errs:
			if !errors.Is(err, ErrClosed) {
				t.Errorf("in-flight call: %v, want ErrClosed", err)
			}
		case <-time.After(hangGuard):
			t.Fatal("a call did not return after Close")
		}
	}
	if r := <-got; r != n+1 {
		t.Errorf("server read %d requests, want %d", r, n+1)
	}
	if _, err := c.Call(context.Background(), &MoverGetStateRequest{}); !errors.Is(err, ErrClosed) {
		t.Errorf("call after Close: %v", err)
	}
	if err := c.Post(context.Background(), &NotifyMoverHaltedPost{}); !errors.Is(err, ErrClosed) {
		t.Errorf("post after Close: %v", err)
	}
	waitGoroutines(t, base)
}

// TestConnPeerCloses checks that a peer closing the connection fails
// waiting calls with the read error.
func TestConnPeerCloses(t *testing.T) {
	base := runtime.NumGoroutine()
	ln, accept := listen(t)
	go func() {
		nc := accept()
		if nc == nil {
			return
		}
		p := newRawPeer(nc)
		_, _ = p.read()
		nc.Close()
	}()
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c := NewConn(nc, nil)
	_, err = c.Call(context.Background(), &TapeGetStateRequest{})
	if !errors.Is(err, io.EOF) {
		t.Fatalf("call when peer closes: %v, want EOF", err)
	}
	<-c.Done()
	c.Close()
	waitGoroutines(t, base)
}

// TestConnHandlerCallsClose lets a handler close its own Conn, as a server
// does on CONNECT_CLOSE.
func TestConnHandlerCallsClose(t *testing.T) {
	base := runtime.NumGoroutine()
	addr, server := serveConn(t, HandlerFunc(func(ctx context.Context, c *Conn, m *Message) (Body, error) {
		if m.Header.MessageCode == ConnectClose {
			return nil, c.Close()
		}
		return nil, ErrNotSupported
	}))
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c := NewConn(nc, nil)
	if rep, err := c.Call(context.Background(), &ConnectCloseRequest{}); rep != nil || err != nil {
		t.Fatalf("CONNECT_CLOSE: %v %v", rep, err)
	}
	s := <-server
	select {
	case <-s.Done():
	case <-time.After(hangGuard):
		t.Fatal("server Conn did not close")
	}
	<-c.Done()
	c.Close()
	s.Close()
	waitGoroutines(t, base)
}

// TestConnPostFlood sends many FH_ADD_FILE posts to a Conn whose handler is
// slower than the sender and whose queue is short: the reader must apply
// back pressure, and every post must arrive, in order (N14).
func TestConnPostFlood(t *testing.T) {
	base := runtime.NumGoroutine()
	const n = 2000
	ln, accept := listen(t)
	sent := make(chan error, 1)
	go func() {
		nc := accept()
		if nc == nil {
			sent <- errors.New("accept failed")
			return
		}
		s := NewConn(nc, nil)
		defer s.Close()
		for i := range n {
			if err := s.Post(context.Background(), fhBatch(1+i%3)); err != nil {
				sent <- err
				return
			}
			if err := s.Post(context.Background(), &NotifyDataReadPost{Offset: uint64(i)}); err != nil {
				sent <- err
				return
			}
		}
		sent <- nil
		<-s.Done()
	}()
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan uint64, n)
	files := 0
	c := NewConn(nc, &Config{QueueLength: 4, Handler: HandlerFunc(func(ctx context.Context, _ *Conn, m *Message) (Body, error) {
		switch b := m.Body.(type) {
		case *FHAddFilePost:
			files += len(b.Files)
		case *NotifyDataReadPost:
			if b.Offset%500 == 0 {
				time.Sleep(2 * time.Millisecond) // a slow consumer now and then
			}
			got <- b.Offset
		}
		return nil, nil
	})})
	for i := range n {
		select {
		case off := <-got:
			if off != uint64(i) {
				t.Fatalf("post %d has offset %d", i, off)
			}
		case <-time.After(hangGuard):
			t.Fatalf("only %d posts arrived", i)
		}
	}
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	c.Close()
	if want := n/3*6 + []int{0, 1, 3}[n%3]; files != want {
		t.Errorf("%d files in FH posts, want %d", files, want)
	}
	waitGoroutines(t, base)
}

// TestConnGreetingFirst checks that Config.Greeting is the first message
// even when the peer sends a request at once.
func TestConnGreetingFirst(t *testing.T) {
	base := runtime.NumGoroutine()
	ln, accept := listen(t)
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	p := newRawPeer(nc)
	if err := p.send(Header{MessageCode: ConnectOpen}, &ConnectOpenRequest{ProtocolVersion: 4}); err != nil {
		t.Fatal(err)
	}
	snc := accept()
	s := NewConn(snc, &Config{
		Greeting: &NotifyConnectionStatusPost{Reason: Connected, ProtocolVersion: 4},
		Handler: HandlerFunc(func(ctx context.Context, c *Conn, m *Message) (Body, error) {
			return &ConnectOpenReply{}, nil
		}),
	})
	m, err := p.read()
	if err != nil || m.Header.MessageCode != NotifyConnectionStatus || m.Header.Sequence != 1 {
		t.Fatalf("first message %v, %v", m, err)
	}
	m, err = p.read()
	if err != nil || m.Header.MessageCode != ConnectOpen || !m.Header.IsReply() || m.Header.Sequence != 2 {
		t.Fatalf("second message %v, %v", m, err)
	}
	nc.Close()
	<-s.Done()
	s.Close()

	// A greeting that is not a post closes the Conn.
	go func() {
		if nc, err := net.Dial("tcp", ln.Addr().String()); err == nil {
			defer nc.Close()
			_, _ = io.Copy(io.Discard, nc)
		}
	}()
	bad := NewConn(accept(), &Config{Greeting: &ConnectOpenRequest{}})
	<-bad.Done()
	if bad.Err() == nil || errors.Is(bad.Err(), ErrClosed) {
		t.Fatalf("Err = %v", bad.Err())
	}
	bad.Close()
	waitGoroutines(t, base)
}

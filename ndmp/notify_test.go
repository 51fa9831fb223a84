package ndmp

import (
	"context"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"
)

// notifyServer is a server that answers DATA_GET_STATE after posting the
// bodies that posts(round) returns, and DATA_START_BACKUP after posting
// those of startPosts. Its greeting is sent through Config.Greeting.
type notifyServer struct {
	posts func(round int) []Body
	round int
}

func (s *notifyServer) start(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait)
	wg.Add(1)
	go func() {
		defer wg.Done()
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		c := NewConn(nc, &Config{
			Greeting: &NotifyConnectionStatusPost{Reason: Connected, ProtocolVersion: ProtocolVersion},
			Handler:  HandlerFunc(s.serve),
		})
		<-c.Done()
	}()
	return ln.Addr().String()
}

func (s *notifyServer) serve(ctx context.Context, c *Conn, m *Message) (Body, error) {
	switch m.Body.(type) {
	case *ConnectOpenRequest:
		return &ConnectOpenReply{}, nil
	case *ConnectCloseRequest:
		return nil, c.Close()
	case *DataGetStateRequest:
		for _, p := range s.posts(s.round) {
			if err := c.Post(ctx, p); err != nil {
				return nil, err
			}
		}
		s.round++
		return &DataGetStateReply{State: DataStateHalted}, nil
	}
	return nil, ErrNotSupported
}

// dialNotify connects a Client to srv; handler, if not nil, is its
// PostHandler.
func dialNotify(t *testing.T, srv *notifyServer, handler func(context.Context, *Message)) (*Client, context.Context) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	c, err := Dial(ctx, srv.start(t), &ClientConfig{PostHandler: handler})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	return c, ctx
}

// roundPosts are the posts of one round: a log message of each type and
// the three notifications, told from those of the round before by their
// reasons and seek position.
func roundPosts(r int) []Body {
	return []Body{
		&LogMessagePost{LogType: LogError, MessageID: uint32(r), Entry: fmt.Sprintf("error %d", r)},
		&LogMessagePost{LogType: LogNormal, MessageID: uint32(r), Entry: fmt.Sprintf("normal %d", r)},
		&NotifyDataHaltedPost{Reason: DataHaltReason(r % 5)},
		&NotifyMoverHaltedPost{Reason: MoverHaltReason(r % 6)},
		&NotifyMoverPausedPost{Reason: MoverPauseEOM, SeekPosition: uint64(r)},
	}
}

// TestNotifyBeforeReply checks the ordering promise of the typed
// notifications (issue 12, item 8): posts the server sent just before a
// reply are delivered when the call returns, even while the PostHandler is
// stuck; the PostHandler still sees every post in order, and WaitPosts
// waits for it.
func TestNotifyBeforeReply(t *testing.T) {
	const rounds = 40 // 5 posts a round: within the Conn's queue of 256
	release := make(chan struct{})
	var mu sync.Mutex
	var seen []string
	handler := func(ctx context.Context, m *Message) {
		<-release
		mu.Lock()
		seen = append(seen, m.Header.MessageCode.String())
		mu.Unlock()
	}
	c, ctx := dialNotify(t, &notifyServer{posts: roundPosts}, handler)
	for r := 0; r < rounds; r++ {
		if _, err := c.DataGetState(ctx); err != nil {
			t.Fatal(err)
		}
		checkRound(t, c, r)
	}
	close(release)
	if err := c.WaitPosts(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 5*rounds {
		t.Fatalf("PostHandler saw %d posts after WaitPosts, want %d", len(seen), 5*rounds)
	}
	for i, code := range seen {
		if want := roundPosts(0)[i%5].MessageCode().String(); code != want {
			t.Fatalf("post %d: PostHandler saw %s, want %s", i, code, want)
		}
	}
}

// checkRound checks that the notifications of round r are there without
// waiting for them.
func checkRound(t *testing.T, c *Client, r int) {
	t.Helper()
	if p := c.LastLogMessage(LogError); p == nil || p.Entry != fmt.Sprintf("error %d", r) {
		t.Fatalf("round %d: last error log %+v", r, p)
	}
	if p := c.LastLogMessage(LogNormal); p == nil || p.Entry != fmt.Sprintf("normal %d", r) {
		t.Fatalf("round %d: last normal log %+v", r, p)
	}
	if p := c.LastLogMessage(LogWarning); p != nil {
		t.Fatalf("round %d: a warning nobody sent: %+v", r, p)
	}
	select {
	case p := <-c.DataHalted():
		if p.Reason != DataHaltReason(r%5) {
			t.Fatalf("round %d: data halted %+v", r, p)
		}
	default:
		t.Fatalf("round %d: NOTIFY_DATA_HALTED sent before the reply is not delivered", r)
	}
	select {
	case p := <-c.MoverHalted():
		if p.Reason != MoverHaltReason(r%6) {
			t.Fatalf("round %d: mover halted %+v", r, p)
		}
	default:
		t.Fatalf("round %d: NOTIFY_MOVER_HALTED sent before the reply is not delivered", r)
	}
	select {
	case p := <-c.MoverPaused():
		if p.Reason != MoverPauseEOM || p.SeekPosition != uint64(r) {
			t.Fatalf("round %d: mover paused %+v", r, p)
		}
	default:
		t.Fatalf("round %d: NOTIFY_MOVER_PAUSED sent before the reply is not delivered", r)
	}
}

// TestNotifyKeepsLatest checks that a DMA that does not read a channel
// finds the latest NotifyBuffer notifications there, in order, and that the
// connection goes on meanwhile.
func TestNotifyKeepsLatest(t *testing.T) {
	const n = NotifyBuffer + 5
	posts := func(int) []Body {
		var out []Body
		for i := 0; i < n; i++ {
			out = append(out, &NotifyMoverPausedPost{Reason: MoverPauseSeek, SeekPosition: uint64(i)})
		}
		return out
	}
	c, ctx := dialNotify(t, &notifyServer{posts: posts}, nil)
	if _, err := c.DataGetState(ctx); err != nil {
		t.Fatal(err)
	}
	for i := n - NotifyBuffer; i < n; i++ {
		select {
		case p := <-c.MoverPaused():
			if p.SeekPosition != uint64(i) {
				t.Fatalf("pause %d: seek position %d", i, p.SeekPosition)
			}
		default:
			t.Fatalf("pause %d missing", i)
		}
	}
	select {
	case p := <-c.MoverPaused():
		t.Fatalf("more than NotifyBuffer pauses kept: %+v", p)
	default:
	}
}

// TestLastLogMessageUnknownType checks that a LOG_MESSAGE of a type the
// draft does not define is passed to the PostHandler but not kept, and that
// LastLogMessage of such a type is nil.
func TestLastLogMessageUnknownType(t *testing.T) {
	got := make(chan string, 1)
	posts := func(int) []Body { return []Body{&LogMessagePost{LogType: 77, Entry: "odd"}} }
	c, ctx := dialNotify(t, &notifyServer{posts: posts}, func(_ context.Context, m *Message) {
		got <- m.Body.(*LogMessagePost).Entry
	})
	if _, err := c.DataGetState(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitPosts(ctx); err != nil {
		t.Fatal(err)
	}
	if e := <-got; e != "odd" {
		t.Fatalf("PostHandler got %q", e)
	}
	if p := c.LastLogMessage(77); p != nil {
		t.Fatalf("LastLogMessage(77) = %+v", p)
	}
	for _, lt := range []LogType{LogNormal, LogDebug, LogError, LogWarning} {
		if p := c.LastLogMessage(lt); p != nil {
			t.Fatalf("LastLogMessage(%v) = %+v", lt, p)
		}
	}
}

// TestWaitPostsClosed checks that WaitPosts returns when the connection
// closes while the PostHandler is stuck, and when its context ends.
func TestWaitPostsClosed(t *testing.T) {
	block := make(chan struct{})
	defer close(block)
	c, ctx := dialNotify(t, &notifyServer{posts: roundPosts}, func(context.Context, *Message) { <-block })
	if _, err := c.DataGetState(ctx); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := c.WaitPosts(cctx); err != context.Canceled {
		t.Fatalf("WaitPosts with a canceled context: %v", err)
	}
	c.Conn().shutdown(ErrClosed)
	if err := c.WaitPosts(ctx); err != ErrClosed {
		t.Fatalf("WaitPosts on a closed connection: %v", err)
	}
}

// TestNewErrorReply checks that every reply body carries an error field set
// without reflection (issue 12, item 8).
func TestNewErrorReply(t *testing.T) {
	n := 0
	for _, code := range MessageCodes() {
		if !code.HasReply() {
			if _, err := NewErrorReply(code, ErrIllegalArgs); err == nil {
				t.Errorf("NewErrorReply(%v) for a message without reply succeeded", code)
			}
			continue
		}
		r, err := NewErrorReply(code, ErrIllegalState)
		if err != nil {
			t.Errorf("NewErrorReply(%v): %v", code, err)
			continue
		}
		if r.MessageCode() != code || r.ReplyError() != ErrIllegalState {
			t.Errorf("NewErrorReply(%v): %T with code %v, error %v", code, r, r.MessageCode(), r.ReplyError())
		}
		b, err := MarshalMessage(nil, &Message{Header: Header{MessageType: MessageReply, MessageCode: code}, Body: r})
		if err != nil {
			t.Fatal(err)
		}
		m, err := UnmarshalMessage(b)
		if err != nil {
			t.Fatal(err)
		}
		if got := m.Body.(ErrorReply).ReplyError(); got != ErrIllegalState {
			t.Errorf("%v: error field %v after a round trip", code, got)
		}
		n++
	}
	if n < 40 {
		t.Fatalf("only %d replies", n)
	}
	if _, err := NewErrorReply(MessageCode(0x12345678), ErrIllegalArgs); err == nil {
		t.Fatal("NewErrorReply of an unknown message succeeded")
	}
}

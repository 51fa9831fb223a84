package ndmp

import (
	"context"
	"errors"
	"net"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/tapestry-ndmp/tapestry/ndmp/xdr"
)

// snapServer answers the snapshot messages of class 0x2050 from a fixed
// set of snapshots and posts NOTIFY_RECOVER_END before its SNAP_RECOVER
// reply, as a fast recovery would.
func snapServer(ctx context.Context, c *Conn, m *Message) (Body, error) {
	switch r := m.Body.(type) {
	case *ConnectOpenRequest:
		return &ConnectOpenReply{}, nil
	case *ConnectCloseRequest:
		return nil, c.Close()
	case *SnapCreateRequest:
		if r.Snapname == "daily" {
			return &SnapCreateReply{Error: ErrSnapExists}, nil
		}
		return &SnapCreateReply{}, nil
	case *SnapDeleteRequest:
		if r.Snapname != "/vs1/vol1/.snapshot/daily" {
			return &SnapDeleteReply{Error: ErrSnapNotFound}, nil
		}
		return &SnapDeleteReply{}, nil
	case *SnapGetSnapshotNamesRequest:
		return &SnapGetSnapshotNamesReply{Snapshots: []SnapInfo{{Snapname: "daily", CreateTime: 1800000000, Flags: 1}}}, nil
	case *SnapDirListRequest:
		if r.Cursor == 7 {
			return &SnapDirListReply{Error: ErrIllegalState}, nil
		}
		return &SnapDirListReply{Entries: []SnapDirEntry{{Name: r.Dir + "f", Node: 257}}, NextCursor: r.Cursor + 1}, nil
	case *SnapRecoverRequest:
		if err := c.Post(ctx, &SnapNotifyRecoverEndPost{RecoverID: 42, Files: uint64(len(r.Names)), Bytes: 10}); err != nil {
			return nil, err
		}
		return &SnapRecoverReply{RecoverID: 42}, nil
	}
	return nil, ErrNotSupported
}

func dialSnap(t *testing.T) (*Client, context.Context) {
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
		c := NewConn(nc, &Config{Greeting: &NotifyConnectionStatusPost{Reason: Connected, ProtocolVersion: ProtocolVersion}, Handler: HandlerFunc(snapServer)})
		<-c.Done()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	c, err := Dial(ctx, ln.Addr().String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	return c, ctx
}

// TestSnapClient: every snapshot call of class 0x2050 over real TCP, its
// class errors, and NOTIFY_RECOVER_END delivered before the SNAP_RECOVER
// call returns (N9).
func TestSnapClient(t *testing.T) {
	c, ctx := dialSnap(t)
	if err := c.SnapCreate(ctx, "/vs1/vol1", "weekly"); err != nil {
		t.Fatal(err)
	}
	if err := c.SnapCreate(ctx, "/vs1/vol1", "daily"); !errors.Is(err, ErrSnapExists) || ErrSnapExists.String() != "NDMP_SNAP_EXISTS_ERR" {
		t.Fatalf("existing snapshot: %v", err)
	}
	if err := c.SnapDelete(ctx, "/vs1/vol1/.snapshot/daily"); err != nil {
		t.Fatal(err)
	}
	if err := c.SnapDelete(ctx, "/vs1/vol1/.snapshot/nope"); !errors.Is(err, ErrSnapNotFound) {
		t.Fatalf("missing snapshot: %v", err)
	}
	names, err := c.SnapNames(ctx, "/vs1/vol1")
	if err != nil || !reflect.DeepEqual(names, []SnapInfo{{Snapname: "daily", CreateTime: 1800000000, Flags: 1}}) {
		t.Fatalf("names %+v, %v", names, err)
	}
	page, err := c.SnapDirList(ctx, &SnapDirListRequest{Pathname: "/vs1/vol1", Snapname: "daily", Dir: "d/", Cursor: 3})
	if err != nil || page.NextCursor != 4 || len(page.Entries) != 1 || page.Entries[0].Name != "d/f" {
		t.Fatalf("page %+v, %v", page, err)
	}
	if _, err := c.SnapDirList(ctx, &SnapDirListRequest{Cursor: 7}); !errors.Is(err, ErrIllegalState) {
		t.Fatalf("invalidated cursor: %v", err)
	}
	id, err := c.SnapRecover(ctx, &SnapRecoverRequest{Pathname: "/vs1/vol1", Snapname: "daily",
		Names: []SnapRecoverName{{OriginalPath: "/d/f", DestinationDir: "/vs1/vol1/r", Name: "f"}}})
	if err != nil || id != 42 {
		t.Fatalf("recover %d, %v", id, err)
	}
	select {
	case end := <-c.SnapRecoverEnd():
		if end.RecoverID != 42 || end.Files != 1 || end.Error != NoErr {
			t.Fatalf("end %+v", end)
		}
	default:
		t.Fatal("NOTIFY_RECOVER_END not delivered before the reply returned")
	}
}

// TestSnapLenientDecode: a class 0x2050 body with bytes after its fields
// decodes (a DMA's longer form of a body that is not public); a short one
// is an XDR decode error; other classes stay strict.
func TestSnapLenientDecode(t *testing.T) {
	body := func(req Body, extra ...uint32) []byte {
		e := xdr.NewEncoder(nil)
		req.MarshalXDR(e)
		for _, w := range extra {
			e.Uint32(w)
		}
		return e.Bytes()
	}
	long := body(&SnapCreateRequest{Pathname: "/vs1/vol1", Snapname: "s"}, 1, 2)
	var got SnapCreateRequest
	if err := decodeBody(&got, long); err != nil || got.Snapname != "s" {
		t.Fatalf("longer SNAP_CREATE: %+v, %v", got, err)
	}
	if err := decodeBody(&SnapCreateRequest{}, long[:6]); err == nil {
		t.Fatal("short SNAP_CREATE decoded")
	}
	if err := decodeBody(&DataGetEnvRequest{}, body(&DataGetEnvRequest{}, 9)); err == nil {
		t.Fatal("a core message with trailing bytes decoded")
	}
}

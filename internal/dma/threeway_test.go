package dma_test

import (
	"context"
	"net"
	"strings"
	"testing"

	"github.com/tapestry-ndmp/tapestry/internal/dma"
	"github.com/tapestry-ndmp/tapestry/internal/testutil"
)

// N17: a three-way job checks its data agent: IPv6 needs one, an empty
// address is refused up front, a data server that does not answer and a
// wrong password are named in the error, and a local job reports its LOCAL
// data connection.
func TestThreeWayJobErrors(t *testing.T) {
	n := startNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), testutil.HangGuard)
	defer cancel()
	j := n.job()
	j.FileSystem, j.TapeFile = "/vs1/vol1", 0
	j.IPv6 = true
	if _, err := dma.Backup(ctx, j); err == nil || !strings.Contains(err.Error(), "three-way") {
		t.Fatalf("IPv6 without a data agent: %v", err)
	}
	j.IPv6 = false
	j.Data = &dma.Agent{}
	if _, err := dma.Backup(ctx, j); err == nil || !strings.Contains(err.Error(), "no data server address") {
		t.Fatalf("empty data agent: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	j.Data = &dma.Agent{Addr: dead, User: n.user, Password: n.pass}
	if _, err := dma.Backup(ctx, j); err == nil || !strings.Contains(err.Error(), "cannot reach the NDMP server "+dead) {
		t.Fatalf("unreachable data agent: %v", err)
	}
	j.Data = &dma.Agent{Addr: n.addr, User: n.user, Password: "wrong"}
	if _, err := dma.Backup(ctx, j); err == nil || !strings.Contains(err.Error(), "wrong user name or password") {
		t.Fatalf("data agent with a wrong password: %v", err)
	}
	// The same node as both agents is a three-way job over TCP.
	n.ok("vserver", "create", "-vserver", "vs1")
	write(t, n.volume("vol1")+"/a.txt", "three-way on one node\n")
	j.Data = &dma.Agent{Addr: n.addr, User: n.user, Password: n.pass}
	res, err := dma.Backup(ctx, j)
	if err != nil || res.MoverAddr == "local" || res.MoverAddr == "" {
		t.Fatalf("three-way backup on one node: %+v %v", res, err)
	}
	j.Data = nil
	res, err = dma.Backup(ctx, j)
	if err != nil || res.MoverAddr != "local" {
		t.Fatalf("local backup: %+v %v", res, err)
	}
}

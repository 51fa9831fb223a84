package daemon

import (
	"bytes"
	"context"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/tapestry-ndmp/tapestry/internal/testutil"
	"github.com/tapestry-ndmp/tapestry/ndmp"
)

// The daemon serves NDMP on its node-management LIF with the default
// virtual library (4 drives) created on first start and reopened on the
// next; cluster user admin logs in with its generated NDMP password.
func TestDaemonServesNDMP(t *testing.T) {
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	listen := "127.0.0.1:" + strconv.Itoa(port)
	for round := 0; round < 2; round++ {
		ctx, cancel := context.WithCancel(context.Background())
		d, err := Open(ctx, Options{DataDir: dir, AdminPassword: "Admin1234", Out: &bytes.Buffer{}, Config: Config{NDMPListen: listen}})
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- d.Serve(ctx) }()
		pw, err := d.Auth().GenerateNDMPPassword(ctx, d.Auth().AdminSVM(), "admin")
		if err != nil {
			t.Fatal(err)
		}
		var c *ndmp.Client
		deadline := time.Now().Add(testutil.HangGuard)
		for {
			c, err = ndmp.Dial(ctx, listen, nil)
			if err == nil || time.Now().After(deadline) {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Connect(ctx); err != nil {
			t.Fatal(err)
		}
		if err := c.AuthMD5(ctx, "admin", pw); err != nil {
			t.Fatalf("round %d: auth: %v", round, err)
		}
		ti, err := c.GetTapeInfo(ctx)
		if err != nil || len(ti) != 4 {
			t.Fatalf("round %d: tape info %d drives, %v", round, len(ti), err)
		}
		if err := c.TapeOpen(ctx, "nrst0l", ndmp.TapeRDWRMode); err != nil {
			t.Fatal(err)
		}
		if len(d.NDMP().Sessions()) != 1 {
			t.Fatalf("sessions %+v", d.NDMP().Sessions())
		}
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("Serve: %v", err)
			}
		case <-time.After(testutil.HangGuard):
			t.Fatal("Serve did not return")
		}
		select {
		case <-c.Conn().Done():
		case <-time.After(testutil.HangGuard):
			t.Fatal("NDMP session survived shutdown")
		}
	}
}

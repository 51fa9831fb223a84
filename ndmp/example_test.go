package ndmp_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"time"

	"github.com/tapestry-ndmp/tapestry/ndmp"
)

// A DMA session: connect, log in with MD5 and open a tape drive.
func ExampleClient() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := ndmp.Dial(ctx, "filer.example.com:10000", &ndmp.ClientConfig{
		PostHandler: func(ctx context.Context, m *ndmp.Message) {
			if p, ok := m.Body.(*ndmp.NotifyMoverPausedPost); ok {
				log.Printf("mover paused: %v", p.Reason)
			}
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close(ctx)
	if err := c.Connect(ctx); err != nil {
		log.Fatal(err)
	}
	if err := c.AuthMD5(ctx, "backup", "secret"); err != nil {
		log.Fatal(err)
	}
	if err := c.TapeOpen(ctx, "nrst0a", ndmp.TapeRDWRMode); errors.Is(err, ndmp.ErrDeviceBusy) {
		log.Print("tape drive in use")
	} else if err != nil {
		log.Fatal(err)
	}
}

// A server side: greet each DMA and answer requests with a Handler.
func ExampleNewConn() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		ndmp.NewConn(nc, &ndmp.Config{
			Greeting: &ndmp.NotifyConnectionStatusPost{Reason: ndmp.Connected, ProtocolVersion: ndmp.ProtocolVersion},
			Handler: ndmp.HandlerFunc(
				func(ctx context.Context, c *ndmp.Conn, m *ndmp.Message) (ndmp.Body, error) {
					switch req := m.Body.(type) {
					case *ndmp.ConnectOpenRequest:
						if req.ProtocolVersion != ndmp.ProtocolVersion {
							return &ndmp.ConnectOpenReply{Error: ndmp.ErrIllegalArgs}, nil
						}
						return &ndmp.ConnectOpenReply{}, nil
					case *ndmp.ConnectCloseRequest:
						return nil, c.Close()
					case *ndmp.TestEchoRequest:
						return &ndmp.TestEchoReply{EchoMsg: req.EchoMsg}, nil
					}
					return nil, ndmp.ErrNotSupported
				}),
		})
	}()

	ctx := context.Background()
	client, err := ndmp.Dial(ctx, ln.Addr().String(), nil)
	if err != nil {
		log.Fatal(err)
	}
	if err := client.Connect(ctx); err != nil {
		log.Fatal(err)
	}
	echo, err := client.TestEcho(ctx, "hello")
	fmt.Println(echo, err)
	_, err = client.GetHostInfo(ctx)
	fmt.Println(err)
	fmt.Println(client.Close(ctx))
	// Output:
	// hello <nil>
	// ndmp: NDMP_CONFIG_GET_HOST_INFO: NDMP_NOT_SUPPORTED_ERR
	// <nil>
}

// A DMA learns why a request failed from the LOG_MESSAGE the server posted
// before its reply, and waits for the end of a backup on DataHalted.
func ExampleClient_DataHalted() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	go serveBackups(ln)

	ctx := context.Background()
	client, err := ndmp.Dial(ctx, ln.Addr().String(), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close(ctx)
	if err := client.Connect(ctx); err != nil {
		log.Fatal(err)
	}
	err = client.DataStartBackup(ctx, "dump", nil)
	fmt.Println(err)
	if p := client.LastLogMessage(ndmp.LogError); p != nil {
		fmt.Println("because:", p.Entry)
	}
	env := []ndmp.Pval{{Name: "FILESYSTEM", Value: "/vs1/vol1"}}
	if err := client.DataStartBackup(ctx, "dump", env); err != nil {
		log.Fatal(err)
	}
	select {
	case p := <-client.DataHalted():
		fmt.Println("backup ended:", p.Reason)
	case <-client.Conn().Done():
		log.Fatal(client.Conn().Err())
	}
	// Output:
	// ndmp: NDMP_DATA_START_BACKUP: NDMP_ILLEGAL_ARGS_ERR
	// because: FILESYSTEM is not set
	// backup ended: NDMP_DATA_HALT_SUCCESSFUL
}

// serveBackups is the server of ExampleClient_DataHalted: it refuses a
// backup without FILESYSTEM with a LOG_MESSAGE and an error reply, and
// "runs" any other backup by posting NOTIFY_DATA_HALTED.
func serveBackups(ln net.Listener) {
	nc, err := ln.Accept()
	if err != nil {
		return
	}
	greeting := &ndmp.NotifyConnectionStatusPost{Reason: ndmp.Connected, ProtocolVersion: ndmp.ProtocolVersion}
	ndmp.NewConn(nc, &ndmp.Config{Greeting: greeting, Handler: ndmp.HandlerFunc(
		func(ctx context.Context, c *ndmp.Conn, m *ndmp.Message) (ndmp.Body, error) {
			switch req := m.Body.(type) {
			case *ndmp.ConnectOpenRequest:
				return &ndmp.ConnectOpenReply{}, nil
			case *ndmp.ConnectCloseRequest:
				return nil, c.Close()
			case *ndmp.DataStartBackupRequest:
				if ndmp.Env(req.Env)["FILESYSTEM"] == "" {
					err := c.Post(ctx, &ndmp.LogMessagePost{LogType: ndmp.LogError, Entry: "FILESYSTEM is not set"})
					if err != nil {
						return nil, err
					}
					return ndmp.NewErrorReply(m.Header.MessageCode, ndmp.ErrIllegalArgs)
				}
				go c.Post(context.Background(), &ndmp.NotifyDataHaltedPost{Reason: ndmp.DataHaltSuccessful})
				return &ndmp.DataStartBackupReply{}, nil
			}
			return nil, ndmp.ErrNotSupported
		})})
}

// The NDMP error codes are Go errors.
func ExampleError() {
	err := fmt.Errorf("open tape: %w", ndmp.ErrDeviceBusy)
	fmt.Println(errors.Is(err, ndmp.ErrDeviceBusy), uint32(ndmp.ErrDeviceBusy))
	fmt.Println(ndmp.ErrDeviceBusy)
	// Output:
	// true 2
	// NDMP_DEVICE_BUSY_ERR
}

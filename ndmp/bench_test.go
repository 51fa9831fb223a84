package ndmp

import (
	"context"
	"fmt"
	"net"
	"testing"
)

// fhBatch returns an FH_ADD_FILE post of n files, as a data server sends
// during a backup with file history.
func fhBatch(n int) *FHAddFilePost {
	p := &FHAddFilePost{Files: make([]File, n)}
	for i := range p.Files {
		p.Files[i] = File{
			Name: []FileName{{FSType: FSUnix, UnixName: fmt.Sprintf("/vol/vol1/home/user%03d/documents/file-%06d.txt", i%100, i)}},
			Stat: []FileStat{{FSType: FSUnix, Ftype: FileReg, Mtime: 1700000000, Atime: 1700000001, Ctime: 1700000002,
				Owner: 1000, Group: 1000, Fattr: 0o644, Size: uint64(i) * 4096, Links: 1}},
			Node:   uint64(i + 64),
			FHInfo: uint64(i) * 512,
		}
	}
	return p
}

func fsInfoReply(n int) *ConfigGetFSInfoReply {
	r := &ConfigGetFSInfoReply{FSInfo: make([]FSInfo, n)}
	for i := range r.FSInfo {
		r.FSInfo[i] = FSInfo{
			FSType: "btrfs", FSLogicalDevice: fmt.Sprintf("/vs1/vol%d", i), FSPhysicalDevice: "/dev/loop0",
			TotalSize: 1 << 40, UsedSize: 1 << 39, AvailSize: 1 << 39, TotalInodes: 1 << 30, UsedInodes: 1 << 20,
			FSEnv:    []Pval{{"LOCAL", "y"}, {"TYPE", "dump"}, {"AVAILABLE_BACKUP", "dump,smtape"}},
			FSStatus: "online",
		}
	}
	return r
}

func benchEncode(b *testing.B, m *Message) {
	buf, err := MarshalMessage(nil, m)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		buf, err = MarshalMessage(buf[:0], m)
		if err != nil {
			b.Fatal(err)
		}
	}
}

func benchDecode(b *testing.B, m *Message) {
	buf, err := MarshalMessage(nil, m)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := UnmarshalMessage(buf); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFHAddFileEncode encodes an FH_ADD_FILE post of 1000 files.
func BenchmarkFHAddFileEncode(b *testing.B) {
	benchEncode(b, &Message{Header: Header{MessageCode: FHAddFile}, Body: fhBatch(1000)})
}

// BenchmarkFHAddFileDecode decodes an FH_ADD_FILE post of 1000 files.
func BenchmarkFHAddFileDecode(b *testing.B) {
	benchDecode(b, &Message{Header: Header{MessageCode: FHAddFile}, Body: fhBatch(1000)})
}

// BenchmarkFSInfoEncode encodes a CONFIG_GET_FS_INFO reply of 100 file
// systems.
func BenchmarkFSInfoEncode(b *testing.B) {
	benchEncode(b, &Message{Header: Header{MessageType: MessageReply, MessageCode: ConfigGetFSInfo}, Body: fsInfoReply(100)})
}

// BenchmarkFSInfoDecode decodes a CONFIG_GET_FS_INFO reply of 100 file
// systems.
func BenchmarkFSInfoDecode(b *testing.B) {
	benchDecode(b, &Message{Header: Header{MessageType: MessageReply, MessageCode: ConfigGetFSInfo}, Body: fsInfoReply(100)})
}

// BenchmarkConnCallLoopback measures one TEST_ECHO round trip between two
// Conns over loopback TCP.
func BenchmarkConnCallLoopback(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	srv := make(chan *Conn, 1)
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			close(srv)
			return
		}
		srv <- NewConn(nc, &Config{Handler: HandlerFunc(func(ctx context.Context, c *Conn, m *Message) (Body, error) {
			return &TestEchoReply{EchoMsg: m.Body.(*TestEchoRequest).EchoMsg}, nil
		})})
	}()
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	c := NewConn(nc, nil)
	defer c.Close()
	s := <-srv
	defer s.Close()
	ctx := context.Background()
	req := &TestEchoRequest{EchoMsg: "ping"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Call(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}

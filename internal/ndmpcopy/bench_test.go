package ndmpcopy

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/tapestry-ndmp/tapestry/internal/testutil"
)

// BenchmarkCopySession measures what the DMA adds to every copy: two
// control sessions (connect, MD5 authentication, extension negotiation), the
// IPv6 attempt and the IPv4 data connection, start, halt and stop, for a
// 64 KiB image between two protocol peers on loopback.
func BenchmarkCopySession(b *testing.B) {
	src := newPeer(b, "127.0.0.1")
	dst := newPeer(b, "127.0.0.2")
	src.files["/vs1/vol1"] = testContent(64 << 10)
	o, err := ParseArgs([]string{"-sa", "admin:secret", "-da", "admin:secret", "-st", "md5",
		src.endpoint("/vs1/vol1"), dst.endpoint("/vs2/vol2")}, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := Copy(context.Background(), o, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCopyThroughput moves a 64 MiB image between two protocol peers
// on loopback; the bytes go from peer to peer, never through the DMA.
func BenchmarkCopyThroughput(b *testing.B) {
	src := newPeer(b, "127.0.0.1")
	dst := newPeer(b, "127.0.0.2")
	src.files["/vs1/vol1"] = testContent(64 << 20)
	o, err := ParseArgs([]string{"-sa", "admin:secret", "-da", "admin:secret", "-st", "md5",
		src.endpoint("/vs1/vol1"), dst.endpoint("/vs2/vol2")}, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(64 << 20)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := Copy(context.Background(), o, nil); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseEndpoint(b *testing.B) {
	for i := 0; i < b.N; i++ {
		if _, err := ParseEndpoint("admin:secret@[2001:db8::1]:10001:/vs1/vol1/dir/file"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkE2EBackupThreeWay runs level 0 copies of a 64 MiB volume (16
// files of 4 MiB) from a real Tapestry node on btrfs to a protocol peer
// that keeps the image: the real dump engine, snapshot and three-way data
// connection.
func BenchmarkE2EBackupThreeWay(b *testing.B) {
	testutil.RequireRoot(b)
	src := newNode(b, "127.0.0.1")
	dir := src.volume("vs1", "vol1", "btrfs")
	for i := 0; i < 16; i++ {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%02d", i)), testContent(4<<20), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	dst := newPeer(b, "127.0.0.2")
	dst.raw = true
	o, err := ParseArgs([]string{"-sa", src.user + ":" + src.pw, "-da", "admin:secret", "-st", "md5",
		src.endpoint("/vs1/vol1"), dst.endpoint("/vs2/vol2")}, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(64 << 20)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := Copy(context.Background(), o, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkE2ECopy runs level 0 copies of a 64 MiB volume (16 files of
// 4 MiB) between two real Tapestry nodes: btrfs source, ext4 destination,
// each copy overwriting the last.
func BenchmarkE2ECopy(b *testing.B) {
	testutil.RequireRoot(b)
	src := newNode(b, "127.0.0.1")
	dst := newNode(b, "127.0.0.2")
	dir := src.volume("vs1", "vol1", "btrfs")
	dst.volume("vs2", "vol2", "ext4")
	for i := 0; i < 16; i++ {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%02d", i)), testContent(4<<20), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	o, err := ParseArgs(copyArgs(src, dst, "/vs1/vol1", "/vs2/vol2"), nil)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(64 << 20)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := Copy(context.Background(), o, nil); err != nil {
			b.Fatal(err)
		}
	}
}

package dump

import (
	"bytes"
	"io"
	"math/rand"
	"testing"
	"time"
)

// benchWrite writes b.N regular files of size bytes each (xattrs on each
// when withXattr) into one image and reports MB/s of file data.
func benchWrite(b *testing.B, size int, withXattr bool) {
	data := make([]byte, size)
	rand.New(rand.NewSource(1)).Read(data)
	b.SetBytes(int64(size))
	b.ReportAllocs()
	w, err := NewWriter(io.Discard, Options{Date: time.Unix(1795300000, 0), NTREC: 64})
	if err != nil {
		b.Fatal(err)
	}
	m := NewBitmap(uint32(b.N + 8))
	for i := 2; i < b.N+4; i++ {
		m.Set(uint32(i))
	}
	if err := w.WriteMaps(m, m); err != nil {
		b.Fatal(err)
	}
	if _, err := w.WriteDir(&Inode{Ino: 2, Mode: ModeDir | 0o755}, nil, []DirEntry{{2, DTDir, "."}, {2, DTDir, ".."}}); err != nil {
		b.Fatal(err)
	}
	var xs []Xattr
	if withXattr {
		xs = []Xattr{{Name: "user.comment", Value: []byte("benchmark")}}
	}
	mt := time.Unix(1700000000, 0)
	r := bytes.NewReader(data)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r.Reset(data)
		in := Inode{Ino: uint32(i + 3), Mode: ModeReg | 0o644, Nlink: 1, Size: int64(size), Mtime: mt}
		if _, err := w.WriteFile(&in, xs, r); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkWriter measures writer throughput for large files and for many
// small files.
func BenchmarkWriter(b *testing.B) {
	b.Run("large-4MiB", func(b *testing.B) { benchWrite(b, 4<<20, false) })
	b.Run("small-2KiB", func(b *testing.B) { benchWrite(b, 2<<10, true) })
}

// BenchmarkReader measures reading an image of 4 MiB files.
func BenchmarkReader(b *testing.B) {
	var buf bytes.Buffer
	w, _ := NewWriter(&buf, Options{Date: time.Unix(1795300000, 0)})
	m := NewBitmap(64)
	for i := 2; i < 20; i++ {
		m.Set(uint32(i))
	}
	if err := w.WriteMaps(m, m); err != nil {
		b.Fatal(err)
	}
	w.WriteDir(&Inode{Ino: 2, Mode: ModeDir | 0o755}, nil, []DirEntry{{2, DTDir, "."}})
	data := make([]byte, 4<<20)
	for i := 3; i < 19; i++ {
		w.WriteFile(&Inode{Ino: uint32(i), Mode: ModeReg | 0o644, Size: int64(len(data))}, nil, bytes.NewReader(data))
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	img := buf.Bytes()
	b.SetBytes(int64(len(img)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := drain(NewReader(bytes.NewReader(img))); err != nil {
			b.Fatal(err)
		}
	}
}

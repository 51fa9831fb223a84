package dump

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"
)

// lendingBuffer is a BlockLender that lends the tail of one large buffer
// and counts the blocks written in place and those copied.
type lendingBuffer struct {
	buf      []byte
	lent     []byte // the block lent last, nil when none is out
	inPlace  int
	copied   int
	lendNone bool // lend nothing (LendBlock returns nil)
}

func (l *lendingBuffer) LendBlock(n int) []byte {
	if l.lendNone {
		return nil
	}
	if cap(l.buf)-len(l.buf) < n {
		nb := make([]byte, len(l.buf), 2*cap(l.buf)+n)
		copy(nb, l.buf)
		l.buf = nb
	}
	l.lent = l.buf[len(l.buf) : len(l.buf)+n]
	return l.lent
}

func (l *lendingBuffer) Write(p []byte) (int, error) {
	if l.lent != nil && len(p) > 0 && len(p) <= len(l.lent) && &p[0] == &l.lent[0] {
		l.buf = l.buf[:len(l.buf)+len(p)]
		l.inPlace++
	} else {
		if l.lent != nil {
			return 0, errors.New("a block was lent but other memory was written")
		}
		l.buf = append(l.buf, p...)
		l.copied++
	}
	l.lent = nil
	return len(p), nil
}

// writeLendImage writes a small image with files of many sizes (one with
// TS_ADDR continuations) to out.
func writeLendImage(t *testing.T, out BlockLender, ntrec int, plain *bytes.Buffer) {
	t.Helper()
	opt := Options{Date: time.Unix(1700000000, 0), NTREC: ntrec, OffsetMap: true}
	var w *Writer
	var err error
	if plain != nil {
		w, err = NewWriter(plain, opt)
	} else {
		w, err = NewWriter(out, opt)
	}
	if err != nil {
		t.Fatal(err)
	}
	sizes := []int{0, 1, 1023, 1024, 4096, 10 << 10, 600 << 10, 3}
	maxIno := uint32(RootIno + len(sizes) + 1)
	used, dumped := NewBitmap(maxIno), NewBitmap(maxIno)
	ents := []DirEntry{{Ino: RootIno, Type: DTDir, Name: "."}, {Ino: RootIno, Type: DTDir, Name: ".."}}
	for i := range sizes {
		ino := uint32(RootIno + 1 + i)
		used.Set(ino)
		dumped.Set(ino)
		ents = append(ents, DirEntry{Ino: ino, Type: DTReg, Name: fmt.Sprintf("f%d", i)})
	}
	used.Set(RootIno)
	dumped.Set(RootIno)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(w.WriteMaps(used, dumped))
	_, err = w.WriteDir(&Inode{Ino: RootIno, Mode: ModeDir | 0o755, Nlink: 2}, nil, ents)
	must(err)
	for i, n := range sizes {
		data := bytes.Repeat([]byte{byte(i + 1)}, n)
		_, err := w.WriteFile(&Inode{Ino: uint32(RootIno + 1 + i), Mode: ModeReg | 0o644, Nlink: 1, Size: int64(n)}, nil, bytes.NewReader(data))
		must(err)
	}
	must(w.BeginACLSection())
	must(w.Close())
}

// TestWriterLendsBlocks: a Writer whose output lends block memory builds
// every block in it (no copy) and writes exactly the bytes it writes to a
// plain output; an output that lends nothing gets copies, same bytes.
func TestWriterLendsBlocks(t *testing.T) {
	for _, ntrec := range []int{1, 10, 64} {
		var plain bytes.Buffer
		writeLendImage(t, nil, ntrec, &plain)
		lb := &lendingBuffer{buf: make([]byte, 0, 4096)}
		writeLendImage(t, lb, ntrec, nil)
		if !bytes.Equal(lb.buf, plain.Bytes()) {
			t.Fatalf("NTREC %d: image built in lent blocks differs (%d bytes, plain %d)", ntrec, len(lb.buf), plain.Len())
		}
		if lb.copied != 0 || lb.inPlace != plain.Len()/(ntrec*RecordSize) {
			t.Errorf("NTREC %d: %d blocks in place, %d copied; want %d in place", ntrec, lb.inPlace, lb.copied, plain.Len()/(ntrec*RecordSize))
		}
		none := &lendingBuffer{lendNone: true}
		writeLendImage(t, none, ntrec, nil)
		if !bytes.Equal(none.buf, plain.Bytes()) || none.inPlace != 0 {
			t.Errorf("NTREC %d: output lending nothing: %d bytes, %d in place", ntrec, len(none.buf), none.inPlace)
		}
	}
}

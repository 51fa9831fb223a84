package filedump

import (
	"bytes"
	"testing"

	"github.com/tapestry-ndmp/tapestry/format/dump"
)

// TestAsyncWriterLendsBlocks (D3): blocks built in memory the asyncWriter
// lends and written in place, mixed with copied writes, reach the
// destination whole and in order, in writes over 1 MiB (the local dump
// command's buffer passes them through); nothing is lent after Close.
func TestAsyncWriterLendsBlocks(t *testing.T) {
	rec := &recordingWriter{}
	a := newAsyncWriter(rec)
	var _ dump.BlockLender = a
	var want bytes.Buffer
	const block = 10 << 10
	for i := 0; i < 500; i++ {
		if i%7 == 3 {
			// A plain write between lent blocks.
			p := bytes.Repeat([]byte{byte(i)}, 1000+i)
			want.Write(p)
			if n, err := a.Write(p); err != nil || n != len(p) {
				t.Fatalf("Write %d: %d %v", i, n, err)
			}
			continue
		}
		b := a.LendBlock(block)
		if len(b) != block {
			t.Fatalf("LendBlock %d: %d bytes", i, len(b))
		}
		for j := range b {
			b[j] = byte(i + j)
		}
		n := block
		if i%11 == 0 {
			n = block / 2 // a short block: a prefix of the lent memory
		}
		want.Write(b[:n])
		if w, err := a.Write(b[:n]); err != nil || w != n {
			t.Fatalf("Write of lent block %d: %d %v", i, w, err)
		}
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	got, calls := rec.snapshot()
	if !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("destination got %d bytes, want %d (or different bytes)", len(got), want.Len())
	}
	if calls > 1+len(got)/(1<<20) {
		t.Errorf("%d writes for %d bytes: want writes of over 1 MiB", calls, len(got))
	}
	if b := a.LendBlock(block); b != nil {
		t.Errorf("LendBlock after Close lent %d bytes", len(b))
	}
	a2 := newAsyncWriter(rec)
	defer a2.Abort()
	if b := a2.LendBlock(asyncChunk + 1); b != nil {
		t.Errorf("LendBlock of more than a chunk lent %d bytes", len(b))
	}
}

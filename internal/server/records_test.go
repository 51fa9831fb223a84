package server

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"testing"
)

// Issue 5: the mover's reader of a TCP data connection cuts any stream, in
// writes of any size, into whole records, the last one padded with zeros,
// and then reports the end of the stream; over loopback TCP (with
// SO_RCVLOWAT set to the record size) a tail shorter than a record still
// arrives.
func TestRecordReaderCutsStream(t *testing.T) {
	t.Parallel()
	const rs = 64 << 10
	for _, tc := range []struct {
		name string
		size int
		tcp  bool
	}{
		{"pipe, records and a tail", 3*recordReaderSize + 12345, false},
		{"pipe, whole records", 40 * rs, false},
		{"tcp, records and a tail", 5*recordReaderSize + 777, true},
		{"tcp, tail only", 100, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var w, r net.Conn
			if tc.tcp {
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				defer ln.Close()
				if w, err = net.Dial("tcp", ln.Addr().String()); err != nil {
					t.Fatal(err)
				}
				if r, err = ln.Accept(); err != nil {
					t.Fatal(err)
				}
			} else {
				w, r = net.Pipe()
			}
			defer r.Close()
			rng := rand.New(rand.NewPCG(7, uint64(tc.size)))
			want := make([]byte, tc.size)
			for i := range want {
				want[i] = byte(rng.Uint32())
			}
			go func() {
				defer w.Close()
				for off := 0; off < len(want); {
					n := min(1+rng.IntN(300<<10), len(want)-off)
					if _, err := w.Write(want[off : off+n]); err != nil {
						return
					}
					off += n
				}
			}()
			rr := newRecordReader(r, rs)
			var got []byte
			for {
				rec, n, err := rr.next()
				if n == 0 {
					if !errors.Is(err, io.EOF) {
						t.Fatalf("end of stream after %d bytes: %v", len(got), err)
					}
					break
				}
				if err != nil || len(rec) != rs {
					t.Fatalf("record after %d bytes: %d bytes (%d of the stream), %v", len(got), len(rec), n, err)
				}
				if n < rs && (len(got)+n != len(want) || !bytes.Equal(rec[n:], make([]byte, rs-n))) {
					t.Fatalf("short record of %d bytes after %d, not the padded tail", n, len(got))
				}
				got = append(got, rec[:n]...)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("got %d bytes, want %d; contents differ", len(got), len(want))
			}
		})
	}
}

package snapshot

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math/rand/v2"
	"testing"
)

func TestIDMapRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	want := map[uint64]uint64{}
	var pairs []idPair
	for i := 0; i < 5000; i++ {
		s := uint64(r.IntN(1 << 20))
		if i%7 == 0 {
			s = r.Uint64() // far apart and huge
		}
		l := r.Uint64() >> uint(r.IntN(64))
		if _, dup := want[s]; dup {
			continue
		}
		want[s] = l
		pairs = append(pairs, idPair{s, l})
		if i%10 == 0 { // hard links repeat an identical pair
			pairs = append(pairs, idPair{s, l})
		}
	}
	enc, err := encodeIDMap(pairs)
	if err != nil {
		t.Fatal(err)
	}
	m, err := decodeIDMap(enc)
	if err != nil {
		t.Fatal(err)
	}
	if m.Len() != len(want) {
		t.Fatalf("decoded %d entries, want %d", m.Len(), len(want))
	}
	for s, l := range want {
		if got, ok := m.Live(s); !ok || got != l {
			t.Fatalf("Live(%d) = %d, %v; want %d", s, got, ok, l)
		}
		if _, ok := want[s+1]; !ok {
			if _, ok := m.Live(s + 1); ok {
				t.Fatalf("Live(%d) found an inode that was never stored", s+1)
			}
		}
	}
	// Sequential inodes, as a snapshot makes them, take about 2 bytes each.
	pairs = pairs[:0]
	for i := uint64(0); i < 100000; i++ {
		pairs = append(pairs, idPair{1000 + i, 500000 + i})
	}
	enc, err = encodeIDMap(pairs)
	if err != nil {
		t.Fatal(err)
	}
	if len(enc) > 2*100000+64 {
		t.Errorf("100,000 sequential entries take %d bytes", len(enc))
	}
}

func TestIDMapConflict(t *testing.T) {
	if _, err := encodeIDMap([]idPair{{5, 1}, {5, 2}}); err == nil {
		t.Fatal("one snapshot inode mapped to two live inodes was accepted")
	}
}

func TestIDMapCorrupt(t *testing.T) {
	good, err := encodeIDMap([]idPair{{1, 10}, {2, 20}, {300, 7}})
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string][]byte{
		"empty":     nil,
		"short":     good[:10],
		"magic":     append([]byte("XPSIDMAP"), good[8:]...),
		"truncated": good[:len(good)-1],
	}
	for i := range good {
		b := append([]byte(nil), good...)
		b[i] ^= 0x40
		cases["flip"+string(rune('a'+i%26))+string(rune('0'+i/26))] = b
	}
	for name, b := range cases {
		if _, err := decodeIDMap(b); !errors.Is(err, errIDMapCorrupt) {
			t.Errorf("%s: decode gave %v, want a corruption error", name, err)
		}
	}
}

// FuzzDecodeIDMap feeds arbitrary bytes to the identity map parser: it must
// not panic, and what it accepts must encode back to the same bytes.
func FuzzDecodeIDMap(f *testing.F) {
	for _, pairs := range [][]idPair{nil, {{1, 1}}, {{256, 256}, {257, 300}, {1 << 40, 3}}} {
		b, err := encodeIDMap(pairs)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("TPSIDMAP\x01"))
	f.Add([]byte("TPSIDMAP\x01\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01\x00\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		checkDecode(t, b)
		// Most random inputs fail the checksum; give them a good one too so
		// the fuzzer reaches the entry parser.
		checkDecode(t, binary.LittleEndian.AppendUint32(append([]byte(nil), b...), crc32.Checksum(b, crcTable)))
	})
}

func checkDecode(t *testing.T, b []byte) {
	m, err := decodeIDMap(b)
	if err != nil {
		return
	}
	pairs := make([]idPair, m.Len())
	for i := range pairs {
		pairs[i] = idPair{m.snap[i], m.live[i]}
	}
	again, err := encodeIDMap(pairs)
	if err != nil {
		t.Fatalf("re-encode: %v", err)
	}
	m2, err := decodeIDMap(again)
	if err != nil {
		t.Fatalf("decode of re-encoded map: %v", err)
	}
	for i := range pairs {
		if l, ok := m2.Live(pairs[i].snap); !ok || l != pairs[i].live {
			t.Fatalf("entry %d lost in the round trip", i)
		}
	}
}

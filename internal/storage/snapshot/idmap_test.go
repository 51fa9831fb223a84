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
		pairs = append(pairs, idPair{s, l, int64(l) ^ 0x5555})
		if i%10 == 0 { // hard links repeat an identical pair
			pairs = append(pairs, idPair{s, l, int64(l) ^ 0x5555})
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
		c := int64(l) ^ 0x5555
		if got, ok := m.LiveCtime(s); ok != (c != 0) || (ok && got.UnixNano() != c) {
			t.Fatalf("LiveCtime(%d) = %v, %v; want %d", s, got, ok, c)
		}
		if _, ok := want[s+1]; !ok {
			if _, ok := m.Live(s + 1); ok {
				t.Fatalf("Live(%d) found an inode that was never stored", s+1)
			}
		}
	}
	// Sequential inodes copied a microsecond apart, as a snapshot makes
	// them, take about 4 bytes each.
	pairs = pairs[:0]
	for i := uint64(0); i < 100000; i++ {
		pairs = append(pairs, idPair{1000 + i, 500000 + i, 1_700_000_000_000_000_000 + int64(i)*1000})
	}
	enc, err = encodeIDMap(pairs)
	if err != nil {
		t.Fatal(err)
	}
	if len(enc) > 5*100000+64 {
		t.Errorf("100,000 sequential entries take %d bytes", len(enc))
	}
}

// TestIDMapVersion1 loads a map written before change times were kept: the
// inode pairs are there and every change time is unknown.
func TestIDMapVersion1(t *testing.T) {
	b := append([]byte(idMapMagic), 1)
	b = binary.AppendUvarint(b, 2)
	b = binary.AppendUvarint(b, 5)
	b = binary.AppendVarint(b, 100)
	b = binary.AppendUvarint(b, 3)
	b = binary.AppendVarint(b, -40)
	b = binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, crcTable))
	m, err := decodeIDMap(b)
	if err != nil {
		t.Fatalf("version 1 map: %v", err)
	}
	if l, ok := m.Live(5); !ok || l != 100 {
		t.Errorf("Live(5) = %d, %v; want 100", l, ok)
	}
	if l, ok := m.Live(8); !ok || l != 60 {
		t.Errorf("Live(8) = %d, %v; want 60", l, ok)
	}
	if c, ok := m.LiveCtime(5); ok {
		t.Errorf("LiveCtime of a version 1 map = %v, want unknown", c)
	}
	var _ LiveCtimer = m
	// A new map is version 2.
	enc, err := encodeIDMap([]idPair{{5, 100, 1}})
	if err != nil {
		t.Fatal(err)
	}
	if enc[len(idMapMagic)] != 2 {
		t.Errorf("new map has version %d, want 2", enc[len(idMapMagic)])
	}
}

func TestIDMapConflict(t *testing.T) {
	if _, err := encodeIDMap([]idPair{{5, 1, 0}, {5, 2, 0}}); err == nil {
		t.Fatal("one snapshot inode mapped to two live inodes was accepted")
	}
}

func TestIDMapCorrupt(t *testing.T) {
	good, err := encodeIDMap([]idPair{{1, 10, 1}, {2, 20, 2}, {300, 7, 3}})
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
	for _, pairs := range [][]idPair{nil, {{1, 1, 0}}, {{256, 256, 9}, {257, 300, -4}, {1 << 40, 3, 1 << 62}}} {
		b, err := encodeIDMap(pairs)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("TPSIDMAP\x01"))
	f.Add([]byte("TPSIDMAP\x01\x01\x05\x0a"))
	f.Add([]byte("TPSIDMAP\x02\x01\x05\x0a\x02"))
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
		pairs[i] = idPair{snap: m.snap[i], live: m.live[i]}
		if m.ctime != nil {
			pairs[i].ctime = m.ctime[i]
		}
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
		c, ok := m2.LiveCtime(pairs[i].snap)
		if ok != (pairs[i].ctime != 0) || (ok && c.UnixNano() != pairs[i].ctime) {
			t.Fatalf("entry %d: change time %v, %v after the round trip, want %d", i, c, ok, pairs[i].ctime)
		}
	}
}

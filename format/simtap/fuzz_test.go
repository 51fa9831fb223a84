package simtap

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzOpen feeds arbitrary bytes as a cartridge image: opening must not
// panic or hang, every object found must read back, and a second open of
// the repaired image must find the same objects with nothing to repair.
func FuzzOpen(f *testing.F) {
	f.Add(simhImage([]byte("hello"), nil, []byte("odd"), nil, nil))
	f.Add(simhImage(nil))
	f.Add([]byte{})
	f.Add([]byte{1, 0, 0})
	f.Add(binary.LittleEndian.AppendUint32(simhImage([]byte("ab")), wordGap))
	f.Add(binary.LittleEndian.AppendUint32(simhImage([]byte("ab")), wordEOM))
	f.Add(append(simhImage([]byte("abcd")), 0xff, 0xff, 0xfe, 0xff, 0, 0, 0, 0))
	f.Add(append(simhImage([]byte("whole")), 9, 0, 0, 0, 'p', 'a'))
	bad := simhImage([]byte("bad."))
	binary.LittleEndian.PutUint32(bad, 0x80000004)
	binary.LittleEndian.PutUint32(bad[8:], 0x80000004)
	f.Add(bad)
	comp := simhImage([]byte{0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0, 0})
	binary.LittleEndian.PutUint32(comp, 0x10000008)
	binary.LittleEndian.PutUint32(comp[12:], 0x10000008)
	f.Add(comp)
	f.Fuzz(func(t *testing.T, img []byte) {
		p := filepath.Join(t.TempDir(), "f.tap")
		if err := os.WriteFile(p, img, 0o644); err != nil {
			t.Fatal(err)
		}
		c, err := Open(p, nil)
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		n := c.Len()
		if c.Size()+c.Repaired() > int64(len(img)) {
			t.Fatalf("size %d + repaired %d exceeds image %d", c.Size(), c.Repaired(), len(img))
		}
		buf := make([]byte, 1<<16)
		for i := int64(0); i <= n; i++ {
			_, err := c.ReadRecord(buf)
			if errors.Is(err, ErrEndOfData) {
				if i != n {
					t.Fatalf("end of data after %d of %d objects", i, n)
				}
				break
			}
			if err != nil && !errors.Is(err, ErrTapeMark) && !errors.Is(err, ErrTruncated) &&
				!errors.Is(err, ErrBadRecord) && !errors.Is(err, ErrCorrupt) {
				t.Fatalf("object %d: %v", i, err)
			}
		}
		if _, err := c.SpaceFiles(-3); err != nil {
			t.Fatal(err)
		}
		if _, err := c.SpaceRecords(2); err != nil {
			t.Fatal(err)
		}
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		c, err = Open(p, nil)
		if err != nil {
			t.Fatalf("reopen: %v", err)
		}
		defer c.Close()
		if c.Len() != n || c.Repaired() != 0 {
			t.Fatalf("reopen: %d objects (repaired %d), first open found %d", c.Len(), c.Repaired(), n)
		}
	})
}

package vtl

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// lose takes the cartridge image of VOL001 away from under the drive: it
// unlinks it or (replace) renames it away and puts another file at its
// path.
func lose(t *testing.T, l *Library, replace bool) {
	t.Helper()
	p := l.cartPath("VOL001")
	if !replace {
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
		return
	}
	if err := os.Rename(p, filepath.Join(filepath.Dir(p), "elsewhere.tap")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("not the tape"), 0o644); err != nil {
		t.Fatal(err)
	}
}

// writeUntilMediaError writes 256 KiB records and returns the error of
// the first that fails; more than 8 MiB (the check interval) and a record
// accepted is a failure of the test.
func writeUntilMediaError(t *testing.T, d *Drive) error {
	t.Helper()
	rec := bytes.Repeat([]byte{0xa5}, 256<<10)
	for i := 0; i < 40; i++ {
		if _, err := d.Write(rec); err != nil {
			return err
		}
	}
	t.Fatal("10 MiB written to a cartridge whose image is gone, no error")
	return nil
}

// Issue 11 item 8 (T10, N14): a cartridge image unlinked or replaced while
// a drive writes to it fails the writes with a media error (NDMP_IO_ERR,
// "Media error on tape write"), and so does the close that would flush
// it; the write is never reported successful.
func TestCartridgeLostWhileWriting(t *testing.T) {
	for _, replace := range []bool{false, true} {
		name := map[bool]string{false: "removed", true: "replaced"}[replace]
		t.Run(name, func(t *testing.T) {
			l, d := newLib(t, 0)
			mustOpen(t, d, OpenOptions{Mode: ReadWriteMode})
			for i := 0; i < 4; i++ {
				if _, err := d.Write(pattern(0, i, 256<<10)); err != nil {
					t.Fatal(err)
				}
			}
			lose(t, l, replace)
			err := writeUntilMediaError(t, d)
			if !errors.Is(err, ErrIO) || Message(err) != MsgMediaErrorOnWrite {
				t.Fatalf("write after the loss: %v (message %q), want ErrIO with %q", err, Message(err), MsgMediaErrorOnWrite)
			}
			if _, err := d.Write([]byte("more")); !errors.Is(err, ErrIO) || Message(err) != MsgMediaErrorOnWrite {
				t.Fatalf("next write: %v", err)
			}
			if err := d.Close(); !errors.Is(err, ErrIO) || Message(err) != MsgMediaErrorOnWrite {
				t.Fatalf("close: %v, want ErrIO with %q", err, MsgMediaErrorOnWrite)
			}
			_ = d.Close()
		})
	}
}

// Issue 11 item 8: removed after the last record, the loss is reported by
// the close that flushes the cartridge (the DMA's TAPE_CLOSE).
func TestCartridgeLostBeforeClose(t *testing.T) {
	l, d := newLib(t, 0)
	mustOpen(t, d, OpenOptions{Mode: ReadWriteMode})
	if _, err := d.Write(pattern(0, 0, 1024)); err != nil {
		t.Fatal(err)
	}
	lose(t, l, false)
	if err := d.Close(); !errors.Is(err, ErrIO) || Message(err) != MsgMediaErrorOnWrite {
		t.Fatalf("close: %v, want ErrIO with %q", err, MsgMediaErrorOnWrite)
	}
	_ = d.Close()
}

// Issue 11 item 8 (T10): through the SCSI emulation the write after the
// loss ends in CHECK CONDITION with a medium error (3/0C/00, write error).
func TestCartridgeLostSCSIWrite(t *testing.T) {
	for _, replace := range []bool{false, true} {
		l, d := newLib(t, 0)
		rec := bytes.Repeat([]byte{0x3c}, 256<<10)
		write := func() CDBResult {
			n := len(rec)
			return d.ExecuteCDB(CDB{CDB: []byte{0x0A, 0, byte(n >> 16), byte(n >> 8), byte(n), 0}, Dir: DirOut, DataOut: rec})
		}
		good(t, write())
		lose(t, l, replace)
		var r CDBResult
		for i := 0; i < 40; i++ {
			if r = write(); r.Status != 0 {
				break
			}
		}
		wantSense(t, r, KeyMediumError, 0x0C, 0x00)
	}
}

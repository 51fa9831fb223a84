package simtap

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

const tornEnv = "SIMTAP_TORN_WRITER"

// seqRecord is record number seq of the crash test: its first 8 bytes say
// seq, the rest is derived from it; sizes vary and include odd ones.
func seqRecord(seq int) []byte {
	n := 8 + (seq*7919)%150000
	b := rec(7, seq, n)
	binary.LittleEndian.PutUint64(b, uint64(seq))
	return b
}

// TestTornWriterHelper is the writer process of TestKilledWriter: it runs
// only when re-executed with the environment variable set, appends
// records (a tape mark after every 16th) to the cartridge named there
// until it is killed, and syncs now and then so the index file covers part
// of the image.
func TestTornWriterHelper(t *testing.T) {
	path := os.Getenv(tornEnv)
	if path == "" {
		t.Skip("helper process only")
	}
	c, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	seq := int(c.Len() - c.Files())
	_ = c.Locate(c.Len())
	for i := 0; ; i++ {
		if err := c.WriteRecord(seqRecord(seq)); err != nil {
			t.Fatal(err)
		}
		seq++
		if seq%16 == 0 {
			if err := c.WriteMark(); err != nil {
				t.Fatal(err)
			}
		}
		if i%40 == 39 {
			if err := c.Sync(); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestKilledWriter kills a process writing a cartridge with SIGKILL, three
// times, and checks that the cartridge opens with every whole record
// intact and in order and nothing else.
func TestKilledWriter(t *testing.T) {
	c, path := newCart(t)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	for round := 0; round < 3; round++ {
		before, _ := os.Stat(path)
		cmd := exec.Command(os.Args[0], "-test.run=^TestTornWriterHelper$")
		cmd.Env = append(os.Environ(), tornEnv+"="+path)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(20 * time.Second)
		for {
			st, err := os.Stat(path)
			if err == nil && st.Size() > before.Size()+8<<20 {
				break
			}
			if time.Now().After(deadline) {
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
				t.Fatalf("writer made no progress: %s", stderr.String())
			}
			time.Sleep(5 * time.Millisecond)
		}
		time.Sleep(time.Duration(round*3) * time.Millisecond)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		err := cmd.Wait()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Fatalf("writer ended otherwise: %v %s", err, stderr.String())
		}
		c, err := Open(path, nil)
		if err != nil {
			t.Fatalf("round %d: open after kill: %v", round, err)
		}
		seq := 0
		buf := make([]byte, 200000)
		for {
			n, err := c.ReadRecord(buf)
			if errors.Is(err, ErrEndOfData) {
				break
			}
			if errors.Is(err, ErrTapeMark) {
				if seq%16 != 0 {
					t.Fatalf("round %d: tape mark after record %d", round, seq)
				}
				continue
			}
			if err != nil {
				t.Fatalf("round %d: record %d: %v", round, seq, err)
			}
			if !bytes.Equal(buf[:n], seqRecord(seq)) {
				t.Fatalf("round %d: record %d differs", round, seq)
			}
			seq++
		}
		if seq < 16 {
			t.Fatalf("round %d: only %d records survived", round, seq)
		}
		t.Logf("round %d: %d records intact, %d torn bytes cut", round, seq, c.Repaired())
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

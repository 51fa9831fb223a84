package simtap

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/tapestry-ndmp/tapestry/internal/testutil"
)

const (
	tornEnv       = "SIMTAP_TORN_WRITER"
	tornRewindEnv = "SIMTAP_TORN_REWIND"
)

// seqRecord is record number seq of the crash test: its first 8 bytes say
// seq, the rest is derived from it and from gen (the round of writing that
// made it); sizes vary and include odd ones, and do not depend on gen, so
// that a rewritten tape puts records of the same sizes at the same offsets
// as the tape it replaces.
func seqRecord(gen, seq int) []byte {
	n := 8 + (seq*7919)%150000
	b := rec(7+gen, seq, n)
	binary.LittleEndian.PutUint64(b, uint64(seq))
	return b
}

// TestTornWriterHelper is the writer process of TestKilledWriter: it runs
// only when re-executed with the environment variable set, appends
// records (a tape mark after every 16th) to the cartridge named there
// until it is killed, and syncs now and then so the index file covers part
// of the image. With SIMTAP_TORN_REWIND=N it rewinds first and writes
// records of generation N over the tape from its beginning.
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
	gen := 0
	if g := os.Getenv(tornRewindEnv); g != "" {
		gen = int(g[0] - '0')
		seq = 0
		_ = c.Rewind()
	}
	for i := 0; ; i++ {
		if err := c.WriteRecord(seqRecord(gen, seq)); err != nil {
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
// times appending and then twice rewriting the tape from its beginning
// (records of the same sizes at the same offsets as the old ones, issue 5:
// the image is replaced, not cut), and checks that the cartridge opens
// with every whole record of the last writer intact and in order and
// nothing else: no torn record, no record of the tape it overwrote.
func TestKilledWriter(t *testing.T) {
	c, path := newCart(t)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	for round := 0; round < 5; round++ {
		gen := max(0, round-2)
		before, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(os.Args[0], "-test.run=^TestTornWriterHelper$")
		cmd.Env = append(os.Environ(), tornEnv+"="+path)
		if gen > 0 {
			cmd.Env = append(cmd.Env, fmt.Sprintf("%s=%d", tornRewindEnv, gen))
		}
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(testutil.HangGuard)
		for {
			// An append grows the image; a rewrite puts a new image in
			// its place and grows that.
			st, err := os.Stat(path)
			if err == nil && gen == 0 && st.Size() > before.Size()+8<<20 {
				break
			}
			if err == nil && gen > 0 && !os.SameFile(st, before) && st.Size() > 8<<20 {
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
		err = cmd.Wait()
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
			if !bytes.Equal(buf[:n], seqRecord(gen, seq)) {
				t.Fatalf("round %d: record %d differs", round, seq)
			}
			seq++
		}
		if seq < 16 {
			t.Fatalf("round %d: only %d records survived", round, seq)
		}
		t.Logf("round %d: %d records intact, %d torn bytes cut", round, seq, c.Repaired())
		if _, err := os.Stat(path + ".new"); err == nil {
			t.Fatalf("round %d: replacement image left behind", round)
		}
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

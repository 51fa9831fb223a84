package filedump

import (
	"bufio"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/tapestry-ndmp/tapestry/format/dump"
)

// Stage 3 of a restore of many small files is mostly system calls: create,
// write, set the times, close. The goroutine reading the image reads each
// small regular file (data and the xattr records after it) into a job and
// hands it to one of a few file workers, which create and finish it; so
// decoding and file creation overlap and files are created on every CPU.
// Every job of an inode goes to the same worker (by inode number), hard
// links are made by the worker that creates the inode, and the reading
// goroutine waits for all jobs before anything that depends on the files
// (NT ACL records of files, directory attributes in stage 4).

// smallFileMax is the largest regular file the workers create; larger
// files are written by the reading goroutine as their records are read.
const smallFileMax = 64 << 10

// Jobs go to a worker in batches of jobBatch (one wake-up of the worker
// per batch, not per file); queueBatches batches wait in each worker's
// queue. With the batch a worker holds and the one being filled, at most
// workers*(queueBatches+2)*jobBatch+1 jobs exist, each at most
// smallFileMax bytes of data.
const (
	jobBatch     = 8
	queueBatches = 2
)

// maxFileWorkers bounds the workers whatever GOMAXPROCS says.
const maxFileWorkers = 4

// dataRun is a run of contiguous data of a file in a job's buffer.
type dataRun struct {
	off        int64 // offset in the file
	start, len int   // bytes of the job's buffer
}

// fileJob is a small regular file read from the image, to be created.
type fileJob struct {
	paths []string
	buf   []byte
	runs  []dataRun
	end   int64 // end offset of the data (holes excluded)
}

// read reads the current entry's data records into the job; holes are
// left out.
func (j *fileJob) read(r *dump.Reader) error {
	j.buf, j.runs, j.end = j.buf[:0], j.runs[:0], 0
	for {
		off, data, hole, err := r.ReadChunk()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if hole {
			continue
		}
		if k := len(j.runs) - 1; k >= 0 && j.runs[k].off+int64(j.runs[k].len) == off {
			j.runs[k].len += len(data)
		} else {
			j.runs = append(j.runs, dataRun{off: off, start: len(j.buf), len: len(data)})
		}
		j.buf = append(j.buf, data...)
		j.end = max(j.end, off+int64(len(data)))
	}
}

// creds is what decides the owner and mode of the files this process
// creates.
type creds struct {
	uid, gid uint32
	umask    int // -1 when unknown
}

// currentCreds returns the effective user and group and the umask (read
// from /proc, which does not change it, unlike umask(2)).
func currentCreds() creds {
	c := creds{uid: uint32(unix.Geteuid()), gid: uint32(unix.Getegid()), umask: -1}
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return c
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "Umask:"); ok {
			if m, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32); err == nil && m <= 0o777 {
				c.umask = int(m)
			}
			break
		}
	}
	return c
}

// ownerMode says which attributes a new file already has as created.
type ownerMode struct {
	owner bool // its owner and group are the image's
	mode  bool // its mode is the image's
}

// fileWorkers are the goroutines that create small files during stage 3.
type fileWorkers struct {
	rs      *restorer
	queues  []chan []*pending
	batches [][]*pending // the batch being filled for each worker
	free    chan *fileJob
	wg      sync.WaitGroup // running workers
	busy    sync.WaitGroup // jobs submitted and not finished
	queued  int64          // jobs submitted (for progress)
}

// fileWorkerCount returns how many file workers a restore starts.
func fileWorkerCount() int {
	return max(1, min(runtime.GOMAXPROCS(0), maxFileWorkers))
}

// startWorkers starts n file workers, each with its own view of the
// destination (its own cached parent directory).
func (rs *restorer) startWorkers(n int) *fileWorkers {
	w := &fileWorkers{rs: rs, free: make(chan *fileJob, n*(queueBatches+2)*jobBatch+1)}
	for i := 0; i < cap(w.free); i++ {
		w.free <- &fileJob{}
	}
	for i := 0; i < n; i++ {
		q := make(chan []*pending, queueBatches)
		w.queues = append(w.queues, q)
		w.batches = append(w.batches, make([]*pending, 0, jobBatch))
		fs := rs.fs.clone()
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			defer fs.Close()
			for batch := range q {
				for _, p := range batch {
					// A cancelled restore only empties the queue.
					if rs.ctx.Err() == nil {
						rs.createSmall(fs, p)
					}
					w.put(p.job)
					p.job = nil
					w.busy.Done()
				}
			}
		}()
	}
	return w
}

// flush sends the batches being filled to their workers.
func (w *fileWorkers) flush() {
	for i, b := range w.batches {
		if len(b) > 0 {
			w.queues[i] <- b
			w.batches[i] = make([]*pending, 0, jobBatch)
		}
	}
}

// job returns a free job, waiting for one when all are in use.
func (w *fileWorkers) job() *fileJob { return <-w.free }

// put gives back a job.
func (w *fileWorkers) put(j *fileJob) {
	j.paths = nil
	w.free <- j
}

// submit queues p (whose job is read) for its worker.
func (w *fileWorkers) submit(p *pending) {
	w.busy.Add(1)
	w.queued++
	i := p.m.in.Ino % uint32(len(w.queues))
	w.batches[i] = append(w.batches[i], p)
	if len(w.batches[i]) == jobBatch {
		w.queues[i] <- w.batches[i]
		w.batches[i] = make([]*pending, 0, jobBatch)
	}
	if rs := w.rs; rs.req.Progress != nil && w.queued%1000 == 0 {
		rs.mu.Lock()
		n := rs.res.Files
		rs.mu.Unlock()
		rs.req.Progress(Progress{Phase: PhaseFiles, Files: n})
	}
}

// wait returns once every submitted job is finished.
func (w *fileWorkers) wait() {
	w.flush()
	w.busy.Wait()
}

// stop finishes the queued jobs (skipping them when the restore is
// cancelled) and ends the workers.
func (w *fileWorkers) stop() {
	w.flush()
	for _, q := range w.queues {
		close(q)
	}
	w.wg.Wait()
}

// stopWorkers ends the file workers, if any; restore state is then touched
// by the calling goroutine only.
func (rs *restorer) stopWorkers() {
	if rs.workers != nil {
		rs.workers.stop()
		rs.workers = nil
	}
}

// createSmall creates the small regular file of p's job through fs (a
// worker's view of the destination), writes its data, sets its attributes
// and makes its other names. The permission bits are given at the create,
// and the owner left as created, when the kernel gives the new file
// exactly the image's: no xattrs to set, no set-ID or sticky bit, a
// process umask that keeps the bits and no default ACL on the directory,
// and owner and group those of the process and of the directory.
func (rs *restorer) createSmall(fs *destFS, p *pending) {
	j := p.job
	in := &p.m.in
	var skip ownerMode
	perm := uint32(0o600)
	pfd, _, err := fs.parent(j.paths[0])
	if err == nil && len(rs.attrsOf(p)) == 0 {
		var pi *parentInfo
		if pi, err = fs.info(pfd); err == nil {
			c := rs.creds
			skip.owner = in.UID == c.uid && in.GID == c.gid && pi.gid == c.gid
			mode := in.Mode & 0o7777
			if mode&0o7000 == 0 && c.umask >= 0 && !pi.defACL && mode&^uint32(c.umask) == mode {
				skip.mode, perm = true, mode
			}
		}
	}
	fd := -1
	if err == nil {
		fd, _, err = fs.create(j.paths[0], perm)
	}
	if err == nil {
		for _, run := range j.runs {
			if _, err = fdWriter(fd).WriteAt(j.buf[run.start:run.start+run.len], run.off); err != nil {
				break
			}
		}
		if err == nil && j.end != in.Size {
			if err2 := unix.Ftruncate(fd, in.Size); err2 != nil {
				// No file of the wrong size is left behind (D14).
				err = ErrorTruncationFailed(in.Ino, err2)
				unix.Close(fd)
				fd = -1
				_ = fs.remove(j.paths[0])
			}
		}
		if err != nil && fd >= 0 {
			unix.Close(fd)
			err = rs.dropPartial(fs, j.paths[0], err)
		}
	}
	if err != nil {
		rs.lose(j.paths[0])
		rs.nameResult(j.paths[0], in.Ino, err)
		return
	}
	p.fd = fd
	rs.nameResult(j.paths[0], in.Ino, nil)
	rs.setAttrs(fs, p, &skip)
	for _, lp := range j.paths[1:] {
		rs.nameResult(lp, in.Ino, fs.link(j.paths[0], lp))
	}
	rs.fileDone()
}

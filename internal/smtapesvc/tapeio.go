package smtapesvc

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/tapestry-ndmp/tapestry/format/smtape"
	"github.com/tapestry-ndmp/tapestry/internal/tape"
)

// errLoadTape is the spec's message when the next tape cannot be used.
var errLoadTape = &smtape.Error{Message: "Failed to load new tape"}

// maxRecord is the largest record SMTape writes (S6); reads use it so that
// any block size reads back.
const maxRecord = 256 << 10

// sink writes an image to tape in records of the session's block size. At
// the early warning it finishes the chunk in progress past it, then, when
// the image writer asks between chunks (NextTape), closes the tape and
// waits for the next one (smtape.TapeChanger).
type sink struct {
	ctx  context.Context
	s    *session
	tape *tape.Registry
	dh   *tape.DriveHandle
	rec  []byte
	size int
	full bool
}

func (k *sink) Write(p []byte) (int, error) {
	done := 0
	for done < len(p) {
		n := copy(k.rec[len(k.rec):k.size], p[done:])
		k.rec = k.rec[:len(k.rec)+n]
		done += n
		if len(k.rec) == k.size {
			if err := k.flush(); err != nil {
				return done, err
			}
		}
	}
	return done, nil
}

// flush writes the record buffered; at the early warning the record is
// written again past it and the tape is full.
func (k *sink) flush() error {
	if len(k.rec) == 0 {
		return nil
	}
	_, err := k.dh.Write(k.rec)
	if errors.Is(err, tape.ErrEOM) {
		k.full = true
		_, err = k.dh.Write(k.rec)
	}
	if err != nil {
		return fmt.Errorf("write tape %s: %w", k.dh.Name(), err)
	}
	n := int64(len(k.rec))
	k.s.update(func(i *Session) { i.Progress += n })
	k.rec = k.rec[:0]
	return nil
}

// NextTape changes tape when the current one is full.
func (k *sink) NextTape() (io.Writer, error) {
	if !k.full {
		return nil, nil
	}
	if err := k.close(); err != nil {
		return nil, err
	}
	dev, err := k.s.waitContinue(k.ctx)
	if err != nil {
		return nil, err
	}
	if k.dh, err = k.tape.OpenDrive(k.ctx, tapeSession(k.s.info.ID), dev, tape.ReadWriteMode); err != nil {
		return nil, fmt.Errorf("%w: %w", errLoadTape, err)
	}
	k.full = false
	return k, nil
}

// close writes the last record and closes the drive (which writes the
// file mark).
func (k *sink) close() error {
	err := k.flush()
	if cerr := k.dh.Close(); err == nil {
		err = cerr
	}
	return err
}

// source reads an image from tape records; the file mark at the end of a
// tape is the end of its data, where the image reader asks for the next
// tape (NextTape).
type source struct {
	ctx  context.Context
	s    *session
	tape *tape.Registry
	dh   *tape.DriveHandle
	buf  []byte
	rest []byte
	eof  bool
}

func (r *source) Read(p []byte) (int, error) {
	for len(r.rest) == 0 {
		if r.eof {
			return 0, io.EOF
		}
		n, err := r.dh.Read(r.buf)
		if errors.Is(err, tape.ErrEOF) || errors.Is(err, tape.ErrEOM) {
			r.eof = true
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("read tape %s: %w", r.dh.Name(), err)
		}
		r.rest = r.buf[:n]
		nn := int64(n)
		r.s.update(func(i *Session) { i.Progress += nn })
	}
	n := copy(p, r.rest)
	r.rest = r.rest[n:]
	return n, nil
}

// NextTape closes the tape read and opens the next one.
func (r *source) NextTape() (io.Reader, error) {
	if err := r.dh.Close(); err != nil {
		return nil, err
	}
	dev, err := r.s.waitContinue(r.ctx)
	if err != nil {
		return nil, err
	}
	if r.dh, err = r.tape.OpenDrive(r.ctx, tapeSession(r.s.info.ID), dev, tape.ReadMode); err != nil {
		return nil, fmt.Errorf("%w: %w", errLoadTape, err)
	}
	r.rest, r.eof = nil, false
	return r, nil
}

package volimage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	"github.com/tapestry-ndmp/tapestry/format/smtape"
	"github.com/tapestry-ndmp/tapestry/internal/storage/snapshot"
)

// Source is one snapshot an image carries: its description and the
// directory its tree is in.
type Source struct {
	Snapshot smtape.Snapshot
	Dir      string
	// IDs maps the snapshot's inode numbers to the live volume's; nil when
	// they are the same (btrfs).
	IDs snapshot.IdentityMap
}

// WriteImage writes an image of sources (oldest first) to w under hdr.
// base, when not nil, is the snapshot an incremental image starts from:
// it is read, not written, and the first source is written as what changed
// since it.
func WriteImage(ctx context.Context, w io.Writer, hdr *smtape.Header, base *Source, sources []Source) (Stats, error) {
	var stats Stats
	hdr.Snapshots = nil
	for _, s := range sources {
		hdr.Snapshots = append(hdr.Snapshots, s.Snapshot)
	}
	zw, err := smtape.NewWriter(w, hdr)
	if err != nil {
		return stats, err
	}
	sc := &scanner{ctx: ctx, stats: &stats, pieces: map[pieceKey]uint64{}, encPieces: map[encKey]uint64{}}
	if base != nil {
		sc.w, sc.ids, sc.dry = discard{}, base.IDs, true
		if err := sc.scanSnapshot(base.Dir, base.Snapshot); err != nil {
			return stats, fmt.Errorf("read base snapshot %s: %w", base.Snapshot.Name, err)
		}
		stats = Stats{}
		sc.pieces, sc.encPieces = map[pieceKey]uint64{}, map[encKey]uint64{}
	}
	sc.w, sc.dry = zw, false
	for _, s := range sources {
		sc.ids = s.IDs
		if err := sc.scanSnapshot(s.Dir, s.Snapshot); err != nil {
			return stats, fmt.Errorf("snapshot %s: %w", s.Snapshot.Name, err)
		}
	}
	return stats, zw.Close()
}

// RestoreOptions are the choices of RestoreImage.
type RestoreOptions struct {
	// State is the state of the restores the image continues; nil for a
	// volume restored from nothing yet. A baseline starts afresh.
	State *State
	// Prepare, when set, is called with the checked header before anything
	// is written (a baseline's caller empties the volume there).
	Prepare func(*smtape.Header) error
	// MakeSnapshot, when set, is called as each snapshot of the image ends.
	MakeSnapshot func(name string, created time.Time) error
	// NextTape, when set, is called when the image's data ends between two
	// chunks before the end chunk: it returns the reader of the next tape
	// (whose header is checked: Tapes out of order, Mismatch in backup set
	// ID, ...).
	NextTape func() (io.Reader, error)
}

// RestoreImage applies the image read from r to the tree at dir and
// returns the image's header and the state for the next incremental.
func RestoreImage(ctx context.Context, r io.Reader, dir string, o RestoreOptions) (*smtape.Header, *State, RestoreStats, error) {
	rd, err := smtape.NewReader(r)
	if err != nil {
		return nil, nil, RestoreStats{}, err
	}
	hdr := rd.Header()
	if err := checkChain(hdr, o.State); err != nil {
		return hdr, nil, RestoreStats{}, err
	}
	st := o.State
	if hdr.Mode == smtape.Baseline || st == nil {
		st = newState()
	}
	if o.Prepare != nil {
		if err := o.Prepare(hdr); err != nil {
			return hdr, nil, RestoreStats{}, err
		}
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return hdr, nil, RestoreStats{}, err
	}
	defer root.Close()
	if o.MakeSnapshot != nil {
		// The snapshots go into .snapshot: make it before the root gets its
		// times, or making it would change them.
		if err := root.Mkdir(snapshot.Dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return hdr, nil, RestoreStats{}, err
		}
	}
	rs := &restorer{ctx: ctx, root: root, st: st, extLoc: map[uint64]extLoc{}, makeSnapshot: o.MakeSnapshot, nextTape: o.NextTape}
	if err := rs.apply(rd); err != nil {
		return hdr, nil, rs.stats, err
	}
	st.SetID, st.Time, st.Sequence = hdr.SetID, hdr.Time, hdr.Sequence
	return hdr, st, rs.stats, nil
}

// checkChain refuses an image that does not continue the restored ones: a
// baseline onto a restored volume is allowed (it starts again); an
// incremental or differential needs its baseline's set and its base time.
func checkChain(hdr *smtape.Header, st *State) error {
	if hdr.Mode == smtape.Baseline {
		return nil
	}
	if st == nil {
		return &smtape.Error{Message: "Mismatch in backup set ID", Detail: "an incremental image needs its baseline restored first"}
	}
	if hdr.SetID != st.SetID {
		return &smtape.Error{Message: "Mismatch in backup set ID", Detail: fmt.Sprintf("image of set %x, volume restored from set %x", hdr.SetID, st.SetID)}
	}
	if !hdr.BaseTime.Equal(st.Time) {
		return &smtape.Error{Message: "Mismatch in backup time stamp", Detail: fmt.Sprintf("image based on %s, volume restored to %s", hdr.BaseTime, st.Time)}
	}
	return nil
}

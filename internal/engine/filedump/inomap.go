package filedump

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/tapestry-ndmp/tapestry/internal/catalog"
)

// InodeMapPrefix is the catalog key prefix of the per-volume maps from live
// inode numbers to dump inode numbers.
const InodeMapPrefix = "dump/inomap/"

// firstDumpIno is the first dump inode number given to a file; 2 is the
// root of every image and 1 is unused, as in Linux dump.
const firstDumpIno = 3

// maxDumpIno is the largest dump inode number (below 2^32).
const maxDumpIno = 1<<32 - 2

// InodeMap assigns compact dump inode numbers to live inode numbers and
// keeps them, so the same file has the same dump inode at every level.
// Each entry also holds a fingerprint of the file (its type, and its birth
// time where the source has a stable one): a live inode number that the
// file system gave to a new file gets a new dump inode. Its methods are safe
// for concurrent use: backups of one volume that run at the same time share
// one map (InodeMaps), so that a file gets one number whichever backup
// meets it first.
type InodeMap struct {
	mu    sync.Mutex
	m     map[uint64]mapEntry
	next  uint32
	dirty bool
}

type mapEntry struct {
	dump uint32
	fp   uint64
}

// NewInodeMap returns an empty map.
func NewInodeMap() *InodeMap { return &InodeMap{m: make(map[uint64]mapEntry), next: firstDumpIno} }

// Get returns the dump inode of live inode live with fingerprint fp,
// assigning the next free number when it has none or when the fingerprint
// differs (the inode number was reused for another file).
func (im *InodeMap) Get(live, fp uint64) (uint32, error) {
	im.mu.Lock()
	defer im.mu.Unlock()
	return im.get(live, fp)
}

// get is Get with im.mu held.
func (im *InodeMap) get(live, fp uint64) (uint32, error) {
	if e, ok := im.m[live]; ok && e.fp == fp {
		return e.dump, nil
	}
	if im.next > maxDumpIno {
		return 0, errors.New("dump inode numbers exhausted (2^32)")
	}
	d := im.next
	im.next++
	im.m[live] = mapEntry{d, fp}
	im.dirty = true
	return d, nil
}

// getNew is Get that also tells whether live had that number already
// (found) rather than getting a new one.
func (im *InodeMap) getNew(live, fp uint64) (d uint32, found bool, err error) {
	im.mu.Lock()
	defer im.mu.Unlock()
	next := im.next
	d, err = im.get(live, fp)
	return d, err == nil && im.next == next, err
}

// renew gives live the next free number even though it has one: the
// quick walk found another file under the same inode number. Only a map
// that is not kept may use it.
func (im *InodeMap) renew(live, fp uint64) (uint32, error) {
	im.mu.Lock()
	defer im.mu.Unlock()
	delete(im.m, live)
	return im.get(live, fp)
}

// Len returns the number of files mapped.
func (im *InodeMap) Len() int {
	im.mu.Lock()
	defer im.mu.Unlock()
	return len(im.m)
}

const mapEntrySize = 20

// MarshalBinary encodes the map: u32 next, then {u64 live, u32 dump, u64
// fingerprint} entries.
func (im *InodeMap) MarshalBinary() ([]byte, error) {
	im.mu.Lock()
	defer im.mu.Unlock()
	return im.marshal(), nil
}

// marshal is MarshalBinary with im.mu held.
func (im *InodeMap) marshal() []byte {
	b := make([]byte, 4, 4+mapEntrySize*len(im.m))
	binary.LittleEndian.PutUint32(b, im.next)
	for l, e := range im.m {
		b = binary.LittleEndian.AppendUint64(b, l)
		b = binary.LittleEndian.AppendUint32(b, e.dump)
		b = binary.LittleEndian.AppendUint64(b, e.fp)
	}
	return b
}

// UnmarshalBinary decodes a map written by MarshalBinary.
func (im *InodeMap) UnmarshalBinary(b []byte) error {
	im.mu.Lock()
	defer im.mu.Unlock()
	if len(b) < 4 || (len(b)-4)%mapEntrySize != 0 {
		return errors.New("inode map: bad length")
	}
	im.next = binary.LittleEndian.Uint32(b)
	if im.next < firstDumpIno {
		return errors.New("inode map: bad next number")
	}
	im.m = make(map[uint64]mapEntry, (len(b)-4)/mapEntrySize)
	for p := b[4:]; len(p) > 0; p = p[mapEntrySize:] {
		d := binary.LittleEndian.Uint32(p[8:])
		if d < firstDumpIno || d >= im.next {
			return fmt.Errorf("inode map: dump inode %d out of range", d)
		}
		im.m[binary.LittleEndian.Uint64(p)] = mapEntry{d, binary.LittleEndian.Uint64(p[12:])}
	}
	return nil
}

// inodeMapKey is the catalog key of a volume's inode map (volume is its id,
// "svm/volume@uuid", one part of the key).
func inodeMapKey(volume string) string { return catalog.Key("dump", "inomap", volume) }

func loadInodeMap(ctx context.Context, st catalog.Store, volume string) (*InodeMap, error) {
	im := NewInodeMap()
	if st == nil {
		return im, nil
	}
	err := st.View(ctx, func(tx catalog.Tx) error {
		b, err := tx.Get(inodeMapKey(volume))
		if errors.Is(err, catalog.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		return im.UnmarshalBinary(b)
	})
	if err != nil {
		return nil, fmt.Errorf("load inode map of %s: %w", volume, err)
	}
	return im, nil
}

// saveInodeMap writes im to the catalog when it has numbers the catalog
// does not have yet. A map shared by concurrent backups holds the numbers
// of all of them, so whichever saves last keeps every assignment.
func saveInodeMap(ctx context.Context, st catalog.Store, volume string, im *InodeMap) error {
	if st == nil {
		return nil
	}
	im.mu.Lock()
	if !im.dirty {
		im.mu.Unlock()
		return nil
	}
	b := im.marshal()
	im.dirty = false
	im.mu.Unlock()
	if err := st.Update(ctx, func(tx catalog.Tx) error { return tx.Put(inodeMapKey(volume), b) }); err != nil {
		im.mu.Lock()
		im.dirty = true
		im.mu.Unlock()
		return fmt.Errorf("save inode map of %s: %w", volume, err)
	}
	return nil
}

// InodeMaps shares the inode map of a volume between the backups of that
// volume that run at the same time (issue 11): a subtree or qtree backup
// and a whole-volume backup each loading the map, numbering files and
// saving it would each drop the other's numbers, and a later incremental
// would then give a file a number its base image gave to another. The
// first backup of a volume loads its map; the others use the same one
// until the last of them ends. Share one InodeMaps per catalog (one per
// node); the zero value is ready to use.
type InodeMaps struct {
	mu   sync.Mutex
	maps map[string]*sharedInodeMap
}

type sharedInodeMap struct {
	im   *InodeMap
	refs int
}

// acquire returns the map of volume, loading it when no backup of the
// volume holds it; release gives it back.
func (ms *InodeMaps) acquire(ctx context.Context, st catalog.Store, volume string) (im *InodeMap, release func(), err error) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	if s, ok := ms.maps[volume]; ok {
		s.refs++
		return s.im, func() { ms.release(volume) }, nil
	}
	if im, err = loadInodeMap(ctx, st, volume); err != nil {
		return nil, nil, err
	}
	if ms.maps == nil {
		ms.maps = map[string]*sharedInodeMap{}
	}
	ms.maps[volume] = &sharedInodeMap{im: im, refs: 1}
	return im, func() { ms.release(volume) }, nil
}

func (ms *InodeMaps) release(volume string) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	if s := ms.maps[volume]; s != nil {
		if s.refs--; s.refs == 0 {
			delete(ms.maps, volume)
		}
	}
}

package daemon

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/tapestry-ndmp/tapestry/internal/admin"
	"github.com/tapestry-ndmp/tapestry/internal/catalog"
	"github.com/tapestry-ndmp/tapestry/internal/storage"
	"github.com/tapestry-ndmp/tapestry/internal/tape"
	"github.com/tapestry-ndmp/tapestry/internal/tape/vtl"
)

// VTLsDir holds the extra virtual libraries made with storage tape vtl
// create, one directory per library: DIR/vtls/<name>.
const VTLsDir = "vtls"

// DefaultVTLAdapter is the host adapter of the default virtual library;
// extra libraries get 1a, 2a, ... in the order they are created.
const DefaultVTLAdapter = "0a"

// vtlRecord is an extra library's catalog entry
// (tape/vtl/<node>/<name>). The adapter is kept so that the library's
// devices come back on the same physical path names, and so under the
// same aliases, after a restart.
type vtlRecord struct {
	Name    string `json:"name"`
	Adapter string `json:"adapter"`
}

func vtlKey(node, name string) string {
	return catalog.Key("tape", "vtl", node, name)
}

func vtlPrefix(node string) string { return catalog.Prefix("tape", "vtl", node) }

// extraVTL is an open extra library.
type extraVTL struct {
	rec vtlRecord
	lib *vtl.Library
}

// vtlSet is the daemon's admin.VTLManager: it opens, attaches, detaches
// and closes the extra virtual libraries (T9).
type vtlSet struct {
	d    *Daemon
	mu   sync.Mutex
	libs map[string]*extraVTL
}

var _ admin.VTLManager = (*vtlSet)(nil)

func (s *vtlSet) dir(name string) string {
	return filepath.Join(s.d.opts.DataDir, VTLsDir, name)
}

// attachments lists the registry attachments of a library on adapter:
// its changer at device id 0, drive i at i+1.
func vtlAttachments(adapter string, lib *vtl.Library) []tape.Attachment {
	as := []tape.Attachment{{Kind: tape.KindChanger, Path: adapter + ".0", Serial: lib.Serial(),
		Vendor: tape.VTLVendor, Product: tape.VTLChangerProduct, Changer: tape.NewVTLChanger(lib)}}
	for _, dr := range lib.Drives() {
		as = append(as, tape.Attachment{Kind: tape.KindDrive, Path: adapter + "." + strconv.Itoa(dr.Index()+1),
			Serial: dr.Serial(), Vendor: tape.VTLVendor, Product: tape.VTLDriveProduct, Drive: tape.NewVTLDrive(dr)})
	}
	return as
}

// attach adds a library's devices to the registry, all or none.
func (s *vtlSet) attach(ctx context.Context, adapter string, lib *vtl.Library) error {
	var done []string
	for _, a := range vtlAttachments(adapter, lib) {
		if _, err := s.d.tapes.Add(ctx, a); err != nil {
			for _, p := range slices.Backward(done) {
				if rerr := s.d.tapes.Remove(ctx, p); rerr != nil {
					s.d.log.Warn("undo attach of virtual library", "path", p, "err", rerr)
				}
			}
			return fmt.Errorf("attach virtual tape library %s: %w", lib.Dir(), err)
		}
		done = append(done, a.Path)
	}
	return nil
}

// detach removes a library's devices from the registry, all or none: a
// path that cannot be removed (a drive opened meanwhile) puts the removed
// ones back.
func (s *vtlSet) detach(ctx context.Context, e *extraVTL) error {
	as := vtlAttachments(e.rec.Adapter, e.lib)
	for i, a := range as {
		if err := s.d.tapes.Remove(ctx, a.Path); err != nil {
			for _, b := range as[:i] {
				if _, aerr := s.d.tapes.Add(ctx, b); aerr != nil {
					s.d.log.Warn("undo detach of virtual library", "path", b.Path, "err", aerr)
				}
			}
			return err
		}
	}
	return nil
}

// open reopens the libraries recorded in the catalog (daemon start). A
// library that cannot be opened is logged and left out, so that one broken
// library does not keep the node from starting.
func (s *vtlSet) open(ctx context.Context) error {
	recs, err := s.records(ctx)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, rec := range recs {
		lib, err := vtl.Open(s.dir(rec.Name))
		if err != nil {
			s.d.log.Error("cannot reopen virtual tape library", "name", rec.Name, "err", err)
			continue
		}
		if err := s.attach(ctx, rec.Adapter, lib); err != nil {
			s.d.log.Error("cannot reattach virtual tape library", "name", rec.Name, "err", err)
			_ = lib.Close()
			continue
		}
		s.libs[rec.Name] = &extraVTL{rec: rec, lib: lib}
	}
	return nil
}

// records reads the extra libraries' catalog entries.
func (s *vtlSet) records(ctx context.Context) ([]vtlRecord, error) {
	var recs []vtlRecord
	err := s.d.store.View(ctx, func(tx catalog.Tx) error {
		var err error
		recs, err = catalog.ListJSON[vtlRecord](tx, vtlPrefix(s.d.node))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read virtual tape libraries: %w", err)
	}
	return recs, nil
}

// close closes every open extra library (daemon stop).
func (s *vtlSet) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for name, e := range s.libs {
		if err := e.lib.Close(); err != nil {
			s.d.log.Warn("close virtual tape library", "name", name, "err", err)
		}
		delete(s.libs, name)
	}
}

// freeAdapter returns the lowest adapter Na (N >= 1) no library uses.
func (s *vtlSet) freeAdapter(recs []vtlRecord) string {
	for n := 1; ; n++ {
		a := strconv.Itoa(n) + "a"
		if !slices.ContainsFunc(recs, func(r vtlRecord) bool { return r.Adapter == a }) {
			return a
		}
	}
}

// CreateVTL implements admin.VTLManager: it makes the library in
// DIR/vtls/<name> with its blank cartridges in the first storage slots
// (the first ones loaded into the drives), attaches its devices and
// records it in the catalog.
func (s *vtlSet) CreateVTL(ctx context.Context, c admin.VTLCreate) (out admin.VTLLibrary, err error) {
	if err := admin.CheckVTLCreate(c); err != nil {
		return out, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	recs, err := s.records(ctx)
	if err != nil {
		return out, err
	}
	if slices.ContainsFunc(recs, func(r vtlRecord) bool { return r.Name == c.Name }) {
		return out, &storage.Error{Kind: storage.ErrExists, Msg: fmt.Sprintf("virtual tape library %q already exists", c.Name)}
	}
	if err := s.checkLimits(ctx, c); err != nil {
		return out, err
	}
	rec := vtlRecord{Name: c.Name, Adapter: s.freeAdapter(recs)}
	dir := s.dir(c.Name)
	// A directory without a catalog entry is left from a create or
	// delete that did not finish: nothing refers to it.
	if err := os.RemoveAll(dir); err != nil {
		return out, fmt.Errorf("remove leftover %s: %w", dir, err)
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
		return out, fmt.Errorf("create %s: %w", filepath.Dir(dir), err)
	}
	lib, err := vtl.Create(dir, vtl.Config{Drives: c.Drives, Slots: c.Slots, IESlots: c.IESlots, Capacity: c.Capacity})
	if err != nil {
		return out, err
	}
	undo := func() {
		_ = lib.Close()
		_ = os.RemoveAll(dir)
	}
	if err := fillVTL(lib, c); err != nil {
		undo()
		return out, err
	}
	if err := s.attach(ctx, rec.Adapter, lib); err != nil {
		undo()
		return out, err
	}
	e := &extraVTL{rec: rec, lib: lib}
	err = s.d.store.Update(ctx, func(tx catalog.Tx) error { return catalog.PutJSON(tx, vtlKey(s.d.node, c.Name), rec) })
	if err != nil {
		if derr := s.detach(ctx, e); derr != nil {
			s.d.log.Warn("undo attach of virtual library", "name", c.Name, "err", derr)
		}
		undo()
		return out, fmt.Errorf("record virtual tape library %s: %w", c.Name, err)
	}
	s.libs[c.Name] = e
	s.d.log.Info("virtual tape library created", "name", c.Name, "adapter", rec.Adapter, "drives", c.Drives, "slots", c.Slots)
	all, err := s.d.tapes.Devices(ctx)
	if err != nil {
		return out, err
	}
	return view(s.d.node, e, all), nil
}

// checkLimits refuses a library that would take the node past its drive
// or media changer limit (T5) before anything is made, so that no device
// of it gets an alias.
func (s *vtlSet) checkLimits(ctx context.Context, c admin.VTLCreate) error {
	devs, err := s.d.tapes.Devices(ctx)
	if err != nil {
		return err
	}
	drives, changers := 0, 0
	for _, d := range devs {
		switch d.Kind {
		case tape.KindDrive:
			drives++
		case tape.KindChanger:
			changers++
		}
	}
	switch {
	case drives+c.Drives > tape.MaxDrives:
		return &storage.Error{Kind: storage.ErrLimit, Msg: fmt.Sprintf("cannot create virtual tape library %q: the node has %d tape drives; %d more would pass the limit of %d",
			c.Name, drives, c.Drives, tape.MaxDrives)}
	case changers+1 > tape.MaxChangers:
		return &storage.Error{Kind: storage.ErrLimit, Msg: fmt.Sprintf("cannot create virtual tape library %q: the node already has the most media changers, %d",
			c.Name, tape.MaxChangers)}
	}
	return nil
}

// fillVTL adds c.Cartridges blank cartridges NAME001, NAME002, ... to the
// first storage slots and loads the first ones into the drives.
func fillVTL(lib *vtl.Library, c admin.VTLCreate) error {
	prefix := strings.ToUpper(c.Name)
	for i := 1; i <= c.Cartridges; i++ {
		if err := lib.AddCartridge(fmt.Sprintf("%s%03d", prefix, i), 0); err != nil {
			return err
		}
	}
	for i := 0; i < c.Drives && i < c.Cartridges; i++ {
		if err := lib.Move(vtl.SlotBase+uint16(i), vtl.DriveBase+uint16(i)); err != nil {
			return err
		}
	}
	return nil
}

// DeleteVTL implements admin.VTLManager: it refuses while a drive or the
// changer of the library is open, detaches its devices (their aliases stay
// in the catalog), closes it and removes its directory and catalog entry.
func (s *vtlSet) DeleteVTL(ctx context.Context, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.libs[name]
	if !ok {
		return s.deleteBroken(ctx, name)
	}
	devs, err := s.devices(ctx, e)
	if err != nil {
		return err
	}
	for _, d := range devs {
		if d.OpenBy != "" {
			return &storage.Error{Kind: storage.ErrInUse, Msg: fmt.Sprintf("cannot delete virtual tape library %q: %s %s (%s) is open by session %s",
				name, d.Kind, d.Alias, d.Paths[0], d.OpenBy)}
		}
	}
	if err := s.detach(ctx, e); err != nil {
		return err
	}
	if err := e.lib.Close(); err != nil {
		s.d.log.Warn("close virtual tape library", "name", name, "err", err)
	}
	delete(s.libs, name)
	err = s.d.store.Update(ctx, func(tx catalog.Tx) error { return tx.Delete(vtlKey(s.d.node, name)) })
	if err != nil {
		return fmt.Errorf("delete virtual tape library %s: %w", name, err)
	}
	if err := os.RemoveAll(s.dir(name)); err != nil {
		return fmt.Errorf("delete virtual tape library %s: %w", name, err)
	}
	s.d.log.Info("virtual tape library deleted", "name", name)
	return nil
}

// deleteBroken deletes a library that is recorded in the catalog but was
// not opened at start (open logged why): it has no devices in the registry,
// so only its catalog entry and directory go. Without this its name could
// be neither created (it exists) nor deleted.
func (s *vtlSet) deleteBroken(ctx context.Context, name string) error {
	recs, err := s.records(ctx)
	if err != nil {
		return err
	}
	if !slices.ContainsFunc(recs, func(r vtlRecord) bool { return r.Name == name }) {
		return &storage.Error{Kind: storage.ErrNotFound, Msg: fmt.Sprintf("virtual tape library %q does not exist", name)}
	}
	if err := s.d.store.Update(ctx, func(tx catalog.Tx) error { return tx.Delete(vtlKey(s.d.node, name)) }); err != nil {
		return fmt.Errorf("delete virtual tape library %s: %w", name, err)
	}
	if err := os.RemoveAll(s.dir(name)); err != nil {
		return fmt.Errorf("delete virtual tape library %s: %w", name, err)
	}
	s.d.log.Info("virtual tape library deleted (it could not be opened)", "name", name)
	return nil
}

// devices returns the registry's devices of a library, changer first.
func (s *vtlSet) devices(ctx context.Context, e *extraVTL) ([]tape.Device, error) {
	all, err := s.d.tapes.Devices(ctx)
	if err != nil {
		return nil, err
	}
	return libDevices(all, e), nil
}

// libDevices picks a library's devices out of all, changer first.
func libDevices(all []tape.Device, e *extraVTL) []tape.Device {
	pre := e.rec.Adapter + "."
	var out []tape.Device
	for _, d := range all {
		if slices.ContainsFunc(d.Paths, func(p string) bool { return strings.HasPrefix(p, pre) }) {
			out = append(out, d)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Kind == tape.KindChanger && out[j].Kind != tape.KindChanger })
	return out
}

// view describes a library of node; all is the registry's device list.
func view(node string, e *extraVTL, all []tape.Device) admin.VTLLibrary {
	cfg := e.lib.Config()
	v := admin.VTLLibrary{Node: node, Name: e.rec.Name, Adapter: e.rec.Adapter, Directory: e.lib.Dir(),
		Serial: e.lib.Serial(), Drives: cfg.Drives, Slots: cfg.Slots, IESlots: cfg.IESlots,
		Cartridges: len(e.lib.Cartridges()), Capacity: cfg.Capacity, TapeDrives: []string{}}
	for _, d := range libDevices(all, e) {
		switch d.Kind {
		case tape.KindChanger:
			v.MediaChanger = d.Alias
		case tape.KindDrive:
			v.TapeDrives = append(v.TapeDrives, d.Alias)
		}
	}
	return v
}

// VTLs implements admin.VTLManager: the open extra libraries by name.
func (s *vtlSet) VTLs(ctx context.Context) ([]admin.VTLLibrary, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	names := make([]string, 0, len(s.libs))
	for n := range s.libs {
		names = append(names, n)
	}
	sort.Strings(names)
	all, err := s.d.tapes.Devices(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]admin.VTLLibrary, 0, len(names))
	for _, n := range names {
		out = append(out, view(s.d.node, s.libs[n], all))
	}
	return out, nil
}

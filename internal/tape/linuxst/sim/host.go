//go:build linux

package sim

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"github.com/tapestry-ndmp/tapestry/internal/tape/linuxst"
)

// Host is a simulated machine's SCSI tape subsystem: devices attached at
// SCSI addresses, the sysfs tree and /dev directory that describe them,
// and the system calls on their device nodes (it implements linuxst.Sys).
// Its methods are safe for concurrent use.
type Host struct {
	sys, dev string

	mu     sync.Mutex
	nextFD int
	fds    map[int]*file
	nodes  map[string]*node // device node path -> node
	paths  map[linuxst.HCTL]*Path
	nextST int
	nextSG int
	nextCH int
}

type nodeKind int

const (
	nodeST nodeKind = iota // st tape node
	nodeSG                 // SCSI generic node
	nodeCH                 // ch changer node (opens, no ioctls served)
)

type node struct {
	path   *Path
	kind   nodeKind
	rewind bool // stN: rewinds at close
}

type file struct {
	n     *node
	flags int
}

// markerFile marks a directory as a simulated host's, so that New may
// clear the trees an earlier Host left there and never touches others.
const markerFile = ".tapestry-sim"

// New returns a Host whose sysfs tree is root/sys and device nodes
// root/dev, created empty. A root holding the trees of an earlier Host is
// cleared; a root with sys or dev entries of another origin is refused.
func New(root string) (*Host, error) {
	h := &Host{sys: filepath.Join(root, "sys"), dev: filepath.Join(root, "dev"), nextFD: 1000,
		fds: map[int]*file{}, nodes: map[string]*node{}, paths: map[linuxst.HCTL]*Path{}}
	if err := h.claim(root); err != nil {
		return nil, err
	}
	for _, d := range []string{"class/scsi_tape", "class/scsi_generic", "class/scsi_changer", "bus/scsi/devices", "devices"} {
		if err := os.MkdirAll(filepath.Join(h.sys, d), 0o755); err != nil {
			return nil, fmt.Errorf("sim: %w", err)
		}
	}
	if err := os.MkdirAll(h.dev, 0o755); err != nil {
		return nil, fmt.Errorf("sim: %w", err)
	}
	return h, nil
}

func (h *Host) claim(root string) error {
	marker := filepath.Join(root, markerFile)
	if _, err := os.Stat(marker); err == nil {
		if err := errors.Join(os.RemoveAll(h.sys), os.RemoveAll(h.dev)); err != nil {
			return fmt.Errorf("sim: clear %s: %w", root, err)
		}
		return nil
	}
	for _, d := range []string{h.sys, h.dev} {
		if _, err := os.Lstat(d); err == nil {
			return fmt.Errorf("sim: %s exists and is not a simulated host's; use an empty directory", d)
		}
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return fmt.Errorf("sim: %w", err)
	}
	if err := os.WriteFile(marker, []byte("simulated tape host (package linuxst/sim)\n"), 0o644); err != nil {
		return fmt.Errorf("sim: %w", err)
	}
	return nil
}

// SysRoot is the root of the simulated sysfs tree (for /sys).
func (h *Host) SysRoot() string { return h.sys }

// DevRoot is the directory of the simulated device nodes (for /dev).
func (h *Host) DevRoot() string { return h.dev }

// NewDrive returns a drive with the identity; it is reachable once
// attached (Attach).
func (h *Host) NewDrive(id Identity) *Drive {
	return &Drive{host: h, id: id}
}

// NewChanger returns a medium changer with drives (drive element i is
// drives[i]), ieSlots import/export elements and slots storage elements.
func (h *Host) NewChanger(id Identity, drives []*Drive, ieSlots, slots int) *Changer {
	c := &Changer{host: h, id: id}
	c.elems = append(c.elems, &element{typ: elemTransport, addr: TransportAddr})
	for i, d := range drives {
		c.elems = append(c.elems, &element{typ: elemDrive, addr: DriveBase + i, drive: d})
	}
	for i := 0; i < ieSlots; i++ {
		c.elems = append(c.elems, &element{typ: elemIE, addr: IEBase + i})
	}
	for i := 0; i < slots; i++ {
		c.elems = append(c.elems, &element{typ: elemSlot, addr: SlotBase + i})
	}
	// READ ELEMENT STATUS lists elements in address order.
	for i := 1; i < len(c.elems); i++ {
		for j := i; j > 0 && c.elems[j].addr < c.elems[j-1].addr; j-- {
			c.elems[j], c.elems[j-1] = c.elems[j-1], c.elems[j]
		}
	}
	return c
}

// Path is one attachment of a device at a SCSI address.
type Path struct {
	host    *Host
	addr    linuxst.HCTL
	drive   *Drive
	changer *Changer
	failed  bool
	gone    bool
	// failIn counts the writes through the path until it fails
	// (FailAfterWrites); failWritten tells whether that last write
	// reaches the tape before the path fails.
	failIn      int
	failWritten bool
	st          stState
	// Nodes are the device node names of the path (nst0, sg3, ...).
	Nodes   []string
	created []string // sysfs and /dev entries to remove on Detach
}

// Addr returns the SCSI address of the path.
func (p *Path) Addr() linuxst.HCTL { return p.addr }

// initiator names the I_T nexus of the path for reservations.
func (p *Path) initiator() string { return "host" + strconv.Itoa(p.addr.Host) }

// Fail makes the path fail as a pulled cable does: every system call on
// its nodes fails with EIO, SG_IO with host status DID_NO_CONNECT.
func (p *Path) Fail() {
	p.host.mu.Lock()
	defer p.host.mu.Unlock()
	p.failed = true
}

// FailAfterWrites makes the path fail during the write after the next n
// writes through its st node: with written, that write reaches the tape
// before the path fails (the reply is lost), otherwise it does not.
func (p *Path) FailAfterWrites(n int, written bool) {
	p.host.mu.Lock()
	defer p.host.mu.Unlock()
	p.failIn, p.failWritten = n+1, written
}

// Restore repairs a failed path.
func (p *Path) Restore() {
	p.host.mu.Lock()
	defer p.host.mu.Unlock()
	p.failed = false
}

// AttachDrive attaches a drive at addr: its sysfs entries, the eight st
// nodes (stN, stNl, stNm, stNa and the nst ones) and an sg node.
func (h *Host) AttachDrive(d *Drive, addr linuxst.HCTL) (*Path, error) {
	return h.attach(&Path{host: h, addr: addr, drive: d}, 1, d.id)
}

// AttachChanger attaches a changer at addr: its sysfs entries, an sch
// node and an sg node.
func (h *Host) AttachChanger(c *Changer, addr linuxst.HCTL) (*Path, error) {
	return h.attach(&Path{host: h, addr: addr, changer: c}, 8, c.id)
}

func (h *Host) attach(p *Path, devType int, id Identity) (*Path, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if old := h.paths[p.addr]; old != nil && !old.gone {
		return nil, fmt.Errorf("sim: address %s already in use", p.addr)
	}
	if err := h.layout(p, devType, id); err != nil {
		return nil, err
	}
	h.paths[p.addr] = p
	if p.drive != nil {
		p.drive.paths = append(p.drive.paths, p)
	} else {
		p.changer.paths = append(p.changer.paths, p)
	}
	return p, nil
}

// Detach removes a path: its sysfs entries and device nodes disappear and
// open descriptors fail with ENXIO, as after a hot unplug.
func (h *Host) Detach(p *Path) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if p.gone {
		return errors.New("sim: path already detached")
	}
	p.gone = true
	var errs []error
	for i := len(p.created) - 1; i >= 0; i-- {
		if err := os.RemoveAll(p.created[i]); err != nil {
			errs = append(errs, err)
		}
	}
	for name, n := range h.nodes {
		if n.path == p {
			delete(h.nodes, name)
		}
	}
	return errors.Join(errs...)
}

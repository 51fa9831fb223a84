package tape

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/tapestry-ndmp/tapestry/internal/tape/vtl"
)

// vtlErrors maps the virtual library's sentinels to this package's.
var vtlErrors = [...]struct{ from, to error }{
	{vtl.ErrNotOpen, ErrNotOpen},
	{vtl.ErrBusy, ErrBusy},
	{vtl.ErrNoTape, ErrNoTape},
	{vtl.ErrWriteProtect, ErrWriteProtect},
	{vtl.ErrPermission, ErrPermission},
	{vtl.ErrEOF, ErrEOF},
	{vtl.ErrEOM, ErrEOM},
	{vtl.ErrPreempted, ErrReserved},
	{vtl.ErrIO, ErrIO},
	{vtl.ErrIllegalArgs, ErrIllegalArgs},
	{vtl.ErrNotSupported, ErrNotSupported},
}

// fromVTL turns a vtl error into an *Error wrapping the matching sentinel
// of this package, keeping the ONTAP message and the original error.
func fromVTL(op, dev string, err error) error {
	if err == nil {
		return nil
	}
	sentinel := ErrIO
	for _, m := range vtlErrors {
		if errors.Is(err, m.from) {
			sentinel = m.to
			break
		}
	}
	return &Error{Op: op, Device: dev, Err: sentinel, Msg: vtl.Message(err), Cause: err}
}

// VTLDrive adapts a drive of the virtual library to Drive. With the
// unload/reload rewind type (ur), closing returns the cartridge to its
// storage slot and loads the cartridge of the next full storage slot (the
// library's tape sequence), if there is one.
type VTLDrive struct {
	d      *vtl.Drive
	rewind Rewind
}

// NewVTLDrive returns the Drive of a virtual library drive.
func NewVTLDrive(d *vtl.Drive) *VTLDrive { return &VTLDrive{d: d} }

// Open implements Drive.
func (v *VTLDrive) Open(ctx context.Context, o OpenOptions) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c := o.Compression
	if c == 0 {
		c = Low
	}
	comp, err := vtl.CompressionForSuffix(byte(c))
	if err != nil {
		return &Error{Op: "open", Device: v.d.Serial(), Err: ErrIllegalArgs, Cause: err}
	}
	err = v.d.Open(vtl.OpenOptions{Mode: vtl.OpenMode(o.Mode), Compression: comp,
		NoRewind: o.Rewind == NoRewind, Unload: o.Rewind == UnloadReload})
	if err != nil {
		return fromVTL("open", v.d.Serial(), err)
	}
	v.rewind = o.Rewind
	return nil
}

// Close implements Drive.
func (v *VTLDrive) Close() error {
	if err := v.d.Close(); err != nil {
		return fromVTL("close", v.d.Serial(), err)
	}
	if v.rewind == UnloadReload {
		if err := v.reload(); err != nil {
			return &Error{Op: "close", Device: v.d.Serial(), Err: ErrIO, Msg: "Failed to load new tape", Cause: err}
		}
	}
	return nil
}

// reload puts the unloaded cartridge back into its slot and loads the next
// one of the sequence.
func (v *VTLDrive) reload() error {
	lib := v.d.Library()
	addr := v.d.Address()
	var src uint16
	found := false
	for _, es := range lib.Inventory() {
		if es.Type == vtl.TypeDrive && es.Addr == addr && es.Full && es.SourceValid {
			src, found = es.Source, true
		}
	}
	if !found {
		return nil
	}
	if err := lib.Move(addr, src); err != nil {
		return fmt.Errorf("return cartridge to element %#x: %w", src, err)
	}
	for _, es := range lib.Inventory() {
		if es.Type == vtl.TypeSlot && es.Addr > src && es.Full {
			if err := lib.Move(es.Addr, addr); err != nil {
				return fmt.Errorf("load cartridge %s: %w", es.Barcode, err)
			}
			return nil
		}
	}
	return nil
}

// Read implements Drive.
func (v *VTLDrive) Read(p []byte) (int, error) {
	n, err := v.d.Read(p)
	return n, fromVTL("read", v.d.Serial(), err)
}

// Write implements Drive.
func (v *VTLDrive) Write(p []byte) (int, error) {
	n, err := v.d.Write(p)
	return n, fromVTL("write", v.d.Serial(), err)
}

// WriteFilemarks implements Drive.
func (v *VTLDrive) WriteFilemarks(n uint32) (uint32, error) {
	resid, err := v.d.MTIO(vtl.MTEOF, n)
	return resid, fromVTL("write filemarks", v.d.Serial(), err)
}

// Space implements Drive.
func (v *VTLDrive) Space(op SpaceOp, count uint32) (uint32, error) {
	var m vtl.MTOp
	switch op {
	case SpaceFSF:
		m = vtl.MTFSF
	case SpaceBSF:
		m = vtl.MTBSF
	case SpaceFSR:
		m = vtl.MTFSR
	case SpaceBSR:
		m = vtl.MTBSR
	default:
		return count, &Error{Op: "space", Device: v.d.Serial(), Err: ErrIllegalArgs, Cause: fmt.Errorf("operation %d", op)}
	}
	resid, err := v.d.MTIO(m, count)
	return resid, fromVTL(op.String(), v.d.Serial(), err)
}

// Rewind implements Drive.
func (v *VTLDrive) Rewind() error {
	_, err := v.d.MTIO(vtl.MTREW, 1)
	return fromVTL("rewind", v.d.Serial(), err)
}

// Unload implements Drive.
func (v *VTLDrive) Unload() error {
	_, err := v.d.MTIO(vtl.MTOFF, 1)
	return fromVTL("unload", v.d.Serial(), err)
}

// State implements Drive.
func (v *VTLDrive) State() (State, error) {
	s, err := v.d.State()
	if err != nil {
		return State{}, fromVTL("state", v.d.Serial(), err)
	}
	return State(s), nil
}

// ExecuteCDB implements Drive.
func (v *VTLDrive) ExecuteCDB(ctx context.Context, req CDB) (CDBResult, error) {
	return executeVTL(ctx, req, v.d.ExecuteCDB)
}

// executeVTL runs req through a virtual device's ExecuteCDB (which has no
// timeouts: req.Timeout is not used).
func executeVTL(ctx context.Context, req CDB, exec func(vtl.CDB) vtl.CDBResult) (CDBResult, error) {
	if err := ctx.Err(); err != nil {
		return CDBResult{}, err
	}
	r := exec(vtl.CDB{CDB: req.CDB, Dir: vtl.Direction(req.Dir), DataOut: req.DataOut, DataInLen: req.DataInLen})
	return CDBResult{Status: r.Status, DataIn: r.DataIn, Sense: r.Sense}, nil
}

// VTLChanger adapts the medium changer of a virtual library to Changer.
type VTLChanger struct{ l *vtl.Library }

// NewVTLChanger returns the Changer of a virtual library.
func NewVTLChanger(l *vtl.Library) *VTLChanger { return &VTLChanger{l: l} }

// ExecuteCDB implements Changer.
func (c *VTLChanger) ExecuteCDB(ctx context.Context, req CDB) (CDBResult, error) {
	return executeVTL(ctx, req, c.l.ExecuteCDB)
}

// VTL INQUIRY identification, as package vtl reports it.
const (
	VTLVendor         = vtl.Vendor
	VTLDriveProduct   = vtl.DriveProduct
	VTLChangerProduct = vtl.ChangerProduct
)

// AddVTL registers a virtual library with the registry as if it were
// attached to host adapter adapter: its changer at device id 0 and drive i
// at device id i+1, each with its serial number.
func AddVTL(ctx context.Context, r *Registry, adapter string, lib *vtl.Library) error {
	_, err := r.Add(ctx, Attachment{Kind: KindChanger, Path: adapter + ".0", Serial: lib.Serial(),
		Vendor: VTLVendor, Product: VTLChangerProduct, Changer: NewVTLChanger(lib)})
	if err != nil {
		return fmt.Errorf("tape: add virtual library: %w", err)
	}
	for _, d := range lib.Drives() {
		_, err := r.Add(ctx, Attachment{Kind: KindDrive, Path: adapter + "." + strconv.Itoa(d.Index()+1),
			Serial: d.Serial(), Vendor: VTLVendor, Product: VTLDriveProduct, Drive: NewVTLDrive(d)})
		if err != nil {
			return fmt.Errorf("tape: add virtual library: %w", err)
		}
	}
	return nil
}

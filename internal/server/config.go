package server

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"strconv"

	"github.com/tapestry-ndmp/tapestry/internal/storage"
	"github.com/tapestry-ndmp/tapestry/internal/tape"
	"github.com/tapestry-ndmp/tapestry/ndmp"
)

// Extension classes offered by CONFIG_GET_EXT_LIST (N9). The first version
// listed is the default.
const (
	ExtClassRBE  uint16 = 0x2050 // restartable backup and snapshot management
	ExtClassCAE  uint16 = 0x2051 // connection address extension (IPv6)
	ExtClassCAB  uint16 = 0x2052 // cluster aware backup
	ExtClassTest uint16 = 0x7ff0 // the draft's test extension (echo)
)

// Butype attribute bits of CONFIG_GET_BUTYPE_INFO (draft 3.2.5).
const (
	ButypeBackupFilelist    = 0x2
	ButypeRecoverFilelist   = 0x4
	ButypeBackupDirect      = 0x8
	ButypeRecoverDirect     = 0x10
	ButypeBackupIncremental = 0x20
	ButypeRecoverIncr       = 0x40
	ButypeBackupUTF8        = 0x80
	ButypeRecoverUTF8       = 0x100
	ButypeBackupFHFile      = 0x200
	ButypeBackupFHDir       = 0x400
	ButypeRecoverFilehist   = 0x800
	ButypeRecoverFHFile     = 0x1000
	ButypeRecoverFHDir      = 0x2000
)

func (ss *session) serverInfo() *ndmp.ConfigGetServerInfoReply {
	r := &ndmp.ConfigGetServerInfoReply{AuthType: ss.authTypes()}
	ss.mu.Lock()
	authed := ss.authed
	ss.mu.Unlock()
	// Before authentication only the methods are told (draft 3.2.2).
	if authed {
		r.VendorName, r.ProductName, r.RevisionNumber = VendorName, ProductName, ss.srv.o.Version
	}
	return r
}

func (ss *session) hostInfo() *ndmp.ConfigGetHostInfoReply {
	o := ss.srv.o
	return &ndmp.ConfigGetHostInfoReply{
		Hostname: o.Hostname,
		OSType:   "Tapestry (" + runtime.GOOS + ")",
		OSVers:   o.Version,
		HostID:   o.Node,
	}
}

// extSelected reports whether extension class c was negotiated.
func (ss *session) extSelected(c uint16) bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	_, ok := ss.ext[c]
	return ok
}

// connTypes returns the data connection types the session's LIF allows
// (N6, the two data-connection tables of the spec).
func (ss *session) connTypes() []ndmp.AddrType {
	local := true
	switch ss.lif.Role {
	case storage.RoleData:
		local = false
	case storage.RoleClusterMgmt:
		local = ss.extSelected(ExtClassCAB)
	}
	var out []ndmp.AddrType
	if local {
		out = append(out, ndmp.AddrLocal)
	}
	out = append(out, ndmp.AddrTCP)
	if ss.extSelected(ExtClassCAE) {
		out = append(out, ndmp.AddrTCPIPv6)
	}
	return out
}

// connTypeAllowed reports whether t may be used for a data connection.
func (ss *session) connTypeAllowed(t ndmp.AddrType) bool {
	return slices.Contains(ss.connTypes(), t)
}

// butypeInfo describes the backup types dump and smtape.
func butypeInfo() []ndmp.ButypeInfo {
	dumpAttrs := uint32(ButypeBackupFilelist | ButypeRecoverFilelist | ButypeBackupDirect | ButypeRecoverDirect |
		ButypeBackupIncremental | ButypeRecoverIncr | ButypeBackupUTF8 | ButypeRecoverUTF8 |
		ButypeBackupFHFile | ButypeBackupFHDir | ButypeRecoverFilehist | ButypeRecoverFHFile | ButypeRecoverFHDir)
	return []ndmp.ButypeInfo{
		{
			ButypeName: "dump",
			DefaultEnv: []ndmp.Pval{
				{Name: "FILESYSTEM", Value: ""},
				{Name: "LEVEL", Value: "0"},
				{Name: "HIST", Value: "N"},
				{Name: "UPDATE", Value: "Y"},
				{Name: "DIRECT", Value: "N"},
				{Name: "RECURSIVE", Value: "Y"},
				{Name: "EXTRACT", Value: "N"},
				{Name: "ENHANCED_DAR_ENABLED", Value: "N"},
				{Name: "VERBOSE", Value: "N"},
				{Name: "DEBUG", Value: "N"},
				{Name: "PATHNAME_SEPARATOR", Value: "/"},
			},
			Attrs: dumpAttrs,
		},
		{
			ButypeName: "smtape",
			DefaultEnv: []ndmp.Pval{
				{Name: "FILESYSTEM", Value: ""},
				{Name: "SMTAPE_BACKUP_SET_ID", Value: ""},
				{Name: "SMTAPE_SNAPSHOT_NAME", Value: ""},
				{Name: "SMTAPE_DELETE_SNAPSHOT", Value: "Y"},
				{Name: "SMTAPE_BREAK_MIRROR", Value: "N"},
				{Name: "VERBOSE", Value: "N"},
				{Name: "DEBUG", Value: "N"},
			},
			// Image backups: no file history, no DAR, no file lists.
			Attrs: ButypeBackupUTF8 | ButypeRecoverUTF8,
		},
	}
}

// lifNode is the node that hosts the session's LIF.
func (ss *session) lifNode() string {
	if ss.lif.HomeNode != "" {
		return ss.lif.HomeNode
	}
	return ss.srv.o.Node
}

// visibleVolumes returns the volumes the session may back up or restore
// (N6, the two availability tables). N15's node root volume has no
// counterpart on a Tapestry node (its configuration lives in the data
// directory, not in a volume), so node scope sees every volume of the node.
func (ss *session) visibleVolumes(ctx context.Context) ([]storage.Volume, error) {
	all, err := ss.srv.o.Storage.ListVolumes(ctx, "")
	if err != nil {
		return nil, err
	}
	cab := ss.extSelected(ExtClassCAB)
	node := ss.lifNode()
	onNode := func(v storage.Volume) bool { return v.Node == "" || v.Node == node }
	var out []storage.Volume
	for _, v := range all {
		ok := false
		switch {
		case ss.nodeScope:
			ok = onNode(v)
		case ss.lif.Role == storage.RoleNodeMgmt:
			ok = onNode(v)
		case ss.lif.Role == storage.RoleData:
			ok = v.SVM == ss.lif.SVM && (cab || onNode(v))
		default: // cluster-mgmt, intercluster
			ok = cab || onNode(v)
		}
		if ok {
			out = append(out, v)
		}
	}
	return out, nil
}

// tapesVisible reports whether the session may use the node's tape devices
// (N6).
func (ss *session) tapesVisible() bool {
	if ss.nodeScope {
		return true
	}
	switch ss.lif.Role {
	case storage.RoleNodeMgmt, storage.RoleIntercluster:
		return true
	case storage.RoleClusterMgmt:
		return ss.extSelected(ExtClassCAB)
	}
	return false
}

func (ss *session) fsInfo(ctx context.Context) (ndmp.Body, ndmp.Error) {
	vols, err := ss.visibleVolumes(ctx)
	if err != nil {
		ss.log.Error("list volumes", "err", err)
		return nil, ndmp.ErrUndefined
	}
	cab := ss.extSelected(ExtClassCAB)
	r := &ndmp.ConfigGetFSInfoReply{}
	for _, v := range vols {
		fi := ndmp.FSInfo{
			FSType:           "tapestry",
			FSLogicalDevice:  "/" + v.SVM + "/" + v.Name,
			FSPhysicalDevice: ss.physicalDevice(v),
			FSStatus:         string(v.State),
			FSEnv: []ndmp.Pval{
				{Name: "VSERVER", Value: v.SVM},
				{Name: "VOLUME", Value: v.Name},
				{Name: "TYPE", Value: string(v.Type)},
				{Name: "LOCAL_VOLUME", Value: strconv.FormatBool(v.Node == "" || v.Node == ss.srv.o.Node)},
			},
		}
		if cab {
			fi.FSEnv = append(fi.FSEnv, ndmp.Pval{Name: "AFFINITY", Value: nodeOr(v.Node, ss.srv.o.Node)})
		}
		if sp, err := ss.srv.o.Storage.VolumeSpace(ctx, v.SVM, v.Name); err == nil {
			fi.TotalSize, fi.AvailSize = sp.Total, sp.Avail
			fi.UsedSize = sp.Total - sp.Free
			fi.TotalInodes, fi.UsedInodes = sp.Files, sp.Files-sp.FreeFiles
		} else {
			fi.Unsupported = 0x1f
		}
		r.FSInfo = append(r.FSInfo, fi)
	}
	return r, ndmp.NoErr
}

func nodeOr(n, def string) string {
	if n == "" {
		return def
	}
	return n
}

// devices returns the node's tape devices the session may see.
func (ss *session) devices(ctx context.Context) ([]tape.Device, error) {
	r := ss.srv.o.Tapes
	if r == nil || !ss.tapesVisible() {
		return nil, nil
	}
	return r.Devices(ctx)
}

func (ss *session) tapeInfo(ctx context.Context) (ndmp.Body, ndmp.Error) {
	devs, err := ss.devices(ctx)
	if err != nil {
		return nil, ndmp.ErrUndefined
	}
	cab := ss.extSelected(ExtClassCAB)
	r := &ndmp.ConfigGetTapeInfoReply{}
	for _, d := range devs {
		if d.Kind != tape.KindDrive || d.Alias == "" || !d.Online {
			continue
		}
		di := ndmp.DeviceInfo{Model: fmt.Sprintf("%s %s", trim(d.Vendor), trim(d.Product))}
		for _, n := range tape.DeviceNames(d.Alias) {
			attr := uint32(ndmp.TapeAttrRewind | ndmp.TapeAttrUnload)
			caps := []ndmp.Pval{{Name: "SERIAL_NUMBER", Value: d.Serial}, {Name: "EXECUTE_CDB", Value: "t"}}
			if cab {
				caps = append(caps, ndmp.Pval{Name: "AFFINITY", Value: nodeOr(d.Node, ss.srv.o.Node)})
			}
			di.Caplist = append(di.Caplist, ndmp.DeviceCapability{Device: n.String(), Attr: attr, Capability: caps})
		}
		r.TapeInfo = append(r.TapeInfo, di)
	}
	return r, ndmp.NoErr
}

func (ss *session) scsiInfo(ctx context.Context) (ndmp.Body, ndmp.Error) {
	devs, err := ss.devices(ctx)
	if err != nil {
		return nil, ndmp.ErrUndefined
	}
	r := &ndmp.ConfigGetSCSIInfoReply{}
	for _, d := range devs {
		if d.Kind != tape.KindChanger || d.Alias == "" || !d.Online {
			continue
		}
		r.SCSIInfo = append(r.SCSIInfo, ndmp.DeviceInfo{
			Model: fmt.Sprintf("%s %s", trim(d.Vendor), trim(d.Product)),
			Caplist: []ndmp.DeviceCapability{{Device: d.Alias,
				Capability: []ndmp.Pval{{Name: "SERIAL_NUMBER", Value: d.Serial}}}},
		})
	}
	return r, ndmp.NoErr
}

func trim(s string) string {
	for len(s) > 0 && s[len(s)-1] == ' ' {
		s = s[:len(s)-1]
	}
	return s
}

// offeredExtensions returns the extension classes offered to the session:
// 0x2050 v3, 0x2051 v1 and, in SVM scope, CAB 0x2052 v1, plus the test
// class 0x7ff0 v1.
func (ss *session) offeredExtensions() []ndmp.ClassList {
	var out []ndmp.ClassList
	if ss.svmSet.ExtensionsEnabled || ss.nodeScope {
		out = append(out, ndmp.ClassList{ExtClassID: ExtClassRBE, ExtVersion: []uint16{3}},
			ndmp.ClassList{ExtClassID: ExtClassCAE, ExtVersion: []uint16{1}})
		if !ss.nodeScope {
			out = append(out, ndmp.ClassList{ExtClassID: ExtClassCAB, ExtVersion: []uint16{1}})
		}
	}
	return append(out, ndmp.ClassList{ExtClassID: ExtClassTest, ExtVersion: []uint16{1}})
}

// getExtList handles CONFIG_GET_EXT_LIST (draft 3.2.9).
func (ss *session) getExtList() (ndmp.Body, ndmp.Error) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.extSet || ss.extUsed {
		return nil, ndmp.ErrExtDandNIllegal
	}
	ss.extListed = true
	return &ndmp.ConfigGetExtListReply{ClassList: ss.offeredExtensions()}, ndmp.NoErr
}

// setExtList handles CONFIG_SET_EXT_LIST (draft 3.2.10). Both wire layouts
// of the request are decoded by package ndmp.
func (ss *session) setExtList(req *ndmp.ConfigSetExtListRequest) (ndmp.Body, ndmp.Error) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.extSet || ss.extUsed {
		return nil, ndmp.ErrExtDandNIllegal
	}
	if !ss.extListed {
		return nil, ndmp.ErrPrecondition
	}
	offered := map[uint16][]uint16{}
	for _, c := range ss.offeredExtensions() {
		offered[c.ExtClassID] = c.ExtVersion
	}
	sel := map[uint16]uint16{}
	for _, cv := range req.NDMPSelectedExt {
		vs, ok := offered[cv.ExtClassID]
		if !ok {
			return nil, ndmp.ErrClassNotSupported
		}
		if _, dup := sel[cv.ExtClassID]; dup {
			return nil, ndmp.ErrExtDuplClasses
		}
		if !slices.Contains(vs, cv.ExtVersion) {
			return nil, ndmp.ErrVersionNotSupported
		}
		sel[cv.ExtClassID] = cv.ExtVersion
	}
	ss.ext, ss.extSet = sel, true
	return nil, ndmp.NoErr
}

// cabPrepare handles NDMP_CAB_DATA_CONN_PREPARE (N9, N10): it records the
// address type the next DATA_LISTEN or DATA_CONNECT must use and checks
// that the volume named by FILESYSTEM is visible.
func (ss *session) cabPrepare(ctx context.Context, req *ndmp.CABDataConnPrepareRequest) (ndmp.Body, ndmp.Error) {
	if ss.nodeScope || !ss.extSelected(ExtClassCAB) {
		return nil, ndmp.ErrClassNotSupported
	}
	switch req.AddrType {
	case ndmp.AddrLocal, ndmp.AddrTCP, ndmp.AddrTCPIPv6:
	default:
		return nil, ndmp.ErrIllegalArgs
	}
	if fs := ndmp.Env(req.Env)["FILESYSTEM"]; fs != "" {
		if _, err := ss.srv.o.Storage.Resolve(ctx, fs); err != nil {
			ss.logMessage(ndmp.LogError, storage.Message(err))
			return nil, ndmp.ErrFileNotFound
		}
	}
	t := req.AddrType
	ss.mu.Lock()
	ss.cabAddr = &t
	ss.mu.Unlock()
	return nil, ndmp.NoErr
}

// checkCAB enforces N10 for DATA LISTEN / DATA CONNECT: when CAB was
// negotiated and a prepare was sent, the address type must match it.
func (ss *session) checkCAB(op string, t ndmp.AddrType) ndmp.Error {
	ss.mu.Lock()
	want := ss.cabAddr
	ss.mu.Unlock()
	if want == nil || *want == t {
		return ndmp.NoErr
	}
	msg := op + ": CAB data connection prepare precondition error"
	ss.log.Error(msg)
	ss.logMessage(ndmp.LogError, msg)
	return ndmp.ErrPrecondition
}

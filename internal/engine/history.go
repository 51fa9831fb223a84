package engine

import (
	"io/fs"
	"time"
)

// History receives file history (draft 3.7): directory entries and inodes
// of a backup, or the files of a listing. Its methods are called from the
// engine's goroutine, in order; an error ends the operation.
type History interface {
	// AddDir reports one name of a directory (FH_ADD_DIR). The first one
	// a backup reports is an entry of the root directory.
	AddDir(Dir) error
	// AddNode reports one inode (FH_ADD_NODE).
	AddNode(Node) error
	// AddFile reports one file of a listing by its path (FH_ADD_FILE).
	AddFile(File) error
}

// Dir is one directory entry: Name in directory Parent is Node.
type Dir struct {
	Name   string // raw name bytes
	Node   uint64
	Parent uint64
}

// Node is one inode with its position in the image.
type Node struct {
	Node   uint64
	Stat   Stat
	FHInfo uint64 // position of the inode in the image
}

// File is one listed file.
type File struct {
	Path string // below the image root, with or without a leading slash
	Node uint64
	Stat Stat
	// FHInfo is the position of the file in the image, -1 when unknown.
	FHInfo int64
}

// Stat holds the attributes of an inode as NDMP reports them.
type Stat struct {
	// Type is the file type: 0 for a regular file, else one of
	// fs.ModeDir, fs.ModeSymlink, fs.ModeNamedPipe, fs.ModeSocket,
	// fs.ModeDevice, fs.ModeDevice|fs.ModeCharDevice or fs.ModeIrregular.
	Type fs.FileMode
	// Perm holds the Unix permission bits with set-ID and sticky bits
	// (07777).
	Perm     uint32
	UID, GID uint32
	Size     uint64
	Links    uint32
	Mtime    time.Time
	Atime    time.Time // zero when unknown
	Ctime    time.Time // zero when unknown
}

// Package dump reads and writes dump images in the BSD "new" format
// (NFS_MAGIC 60012) that Linux restore (the Debian dump package) reads.
//
// An image is a sequence of 1,024-byte records grouped into tape blocks of
// NTREC records. A record is either a header (a checksummed 1 KB structure)
// or a data record; each header says how many data records follow it. The
// order of a complete image is fixed:
//
//	TS_TAPE   volume header
//	TS_CLRI   bitmap of every live inode of the file system
//	TS_BITS   bitmap of every inode on this image
//	TS_INODE  directories in ascending inode order, root (2) first
//	TS_INODE  other files in ascending inode order
//	TS_END    end of the dump, repeated to fill the last block
//
// A file longer than 512 KB continues in TS_ADDR headers, and a 4 KB
// ext2-style extended attribute record may follow each inode. Tapestry adds
// extension records (NT ACLs, DOS attributes, NT streams, qtree and LUN
// information, extended attributes beyond 4 KB, the ACL section and the
// offset map) shaped like those attribute records, and keeps exact
// nanosecond times in spare header fields; Linux restore passes over both
// without a message. docs/dump-format.md in the repository describes every
// byte.
//
// Reading works like archive/tar: NewReader, then Next for each header in
// order and Read (or ReadChunk, DirEntries, Bitmap, Xattrs, Extension) for
// the data that belongs to it. NewReaderAt starts at a header offset taken
// from an offset map, for direct access recovery. Writing works the other
// way round: NewWriter, WriteMaps, WriteDir for every directory, WriteFile
// for every other inode, optional extension records, then Close.
package dump

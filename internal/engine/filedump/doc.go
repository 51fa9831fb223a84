// Package dump is Tapestry's dump engine: file-level backup of a volume,
// qtree or subtree into a dump image (package format/dump), and restore of
// such images, including images written by Linux dump.
//
// Backup takes or uses a snapshot copy, walks it in the five phases of the
// ONTAP dump engine (I: traverse for subtrees, II: identify directories,
// III: write directories, IV: write files, V: write ACLs) and writes the image
// to an io.Writer that the caller supplies (an NDMP mover or a file).
// Dump inode numbers are compact, below 2^32, root = 2, and stay the same for
// the same file across backup levels: the engine keeps a map from live inode
// numbers to dump inode numbers for each volume.
//
// Levels 0 to 31 form increment chains: the base of a level n backup is the
// most recent backup of the same path (and DMP_NAME) at a lower level. The
// dates are kept in the catalog under the key prefix "dump/dates/".
//
// Restore reads an image from an io.Reader (or, for direct access recovery,
// an io.ReaderAt) and rebuilds the tree beneath a destination directory.
// Incremental images are applied the way Linux restore -r applies them:
// deletions and renames are derived from the directories of each image and a
// symbol table kept in the file restore_symboltable. Restore never creates,
// changes or follows anything outside its destination: every path is resolved
// with openat2(RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS) from the destination's
// directory descriptor and image names are single path components.
package filedump

// Package volimage is the SMTape engine (S1-S10): it backs up a whole
// volume with its snapshots as an image of format/smtape and restores such
// an image into a data protection volume, recreating the snapshots.
//
// The image is block level in what it keeps: a piece of data stored once by
// the file system (found by the physical address FIEMAP reports) is stored
// once in the image, whichever files and snapshots map it, and the restore
// maps it again by cloning (FICLONERANGE) where the destination file system
// can, so that shared data stays shared. Holes stay holes. The first
// snapshot of an image is written whole; each later one as what changed
// since the one before it, found by comparing each inode's attributes and
// extents under its canonical number (the live volume's inode number, which
// every snapshot of the volume shares).
package volimage

// Package smtape reads and writes Tapestry's SMTape images: the image-level
// backup of a whole volume with its snapshots (S1-S10).
//
// NetApp's own SMTape format is not public; this one is Tapestry's design,
// described byte by byte in docs/smtape-format.md so that another program
// can read it without this code. An image is a byte stream:
//
//	image header    magic, backup set id, time stamps, mode, volume, snapshots, tape number
//	chunk 0         32-byte chunk header (type, number, length, checksums) + payload
//	chunk 1 ...     numbered without a gap from 0
//	image header    again at the start of every later tape (tape number 2, 3, ...)
//	chunk n ...
//	end chunk       the number of chunks and payload bytes of the whole image
//
// Every integer is big-endian. Chunk headers and payloads carry CRC-32C
// checksums, the image header one of its own. The chunk payloads are typed
// records (a snapshot's start, an inode, a directory entry, an extent of
// data stored once, a mapping of an extent into a file, a deletion, the end
// of a snapshot); records.go encodes and decodes them.
//
// Reading works like archive/tar: NewReader reads and checks the first
// header, Next returns each chunk in order and io.EOF after the end chunk.
// A header met between chunks (the next tape's) is checked against the
// first: the same backup set id and time stamp, the next tape number, the
// next chunk number. Every condition of the spec's SMTape error list that a
// reader can meet is reported as an *Error whose Message is the spec's exact
// sentence (Chunks out of order, Invalid backup image checksum, ...).
//
// Writing works the other way round: NewWriter writes the header, WriteChunk
// (or WriteRecord) each chunk, NewTape the header of the next tape when the
// writer controls tape changes, and Close the end chunk.
package smtape

//go:build linux

// Package sim is a simulated SCSI tape host for tests and demonstrations:
// LTO-like tape drives and an SMC medium changer behind the Linux st and
// sg drivers, reached through linuxst.Sys exactly as the daemon reaches
// real hardware. A Host is a linuxst.Sys; it answers open, read, write and
// the MTIOCTOP, MTIOCGET, MTIOCPOS and SG_IO ioctls of the device nodes it
// serves, and it lays out a sysfs tree (class/scsi_tape, class/scsi_generic,
// class/scsi_changer, bus/scsi/devices) and a /dev directory in a directory
// of its own, so that linuxst.Discover and linuxst.Scanner find the
// simulated devices as they find real ones.
//
// What is modelled, and on what:
//
//   - The st driver's behaviour for variable-block mode as Linux
//     Documentation/scsi/st.rst describes it: one record per write(2); a
//     read at a file mark returns 0 and leaves the tape after the mark
//     (GMT_EOF); a read at the end of data returns 0 then fails with EIO
//     (GMT_EOD); a record longer than the read buffer fails with ENOMEM;
//     at the early warning the write that enters the zone succeeds, the
//     next returns ENOSPC, the one after is allowed (a trailer) and so on
//     alternately until the physical end, where writes fail with ENOSPC and
//     write nothing; closing after writes writes a file mark, and the
//     rewinding nodes (stN) rewind at close; MTREW and MTOFFL after writes
//     write a file mark first; MTFSR and MTBSR stop at a file mark with
//     EIO and GMT_EOF, crossing it as SSC SPACE does; opening a
//     write-protected cartridge for writing fails with EROFS; a device
//     reserved by another initiator fails to open with EBUSY and I/O with
//     EIO.
//   - The drive (SSC-3, as an HP Ultrium 5 answers): INQUIRY with VPD
//     pages 00h, 80h and 83h, TEST UNIT READY, REQUEST SENSE, READ BLOCK
//     LIMITS, READ POSITION, MODE SENSE (block descriptor with the density
//     code), LOG SENSE page 2Eh (TapeAlert), RESERVE(6)/RELEASE(6) and
//     PERSISTENT RESERVE IN/OUT through its sg node. Errors carry the
//     sense data a drive returns (MEDIUM ERROR 3/0C/00 on write and
//     3/11/00 on read, HARDWARE ERROR 4/44/00, DATA PROTECT 7/27/00,
//     VOLUME OVERFLOW 0D/00/02, BLANK CHECK 8/00/05, NOT READY 2/3A/00,
//     INCOMPATIBLE MEDIUM 3/30/00) and set the TapeAlert flags a drive sets
//     for them; sense is not visible through st (the kernel consumes it),
//     TapeAlert is, through the sg node.
//   - The medium changer (SMC-3, element addresses as mhVTL's default
//     personality: transport 2F0h, drives from 001h, import/export from
//     300h, storage from 400h): INQUIRY, TEST UNIT READY, REQUEST SENSE,
//     MODE SENSE page 1Dh, READ ELEMENT STATUS with volume tags and
//     device identifiers (the drives' serial numbers), MOVE MEDIUM,
//     INITIALIZE ELEMENT STATUS (and WITH RANGE), PREVENT/ALLOW MEDIUM
//     REMOVAL and RESERVE/RELEASE.
//   - Paths: one device may be attached at several SCSI addresses (two
//     host adapters); a failed path answers every system call with EIO and
//     SG_IO with host status DID_NO_CONNECT, as a pulled cable does.
//
// Nothing here has been compared with real hardware: the behaviour follows
// the documents named above.
package sim

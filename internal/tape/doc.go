// Package tape is Tapestry's model of a node's tape devices: the names
// backup applications use to reach them, the aliases behind those names,
// tape configuration files and the qualification of drives, and the
// per-node Registry that tracks drives and medium changers while the
// daemon runs.
//
// A tape device name (ParseDeviceName) has the form
//
//	rewind_type st alias_number compression_type
//
// for example nrst0a: no rewind on close, the drive whose alias is st0, the
// highest compression. Aliases (st<N> for drives, mc<N> for medium
// changers) are bound to a physical path name such as 0b.4L1 or
// MY_SWITCH:5.3L2, or to a serial number such as SN[123456]L4
// (ParseMapping), and are kept in the catalog under "tape/alias/" so that
// a restarted node gives every device its previous alias.
//
// A Registry holds the drives and changers of one node. Devices are added
// and removed while it runs (T9) within the node limits (64 drives, 16
// medium changers, 16 bridges, T5), reach it over at most two paths (T7),
// are qualified by the tape configuration files (T4) and are reserved by
// one session at a time according to the tape.reservations option (T6).
// Sessions open drives and changers through the Registry, which checks
// aliases, qualification, online state and reservations, and counts bytes
// and errors for the statistics commands (T8).
//
// The devices themselves are behind two interfaces, Drive and Changer.
// This package adapts the virtual library (package vtl) to them with
// VTLDrive and VTLChanger; package linuxst implements them for real
// drives through the Linux st and sg drivers.
package tape

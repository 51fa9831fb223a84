// Package ndmpcopy implements ndmpcopy, a data management application (DMA)
// that copies a volume, qtree, directory or file from one NDMP v4 server to
// another, or within one server, as a dump backup piped straight into a dump
// restore (requirements C1 and C2).
//
// A copy uses two NDMP control sessions, one to each server. The destination
// data service listens (DATA_LISTEN, TCP or TCP over IPv6 through NetApp's
// connection address extension), the source data service connects to it
// (DATA_CONNECT), the destination starts a restore (DATA_START_RECOVER) and
// the source a backup of type dump (DATA_START_BACKUP), so the image travels
// directly between the two servers. The DMA watches both sessions for
// NOTIFY_DATA_HALTED and LOG_MESSAGE posts, reports progress, and ends both
// sessions with DATA_STOP and CONNECT_CLOSE.
//
// The command line follows ONTAP's ndmpcopy: ParseArgs reads the options
// (-sa, -da, -st, -dt, -l, -d, -f, -h, -p, -exclude, -mcs, -mcd, -md) and
// the two endpoints, each written [user:password@]host[:port]:/svm/volume[/path],
// an IPv6 address in square brackets. Main runs the whole command and returns
// its exit status; Copy runs one copy with parsed Options.
package ndmpcopy

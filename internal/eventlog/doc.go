// Package eventlog writes and reads the backup event log, Tapestry's
// counterpart of ONTAP's /etc/log/backup file.
//
// For each significant dump and restore event one line is appended to the
// file backup in the log directory (the daemon uses <data-dir>/mroot/etc/log).
// Every line has the form
//
//	type timestamp identifier event (event_info)
//
// where type is log (logging events), dmp (dump events) or rst (restore
// events); timestamp is the local date and time in the layout of [TimeLayout],
// for example "Mon Nov 23 12:25:15 UTC 2026"; identifier is, for a dump, the
// dump path followed by the dump's unique id in parentheses
// ("/vs1/vol1/(7)") and, for a restore, the restore destination path. Logging
// events (Start_Logging, Stop_Logging) have neither identifier nor event
// information:
//
//	log Mon Nov 23 12:00:00 UTC 2026 Start_Logging
//	dmp Mon Nov 23 12:00:01 UTC 2026 /vs1/vol1/(7) Start (level 0, NDMP)
//	dmp Mon Nov 23 12:00:09 UTC 2026 /vs1/vol1/(7) End (2048 KB)
//	rst Mon Nov 23 12:10:00 UTC 2026 /vs1/vol2/restored Start (level 0, NDMP)
//
// A [Log] is safe for concurrent use: each line is written with a single
// write call on a file opened with O_APPEND, under one mutex. Lines that end
// or break an operation (End, Abort, Error) and the logging events are
// synced to stable storage before the call returns.
//
// Logging can be turned off and on (option backup.log.enable, on by
// default) with [Log.SetEnabled]: turning it off writes Stop_Logging, turning
// it on writes Start_Logging, and nothing is written while it is off.
//
// Once a week the files are rotated: backup.4 becomes backup.5, ...,
// backup.0 becomes backup.1, backup becomes backup.0, and a new backup file
// is started; backup.5 is dropped, so at most seven files exist. A week ends
// at midnight between Saturday and Sunday in the log's location; the
// rotation happens on the first write (or [Log.RotateIfDue] call) after the
// week in which the current file was started has ended. The start time of
// the current file is kept in the file .backup.state next to the log, so the
// schedule survives restarts.
//
// [Read], [Tail] and [Names] give the command line and the admin API access
// to the files by name (backup, backup.0 ... backup.5); [Parse] splits a line
// back into its fields.
package eventlog

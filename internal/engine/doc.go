// Package engine is what the NDMP server knows of a backup engine (issue
// 12): the Engine interface, the job descriptions of a backup and a
// recover, file history, the restore policy and the registry of the
// engines of a node. The engines themselves live in sub-packages
// (internal/engine/filedump for dump); the server imports only this
// package, so it builds no engine's requests and links no image format.
//
// A backup or recover runs in two steps: the server checks the request
// (state, backup type, volume) and starts a goroutine that calls
// Engine.Backup or Engine.Recover through Run, which turns a panic of the
// engine into a *PanicError; when the call returns, the server reports its
// Result and, for an error, the Failure the engine gives for it.
//
// The package also holds the job orchestration every engine shares, so
// that the file-level dump engine and the SMTape image engine run their
// jobs the same way:
//
//   - Resolve: a backup path /svm/volume[/path] (N15) resolved onto the
//     host, with the volume's state and type checked for what the job does
//     (Access), refused with the specification's messages (D14).
//   - Lease: a job's hold on a snapshot copy, made by a name rule
//     (SnapshotNamer: snapshot_for_backup.<n>, D1) and locked for an owner
//     (Acquire), or an existing one locked (Hold); released at the end of
//     the job (unlocked, and deleted when the lease made it) or kept for a
//     restart (Keep, then Resume; D12). A lease of a daemon that dies is
//     recovered by the next start (storage.Service.ReleaseStaleLocks).
//   - Limits: the session limits by system memory of the NDMP server (N12),
//     the dump engine (D13) and SMTape (S8) in one table
//     (LimitsForMemory), and the Limiter that bounds the jobs of one kind
//     running at once on a node.
//   - BackupEvents, RestoreEvents and Progress: what a job reports to the
//     backup event log (M1) and to whoever watches it.
//   - Error and Message: an error carrying the exact text the
//     specification gives.
package engine

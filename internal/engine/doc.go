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
//   - Limits: the session limits by system memory of the NDMP server (N12),
//     the dump engine (D13) and SMTape (S8) in one table
//     (LimitsForMemory), and the Limiter that bounds the jobs of one kind
//     running at once on a node.
//   - BackupEvents, RestoreEvents and Progress: what a job reports to the
//     backup event log (M1) and to whoever watches it.
//   - Error and Message: an error carrying the exact text the
//     specification gives.
package engine

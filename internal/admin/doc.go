// Package admin is Tapestry's administration API: HTTP with JSON bodies,
// served by tapestryd on a unix socket, and the Go client that the tapestry
// command line uses.
//
// Paths follow ONTAP's REST API where it has one:
//
//	GET    /api/cluster
//	GET    /api/svm/svms                      POST, PATCH|DELETE /api/svm/svms/{name}
//	GET    /api/network/ip/interfaces         POST, DELETE /api/network/ip/interfaces/{uuid}
//	GET    /api/storage/volumes               POST, PATCH|DELETE /api/storage/volumes/{uuid}
//	GET    /api/storage/volumes/{uuid}/snapshots   POST, DELETE .../snapshots/{name}
//	GET    /api/storage/qtrees                POST, DELETE /api/storage/qtrees/{volume-uuid}/{name}
//	GET    /api/security/accounts             POST, PATCH|DELETE /api/security/accounts/{svm}/{name}
//	GET    /api/security/roles                POST, DELETE /api/security/roles/{svm}/{name}
//
// and everything ONTAP only has as a command lives below /api/private/cli/
// (options, vserver services ndmp generate-password, volume snapshot
// lock and unlock, the vserver and system services ndmp commands in
// ndmp.go, rdfile of the backup event log in eventlog.go). GET /metrics
// serves the node's Prometheus metrics (metrics.go).
//
// Every request is authenticated with HTTP basic authentication against the
// cluster's login users (package auth) and authorised by the command
// directory of the command it implements, for example "volume create".
// Requests for commands at the advanced privilege level must carry the
// header X-Tapestry-Privilege: advanced.
//
// Errors are answered with a non-2xx status and the body
//
//	{"error": {"code": "not-found", "message": "..."}}
//
// whose message is what the command line prints after "Error: ".
package admin

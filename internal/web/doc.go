// Package web is the web view of a Tapestry node (issue 17 item 1): pages
// for the people who run it, served by tapestryd on an HTTP listener of its
// own (--http-listen), next to the Prometheus metrics at /metrics.
//
// The pages are rendered on the server with html/template; one small
// script (static/live.js) reloads the table of live sessions every second
// without reloading the page. Templates, style sheet and script are
// embedded in the binary: there is no build step.
//
// Users log in with the cluster's users and passwords (package auth). A
// login makes a session cookie; every page then reads the admin API in
// process as that user (admin.WithPrincipal), so a page shows exactly what
// the user's role and SVM may see, and the buttons that change something
// (kill a session, take a drive offline or online) are shown only to roles
// that may run the command behind them and are checked again by the API.
//
// Pages:
//
//	/sessions    live NDMP sessions: operation, phase, bytes, rate, ETA; kill
//	/history     recent backups and restores from the backup event log, with their outcome
//	/tapes       tape drives, medium changers and cartridges: what each holds, who uses it; offline/online
//	/snapshots   snapshot copies of every volume and their locks
//	/events      the backup event log with filters (file, type, event, text)
//	/metrics     Prometheus metrics (a user with "statistics show", or anyone with Config.MetricsNoAuth)
package web

// Package e2e holds end-to-end tests that run a whole Tapestry node
// (internal/daemon) against DMAs and tools nobody here wrote, such as
// Amanda's NDMP device and changer. It has no code of its own.
package e2e

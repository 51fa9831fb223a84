// Package packaging holds the test of Tapestry's installation (issue 17
// item 4): make install DESTDIR=... installs the binaries, the systemd unit
// (dist/tapestryd.service.in), the manual pages and the shell completions,
// and the installed pieces work: systemd-analyze verify accepts the unit,
// bash loads the completion and completes with it, man renders the pages.
// It has no code of its own.
package packaging

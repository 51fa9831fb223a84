// Package docs holds the test that keeps Tapestry's documents true: it
// runs the command blocks of README.md and docs/*.md and regenerates
// docs/cli.md (issue 17 item 5). It has no code of its own.
//
// The convention for fenced blocks in the documents:
//
//   - ```sh: commands a reader types. The test runs every sh block of a
//     document, in order, as one bash script with "set -euo pipefail", in a
//     fresh empty directory, in its own network and PID namespaces (so port
//     10000 is free and every process the script starts ends with it).
//     bin/ there holds tapestryd, tapestry and ndmpcopy built from this
//     checkout (bin/ is also on PATH), and "make build" is satisfied by them.
//     README.md runs first on its own; every other document runs after the
//     README's sh blocks, so it starts where the quick start leaves a reader:
//     a daemon on ./tapestry-data, SVM vs1 with volume vol1 (srv/vol1), and
//     TAPESTRY_PASSWORD exported.
//   - ```console: a command with the output it printed, not run (docs/cli.md
//     is made of them by scripts/gen-cli-doc.sh; the test reruns the script
//     and fails when the page differs from what it writes).
//   - ```text, ```json, ```go, ...: synopses, file contents, output and code
//     that are not run.
//
// Every fenced block names its language: a bare ``` fails the test, so a
// command cannot slip past it unmarked.
package docs

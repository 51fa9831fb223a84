#!/usr/bin/env bash
# Tapestry demo: start a real tapestryd on a throwaway data directory, create
# an SVM and a volume over a directory of sample files, take a Snapshot copy,
# change a file and show that the Snapshot copy still holds the old content.
# Works as root and as a normal user; everything is removed on exit.
set -euo pipefail

cd "$(dirname "$0")/.."
GO=${GO:-go}
BIN=${BIN:-bin}

say() { printf '\n== %s\n' "$*"; }
run() { printf 'cluster1::> tapestry %s\n' "$*"; "$BIN/tapestry" "$@"; }
die() { printf 'demo: FAILED: %s\n' "$*" >&2; exit 1; }

if [ "${DEMO_SKIP_BUILD:-}" != 1 ]; then
	say "Building tapestryd and tapestry"
	"$GO" build -o "$BIN/" ./cmd/tapestryd ./cmd/tapestry
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/tapestry-demo.XXXXXX")
DPID=""
cleanup() {
	status=$?
	if [ -n "$DPID" ] && kill -0 "$DPID" 2>/dev/null; then
		kill -TERM "$DPID" 2>/dev/null || true
		wait "$DPID" 2>/dev/null || true
	fi
	if [ "$status" -ne 0 ] && [ -f "$WORK/tapestryd.log" ]; then
		echo "--- tapestryd log" >&2
		cat "$WORK/tapestryd.log" >&2
	fi
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The admin password of the throwaway cluster: letters and digits.
export TAPESTRY_ADMIN_PASSWORD="demo$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')7"
export TAPESTRY_PASSWORD="$TAPESTRY_ADMIN_PASSWORD"
export TAPESTRY_USER=admin
export TAPESTRY_SOCKET="$WORK/data/admin.sock"

say "Starting tapestryd on $WORK/data"
"$BIN/tapestryd" --data-dir "$WORK/data" --ndmp-listen 127.0.0.1:0 --log-level warn \
	>"$WORK/tapestryd.out" 2>"$WORK/tapestryd.log" &
DPID=$!
for _ in $(seq 1 100); do
	if "$BIN/tapestry" cluster show >/dev/null 2>&1; then break; fi
	kill -0 "$DPID" 2>/dev/null || die "tapestryd exited"
	sleep 0.1
done
run cluster show

say "Sample data"
VOL="$WORK/vol1"
mkdir -p "$VOL/docs" "$VOL/src"
printf 'Quarterly report, version 1\n' >"$VOL/docs/report.txt"
printf 'package main\n\nfunc main() {}\n' >"$VOL/src/main.go"
head -c 262144 /dev/urandom >"$VOL/blob.bin"
cp "$VOL/docs/report.txt" "$WORK/report.orig"
(cd "$VOL" && find . -type f | sort)

# btrfs snapshots need root; the copy provider works anywhere.
PROVIDER=${DEMO_PROVIDER:-}
if [ -z "$PROVIDER" ]; then
	if [ "$(id -u)" = 0 ]; then PROVIDER=auto; else PROVIDER=copy; fi
fi

say "SVM, volume and Snapshot copy"
run vserver create -vserver vs1
run volume create -vserver vs1 -volume vol1 -path "$VOL" -snapshot-provider "$PROVIDER"
run volume show
run volume snapshot create -vserver vs1 -volume vol1 -snapshot before_edit
run volume snapshot show -vserver vs1 -volume vol1 -fields path,provider

SNAP=$("$BIN/tapestry" volume snapshot show -vserver vs1 -volume vol1 -snapshot before_edit -fields path | awk 'NR==3 {print $4}')
[ -d "$SNAP" ] || die "snapshot directory $SNAP not found"

say "Changing docs/report.txt in the volume"
printf 'Quarterly report, version 2 (edited after the snapshot)\n' >"$VOL/docs/report.txt"
diff -u "$SNAP/docs/report.txt" "$VOL/docs/report.txt" || true

say "Verifying"
cmp "$SNAP/docs/report.txt" "$WORK/report.orig" || die "the Snapshot copy changed with the volume"
cmp -s "$SNAP/docs/report.txt" "$VOL/docs/report.txt" && die "the volume was not changed"
cmp "$SNAP/blob.bin" "$VOL/blob.bin" || die "unchanged file differs in the Snapshot copy"
cmp "$SNAP/src/main.go" "$VOL/src/main.go" || die "unchanged file differs in the Snapshot copy"
if "$BIN/tapestry" volume snapshot create -vserver vs1 -volume vol1 -snapshot before_edit 2>"$WORK/err"; then
	die "a duplicate Snapshot copy name was accepted"
fi
printf 'duplicate name refused: %s\n' "$(cat "$WORK/err")"

USED=$("$BIN/tapestry" volume show -vserver vs1 -volume vol1 -fields snapshot-provider | awk 'NR==3 {print $3}')

say "Stopping tapestryd"
kill -TERM "$DPID"
wait "$DPID" || die "tapestryd exited with status $?"
DPID=""

say "Summary"
cat <<SUMMARY
  cluster        cluster1 with node node1, admin API on a unix socket
  SVM, volume    vs1, vol1 -> $VOL
  snapshot       before_edit, made by the '$USED' snapshot provider (asked for: $PROVIDER)
  verified       the Snapshot copy kept version 1 of docs/report.txt while the volume has version 2
  daemon         stopped cleanly with SIGTERM
Demo OK.
SUMMARY

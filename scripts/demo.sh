#!/usr/bin/env bash
# Tapestry demo (make demo): the main job for real. It starts a tapestryd on a
# throwaway data directory, creates an SVM, a volume over sample files and an
# NDMP backup user, takes a level 0 and a level 1 NDMP dump backup to the
# virtual tape library with Tapestry's small DMA (tapestry ndmp backup),
# restores both into a second volume (tapestry ndmp restore), copies the
# volume into a third one with ndmpcopy, verifies every copy byte for byte
# and by mode, owner, link count and xattrs, and prints the backup event log.
# Everything is removed on exit. Best run as root (ownership is then checked
# too); it also runs as a normal user.
set -euo pipefail

cd "$(dirname "$0")/.."
GO=${GO:-go}
BIN=${BIN:-bin}

say() { printf '\n== %s\n' "$*"; }
run() { printf 'cluster1::> tapestry %s\n' "$*"; "$BIN/tapestry" "$@"; }
die() { printf 'demo: FAILED: %s\n' "$*" >&2; exit 1; }

if [ "${DEMO_SKIP_BUILD:-}" != 1 ]; then
	say "Building tapestryd, tapestry and ndmpcopy"
	"$GO" build -o "$BIN/" ./cmd/tapestryd ./cmd/tapestry ./cmd/ndmpcopy
fi
for b in tapestryd tapestry ndmpcopy; do
	[ -x "$BIN/$b" ] || die "$BIN/$b is missing; build it first"
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/tapestry-demo.XXXXXX")
DPID=""
MNT=""
cleanup() {
	status=$?
	if [ -n "$DPID" ] && kill -0 "$DPID" 2>/dev/null; then
		kill -TERM "$DPID" 2>/dev/null || true
		wait "$DPID" 2>/dev/null || true
	fi
	if [ -n "$MNT" ]; then
		umount "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null || true
	fi
	if [ "$status" -ne 0 ] && [ -f "$WORK/tapestryd.log" ]; then
		echo "--- tapestryd log" >&2
		tail -50 "$WORK/tapestryd.log" >&2
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

# A free TCP port on the loopback address for NDMP.
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
PORT=""
for _ in $(seq 1 50); do
	p=$((20000 + RANDOM % 30000))
	if port_free "$p"; then PORT=$p; break; fi
done
[ -n "$PORT" ] || die "no free TCP port found"
NDMP="127.0.0.1:$PORT"

say "Starting tapestryd on $WORK/data, NDMP on $NDMP"
"$BIN/tapestryd" --data-dir "$WORK/data" --ndmp-listen "$NDMP" --log-level warn \
	>"$WORK/tapestryd.out" 2>"$WORK/tapestryd.log" &
DPID=$!
READY=0
for _ in $(seq 1 200); do
	# Ready when the admin API answers and NDMP listens.
	if "$BIN/tapestry" cluster show >/dev/null 2>&1 && ! port_free "$PORT"; then READY=1; break; fi
	kill -0 "$DPID" 2>/dev/null || die "tapestryd exited"
	sleep 0.1
done
[ "$READY" = 1 ] || die "tapestryd did not start within 20 seconds"
run cluster show
run network interface show

ROOT=0
[ "$(id -u)" = 0 ] && ROOT=1
XATTR=0
command -v setfattr >/dev/null && command -v getfattr >/dev/null && XATTR=1

# As root with btrfs-progs, the volumes are btrfs subvolumes on a loop
# device, so backups read btrfs snapshots and a level 1 holds only the
# changes. Otherwise they are plain directories and the copy snapshot
# provider is used: its copies get new change times, so a level 1 then
# holds every file (still restored correctly).
FS=plain
if [ "$ROOT" = 1 ] && [ "${DEMO_BTRFS:-1}" = 1 ] && command -v mkfs.btrfs >/dev/null && command -v btrfs >/dev/null; then
	truncate -s 256M "$WORK/btrfs.img"
	mkdir -p "$WORK/fs"
	if mkfs.btrfs -q "$WORK/btrfs.img" >/dev/null 2>&1 && mount -o loop "$WORK/btrfs.img" "$WORK/fs" 2>/dev/null; then
		MNT="$WORK/fs"
		FS=btrfs
	fi
fi
if [ "$FS" = btrfs ]; then
	VOL1="$MNT/vol1" VOL2="$MNT/vol2" VOL3="$MNT/vol3"
	for v in "$VOL1" "$VOL2" "$VOL3"; do btrfs -q subvolume create "$v" >/dev/null; done
else
	VOL1="$WORK/vol1" VOL2="$WORK/vol2" VOL3="$WORK/vol3"
fi

say "Sample data in vol1 ($FS)"
mkdir -p "$VOL1/docs/drafts" "$VOL1/src" "$VOL2" "$VOL3"
printf 'Quarterly report, version 1\n' >"$VOL1/docs/report.txt"
printf 'notes to be deleted\n' >"$VOL1/docs/drafts/notes.txt"
printf 'package main\n\nfunc main() {}\n' >"$VOL1/src/main.go"
head -c 300000 /dev/urandom >"$VOL1/blob.bin"
ln -s docs/report.txt "$VOL1/latest-report"  # a symbolic link
ln "$VOL1/src/main.go" "$VOL1/main.go.hard"  # a hard link
chmod 0750 "$VOL1/src"
chmod 0600 "$VOL1/docs/report.txt"
if [ "$XATTR" = 1 ]; then
	setfattr -n user.project -v tapestry "$VOL1/docs/report.txt" 2>/dev/null || XATTR=0
fi
if [ "$ROOT" = 1 ]; then
	chown 1234:5678 "$VOL1/blob.bin"
	chown -h 4321:8765 "$VOL1/latest-report"
fi
(cd "$VOL1" && find . -mindepth 1 -name .snapshot -prune -o -print | sort)

say "SVM, volumes and an NDMP backup user"
run vserver create -vserver vs1
PROVIDER=copy
[ "$FS" = btrfs ] && PROVIDER=btrfs
run volume create -vserver vs1 -volume vol1 -path "$VOL1" -snapshot-provider "$PROVIDER"
run volume create -vserver vs1 -volume vol2 -path "$VOL2"
run volume create -vserver vs1 -volume vol3 -path "$VOL3"
run volume show
run security login create -user-or-group-name backup1 -role backup -password "Bk$TAPESTRY_ADMIN_PASSWORD"
run vserver services ndmp generate-password -vserver cluster1 -user backup1 | tee "$WORK/pw"
NDMP_PW=$(awk '/^Password:/ {print $2}' "$WORK/pw")
[ -n "$NDMP_PW" ] || die "no NDMP password generated"
export TAPESTRY_NDMP_PASSWORD="$NDMP_PW"
DMA=(-ndmp-server "$NDMP" -user backup1 -device nrst0l)

# Dump dates count whole seconds: let the sample data age past the second
# the level 0 starts in, or the level 1 takes it again.
sleep 1.2

say "Level 0 NDMP dump backup of /vs1/vol1 to nrst0l, tape file 0"
run ndmp backup "${DMA[@]}" -path /vs1/vol1 -level 0 -tape-file 0 -hist | tee "$WORK/b0"

say "Changing vol1: modify, add, delete, rename"
sleep 1 # dump dates count seconds
printf 'Quarterly report, version 2 (after the level 0)\n' >"$VOL1/docs/report.txt"
printf 'a file added after the level 0\n' >"$VOL1/docs/added.txt"
rm "$VOL1/docs/drafts/notes.txt"
mv "$VOL1/src" "$VOL1/code"
(cd "$VOL1" && find . -mindepth 1 -name .snapshot -prune -o -print | sort)

say "Level 1 NDMP dump backup of /vs1/vol1 to nrst0l, tape file 1"
run ndmp backup "${DMA[@]}" -path /vs1/vol1 -level 1 -tape-file 1 -hist | tee "$WORK/b1"

say "Restoring level 0, then level 1, into /vs1/vol2"
run ndmp restore "${DMA[@]}" -tape-file 0 -path /vs1/vol2 | tee "$WORK/r0"
run ndmp restore "${DMA[@]}" -tape-file 1 -path /vs1/vol2 | tee "$WORK/r1"

say "Copying /vs1/vol1 into /vs1/vol3 with ndmpcopy"
printf '$ ndmpcopy -sa backup1:*** -da backup1:*** -st md5 %s:/vs1/vol1 %s:/vs1/vol3\n' "$NDMP" "$NDMP"
"$BIN/ndmpcopy" -sa "backup1:$NDMP_PW" -da "backup1:$NDMP_PW" -st md5 "$NDMP:/vs1/vol1" "$NDMP:/vs1/vol3" | tee "$WORK/copy"

# listing prints what must match: path, type, mode, owner, link count and
# size, a symbolic link's target and a file's user xattrs.
listing() {
	(
		cd "$1"
		find . -mindepth 1 \( -name restore_symboltable -o -name .snapshot \) -prune -o \
			-printf '%P %y %m %U:%G links=%n size=%s %l\n' | sort
		if [ "$XATTR" = 1 ]; then
			find . -mindepth 1 \( -name .snapshot -prune \) -o -type f -print | sort |
				xargs -r getfattr -h -d -m '^user\.' 2>/dev/null
		fi
	)
}
verify() {
	local dir=$1 what=$2
	diff -r --no-dereference -x restore_symboltable -x .snapshot "$VOL1" "$dir" ||
		die "$what: the files differ from vol1"
	diff <(listing "$VOL1") <(listing "$dir") || die "$what: modes, owners, links or xattrs differ from vol1"
	printf '%s: %d names equal to vol1 (contents, modes, owners, link counts%s)\n' "$what" \
		"$(listing "$VOL1" | grep -c ' links=')" "$([ "$XATTR" = 1 ] && echo ', xattrs')"
}

say "Verifying"
verify "$VOL2" "vol2 (level 0 + level 1 restore)"
verify "$VOL3" "vol3 (ndmpcopy)"
[ "$(cat "$VOL2/docs/report.txt")" = "Quarterly report, version 2 (after the level 0)" ] || die "vol2 lacks the level 1 change"
[ ! -e "$VOL2/docs/drafts/notes.txt" ] && [ ! -e "$VOL2/src" ] && [ -d "$VOL2/code" ] ||
	die "vol2 lacks the level 1 deletion or rename"
[ "$(stat -c %i "$VOL2/code/main.go")" = "$(stat -c %i "$VOL2/main.go.hard")" ] || die "the hard link was not restored as one"

if [ "$FS" = btrfs ]; then
	# Only the changes went into the level 1: blob.bin alone is 300000 bytes.
	L0=$(sed -n 's/.*: \([0-9]*\) bytes .*/\1/p' "$WORK/b0")
	L1=$(sed -n 's/.*: \([0-9]*\) bytes .*/\1/p' "$WORK/b1")
	[ -n "$L1" ] && [ "$L1" -lt 300000 ] || die "the level 1 ($L1 bytes) holds unchanged data"
	printf 'level 1 holds only the changes: %s bytes, the level 0 %s bytes\n' "$L1" "$L0"
fi

say "Backup event log (rdfile /etc/log/backup)"
run rdfile /etc/log/backup

say "Stopping tapestryd"
kill -TERM "$DPID"
wait "$DPID" || die "tapestryd exited with status $?"
DPID=""

field() { sed -n "s/.*$1 \([^ ,]*\).*/\1/p" "$2"; }
size() { sed -n 's/.*(\([0-9.]* [KMG]*i*B\)) in.*/\1/p' "$1"; }
say "Summary"
printf '  %-9s %-15s %-10s %-21s %s\n' step what where size result
printf '  %-9s %-15s %-10s %-21s %s\n' level-0 "/vs1/vol1" "nrst0l #0" "$(size "$WORK/b0")" "DUMP_DATE $(field DUMP_DATE "$WORK/b0")"
printf '  %-9s %-15s %-10s %-21s %s\n' level-1 "/vs1/vol1" "nrst0l #1" "$(size "$WORK/b1")" "DUMP_DATE $(field DUMP_DATE "$WORK/b1")"
printf '  %-9s %-15s %-10s %-21s %s\n' restore "nrst0l #0, #1" "/vs1/vol2" "$(size "$WORK/r0") + $(size "$WORK/r1")" "matched vol1"
printf '  %-9s %-15s %-10s %-21s %s\n' ndmpcopy "/vs1/vol1" "/vs1/vol3" "-" "matched vol1"
echo "Demo OK: the restored data matched the source."

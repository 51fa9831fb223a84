#!/usr/bin/env bash
# Tapestry benchmark (make bench): the acceptance figures of issues 4, 5 and 6
# in one run, side by side, as ratios (Tapestry time / other time; below 1
# means Tapestry is faster). Every timing is the best of BENCH_RUNS runs with
# a warm page cache.
#
# Issue 4, on a loop-mounted ext4: level 0 of
#   (a) BENCH_BIG_COUNT files of BENCH_BIG_MB MiB (default four 1 GiB) and
#   (b) BENCH_FILES files of 4 KiB (default 200,000, 1,000 per directory)
# into an image file with `tapestry dump -0 -f IMAGE DIR` (the engine on the
# plain directory, no snapshot, as a user runs it), `tar -cf` and Linux
# `dump -0`; restore of (b) with `tapestry restore -r` and `tar -xf`; peak
# memory of Tapestry on (b) from GNU time.
#
# Issue 5, two tapestryd nodes, volumes on a loop-mounted btrfs (instant
# snapshots): a local NDMP dump backup of (a) to the virtual tape drive
# nrst0l with `tapestry ndmp backup` (internal/dma) against the engine
# writing (a) straight to an image file; the same backup three-way over
# loopback TCP (data service on node 1, mover and tape on node 2, with
# -data-server); HIST=Y against HIST=N on (b).
#
# Issue 6: ndmpcopy of (a) and (b) from node 1 (127.0.0.1) to node 2
# (127.0.0.2) against `tar -cf - | tar -xf -` of the same trees into the
# same kind of destination.
#
# Needs root (loop devices), dump, tar, mkfs.ext4, mkfs.btrfs, btrfs and GNU
# time. BENCH_SKIP=4,5,6 leaves parts out.
set -euo pipefail

cd "$(dirname "$0")/.."
GO=${GO:-go}
BIN=${BIN:-bin}
FILES=${BENCH_FILES:-200000}
BIG_MB=${BENCH_BIG_MB:-1024}
BIG_COUNT=${BENCH_BIG_COUNT:-4}
RUNS=${BENCH_RUNS:-3}
SKIP=${BENCH_SKIP:-}

die() { printf 'bench: %s\n' "$*" >&2; exit 1; }
skip() { case ",$SKIP," in *",$1,"*) return 0 ;; esac; return 1; }
[ "$(id -u)" = 0 ] || die "needs root (loop devices)"
for t in dump tar mkfs.ext4 mkfs.btrfs btrfs losetup python3 /usr/bin/time; do
	command -v "$t" >/dev/null || die "needs $t"
done
for b in tapestry tapestryd ndmpcopy; do
	[ -x "$BIN/$b" ] || "$GO" build -o "$BIN/" ./cmd/tapestry ./cmd/tapestryd ./cmd/ndmpcopy
done
TAPESTRY=$(realpath "$BIN/tapestry")
TAPESTRYD=$(realpath "$BIN/tapestryd")
NDMPCOPY=$(realpath "$BIN/ndmpcopy")

WORK=$(mktemp -d "${TMPDIR:-/var/tmp}/tapestry-bench.XXXXXX")
LOOPS=()
MOUNTS=()
PIDS=()
cleanup() {
	local p m l
	for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
	for m in "${MOUNTS[@]}"; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done
	for l in "${LOOPS[@]}"; do losetup -d "$l" 2>/dev/null || true; done
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# loopfs TYPE SIZE_MB DIR: makes and mounts a file system on a loop device.
loopfs() {
	local typ=$1 mb=$2 dir=$3 l
	truncate -s "${mb}M" "$WORK/$typ.img"
	case $typ in
	ext4) mkfs.ext4 -q -N $((FILES * 2 + 10000)) "$WORK/$typ.img" ;;
	btrfs) mkfs.btrfs -q "$WORK/$typ.img" >/dev/null ;;
	esac
	l=$(losetup -f --show "$WORK/$typ.img")
	LOOPS+=("$l")
	mkdir -p "$dir"
	mount "$l" "$dir"
	MOUNTS=("$dir" "${MOUNTS[@]}")
}

# time_run NAME [-before CMD] -- CMD...: runs CMD RUNS times (CMD of -before
# and a sync untimed before each), records the best seconds and the highest peak RSS (KB).
declare -A SECS MEM
time_run() {
	local name=$1 before="" i s m best="" peak=0
	shift
	if [ "$1" = -before ]; then before=$2; shift 2; fi
	[ "$1" = -- ] && shift
	for ((i = 0; i < RUNS; i++)); do
		[ -n "$before" ] && eval "$before"
		# No run pays for the writeback of what an earlier one left dirty.
		sync
		/usr/bin/time -f '%e %M' -o "$WORK/time.out" "$@" >"$WORK/out.txt" 2>"$WORK/err.out" || {
			cat "$WORK/out.txt" "$WORK/err.out" >&2; die "$name failed"; }
		read -r s m <"$WORK/time.out"
		if [ -z "$best" ] || awk -v a="$s" -v b="$best" 'BEGIN { exit !(a < b) }'; then best=$s; fi
		[ "$m" -gt "$peak" ] && peak=$m
	done
	SECS["$name"]=$best
	MEM["$name"]=$peak
	printf '  %-34s %8.2f s %8d KB peak\n' "$name" "$best" "$peak"
}
ratio() { awk -v a="${SECS[$1]}" -v b="${SECS[$2]}" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
RESULTS=()
result() { RESULTS+=("$(printf '%-58s %6s   (goal %s)' "$1" "$2" "$3")"); }
warm() { find "$@" -type f -print0 | xargs -0 -r cat >/dev/null; }
empty() { find "$1" -mindepth 1 -maxdepth 1 -exec rm -rf {} +; }

printf '== machine: %s CPUs, %s MB RAM, kernel %s, %s\n' "$(nproc)" \
	"$(awk '/MemTotal/ {print int($2/1024)}' /proc/meminfo)" "$(uname -r)" "$(date -u '+%F %T UTC')"
printf '   sizes: (a) %d x %d MiB, (b) %d x 4 KiB; best of %d runs\n' "$BIG_COUNT" "$BIG_MB" "$FILES" "$RUNS"

size_mb=$((BIG_COUNT * BIG_MB + FILES * 8 / 1024 + 512))
echo "== preparing a ${size_mb} MB ext4 on a loop device"
loopfs ext4 "$size_mb" "$WORK/mnt"
mkdir -p "$WORK/mnt/a" "$WORK/mnt/b"
for i in $(seq 1 "$BIG_COUNT"); do
	head -c "$((BIG_MB << 20))" /dev/urandom >"$WORK/mnt/a/big$i"
done
python3 - "$WORK/mnt/b" "$FILES" <<'PY'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
data = os.urandom(4096)
for i in range(n):
    d = os.path.join(root, "d%04d" % (i // 1000))
    if i % 1000 == 0:
        os.mkdir(d)
    with open(os.path.join(d, "f%06d" % i), "wb") as f:
        f.write(data)
PY
sync
warm "$WORK/mnt"

if ! skip 4; then
	# Linux dump backs up a directory of a mounted ext4 at level 0 (it reads
	# the device underneath), so all three tools read the same tree.
	for set in a b; do
		echo "== issue 4: level 0 of ($set)"
		time_run "tapestry dump -0 ($set)" -before 'rm -f $WORK/img.tap' -- "$TAPESTRY" dump -0 -f "$WORK/img.tap" "$WORK/mnt/$set"
		tsize=$(stat -c %s "$WORK/img.tap")
		[ "$set" = b ] && mv "$WORK/img.tap" "$WORK/b.tap" || rm -f "$WORK/img.tap"
		time_run "tar -cf ($set)" -before 'rm -f $WORK/img.tar' -- tar -cf "$WORK/img.tar" -C "$WORK/mnt/$set" .
		[ "$set" = b ] && mv "$WORK/img.tar" "$WORK/b.tar" || rm -f "$WORK/img.tar"
		time_run "Linux dump -0 ($set)" -before 'rm -f $WORK/img.dump' -- dump -0 -q -f "$WORK/img.dump" "$WORK/mnt/$set"
		rm -f "$WORK/img.dump"
		printf '  image size (tapestry): %d MB\n' $((tsize >> 20))
		result "4($set) tapestry dump -0 / tar -cf" "$(ratio "tapestry dump -0 ($set)" "tar -cf ($set)")" "<= 1"
		result "4($set) tapestry dump -0 / Linux dump -0" "$(ratio "tapestry dump -0 ($set)" "Linux dump -0 ($set)")" "<= 1"
	done

	echo "== issue 4: restore of (b)"
	mkdir -p "$WORK/r1" "$WORK/r2"
	time_run "tapestry restore -r (b)" -before 'empty $WORK/r1' -- \
		sh -c 'cd "$1" && exec "$2" restore -r -f "$3"' sh "$WORK/r1" "$TAPESTRY" "$WORK/b.tap"
	n1=$(find "$WORK/r1" -type f -name 'f*' | wc -l)
	[ "$n1" -eq "$FILES" ] || die "tapestry restore gave $n1 files, not $FILES"
	time_run "tar -xf (b)" -before 'empty $WORK/r2' -- tar -xf "$WORK/b.tar" -C "$WORK/r2"
	result "4(b) tapestry restore -r / tar -xf" "$(ratio "tapestry restore -r (b)" "tar -xf (b)")" "<= 1"
	result "4(b) tapestry dump peak memory, MB" "$((${MEM["tapestry dump -0 (b)"]} / 1024))" "< 100"
	result "4(b) tapestry restore peak memory, MB" "$((${MEM["tapestry restore -r (b)"]} / 1024))" "< 100"
	rm -rf "$WORK/r1" "$WORK/r2" "$WORK/b.tap" "$WORK/b.tar"
fi

if ! skip 5 || ! skip 6; then
	echo "== preparing btrfs volumes and two tapestryd nodes"
	loopfs btrfs "$((size_mb + 1024))" "$WORK/bfs"
	for set in a b; do
		btrfs -q subvolume create "$WORK/bfs/$set" >/dev/null
		cp -a "$WORK/mnt/$set/." "$WORK/bfs/$set/"
	done
	sync
	warm "$WORK/bfs"

	export TAPESTRY_ADMIN_PASSWORD="bench$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')7"
	export TAPESTRY_PASSWORD="$TAPESTRY_ADMIN_PASSWORD" TAPESTRY_USER=admin
	port_free() { ! (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }
	declare -A ADDR PW
	# node N HOST: starts tapestryd N on HOST, makes SVM vsN and user backup1.
	node() {
		local n=$1 host=$2 port="" p i
		for _ in $(seq 1 50); do
			p=$((20000 + RANDOM % 30000))
			if port_free "$host" "$p"; then port=$p; break; fi
		done
		[ -n "$port" ] || die "no free TCP port on $host"
		mkdir -p "$WORK/node$n"
		"$TAPESTRYD" --data-dir "$WORK/node$n/data" --ndmp-listen "$host:$port" --log-level warn \
			>"$WORK/node$n/out" 2>"$WORK/node$n/log" &
		PIDS+=($!)
		export TAPESTRY_SOCKET="$WORK/node$n/data/admin.sock"
		for i in $(seq 1 100); do
			"$TAPESTRY" cluster show >/dev/null 2>&1 && break
			[ "$i" = 100 ] && { cat "$WORK/node$n/log" >&2; die "tapestryd $n did not start"; }
			sleep 0.1
		done
		"$TAPESTRY" vserver create -vserver "vs$n" >/dev/null
		"$TAPESTRY" security login create -user-or-group-name backup1 -role backup -password "Bk$TAPESTRY_ADMIN_PASSWORD" >/dev/null
		PW[$n]=$("$TAPESTRY" vserver services ndmp generate-password -vserver cluster1 -user backup1 | awk '/^Password:/ {print $2}')
		[ -n "${PW[$n]}" ] || die "no NDMP password for node $n"
		ADDR[$n]="$host:$port"
	}
	node 1 127.0.0.1
	node 2 127.0.0.2
	export TAPESTRY_SOCKET="$WORK/node1/data/admin.sock"
	for set in a b; do
		"$TAPESTRY" volume create -vserver vs1 -volume "$set" -path "$WORK/bfs/$set" -snapshot-provider btrfs >/dev/null
	done
	export TAPESTRY_SOCKET="$WORK/node2/data/admin.sock"
	mkdir -p "$WORK/dst" "$WORK/tdst"
	"$TAPESTRY" volume create -vserver vs2 -volume dst -path "$WORK/dst" >/dev/null
	export TAPESTRY_SOCKET="$WORK/node1/data/admin.sock"
	DMA=(-ndmp-server "${ADDR[1]}" -user backup1 -password "${PW[1]}" -device nrst0l -level 0 -tape-file 0)
fi

if ! skip 5; then
	echo "== issue 5: local NDMP backup (node 1, virtual drive nrst0l)"
	time_run "tapestry dump -0 (a, btrfs)" -before 'rm -f $WORK/img.tap' -- "$TAPESTRY" dump -0 -f "$WORK/img.tap" "$WORK/bfs/a"
	# The virtual tape fsyncs the cartridge when the tape is closed; the
	# same engine run with an fsync of its image is the like-for-like
	# figure.
	time_run "tapestry dump -0 (a, btrfs) + fsync" -before 'rm -f $WORK/img.tap' -- \
		sh -c '"$1" dump -0 -f "$2" "$3" && sync "$2"' sh "$TAPESTRY" "$WORK/img.tap" "$WORK/bfs/a"
	# An NDMP backup reads a snapshot made for it, whose files are new
	# inodes with nothing in the page cache (btrfs caches by subvolume),
	# while the runs above read the warm volume: the engine on a fresh
	# read-only snapshot (made before the sync, untimed), image fsynced,
	# is the like-for-like figure.
	fresh_snap() {
		rm -f "$WORK/img.tap"
		btrfs -q subvolume delete "$WORK/bfs/a-snap" >/dev/null 2>&1 || true
		btrfs -q subvolume snapshot -r "$WORK/bfs/a" "$WORK/bfs/a-snap" >/dev/null
	}
	time_run "tapestry dump -0 (a, snap) + fsync" -before fresh_snap -- \
		sh -c '"$1" dump -0 -f "$2" "$3" && sync "$2"' sh "$TAPESTRY" "$WORK/img.tap" "$WORK/bfs/a-snap"
	btrfs -q subvolume delete "$WORK/bfs/a-snap" >/dev/null
	rm -f "$WORK/img.tap"
	time_run "NDMP local backup (a)" -- "$TAPESTRY" ndmp backup "${DMA[@]}" -path /vs1/a
	result "5 NDMP local backup: engine / NDMP (throughput ratio)" "$(ratio "tapestry dump -0 (a, btrfs)" "NDMP local backup (a)")" ">= 0.9"
	result "5 NDMP local backup: engine+fsync / NDMP (throughput ratio)" "$(ratio "tapestry dump -0 (a, btrfs) + fsync" "NDMP local backup (a)")" ">= 0.9"
	result "5 NDMP local backup: engine(snapshot)+fsync / NDMP" "$(ratio "tapestry dump -0 (a, snap) + fsync" "NDMP local backup (a)")" ">= 0.9"
	# Three-way: the data service of node 1 (127.0.0.1) sends the image
	# over TCP to the mover of node 2 (127.0.0.2), which writes its nrst0l.
	time_run "NDMP three-way backup (a)" -- "$TAPESTRY" ndmp backup -ndmp-server "${ADDR[2]}" -user backup1 -password "${PW[2]}" \
		-device nrst0l -level 0 -tape-file 0 -data-server "${ADDR[1]}" -data-password "${PW[1]}" -path /vs1/a
	result "5 NDMP three-way backup: engine / NDMP (throughput ratio)" "$(ratio "tapestry dump -0 (a, btrfs)" "NDMP three-way backup (a)")" ">= 0.8"
	result "5 NDMP three-way backup: engine+fsync / NDMP (throughput ratio)" "$(ratio "tapestry dump -0 (a, btrfs) + fsync" "NDMP three-way backup (a)")" ">= 0.8"
	result "5 NDMP three-way backup: engine(snapshot)+fsync / NDMP" "$(ratio "tapestry dump -0 (a, snap) + fsync" "NDMP three-way backup (a)")" ">= 0.8"
	time_run "NDMP local backup HIST=N (b)" -- "$TAPESTRY" ndmp backup "${DMA[@]}" -path /vs1/b
	time_run "NDMP local backup HIST=Y (b)" -- "$TAPESTRY" ndmp backup "${DMA[@]}" -path /vs1/b -hist
	grep -q . "$WORK/out.txt" && sed 's/^/  last summary: /' "$WORK/out.txt"
	result "5 HIST=Y / HIST=N on (b)" "$(ratio "NDMP local backup HIST=Y (b)" "NDMP local backup HIST=N (b)")" "<= 1.2"
fi

if ! skip 6; then
	echo "== issue 6: ndmpcopy node 1 -> node 2 against tar | tar"
	for set in a b; do
		time_run "ndmpcopy ($set)" -before 'empty $WORK/dst' -- "$NDMPCOPY" -sa "backup1:${PW[1]}" -da "backup1:${PW[2]}" \
			-st md5 -dt md5 "${ADDR[1]}:/vs1/$set" "${ADDR[2]}:/vs2/dst"
		n1=$(find "$WORK/dst" -type f ! -name restore_symboltable | wc -l)
		time_run "tar -cf - | tar -xf - ($set)" -before 'empty $WORK/tdst' -- \
			sh -c 'tar -cf - -C "$1" . | tar -xf - -C "$2"' sh "$WORK/bfs/$set" "$WORK/tdst"
		n2=$(find "$WORK/tdst" -type f | wc -l)
		[ "$n1" = "$n2" ] || die "ndmpcopy ($set) gave $n1 files, tar $n2"
		result "6($set) ndmpcopy: tar|tar / ndmpcopy (throughput ratio)" "$(ratio "tar -cf - | tar -xf - ($set)" "ndmpcopy ($set)")" ">= 0.8"
	done
fi

echo "== results"
printf '%s\n' "${RESULTS[@]}"

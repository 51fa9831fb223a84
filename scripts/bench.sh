#!/usr/bin/env bash
# Tapestry dump benchmark (make bench): level 0 dumps of
#   (a) four 1 GiB files and
#   (b) 200,000 files of 4 KiB (warm cache)
# on a loop-mounted ext4, into an image file, with `tapestry dump`, `tar -cf`
# and Linux `dump -0`; then restore of (b) with `tapestry restore -r` and
# `tar -xf`; peak memory of tapestry on (b) from /usr/bin/time -v.
# Needs root (loop devices), dump, tar and GNU time. One run; ratios printed.
# BENCH_FILES, BENCH_BIG_MB and BENCH_BIG_COUNT make it smaller for a try-out.
set -euo pipefail

cd "$(dirname "$0")/.."
GO=${GO:-go}
BIN=${BIN:-bin}
FILES=${BENCH_FILES:-200000}
BIG_MB=${BENCH_BIG_MB:-1024}
BIG_COUNT=${BENCH_BIG_COUNT:-4}

die() { printf 'bench: %s\n' "$*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "needs root (loop devices)"
for t in dump tar mkfs.ext4 losetup /usr/bin/time; do command -v "$t" >/dev/null || die "needs $t"; done
[ -x "$BIN/tapestry" ] || "$GO" build -o "$BIN/" ./cmd/tapestry
TAPESTRY=$(realpath "$BIN/tapestry")

WORK=$(mktemp -d "${TMPDIR:-/var/tmp}/tapestry-bench.XXXXXX")
LOOP=""
cleanup() {
	if mountpoint -q "$WORK/mnt" 2>/dev/null; then umount "$WORK/mnt" || true; fi
	if [ -n "$LOOP" ]; then losetup -d "$LOOP" || true; fi
	rm -rf "$WORK"
}
trap cleanup EXIT

# time_run NAME CMD...: runs CMD, records seconds and peak RSS (KB).
declare -A SECS MEM
time_run() {
	local name=$1; shift
	/usr/bin/time -f '%e %M' -o "$WORK/time.out" "$@" >/dev/null 2>"$WORK/err.out" || {
		cat "$WORK/err.out" >&2; die "$name failed"; }
	local s m
	read -r s m <"$WORK/time.out"
	SECS["$name"]=$s
	MEM["$name"]=$m
	printf '  %-28s %8.2f s %8d KB peak\n' "$name" "$s" "$m"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }

size_mb=$(( BIG_COUNT * BIG_MB + FILES * 8 / 1024 + 512 ))
echo "== preparing a ${size_mb} MB ext4 on a loop device"
truncate -s "${size_mb}M" "$WORK/fs.img"
mkfs.ext4 -q -N $(( FILES + 10000 )) "$WORK/fs.img"
LOOP=$(losetup -f --show "$WORK/fs.img")
mkdir -p "$WORK/mnt"
mount "$LOOP" "$WORK/mnt"
mkdir -p "$WORK/mnt/a" "$WORK/mnt/b"
for i in $(seq 1 "$BIG_COUNT"); do
	head -c "$(( BIG_MB << 20 ))" /dev/urandom >"$WORK/mnt/a/big$i"
done
# (b): 4 KiB files, 1,000 per directory.
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
# Warm the cache for (b).
find "$WORK/mnt/b" -type f -print0 | xargs -0 cat >/dev/null

# Linux dump backs up a directory of a mounted ext4 at level 0 (it reads the
# device underneath), so all three tools read the same tree.
for set in a b; do
	echo "== level 0 of ($set)"
	time_run "tapestry dump ($set)" "$TAPESTRY" dump -0 -f "$WORK/img.tap" "$WORK/mnt/$set"
	tsize=$(stat -c %s "$WORK/img.tap")
	[ "$set" = b ] && mv "$WORK/img.tap" "$WORK/b.tap" || rm -f "$WORK/img.tap"
	time_run "tar -cf ($set)" tar -cf "$WORK/img.tar" -C "$WORK/mnt/$set" .
	[ "$set" = b ] && mv "$WORK/img.tar" "$WORK/b.tar" || rm -f "$WORK/img.tar"
	time_run "Linux dump -0 ($set)" dump -0 -q -f "$WORK/img.dump" "$WORK/mnt/$set"
	rm -f "$WORK/img.dump"
	printf '  image size (tapestry): %d MB\n' $(( tsize >> 20 ))
	printf '  ratio tapestry/tar: %s   tapestry/dump: %s\n' \
		"$(ratio "${SECS["tapestry dump ($set)"]}" "${SECS["tar -cf ($set)"]}")" \
		"$(ratio "${SECS["tapestry dump ($set)"]}" "${SECS["Linux dump -0 ($set)"]}")"
done

echo "== restore of (b)"
mkdir -p "$WORK/r1" "$WORK/r2"
( cd "$WORK/r1" && time_run "tapestry restore -r (b)" "$TAPESTRY" restore -r -f "$WORK/b.tap" )
read -r s m <"$WORK/time.out"; SECS[tr]=$s; MEM[tr]=$m
( cd "$WORK/r2" && time_run "tar -xf (b)" tar -xf "$WORK/b.tar" )
read -r s m <"$WORK/time.out"; SECS[tx]=$s; MEM[tx]=$m
printf '  ratio tapestry/tar: %s\n' "$(ratio "${SECS[tr]}" "${SECS[tx]}")"
n1=$(find "$WORK/r1" -type f -name 'f*' | wc -l)
[ "$n1" -eq "$FILES" ] || die "tapestry restore gave $n1 files, not $FILES"

echo "== peak memory of tapestry on (b)"
printf '  dump: %d MB, restore: %d MB (goal < 100 MB)\n' \
	$(( ${MEM["tapestry dump (b)"]} / 1024 )) $(( ${MEM[tr]} / 1024 ))

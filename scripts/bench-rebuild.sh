#!/usr/bin/env bash
# Benchmark: rebuild of `posts` (the example schema, WAL mode), side by side in one run, each from
# a fresh copy of the same file:
#   floor    the same steps by hand: the generated SQL minus its guard, in one transaction, in
#            sqlite3 (secure_delete off: Debian's sqlite3 turns it on, zeroing every dropped page)
#   rebuild  dbtool rebuild posts --enum status=…,failed --no-backup (preflight, guard, the copy
#            proven row by row before the DROP, the foreign-key check of the write session (which
#            skips posts itself: its rows and keys are proven unchanged), ANALYZE)
#   upgrade  dbtool upgrade --no-backup with the same rebuild as migration V0007 (the same)
#   backup   dbtool rebuild with its automatic backup (the default), for reference
# Every command runs once per round, round-robin; medians of the rounds. Wall and CPU seconds,
# peak RSS, file growth, peak WAL size. The last lines are the ratio against the goal of issue 11
# (rebuild <= 1.1x the floor) and what a single foreign-key check costs here.
#
#   scripts/bench-rebuild.sh [SIZE_MIB]     (default 300; 1024 for the 1 GiB figures)
#   ROUNDS=3 BENCH_DATA=/work/bench-data scripts/bench-rebuild.sh 1024
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
size=${1:-300}
dir=${BENCH_DATA:-/work/bench-data}/rebuild
rounds=${ROUNDS:-3}
# A post is about 1.3 KiB on disk.
rows=$(( size * 1048576 / 1340 ))
mkdir -p "$dir"

# DBTOOL=path runs another build (e.g. an older one, for before/after figures). BEFORE=path also
# runs that build's `rebuild --no-backup` in the same rounds ("before"), under the same load.
dbtool=${DBTOOL:-}
if [ -z "$dbtool" ]; then
    cargo build --quiet --release
    dbtool="$repo/target/release/dbtool"
fi

# The schema before V0007 (the migration this benchmark times), as a migrations folder.
mig="$dir/migrations"
rm -rf "$mig" && mkdir -p "$mig"
for f in migrations/V000[1-6]__*.sql; do cp "$f" "$mig/"; done

base="$dir/base-$size.db"
if [ ! -f "$base" ]; then
    echo "generating $base ($rows posts, about 1.3 KiB each)..." >&2
    rm -f "$base" "$base-wal" "$base-shm"
    "$dbtool" --quiet -d "$base" --migrations "$mig" init
    sqlite3 "$base" <<SQL
PRAGMA journal_mode = WAL;
BEGIN;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10000)
INSERT INTO users (id, linkedin_sub, email, name, full_name)
SELECT i, 'li-' || i, 'user' || i || '@example.com', 'User ' || i, 'User ' || i FROM n;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $rows)
INSERT INTO posts (id, content, platform, status, user_id, created_at, scheduled_at)
SELECT i, hex(randomblob(480)), CASE i % 3 WHEN 0 THEN 'twitter' ELSE 'linkedin' END,
       CASE i % 3 WHEN 0 THEN 'draft' WHEN 1 THEN 'scheduled' ELSE 'posted' END,
       1 + i % 10000, '2026-01-01T00:00:00Z', CASE i % 3 WHEN 1 THEN '2026-12-01T00:00:00Z' END
FROM n;
COMMIT;
PRAGMA wal_checkpoint(TRUNCATE);
SQL
fi
echo "base: $base, $(du -m "$base" | cut -f1) MiB, $(sqlite3 "$base" 'SELECT count(*) FROM posts') posts" >&2

# The generated rebuild (from the migrations folder, as `create --rebuild` does).
"$dbtool" --migrations "$mig" create --rebuild posts --enum status=draft,scheduled,posted,failed --sql bench >"$dir/enum.sql"
# Floor: the generated up (between "-- up" and "-- down") without its guard, by hand in sqlite3.
awk '/^-- up$/{on=1; next} /^-- down$/{on=0} on' "$dir/enum.sql" \
    | awk '/^-- 1. Guard/{skip=1} /^-- 2. /{skip=0} !skip' \
    | { echo "PRAGMA foreign_keys = OFF;"; echo "PRAGMA secure_delete = OFF;"; echo "BEGIN;"; cat; echo "COMMIT;"; } \
    >"$dir/floor-enum.sql"
# The V0007 migration as dbtool would write it, for the upgrade run.
mig7="$dir/migrations-v7"
rm -rf "$mig7" && cp -r "$mig" "$mig7"
"$dbtool" --quiet --migrations "$mig7" create "bench enum" --rebuild posts --enum status=draft,scheduled,posted,failed >/dev/null

work="$dir/work.db"
result="$dir/results.txt"
: >"$result"

# run NAME CMD…: fresh copy, then time CMD with CPU, peak RSS, file growth and peak WAL size.
run() {
    local name=$1
    shift
    rm -rf "$work" "$work-wal" "$work-shm" "$work-journal" "$dir/backups"
    cp "$base" "$work"
    sync
    local size_before peak=0 wal
    size_before=$(stat -c %s "$work")
    /usr/bin/time -f "%e %M %U %S" -o "$dir/time.txt" "$@" >/dev/null 2>"$dir/stderr.txt" &
    local pid=$!
    while kill -0 "$pid" 2>/dev/null; do
        wal=$(stat -c %s "$work-wal" 2>/dev/null || echo 0)
        [ "$wal" -gt "$peak" ] && peak=$wal
        sleep 0.05
    done
    if ! wait "$pid"; then
        echo "$name failed:" >&2
        cat "$dir/stderr.txt" >&2
        exit 1
    fi
    local secs rss user sys size_after
    read -r secs rss user sys <"$dir/time.txt"
    size_after=$(stat -c %s "$work")
    echo "$name $secs $rss $(( (size_after - size_before) / 1048576 )) $(( peak / 1048576 )) $(echo "$user + $sys" | bc -l)" >>"$result"
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
enum=(--enum status=draft,scheduled,posted,failed)
for i in $(seq "$rounds"); do
    echo "round $i/$rounds" >&2
    run floor sqlite3 -bail "$work" ".read $dir/floor-enum.sql"
    run rebuild "$dbtool" -d "$work" rebuild posts --no-backup "${enum[@]}"
    if [ -n "${BEFORE:-}" ]; then
        run before "$BEFORE" -d "$work" rebuild posts --no-backup "${enum[@]}"
    fi
    run upgrade "$dbtool" -d "$work" --migrations "$mig7" upgrade --no-backup
    run with-backup "$dbtool" -d "$work" --backup-dir "$dir/backups" rebuild posts "${enum[@]}"
done

# What one whole-database foreign_key_check costs (what the write session would run if it could
# not spare the rebuilt table).
cp "$base" "$work"
fk_start=$(date +%s.%N)
sqlite3 "$work" "PRAGMA foreign_key_check" >/dev/null
fk=$(echo "$(date +%s.%N) - $fk_start" | bc -l)

med() { grep "^$1 " "$result" | awk -v k="$2" '{print $k}' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo
echo "posts: $rows rows, base file $(du -m "$base" | cut -f1) MiB, $(nproc) cores; median of $rounds round(s); sqlite3 CLI $(sqlite3 --version | cut -d' ' -f1), dbtool uses its bundled SQLite"
echo "load average before / after: $load_before / $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-12s %8s %8s %8s %12s %15s %13s   %s\n' run "wall s" "cpu s" "x floor" "peak RSS MiB" "file growth MiB" "peak WAL MiB" "all wall s"
floor=$(med floor 2)
floor_cpu=$(med floor 6)
names="floor rebuild upgrade with-backup"
[ -n "${BEFORE:-}" ] && names="$names before"
for name in $names; do
    printf '%-12s %8.2f %8.2f %8.2f %12.0f %15d %13d   %s\n' "$name" "$(med "$name" 2)" "$(med "$name" 6)" \
        "$(echo "$(med "$name" 2) / $floor" | bc -l)" "$(echo "$(med "$name" 3) / 1024" | bc -l)" \
        "$(med "$name" 4)" "$(med "$name" 5)" "$(grep "^$name " "$result" | awk '{printf "%s ", $2}')"
done
printf 'one PRAGMA foreign_key_check of the whole database: %.2f s (the write session spares posts: proven unchanged)\n' "$fk"
if [ -n "${BEFORE:-}" ]; then
    printf 'before (%s) / floor: %.2fx wall, %.2fx cpu\n' "$BEFORE" \
        "$(echo "$(med before 2) / $floor" | bc -l)" "$(echo "$(med before 6) / $floor_cpu" | bc -l)"
fi
printf 'rebuild / floor: %.2fx wall, %.2fx cpu; upgrade / floor: %.2fx wall (goal <= 1.1)\n' \
    "$(echo "$(med rebuild 2) / $floor" | bc -l)" "$(echo "$(med rebuild 6) / $floor_cpu" | bc -l)" \
    "$(echo "$(med upgrade 2) / $floor" | bc -l)"

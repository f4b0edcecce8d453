#!/usr/bin/env bash
# Benchmark: rebuild of `posts` in a ~1 GiB database (the example schema, WAL mode), side by side
# in one run, each from a fresh copy of the same file:
#   A. enum widening (--enum status=…,failed, the example's V0007):
#      floor   = the same steps by hand (generated SQL minus the guard) in one transaction, sqlite3
#                (with secure_delete off: Debian's sqlite3 turns it on, zeroing every dropped page)
#      dbtool rebuild posts --enum …          (preflight, guard, post-checks, ANALYZE)
#      dbtool upgrade (V0007 as a migration)  (the same, plus the executor's foreign_key_check)
#   B. DEFAULT change (posts.platform), which sqlite-utils can express too:
#      floor, dbtool rebuild posts --default …, sqlite-utils transform posts --default …
# Reports wall time (median of RUNS), peak RSS, file growth and peak WAL size, and ratios to the
# floor. Needs sqlite3 and (for B) sqlite-utils (`pip install sqlite-utils`).
#
#   BENCH_DIR=/work/bench-data ROWS=1000000 RUNS=3 scripts/bench-rebuild.sh
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
dir=${BENCH_DIR:-$repo/bench-out}
rows=${ROWS:-1000000}
runs=${RUNS:-3}
mkdir -p "$dir"

cargo build --quiet --release
dbtool="$repo/target/release/dbtool"

# The schema before V0007 (the migration this benchmark times), as a migrations folder.
mig="$dir/migrations"
rm -rf "$mig" && mkdir -p "$mig"
for f in migrations/V000[1-6]__*.sql; do cp "$f" "$mig/"; done

base="$dir/base-$rows.db"
if [ ! -f "$base" ]; then
    echo "generating $base ($rows posts, about 1 KiB each)..." >&2
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

# The generated rebuilds (from the migrations folder, as `create --rebuild` does).

"$dbtool" --migrations "$mig" create --rebuild posts --enum status=draft,scheduled,posted,failed --sql bench >"$dir/enum.sql"
"$dbtool" --migrations "$mig" create --rebuild posts --default "platform='x'" --sql bench >"$dir/default.sql"
# Floor: the generated up (between "-- up" and "-- down") without its guard, by hand in sqlite3.
floor_sql() {
    awk '/^-- up$/{on=1; next} /^-- down$/{on=0} on' "$1" \
        | awk '/^-- 1. Guard/{skip=1} /^-- 2. /{skip=0} !skip' \
        | { echo "PRAGMA foreign_keys = OFF;"; echo "PRAGMA secure_delete = OFF;"; echo "BEGIN;"; cat; echo "COMMIT;"; }
}
floor_sql "$dir/enum.sql" >"$dir/floor-enum.sql"
floor_sql "$dir/default.sql" >"$dir/floor-default.sql"
# The V0007 migration as dbtool would write it, for the upgrade run.
mig7="$dir/migrations-v7"
rm -rf "$mig7" && cp -r "$mig" "$mig7"
"$dbtool" --quiet --migrations "$mig7" create "bench enum" --rebuild posts --enum status=draft,scheduled,posted,failed >/dev/null

work="$dir/work.db"
result="$dir/results.txt"
: >"$result"

# run NAME CMD…: fresh copy, then time CMD with peak RSS, file growth and peak WAL size.
run() {
    local name=$1
    shift
    rm -f "$work" "$work-wal" "$work-shm" "$work-journal"
    cp "$base" "$work"
    sync
    local size_before peak=0 wal
    size_before=$(stat -c %s "$work")
    /usr/bin/time -f "%e %M" -o "$dir/time.txt" "$@" >/dev/null 2>"$dir/stderr.txt" &
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
    local secs rss size_after
    read -r secs rss <"$dir/time.txt"
    size_after=$(stat -c %s "$work")
    echo "$name $secs $rss $(( (size_after - size_before) / 1048576 )) $(( peak / 1048576 ))" >>"$result"
}

for i in $(seq "$runs"); do
    echo "round $i/$runs" >&2
    run A-floor sqlite3 -bail "$work" ".read $dir/floor-enum.sql"
    run A-dbtool-rebuild "$dbtool" -d "$work" rebuild posts --enum status=draft,scheduled,posted,failed
    run A-dbtool-upgrade "$dbtool" -d "$work" --migrations "$mig7" upgrade
    run B-floor sqlite3 -bail "$work" ".read $dir/floor-default.sql"
    run B-dbtool-rebuild "$dbtool" -d "$work" rebuild posts --default "platform='x'"
    if command -v sqlite-utils >/dev/null; then
        run B-sqlite-utils sqlite-utils transform "$work" posts --default platform x
    fi
done

echo
echo "posts: $rows rows, base file $(du -m "$base" | cut -f1) MiB; median of $runs run(s); sqlite3 CLI $(sqlite3 --version | cut -d' ' -f1), dbtool uses its bundled SQLite"
printf '%-18s %9s %8s %12s %14s %13s\n' run "wall s" "x floor" "peak RSS MiB" "file growth MiB" "peak WAL MiB"
for name in A-floor A-dbtool-rebuild A-dbtool-upgrade B-floor B-dbtool-rebuild B-sqlite-utils; do
    grep -q "^$name " "$result" || continue
    floor=$(grep "^${name%%-*}-floor " "$result" | awk '{print $2}' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
    grep "^$name " "$result" | sort -k2 -n | awk -v n="$name" -v f="$floor" '
        {t[NR]=$2; m[NR]=$3; g[NR]=$4; w[NR]=$5}
        END {k=int((NR+1)/2); printf "%-18s %9.2f %8.2f %12.0f %14d %13d\n", n, t[k], t[k]/f, m[k]/1024, g[k], w[k]}'
done

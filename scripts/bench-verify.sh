#!/usr/bin/env bash
# Benchmark `dbtool verify` (the stairway: up, down, up again for every migration) over N
# generated migrations (default 200), against two baselines run side by side in the same run:
#
#   floor    sqlite3 running, in one in-memory database, exactly the SQL the stairway runs
#            (every up, down and up again) with no checks, snapshots or history rows
#   upgrade  `dbtool upgrade` of the same migrations from empty into a file (one pass)
#
# Goal (issue 5): verify over 200 migrations in under 2 s. Each figure is the best of $RUNS runs
# (default 5) of the whole process. Usage: scripts/bench-verify.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."

n=${1:-200}
runs=${RUNS:-5}
command -v sqlite3 >/dev/null || { echo "needs sqlite3 on PATH (the floor baseline)" >&2; exit 2; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mig="$work/migrations"
mkdir -p "$mig"

# Migration i creates table t$i (referencing t$((i-1)), with an index); every 10th also adds a
# column and an index to the previous table, so ALTER TABLE … ADD/DROP COLUMN round-trips too.
for i in $(seq 1 "$n"); do
  v=$(printf '%04d' "$i")
  p=$((i - 1))
  ref=""
  (( i > 1 )) && ref=" REFERENCES t$p (id)"
  up="$mig/V${v}__table_$i.sql"
  down="$mig/V${v}__table_$i.down.sql"
  {
    echo "CREATE TABLE t$i ("
    echo "    id INTEGER PRIMARY KEY,"
    echo "    parent_id INTEGER$ref,"
    echo "    name TEXT NOT NULL,"
    echo "    created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP"
    echo ");"
    echo "CREATE INDEX idx_t${i}_name ON t$i (name);"
    if (( i % 10 == 0 )); then
      echo "ALTER TABLE t$p ADD COLUMN note_$i TEXT;"
      echo "CREATE INDEX idx_t${p}_note_$i ON t$p (note_$i);"
    fi
  } > "$up"
  {
    if (( i % 10 == 0 )); then
      echo "DROP INDEX idx_t${p}_note_$i;"
      echo "ALTER TABLE t$p DROP COLUMN note_$i;"
    fi
    echo "DROP INDEX idx_t${i}_name;"
    echo "DROP TABLE t$i;"
  } > "$down"
done

# The floor's script: for every migration, up, down, up.
for up in $(ls "$mig"/V*.sql | grep -v '\.down\.sql$' | sort); do
  down="${up%.sql}.down.sql"
  cat "$up" "$down" "$up"
done > "$work/stairway.sql"

cargo build --quiet --release
bin=./target/release/dbtool

# Run "$@" $runs times; print the best wall time in milliseconds.
best_ms() {
  local best=""
  for _ in $(seq 1 "$runs"); do
    local t0 t1 ms
    t0=$(date +%s%N)
    "$@" >/dev/null
    t1=$(date +%s%N)
    ms=$(( (t1 - t0) / 1000000 ))
    if [[ -z "$best" || $ms -lt $best ]]; then best=$ms; fi
  done
  echo "$best"
}

"$bin" --migrations "$mig" verify >/dev/null || { echo "verify failed on the generated migrations" >&2; "$bin" --migrations "$mig" verify; exit 1; }

verify_ms=$(best_ms "$bin" --migrations "$mig" verify)
floor_ms=$(best_ms sqlite3 :memory: ".read $work/stairway.sql")
upgrade_once() { rm -f "$work/up.db"; "$bin" --database "$work/up.db" --migrations "$mig" --quiet upgrade; }
upgrade_ms=$(best_ms upgrade_once)
runs_made=$("$bin" --migrations "$mig" --json verify | sed -n 's/^  "migration_runs": \([0-9]*\),$/\1/p')

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) b = 1; printf "%.1fx", a / b }'; }
echo "dbtool verify over $n migrations ($runs_made migration runs), best of $runs:"
printf '  %-46s %6d ms\n' "dbtool verify (stairway)" "$verify_ms"
printf '  %-46s %6d ms   verify = %s\n' "floor: sqlite3 :memory: running the same SQL" "$floor_ms" "$(ratio "$verify_ms" "$floor_ms")"
printf '  %-46s %6d ms   verify = %s\n' "dbtool upgrade from empty (one pass, a file)" "$upgrade_ms" "$(ratio "$verify_ms" "$upgrade_ms")"
if (( verify_ms < 2000 )); then echo "goal met: under 2 s"; else echo "goal MISSED: 2 s"; fi

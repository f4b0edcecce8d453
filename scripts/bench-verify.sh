#!/usr/bin/env bash
# Benchmark `dbtool verify` (the stairway: up, down, up again for every migration) over N
# generated migrations (default 200), against two baselines run side by side in the same run:
#
#   floor    sqlite3 running, in one in-memory database, exactly the SQL the stairway runs
#            (every up, down and up again) with no checks, snapshots or history rows
#   upgrade  `dbtool upgrade` of the same migrations from empty into a file (one pass)
#
# Goal (issue 5): verify over 200 migrations in under 2 s. Each figure is the best of $RUNS runs
# (default 5) of the whole process. Usage: scripts/bench-verify.sh [N] [MODE]
#
# MODE (issue 9: verify stays within 2x of the all-correct time whatever fails):
#   correct   every down undoes its up (default)
#   blank     every down file is empty (a no-op: the up then fails when run again)
#   failing   every down fails (a statement SQLite rejects; the down rolls back)
#   wrong     every down also leaves a table behind (does not restore: the stairway's database is
#             restored from its checkpoint after every migration)
set -euo pipefail
cd "$(dirname "$0")/.."

n=${1:-200}
mode=${2:-correct}
runs=${RUNS:-5}
case "$mode" in correct|blank|failing|wrong) ;; *) echo "unknown MODE $mode" >&2; exit 2 ;; esac
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
    case "$mode" in
      blank) echo "-- TODO" ;;
      failing) echo "DROP TABLE no_such_table_$i;" ;;
      *)
        if (( i % 10 == 0 )); then
          echo "DROP INDEX idx_t${p}_note_$i;"
          echo "ALTER TABLE t$p DROP COLUMN note_$i;"
        fi
        echo "DROP INDEX idx_t${i}_name;"
        echo "DROP TABLE t$i;"
        [[ $mode != wrong ]] || echo "CREATE TABLE left_behind_$i (x);"
        ;;
    esac
  } > "$down"
done

# The floor's script: for every migration, up, down, up (the correct downs, in every mode).
for up in $(ls "$mig"/V*.sql | grep -v '\.down\.sql$' | sort); do
  down="${up%.sql}.down.sql"
  if [[ $mode == correct ]]; then cat "$up" "$down" "$up"; else cat "$up"; fi
done > "$work/stairway.sql"

cargo build --quiet --release
bin=$PWD/target/release/dbtool

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

# Run from the scratch folder: a ./schema.sql here (the example project ships one) would be
# compared with the generated migrations.
cd "$work"
if [[ $mode == correct ]]; then
  "$bin" --migrations "$mig" verify >/dev/null || { echo "verify failed on the generated migrations" >&2; "$bin" --migrations "$mig" verify; exit 1; }
fi
verify_or_findings() { "$bin" --migrations "$mig" verify || [[ $? == 3 && $mode != correct ]]; }
verify_ms=$(best_ms verify_or_findings)
floor_ms=$(best_ms sqlite3 :memory: ".read $work/stairway.sql")
upgrade_once() { rm -f "$work/up.db"; "$bin" --database "$work/up.db" --migrations "$mig" --quiet init; }
upgrade_ms=$(best_ms upgrade_once)
runs_made=$({ "$bin" --migrations "$mig" --json verify || true; } | sed -n 's/^  "migration_runs": \([0-9]*\),$/\1/p')

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) b = 1; printf "%.1fx", a / b }'; }
echo "dbtool verify over $n migrations, downs: $mode ($runs_made migration runs), best of $runs:"
printf '  %-46s %6d ms\n' "dbtool verify (stairway)" "$verify_ms"
floor_what="floor: sqlite3 :memory: running the same SQL"
[[ $mode == correct ]] || floor_what="floor: sqlite3 :memory: running every up once"
printf '  %-46s %6d ms   verify = %s\n' "$floor_what" "$floor_ms" "$(ratio "$verify_ms" "$floor_ms")"
printf '  %-46s %6d ms   verify = %s\n' "dbtool upgrade from empty (one pass, a file)" "$upgrade_ms" "$(ratio "$verify_ms" "$upgrade_ms")"
if (( verify_ms < 2000 )); then echo "goal met: under 2 s"; else echo "goal MISSED: 2 s"; fi

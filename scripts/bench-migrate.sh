#!/usr/bin/env bash
# Benchmark dbtool's migration commands against sqlite3, side by side in one run.
#
#   current : `dbtool current` on an up-to-date database (whole process: config, folder read,
#             checksums, history)  vs  `sqlite3 DB 'SELECT max(version) FROM refinery_schema_history'`
#   upgrade : `dbtool upgrade` of 200 generated small migrations into an empty database
#             vs  `sqlite3 DB .read all.sql`, the same SQL in one transaction (the floor)
#
# Goals (issue 2): current within 1.5x, upgrade within 1.2x. Medians of many runs; hyperfine is
# used when installed (apt-get install hyperfine), else a shell loop timing with date +%s%N.
# Usage: scripts/bench-migrate.sh [RUNS]   (default 200 for current, RUNS/4 for upgrade)
set -euo pipefail
cd "$(dirname "$0")/.."

runs=${1:-200}
up_runs=$((runs / 4 > 10 ? runs / 4 : 10))
command -v sqlite3 >/dev/null || { echo "bench-migrate: sqlite3 is needed" >&2; exit 2; }

cargo build --quiet --release
dbtool="$PWD/target/release/dbtool"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# 200 small migrations: a table, an index, two rows each.
mkdir "$work/migrations"
for i in $(seq 1 200); do
  printf 'CREATE TABLE t%d(id INTEGER PRIMARY KEY, name TEXT NOT NULL, created_at TEXT);\nCREATE INDEX t%d_name ON t%d(name);\nINSERT INTO t%d(name) VALUES (%s), (%s);\n' \
    "$i" "$i" "$i" "$i" "'a'" "'b'" >"$work/migrations/V$(printf %04d "$i")__t$i.sql"
done
{ echo "BEGIN;"; cat "$work"/migrations/V*.sql; echo "COMMIT;"; } >"$work/all.sql"

# The up-to-date database for `current`.
"$dbtool" --database "$work/current.db" --migrations "$work/migrations" --quiet upgrade
current_dbtool=("$dbtool" --database "$work/current.db" --migrations "$work/migrations" current)
current_sqlite=(sqlite3 "$work/current.db" "SELECT max(version) FROM refinery_schema_history")
upgrade_dbtool=("$dbtool" --database "$work/up-dbtool.db" --migrations "$work/migrations" --quiet upgrade)
upgrade_sqlite=(sqlite3 "$work/up-sqlite.db" ".read $work/all.sql")
reset_dbs() { rm -f "$work"/up-dbtool.db* "$work"/up-sqlite.db*; }

# Sanity: both sides do the same work.
reset_dbs
"${upgrade_dbtool[@]}"
"${upgrade_sqlite[@]}"
for db in up-dbtool up-sqlite; do
  n=$(sqlite3 "$work/$db.db" "SELECT count(*) FROM sqlite_schema WHERE type='table' AND name LIKE 't%'")
  [ "$n" = 200 ] || { echo "bench-migrate: $db has $n tables, expected 200" >&2; exit 1; }
done
[ "$("${current_dbtool[@]}")" = "200 t200 (head)" ] || { echo "bench-migrate: current is wrong" >&2; exit 1; }

median_ms() { # stdin: one duration in ns per line
  sort -n | awk '{a[NR]=$1} END {m = (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2; printf "%.2f", m / 1e6}'
}

if command -v hyperfine >/dev/null; then
  tool="hyperfine $(hyperfine --version | awk '{print $2}')"
  q() { printf '%q ' "$@"; }
  hyperfine -N --style none --warmup 10 --runs "$runs" --export-json "$work/current.json" \
    "$(q "${current_dbtool[@]}")" "$(q "${current_sqlite[@]}")" >/dev/null 2>&1
  hyperfine --style none --warmup 2 --runs "$up_runs" --export-json "$work/upgrade.json" \
    --prepare "rm -f $work/up-dbtool.db*" "$(q "${upgrade_dbtool[@]}")" \
    --prepare "rm -f $work/up-sqlite.db*" "$(q "${upgrade_sqlite[@]}")" >/dev/null 2>&1
  read -r c_dbtool c_sqlite < <(python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["results"]; print(*("%.2f" % (x["median"]*1e3) for x in r))' "$work/current.json")
  read -r u_dbtool u_sqlite < <(python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["results"]; print(*("%.2f" % (x["median"]*1e3) for x in r))' "$work/upgrade.json")
else
  tool="shell loop (date +%s%N); install hyperfine for better statistics"
  time_ns() { local s e; s=$(date +%s%N); "$@" >/dev/null; e=$(date +%s%N); echo $((e - s)); }
  : >"$work/c1"; : >"$work/c2"; : >"$work/u1"; : >"$work/u2"
  for _ in $(seq 1 10); do "${current_dbtool[@]}" >/dev/null; "${current_sqlite[@]}" >/dev/null; done
  for _ in $(seq 1 "$runs"); do # alternate, so drift hits both sides alike
    time_ns "${current_dbtool[@]}" >>"$work/c1"
    time_ns "${current_sqlite[@]}" >>"$work/c2"
  done
  for _ in $(seq 1 "$up_runs"); do
    reset_dbs
    time_ns "${upgrade_dbtool[@]}" >>"$work/u1"
    time_ns "${upgrade_sqlite[@]}" >>"$work/u2"
  done
  c_dbtool=$(median_ms <"$work/c1"); c_sqlite=$(median_ms <"$work/c2")
  u_dbtool=$(median_ms <"$work/u1"); u_sqlite=$(median_ms <"$work/u2")
fi

ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
verdict() { awk -v r="$1" -v g="$2" 'BEGIN {print (r <= g) ? "ok" : "MISSED"}'; }
rc=$(ratio "$c_dbtool" "$c_sqlite"); ru=$(ratio "$u_dbtool" "$u_sqlite")
echo "bench-migrate: medians, $runs runs (current) / $up_runs runs (upgrade), $tool"
echo "  sqlite3 $(sqlite3 --version | awk '{print $1}') CLI; $(nproc) CPUs; $(uname -sr)"
printf '  %-44s %9s ms\n' "dbtool current (200 migrations, at head)" "$c_dbtool"
printf '  %-44s %9s ms\n' "sqlite3 SELECT max(version)" "$c_sqlite"
printf '  %-44s %9sx   goal <= 1.5x  %s\n' "ratio current" "$rc" "$(verdict "$rc" 1.5)"
printf '  %-44s %9s ms\n' "dbtool upgrade (200 migrations from empty)" "$u_dbtool"
printf '  %-44s %9s ms\n' "sqlite3 .read (same SQL, one transaction)" "$u_sqlite"
printf '  %-44s %9sx   goal <= 1.2x  %s\n' "ratio upgrade" "$ru" "$(verdict "$ru" 1.2)"

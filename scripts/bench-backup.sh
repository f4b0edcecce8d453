#!/usr/bin/env bash
# Benchmark: dbtool backup / restore against the tools a person would use, side by side in one run.
#
#   scripts/bench-backup.sh [SIZE_MIB]        (default 1024)
#
# Generates (once, cached in $BENCH_DATA, default /work/bench-data, never in the repository) a
# WAL-mode database of realistic rows at the head of migrations/, then times, page cache warm:
#   floor     zstd -3 -T0 on the raw file (read and compress once)
#   pipeline  sqlite3 DB ".backup tmp.db" && zstd -3 -T0 tmp.db
#   dbtool    dbtool backup (sqlite_dbpage), with --no-verify (no read-back), and with
#             --method backup-api (the fallback)
#   restore   dbtool restore --yes --no-backup (verification included) vs zstd -d
# Run round-robin ROUNDS times (default 3); the fastest run counts. Peak memory (max RSS) via
# /usr/bin/time -v.
# Also: zstd -d followed by sync (a durable write, as a restore must be), and a restore to a path
# with no database yet (nothing to replace).
# Goals (issue 3): backup <= 1.2x floor and >= 1.2x faster than the pipeline; restore <= 2x
# zstd -d; peak memory < 100 MiB.
set -euo pipefail
cd "$(dirname "$0")/.."

SIZE_MIB=${1:-1024}
DATA=${BENCH_DATA:-/work/bench-data}
DB="$DATA/bench-${SIZE_MIB}.db"
OUT="$DATA/out"
mkdir -p "$DATA" "$OUT"

cargo build --release --quiet
DBTOOL="$PWD/target/release/dbtool"

if [[ ! -f "$DB" ]]; then
    echo "generating $DB (${SIZE_MIB} MiB, once)..." >&2
    python3 scripts/bench-data.py "$DB.tmp" "$SIZE_MIB" content.db.example >&2
    mv "$DB.tmp" "$DB"
fi

TIME_V=""
if [[ -x /usr/bin/time ]] && /usr/bin/time -v true >/dev/null 2>&1; then TIME_V=/usr/bin/time; fi

# Each command is declared with `bench NAME PREP CMD`, then all are run round-robin ROUNDS times
# (default 3), so a burst of load from other work on the machine hits them alike. For each we
# keep the fastest wall time, with the CPU seconds (user+sys) and max RSS (KiB) of that run. CPU
# time is the steadier figure on a shared machine; wall time is what a person waits.
ROUNDS=${ROUNDS:-3}
declare -A SECS RSS CPU PREPS CMDS
NAMES=()
bench() { NAMES+=("$1"); PREPS[$1]=$2; CMDS[$1]=$3; }

measure() {
    local name=$1
    eval "${PREPS[$name]}"
    local log; log=$(mktemp)
    local t0 t1
    t0=$(date +%s.%N)
    if [[ -n "$TIME_V" ]]; then
        "$TIME_V" -v -o "$log" bash -c "${CMDS[$name]}" >/dev/null
    else
        bash -c "${CMDS[$name]}" >/dev/null
    fi
    t1=$(date +%s.%N)
    local secs; secs=$(echo "$t1 - $t0" | bc -l)
    local rss=0 cpu=0
    if [[ -n "$TIME_V" ]]; then
        rss=$(awk -F': ' '/Maximum resident/ {print $2}' "$log")
        cpu=$(awk -F': ' '/User time|System time/ {s += $2} END {print s}' "$log")
    fi
    rm -f "$log"
    if [[ -z "${SECS[$name]:-}" ]] || (( $(echo "$secs < ${SECS[$name]}" | bc -l) )); then
        SECS[$name]=$secs; RSS[$name]=$rss; CPU[$name]=$cpu
    fi
}

cat "$DB" >/dev/null  # warm the page cache for everyone alike
LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
DBSIZE=$(stat -c %s "$DB")

bench floor "rm -f $OUT/floor.zst" \
    "zstd -3 -T0 -q -f '$DB' -o '$OUT/floor.zst'"
bench pipeline "rm -f $OUT/tmp.db $OUT/tmp.db.zst" \
    "sqlite3 '$DB' '.backup $OUT/tmp.db' && zstd -3 -T0 -q -f '$OUT/tmp.db' -o '$OUT/tmp.db.zst'"
bench dbtool "rm -f $OUT/dbtool.db.zst" \
    "'$DBTOOL' -q --database '$DB' backup --output '$OUT/dbtool.db.zst'"
bench dbtool_noverify "rm -f $OUT/dbtool-nv.db.zst" \
    "'$DBTOOL' -q --database '$DB' backup --no-verify --output '$OUT/dbtool-nv.db.zst'"
bench dbtool_api "rm -f $OUT/dbtool-api.db.zst" \
    "'$DBTOOL' -q --database '$DB' backup --method backup-api --output '$OUT/dbtool-api.db.zst'"
# Restores read the backup the "dbtool" line just wrote.
bench zstd_d "rm -f $OUT/zstd-d.db" \
    "zstd -d -q -f '$OUT/dbtool.db.zst' -o '$OUT/zstd-d.db'"
bench zstd_d_sync "rm -f $OUT/zstd-d.db" \
    "zstd -d -q -f '$OUT/dbtool.db.zst' -o '$OUT/zstd-d.db' && sync '$OUT/zstd-d.db'"
# Restore onto a copy of the database (the realistic case: replacing a live file) ...
bench restore "cp '$DB' '$OUT/target.db'; rm -f '$OUT/target.db-wal' '$OUT/target.db-shm'; sync" \
    "'$DBTOOL' -q --database '$OUT/target.db' restore --yes --no-backup --force '$OUT/dbtool.db.zst'"
# ... the same with the safety backup of the current database (the default) ...
bench restore_safe "cp '$DB' '$OUT/target.db'; rm -rf '$OUT/target.db-wal' '$OUT/target.db-shm' '$OUT/safety'; sync" \
    "'$DBTOOL' -q --database '$OUT/target.db' --backup-dir '$OUT/safety' restore --yes --force '$OUT/dbtool.db.zst'"
# ... and to a path with no database (nothing to replace).
bench restore_new "rm -f '$OUT/fresh.db'" \
    "'$DBTOOL' -q --database '$OUT/fresh.db' restore --yes --no-backup --force '$OUT/dbtool.db.zst'"

for ((round = 1; round <= ROUNDS; round++)); do
    echo "round $round of $ROUNDS..." >&2
    for name in "${NAMES[@]}"; do measure "$name"; done
done

# Sanity: the restored copy equals the source.
[[ "$(sqlite3 "$OUT/target.db" 'SELECT count(*) FROM posts')" == "$(sqlite3 "$DB" 'SELECT count(*) FROM posts')" ]]

ratio() { echo "scale=2; $1 / $2" | bc -l; }
ZSIZE=$(stat -c %s "$OUT/dbtool.db.zst")
FSIZE=$(stat -c %s "$OUT/floor.zst")
printf '\n%s\n' "database: $DB ($((DBSIZE / 1048576)) MiB), $(nproc) cores"
echo "load average before the run: $LOAD"
printf '%-18s %9s %9s %10s\n' "command" "wall s" "cpu s" "max RSS"
for k in floor pipeline dbtool dbtool_noverify dbtool_api zstd_d zstd_d_sync restore restore_safe restore_new; do
    printf '%-18s %9.2f %9.2f %6d MiB\n' "$k" "${SECS[$k]}" "${CPU[$k]}" "$(( ${RSS[$k]:-0} / 1024 ))"
done
echo
echo "backup / floor:              $(ratio "${SECS[dbtool]}" "${SECS[floor]}")x wall, $(ratio "${CPU[dbtool]}" "${CPU[floor]}")x cpu   (goal <= 1.2)"
echo "pipeline / backup:           $(ratio "${SECS[pipeline]}" "${SECS[dbtool]}")x wall, $(ratio "${CPU[pipeline]}" "${CPU[dbtool]}")x cpu   (goal >= 1.2)"
echo "backup --no-verify / floor:  $(ratio "${SECS[dbtool_noverify]}" "${SECS[floor]}")x wall, $(ratio "${CPU[dbtool_noverify]}" "${CPU[floor]}")x cpu"
echo "backup-api / floor:          $(ratio "${SECS[dbtool_api]}" "${SECS[floor]}")x"
echo "restore / zstd -d:           $(ratio "${SECS[restore]}" "${SECS[zstd_d]}")x   (goal <= 2; replaces a live database: every page is written to the WAL/journal and the file, durably)"
echo "restore / (zstd -d + sync):  $(ratio "${SECS[restore]}" "${SECS[zstd_d_sync]}")x"
echo "restore with safety backup:  $(ratio "${SECS[restore_safe]}" "${SECS[zstd_d]}")x zstd -d (the default: backs up the current database first)"
echo "restore to a new path / zstd -d: $(ratio "${SECS[restore_new]}" "${SECS[zstd_d]}")x   (no live database: verified copy linked into place)"
echo "compression ratio:           $(ratio "$DBSIZE" "$ZSIZE")x (zstd -3 on the raw file: $(ratio "$DBSIZE" "$FSIZE")x)"
echo "peak memory (max RSS) backup / restore / restore with safety backup: $(( ${RSS[dbtool]:-0} / 1024 )) / $(( ${RSS[restore]:-0} / 1024 )) / $(( ${RSS[restore_safe]:-0} / 1024 )) MiB   (goal < 100)"

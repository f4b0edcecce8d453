#!/usr/bin/env bash
# Benchmark: dbtool backup / restore against the tools a person would use, side by side in one run.
#
#   scripts/bench-backup.sh [SIZE_MIB]        (default 300; 1024 for the 1 GiB figures)
#   ROUNDS=5 scripts/bench-backup.sh 1024     (rounds, default 3)
#   EXTRA=1 scripts/bench-backup.sh           (also: sqlite3 pipeline, backup-API fallback)
#
# Generates (once, cached in $BENCH_DATA, default /work/bench-data, never in the repository) a
# WAL-mode database of realistic rows at the head of migrations/, then times, page cache warm:
#   floor      zstd -3 -T0 on the raw file (read and compress once)
#   backup     dbtool backup (verified) and --no-verify
#   zstd -d    of the backup dbtool wrote (the restore floor), zstd -d + sync, and zstd -d over a
#              fresh copy of the database (prepared as the restores below are)
#   restore    dbtool restore --no-backup over a copy of the database (nobody else has it open),
#              the default restore with its safety backup, the same while another process holds
#              the database open (the in-place path), and to a path with no database
# Every command runs once per round, round-robin, so bursts of load from other work on the
# machine hit them alike; the median of the rounds counts. Wall seconds, CPU seconds (user+sys)
# and peak memory (max RSS) via /usr/bin/time -v. The last lines are the ratios against the goals
# of issue 11: backup <= 1.2x floor, restore <= 2x zstd -d, peak memory <= 100 MiB.
set -euo pipefail
cd "$(dirname "$0")/.."

SIZE_MIB=${1:-300}
DATA=${BENCH_DATA:-/work/bench-data}
DB="$DATA/bench-${SIZE_MIB}.db"
OUT="$DATA/out-$$"
mkdir -p "$DATA" "$OUT"
trap 'rm -rf "$OUT"; [[ -n "${HOLDER:-}" ]] && kill "$HOLDER" 2>/dev/null; true' EXIT

# DBTOOL=path runs another build (e.g. an older one, for before/after figures). BEFORE=path also
# runs that build's backup and restore in the same rounds ("backup_before", "restore_before"), so
# before and after meet the same load.
if [[ -z "${DBTOOL:-}" ]]; then
    cargo build --release --quiet
    DBTOOL="$PWD/target/release/dbtool"
fi

if [[ ! -f "$DB" ]]; then
    echo "generating $DB (${SIZE_MIB} MiB, once)..." >&2
    python3 scripts/bench-data.py "$DB.tmp" "$SIZE_MIB" content.db.example >&2
    mv "$DB.tmp" "$DB"
fi

TIME_V=/usr/bin/time
"$TIME_V" -v true >/dev/null 2>&1 || { echo "needs GNU time (/usr/bin/time -v)" >&2; exit 1; }

ROUNDS=${ROUNDS:-3}
declare -A PREPS CMDS ALL_SECS ALL_CPU ALL_RSS
NAMES=()
bench() { NAMES+=("$1"); PREPS[$1]=$2; CMDS[$1]=$3; }

measure() {
    local name=$1
    eval "${PREPS[$name]}"
    local log; log=$(mktemp)
    local t0 t1
    t0=$(date +%s.%N)
    "$TIME_V" -v -o "$log" bash -c "${CMDS[$name]}" >/dev/null
    t1=$(date +%s.%N)
    ALL_SECS[$name]+="$(echo "$t1 - $t0" | bc -l) "
    ALL_RSS[$name]+="$(awk -F': ' '/Maximum resident/ {print $2}' "$log") "
    ALL_CPU[$name]+="$(awk -F': ' '/User time|System time/ {s += $2} END {print s}' "$log") "
    rm -f "$log"
}
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
maxof() { tr ' ' '\n' | grep -v '^$' | sort -g | tail -1; }

cat "$DB" >/dev/null  # warm the page cache for everyone alike
LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
DBSIZE=$(stat -c %s "$DB")

# A process that keeps the target open (a reader that has read once holds SQLite's shared lock),
# as a running application would; started and stopped around the "restore_inplace" command.
hold_target() {
    python3 -c "
import sqlite3
c = sqlite3.connect('$OUT/target.db')
c.execute('SELECT count(*) FROM sqlite_schema').fetchall()
print('ready', flush=True)
import time; time.sleep(3600)
" > "$OUT/holder.out" &
    HOLDER=$!
    until grep -q ready "$OUT/holder.out" 2>/dev/null; do :; done
}
release_target() { kill "$HOLDER" 2>/dev/null || true; wait "$HOLDER" 2>/dev/null || true; HOLDER=; }
fresh_target() { echo "cp '$DB' '$OUT/target.db'; rm -rf '$OUT/target.db-wal' '$OUT/target.db-shm' '$OUT/safety'; sync"; }

bench floor "rm -f $OUT/floor.zst" \
    "zstd -3 -T0 -q -f '$DB' -o '$OUT/floor.zst'"
bench backup "rm -f $OUT/dbtool.db.zst" \
    "'$DBTOOL' -q --database '$DB' backup --output '$OUT/dbtool.db.zst'"
bench backup_noverify "rm -f $OUT/dbtool-nv.db.zst" \
    "'$DBTOOL' -q --database '$DB' backup --no-verify --output '$OUT/dbtool-nv.db.zst'"
if [[ -n "${BEFORE:-}" ]]; then
    bench backup_before "rm -f $OUT/before.db.zst" \
        "'$BEFORE' -q --database '$DB' backup --output '$OUT/before.db.zst'"
fi
if [[ -n "${EXTRA:-}" ]]; then
    bench pipeline "rm -f $OUT/tmp.db $OUT/tmp.db.zst" \
        "sqlite3 '$DB' '.backup $OUT/tmp.db' && zstd -3 -T0 -q -f '$OUT/tmp.db' -o '$OUT/tmp.db.zst'"
    bench backup_api "rm -f $OUT/dbtool-api.db.zst" \
        "'$DBTOOL' -q --database '$DB' backup --method backup-api --output '$OUT/dbtool-api.db.zst'"
fi
# Restores read the backup the "backup" line just wrote.
bench zstd_d "rm -f $OUT/zstd-d.db" \
    "zstd -d -q -f '$OUT/dbtool.db.zst' -o '$OUT/zstd-d.db'"
bench zstd_d_sync "rm -f $OUT/zstd-d.db" \
    "zstd -d -q -f '$OUT/dbtool.db.zst' -o '$OUT/zstd-d.db' && sync '$OUT/zstd-d.db'"
# The same by hand over a fresh copy of the database, as `restore` is timed: the copy made just
# before (and synced) leaves the machine's page cache as busy for both.
bench zstd_d_over "$(fresh_target)" \
    "zstd -d -q -f '$OUT/dbtool.db.zst' -o '$OUT/target.db'"
bench restore "$(fresh_target)" \
    "'$DBTOOL' -q --database '$OUT/target.db' restore --yes --no-backup --force '$OUT/dbtool.db.zst'"
if [[ -n "${BEFORE:-}" ]]; then
    # The before build restores its own backup (an older format may be newer than it reads).
    bench restore_before "$(fresh_target)" \
        "'$BEFORE' -q --database '$OUT/target.db' restore --yes --no-backup --force '$OUT/before.db.zst'"
fi
bench restore_safe "$(fresh_target)" \
    "'$DBTOOL' -q --database '$OUT/target.db' --backup-dir '$OUT/safety' restore --yes --force '$OUT/dbtool.db.zst'"
bench restore_inplace "$(fresh_target); hold_target" \
    "'$DBTOOL' -q --database '$OUT/target.db' restore --yes --no-backup --force '$OUT/dbtool.db.zst'"
bench restore_new "rm -f '$OUT/fresh.db'" \
    "'$DBTOOL' -q --database '$OUT/fresh.db' restore --yes --no-backup --force '$OUT/dbtool.db.zst'"

for ((round = 1; round <= ROUNDS; round++)); do
    echo "round $round of $ROUNDS..." >&2
    for name in "${NAMES[@]}"; do
        measure "$name"
        [[ -n "${HOLDER:-}" ]] && release_target
    done
done

# Sanity: the restored copy equals the source.
[[ "$(sqlite3 "$OUT/target.db" 'SELECT count(*) FROM posts')" == "$(sqlite3 "$DB" 'SELECT count(*) FROM posts')" ]]

declare -A SECS CPU RSS
for k in "${NAMES[@]}"; do
    SECS[$k]=$(echo "${ALL_SECS[$k]}" | median)
    CPU[$k]=$(echo "${ALL_CPU[$k]}" | median)
    RSS[$k]=$(echo "${ALL_RSS[$k]}" | maxof)
done
ratio() { echo "scale=2; $1 / $2" | bc -l; }
ZSIZE=$(stat -c %s "$OUT/dbtool.db.zst")
FSIZE=$(stat -c %s "$OUT/floor.zst")
printf '\n%s\n' "database: $DB ($((DBSIZE / 1048576)) MiB), $(nproc) cores, median of $ROUNDS round(s)"
echo "load average before / after the run: $LOAD / $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-16s %8s %8s %9s   %s\n' "command" "wall s" "cpu s" "max RSS" "all wall s"
for k in "${NAMES[@]}"; do
    printf '%-16s %8.2f %8.2f %5d MiB   %s\n' "$k" "${SECS[$k]}" "${CPU[$k]}" "$(( RSS[$k] / 1024 ))" "${ALL_SECS[$k]}" \
        | sed -E 's/([0-9]+\.[0-9]{2})[0-9]+/\1/g'
done
echo "compression: dbtool $(ratio "$DBSIZE" "$ZSIZE")x, zstd -3 on the raw file $(ratio "$DBSIZE" "$FSIZE")x"
echo "backup --no-verify / floor:  $(ratio "${SECS[backup_noverify]}" "${SECS[floor]}")x wall"
echo "restore with safety backup / zstd -d: $(ratio "${SECS[restore_safe]}" "${SECS[zstd_d]}")x; in place (another process has it open): $(ratio "${SECS[restore_inplace]}" "${SECS[zstd_d]}")x; new path: $(ratio "${SECS[restore_new]}" "${SECS[zstd_d]}")x"
MAXRSS=0
for k in backup restore restore_safe restore_inplace; do (( RSS[$k] > MAXRSS )) && MAXRSS=${RSS[$k]}; done
echo "peak memory backup / restore / with safety backup / in place: $(( RSS[backup] / 1024 )) / $(( RSS[restore] / 1024 )) / $(( RSS[restore_safe] / 1024 )) / $(( RSS[restore_inplace] / 1024 )) MiB (goal <= 100)"
echo "backup (verified) / zstd -3 -T0: $(ratio "${SECS[backup]}" "${SECS[floor]}")x wall, $(ratio "${CPU[backup]}" "${CPU[floor]}")x cpu (goal <= 1.2)"
if [[ -n "${BEFORE:-}" ]]; then
    echo "before ($BEFORE): backup / zstd -3 -T0 $(ratio "${SECS[backup_before]}" "${SECS[floor]}")x wall, $(ratio "${CPU[backup_before]}" "${CPU[floor]}")x cpu; restore / zstd -d $(ratio "${SECS[restore_before]}" "${SECS[zstd_d]}")x wall, $(ratio "${CPU[restore_before]}" "${CPU[zstd_d]}")x cpu"
fi
echo "restore / zstd -d:               $(ratio "${SECS[restore]}" "${SECS[zstd_d]}")x wall, $(ratio "${CPU[restore]}" "${CPU[zstd_d]}")x cpu (goal <= 2)"
echo "restore / zstd -d over the same fresh copy: $(ratio "${SECS[restore]}" "${SECS[zstd_d_over]}")x wall; with its safety backup: $(ratio "${SECS[restore_safe]}" "${SECS[zstd_d_over]}")x"

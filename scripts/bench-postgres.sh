#!/usr/bin/env bash
# Benchmark: dbtool on PostgreSQL against the plain PostgreSQL tools, side by side in one run.
#
#   scripts/bench-postgres.sh                  all three comparisons
#   ROUNDS=9 scripts/bench-postgres.sh         rounds (default 7; medians count)
#   SKIP_BACKUP=1 scripts/bench-postgres.sh    upgrade and current only
#   BACKUP_MB=300 scripts/bench-postgres.sh    size of the backup database (default 300)
#
#   upgrade   200 small migrations (CREATE TABLE + CREATE INDEX each) on a fresh database:
#             `dbtool upgrade` (its automatic backup first: pg_dump of the empty database) and
#             `dbtool upgrade --no-backup` vs `psql -1 -f all.sql` of the same SQL. goal <= 1.2x
#   current   `dbtool current` vs `psql -c 'SELECT max(version) FROM refinery_schema_history'`
#             on the migrated database.                                      goal <= 1.5x
#   backup    `dbtool backup` (verified, and --no-verify) of a ~300 MB database vs
#             `pg_dump -Fc -Z0 | zstd -T0`.                                   goal <= 1.2x
#
# The server is a throwaway one of its own (scripts/pg-server.sh in /tmp/dbtool-pg-bench, port
# 54339, fsync ON like a real server; override with DBTOOL_PG_DIR / DBTOOL_PG_PORT /
# DBTOOL_PG_FSYNC), stopped at the end if this script started it. Rounds are interleaved (each
# round runs every command once, in alternating order) so bursts of load from other work on the
# machine hit both sides alike; wall-clock medians. The backup database is generated once and
# kept on that server (dropped with it). The last lines are the ratios against the goals.
#
# Measured (2026-11-28, ROUNDS=9, PostgreSQL 15.18, fsync on, 2 cores under load ~5.5 from other
# builds, so single runs vary 2x; medians):
#   dbtool upgrade 6552 ms (1.28x), --no-backup 5788 ms (1.13x)  vs psql -1 -f 5130 ms
#   dbtool current 19 ms (0.30x)                                 vs psql -c 63 ms
#   dbtool backup 4316 ms (1.45x), --no-verify 3510 ms (1.18x)   vs pg_dump -Fc -Z0 | zstd 2975 ms
#   (294 MB database; 60.3 MB backup vs 60.4 MB)
# The default upgrade's extra is its automatic backup (a pg_dump of the still empty database);
# the default backup's extra is the verification (pg_restore --list and a full read).
set -euo pipefail
cd "$(dirname "$0")/.."

export DBTOOL_PG_DIR=${DBTOOL_PG_DIR:-/tmp/dbtool-pg-bench}
export DBTOOL_PG_PORT=${DBTOOL_PG_PORT:-54339}
export DBTOOL_PG_FSYNC=${DBTOOL_PG_FSYNC:-on}
ROUNDS=${ROUNDS:-7}
BACKUP_MB=${BACKUP_MB:-300}
MIGRATIONS=200

# DBTOOL=path runs another build (e.g. an older one, for before/after figures).
if [[ -z ${DBTOOL:-} ]]; then
    cargo build --release --quiet
    DBTOOL=$PWD/target/release/dbtool
fi
for tool in psql pg_dump zstd; do
    command -v "$tool" >/dev/null || { echo "bench-postgres: needs $tool on PATH" >&2; exit 1; }
done

started=""
if ! scripts/pg-server.sh status >/dev/null; then
    scripts/pg-server.sh start
    started=1
fi
WORK=$(mktemp -d /tmp/dbtool-bench-pg.XXXXXX)
cleanup() {
    rm -rf "$WORK"
    if [[ -n $started ]]; then scripts/pg-server.sh stop || true; fi
}
trap cleanup EXIT

SERVER_URL=$(scripts/pg-server.sh url) # …/postgres
BASE=${SERVER_URL%/postgres}
url_of() { echo "$BASE/$1"; }
admin() { PGOPTIONS="-c client_min_messages=warning" psql -X -q -v ON_ERROR_STOP=1 "$SERVER_URL" "$@"; }
fresh_db() { admin -c "DROP DATABASE IF EXISTS $1 WITH (FORCE)" -c "CREATE DATABASE $1"; }
drop_db() { admin -c "DROP DATABASE IF EXISTS $1 WITH (FORCE)"; }

# --- the project: 200 migrations, and the same SQL as one file -------------------------------
mkdir -p "$WORK/project/migrations" "$WORK/backups"
for ((i = 1; i <= MIGRATIONS; i++)); do
    printf -v file "$WORK/project/migrations/V%04d__table_%d.sql" "$i" "$i"
    cat >"$file" <<SQL
CREATE TABLE t$i (
  id bigserial PRIMARY KEY,
  name text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX t${i}_name ON t$i (name);
SQL
    cat "$file" >>"$WORK/all.sql"
done
# dbtool runs in the project folder with nothing of the developer's environment.
dbtool() {
    (cd "$WORK/project" && env -u DATABASE_URL HOME="$WORK/home" \
        DBTOOL_BACKUP_DIR="$WORK/backups" "$DBTOOL" "$@")
}

# --- timing -------------------------------------------------------------------------------
declare -A TIMES
now() { echo "${EPOCHREALTIME/[.,]/}"; } # microseconds
# timed NAME COMMAND...: run once, add the wall time (ms) to NAME's list.
timed() {
    local name=$1 t0 t1
    shift
    t0=$(now)
    "$@" >/dev/null
    t1=$(now)
    TIMES[$name]+="$(((t1 - t0) / 1000)) "
}
median() { tr ' ' '\n' <<<"${TIMES[$1]}" | grep . | sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
report() { printf '  %-34s median %6s ms   (%s)\n' "$1" "$(median "$1")" "${TIMES[$1]% }"; }

# --- upgrade: dbtool vs psql -1 -f ------------------------------------------------------------
echo "upgrade: $MIGRATIONS migrations, $ROUNDS rounds" >&2
up_dbtool() {
    fresh_db bench_up_dbtool
    timed "dbtool upgrade" dbtool --quiet --database "$(url_of bench_up_dbtool)" upgrade
}
up_nobackup() {
    fresh_db bench_up_dbtool
    timed "dbtool upgrade --no-backup" dbtool --quiet --database "$(url_of bench_up_dbtool)" upgrade --no-backup
}
up_psql() {
    fresh_db bench_up_psql
    timed "psql -1 -f all.sql" psql -X -q -1 -v ON_ERROR_STOP=1 -f "$WORK/all.sql" "$(url_of bench_up_psql)"
}
for ((r = 0; r < ROUNDS; r++)); do
    if ((r % 2)); then up_psql; up_nobackup; up_dbtool; else up_dbtool; up_nobackup; up_psql; fi
done
tables=$(psql -X -At -c "SELECT count(*) FROM pg_tables WHERE tablename ~ '^t[0-9]+$'" "$(url_of bench_up_dbtool)")
[[ $tables == "$MIGRATIONS" ]] || { echo "dbtool upgrade made $tables tables, not $MIGRATIONS" >&2; exit 1; }
drop_db bench_up_psql

# --- current: on the database dbtool just migrated -----------------------------------------
echo "current: $((ROUNDS * 5)) runs each" >&2
CURRENT_URL=$(url_of bench_up_dbtool)
for ((r = 0; r < ROUNDS * 5; r++)); do
    if ((r % 2)); then
        timed "psql -c 'SELECT max(version)...'" psql -X -At -c 'SELECT max(version) FROM refinery_schema_history' "$CURRENT_URL"
        timed "dbtool current" dbtool --database "$CURRENT_URL" current
    else
        timed "dbtool current" dbtool --database "$CURRENT_URL" current
        timed "psql -c 'SELECT max(version)...'" psql -X -At -c 'SELECT max(version) FROM refinery_schema_history' "$CURRENT_URL"
    fi
done
drop_db bench_up_dbtool

# --- backup: dbtool backup vs pg_dump -Fc -Z0 | zstd -T0 ----------------------------------
if [[ -z ${SKIP_BACKUP:-} ]]; then
    BDB=bench_backup_${BACKUP_MB}mb
    if [[ $(admin -At -c "SELECT count(*) FROM pg_database WHERE datname = '$BDB'") != 1 ]]; then
        echo "generating $BDB (~$BACKUP_MB MB, once per bench server)..." >&2
        rows=$((BACKUP_MB * 4600)) # ~220 bytes per row with its indexes
        admin -c "CREATE DATABASE ${BDB}_tmp"
        psql -X -q -v ON_ERROR_STOP=1 "$(url_of "${BDB}_tmp")" <<SQL
CREATE TABLE events (
  id bigserial PRIMARY KEY,
  user_id int NOT NULL,
  kind text NOT NULL,
  payload jsonb NOT NULL,
  note text,
  created_at timestamptz NOT NULL
);
INSERT INTO events (user_id, kind, payload, note, created_at)
SELECT (random() * 100000)::int,
       (ARRAY['click', 'view', 'buy', 'share'])[1 + (i % 4)],
       jsonb_build_object('ref', md5(i::text), 'n', i, 'score', round(random()::numeric, 4)),
       CASE WHEN i % 3 = 0 THEN 'note ' || md5((i * 7)::text) END,
       timestamptz '2024-01-01' + i * interval '1 second'
FROM generate_series(1, $rows) AS i;
CREATE INDEX events_user ON events (user_id);
CREATE INDEX events_created ON events (created_at);
VACUUM ANALYZE events;
SQL
        admin -c "ALTER DATABASE ${BDB}_tmp RENAME TO $BDB"
    fi
    size=$(admin -At -c "SELECT pg_size_pretty(pg_database_size('$BDB'))")
    echo "backup: $BDB ($size), $ROUNDS rounds" >&2
    BURL=$(url_of "$BDB")
    b_dbtool() { rm -rf "$WORK/backups"/*; timed "dbtool backup" dbtool --quiet --database "$BURL" backup; }
    b_noverify() { rm -rf "$WORK/backups"/*; timed "dbtool backup --no-verify" dbtool --quiet --database "$BURL" backup --no-verify; }
    b_pgdump() {
        rm -f "$WORK/dump.zst"
        timed "pg_dump -Fc -Z0 | zstd -T0" bash -c "pg_dump -Fc -Z0 '$BURL' | zstd -q -T0 -o '$WORK/dump.zst'"
    }
    for ((r = 0; r < ROUNDS; r++)); do
        if ((r % 2)); then b_pgdump; b_noverify; b_dbtool; else b_dbtool; b_noverify; b_pgdump; fi
    done
    dbtool_size=$(du -b "$WORK/backups"/* 2>/dev/null | awk '{s += $1} END {print s}')
    dump_size=$(stat -c %s "$WORK/dump.zst")
fi

# --- results ------------------------------------------------------------------------------
echo
echo "PostgreSQL $(admin -At -c 'SHOW server_version'), fsync=$DBTOOL_PG_FSYNC, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
report "dbtool upgrade"
report "dbtool upgrade --no-backup"
report "psql -1 -f all.sql"
report "dbtool current"
report "psql -c 'SELECT max(version)...'"
if [[ -z ${SKIP_BACKUP:-} ]]; then
    report "dbtool backup"
    report "dbtool backup --no-verify"
    report "pg_dump -Fc -Z0 | zstd -T0"
    echo "  backup sizes: dbtool $dbtool_size bytes, pg_dump | zstd $dump_size bytes (database $size)"
fi
echo
echo "upgrade: dbtool / psql -1 = $(ratio "$(median "dbtool upgrade")" "$(median "psql -1 -f all.sql")")x with its automatic backup, $(ratio "$(median "dbtool upgrade --no-backup")" "$(median "psql -1 -f all.sql")")x --no-backup (goal <= 1.2x)"
echo "current: dbtool / psql    = $(ratio "$(median "dbtool current")" "$(median "psql -c 'SELECT max(version)...'")")x (goal <= 1.5x)"
if [[ -z ${SKIP_BACKUP:-} ]]; then
    echo "backup:  dbtool / pg_dump | zstd = $(ratio "$(median "dbtool backup")" "$(median "pg_dump -Fc -Z0 | zstd -T0")")x verified, $(ratio "$(median "dbtool backup --no-verify")" "$(median "pg_dump -Fc -Z0 | zstd -T0")")x --no-verify (goal <= 1.2x)"
fi

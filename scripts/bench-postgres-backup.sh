#!/bin/sh
# `dbtool backup` of a PostgreSQL database (~300 MB: 200k users, 2M events with an index) against
# the plain pipeline it wraps: `pg_dump -Fc -Z0 | zstd -T0` (the issue's goal: <= 1.2x). dbtool
# does more: a verified backup (the compressed stream decoded as it is written and read in full by
# `pg_restore --list` and `pg_restore -f /dev/null`, the file read back), fsynced, published
# atomically; `--no-verify` shows what the checks cost.
#
# Usage: scripts/bench-postgres-backup.sh [SERVER_URL] [ROUNDS]
#   SERVER_URL  a server's maintenance URL (default: $DBTOOL_TEST_POSTGRES_URL); the database
#               dbtool_bench_backup is created there once and reused.
#   ROUNDS      interleaved rounds (default 5); the median of each is printed.
# Builds the release binary first. Needs pg_dump, zstd and psql on PATH.
set -eu
cd "$(dirname "$0")/.."
server=${1:-${DBTOOL_TEST_POSTGRES_URL:?give a server URL or set DBTOOL_TEST_POSTGRES_URL}}
rounds=${2:-5}
base=${server%/*}
db=dbtool_bench_backup
url="$base/$db"
cargo build --release --quiet
dbtool=target/release/dbtool
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

if ! psql -Atq "$server" -c "SELECT 1 FROM pg_database WHERE datname = '$db'" | grep -q 1; then
    echo "creating $db (once)..."
    psql -q "$server" -c "CREATE DATABASE $db"
    psql -q -v ON_ERROR_STOP=1 "$url" <<'EOF'
CREATE TABLE users (id serial PRIMARY KEY, email text NOT NULL, name text, created_at timestamptz NOT NULL DEFAULT now());
INSERT INTO users (email, name) SELECT 'user' || g || '@example.com', 'User ' || g FROM generate_series(1, 200000) g;
CREATE TABLE events (id bigserial PRIMARY KEY, user_id int NOT NULL, kind text NOT NULL, payload text, amount numeric(12,2), created_at timestamptz NOT NULL);
INSERT INTO events (user_id, kind, payload, amount, created_at)
SELECT 1 + (g::bigint * 7919) % 200000, (ARRAY['click','view','buy','login','logout'])[1 + g % 5],
       '{"session":"' || md5(g::text) || '","path":"/items/' || (g % 5000) || '","ua":"Mozilla/5.0 ' || (g % 97) || '"}',
       (g % 10000) / 100.0, timestamptz '2024-01-01' + g * interval '1 second'
FROM generate_series(1, 2000000) g;
CREATE INDEX ON events (user_id);
VACUUM ANALYZE;
EOF
fi
echo "database: $(psql -Atq "$url" -c 'SELECT pg_size_pretty(pg_database_size(current_database()))'), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"

now() { date +%s.%N; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
: >"$out/pipe" ; : >"$out/dbtool" ; : >"$out/noverify"
i=0
while [ "$i" -lt "$rounds" ]; do
    i=$((i + 1))
    t0=$(now); pg_dump -Fc -Z0 -d "$url" | zstd -q -T0 -3 >"$out/plain.zst"; t1=$(now)
    echo "$t1 - $t0" | bc >>"$out/pipe"
    t0=$(now); "$dbtool" -q -d "$url" --backup-dir "$out/b" backup; t1=$(now)
    echo "$t1 - $t0" | bc >>"$out/dbtool"
    t0=$(now); "$dbtool" -q -d "$url" --backup-dir "$out/b" backup --no-verify; t1=$(now)
    echo "$t1 - $t0" | bc >>"$out/noverify"
    rm -f "$out"/b/*.zst
done
pipe=$(median <"$out/pipe"); full=$(median <"$out/dbtool"); nover=$(median <"$out/noverify")
printf 'pg_dump -Fc -Z0 | zstd -T0       %6.2f s  (%s)\n' "$pipe" "$(du -h "$out/plain.zst" | cut -f1)"
printf 'dbtool backup (verified)         %6.2f s  %.2fx\n' "$full" "$(echo "$full / $pipe" | bc -l)"
printf 'dbtool backup --no-verify        %6.2f s  %.2fx\n' "$nover" "$(echo "$nover / $pipe" | bc -l)"

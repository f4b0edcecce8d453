#!/usr/bin/env bash
# A throwaway PostgreSQL server for dbtool's tests, benchmarks and developers.
#
#   scripts/pg-server.sh start    initdb (first time) and start; a running server is left as it is
#   scripts/pg-server.sh stop     stop it (no error when it is not running)
#   scripts/pg-server.sh status   exit 0 when running, 3 when not
#   scripts/pg-server.sh url      postgres://dbtool:PASSWORD@127.0.0.1:PORT/postgres (superuser)
#   scripts/pg-server.sh env      start (as above), then print `export …` lines for eval:
#                                 DBTOOL_TEST_POSTGRES_URL and DBTOOL_TEST_POSTGRES_LIMITED_URL
#                                 (a role without CREATEDB), e.g. eval "$(scripts/pg-server.sh env)"
#
# Settings (environment):
#   DBTOOL_PG_DIR    private folder: data/, the unix socket, server.log, password
#                    (default /tmp/dbtool-pg)
#   DBTOOL_PG_PORT   TCP port on 127.0.0.1 (default 54329)
#   DBTOOL_PG_FSYNC  on|off (default off: a throwaway server; tests create many databases and
#                    fsync would make each CREATE DATABASE cost a flush; benchmarks may turn it on)
#
# The server binaries come from /usr/lib/postgresql/<newest>/bin, else PATH; when neither has
# them, `apt-get install -y postgresql` (as root). PostgreSQL refuses to run as root, so as root
# everything runs as the `postgres` user (runuser), which owns the folder. Host connections need a
# password (scram-sha-256), so tests can check bad credentials; the password is generated once and
# kept in the folder (mode 600). Safe to call concurrently: every command holds a lock on
# "$DBTOOL_PG_DIR.lock".
set -euo pipefail

DIR=${DBTOOL_PG_DIR:-/tmp/dbtool-pg}
PORT=${DBTOOL_PG_PORT:-54329}
FSYNC=${DBTOOL_PG_FSYNC:-off}
DATA=$DIR/data
LOG=$DIR/server.log
ROLE=dbtool
LIMITED_ROLE=dbtool_limited

die() {
    echo "pg-server: $*" >&2
    exit 1
}

usage() {
    sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

# The folder holding initdb, pg_ctl, postgres and psql.
find_bin() {
    local dir
    for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        if [[ -x $dir/initdb && -x $dir/pg_ctl && -x $dir/postgres ]]; then
            echo "$dir"
            return 0
        fi
    done
    if command -v initdb >/dev/null && command -v pg_ctl >/dev/null; then
        dirname "$(readlink -f "$(command -v pg_ctl)")"
        return 0
    fi
    return 1
}

ensure_bin() {
    if BIN=$(find_bin); then
        return 0
    fi
    [[ $(id -u) -eq 0 ]] ||
        die "no PostgreSQL server binaries (initdb, pg_ctl) in /usr/lib/postgresql/*/bin or PATH; install PostgreSQL (Debian: apt-get install postgresql)"
    echo "pg-server: PostgreSQL is not installed; installing it with apt-get" >&2
    apt-get update >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql >&2
    BIN=$(find_bin) || die "apt-get installed postgresql, but initdb and pg_ctl are still not found"
}

# Run a command as the user the server runs as.
as_owner() {
    if [[ $(id -u) -eq 0 ]]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

# The bootstrap superuser (initdb's default: the OS user it ran as), reached over the socket.
owner_name() {
    if [[ $(id -u) -eq 0 ]]; then echo postgres; else id -un; fi
}

psql_owner() {
    as_owner "$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$DIR" -p "$PORT" -U "$(owner_name)" -d postgres "$@"
}

running() {
    [[ -f $DATA/PG_VERSION ]] && as_owner "$BIN/pg_ctl" status -D "$DATA" >/dev/null 2>&1
}

password() {
    [[ -f $DIR/password ]] || die "$DIR is not initialised: run scripts/pg-server.sh start"
    cat "$DIR/password"
}

init_cluster() {
    if [[ $(id -u) -eq 0 ]] && ! id postgres >/dev/null 2>&1; then
        useradd --system --home-dir "$DIR" --shell /usr/sbin/nologin postgres
    fi
    mkdir -p "$DIR"
    chmod 700 "$DIR"
    if [[ $(id -u) -eq 0 ]]; then
        chown postgres: "$DIR"
    fi
    if [[ ! -s $DIR/password ]]; then
        # Hex: safe in a URL without percent-encoding.
        as_owner sh -c "umask 077; od -An -N16 -tx1 /dev/urandom | tr -d ' \n' > '$DIR/password'"
    fi
    # A half-made data folder (initdb interrupted) is useless: start over.
    if [[ -d $DATA && ! -f $DATA/PG_VERSION ]]; then
        rm -rf "$DATA"
    fi
    if [[ ! -d $DATA ]]; then
        echo "pg-server: initdb $DATA" >&2
        as_owner "$BIN/initdb" -D "$DATA" --encoding=UTF8 --locale=C --no-sync \
            --auth-local=peer --auth-host=scram-sha-256 2>&1 | as_owner tee "$DIR/initdb.log" >/dev/null ||
            die "initdb failed; see $DIR/initdb.log:
$(tail -n 20 "$DIR/initdb.log")"
    fi
}

start() {
    ensure_bin
    if running; then
        ensure_roles
        echo "pg-server: running on 127.0.0.1:$PORT (data $DATA)" >&2
        return 0
    fi
    init_cluster
    # -k: the socket lives in the private folder, not /var/run/postgresql (may not exist, shared).
    local opts="-c listen_addresses=127.0.0.1 -p $PORT -k '$DIR' -c fsync=$FSYNC"
    opts+=" -c synchronous_commit=$FSYNC -c full_page_writes=$FSYNC -c max_connections=200"
    local seen=0
    if [[ -f $LOG ]]; then
        seen=$(wc -l <"$LOG")
    fi
    if ! as_owner "$BIN/pg_ctl" start -D "$DATA" -l "$LOG" -w -t 60 -o "$opts" >/dev/null 9>&-; then
        die "the server did not start (port $PORT in use? set DBTOOL_PG_PORT); last lines of $LOG:
$(tail -n +"$((seen + 1))" "$LOG" 2>/dev/null | tail -n 20)"
    fi
    ensure_roles
    echo "pg-server: started on 127.0.0.1:$PORT (data $DATA, log $LOG)" >&2
}

# Create (or reset the password of) the two roles; idempotent.
ensure_roles() {
    local pw
    pw=$(password)
    psql_owner -v pw="$pw" <<'SQL' >/dev/null
SELECT format('CREATE ROLE %I', r) FROM unnest(ARRAY['dbtool', 'dbtool_limited']) AS r
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) \gexec
ALTER ROLE dbtool WITH LOGIN SUPERUSER PASSWORD :'pw';
ALTER ROLE dbtool_limited WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'pw';
SQL
}

stop() {
    ensure_bin
    if ! running; then
        echo "pg-server: not running" >&2
        return 0
    fi
    as_owner "$BIN/pg_ctl" stop -D "$DATA" -m fast -w -t 60 >/dev/null ||
        die "pg_ctl stop failed; see $LOG"
    echo "pg-server: stopped" >&2
}

url_for() {
    echo "postgres://$1:$(password)@127.0.0.1:$PORT/postgres"
}

cmd=${1:-}
[[ -n $cmd ]] || usage
mkdir -p "$(dirname "$DIR")"
exec 9>"$DIR.lock"
flock 9

case $cmd in
start) start ;;
stop) stop ;;
status)
    ensure_bin
    if running; then
        echo "running on 127.0.0.1:$PORT (data $DATA)"
    else
        echo "not running"
        exit 3
    fi
    ;;
url) url_for "$ROLE" ;;
env)
    start
    echo "export DBTOOL_TEST_POSTGRES_URL='$(url_for "$ROLE")'"
    echo "export DBTOOL_TEST_POSTGRES_LIMITED_URL='$(url_for "$LIMITED_ROLE")'"
    ;;
*) usage ;;
esac

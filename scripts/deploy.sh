#!/usr/bin/env bash
# Single-host production deploy: rehearse the migrations on a copy, upgrade (dbtool takes its
# automatic verified backup first), restart the service, and if anything fails say exactly how
# to go back. Read `deploy.sh --help` (or this file) before the first run; `--dry-run` prints what
# would run and changes nothing. Ships inside the binary: `dbtool deploy-script > deploy.sh`.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: deploy.sh [--database PATH] [--migrations DIR] [--service NAME] [--user]
                 [--dbtool PATH] [--dry-run] [--help]

Deploys the migrations of this release to a single host's SQLite database and restarts the
application's systemd service (a system unit; --user for a user unit). Run it after the new
release's files are in place. Get the script with `dbtool deploy-script > deploy.sh`.

Before anything else: dbtool must run (exit 4 if not), and `systemctl [--user] cat "$SERVICE"`
must find the unit (exit 3 if not), so a typo never migrates a database it cannot restart.

Steps, in order; each one stops the deploy when it fails:
  1. dbtool status     What is pending (read-only).
  2. dbtool rehearse   Applies the pending migrations to a temporary copy of the database and
                       reports each step (time, rows per table, integrity, foreign keys).
                       Read-only: if it fails, nothing has changed and the old release keeps
                       running.
  3. dbtool upgrade    Takes the automatic verified backup, then applies every pending
                       migration in one transaction. If it fails, the database is unchanged
                       (dbtool's all-or-nothing guarantee) and the service is not restarted.
  4. systemctl [--user] restart "$SERVICE", then systemctl [--user] is-active, then
     $HEALTH_CHECK if set. If this fails, the database is already migrated: the script prints
     the exact `dbtool restore` command for the backup taken in step 3, to run together with
     rolling the code back (exit 5).
Nothing pending: steps 2-3 are skipped and only the service is restarted.

Options (each also readable from the environment):
  --database PATH    the database (DATABASE_URL, dbtool.toml, else content.db)
  --migrations DIR   the migrations folder (DBTOOL_MIGRATIONS, dbtool.toml, else ./migrations)
  --service NAME     the systemd service to restart (SERVICE; required)
  --user             it is a user unit (systemctl --user); default: a system unit
  --dbtool PATH      the dbtool binary (DBTOOL; default: dbtool on PATH)
  --dry-run          run the read-only steps (1-2), print the others without running them
  --help             this text

Environment: HEALTH_CHECK, a command that must succeed after the restart (for example
  HEALTH_CHECK='curl -fsS http://127.0.0.1:8000/health').
Exit status:
  0  deployed (or dry run done)
  1  a dbtool step failed; the database is unchanged unless the message says otherwise
  2  usage error
  3  the service unit does not exist (systemctl cat failed); nothing was changed
  4  dbtool not found or not runnable (--dbtool, DBTOOL, PATH); nothing was changed
  5  the service did not come back after the upgrade; the restore command is printed
EOF
}

dbtool=${DBTOOL:-dbtool}
service=${SERVICE:-}
dry_run=false
systemctl=(systemctl)
global=()   # options passed to every dbtool call
while [[ $# -gt 0 ]]; do
  case "$1" in
    --database) global+=(--database "$2"); shift 2 ;;
    --migrations) global+=(--migrations "$2"); shift 2 ;;
    --service) service=$2; shift 2 ;;
    --dbtool) dbtool=$2; shift 2 ;;
    --user) systemctl=(systemctl --user); shift ;;
    --dry-run) dry_run=true; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "deploy: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
if [[ -z "$service" ]]; then
  echo "deploy: which service? pass --service NAME or set SERVICE (see --help)" >&2
  exit 2
fi
if ! "$dbtool" --version >/dev/null 2>&1; then
  echo "deploy: dbtool not found or not runnable: '$dbtool' (pass --dbtool PATH or set DBTOOL); nothing was changed" >&2
  exit 4
fi
if ! "${systemctl[@]}" cat "$service" >/dev/null 2>&1; then
  echo "deploy: no systemd unit '$service' (${systemctl[*]} cat $service failed); nothing was changed" >&2
  if [[ ${#systemctl[@]} -eq 1 ]]; then
    echo "  a user unit? pass --user" >&2
  else
    echo "  a system unit? drop --user" >&2
  fi
  exit 3
fi

say() { printf '\n== %s\n' "$*"; }
# A step that changes something: printed, and run unless --dry-run.
change() {
  printf '+ %s\n' "$*"
  if ! $dry_run; then "$@"; fi
}
db() { "$dbtool" ${global[@]+"${global[@]}"} "$@"; }
# Print a command, shell-quoted, ready to copy.
show() { printf '    '; printf '%q ' "$@"; printf '\n'; }
json_field() { sed -n "s/^  \"$1\": \"\\(.*\\)\",\{0,1\}\$/\\1/p" | head -n 1; }

database=$(db --json config | sed -n '/"database"/,/}/s/^    "value": "\(.*\)",\{0,1\}$/\1/p' | head -n 1)
database=${database:-the database}

say "1. pending migrations ($database)"
pending=0
db status --exit-code || pending=$?
if [[ $pending -ne 0 && $pending -ne 3 ]]; then
  echo "deploy: dbtool status failed (exit $pending); nothing was changed" >&2
  exit 1
fi

backup=""
upgraded=false
if [[ $pending -eq 3 ]]; then
  say "2. rehearsal on a temporary copy (read-only)"
  if ! db rehearse; then
    echo "deploy: the rehearsal failed; nothing was changed, the old release is still running" >&2
    exit 1
  fi

  say "3. upgrade (automatic backup first, then all migrations in one transaction)"
  if $dry_run; then
    printf '+ '; printf '%q ' "$dbtool" ${global[@]+"${global[@]}"} upgrade; printf '\n'
  else
    result=$(db --json upgrade) && status=0 || status=$?
    if [[ $status -ne 0 ]]; then
      printf '%s\n' "$result" >&2
      code=$(printf '%s\n' "$result" | sed -n 's/^    "code": "\(.*\)",$/\1/p' | head -n 1)
      if [[ "$code" == "no-transaction-failed" ]]; then
        echo "deploy: a -- dbtool:no-transaction migration failed part-way; the database may be partly migrated." >&2
        echo "  to go back to the state before this deploy (the backup taken just before it):" >&2
        show "$dbtool" ${global[@]+"${global[@]}"} restore latest --yes >&2
      else
        echo "deploy: the upgrade failed and rolled back; the database is unchanged and the old release is still running" >&2
      fi
      exit 1
    fi
    upgraded=true
    backup=$(printf '%s\n' "$result" | json_field backup)
    db current
    if [[ -n "$backup" ]]; then echo "backup taken before the upgrade: $backup"; fi
  fi
else
  say "2-3. nothing pending: no rehearsal, no upgrade"
fi

say "4. restart $service"
restart_failed=false
change "${systemctl[@]}" restart "$service" || restart_failed=true
if ! $restart_failed && ! $dry_run; then
  "${systemctl[@]}" is-active --quiet "$service" || restart_failed=true
  if ! $restart_failed && [[ -n "${HEALTH_CHECK:-}" ]]; then
    bash -c "$HEALTH_CHECK" || restart_failed=true
  fi
fi
if $restart_failed; then
  echo "deploy: $service did not come back after the restart" >&2
  if $upgraded; then
    echo "  the database was migrated. To go back, roll the code back to the previous release, then:" >&2
    if [[ -n "$backup" ]]; then
      show "$dbtool" ${global[@]+"${global[@]}"} restore "$backup" --yes >&2
    else
      echo "    (the upgrade reported no backup path: check \`dbtool backups\` first)" >&2
      show "$dbtool" ${global[@]+"${global[@]}"} restore latest --yes >&2
    fi
    show "${systemctl[@]}" restart "$service" >&2
  else
    echo "  the database was not changed by this deploy: roll the code back and restart $service" >&2
  fi
  exit 5
fi

if $dry_run; then
  say "dry run done: nothing was changed"
else
  say "deployed: $service restarted on $database"
fi

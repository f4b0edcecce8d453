#!/usr/bin/env bash
# Benchmark authoring from a declared schema (issue 9): a folder of N migrations (default 200),
# one table each, and a declared schema that differs from its head in 20 tables (10 new columns,
# which become ALTER TABLE … ADD COLUMN, and 10 new CHECK constraints, which become rebuilds):
#
#   diff      `dbtool diff`: replay the migrations, load schema.sql, generate the up
#   autogen   `dbtool create --autogenerate`: the same, the down, and the proof (migrations +
#             up → declared, down → head, up again, on scratch databases), then the files
#   verify    `dbtool verify` of the same folder (the stairway), for scale
#
# Goal: generate-and-prove under 1 s on 2 cores. Each figure is the best of $RUNS runs (default
# 5) of the whole process; the machine's load average is printed with them, since other work on
# the 2 cores stretches every figure alike. Usage: scripts/bench-autogen.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."

n=${1:-200}
runs=${RUNS:-5}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mig="$work/migrations"
mkdir -p "$mig"

for i in $(seq 1 "$n"); do
  v=$(printf '%04d' "$i")
  p=$((i - 1))
  ref=""
  (( i > 1 )) && ref=" REFERENCES t$p (id)"
  cat > "$mig/V${v}__table_$i.sql" <<SQL
CREATE TABLE t$i (
    id INTEGER PRIMARY KEY,
    parent_id INTEGER$ref,
    name TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'new',
    created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX idx_t${i}_name ON t$i (name);
SQL
  printf 'DROP INDEX idx_t%s_name;\nDROP TABLE t%s;\n' "$i" "$i" > "$mig/V${v}__table_$i.down.sql"
done

cargo build --quiet --release
bin=$PWD/target/release/dbtool
# Run from the scratch folder: no dbtool.toml or ./schema.sql of this checkout applies.
cd "$work"
run() { "$bin" --migrations "$mig" --schema "$work/declared.sql" "$@"; }

# The declared schema: the head, with 20 tables changed.
"$bin" --migrations "$mig" schema -o "$work/declared.sql" 2>/dev/null
step=$(( n / 20 ))
(( step < 1 )) && step=1
python3 - "$work/declared.sql" "$n" "$step" <<'PY'
import re, sys
path, n, step = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
text = open(path).read()
changed = 0
for k, i in enumerate(range(step, n + 1, step)):
    if changed == 20:
        break
    old = f"    created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP\n);\nCREATE INDEX idx_t{i}_name"
    if k % 2 == 0:
        new = f"    created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,\n    note TEXT\n);\nCREATE INDEX idx_t{i}_name"
    else:
        new = f"    created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,\n    CHECK (status IN ('new', 'done'))\n);\nCREATE INDEX idx_t{i}_name"
    assert old in text, i
    text = text.replace(old, new)
    changed += 1
open(path, "w").write(text)
PY

# Run "$@" $runs times; print "best-wall-ms best-cpu-ms" (cpu = user + sys of the process, which
# the load of other work on the machine stretches far less than the wall time).
best_ms() {
  local best="" best_cpu=""
  for _ in $(seq 1 "$runs"); do
    local t0 t1 ms cpu
    t0=$(date +%s%N)
    /usr/bin/time -o "$work/cpu" -f '%U %S' "$@" >/dev/null 2>&1 || true
    cpu=$(tail -1 "$work/cpu" | awk '{ printf "%d", ($1 + $2) * 1000 }')
    t1=$(date +%s%N)
    ms=$(( (t1 - t0) / 1000000 ))
    if [[ -z "$best" || $ms -lt $best ]]; then best=$ms; fi
    if [[ -z "$best_cpu" || $cpu -lt $best_cpu ]]; then best_cpu=$cpu; fi
  done
  echo "$best $best_cpu"
}

set +e
run diff >/dev/null; code=$?
set -e
[[ $code == 3 ]] || { echo "expected dbtool diff to exit 3, got $code" >&2; exit 1; }
changes=$(run --json diff | grep -c '"change"' || true)

read -r diff_ms diff_cpu < <(best_ms "$bin" --migrations "$mig" --schema "$work/declared.sql" diff)
autogen_once() {
  "$bin" --migrations "$mig" --schema "$work/declared.sql" create "bench change" --autogenerate --quiet
  rm -f "$mig"/V*__bench_change*.sql
}
export -f autogen_once
export bin mig work
run create "bench change" --autogenerate --quiet
made=$(ls "$mig"/V*__bench_change*.sql | wc -l)
[[ $made == 2 ]] || { echo "create --autogenerate wrote $made files" >&2; exit 1; }
rm -f "$mig"/V*__bench_change*.sql
read -r autogen_ms autogen_cpu < <(best_ms bash -c autogen_once)
read -r verify_ms verify_cpu < <(best_ms "$bin" --migrations "$mig" verify)

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) b = 1; printf "%.2fx", a / b }'; }
echo "declared schema vs. the head of $n migrations ($n tables), $changes changes, best of $runs:"
printf '  %-48s %6s %8s   %s\n' "" "wall" "cpu" "wall vs verify"
printf '  %-48s %4d ms %5d ms   %s\n' "dbtool diff" "$diff_ms" "$diff_cpu" "$(ratio "$diff_ms" "$verify_ms")"
printf '  %-48s %4d ms %5d ms   %s\n' "dbtool create --autogenerate (generate + prove)" "$autogen_ms" "$autogen_cpu" "$(ratio "$autogen_ms" "$verify_ms")"
printf '  %-48s %4d ms %5d ms\n' "dbtool verify of the same folder (stairway)" "$verify_ms" "$verify_cpu"
echo "  (load average: $(cut -d' ' -f1-3 /proc/loadavg))"
if (( autogen_ms < 1000 )); then echo "goal met: generate-and-prove under 1 s"; else echo "goal MISSED: 1 s wall (cpu ${autogen_cpu} ms)"; fi

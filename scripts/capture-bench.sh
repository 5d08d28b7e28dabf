#!/usr/bin/env bash
# Capture cost on the app's insert path (issue 13): booking INSERT transactions/s with our
# triggers as a ratio to the same table without them, measured with pgbench in one run, the
# variants run back to back (adjacent) in every round so load from elsewhere hits them alike.
#
#   scripts/capture-bench.sh [--seconds N] [--rounds N] [--clients N] [--before VERSION]
#                            [--modes LIST] [--long SECONDS]
#
# Variants, each in a schema of its own in the database `capture_bench` (created, never
# dropped; its schemas are rebuilt on every run):
#   bare    V1 only: booking_requests without triggers
#   before  migrations older than VERSION (default: the newest file), i.e. the capture as it
#           was before that migration — omitted with --before none
#   after   every migration in migrations/
# Modes (webhooks.notify / synchronous_commit, set per connection through PGOPTIONS):
#   off-on, on-on, off-off, on-off (notify-sync); default all four.
# One booking per transaction (an INSERT of the columns an app sets, a prepared statement),
# --clients connections (default 4). Every run starts from empty tables after a CHECKPOINT, so
# no run inherits another's dirty pages. Prints one line per run and, per mode, the median
# ratio of each variant to bare over the rounds. --long N adds one N-second run of `after`
# (notify off) with a figure every 5 s: capture must stay flat over a long-lived connection.
#
# Connection: the PG* environment (default 127.0.0.1:5432, user postgres).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
seconds=10 rounds=3 clients=4 before=auto modes="off-on on-on off-off on-off" long=0
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --clients) clients=$2; shift 2 ;;
    --before) before=$2; shift 2 ;;
    --modes) modes=$2; shift 2 ;;
    --long) long=$2; shift 2 ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "capture-bench: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

export PGHOST=${PGHOST:-127.0.0.1} PGPORT=${PGPORT:-5432} PGUSER=${PGUSER:-postgres}
db=capture_bench
if ! psql -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$db'" | grep -q 1; then
  createdb "$db"
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Migration files in version order.
mapfile -t files < <(ls "$root"/migrations/V*__*.sql | awk -F'/V' '{split($NF, a, "__"); print a[1] "\t" $0}' | sort -n | cut -f2)
version_of() { basename "$1" | sed -E 's/^V([0-9]+)__.*/\1/'; }
newest=$(version_of "${files[-1]}")
[ "$before" = auto ] && before=$newest

migrate() { # schema, files...
  local schema=$1; shift
  PGOPTIONS="-c client_min_messages=warning" \
    psql -q -d "$db" -v ON_ERROR_STOP=1 -c "DROP SCHEMA IF EXISTS $schema CASCADE" -c "CREATE SCHEMA $schema"
  for f in "$@"; do
    PGOPTIONS="-c search_path=$schema -c client_min_messages=warning" \
      psql -q -X -1 -d "$db" -v ON_ERROR_STOP=1 -f "$f" >/dev/null
  done
}

variants=(bare)
migrate cb_bare "${files[0]}"
if [ "$before" != none ]; then
  older=()
  for f in "${files[@]}"; do [ "$(version_of "$f")" -lt "$before" ] && older+=("$f"); done
  migrate cb_before "${older[@]}"
  variants+=(before)
fi
migrate cb_after "${files[@]}"
variants+=(after)

cat >"$work/insert.sql" <<'SQL'
\set n random(1, 1000000)
INSERT INTO booking_requests (student_name, student_email, tutor_name, tutor_email, subject, requested_start)
VALUES ('Sam Student', 'student' || :n || '@example.com', 'Tess Tutor', 'tutor' || :n || '@example.com',
        'Maths', now() + interval '1 day');
SQL

run() { # schema notify sync seconds [extra pgbench args]
  local schema=$1 notify=$2 sync=$3 secs=$4; shift 4
  psql -q -d "$db" -c "SET search_path = $schema" \
    -c "TRUNCATE booking_requests$([ "$schema" != cb_bare ] && echo ', webhook_deliveries, webhook_attempts')" \
    -c "CHECKPOINT"
  PGOPTIONS="-c search_path=$schema -c webhooks.notify=$notify -c synchronous_commit=$sync" \
    pgbench -n -M prepared -c "$clients" -j "$clients" -T "$secs" -f "$work/insert.sql" "$@" "$db" 2>&1
}

tps_of() { sed -nE 's/^tps = ([0-9.]+) .*/\1/p' | head -1; }

echo "capture-bench: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $(psql -d "$db" -tAc 'SHOW server_version'), ${seconds}s runs, $rounds rounds, $clients clients; before = migrations < V$before, after = up to V$newest"
results="$work/results"
: >"$results"
for round in $(seq 1 "$rounds"); do
  for mode in $modes; do
    notify=${mode%-*} sync=${mode#*-}
    line="round $round notify=$notify sync_commit=$sync:"
    for v in "${variants[@]}"; do
      tps=$(run "cb_$v" "$notify" "$sync" "$seconds" | tps_of)
      echo "$mode $v $tps" >>"$results"
      line="$line $v $tps"
    done
    echo "$line (load $(cut -d' ' -f1 /proc/loadavg))"
  done
done

echo
echo "median ratio to bare over $rounds rounds (tps: median):"
for mode in $modes; do
  awk -v mode="$mode" -v order="${variants[*]}" '
    function median(arr, n,   i, j, t) {
      for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (arr[j] < arr[i]) { t = arr[i]; arr[i] = arr[j]; arr[j] = t }
      return n % 2 ? arr[(n + 1) / 2] : (arr[n / 2] + arr[n / 2 + 1]) / 2
    }
    $1 == mode { k[$2]++; tps[$2, k[$2]] = $3; if ($2 == "bare") bare[k[$2]] = $3 }
    END {
      split(mode, m, "-")
      line = sprintf("  notify=%-3s sync_commit=%-3s", m[1], m[2])
      nv = split(order, vs, " ")
      for (x = 1; x <= nv; x++) {
        v = vs[x]; n = k[v]
        for (i = 1; i <= n; i++) { r[i] = tps[v, i] / bare[i]; t[i] = tps[v, i] }
        if (v == "bare") line = line sprintf("  bare %.0f", median(t, n))
        else rest = rest sprintf("  %s %.2f (%.0f)", v, median(r, n), median(t, n))
      }
      print line rest
    }' "$results"
done

if [ "$long" -gt 0 ]; then
  echo
  echo "long-lived connections: after, notify off, sync_commit on, ${long}s, tps every 5 s:"
  run cb_after off on "$long" -P 5 | sed -nE 's/^progress: ([0-9.]+) s, ([0-9.]+) tps.*/  \1 s: \2/p'
fi

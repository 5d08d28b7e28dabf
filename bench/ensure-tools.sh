#!/usr/bin/env bash
# What `make bench` needs from Debian, installed when missing (a fresh machine lacks them):
#   nginx   — the fast receiver of the throughput figures (run with the bench's own config on
#             a free port; Debian's default site is not used);
#   time    — GNU time, for the peak RSS of each process (wait4's ru_maxrss);
#   pgbench — ships with the Postgres server package (/usr/lib/postgresql/<v>/bin).
set -euo pipefail
say() { echo "bench-tools: $*" >&2; }

missing=()
[ -x /usr/sbin/nginx ] || missing+=(nginx)
[ -x /usr/bin/time ] || missing+=(time)
if ! ls /usr/lib/postgresql/*/bin/pgbench >/dev/null 2>&1 && ! command -v pgbench >/dev/null; then
  missing+=(postgresql)
fi
[ ${#missing[@]} -eq 0 ] && exit 0

say "installing ${missing[*]} from Debian (first run only)"
sudo=()
[ "$(id -u)" = 0 ] || sudo=(sudo)
"${sudo[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"

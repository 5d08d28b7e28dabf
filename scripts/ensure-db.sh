#!/usr/bin/env bash
# Make sure a PostgreSQL server is reachable, in this order:
#   1. DATABASE_URL, if set (it must answer; on a local server — 127.0.0.1, ::1, localhost — its
#      database is created if missing, e.g. webhooks_dev of .env.example);
#   2. a server on 127.0.0.1:5432 (trust auth, database `test` created if missing);
#   3. a throwaway cluster under target/pg (initdb + pg_ctl, port 55432), started on demand.
# With --print-url, print only the URL to use on stdout (for Makefile and CI); messages go to
# stderr. A URL given in DATABASE_URL is never echoed in messages: it may hold a password.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
print_url=false
[ "${1:-}" = "--print-url" ] && print_url=true
say() { echo "ensure-db: $*" >&2; }

emit() {
  if $print_url; then echo "$1"; else say "using $2"; fi
}

# Creates the database DATABASE_URL names when it is missing and the server is this machine's
# (never anyone else's). Messages name the database, never the URL.
ensure_local_db() {
  local url=$1 base name server
  [[ $url =~ ^postgres(ql)?://([^@/]*@)?(127\.0\.0\.1|localhost|\[::1\])(:[0-9]+)?/([A-Za-z0-9_]+)(\?.*)?$ ]] || return 0
  name=${BASH_REMATCH[5]}
  psql "$url" -tAc 'SELECT 1' >/dev/null 2>&1 && return 0
  base=${url%%\?*}
  server="${base%/*}/postgres${url#"$base"}"
  if ! psql "$server" -tAc "SELECT 1 FROM pg_database WHERE datname = '$name'" | grep -q 1; then
    say "creating database $name on the local server (DATABASE_URL names it)"
    psql "$server" -qc "CREATE DATABASE $name" >&2
  fi
}

if [ -n "${DATABASE_URL:-}" ]; then
  if pg_isready -q -d "$DATABASE_URL"; then
    ensure_local_db "$DATABASE_URL"
    emit "$DATABASE_URL" "DATABASE_URL"
    exit 0
  fi
  say "DATABASE_URL is set but its server does not answer (check host, port and that it is running)"
  exit 1
fi

ensure_test_db() { # host port
  if ! psql -h "$1" -p "$2" -U postgres -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'test'" | grep -q 1; then
    createdb -h "$1" -p "$2" -U postgres test
  fi
}

if pg_isready -q -h 127.0.0.1 -p 5432; then
  ensure_test_db 127.0.0.1 5432
  emit "postgres://postgres@127.0.0.1:5432/test" "the server on 127.0.0.1:5432"
  exit 0
fi

# 3. A throwaway cluster of our own. initdb and pg_ctl refuse to run as root: use postgres.
bindir=$(pg_config --bindir 2>/dev/null || true)
if [ ! -x "$bindir/initdb" ]; then
  bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
fi
if [ ! -x "${bindir:-}/initdb" ]; then
  say "no server answers on 127.0.0.1:5432 and initdb was not found; install PostgreSQL >= 15 (e.g. apt-get install postgresql) or set DATABASE_URL"
  exit 1
fi
data="$root/target/pg/data"
port=55432
as_pg=()
if [ "$(id -u)" = 0 ]; then
  as_pg=(runuser -u postgres --)
  mkdir -p "$root/target/pg"
  chown postgres "$root/target/pg"
fi
if [ ! -f "$data/PG_VERSION" ]; then
  say "creating a throwaway cluster in target/pg"
  "${as_pg[@]}" "$bindir/initdb" -D "$data" -U postgres --auth=trust >/dev/null
  # TLS on, as on managed databases, with a self-signed certificate (the TLS tests need it).
  "${as_pg[@]}" openssl req -new -x509 -days 3650 -nodes -subj /CN=localhost \
    -keyout "$data/server.key" -out "$data/server.crt" >/dev/null 2>&1
  chmod 600 "$data/server.key"
  echo "ssl = on" >> "$data/postgresql.conf"
fi
if ! pg_isready -q -h 127.0.0.1 -p "$port"; then
  say "starting the throwaway cluster on 127.0.0.1:$port"
  "${as_pg[@]}" "$bindir/pg_ctl" -D "$data" -l "$root/target/pg/server.log" -w \
    -o "-p $port -c listen_addresses=127.0.0.1 -k /tmp -c max_connections=200" start >&2
fi
ensure_test_db 127.0.0.1 "$port"
emit "postgres://postgres@127.0.0.1:$port/test" "the throwaway cluster on 127.0.0.1:$port"

#!/usr/bin/env bash
# Refuses to deploy the functions with settings that cannot work in AWS: `make deploy` runs it
# on LAMBDA_ENV_FILE (.env.deploy) before building anything.
#
#   scripts/check-deploy-env.sh FILE
#
# Refused, each named at once: a missing file; DATABASE_URL or WEBHOOK_URL left as in
# .env.example, or pointing at a loopback host (127.0.0.0/8, ::1, localhost), which from a
# Lambda function is the function itself. DEPLOY_YES=1 deploys them anyway (a rehearsal
# against an emulator, say). Exit 0: deploy; 1: refused.
set -euo pipefail

file=${1:?usage: scripts/check-deploy-env.sh FILE}
example="$(dirname "$0")/../.env.example"

if [ ! -f "$file" ]; then
  echo "deploy: $file missing: cp .env.example $file and edit it (docs/deploy.md, section 2)" >&2
  exit 1
fi

# The value of KEY in an env file: the last `KEY=value` line, quotes stripped.
value() {
  local line
  line=$(grep -E "^[[:space:]]*(export[[:space:]]+)?$1=" "$2" | tail -n 1) || true
  line=${line#*=}
  line=${line%\"}; line=${line#\"}; line=${line%\'}; line=${line#\'}
  printf '%s' "$line"
}

# True when URL's host is a loopback one.
loopback() {
  local host=${1#*://}
  host=${host##*@}
  host=${host%%[/?]*}
  case "$host" in
    \[*\]*) host=${host%%]*}; host=${host#[} ;;
    *) host=${host%%:*} ;;
  esac
  case "$host" in
    localhost | ::1 | 127.*) return 0 ;;
    *) return 1 ;;
  esac
}

problems=()
for key in DATABASE_URL WEBHOOK_URL; do
  set_to=$(value "$key" "$file")
  if [ -z "$set_to" ]; then
    problems+=("$key is not set")
  elif [ "$set_to" = "$(value "$key" "$example")" ]; then
    problems+=("$key is still .env.example's")
  elif loopback "$set_to"; then
    problems+=("$key points at a loopback host, which from Lambda is the function itself")
  fi
done

if [ ${#problems[@]} -gt 0 ] && [ "${DEPLOY_YES:-}" != 1 ]; then
  for problem in "${problems[@]}"; do
    echo "deploy: $file: $problem" >&2
  done
  echo "deploy: refused: set the real values (docs/deploy.md, section 2), or DEPLOY_YES=1 to deploy these anyway" >&2
  exit 1
fi

#!/usr/bin/env bash
# Make sure `python3 -m venv` works: cargo-lambda and moto come from PyPI into target/venv.
# Where it does not (Debian and Ubuntu ship venv separately), install it with apt-get when
# running as root, else say what to install.
set -euo pipefail

if python3 -c 'import ensurepip, venv' 2>/dev/null; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "tools: installing python3 and python3-venv with apt-get" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv >/dev/null
  exit 0
fi
echo "tools: Python 3 with venv is needed (cargo-lambda and moto come from PyPI): install python3-venv (Debian/Ubuntu) or python3, then run make again" >&2
exit 1

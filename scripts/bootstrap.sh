#!/usr/bin/env bash
# Prepare a machine for c2m-sync: the Python environment (.venv) and, with --services, the system
# packages the test suite needs (a JDK and Maven for the Apache Kafka launcher, Debian's
# PostgreSQL server for throwaway test clusters). Safe to run again: it only does what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

want_services=0
[[ "${1:-}" == "--services" ]] && want_services=1

log() { printf '==> %s\n' "$*"; }

if (( want_services )); then
  missing=()
  command -v java >/dev/null 2>&1 || missing+=(default-jdk-headless)
  command -v mvn >/dev/null 2>&1 || missing+=(maven)
  # The console's browser tests drive Debian's Chromium through the Playwright driver.
  [[ -n "${C2M_SYNC_CHROMIUM:-}" ]] || command -v chromium >/dev/null 2>&1 \
    || missing+=(chromium)
  if [[ -z "${C2M_SYNC_TEST_POSTGRES_URL:-}" ]] \
     && ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
    missing+=(postgresql)
  fi
  if (( ${#missing[@]} )); then
    if [[ $(id -u) -ne 0 ]] && ! command -v sudo >/dev/null 2>&1; then
      echo "missing system packages: ${missing[*]} (install them, or run as root)" >&2
      exit 1
    fi
    SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
    log "installing system packages: ${missing[*]}"
    $SUDO apt-get update -qq
    # The postgresql package would start a system cluster; tests use their own throwaway ones.
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
      "${missing[@]}" >/dev/null
    if [[ " ${missing[*]} " == *" postgresql "* ]] && command -v pg_lsclusters >/dev/null; then
      $SUDO pg_lsclusters -h 2>/dev/null | while read -r version name _rest; do
        $SUDO pg_ctlcluster "$version" "$name" stop 2>/dev/null || true
      done
    fi
  fi
fi

PYTHON="${PYTHON:-}"
if [[ -z "$PYTHON" ]]; then
  for candidate in python3.11 python3.12 python3.13 python3; do
    if command -v "$candidate" >/dev/null 2>&1 \
       && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
      PYTHON="$candidate"; break
    fi
  done
fi
[[ -n "$PYTHON" ]] || { echo "Python 3.11 or newer is required" >&2; exit 1; }

if [[ ! -x .venv/bin/python ]]; then
  log "creating .venv with $PYTHON"
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.c2m-sync-installed
wanted=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$wanted" ]]; then
  log "installing c2m-sync and its test dependencies into .venv"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e ".[test]"
  echo "$wanted" > "$stamp"
fi

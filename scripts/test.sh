#!/usr/bin/env bash
# The one test command (`make test`): set up everything, lint, type-check, run every test tier
# against a genuine Apache Kafka broker and a real PostgreSQL, and stop what was started.
# The broker and the database are started by the test session's fixtures and stopped by them;
# with CI=true a broker or database that cannot be had fails the run instead of skipping.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)

bash scripts/bootstrap.sh --services

echo "==> ruff"
.venv/bin/ruff check sync tests bench
echo "==> mypy (strict, sync/)"
.venv/bin/mypy
echo "==> pytest"
.venv/bin/python -m pytest "$@"

echo "==> test command finished in $(( $(date +%s) - started ))s"

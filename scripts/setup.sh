#!/usr/bin/env bash
# Create .venv and install FusionLens's Python dependencies (idempotent).
#   scripts/setup.sh          runtime dependencies
#   scripts/setup.sh --dev    plus test dependencies and Chromium for browser tests
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3.11}"
command -v "$PY" >/dev/null 2>&1 || PY=python3
if [ ! -x .venv/bin/python ]; then
  echo "[setup] creating .venv with $($PY --version)"
  "$PY" -m venv .venv
fi
REQ=requirements.txt
[ "${1:-}" = "--dev" ] && REQ=requirements-dev.txt
STAMP=".venv/.installed-$(sha256sum requirements.txt requirements-dev.txt | sha256sum | cut -c1-12)-$(basename $REQ .txt)"
if [ ! -f "$STAMP" ]; then
  echo "[setup] installing $REQ (torch is pinned to the 2.13.0 CPU build)"
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -r "$REQ"
  touch "$STAMP"
fi
if [ "${1:-}" = "--dev" ] && [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = "0" ]; then
    echo "[setup] installing Debian's chromium for the browser tests"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "[setup] /usr/bin/chromium is missing: run 'sudo apt-get install -y chromium' for the browser tests" >&2
  fi
fi
if ! command -v npm >/dev/null 2>&1; then
  echo "[setup] note: npm is missing; the emoji demo fetches its data with npm (apt-get install -y npm)" >&2
fi

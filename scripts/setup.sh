#!/usr/bin/env bash
# Create .venv, install FusionLens's Python dependencies and FusionLens itself (editable, with
# its console command .venv/bin/fusionlens). Idempotent: a stamp keyed on the requirements and
# pyproject.toml skips what is installed.
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
STAMP=".venv/.installed-$(sha256sum requirements.txt requirements-dev.txt requirements-extra.txt pyproject.toml | sha256sum | cut -c1-12)-$(basename $REQ .txt)"
if [ ! -f "$STAMP" ] || [ ! -x .venv/bin/fusionlens ]; then
  echo "[setup] installing $REQ (torch is pinned to the 2.13.0 CPU build)"
  .venv/bin/python -m pip install --quiet --upgrade pip "setuptools>=64"
  .venv/bin/python -m pip install --quiet -r "$REQ"
  echo "[setup] installing FusionLens (editable) and its command .venv/bin/fusionlens"
  .venv/bin/python -m pip install -qq --no-deps --no-build-isolation -e .  # -qq: no setuptools banner
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

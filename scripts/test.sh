#!/usr/bin/env bash
# Set everything up (test dependencies, Chromium) and run the whole test suite,
# including the slow and browser tests. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --dev
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
exec .venv/bin/python -m pytest -m "slow or e2e or not (slow or e2e)" "$@"

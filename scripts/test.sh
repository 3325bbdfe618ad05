#!/usr/bin/env bash
# Set everything up (test dependencies, Chromium) and run the whole test suite,
# including the slow and browser tests, with one torch thread; then the fast tests
# again with two, so a result that depends on the thread count (another BLAS
# blocking, another reduction order) fails here and not on a user's machine
# (tolerances: tests/_tolerance.py). Extra arguments go to both pytest runs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --dev
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
FUSIONLENS_TEST_THREADS=1 .venv/bin/python -m pytest -m "slow or e2e or not (slow or e2e)" "$@"
echo "[test] the fast tests again with FUSIONLENS_TEST_THREADS=2"
FUSIONLENS_TEST_THREADS=2 .venv/bin/python -m pytest "$@"

#!/usr/bin/env bash
# Set everything up, build the embedded demo experiments when missing, start the dashboard.
#   FUSIONLENS_RUNS=...   runs directory (default: runs/ of the repository, where this script runs)
#   FUSIONLENS_PORT=...   port (default 8501); the server listens on 127.0.0.1 only
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
for exp in ${FUSIONLENS_DEMOS:-emoji rgbd site}; do
  [ -f "experiments/$exp.toml" ] || continue
  echo "[run] building experiment '$exp' (finished steps are kept)"
  .venv/bin/python -m core build "$exp"
done
echo "[run] dashboard on http://127.0.0.1:${FUSIONLENS_PORT:-8501}"
exec .venv/bin/python -m streamlit run app.py --server.address 127.0.0.1 \
  --server.port "${FUSIONLENS_PORT:-8501}" --server.headless true --browser.gatherUsageStats false

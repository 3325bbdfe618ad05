"""The comparison table of an experiment: one row per run."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from core.bundle import list_runs, load_run
from core.errors import BundleError
from core.io import atomic_path

COLUMNS = ["run", "encoders", "fusion", "strategy", "modalities", "top1", "top3", "top5", "macro_f1", "n_params",
           "inference_ms"]
STRATEGY_ORDER = {"unimodal": 0, "early": 1, "intermediate": 2, "late": 3}


def results_table(exp_dir: Path) -> tuple[pd.DataFrame, list[str]]:
    """Rows for every readable run; also the list of runs that could not be read (with why)."""
    rows, problems = [], []
    for run_dir in list_runs(exp_dir):
        try:
            run = load_run(run_dir)
        except BundleError as exc:
            problems.append(f"{run_dir.name}: {exc}")
            continue
        cfg, met = run.config, run.metrics
        rows.append({
            "run": run.name,
            "encoders": ", ".join(f"{m}={cfg['encoders'][m]['name']}" for m in cfg["modalities"]),
            "fusion": cfg["fusion"], "strategy": cfg["strategy"], "modalities": "+".join(cfg["modalities"]),
            "n_modalities": len(cfg["modalities"]), "encoder_set": cfg.get("encoder_set", ""),
            "top1": met["top1"], "top3": met["top3"], "top5": met["top5"], "macro_f1": met["macro_f1"],
            "n_params": met["n_params"], "inference_ms": met["inference_ms_per_sample"],
        })
    frame = pd.DataFrame(rows, columns=[*COLUMNS, "n_modalities", "encoder_set"])
    if not frame.empty:
        frame = frame.assign(_s=frame["strategy"].map(STRATEGY_ORDER))
        frame = frame.sort_values(["encoder_set", "_s", "n_modalities", "modalities", "top1"],
                                  ascending=[True, True, False, True, False]).drop(columns="_s")
    return frame[COLUMNS].reset_index(drop=True), problems


def save_results(exp_dir: Path) -> tuple[pd.DataFrame, list[str]]:
    frame, problems = results_table(exp_dir)
    with atomic_path(exp_dir / "results.csv") as tmp:
        frame.to_csv(tmp, index=False, float_format="%.4f")
    return frame, problems


def format_results(frame: pd.DataFrame) -> str:
    if frame.empty:
        return "(no runs yet)"
    shown = frame.copy()
    for c in ("top1", "top3", "top5", "macro_f1"):
        shown[c] = shown[c].map(lambda v: f"{v:.3f}")
    shown["n_params"] = shown["n_params"].map(lambda v: f"{v:,}")
    shown["inference_ms"] = shown["inference_ms"].map(lambda v: f"{v:.2f}")
    return shown.drop(columns=["encoders"]).to_string(index=False)

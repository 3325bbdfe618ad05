"""The comparison table of an experiment: one row per run."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from core.bundle import Run, experiment_arg
from core.catalog import RunEntry, scan_runs
from core.errors import cli_command
from core.io import atomic_path

COLUMNS = ["run", "encoders", "fusion", "strategy", "modalities", "top1", "top3", "top5", "macro_f1", "n_params",
           "inference_ms", "gflops"]
#: Shown for a run whose metrics have no FLOP count (built before core.compute; ``fusionlens compute`` adds it).
MISSING = "\u2014"
STRATEGY_ORDER = {"unimodal": 0, "early": 1, "intermediate": 2, "late": 3, "classical": 4, "adaptive": 5}


def _row(run: Run) -> dict[str, Any]:
    cfg, met = run.config, run.metrics
    return {
        "run": run.path.name,
        "encoders": ", ".join(f"{m}={cfg['encoders'][m]['name']}" for m in cfg["modalities"]),
        "fusion": cfg["fusion"], "strategy": cfg["strategy"], "modalities": "+".join(cfg["modalities"]),
        "n_modalities": len(cfg["modalities"]), "encoder_set": str(cfg.get("encoder_set", "")),
        "top1": float(met["top1"]), "top3": float(met["top3"]), "top5": float(met["top5"]),
        "macro_f1": float(met["macro_f1"]), "n_params": int(met["n_params"]),
        "inference_ms": float(met["inference_ms_per_sample"]),
        "gflops": float(met["gflops_per_sample"]) if "gflops_per_sample" in met else float("nan"),
    }


def results_table(exp_dir: Path, root: Path | None = None,
                  entries: Sequence[RunEntry] | None = None) -> tuple[pd.DataFrame, list[str]]:
    """Rows for every usable run; also the runs left out, each as ``run X (state): problem. Fix: ...``.

    Runs come from :func:`core.catalog.scan_runs` (``root``: the runs root nothing may leave,
    default the experiment folder's parent), so a refused run is never read, and one run's
    bad data never takes the table down: it becomes a problem and the other rows stay.
    ``entries``: that scan when the caller already made it (the dashboard), so runs are read once.
    """
    rows, problems = [], []
    for entry in (scan_runs(exp_dir, root) if entries is None else entries):
        if not entry.usable or entry.run is None:
            problems.append(f"run {entry.name} ({entry.state}): {entry.message}")
            continue
        try:
            rows.append(_row(entry.run))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:  # load_run checks these; belt and braces
            problems.append(f"run {entry.name} (broken): config.json or metrics.json cannot be read as a results "
                            f"row ({type(exc).__name__}: {exc}). Fix: rebuild it with `{cli_command()} train "
                            f"{experiment_arg(exp_dir)} --run {entry.name} --force`")
    frame = pd.DataFrame(rows, columns=[*COLUMNS, "n_modalities", "encoder_set"])
    if not frame.empty:
        frame = frame.assign(_s=frame["strategy"].map(STRATEGY_ORDER))
        frame = frame.sort_values(["encoder_set", "_s", "n_modalities", "modalities", "top1"],
                                  ascending=[True, True, False, True, False]).drop(columns="_s")
    return frame[COLUMNS].reset_index(drop=True), problems


def save_results(exp_dir: Path, root: Path | None = None) -> tuple[pd.DataFrame, list[str]]:
    frame, problems = results_table(exp_dir, root)
    # GFLOPs to 6 significant digits (a small encoder costs < 1e-4 GFLOPs), empty for a run without a count
    written = frame.assign(gflops=frame["gflops"].map(lambda v: "" if pd.isna(v) else f"{v:.6g}"))
    with atomic_path(exp_dir / "results.csv") as tmp:
        written.to_csv(tmp, index=False, float_format="%.4f")
    return frame, problems


def format_results(frame: pd.DataFrame) -> str:
    if frame.empty:
        return "(no runs yet)"
    shown = frame.copy()
    for c in ("top1", "top3", "top5", "macro_f1"):
        shown[c] = shown[c].map(lambda v: f"{v:.3f}")
    shown["n_params"] = shown["n_params"].map(lambda v: f"{v:,}")
    shown["inference_ms"] = shown["inference_ms"].map(lambda v: f"{v:.2f}")
    shown["gflops"] = shown["gflops"].map(lambda v: MISSING if pd.isna(v) else f"{v:.3g}")
    return shown.drop(columns=["encoders"]).to_string(index=False)

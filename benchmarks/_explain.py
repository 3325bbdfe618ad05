"""What the explain benchmarks share: an experiment's fused runs, and every run's stored values to compare."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable


def stored_values(runs: list[Path], name: Callable[[Path], str] = lambda run: run.name) -> dict[str, dict]:
    """Per run (keyed by ``name(run)``): ``phi`` (every stored Shapley value, in sample, modality and feature
    order), ``shares`` (the samples' share columns, in sample order) and ``head_rows`` (summed)."""
    from core.explain import load_explanations

    out = {}
    for run in runs:
        samples, features = load_explanations(run)
        share_cols = sorted(c for c in samples.columns if c.startswith(("share_", "exact_share_")))
        out[name(run)] = {
            "phi": features.sort_values(["sample_id", "modality", "feature_index"])["phi"].to_numpy(),
            "shares": samples.sort_values("sample_id")[share_cols].to_numpy(dtype=float),
            "head_rows": sum(json.loads(s).get("head_rows") or 0 for s in samples["settings"]),
        }
    return out


def fused_runs(exp_dir: Path) -> list[Path]:
    """The experiment's fused runs (more than one modality), most modalities first, then by name."""
    out = []
    for d in sorted(p for p in exp_dir.iterdir() if (p / "config.json").is_file()):
        cfg = json.loads((d / "config.json").read_text())
        if cfg.get("strategy") != "unimodal" and len(cfg.get("modalities", [])) > 1:
            out.append((-len(cfg["modalities"]), d.name, d))
    return [d for *_, d in sorted(out)]

"""What the Efficiency page and ``fusionlens efficiency`` show: the reference's table, the Pareto front,
an adaptive run's decisions and its selection rates per class.

Nothing here imports torch at import time (the dashboard's pages start without
it); :func:`reproduce_decisions` imports it when called.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from core.bundle import Run
from core.errors import BundleError, cli_command
from core.io import read_parquet

#: the issue's target for an adaptive run against the best all-modality fusion: at least this GFLOPs saving ...
TARGET_SAVING = 0.30
#: ... at no more than this drop of top-1 (a fraction: 0.01 is one point)
TARGET_DROP = 0.01
DECISIONS_FILE = "decisions.parquet"
DECISION_COLUMNS = ("id", "segment", "modality", "used")
#: strategies whose runs count as "all-modality fusion" in the table
FUSION_STRATEGIES = ("early", "intermediate", "late", "classical")


def is_adaptive(run: Run) -> bool:
    return run.config.get("strategy") == "adaptive"


def load_decisions(run_dir: str | Path) -> pd.DataFrame:
    """An adaptive run's ``decisions.parquet`` (``id``, ``segment``, ``modality``, ``used``), checked."""
    path = Path(run_dir) / DECISIONS_FILE
    if not path.is_file():
        raise BundleError(f"run {Path(run_dir).name} has no {DECISIONS_FILE}",
                          fix=f"retrain it with `{cli_command()} train <experiment> --run {Path(run_dir).name} "
                              "--force` (only adaptive runs have decisions)")
    frame = read_parquet(path, what="decisions")
    missing = [c for c in DECISION_COLUMNS if c not in frame.columns]
    if missing or not pd.api.types.is_bool_dtype(frame.get("used", pd.Series(dtype=bool))):
        raise BundleError(f"{path} lacks column(s) {missing} or its 'used' is not boolean",
                          fix=f"retrain the run with `{cli_command()} train <experiment> --run {Path(run_dir).name} "
                              "--force`")
    return frame.assign(id=frame["id"].astype(str))


def idle_samples(run: Run) -> set[str]:
    """Test items of an adaptive run for which the policy ran nothing and no modality is always on: their
    prediction uses no input, so explanations leave them out (empty for any other run)."""
    if not is_adaptive(run) or run.config.get("adaptive", {}).get("always_on"):
        return set()
    used = load_decisions(run.path).groupby("id")["used"].any()
    return {str(i) for i, u in used.items() if not u}


def sample_decisions(decisions: pd.DataFrame, sample_id: str, policy: Sequence[str] | None = None) -> pd.DataFrame:
    """One item's decisions as a (policy modality x segment) table of bools (empty when the id is absent)."""
    rows = decisions[decisions["id"].astype(str) == str(sample_id)]
    table = rows.pivot(index="modality", columns="segment", values="used") if len(rows) else pd.DataFrame()
    if policy is not None and len(table):
        table = table.reindex([m for m in policy if m in table.index])
    return table.astype(bool) if len(table) else table


def class_selection_rates(run: Run, decisions: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per true class (rows, plus ``all``): the fraction of its items' segments in which each policy modality
    runs, and ``n`` (items)."""
    decisions = load_decisions(run.path) if decisions is None else decisions
    labels = run.predictions.assign(id=run.predictions["id"].astype(str)).set_index("id")["label"].astype(str)
    frame = decisions.assign(label=decisions["id"].map(labels))
    policy = list(run.config.get("adaptive", {}).get("policy") or frame["modality"].unique())
    rates = frame.pivot_table(index="label", columns="modality", values="used", aggfunc="mean")
    rates = rates.reindex(columns=[m for m in policy if m in rates.columns])
    overall = frame.groupby("modality")["used"].mean().reindex(rates.columns)
    rates.loc["all"] = overall
    counts = frame.groupby("label")["id"].nunique()
    rates["n"] = [int(counts.get(c, 0)) for c in rates.index[:-1]] + [int(frame["id"].nunique())]
    order = [c for c in run.classes if c in rates.index] + ["all"]
    return rates.reindex(order)


def pareto_front(frame: pd.DataFrame, x: str = "gflops", y: str = "top1") -> pd.Series:
    """Whether each row is on the accuracy-vs-cost Pareto front: no other row costs no more and scores no less,
    with one of them strictly. Rows without a cost are never on it."""
    xs, ys = frame[x].to_numpy(dtype=float), frame[y].to_numpy(dtype=float)
    ok = np.isfinite(xs) & np.isfinite(ys)
    on = np.zeros(len(frame), dtype=bool)
    for i in np.flatnonzero(ok):
        dominated = ok & (xs <= xs[i]) & (ys >= ys[i]) & ((xs < xs[i]) | (ys > ys[i]))
        on[i] = not dominated.any()
    return pd.Series(on, index=frame.index, name="pareto")


def _gflops(run: Run) -> float:
    value = run.metrics.get("gflops_per_sample")
    return float(value) if value is not None else float("nan")


def _label(run: Run) -> str:
    cfg = run.config
    if cfg["strategy"] == "unimodal":
        return f"{cfg['modalities'][0]} only"
    if is_adaptive(run):
        scale = float(cfg.get("adaptive", {}).get("cost_scale", 1.0))
        return "Adaptive (AdaMML)" + ("" if scale == 1.0 else f", costs x{scale:g}")
    return f"All-modality fusion ({cfg['fusion']})"


def efficiency_table(runs: Sequence[Run], adaptive: str | None = None) -> pd.DataFrame:
    """The reference's table for one adaptive run's modalities and encoder set (``adaptive``: its run name;
    default the first adaptive run by name).

    Rows: each modality alone (its unimodal run), the best all-modality fusion (highest top-1 over exactly
    the adaptive run's modalities; ties to the cheaper), then every adaptive run over them (one per cost
    scale: the trade-off curve), cheapest last. Columns: ``method``, ``run``, ``top1``, ``sel_<modality>``
    (the fraction of segments the modality runs in; NaN where it is not an input), ``gflops`` (per item;
    an adaptive run's expected cost), ``saving`` (``1 - gflops / the best fusion's``), ``top1_drop``
    (the best fusion's top-1 minus this one's) and ``meets_target`` (adaptive rows: a saving of at least
    :data:`TARGET_SAVING` at a drop of at most :data:`TARGET_DROP`). Empty without an adaptive run.
    """
    adaptive_runs = sorted((r for r in runs if is_adaptive(r)), key=lambda r: r.name)
    if adaptive is not None:
        adaptive_runs = [r for r in adaptive_runs if r.name == adaptive] + \
                        [r for r in adaptive_runs if r.name != adaptive]
    if not adaptive_runs:
        return pd.DataFrame()
    base = adaptive_runs[0]
    mods, tag = list(base.modalities), str(base.config.get("encoder_set", ""))
    same = [r for r in runs if str(r.config.get("encoder_set", "")) == tag]
    rows: list[tuple[Run, dict[str, float]]] = []
    for m in mods:
        uni = next((r for r in same if r.config["strategy"] == "unimodal" and r.modalities == [m]), None)
        if uni is not None:
            rows.append((uni, {m: 1.0}))
    fusions = [r for r in same if r.config["strategy"] in FUSION_STRATEGIES and set(r.modalities) == set(mods)]
    best = max(fusions, key=lambda r: (float(r.metrics["top1"]), -_gflops(r) if math.isfinite(_gflops(r)) else
                                       -math.inf, r.name), default=None)
    if best is not None:
        rows.append((best, {m: 1.0 for m in mods}))
    curve = [r for r in adaptive_runs if set(r.modalities) == set(mods)
             and str(r.config.get("encoder_set", "")) == tag]
    for r in sorted(curve, key=lambda r: -_gflops(r) if math.isfinite(_gflops(r)) else 0.0):
        rates = {m: 1.0 for m in mods}
        rates.update({m: float(v) for m, v in r.metrics.get("gflops_selection_rates", {}).items()})
        rows.append((r, rates))
    ref_g = _gflops(best) if best is not None else float("nan")
    ref_top1 = float(best.metrics["top1"]) if best is not None else float("nan")
    out = []
    for run, rates in rows:
        g, top1 = _gflops(run), float(run.metrics["top1"])
        saving = 1.0 - g / ref_g if math.isfinite(ref_g) and ref_g > 0 and math.isfinite(g) else float("nan")
        drop = ref_top1 - top1 if math.isfinite(ref_top1) else float("nan")
        row: dict[str, Any] = {"method": _label(run), "run": run.name, "top1": top1}
        row.update({f"sel_{m}": rates.get(m, float("nan")) for m in mods})
        meets = None
        if is_adaptive(run) and math.isfinite(saving):
            meets = bool(saving >= TARGET_SAVING and drop <= TARGET_DROP + 1e-12)
        row.update(gflops=g, saving=saving, top1_drop=drop, meets_target=meets)
        out.append(row)
    return pd.DataFrame(out)


def format_efficiency_table(table: pd.DataFrame) -> str:
    """The table as the reference prints it: accuracy and selection rates in %, GFLOPs with the saving."""
    if table.empty:
        return "(no adaptive run)"
    shown = pd.DataFrame({"method": table["method"], "accuracy %": (100 * table["top1"]).map(lambda v: f"{v:.2f}")})
    for c in [c for c in table.columns if c.startswith("sel_")]:
        shown[f"{c[4:]} sel. %"] = table[c].map(lambda v: "-" if pd.isna(v) else f"{100 * v:.2f}")

    def gflops(row: pd.Series) -> str:
        if pd.isna(row["gflops"]):
            return "\u2014"
        text = f"{row['gflops']:.4g}"
        return text + (f" ({-100 * row['saving']:+.2f}%)" if row["run"] and not pd.isna(row["saving"])
                       and row["saving"] != 0 and row["meets_target"] is not None else "")

    shown["GFLOPs"] = table.apply(gflops, axis=1)
    shown["target"] = table["meets_target"].map(lambda v: "" if v is None or pd.isna(v) else "met" if v else "missed")
    return shown.to_string(index=False)


def reproduce_decisions(run: Run, items_of: Any, batch_size: int = 32) -> dict[str, Any]:
    """Rebuild an adaptive run's model, decide again from raw items (``items_of(modality, ids)``) and compare
    with its ``decisions.parquet``: ``same_decisions`` and ``decision_mismatches``."""
    import torch

    stored = load_decisions(run.path)
    model = run.model()
    ids = list(dict.fromkeys(stored["id"].astype(str)))
    found = []
    with torch.no_grad():
        for start in range(0, len(ids), batch_size):
            chunk = ids[start:start + batch_size]
            found.append(model.decisions(model.prepare({m: items_of(m, chunk) for m in model.modalities})))
    new = torch.cat(found).numpy() if found else np.zeros((0, model.segments, len(model.policy)), dtype=bool)
    pos = {i: k for k, i in enumerate(ids)}
    k_of = {m: k for k, m in enumerate(model.policy)}
    again = new[stored["id"].map(pos).to_numpy(), stored["segment"].to_numpy(),
                stored["modality"].map(k_of).to_numpy()]
    mismatches = int((again != stored["used"].to_numpy()).sum())
    return {"same_decisions": mismatches == 0, "decision_mismatches": mismatches}

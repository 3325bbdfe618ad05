"""Designed reliance vs measured shares: do the shares find the modality the data was built to need?

The ground truth is a per-sample ``reliance``: a modality name (that modality
alone separates the sample from its look-alikes), ``both`` or ``either``. It
comes from the manifest's ``reliance`` column (a user's own data; an optional
``variant`` column groups samples for the ranking), or, for the RGB-D
simulator, from ``clips_meta.parquet`` next to its ``manifest.csv``
(``docs/SIMULATOR.md``, "Cues").

For modality A and the other reliance modalities B, the check reports the mean
share of A on A-reliant samples minus that on B-reliant samples, with a seeded
bootstrap 95 % interval, and the Spearman correlation of the per-variant mean
share of A with the expected order (the simulator's documented
:data:`core.data.rgbd_sim.EXPECTED_DEPTH_ORDER`; otherwise A-reliant above
``both``/``either`` above B-reliant). Both for the MM-SHAP share
(``share_<m>``) and the exact modality share (|shapley_m| / sum |shapley|), on
correct predictions and on all.

Where the ground truth instead lists the modality sets that alone suffice (the
five-modality site simulator's ``reliance5``, a manifest's ``sufficient``
column), :func:`reliance_check` measures every modality of the run against it
(``core.trust._sufficient``); a run of exactly the two modalities the
``reliance`` column names keeps the rule above.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from core.data import load_experiment_dataset
from core.data.rgbd_sim import EXPECTED_DEPTH_ORDER
from core.trust._report import CheckResult
from core.trust._shares import SHARE_KINDS, SUBSETS, correct_mask, join_design, share_values
from core.trust._stats import bootstrap_difference, spearman
from core.trust._sufficient import SUFFICIENT_COLUMN, sufficient_check
from core.trust._thresholds import (
    RELIANCE_BOOTSTRAP,
    RELIANCE_MIN_PER_GROUP,
    RELIANCE_MIN_PER_VARIANT,
    RELIANCE_RANK_PASS,
)

#: Reliance values that name no single modality.
SHARED_RELIANCE = ("both", "either")
#: Data sources whose clips_meta.parquet holds the designed reliance (and the site's sufficient sets).
SIMULATOR_SOURCES = ("rgbd-sim", "site-sim")


def reliance_table(exp_dir: str | Path) -> tuple[pd.DataFrame | None, str, dict[str, Any]]:
    """``(table of id, reliance and/or sufficient[, variant], where it came from, dataset.json)`` of an
    experiment; the table is None (and the text says why) when the dataset carries no designed reliance."""
    ds, info = load_experiment_dataset(Path(exp_dir))
    frame = ds.frame
    design = [c for c in ("reliance", SUFFICIENT_COLUMN) if c in frame.columns]
    if design:
        cols = ["id", *design, *(["variant"] if "variant" in frame.columns else [])]
        table = frame[cols].copy()
        for c in ("id", "reliance", "variant"):
            if c in table.columns:
                table[c] = table[c].astype(str)
        return table, f"the manifest's {' and '.join(design)} column{'s' if len(design) > 1 else ''}", info
    if info.get("source") in SIMULATOR_SOURCES:
        manifest = Path(info.get("manifest") or Path(info["root"]) / "manifest.csv")
        path = manifest.parent / "clips_meta.parquet"
        site = info.get("source") == "site-sim"
        try:
            meta = pd.read_parquet(path, columns=["id", "reliance", "variant", *(["reliance5"] if site else [])])
        except Exception as exc:  # missing or unreadable: the check cannot run, the others can
            return None, f"the simulator's {path} cannot be read ({type(exc).__name__})", info
        meta = meta.astype(str).rename(columns={"reliance5": SUFFICIENT_COLUMN})
        return meta, str(path), info
    return None, ("the dataset carries no designed reliance (a 'reliance' or 'sufficient' manifest column, or the "
                  "simulators' clips_meta.parquet)"), info


def expected_orders(info: Mapping[str, Any]) -> dict[str, tuple[tuple[str, ...], ...]]:
    """Documented per-variant orders by modality: the simulators' depth order (RGB: reversed)."""
    if info.get("source") not in SIMULATOR_SOURCES:
        return {}
    return {"depth": EXPECTED_DEPTH_ORDER, "rgb": tuple(reversed(EXPECTED_DEPTH_ORDER))}


def uses_sufficient(design: pd.DataFrame, modalities: Sequence[str]) -> bool:
    """Whether :func:`reliance_check` measures the sufficient sets: the design has them, and either no
    ``reliance`` column or a run whose modalities are not exactly the ones that column names."""
    if SUFFICIENT_COLUMN not in design.columns:
        return False
    if "reliance" not in design.columns:
        return True
    named = {v for v in design["reliance"].dropna().astype(str)
             if v not in SHARED_RELIANCE and v.strip().lower() not in ("", "nan", "none")}
    return set(modalities) != named


def _expected_score(group: str, reliance: str, modality: str, tiers: tuple[tuple[str, ...], ...] | None) -> float:
    if tiers is not None:
        for i, tier in enumerate(tiers):
            if group in tier:
                return float(len(tiers) - 1 - i)
    if reliance == modality:
        return 2.0
    return 1.0 if reliance in SHARED_RELIANCE else 0.0


def _measure(frame: pd.DataFrame, values: np.ndarray, modality: str, others: Sequence[str], group_col: str,
             tiers: tuple[tuple[str, ...], ...] | None, seed: int, n_boot: int) -> dict[str, Any]:
    rel = frame["reliance"].to_numpy()
    a, b = values[rel == modality], values[np.isin(rel, list(others))]
    diff, low, high = bootstrap_difference(a, b, seed=seed, n_boot=n_boot)
    groups = []
    table = pd.DataFrame({"group": frame[group_col].to_numpy(), "reliance": rel, "v": values}).dropna(subset=["v"])
    for name, g in table.groupby("group", sort=True):
        reliance = str(g["reliance"].mode().iloc[0])
        groups.append({"group": str(name), "reliance": reliance, "n": int(len(g)), "mean": float(g["v"].mean()),
                       "expected": _expected_score(str(name), reliance, modality, tiers)})
    ranked = [g for g in groups if g["n"] >= RELIANCE_MIN_PER_VARIANT]
    rho = spearman([g["expected"] for g in ranked], [g["mean"] for g in ranked])
    return {"difference": diff, "low": low, "high": high, "n_a": int(np.isfinite(a).sum()),
            "n_b": int(np.isfinite(b).sum()), "rank": rho, "n_groups": len(ranked), "groups": groups}


def reliance_check(rows: pd.DataFrame, reliance: pd.DataFrame, modalities: Sequence[str], *,
                   orders: Mapping[str, tuple[tuple[str, ...], ...]] | None = None, seed: int = 0,
                   n_boot: int = RELIANCE_BOOTSTRAP, source: str = "") -> CheckResult:
    """Designed reliance against the shares of the explained samples ``rows`` (``sample_id``,
    ``share_<m>``, ``shapley_<m>``, ``correct``); ``reliance``: ``id``, ``reliance`` and optionally
    ``variant``; ``orders``: documented per-variant orders by modality (tiers, highest first).

    Status (from the MM-SHAP share on all explained predictions): pass when the difference's
    interval lies above 0 and the ranking reaches :data:`RELIANCE_RANK_PASS`; warn when only one
    holds, or either group has fewer than :data:`RELIANCE_MIN_PER_GROUP` samples; fail otherwise.

    A design with a ``sufficient`` column (lists of modality sets that alone suffice) is measured
    by the sufficient-sets rule instead (:func:`sufficient_check`; ``orders`` do not apply), unless
    it also has a ``reliance`` column naming exactly the run's modalities (:func:`uses_sufficient`).
    """
    modalities = list(modalities)
    if len(modalities) < 2:
        return CheckResult("reliance", "skip", "A single-modality run: its share is always 1.")
    if uses_sufficient(reliance, modalities):
        return sufficient_check(rows, reliance, modalities, seed=seed, n_boot=n_boot, source=source)
    reliance = reliance.drop(columns=[SUFFICIENT_COLUMN], errors="ignore")
    frame = join_design(rows, reliance.assign(reliance=reliance["reliance"].astype(str)))
    frame = frame[frame["reliance"].isin([*modalities, *SHARED_RELIANCE])].reset_index(drop=True)
    rel_mods = [m for m in modalities if (frame["reliance"] == m).any()]
    if len(rel_mods) < 2:
        named = ", ".join(sorted(set(reliance["reliance"].astype(str)))) or "nothing"
        return CheckResult("reliance", "warn" if len(rows) else "skip",
                           f"The {len(frame)} explained samples with a designed reliance name fewer than two of the "
                           f"run's modalities (the ground truth names {named}).", n=int(len(frame)))
    # with two modalities one share is 1 minus the other: the second one's numbers say it all
    reported = [rel_mods[-1]] if len(modalities) == 2 else rel_mods
    group_col = "variant" if "variant" in frame.columns else "reliance"
    correct = correct_mask(frame)
    results: dict[str, Any] = {}
    for m in reported:
        others = [o for o in rel_mods if o != m]
        tiers = (orders or {}).get(m)
        results[m] = {"versus": others, "order": "documented" if tiers else "reliance tiers"}
        for subset in SUBSETS:
            keep = np.ones(len(frame), dtype=bool) if subset == "all" else correct
            part = frame[keep].reset_index(drop=True)
            for kind in SHARE_KINDS:
                values = share_values(part, modalities, m, kind)
                results[m][f"{subset}/{kind}"] = _measure(part, values, m, others, group_col, tiers, seed, n_boot)
    statuses, reasons = [], []
    for m in reported:
        main = results[m]["all/mmshap"]
        status, reason = _judge(m, results[m]["versus"], main, group_col)
        statuses.append(status)
        reasons.append(reason)
    status = "fail" if "fail" in statuses else "warn" if "warn" in statuses else "pass"
    numbers = {"modalities": results, "rule": "reliance", "grouped_by": group_col, "source": source, "seed": int(seed),
               "bootstrap": int(n_boot), "share_kinds": SHARE_KINDS}
    return CheckResult("reliance", status, " ".join(reasons), n=int(len(frame)), numbers=numbers)


def _judge(m: str, others: Sequence[str], main: Mapping[str, Any], group_col: str) -> tuple[str, str]:
    other = "/".join(others)
    diff, low, high, rho = main["difference"], main["low"], main["high"], main["rank"]
    what = (f"The {m} share is {diff:+.2f} on {m}-reliant vs {other}-reliant samples (95 % CI {low:+.2f} to "
            f"{high:+.2f}, n = {main['n_a']} / {main['n_b']})")
    ranking = (f"the per-{group_col} ranking has Spearman {rho:.2f} over {main['n_groups']} groups"
               if not math.isnan(rho) else f"too few {group_col} groups to rank")
    if min(main["n_a"], main["n_b"]) < RELIANCE_MIN_PER_GROUP:
        return "warn", (f"Too few explained samples to tell (fewer than {RELIANCE_MIN_PER_GROUP} in a group): "
                        f"{what[0].lower() + what[1:]}; {ranking}.")
    separated = low > 0
    ranked = not math.isnan(rho) and rho >= RELIANCE_RANK_PASS
    if separated and ranked:
        return "pass", f"{what} and {ranking}: the shares recover the designed reliance."
    if high < 0 or not (separated or ranked):
        return "fail", f"{what} and {ranking}: the shares do not recover the designed reliance."
    return "warn", f"{what} and {ranking}: the shares only partly recover the designed reliance."

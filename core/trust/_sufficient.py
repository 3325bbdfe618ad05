"""Designed reliance over many modalities: the sets of modalities that alone suffice.

The ground truth of a sample is a list of modality sets, each of which alone
separates it from its look-alikes: ``["rgb", "audio"]`` (RGB alone suffices,
so does audio) or ``["rgb+depth", "depth+location"]`` (only pairs do). The
five-modality site simulator writes it as ``reliance5`` in
``clips_meta.parquet`` (:data:`core.data.rgbd_sim.RELIANCE5`); a user's
manifest as a ``sufficient`` column.

For each modality m of the run that alone suffices for some sample, the check
reports the mean share of m on the samples m alone suffices for minus that on
the samples where m is in no set (neither alone nor with others), with a seeded
bootstrap 95 % interval, and the Spearman correlation of the per-variant mean
share of m with its expected score (2: m alone suffices, 1: m only in a set
with others, 0: m in no set). A set counts for each of its modalities, also
when the run lacks a partner: such samples are neither m's sufficient nor its
cue-free ones. The numbers have the structure of the two-modality reliance rule
(``core.trust._reliance``), so the Trust panel shows either.
"""
from __future__ import annotations

import json
import math
from typing import Any, Sequence

import numpy as np
import pandas as pd

from core.errors import DataError
from core.trust._report import CheckResult
from core.trust._shares import SHARE_KINDS, SUBSETS, correct_mask, join_design, share_values
from core.trust._stats import bootstrap_difference, spearman
from core.trust._thresholds import RELIANCE_BOOTSTRAP, RELIANCE_MIN_PER_GROUP, RELIANCE_MIN_PER_VARIANT

#: The ground-truth column of sufficient modality sets (the simulator's ``reliance5`` is read under this name).
SUFFICIENT_COLUMN = "sufficient"
#: Expected score of a modality on a sample, by how its design names it.
SUFFICIENCY_SCORES = {2: "alone suffices", 1: "only in a set with others", 0: "in no set"}

Entries = tuple[frozenset[str], ...]


def parse_sufficient(value: Any) -> Entries | None:
    """The modality sets of one ``sufficient`` value: a JSON list of sets written ``"a"`` or ``"a+b"``
    (or such a list); None when the value is missing (empty, NaN, null). Anything else is a DataError."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, str):
        text = value.strip()
        if text.lower() in ("", "nan", "none", "null"):
            return None
        try:
            value = json.loads(text)
        except ValueError:
            value = text
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise DataError(f"the sufficient value {value!r} is not a list of modality sets",
                        fix='write a JSON list such as ["rgb", "audio+depth"] (an empty list [] when no set suffices)')
    entries = (frozenset(p.strip() for p in v.split("+") if p.strip()) for v in value)
    return tuple(dict.fromkeys(e for e in entries if e))


def sufficiency_score(entries: Entries, modality: str) -> int:
    """2 when ``modality`` alone suffices, 1 when it is only in a set with others, 0 when in no set."""
    if frozenset([modality]) in entries:
        return 2
    return 1 if any(modality in e for e in entries) else 0


def _label(entries: Entries) -> str:
    return ", ".join(sorted("+".join(sorted(e)) for e in entries)) or "none"


def _parsed(design: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """The design rows with a readable list (its sets in ``entries``, as text in ``sets``), and how many
    rows had an unreadable one."""
    entries, unreadable = [], 0
    for value in design[SUFFICIENT_COLUMN]:
        try:
            entries.append(parse_sufficient(value))
        except DataError:
            entries.append(None)
            unreadable += 1
    keep = np.array([e is not None for e in entries], dtype=bool)
    kept = [e for e in entries if e is not None]
    table = design.loc[keep, [c for c in design.columns if c != SUFFICIENT_COLUMN]].reset_index(drop=True)
    return table.assign(entries=kept, sets=[_label(e) for e in kept]), unreadable


def _measure(part: pd.DataFrame, values: np.ndarray, modality: str, group_col: str, seed: int,
             n_boot: int) -> dict[str, Any]:
    score = np.array([sufficiency_score(e, modality) for e in part["entries"]], dtype=np.int64)
    a, b = values[score == 2], values[score == 0]
    diff, low, high = bootstrap_difference(a, b, seed=seed, n_boot=n_boot)
    table = pd.DataFrame({"group": part[group_col].astype(str).to_numpy(), "sets": part["sets"].to_numpy(),
                          "score": score, "v": values}).dropna(subset=["v"])
    groups = []
    for name, g in table.groupby("group", sort=True):
        groups.append({"group": str(name), "reliance": str(g["sets"].mode().iloc[0]), "n": int(len(g)),
                       "mean": float(g["v"].mean()), "expected": float(g["score"].mode().iloc[0])})
    ranked = [g for g in groups if g["n"] >= RELIANCE_MIN_PER_VARIANT]
    rho = spearman([g["expected"] for g in ranked], [g["mean"] for g in ranked])
    return {"difference": diff, "low": low, "high": high, "n_a": int(np.isfinite(a).sum()),
            "n_b": int(np.isfinite(b).sum()), "rank": rho, "n_groups": len(ranked), "groups": groups}


def sufficient_check(rows: pd.DataFrame, design: pd.DataFrame, modalities: Sequence[str], *, seed: int = 0,
                     n_boot: int = RELIANCE_BOOTSTRAP, source: str = "") -> CheckResult:
    """The designed sufficient sets against the shares of the explained samples ``rows`` (``sample_id``,
    ``share_<m>``, ``shapley_<m>``, ``correct``); ``design``: ``id``, ``sufficient`` and optionally ``variant``.

    Status (from the MM-SHAP share on all explained predictions): pass when every reported modality's
    interval lies above 0; warn when only some do, or a group has fewer than
    :data:`RELIANCE_MIN_PER_GROUP` samples; fail when none do.
    """
    modalities = list(modalities)
    table, unreadable = _parsed(design)
    reported = [m for m in modalities if any(frozenset([m]) in e for e in table["entries"])]
    frame = join_design(rows, table)
    if not reported or frame.empty:
        named = sorted({m for e in table["entries"] for s in e for m in s})
        why = (f"no modality of the run alone suffices for any sample (the design names {', '.join(named) or 'none'})"
               if not reported else "none of them has designed sufficient sets")
        return CheckResult("reliance", "warn" if len(rows) else "skip",
                           f"Of the {len(rows)} explained samples, {why}.", n=int(len(frame)),
                           numbers={"rule": "sufficient", "n_unreadable": unreadable})
    group_col = "variant" if "variant" in frame.columns else "sets"
    correct = correct_mask(frame)
    results: dict[str, Any] = {}
    for m in reported:
        results[m] = {"order": "sufficient sets", "compared": f"{m} alone suffices vs {m} in no set"}
        for subset in SUBSETS:
            part = frame[np.ones(len(frame), dtype=bool) if subset == "all" else correct].reset_index(drop=True)
            for kind in SHARE_KINDS:
                values = share_values(part, modalities, m, kind)
                results[m][f"{subset}/{kind}"] = _measure(part, values, m, group_col, seed, n_boot)
    status, reason = _judge({m: r["all/mmshap"] for m, r in results.items()})
    if unreadable:
        reason += f" {unreadable} design rows without a readable list of sets were left out."
    numbers = {"modalities": results, "rule": "sufficient", "grouped_by": "variant" if group_col == "variant"
               else "sufficient sets", "scores": SUFFICIENCY_SCORES, "source": source, "seed": int(seed),
               "bootstrap": int(n_boot), "share_kinds": SHARE_KINDS, "n_unreadable": unreadable,
               "not_reported": [m for m in modalities if m not in reported]}
    return CheckResult("reliance", status, reason, n=int(len(frame)), numbers=numbers)


def _judge(main: dict[str, dict[str, Any]]) -> tuple[str, str]:
    parts = [f"{m} {r['difference']:+.2f} (95 % CI {r['low']:+.2f} to {r['high']:+.2f}, n = {r['n_a']} / {r['n_b']})"
             for m, r in main.items()]
    what = "; ".join(parts)
    above = [m for m, r in main.items() if r["low"] > 0]
    few = [m for m, r in main.items() if min(r["n_a"], r["n_b"]) < RELIANCE_MIN_PER_GROUP]
    rule = "each modality's share where it alone suffices minus where it is in no sufficient set"
    if few:
        return "warn", (f"Too few explained samples to tell (fewer than {RELIANCE_MIN_PER_GROUP} in a group for "
                        f"{', '.join(few)}): {rule}: {what}.")
    if len(above) == len(main):
        return "pass", f"The shares recover the designed sufficient sets: {rule}: {what}; every interval lies above 0."
    if above:
        return "warn", (f"The shares only partly recover the designed sufficient sets: {rule}: {what}; the interval "
                        f"lies above 0 for {len(above)} of {len(main)} ({', '.join(above)}).")
    return "fail", (f"The shares do not recover the designed sufficient sets: {rule}: {what}; no interval lies "
                    "above 0.")

"""``fusionlens check <run>``: every trust check of one run, stored as ``<run>/trust.json``.

:func:`check_run` picks a seeded sample of the run's explained test samples
(of its test predictions when nothing is explained yet), explains them with
the run's stored settings (or reads the stored values), and runs the checks:
model randomisation and estimator error on those samples (within
``TrustSettings.seconds``: on slow games they stop early, and ``n`` says so); designed reliance
and the shares summary on every stored explanation; the controlled-variant
test only with ``controlled=True`` (it trains; a result stored earlier for the
same trained run is kept otherwise). Each check's seconds are recorded.
"""
from __future__ import annotations

import shlex
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from core.errors import BundleError, ConfigError, cli_command
from core.explain import ExplainSettings, current_modality_game, game_share_rows, resolve_run, run_inputs
from core.threads import torch_threads
from core.trust._controlled import controlled_check, is_controlled
from core.trust._estimator import estimator_check
from core.trust._randomisation import randomisation_check
from core.trust._reliance import expected_orders, reliance_check, reliance_table
from core.trust._report import (
    CHECKS,
    SCHEMA_VERSION,
    CheckResult,
    check_command,
    load_trust,
    skipped,
    write_trust,
)
from core.trust._shares import SHARE_KINDS
from core.trust._stored import pick, stored_explanations
from core.trust._summary import shares_summary
from core.trust._thresholds import DEFAULT_ESTIMATOR_SAMPLES, DEFAULT_SAMPLES, DEFAULT_SECONDS, thresholds


@dataclass(frozen=True)
class TrustSettings:
    """What ``fusionlens check`` does: how many samples, which seed, whether the controlled test runs."""

    samples: int = DEFAULT_SAMPLES
    seed: int = 0
    estimator_samples: int = DEFAULT_ESTIMATOR_SAMPLES
    seconds: float = DEFAULT_SECONDS
    controlled: bool = False
    controlled_modalities: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if isinstance(self.seconds, bool) or not isinstance(self.seconds, (int, float)) or not self.seconds > 0:
            raise ConfigError(f"seconds={self.seconds!r} is not valid", fix="pass a positive number of seconds")
        object.__setattr__(self, "seconds", float(self.seconds))
        for name, low in (("samples", 1), ("seed", 0), ("estimator_samples", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
                raise ConfigError(f"{name}={value!r} is not valid", fix=f"pass an integer {name} >= {low}")
            object.__setattr__(self, name, int(value))
        if self.controlled_modalities is not None:
            object.__setattr__(self, "controlled_modalities", tuple(str(m) for m in self.controlled_modalities))

    def as_dict(self) -> dict[str, Any]:
        return {"samples": self.samples, "seed": self.seed, "estimator_samples": self.estimator_samples,
                "seconds": self.seconds, "controlled": self.controlled,
                "controlled_modalities": None if self.controlled_modalities is None
                else list(self.controlled_modalities)}


def _timed(fn: Any, *args: Any, **kwargs: Any) -> CheckResult:
    t0 = time.perf_counter()
    result = fn(*args, **kwargs)
    result.seconds = time.perf_counter() - t0
    return result


def _previous_controlled(run_dir: Path, fingerprint: Any) -> CheckResult | None:
    """The controlled result of an earlier check of the same trained run, if one is stored."""
    try:
        old = load_trust(run_dir)
    except BundleError:
        return None
    if not old or old.get("run_fingerprint") != fingerprint:
        return None
    entry = old.get("checks", {}).get("controlled")
    if not isinstance(entry, dict) or entry.get("status") == "skip":
        return None
    return CheckResult("controlled", entry["status"], entry["reason"], n=entry.get("n"),
                       numbers=entry.get("numbers") or {}, seconds=entry.get("seconds"))


def every_prediction_rows(run_dir: Path) -> Any:
    """The stored modality game of every test prediction (``core.explain.current_modality_game``) as reliance rows
    (``sample_id``, ``shapley_<m>``, ``correct``, ``flat``, and its exact shares as ``share_<m>``), or None
    when it is absent, damaged or of an earlier training of the run."""
    try:
        game, _ = current_modality_game(run_dir)
    except BundleError:
        return None
    return None if game is None else game_share_rows(game).rename(columns={"id": "sample_id"})


def _exact_only(numbers: Any) -> Any:
    """``numbers`` without the entries of the MM-SHAP share (every prediction has only the exact one)."""
    if isinstance(numbers, dict):
        return {k: _exact_only(v) for k, v in numbers.items() if not str(k).endswith("/mmshap")}
    return numbers


def _reliance(stored: Any, game: Any, table: Any, modalities: Sequence[str], orders: Any, seed: int,
              source: str) -> CheckResult:
    """The designed-reliance check on the explained samples (both meanings of share) and, where the modality
    game of every test prediction is stored, on every prediction with the exact share; without explanations the
    latter is the check."""
    every = None
    if game is not None:
        flat = game["flat"].to_numpy(dtype=bool)
        every = reliance_check(game[~flat], table, modalities, orders=orders, seed=seed, source=source)
        every.numbers = {**_exact_only(every.numbers), "share_kinds": {"exact": SHARE_KINDS["exact"]},
                         "n_flat_left_out": int(flat.sum()),
                         "shares": "exact modality share of every test prediction (modality_game.parquet)"}
        every.reason = (f"Exact modality shares of every test prediction (n = {every.n}; no MM-SHAP explanation "
                        f"was used): {every.reason}")
    if stored.empty:
        return every
    flat = stored.flat()  # a prediction that barely depends on its inputs has no share to compare
    if flat.all():
        result = CheckResult("reliance", "warn", f"All {len(flat)} explained predictions barely depend on their "
                             "inputs: there is no share to compare with the design.", n=0,
                             numbers={"n_flat_left_out": int(flat.sum())})
    else:
        result = reliance_check(stored.rows[~flat], table, modalities, orders=orders, seed=seed, source=source)
        result.numbers["n_flat_left_out"] = int(flat.sum())
    if every is not None:
        result.numbers["every_prediction"] = {"status": every.status, "reason": every.reason, "n": every.n,
                                              "numbers": every.numbers}
        result.reason = f"{result.reason} On every test prediction: {every.status}. {every.reason}"
    return result


def check_run(run_dir: str | Path, settings: TrustSettings | None = None, *, progress: bool = False) -> dict[str, Any]:
    """Run the trust checks of one run and store them as ``<run>/trust.json``; returns the report."""
    t_start = time.perf_counter()
    settings = settings or TrustSettings()
    run_dir = Path(run_dir).resolve()
    run = resolve_run(run_dir)
    stored = stored_explanations(run_dir)
    explain_settings = stored.settings() or ExplainSettings()
    test_ids = run.predictions["id"].astype(str).tolist()
    explained = [i for i in stored.ids() if i in set(test_ids)]
    ids = pick(explained or test_ids, settings.samples, settings.seed)
    labels = dict(zip(test_ids, run.predictions["label"].astype(str)))
    model = run.model()
    factorise = False if run.config.get("strategy") == "early" else None
    timings: dict[str, float] = {}
    results: dict[str, CheckResult] = {}
    inputs = {sid: run_inputs(run, sid) for sid in ids}
    # the trained model's explanations: stored ones as read; the others are computed (once, for both
    # checks) by the randomisation check
    reference = {sid: stored.explanation(sid) for sid in ids if sid in set(explained)}
    timings["load"] = time.perf_counter() - t_start  # the run, its model, its explanations, the samples' inputs
    t0 = time.perf_counter()
    with torch_threads("explain"):
        results["randomisation"] = _timed(randomisation_check, model, inputs, explain_settings, reference=reference,
                                          labels=labels, seed=settings.seed, factorise=factorise,
                                          deadline=t0 + settings.seconds * 2 / 3, progress=progress)
        est_ids = [sid for sid in ids if sid in reference][:settings.estimator_samples]
        results["estimator"] = _timed(estimator_check, model, {sid: inputs[sid] for sid in est_ids}, reference,
                                      explain_settings, labels=labels, factorise=factorise,
                                      deadline=t0 + settings.seconds, progress=progress) \
            if est_ids else skipped("estimator", "Not run (--estimator-samples 0).")
    explain_cmd = f"`{cli_command()} explain {shlex.quote(str(run_dir))}`"
    game = every_prediction_rows(run_dir)
    if is_controlled(run_dir.parent.name):
        results["reliance"] = skipped("reliance", "A controlled copy: one modality's content is shuffled on purpose.")
    elif stored.empty and game is None:
        results["reliance"] = skipped("reliance", f"No stored explanations yet: run {explain_cmd} first.")
    else:
        t0 = time.perf_counter()
        table, source, info = reliance_table(run_dir.parent)
        if table is None:
            results["reliance"] = skipped("reliance", f"Not applicable: {source}.")
        else:
            results["reliance"] = _reliance(stored, game, table, run.modalities, expected_orders(info),
                                            settings.seed, source)
        results["reliance"].seconds = time.perf_counter() - t0
    results["summary"] = _timed(shares_summary, stored, run.modalities) if not stored.empty else \
        skipped("summary", f"No stored explanations yet: run {explain_cmd} first.")
    if settings.controlled:
        results["controlled"] = _timed(controlled_check, run_dir, modalities=settings.controlled_modalities,
                                       samples=settings.samples, seed=settings.seed, settings=explain_settings,
                                       progress=progress)
    else:
        results["controlled"] = _previous_controlled(run_dir, run.config.get("fingerprint")) or skipped(
            "controlled", f"Not run: a slower, separate step (`{check_command(run_dir, controlled=True)}`).")
    for name, result in results.items():
        if result.seconds is not None and name not in timings:
            timings[name] = result.seconds
    timings["total"] = time.perf_counter() - t_start
    report = {
        "schema_version": SCHEMA_VERSION,
        "run": run.name,
        "experiment": run.experiment,
        "run_dir": str(run_dir),
        "run_fingerprint": run.config.get("fingerprint"),
        "computed_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": check_command(run_dir, controlled=settings.controlled),
        "settings": {**settings.as_dict(), "explain_settings": explain_settings.as_dict(),
                     "explain_settings_hash": explain_settings.hash(),
                     "explanations": "stored" if explained else "computed by the check", "sample_ids": ids},
        "thresholds": thresholds(),
        "timings": {k: round(v, 3) for k, v in timings.items()},
        "checks": {name: results[name].as_dict() for name in CHECKS},
    }
    write_trust(run_dir, report)
    return report


def check_runs(run_dirs: Sequence[str | Path], settings: TrustSettings | None = None, *,
               progress: bool = False) -> list[dict[str, Any]]:
    """:func:`check_run` of each run, in order."""
    return [check_run(r, settings, progress=progress) for r in run_dirs]


def format_trust(report: dict[str, Any]) -> str:
    """The report as lines for a terminal: one per check, status first."""
    lines = [f"{report['run']}: trust checks ({report['timings'].get('total', 0):.1f} s)"]
    for name, title in CHECKS.items():
        check = report["checks"].get(name)
        if check is None:
            continue
        n = f", n = {check['n']}" if check.get("n") is not None else ""
        lines.append(f"  [{check['status'].upper():4s}] {title}{n}: {check['reason']}")
    return "\n".join(lines)

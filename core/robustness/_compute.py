"""``fusionlens robustness``: each run's accuracy with a modality missing, under noise, and missing at random.

:func:`robustness_runs` computes the table of each run (:func:`compute_table`) and stores it as
``<run>/robustness.json``. The runs of one experiment share one
:class:`~core.robustness.EmbeddingBank`, so only the heads run per run; late-fusion runs come first,
as the baselines of the others' effective robustness. Past a time limit no new run is started.
"""
from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from tqdm.auto import tqdm

from core.bundle import Run, load_run
from core.catalog import scan_runs
from core.errors import BundleError, ConfigError, DataError, choices
from core.robustness._bank import EmbeddingBank, encoder_source
from core.robustness._report import SCHEMA_VERSION, load_robustness, robustness_command, write_robustness
from core.robustness._scorer import FACTORISED, RULES, Scorer
from core.robustness._settings import RobustnessSettings
from core.robustness._summary import effective_robustness, relative_robustness


def _baseline_for(config: dict[str, Any], modality: str, late: Sequence[Run]) -> Run | None:
    """The late-fusion run a run's curve on ``modality`` is compared with: late-average (else late-weighted)
    of the same encoder set, over the run's modalities if one exists, else over the most modalities
    that include ``modality``."""
    for fusion in ("late-average", "late-weighted"):
        pool = [r for r in late if r.config.get("fusion") == fusion and modality in r.modalities
                and str(r.config.get("encoder_set", "")) == str(config.get("encoder_set", ""))]
        if not pool:
            continue
        same = [r for r in pool if r.modalities == list(config["modalities"])]
        return same[0] if same else sorted(pool, key=lambda r: (-len(r.modalities), r.name))[0]
    return None


# --------------------------------------------------------------------------- runs


def _requested(settings: RobustnessSettings, runs: Sequence[Run]) -> None:
    if settings.modalities is None:
        return
    have = sorted({m for r in runs for m in r.modalities})
    unknown = [m for m in settings.modalities if m not in have]
    if unknown:
        named = ", ".join(r.name for r in runs[:3]) + (" ..." if len(runs) > 3 else "")
        raise ConfigError(f"run(s) {named} have no modality {', '.join(map(repr, unknown))}",
                          fix=f"use some of their modalities: {choices(have)}")


def is_current(run: Run, settings: RobustnessSettings) -> bool:
    """A readable robustness table of this training of the run, computed with these settings."""
    try:
        old = load_robustness(run.path)
    except BundleError:
        return False
    return bool(old) and old.get("run_fingerprint") == run.config.get("fingerprint") \
        and old.get("settings_hash") == settings.hash()


def compute_table(run: Run, bank: EmbeddingBank, settings: RobustnessSettings,
                  baselines: dict[str, dict[str, dict[str, list[float]]]], late: Sequence[Run],
                  shares: bool = False, progress: bool = False, deadline: float | None = None) -> dict[str, Any]:
    """One run's robustness table (the ``robustness.json`` object); ``baselines`` caches late-fusion
    curves by run name (filled as needed). ``deadline`` (``time.perf_counter()``): no explanation of a
    perturbed sample is started after it (``shares_status`` records how many samples the shares rest on)."""
    t0 = time.perf_counter()
    if not bank.ids:
        raise DataError(f"experiment {bank.exp_dir.name} has no test samples to score run {run.name} on",
                        fix="prepare it with a test split (a [dataset] split with test > 0)")
    scorer = Scorer(run, bank)
    levels = settings.level_values
    n, mods = len(bank.ids), scorer.modalities
    clean = scorer.clean()
    missing = {}
    for i, m in enumerate(mods):
        present = np.ones((n, len(mods)), dtype=bool)
        present[:, i] = False
        missing[m] = scorer.absent(present)
    random_missing = []
    for rate in settings.missing_rates:
        table = bank.missing_table(mods, rate)
        random_missing.append({"rate": rate, "accuracy": scorer.absent(table),
                               "n_missing": int((~table).any(1).sum())})
    swept = [m for m in mods if settings.modalities is None or m in settings.modalities]
    curves = scorer.curves(swept, levels, clean)
    if run.config.get("strategy") == "late":
        baselines.setdefault(run.name, {}).update(curves)
    noise: dict[str, dict[str, Any]] = {}
    for m, per in curves.items():
        base_run = _baseline_for(run.config, m, late)
        base_curves = None
        if base_run is not None:
            if m not in baselines.get(base_run.name, {}):
                baselines.setdefault(base_run.name, {}).update(Scorer(base_run, bank).curves([m], levels))
            base_curves = baselines[base_run.name][m]
        noise[m] = {}
        for name, acc in per.items():
            eff = effective_robustness(acc, base_curves[name]) if base_curves and name in base_curves else None
            noise[m][name] = {"levels": levels, "accuracy": acc, "relative": relative_robustness(acc, levels),
                              "effective": eff, "baseline": base_run.name if base_run is not None else None}
    report: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION, "run": run.name, "experiment": run.experiment,
        "run_fingerprint": run.config.get("fingerprint"),
        "computed_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": robustness_command(run.path, settings), "settings": settings.as_dict(),
        "settings_hash": settings.hash(),
        "n": n, "n_test": len(bank.ds.ids("test")), "rule": scorer.rule,
        "rule_text": RULES.get(scorer.rule or "", "no rule: this model is scored under noise only"),
        "clean": clean, "missing": missing, "random_missing": random_missing, "noise": noise,
    }
    if shares:
        from core.robustness._shares import share_curves  # the explain engine: only for the one run

        report["shares"], report["shares_status"] = share_curves(run, scorer.model, bank, settings, swept,
                                                                 deadline=deadline, progress=progress)
    report["seconds"] = round(time.perf_counter() - t0, 3)
    return report


def _share_run(exp_dir: Path, share_run: str | None) -> str | None:
    if share_run != "auto":
        return share_run
    from core.explain import select_build_runs

    picked = select_build_runs(exp_dir, max_runs=1)
    return Path(picked[0]).name if picked else None


def _on_embeddings(run: Run) -> bool:
    """Whether ``run`` is scored on the bank's shared embeddings (else end to end on its inputs)."""
    return run.config.get("strategy") in FACTORISED


def _new_sources(run: Run, bank: EmbeddingBank) -> int:
    """How many of ``run``'s encoders the bank has not encoded yet (0 for a run scored end to end)."""
    if not _on_embeddings(run):
        return 0
    return sum(not bank.encoded(encoder_source(run.config, m), m) for m in run.modalities)


class RunTimes:
    """How long the next run's table will take, from the runs before it.

    A run's time has two parts: the work only it does (its head under every condition, or an end-to-end model's
    encoders), and the shared set-up it caused in the :class:`EmbeddingBank` (reading the test items, fitting the
    noises, encoding each unimodal encoder's inputs once), which every later run of the same encoders reuses.
    The prediction is the last own time of a run scored the same way (every run on embeddings alike; an end-to-end
    model per strategy, early fusion or adaptive) plus the set-up of the encoders the run would encode first; a way
    not seen yet is predicted as the longest run so far. Taking the previous run's whole time instead counted the
    first run's set-up as the cost of every run: on a slow day the emoji build's robustness stopped after 2 of 56
    runs (about 20 s of set-up, 27 s of budget), where each further run took about 0.1 s. The run whose shares of
    perturbed inputs are explained runs up to the deadline and says nothing of the others.
    """

    def __init__(self) -> None:
        self.own: dict[str, float] = {}
        self.per_source: float | None = None  # the most set-up one new encoder has cost
        self.longest = 0.0

    @staticmethod
    def _kind(run: Run) -> str:
        return "embeddings" if _on_embeddings(run) else str(run.config.get("strategy"))

    def predict(self, run: Run, new_sources: int) -> float:
        own = self.own.get(self._kind(run), self.longest)
        if not new_sources:
            return own
        return own + new_sources * (self.per_source if self.per_source is not None else self.longest)

    def observe(self, run: Run, seconds: float, setup: float, new_sources: int, shares: bool = False) -> None:
        self.longest = max(self.longest, float(seconds))
        if new_sources:
            per = float(setup) / new_sources
            self.per_source = per if self.per_source is None else max(self.per_source, per)
        if not shares:
            self.own[self._kind(run)] = max(0.0, float(seconds) - float(setup))


def robustness_runs(run_dirs: Sequence[str | Path], settings: RobustnessSettings | None = None, *,
                    force: bool = False, time_limit: float | None = None, share_run: str | None = "auto",
                    progress: bool = False) -> dict[str, Any]:
    """The robustness table of each run (``<run>/robustness.json``); runs whose table is current are
    kept unless ``force``. Runs of one experiment share one :class:`EmbeddingBank`. Past
    ``time_limit`` seconds no new run is started, nor one that :class:`RunTimes` predicts would end past it (a
    video run takes tens of seconds: starting it with seconds left overran the rgbd build's budget by 21 s):
    those are returned in ``left``. ``share_run``: the
    run (name) whose explanations are recomputed on perturbed inputs; ``"auto"`` the build's first
    explained run; None none.

    Returns ``{"computed": [...], "kept": [...], "left": [paths], "seconds": s, "per_run": {name: s},
    "shares_status": {name: {"samples", "planned"}} (the run whose shares of perturbed inputs were computed),
    "encode_seconds": s, "encodings": count}``.
    """
    settings = settings or RobustnessSettings()
    start = time.perf_counter()
    by_exp: dict[Path, list[Path]] = {}
    for r in run_dirs:
        path = Path(r).resolve()
        by_exp.setdefault(path.parent, []).append(path)
    out: dict[str, Any] = {"computed": [], "kept": [], "left": [], "per_run": {}, "shares_status": {},
                           "encode_seconds": 0.0, "encodings": 0}
    for exp_dir, paths in by_exp.items():
        runs = [load_run(p) for p in paths]
        _requested(settings, runs)
        todo = [r for r in runs if force or not is_current(r, settings)]
        out["kept"] += [r.name for r in runs if r not in todo]
        if not todo:
            continue
        late = [e.run for e in scan_runs(exp_dir) if e.usable and e.run is not None
                and e.run.config.get("strategy") == "late"]
        todo.sort(key=lambda r: r.config.get("strategy") != "late")  # the baselines first (a stable sort)
        bank = EmbeddingBank(exp_dir, settings)
        sharer = _share_run(exp_dir, share_run) if settings.share_samples else None
        baselines: dict[str, dict[str, dict[str, list[float]]]] = {}
        bar = tqdm(todo, desc=f"robustness {exp_dir.name}", disable=not progress)
        times = RunTimes()  # a run that would end past the budget is not started
        for run in bar:
            new = _new_sources(run, bank)
            if time_limit is not None and time.perf_counter() - start + times.predict(run, new) > time_limit:
                out["left"].append(run.path)
                continue
            bar.set_postfix(run=run.name)
            setup = bank.setup_seconds
            report = compute_table(run, bank, settings, baselines, late, shares=run.name == sharer,
                                   progress=progress, deadline=None if time_limit is None else start + time_limit)
            write_robustness(run.path, report)
            out["computed"].append(run.name)
            if "shares_status" in report:
                out["shares_status"][run.name] = report["shares_status"]
            out["per_run"][run.name] = report["seconds"]
            times.observe(run, report["seconds"], bank.setup_seconds - setup, new, shares=run.name == sharer)
        out["encode_seconds"] += bank.encode_seconds
        out["encodings"] += bank.encodings
    out["seconds"] = round(time.perf_counter() - start, 3)
    return out


def robustness_run(run_dir: str | Path, settings: RobustnessSettings | None = None, **kwargs: Any) -> dict[str, Any]:
    """One run's robustness table, computed (or kept when current) and returned."""
    robustness_runs([run_dir], settings, **kwargs)
    report = load_robustness(run_dir)
    assert report is not None
    return report


def format_robustness(report: dict[str, Any]) -> str:
    """A run's table as lines for a terminal."""

    def acc(v: Any) -> str:
        return "n/a" if v is None else f"{v:.3f}"

    lines = [f"{report['run']}: clean top-1 {acc(report['clean'])} on n = {report['n']} "
             f"(missing modality: {report.get('rule_text') or report.get('rule')})"]
    for m, v in report["missing"].items():
        lines.append(f"  without {m}: {acc(v)}")
    for r in report.get("random_missing", []):
        lines.append(f"  missing at random {r['rate']:.0%}: {acc(r['accuracy'])} ({r['n_missing']} samples hit)")
    for m, per in report["noise"].items():
        for name, curve in per.items():
            eff = curve.get("effective")
            lines.append(f"  {m} {name}: relative {acc(curve['relative'])}"
                         + (f", effective {eff:+.3f} vs {curve['baseline']}" if eff is not None else "")
                         + f" (top-1 at level 1: {acc(curve['accuracy'][-1])})")
    return "\n".join(lines)

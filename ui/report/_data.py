"""What a report shows, read once from the runs root: :class:`ReportData` and :func:`collect`.

Every read goes through ``core``'s public API and the dashboard's plain queries, so the
report shows what the pages show: the results table (:func:`core.results.results_table`),
the story (:func:`ui.story.load_story`), the run's predictions view with its stored shares
(:func:`ui.queries.predictions_view`), and, for the sample cards, each sample's stored
explanation and raw items (read only inside the data folder, :func:`ui.queries.safe_items`).
A part that cannot be read becomes a note in the report, never a failed report; a missing
experiment or run is an error naming the fix.
"""
from __future__ import annotations

import importlib.metadata
import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from core import catalog
from core.bundle import load_run
from core.catalog import safe_join
from core.data import load_experiment_dataset
from core.errors import ConfigError, FusionLensError, cli_command
from core.results import results_table
from ui import precomputed, queries
from ui.commands import build_commands
from ui.story import Story, load_story

__all__ = ["Card", "ReportData", "collect", "fusionlens_version", "N_ERROR_CARDS", "N_CORRECT_CARDS", "REPORT_STEPS"]

#: Sample cards: the most confident errors of the run, then a few correct predictions.
N_ERROR_CARDS = 6
N_CORRECT_CARDS = 3
#: Progress steps of a report: results and story, run, dataset, explanations, each card, the drawing.
REPORT_STEPS = 4 + N_ERROR_CARDS + N_CORRECT_CARDS + 1

Progress = Callable[[int, int, str], None]


def fusionlens_version() -> str:
    try:
        return importlib.metadata.version("fusionlens")
    except importlib.metadata.PackageNotFoundError:
        return "unknown (not installed: pip install -e .)"


def _problem(exc: BaseException) -> str:
    if isinstance(exc, FusionLensError):
        return exc.problem + (f". Fix: {exc.fix}" if exc.fix else "")
    return f"{type(exc).__name__}: {exc}"


@dataclass
class Card:
    """One sample of the run: its prediction, stored explanation (or why there is none) and items."""

    sample_id: str
    label: str
    pred: str
    confidence: float
    correct: bool
    shares: dict[str, float] = field(default_factory=dict)
    explanation: Any = None
    explanation_problem: str | None = None
    items: dict[str, Any] = field(default_factory=dict)
    item_problems: dict[str, str] = field(default_factory=dict)


@dataclass
class ReportData:
    """Everything the sections of one report read (collected by :func:`collect`)."""

    root: Path
    experiment: str
    run: Any
    results: pd.DataFrame
    problems: list[str]
    story: Story
    info: dict[str, Any]
    kinds: dict[str, str]
    view: pd.DataFrame
    explained: pd.DataFrame
    explain_problem: str | None
    explain_command: str
    dataset_problem: str | None
    cards: list[Card]
    created: datetime
    version: str
    #: the experiment's dataset (:class:`core.data.Dataset`; None when it cannot be read): its manifest
    #: columns for the slice search, its options (frame rates, sample rates) for the clip cards
    dataset: Any = None

    @property
    def modalities(self) -> list[str]:
        return list(self.run.modalities)

    @property
    def classes(self) -> list[str]:
        return list(self.run.classes)


def _experiment_dir(root: Path, experiment: str) -> Path:
    exp_dir = safe_join(root, experiment)
    if not exp_dir.is_dir():
        known = catalog.list_experiments(root)
        raise ConfigError(f"no experiment {experiment!r} under {root}",
                          fix=f"use one of: {', '.join(known)}" if known else
                          f"build one first: {cli_command()} build {experiment}")
    return exp_dir


def _pick_cards(view: pd.DataFrame, explained_ids: set[str]) -> pd.DataFrame:
    """The most confident errors, then correct predictions (explained ones first, most confident first)."""
    wrong = view[~view["correct"].astype(bool)].sort_values(["confidence", "id"], ascending=[False, True])
    right = view[view["correct"].astype(bool)].assign(_x=lambda f: f["id"].isin(explained_ids))
    right = right.sort_values(["_x", "confidence", "id"], ascending=[False, False, True]).drop(columns="_x")
    return pd.concat([wrong.head(N_ERROR_CARDS), right.head(N_CORRECT_CARDS)], ignore_index=True)


def collect(root: str | Path, experiment: str, run: str | None = None, *,
            progress: Progress | None = None) -> ReportData:
    """Read what a report of ``run`` (default: the story's best run over every modality) shows."""
    steps = REPORT_STEPS
    done = 0

    def step(label: str) -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(min(done, steps), steps, label)

    root = Path(root)
    exp_dir = _experiment_dir(root, experiment)
    results, problems = results_table(exp_dir, root)
    story = load_story(root, experiment)
    step("results and story")
    if run is None:
        if story.best is None:
            raise ConfigError(f"experiment {experiment!r} has no usable run" + (
                f" ({len(problems)} damaged)" if problems else ""),
                fix=f"build it first: {cli_command()} build {experiment}")
        run = story.best.run
    entry = catalog.run_entry(root, experiment, run)
    if not entry.usable:
        if entry.state == catalog.INCOMPLETE and not entry.path.exists():
            names = results["run"].astype(str).tolist()
            shown = ", ".join(names[:8]) + (f" ... ({len(names)} runs; `{cli_command()} list` lists them)"
                                            if len(names) > 8 else "")
            raise ConfigError(f"no run {run!r} in experiment {experiment!r}",
                              fix=f"use one of: {shown or '(none built yet)'}")
        raise entry.error()
    bundle = load_run(entry.path)
    step("run")
    info: dict[str, Any] = {}
    dataset, dataset_problem = None, None
    try:
        dataset, info = load_experiment_dataset(exp_dir)
    except (FusionLensError, KeyError, TypeError) as exc:
        dataset_problem = _problem(exc)
        try:
            info = queries.dataset_info(root, experiment) or {}
        except FusionLensError:
            info = {}
    kinds = {m: str((info.get("modalities") or {}).get(m, "")) for m in bundle.modalities}
    step("dataset")
    explain_problem = None
    try:
        summaries = precomputed.explanation_summaries(entry.path)
    except FusionLensError as exc:
        summaries, explain_problem = None, _problem(exc)
    shares = queries.share_frame(summaries, bundle.modalities)
    texts = None
    if dataset is not None:
        text_mods = queries.text_modalities(dataset.modalities, bundle.modalities)
        texts = dataset.frame[["id", *text_mods]] if text_mods else None
    view = queries.predictions_view(bundle.predictions, bundle.modalities, shares if not shares.empty else None, texts)
    preds = bundle.predictions[["id", "label", "pred", "correct"]].assign(id=lambda f: f["id"].astype(str))
    explained = shares.merge(preds, on="id", how="inner") if not shares.empty else shares
    step("explanations")
    cards = []
    picked = _pick_cards(view, set(explained["id"]) if not explained.empty else set())
    items: dict[str, list[Any] | None] = {}
    item_problems: dict[str, str] = {}
    ids = picked["id"].astype(str).tolist()
    for m in bundle.modalities:
        if dataset is None:
            item_problems[m] = dataset_problem or "the dataset is not available"
            continue
        try:
            items[m] = queries.safe_items(dataset, m, ids) if ids else []
        except (FusionLensError, OSError, ValueError) as exc:
            item_problems[m] = _problem(exc)
    for i, row in enumerate(picked.itertuples(index=False)):
        sid = str(row.id)
        card = Card(sid, str(row.label), str(row.pred), float(row.confidence), bool(row.correct))
        for m in bundle.modalities:
            value = getattr(row, f"share_{m}", math.nan) if f"share_{m}" in picked.columns else math.nan
            card.shares[m] = float(value) if value is not None else math.nan
            if items.get(m) is not None:
                card.items[m] = items[m][i]
            elif m in item_problems:
                card.item_problems[m] = item_problems[m]
        try:
            card.explanation = precomputed.stored_explanation(entry.path, sid)
        except FusionLensError as exc:
            card.explanation_problem = _problem(exc)
        cards.append(card)
        step(f"sample {sid}")
    return ReportData(
        root=root, experiment=experiment, run=bundle, results=results, problems=problems, story=story, info=info,
        kinds=kinds, view=view, explained=explained, explain_problem=explain_problem,
        explain_command=build_commands(experiment, bundle.name, root=root)["explain"],
        dataset_problem=dataset_problem, cards=cards, created=datetime.now(timezone.utc),
        version=fusionlens_version(), dataset=dataset)

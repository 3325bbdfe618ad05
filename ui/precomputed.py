"""What is stored for a run, read through ``core``'s public API: explanations, projections,
and how much of the build's explanation plan is done.

Explanations are read with :func:`core.explain.load_explanation_summaries` and
:func:`core.explain.explanation_for`; a damaged stored part raises the
:class:`core.errors.BundleError` that names it and the repair, so a page reports
damage as damage, never as "not computed yet". ``core.explain`` imports torch
(over a second), so it is imported inside the functions that need it: a page
that shows no explanation starts without it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import pandas as pd

from core.bundle import load_run
from core.catalog import safe_join
from core.errors import BundleError, FusionLensError
from core.pipeline import explain_plan as build_explain_plan
from core.pipeline import read_precompute_choices
from core.projection import list_projections
from ui.commands import build_commands

__all__ = [
    "PLAN_COLUMNS",
    "explanation_summaries",
    "stored_explanation",
    "explain_now",
    "expected_projections",
    "precompute_status",
    "explanation_plan",
    "plan_gaps",
]

PLAN_COLUMNS = ["run", "n", "seed", "shared", "requested", "stored", "missing", "command"]


def explanation_summaries(run_dir: str | Path) -> pd.DataFrame | None:
    """One row per explained sample of a run (``sample_id``, ``share_<m>``...), or None when
    nothing is stored; a damaged stored part raises a BundleError naming it."""
    from core.explain import load_explanation_summaries  # lazy: core.explain imports torch

    frame = load_explanation_summaries(Path(run_dir))
    return None if frame is None or len(frame) == 0 else frame


def stored_explanation(run_dir: str | Path, sample_id: str) -> Any:
    """The stored :class:`core.explain.Explanation` of one sample, or None when there is none."""
    from core.explain import explanation_for  # lazy: core.explain imports torch

    return explanation_for(Path(run_dir), str(sample_id))


def explain_now(run: Any, sample_id: str, progress: Callable[[int, int], None] | None = None) -> Any:
    """Explain one sample of a loaded run now, with the default settings, and store the result
    (read back by :func:`stored_explanation`)."""
    from core.explain import explain_sample  # lazy: core.explain imports torch

    return explain_sample(run, str(sample_id), progress=progress)


def expected_projections(embeddings: Sequence[str],
                         methods: Sequence[str] = ("pca", "tsne", "umap")) -> list[tuple[str, str]]:
    """Every (embedding, method) pair the build stores for a run."""
    return [(e, m) for e in embeddings for m in methods]


def precompute_status(run_dir: Path, modalities: Sequence[str]) -> dict[str, Any]:
    """What is stored for a run: projections (frame, missing pairs, damaged files) and
    explanations (count, or the error that says which stored file is damaged).

    Keys: ``projections``, ``missing_projections`` [(embedding, method)],
    ``damaged_projections`` [error text], ``n_explained``, ``explain_error``
    (a FusionLensError or None).
    """
    stored = list_projections(run_dir)
    embeddings = [*modalities, "fused"]
    usable = stored[stored["error"].isna()] if not stored.empty else stored
    have = set(zip(usable["embedding"], usable["method"])) if not usable.empty else set()
    missing = [p for p in expected_projections(embeddings) if p not in have]
    damaged = stored.loc[stored["error"].notna(), "error"].astype(str).tolist() if not stored.empty else []
    n_expl, explain_error = None, None
    try:
        frame = explanation_summaries(run_dir)
        n_expl = 0 if frame is None else int(len(frame))
    except FusionLensError as exc:  # a damaged part: reported as damage, not as "nothing stored"
        explain_error = exc
    return {"projections": stored, "missing_projections": missing, "damaged_projections": damaged,
            "n_explained": n_expl, "explain_error": explain_error}


def explanation_plan(root: str | Path, experiment: str,
                     stored_ids: Callable[[Path], Iterable[str] | None]) -> pd.DataFrame:
    """What the build explains in an experiment, and how much of it is stored.

    One row per run the build's explain step explains (:func:`core.pipeline.explain_plan`: the
    experiment file's ``[precompute]`` choices as the last build recorded them, in order, with
    their sample sizes and the run's seed):
    ``run``, ``n`` (the plan's sample count) and ``seed``, ``shared`` (the entry is the shared sample of every
    fused run, ``[precompute] explain_every_run``), ``requested`` (samples in the build's seeded sample of
    the test split), ``stored`` (of those, how many
    have stored explanations), ``missing`` and ``command`` (the build's own command for that run,
    which skips what is stored). ``stored_ids(run_dir)`` gives the explained sample ids of a run.
    A run whose explanations ran out of the build's time budget shows up with ``missing > 0``.
    """
    from core.explain import select_samples  # lazy: core.explain imports torch

    rows = []
    exp_dir = safe_join(root, experiment)
    choices = read_precompute_choices(exp_dir)
    for run_dir, n in build_explain_plan(exp_dir, choices, root=Path(root)):
        try:
            run = load_run(run_dir)
        except BundleError:  # the catalog verified it a moment ago; a run rebuilt meanwhile is left out
            continue
        seed = int(run.config.get("seed", 0))
        wanted = set(select_samples(run, n, seed))
        have = len(wanted & {str(x) for x in (stored_ids(run_dir) or ())})
        command = build_commands(experiment, run_dir.name, root=root)["explain"] + f" --n {n} --seed {seed}"
        rows.append({"run": run_dir.name, "n": n, "seed": seed, "shared": choices.is_shared(n),
                     "requested": len(wanted), "stored": have,
                     "missing": len(wanted) - have, "command": command})
    return pd.DataFrame(rows, columns=PLAN_COLUMNS)


def plan_gaps(plan: pd.DataFrame, experiment_dir_command: str) -> tuple[list[str], list[str]]:
    """(what is missing, commands that fill it) of an explanation plan (:func:`explanation_plan`).

    The runs of the shared sample (``shared``) are summed in one line and filled by one command for the whole
    experiment (``experiment_dir_command --n N --seed S``: ``fusionlens explain <experiment folder>``, which
    skips what is stored); the others are listed run by run with their own command."""
    gaps = plan[plan["missing"] > 0]
    shared, own = gaps[gaps["shared"].astype(bool)], gaps[~gaps["shared"].astype(bool)]
    lines = [f"`{r.run}` {r.stored:,} of {r.requested:,}" for r in own.itertuples()]
    commands = own["command"].tolist()
    if len(shared):
        first = shared.iloc[0]
        lines.append(f"{len(shared)} runs asking {int(first['n']):,} seeded samples each, "
                     f"{int(shared['stored'].sum()):,} of {int(shared['requested'].sum()):,} explanations stored")
        commands.append(f"{experiment_dir_command} --n {int(first['n'])} --seed {int(first['seed'])}")
    return lines, commands

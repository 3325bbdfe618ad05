"""The build: one pipeline of steps, prepare -> train -> results -> project -> blame -> explain -> robustness.

``fusionlens build`` calls :func:`run_build`, which runs :data:`STEPS` in order.
Every step is a function ``(ctx: BuildContext) -> str`` that does its work
(each resumable: finished work is kept) and returns a one-line summary; the
pipeline prints ``build <exp> [i/n] <step>: <summary> (<seconds>)`` as it goes
and records each step in ``ctx.log``. The steps marked ``precompute``
(projections, blame, explanations, robustness tables) are skipped by ``--skip-precompute``.
The blame comes before the explanations: it costs two encoder passes per modality over the test split
(shared by the runs of an experiment) and stores, for every test prediction of every run, the margin
game and the exact modality game (shares and interactions), so a budget cut short leaves every run
explained at the modality level before the per-feature MM-SHAP values take the rest.

What those two compute is the experiment file's choice, its ``[precompute]``
table (defaults: today's build): which projections, which runs get MM-SHAP
explanations (an explicit list, or the automatic pick of
:func:`core.explain.select_build_runs`), how many samples each and within what
time. ``build_seconds`` (or ``build --budget``) bounds the whole build: the
blame, explanations and robustness share what the steps before them leave
(:meth:`BuildContext.step_seconds`). The build records the choices in
``<exp>/precompute.json``, so the dashboard shows the same plan
(:func:`explain_plan`) without the experiment file.

torch (training, the explain engine) is imported inside the steps that need
it, so that the dashboard can call :func:`explain_plan` and
:func:`read_precompute_choices`, and the CLI start, without it.
"""
from __future__ import annotations

import dataclasses
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import pandas as pd

from core.catalog import list_runs, run_entry
from core.data import prepare_dataset
from core.errors import BundleError, ConfigError, cli_command
from core.experiment import DEFAULT_PRECOMPUTE, Experiment
from core.experiment_schema import SCHEMA, Table, check_table
from core.explain import fused_run_dirs, select_build_runs
from core.io import read_json, write_json
from core.projection import project_runs
from core.results import save_results

#: Where a build records its ``[precompute]`` choices, in the experiment folder.
PRECOMPUTE_FILE = "precompute.json"


# --------------------------------------------------------------------------- what to precompute

@dataclass(frozen=True)
class PrecomputeChoices:
    """The ``[precompute]`` table of an experiment file, defaults filled in (see the README's key list).

    ``explain_runs``: the runs to explain, in order, or None for the automatic pick of up to
    ``explain_max_runs`` runs. Run ``i`` of the plan gets ``explain_samples[i]`` samples (the last
    count repeating); the explanations stop after ``explain_seconds``.
    """

    projections: tuple[str, ...] = tuple(DEFAULT_PRECOMPUTE["projections"])
    explain_runs: tuple[str, ...] | None = None
    explain_max_runs: int = DEFAULT_PRECOMPUTE["explain_max_runs"]
    explain_samples: tuple[int, ...] = tuple(DEFAULT_PRECOMPUTE["explain_samples"])
    explain_every_run: int = int(DEFAULT_PRECOMPUTE["explain_every_run"])
    explain_seconds: float = float(DEFAULT_PRECOMPUTE["explain_seconds"])
    robustness_seconds: float = float(DEFAULT_PRECOMPUTE["robustness_seconds"])
    robustness_samples: int = int(DEFAULT_PRECOMPUTE["robustness_samples"])
    robustness_levels: int = int(DEFAULT_PRECOMPUTE["robustness_levels"])
    blame_seconds: float = float(DEFAULT_PRECOMPUTE["blame_seconds"])
    build_seconds: float = float(DEFAULT_PRECOMPUTE["build_seconds"])

    @classmethod
    def from_table(cls, table: Mapping[str, Any]) -> PrecomputeChoices:
        """From a (schema-checked) ``[precompute]`` table; missing keys take their defaults."""
        values = {**DEFAULT_PRECOMPUTE, **table}
        runs = values.get("explain_runs")
        return cls(projections=tuple(values["projections"]),
                   explain_runs=tuple(runs) if runs is not None else None,
                   explain_max_runs=int(values["explain_max_runs"]),
                   explain_samples=tuple(int(n) for n in values["explain_samples"]) or cls.explain_samples,
                   explain_every_run=int(values["explain_every_run"]),
                   explain_seconds=float(values["explain_seconds"]),
                   robustness_seconds=float(values["robustness_seconds"]),
                   robustness_samples=int(values["robustness_samples"]),
                   robustness_levels=int(values["robustness_levels"]),
                   blame_seconds=float(values["blame_seconds"]),
                   build_seconds=float(values["build_seconds"]))

    def to_table(self) -> dict[str, Any]:
        """The choices as a ``[precompute]`` table (what :data:`PRECOMPUTE_FILE` holds)."""
        table: dict[str, Any] = {"projections": list(self.projections), "explain_max_runs": self.explain_max_runs,
                                 "explain_samples": list(self.explain_samples),
                                 "explain_every_run": self.explain_every_run,
                                 "explain_seconds": self.explain_seconds,
                                 "robustness_seconds": self.robustness_seconds,
                                 "robustness_samples": self.robustness_samples,
                                 "robustness_levels": self.robustness_levels,
                                 "blame_seconds": self.blame_seconds,
                                 "build_seconds": self.build_seconds}
        if self.explain_runs is not None:
            table["explain_runs"] = list(self.explain_runs)
        return table

    def is_shared(self, n: int) -> bool:
        """Whether a plan entry asking ``n`` samples is the shared sample of every fused run
        (``explain_every_run``): its leftovers are finished by one command for the whole experiment."""
        return self.explain_every_run > 0 and n == self.explain_every_run

    def samples_for(self, position: int) -> int:
        """Samples the run at ``position`` of the explain plan gets."""
        return self.explain_samples[min(position, len(self.explain_samples) - 1)]


def write_precompute_choices(exp_dir: Path, choices: PrecomputeChoices) -> None:
    write_json(Path(exp_dir) / PRECOMPUTE_FILE, choices.to_table())


def read_precompute_choices(exp_dir: Path) -> PrecomputeChoices:
    """The choices the last build of ``exp_dir`` used; the defaults for a build made before
    they were recorded. A damaged file is a BundleError naming the build command."""
    path = Path(exp_dir) / PRECOMPUTE_FILE
    if not path.is_file():
        return PrecomputeChoices()
    table = read_json(path, what="precompute choices")
    spec = SCHEMA.keys["precompute"]
    assert isinstance(spec, Table)
    problems = check_table(spec, table, ("precompute",))
    if problems:
        raise BundleError(f"{path} is damaged: {problems[0].problem}",
                          fix=f"rerun `{cli_command()} build {Path(exp_dir).name}` to write it again")
    return PrecomputeChoices.from_table(table)


def explain_plan(exp_dir: Path, choices: PrecomputeChoices | None = None, root: Path | None = None,
                 skipped: list[str] | None = None) -> list[tuple[Path, int]]:
    """(run folder, samples) of every run the build explains, in order: the runs ``explain_runs`` names
    (or the automatic pick), each with at least ``explain_every_run`` samples, then every other fused
    run with ``explain_every_run`` (none when it is 0).

    ``choices``: default the ones the last build recorded. Listed runs that are not usable
    (not built, broken, refused) are left out and added to ``skipped`` with their problem.
    """
    exp_dir = Path(exp_dir)
    choices = choices if choices is not None else read_precompute_choices(exp_dir)
    if choices.explain_runs is None:
        picked = select_build_runs(exp_dir, max_runs=choices.explain_max_runs) if choices.explain_max_runs >= 1 else []
    else:
        picked = []
        for name in choices.explain_runs:
            entry = run_entry(root if root is not None else exp_dir.parent, exp_dir.name, name)
            if entry.usable:
                picked.append(entry.path)
            elif skipped is not None:
                skipped.append(f"run {name} ({entry.state}): {entry.message}")
    every = choices.explain_every_run
    plan = [(Path(p), max(every, choices.samples_for(i))) for i, p in enumerate(picked)]
    if every > 0:
        named = {p.resolve() for p, _ in plan}
        plan += [(Path(p), every) for p in fused_run_dirs(exp_dir) if Path(p).resolve() not in named]
    return plan


def check_explain_runs(exp: Experiment, choices: PrecomputeChoices) -> None:
    """Refuse ``[precompute] explain_runs`` naming a run the experiment does not plan (before any work)."""
    if not choices.explain_runs:
        return
    from core.train import planned_runs  # imports torch: the build needs it next anyway

    planned = [name for name, *_ in planned_runs(exp, full=True)]
    unknown = [r for r in choices.explain_runs if r not in planned]
    if unknown:
        where = f"experiment file {exp.path}" if exp.path else f"experiment {exp.name}"
        raise ConfigError(f"{where}: [precompute] explain_runs names run(s) {', '.join(map(repr, unknown))} that "
                          "this experiment does not train",
                          fix=f"use names from: {', '.join(planned)}")


# --------------------------------------------------------------------------- the steps

@dataclass
class BuildContext:
    """What the steps share: the experiment, where it is built, the options, and what earlier
    steps produced (the results table, lines about runs left out, the log of steps)."""

    exp: Experiment
    root: Path
    force: bool = False
    full: bool = False
    progress: bool = True
    choices: PrecomputeChoices = field(default_factory=PrecomputeChoices)
    results: pd.DataFrame | None = None
    #: runs a step left out (damaged, refused, not built), as ``run X (state): problem`` lines
    skipped: list[str] = field(default_factory=list)
    #: one (step, status, summary, seconds) per step: status ``done`` or ``skipped``
    log: list[tuple[str, str, str, float]] = field(default_factory=list)
    #: when the build started (``time.perf_counter``), for ``[precompute] build_seconds``
    started: float = field(default_factory=time.perf_counter)
    #: the steps this build runs (a step outside it takes no part of the budget)
    planned: tuple[str, ...] = field(default_factory=lambda: tuple(BUDGET_PARTS))

    @property
    def exp_dir(self) -> Path:
        return self.root / self.exp.name

    def step_seconds(self, step: str) -> float:
        """The time budget of precompute step ``step`` (``explain``, ``blame``, ``robustness``): its own
        ``[precompute] <step>_seconds``, and with an overall ``build_seconds`` at most its part of what is
        left of it (:data:`BUDGET_PARTS` over this step and the later ones that compute anything), so
        time a step leaves unused passes to the next; 0 once the build's budget is spent."""
        own = float(getattr(self.choices, f"{step}_seconds"))
        if self.choices.build_seconds <= 0:
            return own
        left = max(0.0, self.started + self.choices.build_seconds - time.perf_counter())
        past = {entry[0] for entry in self.log}
        ahead = [s for s in BUDGET_PARTS
                 if s in self.planned and s not in past and getattr(self.choices, f"{s}_seconds") > 0]
        parts = sum(BUDGET_PARTS[s] for s in ahead) or BUDGET_PARTS[step]
        return min(own, left * BUDGET_PARTS[step] / parts)

    def budget_note(self, step: str, seconds: float) -> str:
        """`` (within N s: what the build's M s budget left it)`` when the overall budget cut this step's own
        budget, else ``""`` (the end of the step's summary line)."""
        own = float(getattr(self.choices, f"{step}_seconds"))
        if self.choices.build_seconds <= 0 or seconds >= own:
            return ""
        return f" (within {seconds:.0f} s: what the build's {self.choices.build_seconds:.0f} s budget left it)"


#: how the blame, explanations and robustness share what an overall ``[precompute] build_seconds`` leaves
#: after the steps before them (projections take what they need: the Embeddings page has no other source)
BUDGET_PARTS: dict[str, float] = {"blame": 1.0, "explain": 3.0, "robustness": 2.0}


def prepare_step(ctx: BuildContext) -> str:
    """Fetch or generate the data, validate it, fix the split (``fusionlens prepare``)."""
    ds = prepare_dataset(ctx.exp, ctx.root, progress=ctx.progress)
    counts = ds.frame.groupby("split").size().to_dict()
    return f"{len(ds.frame)} samples, {len(ds.classes)} classes, splits {counts}"


def train_step(ctx: BuildContext) -> str:
    """Train every missing or out-of-date run (``fusionlens train``)."""
    from core.train import train_experiment  # imports torch

    dirs = train_experiment(ctx.exp, ctx.root, force=ctx.force, progress=ctx.progress, full=ctx.full)
    return f"{len(dirs)} run(s) ready"


def results_step(ctx: BuildContext) -> str:
    """The comparison table, saved as ``results.csv`` (``fusionlens results``)."""
    ctx.results, problems = save_results(ctx.exp_dir, ctx.root)
    ctx.skipped += problems
    return f"{len(ctx.results)} run(s) in {ctx.exp_dir / 'results.csv'}"


def project_step(ctx: BuildContext) -> str:
    """2-D projections of every run's embeddings, as ``[precompute] projections`` asks (``fusionlens project``)."""
    methods = list(ctx.choices.projections)
    if not methods:
        return "none asked ([precompute] projections = [])"
    run_dirs = list_runs(ctx.exp_dir, ctx.root)
    if not run_dirs:
        return "no runs"
    counts = project_runs(run_dirs, methods=methods, progress=ctx.progress)
    return (f"{', '.join(methods)} of {len(run_dirs)} run(s): {counts['computed']} computed, {counts['reused']} "
            f"reused, {counts['kept']} already stored")


def explain_step(ctx: BuildContext) -> str:
    """MM-SHAP of a seeded sample of the test split of the runs ``[precompute]`` names, within its
    time budget; what is left is printed with the command that finishes it (``fusionlens explain``).
    With ``explain_every_run`` the shared sample of every fused run comes first: one sample's encoders serve
    every run, so those explanations are the cheapest (:func:`core.explain.explain_order`)."""
    plan = explain_plan(ctx.exp_dir, ctx.choices, ctx.root, ctx.skipped)
    if not plan:
        return "no runs to explain"
    from core.explain import explain_runs  # loads the engine, which imports torch

    seed, cli = ctx.exp.seed, cli_command()
    finish = [f"{cli} explain {run_dir} --n {n} --seed {seed}" for run_dir, n in plan]
    # samples outermost, runs inside: runs sharing an encoder encode each masked variant once, and the
    # samples more runs ask for come first (the shared sample of every fused run)
    seconds = ctx.step_seconds("explain")
    every = ctx.choices.explain_every_run
    reports = explain_runs(plan, seed=seed, progress=ctx.progress, time_limit=seconds, commands=finish)
    computed = sum(r["computed"] for r in reports)
    left_total = shared_left = shared_runs = 0
    for report, command, (_, n) in zip(reports, finish, plan):
        left_total += report["remaining"]
        if report["remaining"] and ctx.choices.is_shared(n):  # one command below finishes them all
            shared_left, shared_runs = shared_left + report["remaining"], shared_runs + 1
        elif report["remaining"]:
            print(f"explanations of {report['run']}: {report['remaining']} left; finish with `{command}`",
                  file=sys.stderr)
    if shared_left:
        print(f"explanations of the shared sample: {shared_left} left over {shared_runs} run(s); finish with "
              f"`{cli} explain {ctx.exp_dir} --n {every} --seed {seed}` (every run of the experiment)", file=sys.stderr)
    shared_note = f" ({every} shared by every fused run)" if every > 0 else ""
    return (f"{len(plan)} run(s), {computed} explanation(s){shared_note}"
            + (f", about {left_total} left" if left_total else "") + ctx.budget_note("explain", seconds))


def blame_step(ctx: BuildContext) -> str:
    """Each run's modality blame for errors (every test prediction, ``docs/EXPLAIN.md``) within
    ``[precompute] blame_seconds``; the runs it leaves are printed with the command that finishes
    them (``fusionlens blame``)."""
    if ctx.choices.blame_seconds <= 0:
        return "none asked ([precompute] blame_seconds = 0)"
    run_dirs = list_runs(ctx.exp_dir, ctx.root)
    if not run_dirs:
        return "no runs"
    from core.explain import blame_runs  # imports torch

    seconds = ctx.step_seconds("blame")
    report = blame_runs(run_dirs, time_limit=seconds, progress=ctx.progress)
    left = report["left"]
    if left:  # one command finishes them all (runs already stored are kept)
        from core.bundle import experiment_arg

        names = ", ".join(p.name for p in left[:3]) + (f" and {len(left) - 3} more" if len(left) > 3 else "")
        print(f"blame: time budget spent, {len(left)} run(s) left ({names}); finish with "
              f"`{cli_command()} blame {experiment_arg(ctx.exp_dir)} --runs-dir {shlex.quote(str(ctx.root))}`",
              file=sys.stderr)
    return (f"{len(report['computed'])} run(s) computed, {len(report['kept'])} already stored"
            + (f", {len(left)} left" if left else "") + ctx.budget_note("blame", seconds))


def robustness_step(ctx: BuildContext) -> str:
    """Each run's robustness table (``docs/ROBUSTNESS.md``) within ``[precompute] robustness_seconds``;
    the runs it leaves are printed with the command that finishes them (``fusionlens robustness``)."""
    if ctx.choices.robustness_seconds <= 0:
        return "none asked ([precompute] robustness_seconds = 0)"
    run_dirs = list_runs(ctx.exp_dir, ctx.root)
    if not run_dirs:
        return "no runs"
    from core.robustness import RobustnessSettings, robustness_command, robustness_runs  # imports torch

    settings = RobustnessSettings(samples=ctx.choices.robustness_samples, levels=ctx.choices.robustness_levels,
                                  seed=ctx.exp.seed)
    seconds = ctx.step_seconds("robustness")
    report = robustness_runs(run_dirs, settings, time_limit=seconds, progress=ctx.progress)
    left = report["left"]
    for name, status in report["shares_status"].items():  # shares of perturbed inputs on fewer samples than asked
        if status["samples"] < status["planned"]:
            print(f"robustness: the shares of perturbed inputs of {name} rest on {status['samples']} of "
                  f"{status['planned']} samples (time budget); finish with "
                  f"`{robustness_command(ctx.exp_dir / name, settings)} --force`", file=sys.stderr)
    if left:  # one command finishes them all (runs already stored are kept)
        from core.bundle import experiment_arg
        from core.robustness import settings_argv

        flags = " ".join(shlex.quote(a) for a in ["--runs-dir", str(ctx.root), *settings_argv(settings)])
        names = ", ".join(p.name for p in left[:3]) + (f" and {len(left) - 3} more" if len(left) > 3 else "")
        print(f"robustness: time budget spent, {len(left)} run(s) left ({names}); finish with "
              f"`{cli_command()} robustness {experiment_arg(ctx.exp_dir)} {flags}` (one run: "
              f"`{robustness_command(left[0], settings)}`)", file=sys.stderr)
    return (f"{len(report['computed'])} run(s) computed, {len(report['kept'])} already stored"
            + (f", {len(report['left'])} left" if report["left"] else "") + ctx.budget_note("robustness", seconds))


@dataclass(frozen=True)
class BuildStep:
    """One step of the build: its name, its function and whether ``--skip-precompute`` skips it."""

    name: str
    run: Callable[[BuildContext], str]
    precompute: bool = False


#: The build, in order.
STEPS: tuple[BuildStep, ...] = (
    BuildStep("prepare", prepare_step),
    BuildStep("train", train_step),
    BuildStep("results", results_step),
    BuildStep("project", project_step, precompute=True),
    BuildStep("blame", blame_step, precompute=True),
    BuildStep("explain", explain_step, precompute=True),
    BuildStep("robustness", robustness_step, precompute=True),
)


def run_build(exp: Experiment, root: Path, *, force: bool = False, full: bool = False,
              skip_precompute: bool = False, progress: bool = True,
              steps: Sequence[BuildStep] = STEPS, build_seconds: float | None = None) -> BuildContext:
    """Build an experiment: every step of ``steps`` in order (the precompute steps unless
    ``skip_precompute``); returns the context with the results table and the log.

    ``build_seconds``: the whole build's time budget in place of ``[precompute] build_seconds``
    (:meth:`BuildContext.step_seconds`; 0: none).

    ``[precompute] explain_runs`` is checked against the planned runs before any work. The
    choices are recorded in ``<exp>/precompute.json`` before the first precompute step, also
    when it is skipped (the dashboard then shows what the build would compute, with the
    commands that do it); a build that fails earlier leaves no record.
    """
    choices = PrecomputeChoices.from_table(exp.precompute)
    if build_seconds is not None:
        if not build_seconds >= 0:
            raise ConfigError(f"a build budget of {build_seconds!r} seconds",
                              fix="give a number of seconds >= 0 (0: no overall budget)")
        choices = dataclasses.replace(choices, build_seconds=float(build_seconds))
    check_explain_runs(exp, choices)
    ctx = BuildContext(exp=exp, root=Path(root), force=force, full=full, progress=progress, choices=choices,
                       planned=tuple(s.name for s in steps if not (skip_precompute and s.precompute)))
    recorded = False
    for i, step in enumerate(steps, 1):
        if step.precompute and not recorded:
            write_precompute_choices(ctx.exp_dir, choices)
            recorded = True
        t0 = time.perf_counter()
        if skip_precompute and step.precompute:
            status, summary = "skipped", "--skip-precompute"
        else:
            status, summary = "done", step.run(ctx)
        seconds = time.perf_counter() - t0
        ctx.log.append((step.name, status, summary, seconds))
        if progress:
            print(f"build {exp.name} [{i}/{len(steps)}] {step.name}: {summary} ({seconds:.1f} s)", file=sys.stderr)
    return ctx

"""``fusionlens <subcommand>`` (or ``python -m core <subcommand>``): every step of an experiment.

This module only parses the command line and dispatches: each subcommand calls
the module that owns the step (``core.data``, ``core.train``, ``core.results``,
``core.projection``, ``core.explain`` (also ``blame``), ``core.trust``, ``core.compute``, ``core.robustness``;
``build`` runs
:mod:`core.pipeline`;
the runs a command names come from :func:`core.catalog.resolve_runs`; ``report``
calls the dashboard's plain report package ``ui.report``, the one exception to
``core`` never importing ``ui``).
Steps are resumable: finished runs, explanations and projections whose
settings match are kept, so an interrupted command is simply run again.
Global options (``--runs-dir``, ``--quiet``, ``--threads``) go before or
after the subcommand. ``pip install -e .`` (``scripts/setup.sh``) installs the
``fusionlens`` command, which works from any folder. torch loads only in the
commands that train or explain.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tomllib
from pathlib import Path
from typing import Any, Sequence

from core import catalog
from core.data import prepare_dataset
from core.errors import CLI_NAME, ConfigError, FusionLensError, cli_command
from core.experiment import PROJECT_ROOT, load_experiment, runs_root
from core.explain import add_explain_arguments, settings_from_args
from core.pipeline import run_build
from core.projection import METHODS as PROJECTION_METHODS
from core.projection import project_runs
from core.results import format_results, save_results
from core.scale import add_ray_arguments, explain_on_ray, format_ray_summary, project_on_ray, robustness_on_ray
from core.trust import DEFAULT_ESTIMATOR_SAMPLES, DEFAULT_SAMPLES, DEFAULT_SECONDS


def _root(args: argparse.Namespace) -> Path:
    return runs_root(args.runs_dir)


def cmd_prepare(args: argparse.Namespace) -> int:
    exp = load_experiment(args.experiment)
    ds = prepare_dataset(exp, _root(args), progress=not args.quiet)
    counts = ds.frame.groupby("split").size().to_dict()
    print(f"{exp.name}: {len(ds.frame)} samples, {len(ds.classes)} classes, splits {counts}, "
          f"modalities {', '.join(f'{m} ({k})' for m, k in ds.modalities.items())}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from core.train import train_experiment  # imports torch

    exp = load_experiment(args.experiment)
    if args.force_deps and not args.run:
        raise ConfigError("--force-deps names no runs", fix="add --run NAME, or use --force to retrain every run")
    dirs = train_experiment(exp, _root(args), force=args.force, force_deps=args.force_deps, progress=not args.quiet,
                            only=args.run, stage=args.stage, full=args.full, workers=args.workers)
    print(f"{len(dirs)} run(s) ready under {_root(args) / exp.name}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from core.train import reproduce_predictions  # imports torch

    ok = True
    for run in args.run_dir:
        entry = catalog.inspect_run(Path(run))  # refused (links outside) or broken: stop with the problem
        if not entry.usable:
            raise entry.error()
        report = reproduce_predictions(Path(run))
        ok &= report["same_topk_labels"] and report["max_abs_prob_diff"] < 1e-4 and report.get("same_decisions", True)
        print(json.dumps(report))
    return 0 if ok else 1


def cmd_results(args: argparse.Namespace) -> int:
    exp = load_experiment(args.experiment)
    frame, problems = save_results(_root(args) / exp.name)
    print(format_results(frame))
    print(f"saved {_root(args) / exp.name / 'results.csv'}")
    return _report_skipped(problems)


def cmd_build(args: argparse.Namespace) -> int:
    """The build pipeline (:func:`core.pipeline.run_build`), then the results table.

    Runs a step left out (damaged or refused) are printed on stderr; the build itself succeeded."""
    exp = load_experiment(args.experiment)
    ctx = run_build(exp, _root(args), force=args.force, full=args.full, skip_precompute=args.skip_precompute,
                    progress=not args.quiet, build_seconds=args.budget)
    _report_skipped(ctx.skipped)
    print(format_results(ctx.results))
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    """Experiments and runs under the runs root, through the catalog: damaged and refused runs
    are listed with their problem and fix, never as normal runs."""
    root = _root(args)
    exps = catalog.scan_experiments(root)
    if not exps:
        print(f"no experiments under {root}; build one with `{cli_command()} build emoji`")
    for e in exps:
        if e.state != "ok":
            print(f"{e.name}: refused: {e.problem}")
            continue
        entries = catalog.scan_runs(e.path, root)
        usable = sum(r.usable for r in entries)
        damaged = len(entries) - usable
        print(f"{e.name}: {usable} run(s)" + (f", {damaged} not usable" if damaged else ""))
        for r in entries:
            print(f"  {r.name}" if r.usable else f"  {r.name}  [{r.state}] {r.message}")
    return 0


def cmd_encoders(args: argparse.Namespace) -> int:
    """The encoder registry: name, kind and what each encoder is."""
    from core.encoders import ENCODERS, describe_encoder, encoders_markdown, list_encoders  # imports torch

    if args.markdown:
        print(encoders_markdown(), end="")
        return 0
    names = list_encoders(args.kind)  # an old kind name (features) lists its current kind's encoders
    if not names:
        kinds = sorted({ENCODERS.meta(n)["kind"] for n in ENCODERS.names()})
        raise ConfigError(f"no encoder for kind {args.kind!r}", fix=f"use one of: {', '.join(kinds)}")
    for name in names:
        print(f"{ENCODERS.meta(name)['kind']:6s} {name:12s} {describe_encoder(name)}")
    return 0


#: Port of ``fusionlens dashboard`` (``$FUSIONLENS_PORT`` changes the default, as in scripts/run.sh).
DEFAULT_PORT = 8501


def dashboard_command(root: Path, port: int = DEFAULT_PORT, *,
                      app: Path | None = None) -> tuple[list[str], dict[str, str]]:
    """The argv and environment that serve the dashboard for runs root ``root`` on 127.0.0.1:``port``.

    ``app.py`` comes from the installed location (the checkout of an editable install). The
    repository's ``.streamlit/config.toml`` is passed as flags, because Streamlit reads that file
    only from the current folder, which is the user's data folder here.
    """
    app = app or PROJECT_ROOT / "app.py"
    if not app.is_file():
        raise ConfigError(f"the dashboard's app.py is not at {app} (FusionLens was installed without its checkout)",
                          fix="install FusionLens editable from a checkout: pip install -e /path/to/fusionlens")
    config: dict[str, dict[str, Any]] = {}
    config_file = PROJECT_ROOT / ".streamlit" / "config.toml"
    if config_file.is_file():
        config = {k: dict(v) for k, v in tomllib.loads(config_file.read_text()).items() if isinstance(v, dict)}
    config.setdefault("server", {}).update({"address": "127.0.0.1", "port": int(port), "headless": True})
    config.setdefault("browser", {})["gatherUsageStats"] = False
    flags = [f"--{section}.{key}={str(value).lower() if isinstance(value, bool) else value}"
             for section, values in config.items() for key, value in values.items()]
    argv = [sys.executable, "-m", "streamlit", "run", str(app), *flags]
    return argv, {**os.environ, "FUSIONLENS_RUNS": str(root)}


def cmd_dashboard(args: argparse.Namespace) -> int:
    """Serve the Streamlit dashboard (replaces this process) against the runs root."""
    root = _root(args)
    argv, env = dashboard_command(root, args.port)
    print(f"FusionLens dashboard on http://127.0.0.1:{args.port} for runs in {root} (Ctrl+C stops it)", flush=True)
    os.execve(argv[0], argv, env)
    return 0  # not reached


def _add_global_options(parser: argparse.ArgumentParser, *, subcommand: bool) -> None:
    """The options every command takes. On a subcommand their default is SUPPRESS, so a value
    given before the subcommand is not overwritten by the subcommand's default."""

    def default(value: Any) -> Any:
        return argparse.SUPPRESS if subcommand else value

    group = parser.add_argument_group("global options (before or after the subcommand)")
    group.add_argument("--runs-dir", default=default(None), metavar="DIR",
                       help="runs root (default $FUSIONLENS_RUNS, else ./runs in the current folder)")
    group.add_argument("--quiet", action="store_true", default=default(False), help="no progress bars")
    group.add_argument("--threads", default=default(None), metavar="N|JOB=N,...",
                       help="torch threads: N for every job, or per job (head, encoder, explain), e.g. "
                            "head=1,encoder=4 (default: one for fusion heads and explanations, every core for "
                            "encoders; also $FUSIONLENS_THREADS)")


def build_parser(prog: str = CLI_NAME) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description="FusionLens: train, explain and explore "
                                     "multimodal fusion classifiers.")
    _add_global_options(parser, subcommand=False)
    sub = parser.add_subparsers(dest="command", required=True, metavar="command")

    p = sub.add_parser("prepare", help="fetch/generate and validate the dataset, fix the split")
    p.add_argument("experiment", help="path to a .toml, or a name: ./<name>.toml, else experiments/<name>.toml")
    p.set_defaults(func=cmd_prepare)

    p = sub.add_parser("train", help="train unimodal models and fusion heads (missing ones only)")
    p.add_argument("experiment")
    p.add_argument("--run", action="append", help="only this run (and the unimodal runs it needs); repeatable")
    p.add_argument("--stage", choices=["unimodal", "fusion"], help="only one training stage")
    p.add_argument("--force", action="store_true",
                   help="retrain the runs named by --run (every run without --run) even if up to date; "
                        "the unimodal runs they need are kept when up to date")
    p.add_argument("--force-deps", action="store_true",
                   help="with --run: also retrain the unimodal runs the named runs depend on (implies --force)")
    p.add_argument("--full", action="store_true", help="every encoder set of the experiment's grid")
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="processes training the fusion heads at once, once the encoders are trained (default "
                        "$FUSIONLENS_WORKERS, else every core when there are 8 heads or more)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="rebuild a run from its bundle and check it reproduces its predictions")
    p.add_argument("run_dir", nargs="+")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("results", help="print and save the comparison table (runs/<experiment>/results.csv)")
    p.add_argument("experiment")
    p.set_defaults(func=cmd_results)

    p = sub.add_parser("build", help="run a whole experiment: prepare, train, results, precompute")
    p.add_argument("experiment", help="path to a .toml, or a name: ./<name>.toml, else experiments/<name>.toml")
    p.add_argument("--force", action="store_true", help="retrain every run even if up to date")
    p.add_argument("--full", action="store_true", help="the whole grid where an experiment defines one")
    p.add_argument("--skip-precompute", action="store_true", help="no projections or explanations")
    p.add_argument("--budget", type=float, metavar="SECONDS",
                   help="time budget of the whole build: the blame, explanations and robustness share what "
                        "training leaves (overrides [precompute] build_seconds; 0: none)")
    p.set_defaults(func=cmd_build)

    p = sub.add_parser("list", help="list experiments and runs")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("encoders", help="list the registered encoders by modality kind")
    p.add_argument("--kind", help="only encoders of this kind (text, image, video, ...)")
    p.add_argument("--markdown", action="store_true", help="as the README's table")
    p.set_defaults(func=cmd_encoders)

    p = sub.add_parser("dashboard", help="serve the dashboard on 127.0.0.1 for the runs root")
    p.add_argument("--port", type=int, default=int(os.environ.get("FUSIONLENS_PORT") or DEFAULT_PORT),
                   help=f"port (default $FUSIONLENS_PORT or {DEFAULT_PORT})")
    p.set_defaults(func=cmd_dashboard)
    _register_project(sub)
    _register_compute(sub)
    _register_explain(sub)
    _register_check(sub)
    _register_robustness(sub)
    _register_blame(sub)
    _register_efficiency(sub)
    _register_report(sub)
    for p in sub.choices.values():
        _add_global_options(p, subcommand=True)
    return parser


# --------------------------------------------------------------------------- project

def _report_skipped(skipped: Sequence[str]) -> int:
    """Print the runs an experiment-wide command left out (damaged or refused) on stderr;
    the exit status: 1 when there were any (the others were done), else 0."""
    for line in skipped:
        print(f"skipped {line}", file=sys.stderr)
    return 1 if skipped else 0


def cmd_project(args: argparse.Namespace) -> int:
    """PCA / t-SNE / UMAP of each run's per-modality and fused test embeddings, stored with the run."""
    skipped: list[str] = []
    run_dirs = catalog.resolve_runs(args.target, _root(args), args.run, skipped)
    if args.ray:  # one Ray task per run (core.scale), the same files
        out = project_on_ray(run_dirs, args.methods, args.seed, address=args.ray, progress=not args.quiet)
        print(format_ray_summary("project", out))
        return _report_skipped(skipped)
    counts = project_runs(run_dirs, methods=args.methods, seed=args.seed, progress=not args.quiet,
                          workers=args.workers)
    print(f"projections of {len(run_dirs)} run(s): {counts['computed']} computed, {counts['reused']} reused from "
          f"identical embeddings, {counts['kept']} already stored")
    return _report_skipped(skipped)


def _register_project(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("project", help="store PCA / t-SNE / UMAP projections of each run's embeddings")
    p.add_argument("target", help="experiment name, .toml, experiment folder under the runs root, or a run folder")
    p.add_argument("--run", action="append", help="only this run of the experiment; repeatable")
    p.add_argument("--methods", nargs="+", default=list(PROJECTION_METHODS), choices=PROJECTION_METHODS)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="processes computing projections at once (default: every core for test splits of up to "
                        "2,000 samples, where t-SNE and UMAP use one thread each; 1 above)")
    add_ray_arguments(p)
    p.set_defaults(func=cmd_project)


# --------------------------------------------------------------------------- compute

def cmd_compute(args: argparse.Namespace) -> int:
    """GFLOPs per sample of each run (core.compute), written into its metrics.json without retraining."""
    from core.compute import compute_run  # imports torch

    skipped: list[str] = []
    for run_dir in catalog.resolve_runs(args.target, _root(args), args.run, skipped):
        report = compute_run(run_dir, force=args.force)
        parts = ", ".join(f"{p} {g:.4g}" for p, g in report["gflops_by_part"].items())
        state = "counted" if report["computed"] else "already counted (--force recounts)"
        print(f"{report['run']}: {report['gflops_per_sample']:.4g} GFLOPs/sample ({parts}); {state}")
        for line in report["uncounted"]:
            print(f"  not counted: {line}", file=sys.stderr)
    return _report_skipped(skipped)


def _register_compute(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compute", help="count each run's GFLOPs per sample (per modality encoder and head) into "
                                       "its metrics.json, without retraining")
    p.add_argument("target", help="run folder, or experiment name / .toml / folder (every run, or --run)")
    p.add_argument("--run", action="append", help="only this run of the experiment; repeatable")
    p.add_argument("--force", action="store_true", help="count again runs that already have a count")
    p.set_defaults(func=cmd_compute)


# --------------------------------------------------------------------------- explain

def cmd_explain(args: argparse.Namespace) -> int:
    """MM-SHAP of (a seeded sample of) each run's test split, stored under <run>/explanations/."""
    from core.explain import explain_runs  # imports torch

    settings, options = settings_from_args(args)
    skipped: list[str] = []
    run_dirs = catalog.resolve_runs(args.target, _root(args), args.run, skipped)
    if args.ray:  # every shard of each run as a Ray task (core.scale), writing the local parts
        out = explain_on_ray(run_dirs, settings, options, address=args.ray, shards=args.ray_shards,
                             progress=not args.quiet)
        print(format_ray_summary("explain", out))
        if out["remaining"]:
            print("rerun the same command to finish", file=sys.stderr)
        return _report_skipped(skipped)
    # samples outermost, runs inside: runs sharing an encoder encode each masked variant once; the command
    # that resumes each run is recorded from the same settings (core.explain.precompute_command)
    reports = explain_runs(run_dirs, settings, options, progress=not args.quiet, workers=args.workers)
    for run_dir, report in zip(run_dirs, reports):
        print(f"{report['run']}: {report['computed']} sample(s) explained, {report['skipped']} already stored, "
              f"{report['remaining']} left (shard {report['part']}, settings {report['settings_hash']}, "
              f"{report['seconds']:.1f} s) -> {Path(run_dir) / 'explanations'}")
        if report["remaining"]:
            print("rerun the same command to finish", file=sys.stderr)
    return _report_skipped(skipped)


def cmd_explain_table(args: argparse.Namespace) -> int:
    """The per-class modality-share and interaction tables of each run, printed and saved as CSV (``--every``:
    the exact ones of every test prediction, from the stored modality game, printed)."""
    from core.explain import (
        blame_command,
        class_interaction_table,
        class_share_table,
        current_modality_game,
        format_class_interaction_table,
        format_class_share_table,
    )

    skipped: list[str] = []
    for run_dir in catalog.resolve_runs(args.target, _root(args), args.run, skipped):
        name = Path(run_dir).name
        if args.every:
            game, why = current_modality_game(run_dir)
            if game is None:
                print(f"{name}: the modality game of every test prediction {why}; compute it with "
                      f"`{blame_command(run_dir)}`")
                continue
            source, modalities, options = game, args.modality or game.attrs["modalities"], {"save": False}
            table = class_share_table(source, modalities, share="exact", **options)
            print(f"{name}: mean exact modality share per class, every test prediction ({len(game)}; the modality "
                  "game stored by `blame`)")
        else:
            source, options = run_dir, {"settings_hash": args.settings}
            table = class_share_table(source, args.modality, **options)
            modalities = args.modality or [c[len("share_"):-len("_all")] for c in table.columns
                                           if c.startswith("share_") and c.endswith("_all")]
            print(f"{name}: mean modality share per class (all / correct / incorrect predictions)")
        print(format_class_share_table(table, modalities))
        if "path" in table.attrs:
            print(f"saved {table.attrs['path']}")
        if len(table) and int(table["n_flat"].iloc[-1]):
            print(f"{int(table['n_flat'].iloc[-1])} prediction(s) barely depend on their inputs: no share, left out")
        if len(table) and len(modalities) >= 2:
            pairs = class_interaction_table(source, modalities, **options)
            print("mean pairwise modality interaction per class, 95 % t interval (samples)")
            print(format_class_interaction_table(pairs, modalities))
            if "path" in pairs.attrs:
                print(f"saved {pairs.attrs['path']}")
    return _report_skipped(skipped)


def _register_explain(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("explain", help="MM-SHAP explanations of a run's test split (resumable, shardable)")
    p.add_argument("target", help="run folder, or experiment name / .toml / folder (with --run)")
    p.add_argument("--run", action="append", help="only this run of the experiment; repeatable")
    add_explain_arguments(p)  # one flag per field of ExplainSettings and PrecomputeOptions
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="processes explaining at once, each a share of the samples for every run (default: "
                        "$FUSIONLENS_WORKERS, else every core from 64 samples left; 1 runs here; --shard runs here)")
    add_ray_arguments(p, shards=True)
    p.set_defaults(func=cmd_explain)

    p = sub.add_parser("explain-table", help="print and save the per-class modality-share and interaction "
                                              "tables of a run")
    p.add_argument("target", help="run folder, or experiment name / .toml / folder (with --run)")
    p.add_argument("--run", action="append", help="only this run of the experiment; repeatable")
    p.add_argument("--modality", action="append", help="only these modalities")
    p.add_argument("--settings", help="settings hash (default: the default settings where stored)")
    p.add_argument("--every", action="store_true",
                   help="the exact modality shares and interactions of every test prediction, from the modality "
                        "game `blame` stores (printed, not saved), instead of the explained samples' MM-SHAP shares")
    p.set_defaults(func=cmd_explain_table)


# --------------------------------------------------------------------------- check

def cmd_check(args: argparse.Namespace) -> int:
    """The trust checks of each run (core.trust), stored as <run>/trust.json and printed."""
    from core.trust import TrustSettings, check_run, format_trust, trust_path  # imports torch

    settings = TrustSettings(samples=args.samples, seed=args.seed, estimator_samples=args.estimator_samples,
                             seconds=args.seconds, controlled=args.controlled, controlled_modalities=args.modality)
    skipped: list[str] = []
    for run_dir in catalog.resolve_runs(args.target, _root(args), args.run, skipped):
        report = check_run(run_dir, settings, progress=not args.quiet)
        print(format_trust(report))
        print(f"saved {trust_path(run_dir)}")
    return _report_skipped(skipped)


def _register_check(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("check", help="trust checks of a run's explanations, stored as <run>/trust.json "
                                     "(see docs/TRUST.md)")
    p.add_argument("target", help="run folder, or experiment name / .toml / folder (every run, or --run)")
    p.add_argument("--run", action="append", help="only this run of the experiment; repeatable")
    p.add_argument("--controlled", action="store_true",
                   help="also the controlled-variant test: retrain the run with each modality shuffled across "
                        "samples in turn (slower; writes sibling experiments <experiment>--controlled-<modality>)")
    p.add_argument("--modality", action="append",
                   help="with --controlled: shuffle only this modality; repeatable (default: each in turn)")
    p.add_argument("--samples", type=int, default=DEFAULT_SAMPLES, metavar="N",
                   help=f"samples re-explained by the randomisation and controlled checks (default: {DEFAULT_SAMPLES})")
    p.add_argument("--estimator-samples", type=int, default=DEFAULT_ESTIMATOR_SAMPLES, metavar="K",
                   help="samples re-explained with a 10x budget by the estimator check "
                        f"(default: {DEFAULT_ESTIMATOR_SAMPLES}; 0 skips it)")
    p.add_argument("--seconds", type=float, default=DEFAULT_SECONDS, metavar="T",
                   help="time for the randomisation and estimator checks together: past it they take no new "
                        f"sample once they have 3 and 1 (default: {DEFAULT_SECONDS:g})")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="seeds the samples, re-initialisations, "
                                                                    "bootstrap and shuffles (default: 0)")
    p.set_defaults(func=cmd_check)


# --------------------------------------------------------------------------- robustness

def cmd_robustness(args: argparse.Namespace) -> int:
    """Each run's robustness table (core.robustness), stored as <run>/robustness.json and printed."""
    from core.robustness import (  # imports torch
        format_robustness,
        load_robustness,
        robustness_path,
        robustness_runs,
        robustness_settings_from_args,
    )

    settings = robustness_settings_from_args(args)
    skipped: list[str] = []
    run_dirs = catalog.resolve_runs(args.target, _root(args), args.run, skipped)
    if args.ray:  # one Ray task per run (core.scale), the same robustness.json
        out = robustness_on_ray(run_dirs, settings, force=args.force, share_run=args.share_run or "auto",
                                address=args.ray, progress=not args.quiet)
        for run_dir in run_dirs:
            if (table := load_robustness(run_dir)) is not None:
                print(format_robustness(table))
        print(format_ray_summary("robustness", out))
        return _report_skipped(skipped)
    report = robustness_runs(run_dirs, settings, force=args.force, share_run=args.share_run or "auto",
                             progress=not args.quiet)
    for run_dir in run_dirs:
        table = load_robustness(run_dir)
        if table is not None:
            print(format_robustness(table))
    print(f"robustness of {len(run_dirs)} run(s): {len(report['computed'])} computed, {len(report['kept'])} already "
          f"stored ({report['seconds']:.1f} s, {report['encodings']} encodings in {report['encode_seconds']:.1f} s) "
          f"-> {robustness_path('<run>')}")
    return _report_skipped(skipped)


def _register_robustness(sub: argparse._SubParsersAction) -> None:
    from core.robustness import add_robustness_arguments

    p = sub.add_parser("robustness", help="each run's accuracy with a modality missing, under noise and missing at "
                                          "random, stored as <run>/robustness.json (see docs/ROBUSTNESS.md)")
    p.add_argument("target", help="run folder, or experiment name / .toml / folder (every run, or --run)")
    p.add_argument("--run", action="append", help="only this run of the experiment; repeatable")
    p.add_argument("--force", action="store_true", help="compute again tables already stored with these settings")
    p.add_argument("--share-run", metavar="RUN", help="the run whose explanations are recomputed on perturbed "
                                                      "inputs (default: the build's first explained run)")
    add_robustness_arguments(p)  # one flag per field of RobustnessSettings
    add_ray_arguments(p)
    p.set_defaults(func=cmd_robustness)


# --------------------------------------------------------------------------- blame

def cmd_blame(args: argparse.Namespace) -> int:
    """Each run's modality blame for errors (core.explain), stored as <run>/blame.parquet and summarised."""
    from core.explain import blame_path, blame_runs, blame_sentences, blame_table, load_blame  # imports torch

    skipped: list[str] = []
    run_dirs = catalog.resolve_runs(args.target, _root(args), args.run, skipped)
    report = blame_runs(run_dirs, force=args.force, progress=not args.quiet)
    for run_dir in run_dirs:
        frame = load_blame(run_dir)
        if frame is not None:
            print(f"{Path(run_dir).name}: " + " ".join(blame_sentences(blame_table(frame))))
    print(f"blame of {len(run_dirs)} run(s): {len(report['computed'])} computed, {len(report['kept'])} already "
          f"stored ({report['seconds']:.1f} s) -> {blame_path('<run>')}")
    return _report_skipped(skipped)


def _register_blame(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("blame", help="which modality pushed each test prediction toward the wrong class (exact "
                                     "modality Shapley values of the logit margin), stored as <run>/blame.parquet "
                                     "(see docs/EXPLAIN.md)")
    p.add_argument("target", help="run folder, or experiment name / .toml / folder (every run, or --run)")
    p.add_argument("--run", action="append", help="only this run of the experiment; repeatable")
    p.add_argument("--force", action="store_true", help="compute again tables already stored for this training")
    p.set_defaults(func=cmd_blame)


# --------------------------------------------------------------------------- efficiency

def cmd_efficiency(args: argparse.Namespace) -> int:
    """The reference's efficiency table of each adaptive run's modalities (core.adaptive), printed and saved."""
    from core.adaptive import efficiency_table, format_efficiency_table
    from core.io import atomic_path

    exp = load_experiment(args.experiment)
    exp_dir = _root(args) / exp.name
    entries = catalog.scan_runs(exp_dir, _root(args))
    runs = [e.run for e in entries if e.usable and e.run is not None]
    skipped = [f"run {e.name} ({e.state}): {e.message}" for e in entries if not e.usable]
    bases = {}
    for run in sorted(runs, key=lambda r: r.name):  # one table per encoder set's adaptive runs
        if run.config.get("strategy") == "adaptive":
            bases.setdefault(str(run.config.get("encoder_set", "")), run.name)
    if not bases:
        raise ConfigError(f"experiment {exp.name} has no adaptive run",
                          fix=f"add a [fusion.adaptive] table to the experiment file, then `{cli_command()} train "
                              f"{args.experiment}`")
    tables = [efficiency_table(runs, name).assign(encoder_set=tag) for tag, name in bases.items()]
    for table in tables:
        print(format_efficiency_table(table.drop(columns="encoder_set")))
    import pandas as pd

    with atomic_path(exp_dir / "efficiency.csv") as tmp:
        pd.concat(tables, ignore_index=True).to_csv(tmp, index=False, float_format="%.6g")
    print(f"saved {exp_dir / 'efficiency.csv'}")
    return _report_skipped(skipped)


def _register_efficiency(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("efficiency", help="print and save the efficiency table of the adaptive runs (accuracy, "
                                          "selection rate per modality, GFLOPs and the saving; "
                                          "runs/<experiment>/efficiency.csv)")
    p.add_argument("experiment")
    p.set_defaults(func=cmd_efficiency)


# --------------------------------------------------------------------------- report

def cmd_report(args: argparse.Namespace) -> int:
    """One self-contained HTML report of a run (ui.report), readable offline."""
    # The one place core reaches into the dashboard package: the CLI is the application shell, and the
    # report is drawn with the dashboard's own figures (a plain module, no streamlit; tests/test_layers.py).
    from ui.report import write_report

    root = _root(args)
    name = args.experiment if "/" not in args.experiment and (root / args.experiment).is_dir() \
        else load_experiment(args.experiment).name
    path = write_report(root, name, args.run, args.output, progress=not args.quiet)
    print(f"report written to {path} (open it in any browser; it needs no server or network)")
    return 0


def _register_report(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="write one self-contained HTML report of a run (story, results, modality "
                                      "shares, confusion matrix, sample cards), readable offline")
    p.add_argument("experiment", help="experiment name under the runs root, or its .toml")
    p.add_argument("--run", help="the run (default: the best run over every modality)")
    p.add_argument("--output", metavar="PATH",
                   help="the file to write, or a folder (default: <runs root>/<experiment>/reports/<run>.html)")
    p.set_defaults(func=cmd_report)


def main(argv: Sequence[str] | None = None, prog: str = CLI_NAME) -> int:
    """The ``fusionlens`` console command (``python -m core`` passes its own ``prog``)."""
    from core.threads import ENV as THREADS_ENV, parse_threads

    parser = build_parser(prog)
    args = parser.parse_args(argv)
    saved_threads = os.environ.get(THREADS_ENV)
    # --quiet also silences transformers' own bars ("Loading weights"): they follow huggingface_hub's
    # switch, read when transformers is imported (later, inside the command)
    hf_bars = "HF_HUB_DISABLE_PROGRESS_BARS"
    quiet_hf = bool(getattr(args, "quiet", False)) and hf_bars not in os.environ
    if quiet_hf:
        os.environ[hf_bars] = "1"
    try:
        if args.threads is not None:
            parse_threads(args.threads)  # a bad value fails here, before any work
            os.environ[THREADS_ENV] = args.threads  # read by every job, and by worker processes
        return int(args.func(args) or 0)
    except FusionLensError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; finished steps are kept, rerun the same command to resume", file=sys.stderr)
        return 130
    finally:
        if quiet_hf:
            os.environ.pop(hf_bars, None)
        if args.threads is not None:  # main() may be called in-process (tests): leave the environment as found
            if saved_threads is None:
                os.environ.pop(THREADS_ENV, None)
            else:
                os.environ[THREADS_ENV] = saved_threads

"""``python -m core <subcommand>``: every step of an experiment from the shell.

Steps are resumable: finished runs, explanations and projections whose
settings match are kept, so an interrupted command is simply run again.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

from core.errors import FusionLensError


def _root(args: argparse.Namespace) -> Path:
    from core.experiment import runs_root

    return runs_root(args.runs_dir)


def cmd_prepare(args: argparse.Namespace) -> int:
    from core.experiment import load_experiment
    from core.train import prepare_dataset

    exp = load_experiment(args.experiment)
    ds = prepare_dataset(exp, _root(args), progress=not args.quiet)
    counts = ds.frame.groupby("split").size().to_dict()
    print(f"{exp.name}: {len(ds.frame)} samples, {len(ds.classes)} classes, splits {counts}, "
          f"modalities {', '.join(f'{m} ({k})' for m, k in ds.modalities.items())}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from core.experiment import load_experiment
    from core.train import train_experiment

    exp = load_experiment(args.experiment)
    dirs = train_experiment(exp, _root(args), force=args.force, progress=not args.quiet, only=args.run,
                            stage=args.stage, full=args.full)
    print(f"{len(dirs)} run(s) ready under {_root(args) / exp.name}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from core.train import reproduce_predictions

    ok = True
    for run in args.run_dir:
        report = reproduce_predictions(Path(run))
        ok &= report["same_topk_labels"] and report["max_abs_prob_diff"] < 1e-4
        print(json.dumps(report))
    return 0 if ok else 1


def cmd_results(args: argparse.Namespace) -> int:
    from core.experiment import load_experiment
    from core.results import format_results, save_results

    exp = load_experiment(args.experiment)
    frame, problems = save_results(_root(args) / exp.name)
    print(format_results(frame))
    for p in problems:
        print(f"skipped {p}", file=sys.stderr)
    print(f"saved {_root(args) / exp.name / 'results.csv'}")
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    """prepare + train + results (+ projections and explanations where available)."""
    from core.experiment import load_experiment
    from core.results import format_results, save_results
    from core.train import prepare_dataset, train_experiment

    exp = load_experiment(args.experiment)
    root = _root(args)
    prepare_dataset(exp, root, progress=not args.quiet)
    train_experiment(exp, root, force=args.force, progress=not args.quiet, full=args.full)
    frame, _ = save_results(root / exp.name)
    for hook in BUILD_HOOKS:
        hook(exp, root, args)
    print(format_results(frame))
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from core.bundle import list_runs

    root = _root(args)
    exps = sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    if not exps:
        print(f"no experiments under {root}; build one with `python -m core build emoji`")
    for e in exps:
        runs = list_runs(e)
        print(f"{e.name}: {len(runs)} run(s)")
        for r in runs:
            print(f"  {r.name}")
    return 0


#: Extra steps of ``build`` (projections, explanations) registered by their modules.
BUILD_HOOKS: list = []


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m core", description="FusionLens: train, explain and explore "
                                     "multimodal fusion classifiers.")
    parser.add_argument("--runs-dir", help="runs root (default $FUSIONLENS_RUNS or ./runs)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("prepare", help="fetch/generate and validate the dataset, fix the split")
    p.add_argument("experiment", help="experiment name (experiments/<name>.toml) or path to a .toml")
    p.set_defaults(func=cmd_prepare)

    p = sub.add_parser("train", help="train unimodal models and fusion heads (missing ones only)")
    p.add_argument("experiment")
    p.add_argument("--run", action="append", help="only this run (and the unimodal runs it needs); repeatable")
    p.add_argument("--stage", choices=["unimodal", "fusion"], help="only one training stage")
    p.add_argument("--force", action="store_true", help="retrain even if a matching bundle exists")
    p.add_argument("--full", action="store_true", help="every encoder set of the experiment's grid")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="rebuild a run from its bundle and check it reproduces its predictions")
    p.add_argument("run_dir", nargs="+")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("results", help="print and save the comparison table (runs/<experiment>/results.csv)")
    p.add_argument("experiment")
    p.set_defaults(func=cmd_results)

    p = sub.add_parser("build", help="run a whole experiment: prepare, train, results, precompute")
    p.add_argument("experiment")
    p.add_argument("--force", action="store_true")
    p.add_argument("--full", action="store_true", help="the whole grid where an experiment defines one")
    p.add_argument("--skip-precompute", action="store_true", help="no projections or explanations")
    p.set_defaults(func=cmd_build)

    p = sub.add_parser("list", help="list experiments and runs")
    p.set_defaults(func=cmd_list)
    for register in SUBCOMMANDS:
        register(sub)
    return parser


#: Subcommands contributed by other modules (explain, project): callables taking the subparsers.
SUBCOMMANDS: list = []


# --------------------------------------------------------------------------- project

def _project_targets(target: str, root: Path, runs: Sequence[str] | None) -> list[Path]:
    """Run folders named by an experiment (name, .toml, or folder under the runs root) or a run folder."""
    from core.bundle import list_runs
    from core.errors import ConfigError

    path = Path(target)
    if path.is_dir() and (path / "config.json").is_file():
        return [path]
    exp_dir = root / target if "/" not in target and (root / target).is_dir() else None
    if exp_dir is None:
        from core.experiment import load_experiment

        exp_dir = root / load_experiment(target).name
    found = list_runs(exp_dir)
    if runs:
        by_name = {p.name: p for p in found}
        unknown = [r for r in runs if r not in by_name]
        if unknown:
            raise ConfigError(f"unknown run(s) {unknown} in {exp_dir}",
                              fix=f"use names from: {', '.join(by_name) or '(none built yet)'}")
        found = [by_name[r] for r in runs]
    if not found:
        raise ConfigError(f"no built runs under {exp_dir}", fix=f"build them first: python -m core build {target}")
    return found


def cmd_project(args: argparse.Namespace) -> int:
    """PCA / t-SNE / UMAP of each run's per-modality and fused test embeddings, stored with the run."""
    from core.projection import project_runs

    run_dirs = _project_targets(args.target, _root(args), args.run)
    counts = project_runs(run_dirs, methods=args.methods, seed=args.seed, progress=not args.quiet)
    print(f"projections of {len(run_dirs)} run(s): {counts['computed']} computed, {counts['reused']} reused from "
          f"identical embeddings, {counts['kept']} already stored")
    return 0


def _register_project(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("project", help="store PCA / t-SNE / UMAP projections of each run's embeddings")
    p.add_argument("target", help="experiment name, .toml, experiment folder under the runs root, or a run folder")
    p.add_argument("--run", action="append", help="only this run of the experiment; repeatable")
    p.add_argument("--methods", nargs="+", default=["pca", "tsne", "umap"], choices=["pca", "tsne", "umap"])
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_project)


def _project_after_build(exp, root: Path, args: argparse.Namespace) -> None:
    """Build step: projections of every run (what the Embeddings page shows without computing)."""
    if getattr(args, "skip_precompute", False):
        return
    from core.bundle import list_runs
    from core.projection import project_runs

    run_dirs = list_runs(root / exp.name)
    if run_dirs:
        project_runs(run_dirs, progress=not getattr(args, "quiet", False))


SUBCOMMANDS.append(_register_project)
BUILD_HOOKS.append(_project_after_build)


# --------------------------------------------------------------------------- explain

def _grid_arg(value: str | None) -> int | str | None:
    if value is None:
        return None
    return int(value) if value.isdigit() else value


def _explain_command(args: argparse.Namespace, run_dir: Path) -> str:
    """The command that resumes this precompute (recorded with the shard's request)."""
    parts = ["python -m core explain", str(run_dir)]
    for flag, value, default in (("--n", args.n, None), ("--seed", args.seed, 0), ("--shard", args.shard, "0/1"),
                                 ("--method", args.method, "auto"), ("--output", args.output, "pred_prob"),
                                 ("--permutations", args.permutations, 10), ("--walks", args.walks, None),
                                 ("--grid", args.grid, None)):
        if value != default:
            parts.append(f"{flag} {value}")
    parts += [f"--modality {m}" for m in args.modality or []]
    return " ".join(parts)


def cmd_explain(args: argparse.Namespace) -> int:
    """MM-SHAP of (a seeded sample of) each run's test split, stored under <run>/explanations/."""
    from core.explain import explain_run

    run_dirs = _project_targets(args.target, _root(args), args.run)
    for run_dir in run_dirs:
        command = _explain_command(args, run_dir)
        report = explain_run(
            run_dir, n=args.n, seed=args.seed, shard=args.shard, method=args.method, output=args.output,
            n_permutations=args.permutations, grid=_grid_arg(args.grid), n_walks=args.walks,
            modalities=args.modality, progress=not args.quiet, command=command,
        )
        print(f"{report['run']}: {report['computed']} sample(s) explained, {report['skipped']} already stored, "
              f"{report['remaining']} left (shard {report['part']}, settings {report['settings_hash']}, "
              f"{report['seconds']:.1f} s) -> {Path(run_dir) / 'explanations'}")
        if report["remaining"]:
            print("rerun the same command to finish", file=sys.stderr)
    return 0


def cmd_explain_table(args: argparse.Namespace) -> int:
    """The per-class modality-share table of each run, printed and saved as CSV."""
    from core.explain import class_share_table, format_class_share_table

    for run_dir in _project_targets(args.target, _root(args), args.run):
        table = class_share_table(run_dir, args.modality, settings_hash=args.settings)
        print(f"{Path(run_dir).name}: mean modality share per class (all / correct / incorrect predictions)")
        print(format_class_share_table(table, args.modality))
        if "path" in table.attrs:
            print(f"saved {table.attrs['path']}")
    return 0


def _register_explain(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("explain", help="MM-SHAP explanations of a run's test split (resumable, shardable)")
    p.add_argument("target", help="run folder, or experiment name / .toml / folder (with --run)")
    p.add_argument("--run", action="append", help="only this run of the experiment; repeatable")
    p.add_argument("--n", type=int, help="explain a seeded sample of N test samples (default: all)")
    p.add_argument("--seed", type=int, default=0, help="draws the sample and seeds the estimator (default 0)")
    p.add_argument("--shard", default="0/1", help="i/n: explain every n-th sample from position i (default 0/1)")
    p.add_argument("--method", default="auto", choices=["auto", "exact", "permutation", "kernel", "recombined"],
                   help="auto (default): exact by factorised tables where cheaper, else recombined; "
                        "permutation = the reference MM-SHAP estimator")
    p.add_argument("--output", default="pred_prob",
                   help="pred_prob (default), true_prob, logit, or class:NAME")
    p.add_argument("--permutations", type=int, default=10, help="permutations of the reference estimator (10)")
    p.add_argument("--walks", type=int, help="walks of the recombined estimator (default: from its budget)")
    p.add_argument("--grid", help="image patch grid: mean (default, reference rule on the mean text length), "
                                  "total, or an integer p")
    p.add_argument("--modality", action="append", help="explain only these modalities (others stay present)")
    p.set_defaults(func=cmd_explain)

    p = sub.add_parser("explain-table", help="print and save the per-class modality-share table of a run")
    p.add_argument("target", help="run folder, or experiment name / .toml / folder (with --run)")
    p.add_argument("--run", action="append", help="only this run of the experiment; repeatable")
    p.add_argument("--modality", action="append", help="only these modalities")
    p.add_argument("--settings", help="settings hash (default: the default settings where stored)")
    p.set_defaults(func=cmd_explain_table)


#: Samples the build explains: the best fused run gets the first count, up to two
#: representative fusion runs the second; the whole step stops after the seconds.
EXPLAIN_BUILD_SAMPLES = (100, 50)
EXPLAIN_BUILD_SECONDS = 120.0


def _explain_after_build(exp, root: Path, args: argparse.Namespace) -> None:
    """Build step: MM-SHAP of a seeded sample of the test split on the fused runs that matter."""
    if getattr(args, "skip_precompute", False):
        return
    import time

    from core.explain import explain_run, select_build_runs

    start = time.perf_counter()
    for i, run_dir in enumerate(select_build_runs(root / exp.name)):
        left = EXPLAIN_BUILD_SECONDS - (time.perf_counter() - start)
        if left <= 0:
            print(f"explanations: time budget spent; finish with `python -m core explain {run_dir} "
                  f"--n {EXPLAIN_BUILD_SAMPLES[min(i, 1)]} --seed {exp.seed}`", file=sys.stderr)
            continue
        n = EXPLAIN_BUILD_SAMPLES[min(i, 1)]
        report = explain_run(run_dir, n=n, seed=exp.seed, progress=not getattr(args, "quiet", False),
                             time_limit=left, command=f"python -m core explain {run_dir} --n {n} --seed {exp.seed}")
        if report["remaining"]:
            print(f"explanations of {report['run']}: {report['remaining']} left; finish with "
                  f"`python -m core explain {run_dir} --n {n} --seed {exp.seed}`", file=sys.stderr)


SUBCOMMANDS.append(_register_explain)
BUILD_HOOKS.append(_explain_after_build)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except FusionLensError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; finished steps are kept, rerun the same command to resume", file=sys.stderr)
        return 130

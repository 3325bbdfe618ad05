"""The build's explain step at one fixed budget: the picked runs alone against the shared sample of every run first.

    .venv/bin/python benchmarks/bench_explain_build_plan.py [--experiment emoji] [--seconds 60] [--every 64]

On fresh copies of a built experiment (``runs/<experiment>``, built with ``python -m core build emoji``; its
explanations left out), in one run, the build's own explain step (``core.pipeline``, through ``run_build`` with
projections, blame and robustness switched off, so the earlier steps only find their work done) within
``--seconds``:

* **picked runs only**: ``[precompute] explain_every_run = 0``, the build's default (the best fused run,
  MultConcat and late-average over every modality, every test sample each);
* **shared sample first**: ``explain_every_run = --every`` (what ``experiments/emoji.toml`` sets): the same
  seeded samples for every fused run first (the samples more runs ask for come first), then the picked runs.

Prints each mode's explanations, runs with any, and the ratio of explanations against the first mode.

Measured on the 2-core build machine (emoji, 53 fused runs, ``--every 64``, each line one run of the benchmark):

* ``--seconds 60``: picked runs only 881 explanations of 3 runs; shared sample first 2,229 of 53 runs
  (**2.53x**); the steps took 63.9 and 66.6 s (the explanations in flight when the time ran out, the last
  writes of 53 runs);
* ``--seconds 10``: 50 against 212 (4.24x).

(With the shared sample given half of the budget in a call of its own, then a second call for the picked runs,
it was 955 against 2,096 at 60 s (2.19x) and 59 against 2 at 8 s: each call started its worker processes
again.)
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--experiment", default="emoji", help="a demo experiment built into runs/ (default: emoji)")
    ap.add_argument("--seconds", type=float, default=60.0, help="the explain step's budget")
    ap.add_argument("--every", type=int, default=64, help="explain_every_run of the second mode")
    args = ap.parse_args()

    from core.experiment import EXPERIMENTS_DIR, PROJECT_ROOT, load_experiment
    from core.explain import load_explanation_summaries
    from core.pipeline import run_build

    built = PROJECT_ROOT / "runs" / args.experiment
    source = EXPERIMENTS_DIR / f"{args.experiment}.toml"
    if not (built / "results.csv").is_file() or not source.is_file():
        sys.exit(f"{built} is not built: python -m core build {args.experiment}")
    text = source.read_text()
    head = text[:text.index("[precompute]")] if "[precompute]" in text else text
    tmp = Path(tempfile.mkdtemp(prefix="fusionlens-explain-plan-"))
    rows = []
    for label, every in (("picked runs only", 0), ("shared sample first", args.every)):
        root = tmp / f"every{every}" / "runs"
        shutil.copytree(built, root / args.experiment, ignore=shutil.ignore_patterns("explanations", "trust.json"))
        toml = root.parent / f"{args.experiment}.toml"
        toml.write_text(head + f"[precompute]\nprojections = []\nblame_seconds = 0\nrobustness_seconds = 0\n"
                               f"explain_seconds = {args.seconds}\nexplain_every_run = {every}\n")
        start = time.perf_counter()
        ctx = run_build(load_experiment(toml), root, progress=False)
        seconds = next(s for name, _, _, s in ctx.log if name == "explain")
        counts = [len(frame) for run in sorted((root / args.experiment).iterdir())
                  if (run / "explanations").is_dir()
                  for frame in [load_explanation_summaries(run)] if frame is not None]
        rows.append((label, every, sum(counts), len(counts), seconds, time.perf_counter() - start))
    base = rows[0][2]
    print(f"\n{args.experiment}: the explain step within {args.seconds:.0f} s, on fresh copies, in one run\n")
    print(f"{'mode':22s} {'every':>5s} {'explanations':>12s} {'runs':>5s} {'step s':>7s} {'vs first':>9s}")
    for label, every, count, runs, seconds, _ in rows:
        print(f"{label:22s} {every:5d} {count:12d} {runs:5d} {seconds:7.1f} {count / max(base, 1):8.2f}x")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

"""Start-up of a dashboard page view: imports, then the experiment's dataset and one run bundle.

    .venv/bin/python benchmarks/bench_page_startup.py [--repeats 5] [--runs-dir DIR --experiment NAME --run RUN]

Builds a tiny seeded experiment (image + text, one fusion method, no
precompute) unless ``--runs-dir`` names a built one, then measures, each in a
fresh Python process (median of ``--repeats``, the rounds interleaved so that
the machine's load hits every measurement alike):

* ``torch``: ``import torch`` alone, the baseline of the ratios;
* ``imports``: what a page imports: streamlit, the dashboard's UI package
  (``ui``, its figure builders, loaders, sidebar and queries, where that package
  exists; else the former ``core.dashboard`` and ``core.figures``) and
  ``views/_shared``;
* ``page``: those imports, then the experiment's dataset read back
  (``load_experiment_dataset``: ``dataset.json`` + ``dataset.parquet``) and one run
  bundle read through the run catalog (config, metrics, predictions, headers).

Prints the medians, each as a ratio to ``torch``, and whether torch got
imported on the way (it should not: reading a dataset or a bundle needs no
model). ``--compare-with DIR`` measures another checkout the same way in the
same rounds, e.g. the code before a change:
``mkdir /tmp/before && git archive HEAD | tar -x -C /tmp/before``.
Before the redesign of issue 10 (dataset read through ``core.train``), on the
2-core build machine: imports 0.75 s; imports + dataset + run 2.92 s, with
torch imported.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

EXPERIMENT = """
name = "startup"
seed = 0
[dataset]
source = "manifest"
manifest = "data/manifest.csv"
[modalities.image]
kind = "image"
encoder = "small-cnn"
encoder_kwargs = { image_size = 16, width = 4, out_dim = 16 }
[modalities.title]
kind = "text"
encoder = "minilm"
encoder_kwargs = { max_length = 12 }
[fusion]
methods = ["concat"]
late = []
[train.unimodal]
epochs = 2
batch_size = 16
hidden = 16
[train.fusion]
epochs = 2
batch_size = 16
dim = 8
"""

#: The UI package's modules a page imports (the redesign), and the former ones (fallback).
UI_MODULES = ("ui", "ui.figures", "ui.loaders", "ui.sidebar", "ui.queries")
FORMER_UI_MODULES = ("core.dashboard", "core.figures")

CHILD = r"""
import importlib, importlib.util, json, sys, time
from pathlib import Path
args = json.loads(sys.argv[1])
t0 = time.perf_counter()
imported = []
if args["what"] == "torch":
    import torch  # noqa: F401
    print(json.dumps({"seconds": time.perf_counter() - t0}))
    raise SystemExit
import streamlit  # noqa: F401
imported.append("streamlit")

def have(name):  # a module of the measured checkout (not one an editable install of another adds)
    try:
        spec = importlib.util.find_spec(name)
    except ModuleNotFoundError:
        return False
    origins = [spec.origin] if spec is not None and spec.origin else list(getattr(spec, "submodule_search_locations", None) or [])
    return any(str(o).startswith(args["tree"]) for o in origins)

modules = [m for m in args["ui"] if have(m)] if have("ui.figures") else [m for m in args["former"] if have(m)]
for name in modules + (["views._shared"] if have("views._shared") else []):
    importlib.import_module(name)
    imported.append(name)
t_imports = time.perf_counter() - t0
result = {"imports": t_imports, "modules": imported}
if args["what"] == "page":
    try:
        from core.data import load_experiment_dataset
    except ImportError:  # before the redesign: the dataset was read through core.train
        from core.train import load_experiment_dataset
    from core.catalog import run_entry
    root = Path(args["root"])
    ds, info = load_experiment_dataset(root / args["experiment"])
    entry = run_entry(root, args["experiment"], args["run"])
    assert entry.usable and entry.run is not None, entry.message
    result.update(page=time.perf_counter() - t0, samples=len(ds.frame), test=len(entry.run.predictions))
result["torch"] = "torch" in sys.modules
print(json.dumps(result))
"""


def build_tiny(folder: Path) -> tuple[Path, str, str]:
    """A tiny built experiment (no projections or explanations): (runs root, experiment, a fused run)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from core.data.synthetic import make_synthetic_manifest
    from core.experiment import load_experiment
    from core.pipeline import run_build

    make_synthetic_manifest(folder / "data", n_classes=4, per_class=12)
    (folder / "startup.toml").write_text(EXPERIMENT)
    exp = load_experiment(folder / "startup.toml")
    root = folder / "runs"
    run_build(exp, root, skip_precompute=True, progress=False)
    return root, exp.name, "concat-image+title"


def measure(what: str, root: Path, experiment: str, run: str, tree: Path = ROOT) -> dict:
    """One fresh process importing from the checkout ``tree``."""
    args = {"what": what, "root": str(root), "experiment": experiment, "run": run, "tree": str(tree),
            "ui": list(UI_MODULES), "former": list(FORMER_UI_MODULES)}
    env = {**os.environ, "PYTHONPATH": str(tree), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-c", CHILD, json.dumps(args)], cwd=tree, env=env, capture_output=True,
                          text=True, timeout=600)
    if done.returncode != 0:
        raise SystemExit(f"{what} measurement failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--runs-dir", type=Path, help="a runs root holding a built experiment (default: build one)")
    parser.add_argument("--experiment", default="startup")
    parser.add_argument("--run", default="concat-image+title")
    parser.add_argument("--compare-with", type=Path, metavar="DIR",
                        help="another checkout (e.g. `git archive HEAD | tar -x -C DIR`), measured alike")
    args = parser.parse_args()
    if args.runs_dir is None:
        folder = Path(tempfile.mkdtemp(prefix="fusionlens-bench-startup-"))
        root, experiment, run = build_tiny(folder)
        print(f"tiny experiment built under {root}")
    else:
        root, experiment, run = args.runs_dir.resolve(), args.experiment, args.run
    trees = {"this checkout": ROOT, **({"compared": args.compare_with.resolve()} if args.compare_with else {})}
    torch_s: list[float] = []
    found: dict[str, dict] = {name: {"imports": [], "page": [], "torch": set(), "modules": []} for name in trees}
    for _ in range(args.repeats):
        torch_s.append(measure("torch", root, experiment, run)["seconds"])
        for name, tree in trees.items():
            imports = measure("imports", root, experiment, run, tree)
            page = measure("page", root, experiment, run, tree)
            found[name]["imports"].append(imports["imports"])
            found[name]["page"].append(page["page"])
            found[name]["torch"] |= {imports["torch"], page["torch"]}
            found[name]["modules"] = page["modules"]
    base = statistics.median(torch_s)
    print(f"median of {args.repeats} fresh processes each; import torch alone: {base:.2f} s (the baseline)")
    for name, tree in trees.items():
        f = found[name]
        print(f"{name} ({tree}): page imports {', '.join(f['modules'])}")
        for label, key in (("page imports", "imports"), ("page imports + dataset + one run", "page")):
            med = statistics.median(f[key])
            print(f"  {label:34s} {med:6.2f} s   ratio to torch {med / base:5.2f}")
        print(f"  torch imported by the page: {'yes' if True in f['torch'] else 'no'}")
    print("before the redesign (same machine, earlier): imports 0.75 s; imports + dataset + run 2.92 s, "
          "torch imported")


if __name__ == "__main__":
    main()

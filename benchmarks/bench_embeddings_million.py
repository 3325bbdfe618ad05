"""The Embeddings page on a run of 1,000,000 test samples, in headless Chromium.

    .venv/bin/python benchmarks/bench_embeddings_million.py [--samples 1000000] [--every-point]

Builds a synthetic experiment through the public API: a manifest of two tabular
modalities (4 numeric columns each, 10 classes) -> ``prepare_dataset``; one
fusion run bundle written by ``save_run`` with seeded, class-dependent
probabilities and embeddings (``a``, ``b``, ``fused``); its PCA projections by
``project_runs`` (t-SNE and UMAP at this size: ``bench_projection_scale.py
--big``). Then serves the dashboard on 127.0.0.1 and, in headless Chromium:

* first render: from ``goto`` of the Embeddings page to the running indicator
  gone, every plot drawn (the density view: binned counts and a drawn sample);
* lasso update: a lasso over the left half of the first plot until the
  "N selected" line and the table are shown;
* with ``--every-point`` also the WebGL scatter of every point (the toggle).

Prints the seconds, the selection size, the dashboard server's resident memory
(peak and now, from /proc) and, as the baseline measured in the same run, the
same page on a 10,000-sample copy of the run (``--baseline``), so the ratios
say what the 100x more points cost.
"""
from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RUN = "concat-a+b"
N_CLASSES = 10


def million_experiment(folder: Path, n_test: int, seed: int = 0) -> tuple[dict, np.ndarray]:
    """(experiment ``big`` as a dict, its class centres): its manifest written under ``folder/data``, ``n_test``
    test samples of two tabular modalities ``a`` and ``b`` (4 numeric columns each, 10 classes around seeded
    centres, 2 % train and 2 % val), one concat fusion run."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    n = int(np.ceil(n_test / 0.96))  # 2 % train and 2 % val: what prepare's split checks need
    labels = rng.integers(0, N_CLASSES, n)
    centres = rng.normal(scale=3.0, size=(N_CLASSES, 8))
    values = centres[labels] + rng.normal(size=(n, 8))
    frame = pd.DataFrame({"id": [f"s{i:07d}" for i in range(n)], "label": [f"class-{c}" for c in labels]})
    for j in range(8):
        frame[f"x{j}"] = values[:, j].astype(np.float32)
    (folder / "data").mkdir(parents=True, exist_ok=True)
    frame.to_csv(folder / "data" / "manifest.csv", index=False)
    return {"name": "big", "seed": seed,
            "dataset": {"source": "manifest", "manifest": str(folder / "data" / "manifest.csv"),
                        "split": {"train": 0.02, "val": 0.02, "test": 0.96}},
            "modalities": {"a": {"kind": "tabular", "encoder": "mlp", "columns": [f"x{j}" for j in range(4)]},
                           "b": {"kind": "tabular", "encoder": "mlp", "columns": [f"x{j}" for j in range(4, 8)]}},
            "fusion": {"methods": ["concat"], "late": [], "subsets": [["a", "b"]]},
            "train": {"unimodal": {"epochs": 3, "batch_size": 256}, "fusion": {"epochs": 3, "batch_size": 256,
                                                                                 "dim": 16}}}, centres


def build(folder: Path, n_test: int, seed: int = 0) -> Path:
    """A runs root with experiment ``big``: ``n_test`` test samples and one fusion run (a bundle of seeded
    predictions and embeddings, not trained: the page only reads them)."""
    import torch

    from core.bundle import save_run
    from core.data import prepare_dataset
    from core.experiment import parse_experiment
    from core.metrics import classification_metrics, predictions_frame
    from core.projection import project_runs

    raw, centres = million_experiment(folder, n_test, seed)
    rng = np.random.default_rng(seed + 1)
    root = folder / "runs"
    t0 = time.perf_counter()
    ds = prepare_dataset(parse_experiment(raw), root, progress=False)
    print(f"prepare_dataset of {len(ds.frame):,} manifest rows: {time.perf_counter() - t0:.1f} s")
    ids = ds.ids("test")
    y = ds.label_indices(ids)
    logits = rng.normal(size=(len(ids), N_CLASSES)) + 2.5 * np.eye(N_CLASSES)[y]
    probs = (np.exp(logits) / np.exp(logits).sum(1, keepdims=True)).astype(np.float32)
    emb = {m: (centres[y][:, k * 4:(k + 1) * 4] + rng.normal(scale=0.8, size=(len(ids), 4))).astype(np.float32)
           for k, m in enumerate(("a", "b"))}
    emb["fused"] = np.concatenate([emb["a"], emb["b"]], 1)
    metrics = classification_metrics(y, probs, ds.classes)
    metrics.update({"n_params": 1000, "n_params_head": 100, "train_seconds": 1.0, "inference_ms_per_sample": 0.01})
    config = {"experiment": "big", "run": RUN, "strategy": "intermediate", "fusion": "concat", "modalities": ["a", "b"],
              "encoders": {m: {"name": "mlp", "kwargs": {}} for m in ("a", "b")},
              "head": {"type": "intermediate", "in_dims": [4, 4], "n_classes": N_CLASSES, "fusion": "concat"},
              "classes": ds.classes, "seed": seed, "encoder_set": ""}
    t0 = time.perf_counter()
    save_run(root / "big" / RUN, config, {"head.weight": torch.zeros(N_CLASSES, 8)},
             predictions_frame(ids, y, probs, ds.classes), emb, metrics)
    print(f"run bundle of {len(ids):,} test samples: {time.perf_counter() - t0:.1f} s")
    t0 = time.perf_counter()
    project_runs([root / "big" / RUN], methods=["pca"], progress=False)
    print(f"PCA of a, b and fused ({len(ids):,} points each, trustworthiness estimated): "
          f"{time.perf_counter() - t0:.1f} s")
    return root


def _rss_mb(pid: int) -> tuple[float, float]:
    """(peak, current) resident memory of a process in MB, from /proc/<pid>/status."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmHWM", "VmRSS"):
            fields[key] = int(value.split()[0]) / 1024
    return fields.get("VmHWM", float("nan")), fields.get("VmRSS", float("nan"))


def time_page(root: Path, every_point: bool) -> dict[str, float]:
    import os
    import subprocess

    from tests._browser import ROOT as APP_ROOT, chromium_page, free_port, settle, stop, wait_healthy

    port = free_port()
    env = {**os.environ, "FUSIONLENS_RUNS": str(root), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.address", "127.0.0.1",
                             "--server.port", str(port), "--server.headless", "true",
                             "--browser.gatherUsageStats", "false", "--server.maxMessageSize", "1000"],
                            cwd=APP_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    out: dict[str, float] = {}
    try:
        url = f"http://127.0.0.1:{port}"
        wait_healthy(url, proc)
        with chromium_page(1440, 1400) as page:
            t0 = time.perf_counter()
            page.goto(f"{url}/embeddings?run={RUN.replace('+', '%2B')}", timeout=300_000)
            page.wait_for_selector(".js-plotly-plot", timeout=300_000)
            settle(page, quiet=1.0, timeout=600)
            out["first_render_s"] = time.perf_counter() - t0 - 1.0  # less the quiet second settle waits
            out["plots"] = page.locator(".js-plotly-plot").count()
            fig = page.locator(".js-plotly-plot").first
            fig.scroll_into_view_if_needed()
            a = fig.locator(".nsewdrag").first.bounding_box()
            left = [(a["x"] + 4, a["y"] + 4), (a["x"] + a["width"] / 2, a["y"] + 4),
                    (a["x"] + a["width"] / 2, a["y"] + a["height"] - 4), (a["x"] + 4, a["y"] + a["height"] - 4),
                    (a["x"] + 4, a["y"] + 8)]
            page.mouse.move(*left[0])
            page.mouse.down()
            for x, y in left[1:]:
                page.mouse.move(x, y, steps=8)
            t0 = time.perf_counter()
            page.mouse.up()
            count = page.get_by_text(re.compile(r"^[\d,]+ selected")).first
            count.wait_for(timeout=600_000)
            settle(page, quiet=1.0, timeout=600)
            out["lasso_update_s"] = time.perf_counter() - t0 - 1.0
            out["selected"] = float(count.inner_text().split()[0].replace(",", ""))
            if every_point:
                t0 = time.perf_counter()
                page.get_by_text("Draw every point").click()
                settle(page, quiet=1.0, timeout=900)
                out["every_point_render_s"] = time.perf_counter() - t0 - 1.0
        out["server_peak_mb"], out["server_now_mb"] = _rss_mb(proc.pid)
    finally:
        stop(proc)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=1_000_000)
    ap.add_argument("--baseline", type=int, default=10_000)
    ap.add_argument("--every-point", action="store_true", help="also time the WebGL scatter of every point")
    args = ap.parse_args()
    if not Path("/usr/bin/chromium").exists():
        raise SystemExit("needs /usr/bin/chromium (apt-get install -y chromium)")
    rows = {}
    for n in (args.baseline, args.samples):
        folder = Path(tempfile.mkdtemp(prefix=f"fusionlens-bench-emb-{n}-"))
        print(f"\n== {n:,} test samples ({folder})")
        root = build(folder, n)
        rows[n] = time_page(root, args.every_point)
        print("  " + ", ".join(f"{k} {v:,.2f}" for k, v in rows[n].items()))
    base, big = rows[args.baseline], rows[args.samples]
    print(f"\n{'':28s} {args.baseline:>12,} {args.samples:>12,} {'ratio':>8s}")
    for key in ("first_render_s", "lasso_update_s", *(["every_point_render_s"] if args.every_point else []),
                "server_peak_mb", "server_now_mb", "selected"):
        print(f"{key:28s} {base[key]:12,.2f} {big[key]:12,.2f} {big[key] / base[key]:8.2f}")


if __name__ == "__main__":
    main()

"""Projections and the Embeddings figure at scale: 10,000 and 100,000 points (1,000,000 with ``--big``).

    .venv/bin/python benchmarks/bench_projection_scale.py [--big] [--sizes 10000 100000]
                                                          [--methods pca umap tsne] [--dim 64]

Synthetic embeddings (a seeded mixture of 10 Gaussian classes in ``--dim``
dimensions), then for each size, through the public API:

* each method's time in :func:`core.projection.compute_projection` (t-SNE and
  UMAP fit a 20,000-point sample and ``transform`` the rest above 20,000
  points), with the points fitted / transformed and the backend;
* the trustworthiness estimate (2,000 query points in 5 groups) against the
  exact value at the smallest size: both times, their ratio, and whether the
  exact value lies in the interval (the exact one is skipped above 20,000
  points: it is quadratic);
* the Embeddings page's figure for the PCA coordinates: build time and the
  JSON the browser receives (``plotly.io.to_json``, what streamlit sends), for
  the WebGL scatter and the density view;
* peak resident memory of this process after the size (the server's share).

Reports ratios within one run (wall times vary with the machine's load).
"""
from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def synthetic(n: int, dim: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=4.0, size=(10, dim))
    labels = rng.integers(0, 10, size=n)
    return (centers[labels] + rng.normal(size=(n, dim))).astype(np.float32), labels


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--big", action="store_true", help="add 1,000,000 points")
    ap.add_argument("--methods", nargs="+", default=["pca", "umap", "tsne"])
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--compare-sklearn", action="store_true",
                    help="also time scikit-learn's t-SNE (the fallback) at sizes up to 20,000")
    args = ap.parse_args()
    sizes = sorted(set(args.sizes + ([1_000_000] if args.big else [])))

    import pandas as pd
    import plotly.io as pio

    from core import projection as P
    from ui import figures as F

    print(f"t-SNE backend: {'openTSNE' if P.opentsne_available() else 'scikit-learn'}; dim={args.dim}")
    for n in sizes:
        X, labels = synthetic(n, args.dim)
        print(f"\n== {n:,} points ==")
        pca_coords = None
        for method in args.methods:
            start = time.perf_counter()
            proj = P.compute_projection(X, method, seed=0)
            total = time.perf_counter() - start
            fit = proj.fit
            half = 0.5 * (proj.trustworthiness_interval[1] - proj.trustworthiness_interval[0])
            print(f"{method:5s} {proj.seconds:8.1f} s projection, {total - proj.seconds:6.1f} s trustworthiness "
                  f"({proj.trustworthiness:.3f} ± {half:.3f} on {proj.trustworthiness_n:,}); "
                  f"fitted {fit['fit_n']:,}, transformed {fit['transformed']:,} ({fit['backend']})")
            if method == "pca":
                pca_coords = proj.coords
            if method == "tsne" and args.compare_sklearn and n <= 20_000:
                saved = sys.modules.get("openTSNE")
                sys.modules["openTSNE"] = None  # type: ignore[assignment]  # as if not installed
                try:
                    fallback = P.compute_projection(X, "tsne", seed=0)
                finally:
                    if saved is None:
                        del sys.modules["openTSNE"]
                    else:
                        sys.modules["openTSNE"] = saved
                print(f"tsne  {fallback.seconds:8.1f} s with {fallback.fit['backend']} "
                      f"(trustworthiness {fallback.trustworthiness:.3f}); openTSNE/scikit-learn time "
                      f"{proj.seconds / fallback.seconds:.2f}")
        if pca_coords is None:
            pca_coords = P.compute_projection(X, "pca").coords
        Y = pca_coords.astype(np.float64)
        X64 = X.astype(np.float64)
        k = P.trustworthiness_neighbors(n)
        start = time.perf_counter()
        est = P.estimate_trustworthiness(X64, Y, k, seed=0)
        t_est = time.perf_counter() - start
        line = f"trust estimate {t_est:.1f} s ({est.value:.4f} [{est.low:.4f}, {est.high:.4f}])"
        if n <= 20_000:
            start = time.perf_counter()
            exact = P.trustworthiness(X64, Y, k)
            t_exact = time.perf_counter() - start
            inside = est.low <= exact <= est.high
            line += f"; exact {t_exact:.1f} s ({exact:.4f}, {'inside' if inside else 'OUTSIDE'} the interval); " \
                    f"estimate/exact time {t_est / t_exact:.2f}"
        print(line)

        coords = pd.DataFrame({"id": [f"s{i:07d}" for i in range(n)], "x": pca_coords[:, 0], "y": pca_coords[:, 1],
                               "label": pd.Categorical(labels.astype(str))})
        start = time.perf_counter()
        scatter = F.make_embedding_figure(coords, "label", ["label"], "fused · PCA", axis_label="PCA")
        t_fig = time.perf_counter() - start
        start = time.perf_counter()
        scatter_json = len(pio.to_json(scatter, validate=False))
        t_json = time.perf_counter() - start
        start = time.perf_counter()
        density = F.make_density_figure(coords, "fused · PCA", axis_label="PCA")
        t_dens = time.perf_counter() - start
        start = time.perf_counter()
        density_json = len(pio.to_json(density, validate=False))
        t_dens_json = time.perf_counter() - start
        print(f"scatter figure {t_fig:.2f} s + JSON {t_json:.2f} s, {scatter_json / 1e6:.1f} MB; "
              f"density figure {t_dens:.2f} s + JSON {t_dens_json:.2f} s, {density_json / 1e6:.2f} MB "
              f"(density/scatter payload {density_json / scatter_json:.3f}, "
              f"time {(t_dens + t_dens_json) / (t_fig + t_json):.2f})")
        print(f"peak memory of this process so far: {peak_rss_mb():,.0f} MB")


if __name__ == "__main__":
    main()

"""Projections at scale: t-SNE backends, fit on a sample + transform, trustworthiness estimates, stored fields."""
from __future__ import annotations

import sys

import numpy as np
import pytest
from sklearn.datasets import make_blobs

from core import projection as P
from core.errors import ConfigError


@pytest.fixture(scope="module")
def blobs() -> np.ndarray:
    X, _ = make_blobs(n_samples=400, n_features=8, centers=4, random_state=0)
    return X.astype(np.float32)


def _ids(n: int) -> list[str]:
    return [f"s{i:04d}" for i in range(n)]


# --------------------------------------------------------------------------- backend and fallback


def test_tsne_runs_on_opentsne_when_installed(blobs):
    pytest.importorskip("openTSNE")
    assert P.opentsne_available()
    proj = P.compute_projection(blobs[:150], "tsne", seed=0, params={"max_iter": 300})
    assert proj.fit["backend"].startswith("openTSNE ")
    assert proj.fit == {**proj.fit, "fit_n": 150, "transformed": 0}
    assert proj.trustworthiness >= 0.9


def test_tsne_falls_back_to_scikit_learn_without_opentsne(blobs, monkeypatch):
    monkeypatch.setitem(sys.modules, "openTSNE", None)  # as if it were not installed
    assert not P.opentsne_available()
    proj = P.compute_projection(blobs[:150], "tsne", seed=0, params={"max_iter": 300})
    assert proj.fit["backend"] == "scikit-learn" and proj.fit["transformed"] == 0
    assert proj.trustworthiness >= 0.9
    # fit on a sample: scikit-learn has no transform, the rest is placed from its nearest fitted neighbours
    sampled = P.compute_projection(blobs, "tsne", seed=0, params={"max_iter": 300, "fit_sample": 200})
    assert sampled.fit == {"backend": "scikit-learn", "fit_n": 200, "transformed": 200}
    assert np.isfinite(sampled.coords).all() and sampled.trustworthiness >= 0.85


def test_pca_records_its_backend(blobs):
    assert P.compute_projection(blobs, "pca").fit == {"backend": "scikit-learn", "fit_n": 400, "transformed": 0}


# --------------------------------------------------------------------------- sample + transform


def test_fit_sample_joins_the_params_only_above_the_threshold(monkeypatch):
    # defaults: 20,000 points fitted, so keys of smaller inputs do not change
    assert "fit_sample" not in P.resolve_params("tsne", None, 20_000)
    assert P.resolve_params("tsne", None, 20_001)["fit_sample"] == 20_000
    assert P.resolve_params("umap", None, 50_000)["fit_sample"] == 20_000
    assert "fit_sample" not in P.resolve_params("tsne", {"fit_sample": 0}, 50_000)   # 0: fit every point
    assert "fit_sample" not in P.resolve_params("pca", None, 10**6)
    monkeypatch.setattr(P.PROJECTORS.get("tsne"), "fit_sample_max", 100)
    resolved = P.resolve_params("tsne", None, 400)
    assert resolved["fit_sample"] == 100 and resolved["perplexity"] == 30.0
    assert P.resolve_params("tsne", None, 60)["perplexity"] == pytest.approx(59 / 3)  # below: unchanged
    with pytest.raises(ConfigError, match="fit_sample"):
        P.resolve_params("umap", {"fit_sample": 5}, 400)
    assert P.resolve_params("tsne", {"fit_sample": 31}, 400)["perplexity"] == 10.0  # adapts to the fitted points
    with pytest.raises(ConfigError, match="perplexity"):
        P.resolve_params("tsne", {"fit_sample": 30, "perplexity": 40}, 400)


def test_tsne_fits_a_sample_and_transforms_the_rest(blobs, monkeypatch):
    pytest.importorskip("openTSNE")
    monkeypatch.setattr(P.PROJECTORS.get("tsne"), "fit_sample_max", 150)
    proj = P.compute_projection(blobs, "tsne", seed=0, params={"max_iter": 300})
    assert proj.params["fit_sample"] == 150
    assert proj.fit["fit_n"] == 150 and proj.fit["transformed"] == 250
    assert proj.coords.shape == (400, 2) and np.isfinite(proj.coords).all()
    assert proj.trustworthiness >= 0.9           # transformed points land among their own blob
    again = P.compute_projection(blobs, "tsne", seed=0, params={"max_iter": 300})
    np.testing.assert_array_equal(proj.coords, again.coords)    # the sample is seeded


@pytest.mark.slow
def test_umap_fits_a_sample_and_transforms_the_rest(blobs, monkeypatch):
    monkeypatch.setattr(P.PROJECTORS.get("umap"), "fit_sample_max", 150)
    proj = P.compute_projection(blobs, "umap", seed=0)
    assert proj.params["fit_sample"] == 150
    assert proj.fit["backend"].startswith("umap-learn") and proj.fit["transformed"] == 250
    assert np.isfinite(proj.coords).all() and proj.trustworthiness >= 0.9


# --------------------------------------------------------------------------- trustworthiness estimate


def test_trustworthiness_is_exact_up_to_the_sample_size():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 6))
    Y = X[:, :2] + 0.2 * rng.normal(size=(300, 2))
    est = P.estimate_trustworthiness(X, Y, 7, sample=300)
    assert est.exact and est.n_points == 300 and est.low == est.high == est.value
    assert est.value == P.trustworthiness(X, Y, 7)


def test_trustworthiness_estimate_brackets_the_exact_value():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(3000, 10))
    Y = X[:, :2] + 0.5 * rng.normal(size=(3000, 2))
    exact = P.trustworthiness(X, Y, 10)
    estimates = [P.estimate_trustworthiness(X, Y, 10, sample=400, repeats=5, seed=s) for s in range(10)]
    assert all(not e.exact and e.n_points == 400 and e.repeats == 5 for e in estimates)
    assert all(e.low < e.value < e.high for e in estimates)
    # 95 % intervals: most of ten seeded ones cover the exact value, and none is far off
    assert sum(e.low <= exact <= e.high for e in estimates) >= 8
    assert all(abs(e.value - exact) < 4 * e.half_width for e in estimates)
    assert abs(np.mean([e.value for e in estimates]) - exact) < 0.01
    again = P.estimate_trustworthiness(X, Y, 10, sample=400, repeats=5, seed=0)
    assert again == estimates[0]


def test_trustworthiness_estimate_sees_a_bad_projection():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(2500, 8))
    good = P.estimate_trustworthiness(X, X[:, :2], 10, sample=300)
    bad = P.estimate_trustworthiness(X, rng.normal(size=(2500, 2)), 10, sample=300)
    assert bad.high < good.low


# --------------------------------------------------------------------------- stored fields


def test_scale_fields_round_trip(tmp_path, blobs, monkeypatch):
    pytest.importorskip("openTSNE")
    monkeypatch.setattr(P.PROJECTORS.get("tsne"), "fit_sample_max", 150)
    proj = P.compute_projection(blobs, "tsne", seed=0, params={"max_iter": 300})
    assert proj.trustworthiness_n == 400 and proj.trustworthiness_interval == (proj.trustworthiness,) * 2
    P.save_projection(tmp_path, "fused", _ids(400), proj)
    _, loaded = P.load_projection(tmp_path, "fused", "tsne", params={"max_iter": 300})
    assert loaded.fit == proj.fit and loaded.params == proj.params
    assert loaded.trustworthiness_interval == proj.trustworthiness_interval
    assert loaded.trustworthiness_n == proj.trustworthiness_n


def test_estimated_trustworthiness_is_stored(tmp_path, monkeypatch):
    rng = np.random.default_rng(3)
    X = rng.normal(size=(2600, 6)).astype(np.float32)   # above the 2,000-point sample: estimated
    proj = P.compute_projection(X, "pca")
    low, high = proj.trustworthiness_interval
    assert proj.trustworthiness_n == P.TRUST_SAMPLE and low < proj.trustworthiness < high
    P.save_projection(tmp_path, "fused", _ids(2600), proj)
    _, loaded = P.load_projection(tmp_path, "fused", "pca")
    assert loaded.trustworthiness_interval == (low, high) and loaded.trustworthiness_n == P.TRUST_SAMPLE

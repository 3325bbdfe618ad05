"""Projections: determinism, quality on seeded blobs, storage round trip, resumability."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_blobs
from sklearn.manifold import trustworthiness

from core import io
from core import projection as P
from core.errors import BundleError, ConfigError, DataError
from tests._tolerance import f64_atol


@pytest.fixture(scope="module")
def blobs() -> tuple[np.ndarray, np.ndarray]:
    X, y = make_blobs(n_samples=120, n_features=10, centers=4, random_state=0)
    return X.astype(np.float32), y


@pytest.fixture(scope="module")
def tsne_projection(blobs):
    return P.compute_projection(blobs[0], "tsne", seed=0)


def _ids(n: int) -> list[str]:
    return [f"s{i:04d}" for i in range(n)]


# --------------------------------------------------------------------------- compute


@pytest.mark.parametrize("method", ["pca", "tsne"])
def test_projection_shape_quality_and_metadata(blobs, tsne_projection, method):
    X, _ = blobs
    proj = tsne_projection if method == "tsne" else P.compute_projection(X, method, seed=0)
    assert proj.coords.shape == (120, 2)
    assert proj.coords.dtype == np.float32
    assert proj.method == method and proj.seed == 0
    assert proj.trustworthiness >= 0.9
    assert proj.trustworthiness_k == 10
    assert proj.seconds >= 0
    # the resolved params are complete: defaults filled in
    assert proj.params == P.resolve_params(method, None, 120)
    if method == "tsne":
        assert proj.params["perplexity"] == 30.0 and proj.params["init"] == "pca"


@pytest.mark.parametrize("method", ["pca", "tsne"])
def test_projection_is_deterministic_given_seed(blobs, tsne_projection, method):
    X, _ = blobs
    first = tsne_projection if method == "tsne" else P.compute_projection(X, method, seed=0)
    again = P.compute_projection(X, method, seed=0)
    # same seed, input and process (one BLAS thread below 2,000 samples): bit for bit
    np.testing.assert_array_equal(first.coords, again.coords)
    assert first.trustworthiness == again.trustworthiness


def test_tsne_seed_changes_layout(blobs, tsne_projection):
    other = P.compute_projection(blobs[0], "tsne", seed=1, params={"init": "random", "max_iter": 250})
    assert not np.allclose(other.coords, tsne_projection.coords)


def test_default_params_adapt_to_tiny_inputs():
    assert P.resolve_params("tsne", None, 10)["perplexity"] == 3.0      # (10 - 1) / 3, exact
    assert P.resolve_params("tsne", None, 1000)["perplexity"] == 30.0
    assert P.resolve_params("umap", None, 8)["n_neighbors"] == 7
    assert P.resolve_params("umap", None, 1000) == {
        "n_neighbors": 15, "min_dist": 0.1, "metric": "euclidean", "init": "spectral", "spread": 1.0,
    }
    assert P.resolve_params("pca", None, 5) == {"standardize": True}


@pytest.mark.parametrize("n", [3, 4, 7])
def test_tiny_inputs_still_project(n):
    X = np.random.default_rng(n).normal(size=(n, 5))
    for method in ("pca", "tsne"):
        proj = P.compute_projection(X, method, seed=0, params={"max_iter": 250} if method == "tsne" else None)
        assert proj.coords.shape == (n, 2)
        assert np.isfinite(proj.coords).all()
        assert 0.0 <= proj.trustworthiness <= 1.0


def test_pca_on_one_feature_pads_second_axis():
    proj = P.compute_projection(np.arange(10, dtype=float)[:, None], "pca")
    assert proj.coords.shape == (10, 2)
    assert np.all(proj.coords[:, 1] == 0)


@pytest.mark.parametrize(
    "X, match",
    [
        (np.zeros((2, 4)), "at least 3 samples"),
        (np.zeros(10), "2-D"),
        (np.zeros((4, 3, 2)), "2-D"),
        (np.array([[0.0, 1.0], [np.nan, 1.0], [2.0, 3.0], [1.0, 1.0]]), "NaN"),
        (np.array([[0.0, 1.0], [np.inf, 1.0], [2.0, 3.0], [1.0, 1.0]]), "NaN or infinite"),
        (np.array([["a", "b"]] * 4), "numeric"),
    ],
)
def test_bad_inputs_raise_data_error(X, match):
    with pytest.raises(DataError, match=match) as info:
        P.compute_projection(X, "pca")
    assert "Fix:" in str(info.value)


def test_bad_method_or_params_raise_config_error(blobs):
    with pytest.raises(ConfigError, match="pca, tsne, umap"):
        P.compute_projection(blobs[0], "isomap")
    with pytest.raises(ConfigError, match="perplexty"):
        P.compute_projection(blobs[0], "tsne", params={"perplexty": 5})
    with pytest.raises(ConfigError, match="perplexity"):
        P.compute_projection(blobs[0], "tsne", params={"perplexity": 500})


@pytest.mark.parametrize("method", [pytest.param(m, marks=pytest.mark.slow) if m == "umap" else m
                                    for m in P.PROJECTORS.names()])
def test_every_registered_method_projects_tiny_data(method):
    X = np.random.default_rng(0).normal(size=(12, 4))
    proj = P.compute_projection(X, method, seed=0)
    assert proj.coords.shape == (12, 2) and np.isfinite(proj.coords).all()
    assert proj.params == P.resolve_params(method, None, 12) and proj.label == P.method_label(method)
    assert set(proj.params) <= set(P.PROJECTORS.get(method).params)


def test_a_method_registered_in_the_test_computes_stores_and_loads(tmp_path, blobs):
    X = blobs[0]

    @P.PROJECTORS.register("first2", label="First two")
    class FirstTwoProjector(P.Projector):
        params = ("offset",)

        def resolve(self, given, n):
            return {"offset": float(given.get("offset", 0.0))}

        def fit(self, X, params, seed):
            return X[:, :2] + params["offset"]

    try:
        proj = P.compute_projection(X, "first2", params={"offset": 1.0})
        # float32 input, float64 sum, float32 result: the same operations, so exact
        np.testing.assert_array_equal(proj.coords, (X[:, :2].astype(np.float64) + 1.0).astype(np.float32))
        assert proj.label == "First two" and proj.params == {"offset": 1.0}
        with pytest.raises(ConfigError, match="use only: offset"):
            P.compute_projection(X, "first2", params={"scale": 2.0})
        out = P.ensure_projections(tmp_path, {"fused": X}, _ids(120), methods=("first2", "pca"), progress=False,
                                   params={"first2": {"offset": 1.0}})
        assert set(out) == {("fused", "first2"), ("fused", "pca")}
        _, loaded = P.load_projection(tmp_path, "fused", "first2", params={"offset": 1.0})
        np.testing.assert_array_equal(loaded.coords, proj.coords)
        assert set(P.list_projections(tmp_path)["method"]) == {"first2", "pca"}
    finally:
        P.PROJECTORS.unregister("first2")
    with pytest.raises(ConfigError, match="use one of: pca, tsne, umap"):
        P.compute_projection(X, "first2")


def test_chunked_trustworthiness_matches_sklearn():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(150, 12))
    Y = X[:, :2] + 0.3 * rng.normal(size=(150, 2))
    expected = trustworthiness(X, Y, n_neighbors=7)
    # integer rank penalties, then a few float64 operations in another order
    assert P.trustworthiness(X, Y, 7, chunk=32) == pytest.approx(expected, abs=f64_atol(1.0, len(X)))
    assert P.trustworthiness(X, Y, 7, metric="cosine", chunk=50) == pytest.approx(
        trustworthiness(X, Y, n_neighbors=7, metric="cosine"), abs=f64_atol(1.0, len(X))
    )


# --------------------------------------------------------------------------- storage


def test_projection_key_is_stable_and_parameter_sensitive():
    params = P.resolve_params("tsne", None, 120)
    key = P.projection_key("fused", "tsne", params, 0)
    assert key == P.projection_key("fused", "tsne", dict(reversed(list(params.items()))), 0)
    assert len(key) == 12 and all(c in "0123456789abcdef" for c in key)
    assert key != P.projection_key("fused", "tsne", params, 1)
    assert key != P.projection_key("image", "tsne", params, 0)
    assert key != P.projection_key("fused", "tsne", {**params, "perplexity": 10.0}, 0)
    # pinned: the key must not change between versions, or stored projections are orphaned
    assert P.projection_key("fused", "pca", {"standardize": True}, 0) == "145d77bd4db1"


def test_save_load_round_trip(tmp_path, blobs, tsne_projection):
    ids = _ids(120)
    path = P.save_projection(tmp_path, "fused", ids, tsne_projection)
    key = P.projection_key("fused", "tsne", tsne_projection.params, 0)
    assert path == tmp_path / "projections" / f"fused__tsne__{key}.parquet"
    frame = pd.read_parquet(path)
    assert list(frame.columns) == ["id", "x", "y"]
    sidecar = json.loads(path.with_suffix(".json").read_text())
    assert {"method", "params", "seed", "trustworthiness", "seconds", "embedding"} <= set(sidecar)
    assert sidecar["embedding"] == "fused" and sidecar["method"] == "tsne"
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]  # no temp files left

    loaded = P.load_projection(tmp_path, "fused", "tsne", seed=0)
    assert loaded is not None
    got_ids, got = loaded
    assert list(got_ids) == ids
    np.testing.assert_array_equal(got.coords, tsne_projection.coords)       # float32 through Parquet: lossless
    assert got.params == tsne_projection.params
    assert got.trustworthiness == tsne_projection.trustworthiness           # JSON floats round-trip exactly
    # explicit params equal to the defaults find the same projection
    assert P.load_projection(tmp_path, "fused", "tsne", params={"perplexity": 30}) is not None
    # a different request does not
    assert P.load_projection(tmp_path, "fused", "tsne", seed=1) is None
    assert P.load_projection(tmp_path, "fused", "tsne", params={"perplexity": 10}) is None
    assert P.load_projection(tmp_path, "image", "tsne") is None
    assert P.load_projection(tmp_path / "nowhere", "fused", "tsne") is None


def test_list_projections_and_corruption(tmp_path, blobs):
    X, _ = blobs
    assert P.list_projections(tmp_path).empty
    proj = P.compute_projection(X, "pca")
    path = P.save_projection(tmp_path, "image", _ids(120), proj)
    table = P.list_projections(tmp_path)
    assert list(table[["embedding", "method", "seed"]].itertuples(index=False, name=None)) == [("image", "pca", 0)]
    assert table.loc[0, "path"] == str(path) and table.loc[0, "error"] is None
    assert {"embedding", "method", "params", "seed", "trustworthiness", "path"} <= set(table.columns)

    path.write_bytes(b"not a parquet file")
    with pytest.raises(BundleError, match="unreadable"):
        P.load_projection(tmp_path, "image", "pca")
    path.with_suffix(".json").write_text("{broken")
    table = P.list_projections(tmp_path)
    assert "corrupted" in table.loc[0, "error"]


def test_save_rejects_mismatched_ids_and_unsafe_names(tmp_path, blobs):
    proj = P.compute_projection(blobs[0], "pca")
    with pytest.raises(DataError, match="119 ids"):
        P.save_projection(tmp_path, "fused", _ids(119), proj)
    for bad in ("../evil", "a/b", "", ".hidden"):
        with pytest.raises(ConfigError, match="invalid embedding name"):
            P.save_projection(tmp_path, bad, _ids(120), proj)


def test_ensure_projections_computes_only_what_is_missing(tmp_path, blobs, monkeypatch):
    X, _ = blobs
    embeddings = {"image": X[:, :6], "fused": X}
    ids = _ids(120)
    calls: list[tuple[int, str]] = []
    for name in ("pca", "tsne"):           # count the fits of each registered method
        projector = P.PROJECTORS.get(name)

        def counting(self, arr, params, seed, _fit=projector.fit, _name=name):
            calls.append((arr.shape[1], _name))
            return _fit(self, arr, params, seed)

        monkeypatch.setattr(projector, "fit", counting)
    events: list[tuple[int, int, str]] = []
    out = P.ensure_projections(tmp_path, embeddings, ids, methods=("pca",), progress=lambda *e: events.append(e))
    assert sorted(calls) == [(6, "pca"), (10, "pca")]
    assert set(out) == {("image", "pca"), ("fused", "pca")}
    assert events[-1][:2] == (2, 2)
    files = sorted((tmp_path / "projections").glob("*.parquet"))
    mtimes = {p: p.stat().st_mtime_ns for p in files}

    calls.clear()
    again = P.ensure_projections(tmp_path, embeddings, ids, methods=("pca",), progress=False)
    assert calls == []
    assert {p: p.stat().st_mtime_ns for p in files} == mtimes
    np.testing.assert_array_equal(again[("fused", "pca")].coords, out[("fused", "pca")].coords)   # read back

    # a new method for one run only computes that one
    P.ensure_projections(tmp_path, {"fused": X}, ids, methods=("pca", "tsne"), progress=False,
                         params={"tsne": {"max_iter": 250}})
    assert calls == [(10, "tsne")]
    assert len(P.list_projections(tmp_path)) == 3

    # stale (the run was rebuilt: other embedding values) or corrupted: recomputed in place
    calls.clear()
    P.ensure_projections(tmp_path, {"image": X[:, :6] + 1.0}, ids, methods=("pca",), progress=False)
    assert calls == [(6, "pca")]
    corrupted = next((tmp_path / "projections").glob("fused__pca__*.parquet"))
    corrupted.write_bytes(b"garbage")
    calls.clear()
    P.ensure_projections(tmp_path, {"fused": X}, ids, methods=("pca",), progress=False)
    assert calls == [(10, "pca")]
    assert P.load_projection(tmp_path, "fused", "pca") is not None
    assert len(P.list_projections(tmp_path)) == 3


def test_ensure_projections_checks_row_counts(tmp_path, blobs):
    with pytest.raises(DataError, match="119 rows"):
        P.ensure_projections(tmp_path, {"fused": blobs[0][:119]}, _ids(120), methods=("pca",), progress=False)


def test_load_run_embeddings(tmp_path):
    ids = _ids(6)
    io.write_parquet(tmp_path / "predictions.parquet", pd.DataFrame({"id": ids, "label": ["a"] * 6}))
    rng = np.random.default_rng(0)
    tensors = {"image": rng.normal(size=(6, 4)).astype(np.float32), "fused": rng.normal(size=(6, 3)).astype(np.float32)}
    io.write_tensors(tmp_path / "embeddings.safetensors", tensors)
    got_ids, arrays = P.load_run_embeddings(tmp_path)
    assert list(got_ids) == ids
    assert set(arrays) == {"image", "fused"}
    np.testing.assert_array_equal(arrays["image"], tensors["image"])    # float32 through safetensors: lossless

    io.write_parquet(tmp_path / "predictions.parquet", pd.DataFrame({"id": ids[:5]}))
    with pytest.raises(BundleError, match="6 rows"):
        P.load_run_embeddings(tmp_path)
    with pytest.raises(BundleError, match="missing"):
        P.load_run_embeddings(tmp_path / "nope")


def test_module_does_not_import_umap_or_streamlit():
    import subprocess
    import sys

    code = (
        "import sys, core.projection, ui.figures; "
        "assert 'umap' not in sys.modules and 'streamlit' not in sys.modules and 'numba' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=str(__import__("pathlib").Path(__file__).parents[3]))


# --------------------------------------------------------------------------- UMAP (numba compile: slow)


@pytest.mark.slow
def test_umap_projection_is_deterministic_and_trustworthy(blobs, tmp_path):
    X, _ = blobs
    first = P.compute_projection(X, "umap", seed=0)
    again = P.compute_projection(X, "umap", seed=0)
    assert first.coords.shape == (120, 2)
    np.testing.assert_array_equal(first.coords, again.coords)           # seeded, single-threaded: bit for bit
    assert first.trustworthiness >= 0.9
    assert first.params["n_neighbors"] == 15 and first.params["min_dist"] == 0.1
    tiny = P.compute_projection(X[:5], "umap", seed=0)
    assert tiny.coords.shape == (5, 2) and tiny.params["n_neighbors"] == 4
    P.save_projection(tmp_path, "fused", _ids(120), first)
    assert P.load_projection(tmp_path, "fused", "umap") is not None


def _write_run(folder, ids, tensors):
    folder.mkdir(parents=True)
    io.write_parquet(folder / "predictions.parquet", pd.DataFrame({"id": ids}))
    io.write_tensors(folder / "embeddings.safetensors", tensors)
    return folder


def test_project_runs_in_worker_processes_stores_what_a_serial_pass_stores(tmp_path, blobs):
    """Two spawned workers give the coordinates one process gives (every projection is seeded and
    single-threaded); an embedding two runs share is computed once; a projection already stored with a later
    run is copied, not computed again."""
    X, _ = blobs
    ids = _ids(len(X))
    shared = X[:, :6].astype(np.float32)
    params = {"tsne": {"max_iter": 250}}
    folders = {}
    for mode in ("serial", "parallel"):
        a = _write_run(tmp_path / mode / "a", ids, {"image": shared, "fused": X.astype(np.float32)})
        b = _write_run(tmp_path / mode / "b", ids, {"image": shared, "fused": X[:, ::-1].astype(np.float32)})
        folders[mode] = (a, b)
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):  # one BLAS thread, as in the workers: the same operations in the same order
        serial = P.project_runs(folders["serial"], methods=("pca", "tsne"), progress=False, params=params, workers=1)
    parallel = P.project_runs(folders["parallel"], methods=("pca", "tsne"), progress=False, params=params, workers=2)
    assert serial == parallel == {"computed": 6, "reused": 2, "kept": 0}
    for run in ("a", "b"):
        for name in ("image", "fused"):
            for method in ("pca", "tsne"):
                _, one = P.load_projection(tmp_path / "serial" / run, name, method, params.get(method))
                _, two = P.load_projection(tmp_path / "parallel" / run, name, method, params.get(method))
                # the same seeded single-threaded computation in another process of this machine: the same floats
                np.testing.assert_array_equal(one.coords, two.coords)
    assert P.project_runs(folders["parallel"], methods=("pca", "tsne"), progress=False, params=params,
                          workers=2) == {"computed": 0, "reused": 0, "kept": 8}
    # "image" of run a deleted, still stored with run b: copied from b
    for f in (tmp_path / "parallel" / "a" / "projections").glob("image__*"):
        f.unlink()
    counts = P.project_runs(folders["parallel"], methods=("pca", "tsne"), progress=False, params=params, workers=2)
    assert counts == {"computed": 0, "reused": 2, "kept": 6}
    assert P.projection_workers(P.PARALLEL_MAX_ROWS + 1, 6) == 1  # openTSNE threads by itself there
    assert P.projection_workers(P.PARALLEL_MAX_ROWS + 1, 6, workers=2) == 2

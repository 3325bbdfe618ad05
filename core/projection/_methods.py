"""The projection methods (PCA, t-SNE, UMAP): one :class:`Projector` each, in :data:`PROJECTORS`.

A projector owns what is specific to its method: the parameters it accepts,
their defaults for a given sample count (:meth:`Projector.resolve`), and the
fit itself (:meth:`Projector.fit`). Adding a method is one subclass plus
``@PROJECTORS.register("name", label="Name")``; every caller (the CLI choices,
the experiment schema, the Embeddings page) loops over the registry.

Large inputs: t-SNE and UMAP are fitted on a seeded sample of
:attr:`Projector.fit_sample_max` points (20,000) and every other point is
placed by ``transform`` (openTSNE's and umap's own, which optimise the new
points against the fitted embedding without moving it). The sample size joins
the resolved parameters as ``fit_sample`` only when it is below the sample
count, so projection keys of smaller inputs do not change. t-SNE runs on
openTSNE (FFT-accelerated gradients above 10,000 points) when it is installed
and falls back to scikit-learn's Barnes-Hut t-SNE otherwise; scikit-learn has
no ``transform``, so there the rest is placed at the distance-weighted mean of
its 10 nearest fitted neighbours. :meth:`Projector.project` reports what was
done (backend, points fitted, points transformed); it is stored with the
projection.

scikit-learn, openTSNE and umap are imported inside :meth:`Projector.fit`:
umap pulls in numba, whose import and JIT compile take seconds, and a page
that only shows stored projections must never pay that.
"""
from __future__ import annotations

import importlib.util
import warnings
from abc import ABC, abstractmethod
from typing import Any, ClassVar, Mapping

import numpy as np

from core.errors import ConfigError
from core.registry import Registry

#: name -> projector class, in the order cheap methods come first (the build computes them first).
PROJECTORS: Registry["Projector"] = Registry("projection method")


class Projector(ABC):
    """One 2-D projection method. Stateless: the parameters come with each call."""

    #: Parameters the method accepts (anything else is a ConfigError naming these).
    params: ClassVar[tuple[str, ...]] = ()
    #: Above this many points a method with ``transform`` fits a seeded sample and transforms the rest
    #: (the default ``fit_sample``; 0 = always fit every point).
    fit_sample_max: ClassVar[int] = 0

    @abstractmethod
    def resolve(self, given: Mapping[str, Any], n: int) -> dict[str, Any]:
        """The parameters used for ``n`` samples: defaults filled in, values checked and clamped.

        ``given`` holds only names from :attr:`params`. The result holds plain JSON
        types, so it hashes to a stable projection key.
        """

    @abstractmethod
    def fit(self, X: np.ndarray, params: dict[str, Any], seed: int) -> np.ndarray:
        """(n, 2) coordinates of the (n, d) float64 input ``X`` with resolved ``params``."""

    def backend(self) -> str:
        """The library that computes the method, e.g. ``"scikit-learn"`` (stored with each projection)."""
        return "scikit-learn"

    def project(self, X: np.ndarray, params: dict[str, Any], seed: int) -> tuple[np.ndarray, dict[str, Any]]:
        """``(coords, info)``: :meth:`fit` on every point, or on a seeded sample of ``params["fit_sample"]``
        points with the rest placed by :meth:`transform`.

        ``info`` holds ``backend``, ``fit_n`` (points fitted) and ``transformed``
        (points placed by ``transform``, 0 when every point was fitted).
        """
        n = X.shape[0]
        m = int(params.get("fit_sample", n))
        if m >= n:
            return self.fit(X, params, seed), {"backend": self.backend(), "fit_n": n, "transformed": 0}
        fit_rows = np.sort(np.random.default_rng(seed).choice(n, size=m, replace=False))
        rest = np.ones(n, dtype=bool)
        rest[fit_rows] = False
        fitted, placed = self.fit_transform_rest(X[fit_rows], X[rest], params, seed)
        coords = np.empty((n, 2), dtype=np.float64)
        coords[fit_rows] = fitted
        coords[rest] = placed
        return coords, {"backend": self.backend(), "fit_n": m, "transformed": int(n - m)}

    def fit_transform_rest(self, X_fit: np.ndarray, X_rest: np.ndarray, params: dict[str, Any],
                           seed: int) -> tuple[np.ndarray, np.ndarray]:
        """Coordinates of the fitted sample and of the rest (methods with ``fit_sample`` provide it)."""
        raise NotImplementedError(f"{type(self).__name__} cannot place new points")


def _resolve_fit_sample(projector: Projector, given: Mapping[str, Any], n: int) -> dict[str, int]:
    """``{"fit_sample": m}`` when a sample of m < n points is fitted, else ``{}`` (every point fitted)."""
    raw = given.get("fit_sample", projector.fit_sample_max)
    m = int(raw) if raw is not None else 0
    if m < 0 or (0 < m < 10):
        raise ConfigError(f"fit_sample must be 0 (fit every point) or at least 10, got {raw!r}",
                          fix=f"use fit_sample={Projector.fit_sample_max or 20000}, or 0 to fit every point")
    return {"fit_sample": m} if 0 < m < n else {}


# t-SNE and UMAP place the rest of the points in chunks: bounded memory, and they do not interact
# (both transforms optimise new points against the fixed fitted embedding only).
_TRANSFORM_CHUNK = 100_000


def _knn_place(X_fit: np.ndarray, Y_fit: np.ndarray, X_rest: np.ndarray, k: int = 10) -> np.ndarray:
    """Distance-weighted mean of the 2-D positions of each new point's k nearest fitted points."""
    from sklearn.neighbors import NearestNeighbors

    k = min(k, X_fit.shape[0])
    nn = NearestNeighbors(n_neighbors=k).fit(X_fit)
    out = np.empty((X_rest.shape[0], 2), dtype=np.float64)
    for start in range(0, X_rest.shape[0], _TRANSFORM_CHUNK):
        dist, idx = nn.kneighbors(X_rest[start:start + _TRANSFORM_CHUNK])
        w = 1.0 / np.maximum(dist, 1e-12)
        out[start:start + _TRANSFORM_CHUNK] = (Y_fit[idx] * w[..., None]).sum(axis=1) / w.sum(axis=1)[:, None]
    return out


def opentsne_available() -> bool:
    """Whether openTSNE is installed (t-SNE then runs on it; otherwise on scikit-learn)."""
    return importlib.util.find_spec("openTSNE") is not None


@PROJECTORS.register("pca", label="PCA")
class PCAProjector(Projector):
    """Principal components (features standardised first by default)."""

    params = ("standardize",)

    def resolve(self, given: Mapping[str, Any], n: int) -> dict[str, Any]:
        return {"standardize": bool(given.get("standardize", True))}

    def fit(self, X: np.ndarray, params: dict[str, Any], seed: int) -> np.ndarray:
        from sklearn.decomposition import PCA
        from sklearn.preprocessing import StandardScaler

        Z = StandardScaler().fit_transform(X) if params["standardize"] else X - X.mean(axis=0)
        n_comp = min(2, Z.shape[1], Z.shape[0])
        coords = PCA(n_components=n_comp, svd_solver="full", random_state=seed).fit_transform(Z)
        if n_comp < 2:  # a 1-D input still gets a (n, 2) result
            coords = np.hstack([coords, np.zeros((coords.shape[0], 2 - n_comp))])
        return coords


@PROJECTORS.register("tsne", label="t-SNE")
class TSNEProjector(Projector):
    """t-SNE with perplexity ``min(30, (n - 1) / 3)`` and PCA initialisation by default.

    Runs on openTSNE when installed (Barnes-Hut gradients below 10,000 points,
    FFT-interpolated above), else on scikit-learn. ``max_iter`` counts every
    iteration as in scikit-learn: the first ``min(250, max_iter // 2)`` with
    early exaggeration, the rest without.
    """

    params = ("perplexity", "init", "metric", "learning_rate", "max_iter", "early_exaggeration", "fit_sample")
    fit_sample_max = 20_000

    def resolve(self, given: Mapping[str, Any], n: int) -> dict[str, Any]:
        sample = _resolve_fit_sample(self, given, n)
        n_fit = sample.get("fit_sample", n)
        perplexity = float(given.get("perplexity", min(30.0, (n_fit - 1) / 3.0)))
        if not 0 < perplexity < n_fit:
            raise ConfigError(
                f"t-SNE perplexity must be in (0, n_samples={n_fit}), got {perplexity}",
                fix=f"use a perplexity below {n_fit}, e.g. {min(30.0, (n_fit - 1) / 3.0):.3g}",
            )
        out = {
            "perplexity": perplexity,
            "init": str(given.get("init", "pca")),
            "metric": str(given.get("metric", "euclidean")),
            "learning_rate": given.get("learning_rate", "auto"),
            "max_iter": int(given.get("max_iter", 1000)),
            "early_exaggeration": float(given.get("early_exaggeration", 12.0)),
            **sample,
        }
        if out["init"] not in ("pca", "random"):
            raise ConfigError(f"t-SNE init must be 'pca' or 'random', got {out['init']!r}", fix="use init='pca'")
        if out["learning_rate"] != "auto":
            out["learning_rate"] = float(out["learning_rate"])
        return out

    def backend(self) -> str:
        return _version("openTSNE") if opentsne_available() else "scikit-learn"

    def fit(self, X: np.ndarray, params: dict[str, Any], seed: int) -> np.ndarray:
        if opentsne_available():
            return np.asarray(self._opentsne(X, params, seed))
        return self._sklearn(X, params, seed)

    def fit_transform_rest(self, X_fit, X_rest, params, seed):
        if not opentsne_available():  # scikit-learn's t-SNE has no transform
            fitted = self._sklearn(X_fit, params, seed)
            return fitted, _knn_place(X_fit, fitted, X_rest)
        embedding = self._opentsne(X_fit, params, seed)
        parts = [np.asarray(embedding.transform(X_rest[i:i + _TRANSFORM_CHUNK]))
                 for i in range(0, X_rest.shape[0], _TRANSFORM_CHUNK)]
        return np.asarray(embedding), np.concatenate(parts)

    @staticmethod
    def _init(params: dict[str, Any], X: np.ndarray) -> str:
        return "random" if params["init"] == "pca" and X.shape[1] < 2 else params["init"]  # PCA init needs >= 2

    def _opentsne(self, X: np.ndarray, params: dict[str, Any], seed: int) -> Any:
        import os

        from openTSNE import TSNE

        exaggeration_iter = min(250, params["max_iter"] // 2)
        tsne = TSNE(
            n_components=2,
            perplexity=min(params["perplexity"], (X.shape[0] - 1) / 3.0),  # openTSNE needs n > 3 * perplexity
            initialization=self._init(params, X),
            metric=params["metric"],
            learning_rate=params["learning_rate"],
            early_exaggeration=params["early_exaggeration"],
            early_exaggeration_iter=exaggeration_iter,
            n_iter=params["max_iter"] - exaggeration_iter,
            # one thread on small inputs: bit-for-bit repeatable, and threads only cost there
            n_jobs=1 if X.shape[0] <= 2000 else (os.cpu_count() or 1),
            random_state=seed,
            verbose=False,
        )
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=UserWarning)  # perplexity lowered on tiny inputs
            return tsne.fit(X)

    def _sklearn(self, X: np.ndarray, params: dict[str, Any], seed: int) -> np.ndarray:
        from sklearn.manifold import TSNE

        tsne = TSNE(
            n_components=2,
            perplexity=min(params["perplexity"], X.shape[0] - 1.0),
            init=self._init(params, X),
            metric=params["metric"],
            learning_rate=params["learning_rate"],
            max_iter=max(250, params["max_iter"]),
            early_exaggeration=params["early_exaggeration"],
            random_state=seed,
        )
        return tsne.fit_transform(X)


@PROJECTORS.register("umap", label="UMAP")
class UMAPProjector(Projector):
    """UMAP with 15 neighbours (at most n - 1) and ``min_dist=0.1`` by default."""

    params = ("n_neighbors", "min_dist", "metric", "init", "spread", "n_epochs", "fit_sample")
    fit_sample_max = 20_000

    def resolve(self, given: Mapping[str, Any], n: int) -> dict[str, Any]:
        sample = _resolve_fit_sample(self, given, n)
        n_fit = sample.get("fit_sample", n)
        n_neighbors = int(given.get("n_neighbors", 15))
        if n_neighbors < 2:
            raise ConfigError(f"UMAP n_neighbors must be >= 2, got {n_neighbors}", fix="use n_neighbors=15")
        out = {
            "n_neighbors": max(2, min(n_neighbors, n_fit - 1)),
            "min_dist": float(given.get("min_dist", 0.1)),
            "metric": str(given.get("metric", "euclidean")),
            # spectral init needs a connected-enough graph; tiny sets use random init
            "init": str(given.get("init", "spectral" if n_fit >= 10 else "random")),
            "spread": float(given.get("spread", 1.0)),
        }
        if "n_epochs" in given and given["n_epochs"] is not None:
            out["n_epochs"] = int(given["n_epochs"])
        if not 0.0 <= out["min_dist"] <= out["spread"]:
            raise ConfigError(
                f"UMAP min_dist must be in [0, spread={out['spread']}], got {out['min_dist']}",
                fix="use min_dist=0.1",
            )
        return {**out, **sample}

    def backend(self) -> str:
        return _version("umap-learn")

    def fit(self, X: np.ndarray, params: dict[str, Any], seed: int) -> np.ndarray:
        with _quiet_umap():
            return self._reducer(params, seed).fit_transform(X.astype(np.float32))

    def fit_transform_rest(self, X_fit, X_rest, params, seed):
        with _quiet_umap():
            reducer = self._reducer(params, seed).fit(X_fit.astype(np.float32))
            parts = [reducer.transform(X_rest[i:i + _TRANSFORM_CHUNK].astype(np.float32))
                     for i in range(0, X_rest.shape[0], _TRANSFORM_CHUNK)]
            return np.asarray(reducer.embedding_), np.concatenate(parts)

    @staticmethod
    def _reducer(params: dict[str, Any], seed: int) -> Any:
        import umap  # numba: seconds of import and JIT, so only here (never on a page view)

        kwargs = {k: v for k, v in params.items() if k != "fit_sample"}
        return umap.UMAP(n_components=2, random_state=seed, **kwargs)


class _quiet_umap(warnings.catch_warnings):
    """umap's import and seeded fit warnings, silenced: determinism is the point."""

    def __enter__(self) -> Any:
        out = super().__enter__()
        # "n_jobs value 1 overridden to 1 by setting random_state"
        warnings.filterwarnings("ignore", message=".*random_state.*", category=UserWarning)
        warnings.filterwarnings("ignore", message=".*n_jobs.*", category=UserWarning)
        warnings.filterwarnings("ignore", category=FutureWarning)
        warnings.filterwarnings("ignore", category=ImportWarning)  # "Tensorflow not installed"
        return out


def _version(package: str) -> str:
    """``"<package> <version>"`` (just the name when its metadata is missing)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"{package} {version(package)}"
    except PackageNotFoundError:
        return package


#: The built-in method names, cheapest first (the CLI's and the experiment file's choices).
METHODS: tuple[str, ...] = tuple(PROJECTORS.names())
#: Human names of the methods, e.g. ``"tsne" -> "t-SNE"``.
METHOD_LABELS: dict[str, str] = {name: PROJECTORS.meta(name)["label"] for name in METHODS}


def method_label(method: str) -> str:
    """Human name of a registered method (the name itself when it has none)."""
    return PROJECTORS.meta(method).get("label", method) if method in PROJECTORS else method


def check_method(method: str) -> str:
    """``method`` if registered, else a ConfigError naming the registered ones."""
    if method not in PROJECTORS:
        raise ConfigError(
            f"unknown projection method {method!r}", fix=f"use one of: {', '.join(PROJECTORS.names())}"
        )
    return method


def method_order(method: str) -> int:
    """Position of ``method`` in the registry (cheap methods first)."""
    return PROJECTORS.names().index(method)


def resolve_params(method: str, params: Mapping[str, Any] | None, n_samples: int) -> dict[str, Any]:
    """The parameters actually used for ``n_samples`` samples: defaults, overrides, clamps.

    Defaults: PCA standardises features first; t-SNE uses perplexity
    ``min(30, (n - 1) / 3)`` with PCA initialisation; UMAP uses 15 neighbours
    (at most n - 1) and ``min_dist=0.1``. Above 20,000 samples t-SNE and UMAP
    add ``fit_sample=20000`` (fit on a seeded sample, transform the rest). Values are plain JSON types, so the
    result hashes to a stable :func:`projection_key`.
    """
    check_method(method)
    projector = PROJECTORS.create(method)
    given = dict(params or {})
    unknown = sorted(set(given) - set(projector.params))
    if unknown:
        raise ConfigError(
            f"unknown {method_label(method)} parameter(s) {', '.join(map(repr, unknown))}",
            fix=f"use only: {', '.join(projector.params)}",
        )
    return projector.resolve(given, int(n_samples))

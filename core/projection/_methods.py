"""The projection methods (PCA, t-SNE, UMAP): one :class:`Projector` each, in :data:`PROJECTORS`.

A projector owns what is specific to its method: the parameters it accepts,
their defaults for a given sample count (:meth:`Projector.resolve`), and the
fit itself (:meth:`Projector.fit`). Adding a method is one subclass plus
``@PROJECTORS.register("name", label="Name")``; every caller (the CLI choices,
the experiment schema, the Embeddings page) loops over the registry.

scikit-learn and umap are imported inside :meth:`Projector.fit`: umap pulls in
numba, whose import and JIT compile take seconds, and a page that only shows
stored projections must never pay that.
"""
from __future__ import annotations

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

    @abstractmethod
    def resolve(self, given: Mapping[str, Any], n: int) -> dict[str, Any]:
        """The parameters used for ``n`` samples: defaults filled in, values checked and clamped.

        ``given`` holds only names from :attr:`params`. The result holds plain JSON
        types, so it hashes to a stable projection key.
        """

    @abstractmethod
    def fit(self, X: np.ndarray, params: dict[str, Any], seed: int) -> np.ndarray:
        """(n, 2) coordinates of the (n, d) float64 input ``X`` with resolved ``params``."""


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
    """t-SNE with perplexity ``min(30, (n - 1) / 3)`` and PCA initialisation by default."""

    params = ("perplexity", "init", "metric", "learning_rate", "max_iter", "early_exaggeration")

    def resolve(self, given: Mapping[str, Any], n: int) -> dict[str, Any]:
        perplexity = float(given.get("perplexity", min(30.0, (n - 1) / 3.0)))
        if not 0 < perplexity < n:
            raise ConfigError(
                f"t-SNE perplexity must be in (0, n_samples={n}), got {perplexity}",
                fix=f"use a perplexity below {n}, e.g. {min(30.0, (n - 1) / 3.0):.3g}",
            )
        out = {
            "perplexity": perplexity,
            "init": str(given.get("init", "pca")),
            "metric": str(given.get("metric", "euclidean")),
            "learning_rate": given.get("learning_rate", "auto"),
            "max_iter": int(given.get("max_iter", 1000)),
            "early_exaggeration": float(given.get("early_exaggeration", 12.0)),
        }
        if out["init"] not in ("pca", "random"):
            raise ConfigError(f"t-SNE init must be 'pca' or 'random', got {out['init']!r}", fix="use init='pca'")
        if out["learning_rate"] != "auto":
            out["learning_rate"] = float(out["learning_rate"])
        return out

    def fit(self, X: np.ndarray, params: dict[str, Any], seed: int) -> np.ndarray:
        from sklearn.manifold import TSNE

        init = params["init"]
        if init == "pca" and X.shape[1] < 2:
            init = "random"  # sklearn's PCA init needs >= 2 features
        tsne = TSNE(
            n_components=2,
            perplexity=params["perplexity"],
            init=init,
            metric=params["metric"],
            learning_rate=params["learning_rate"],
            max_iter=params["max_iter"],
            early_exaggeration=params["early_exaggeration"],
            random_state=seed,
        )
        return tsne.fit_transform(X)


@PROJECTORS.register("umap", label="UMAP")
class UMAPProjector(Projector):
    """UMAP with 15 neighbours (at most n - 1) and ``min_dist=0.1`` by default."""

    params = ("n_neighbors", "min_dist", "metric", "init", "spread", "n_epochs")

    def resolve(self, given: Mapping[str, Any], n: int) -> dict[str, Any]:
        n_neighbors = int(given.get("n_neighbors", 15))
        if n_neighbors < 2:
            raise ConfigError(f"UMAP n_neighbors must be >= 2, got {n_neighbors}", fix="use n_neighbors=15")
        out = {
            "n_neighbors": max(2, min(n_neighbors, n - 1)),
            "min_dist": float(given.get("min_dist", 0.1)),
            "metric": str(given.get("metric", "euclidean")),
            # spectral init needs a connected-enough graph; tiny sets use random init
            "init": str(given.get("init", "spectral" if n >= 10 else "random")),
            "spread": float(given.get("spread", 1.0)),
        }
        if "n_epochs" in given and given["n_epochs"] is not None:
            out["n_epochs"] = int(given["n_epochs"])
        if not 0.0 <= out["min_dist"] <= out["spread"]:
            raise ConfigError(
                f"UMAP min_dist must be in [0, spread={out['spread']}], got {out['min_dist']}",
                fix="use min_dist=0.1",
            )
        return out

    def fit(self, X: np.ndarray, params: dict[str, Any], seed: int) -> np.ndarray:
        with warnings.catch_warnings():
            # "n_jobs value 1 overridden to 1 by setting random_state": determinism is the point
            warnings.filterwarnings("ignore", message=".*random_state.*", category=UserWarning)
            warnings.filterwarnings("ignore", message=".*n_jobs.*", category=UserWarning)
            warnings.filterwarnings("ignore", category=FutureWarning)
            warnings.filterwarnings("ignore", category=ImportWarning)  # "Tensorflow not installed"
            import umap  # numba: seconds of import and JIT, so only here (never on a page view)

            kwargs = {k: v for k, v in params.items() if k != "n_epochs"}
            if "n_epochs" in params:
                kwargs["n_epochs"] = params["n_epochs"]
            reducer = umap.UMAP(n_components=2, random_state=seed, **kwargs)
            return reducer.fit_transform(X.astype(np.float32))


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
    (at most n - 1) and ``min_dist=0.1``. Values are plain JSON types, so the
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

"""Classical heads as torch modules: a fitted scikit-learn pipeline computed from its arrays, stored without pickle.

The estimators (``logreg``, ``svc-linear``, ``svc-rbf``) and the head names
``<estimator>-<aggregation>`` are in ``_classical_estimators``. Probabilities:
``logreg``'s are its ``predict_proba`` (the softmax of its decision values);
an SVM's are ``softmax(decision / T)`` over its one-vs-rest decision values.

``T``, the SVMs' temperature, minimises the negative log-likelihood over
``T > 0`` of held-out decision values: those of a calibration split when one is
given (the validation split, for heads fitted on the training split; see
``core.train``), else 5-fold cross-fitted ones on the fit split itself (each
fold predicted by the same pipeline fitted on the other folds), never the
in-sample decisions, on which a separable fit would drive ``T`` to zero. It
rescales the one-vs-rest decision values and never changes the predicted class.

:class:`ClassicalClassifier` is the fitted pipeline as a torch module, on a
feature matrix made of ``blocks`` (one block per modality): a standardiser
(``StandardScaler``), with ``reduce`` a PCA per block (``PCA(k)`` with ``k =
min(components, block size, samples)``, the reduced blocks concatenated), then
the estimator's decision function computed from its exported arrays
(``coef``/``intercept``; or, for the RBF SVM, the union of the per-class support
vectors with a dense ``(C', U)`` matrix of dual coefficients). Arrays are float64
and the module computes in float64, so its decisions equal scikit-learn's to
rounding. Fitted arrays live in the module's ``state_dict`` (saved to
``model.safetensors``: preprocessing statistics as buffers, the estimator's
coefficients and support vectors as parameters without gradient); its settings
and fitted scalars (``gamma``, ``T``, shapes) go into ``config.json``.
:meth:`ClassicalClassifier.to_sklearn` rebuilds the scikit-learn pipeline from
those arrays alone. A class absent from the fit split has no decision value; its
logit is :data:`MISSING_CLASS_LOGIT` (probability ~0, finite log-probability).
"""
from __future__ import annotations

import math
import warnings
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from core.errors import DataError
from core.fusion._base import ClassicalEstimator
from core.fusion._classical_estimators import validated_settings
from core.fusion.registry import CLASSICAL_ESTIMATORS

#: The logit of a class the estimator never saw in its fit split.
MISSING_CLASS_LOGIT = -1.0e4


def _f64(a: Any) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(a, dtype=np.float64))


# --------------------------------------------------------------------------- the torch module

def _fit_temperature(decision: np.ndarray, y: np.ndarray) -> float:
    """The ``T > 0`` minimising the mean negative log-likelihood of ``softmax(decision / T)`` at ``y``."""
    from scipy.optimize import minimize_scalar
    from scipy.special import logsumexp

    if len(y) == 0:
        return 1.0

    def nll(log_t: float) -> float:
        z = decision / math.exp(log_t)
        return float(np.mean(logsumexp(z, axis=1) - z[np.arange(len(y)), y]))

    best = minimize_scalar(nll, bounds=(-6.0, 6.0), method="bounded", options={"xatol": 1e-4})
    return float(math.exp(best.x)) if nll(float(best.x)) <= nll(0.0) else 1.0


def _two_columns(decision: np.ndarray) -> np.ndarray:
    """scikit-learn's decision values as ``(n, classes)``: a binary estimator's ``d`` becomes ``[0, d]``."""
    d = np.asarray(decision, dtype=np.float64)
    if d.ndim == 1:
        d = d[:, None]
    return np.concatenate([np.zeros_like(d), d], axis=1) if d.shape[1] == 1 else d


class ClassicalClassifier(nn.Module):
    """A fitted scikit-learn pipeline (standardiser, optional PCA per block, estimator) as a torch module.

    Input: a ``(B, sum(blocks))`` feature matrix. ``settings``: ``C``,
    ``components``, ``max_iter`` (:data:`CLASSICAL_DEFAULTS`). ``fitted``: what
    :meth:`fit` found (``classes``: the class indices the estimator saw;
    ``components``: the PCA size per block, with ``reduce``; ``n_support``;
    ``gamma``; ``temperature``; ``converged``), as :attr:`fitted` returns it for
    ``config.json``; with it, the arrays are allocated for a ``state_dict`` to
    fill. ``forward`` returns log-probabilities over all ``n_classes``.
    """

    def __init__(self, estimator: str, blocks: Sequence[int], n_classes: int, reduce: bool = False,
                 settings: Mapping[str, Any] | None = None, fitted: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        self.estimator_name = estimator
        self.spec: ClassicalEstimator = CLASSICAL_ESTIMATORS.create(estimator)
        self.blocks = [int(b) for b in blocks]
        self.n_classes = int(n_classes)
        self.reduce = bool(reduce)
        self.settings = validated_settings(settings)
        self.fitted: dict[str, Any] | None = None
        self.pipeline_: Any = None  # the scikit-learn pipeline fit() trained (not saved)
        if fitted is not None:
            self._allocate(dict(fitted))

    # -- shapes ---------------------------------------------------------------------------

    @property
    def n_features(self) -> int:
        return sum(self.blocks)

    def expected_shapes(self, fitted: Mapping[str, Any] | None = None) -> dict[str, tuple[int, ...]]:
        """Name -> shape of every array the fitted settings call for."""
        f = self.fitted if fitted is None else fitted
        if f is None:
            return {}
        shapes: dict[str, tuple[int, ...]] = {"scaler_mean": (self.n_features,), "scaler_scale": (self.n_features,)}
        width = self.n_features
        if self.reduce:
            for i, (k, d) in enumerate(zip(f["components"], self.blocks)):
                shapes[f"pca_components_{i}"] = (int(k), d)
                shapes[f"pca_mean_{i}"] = (d,)
            width = sum(int(k) for k in f["components"])
        n_out = 1 if len(f["classes"]) == 2 else len(f["classes"])
        if self.spec.kernel == "rbf":
            shapes["support_vectors"] = (int(f["n_support"]), width)
            shapes["dual_coef"] = (n_out, int(f["n_support"]))
        else:
            shapes["coef"] = (n_out, width)
        shapes["intercept"] = (n_out,)
        return shapes

    def _fitted_problems(self, f: Mapping[str, Any]) -> list[str]:
        out = []
        classes = f.get("classes")
        if not (isinstance(classes, list) and len(classes) >= 2 and len(set(classes)) == len(classes)
                and all(isinstance(c, int) and 0 <= c < self.n_classes for c in classes)):
            out.append(f"'classes' = {classes!r} is not a list of two or more distinct class indices below "
                       f"{self.n_classes}")
        if self.reduce:
            comps = f.get("components")
            if not (isinstance(comps, list) and len(comps) == len(self.blocks)
                    and all(isinstance(k, int) and 1 <= k <= d for k, d in zip(comps, self.blocks))):
                out.append(f"'components' = {comps!r} is not one PCA size per block (each 1 to the block's "
                           f"size {self.blocks})")
        if self.spec.kernel == "rbf":
            n_support, gamma = f.get("n_support"), f.get("gamma")
            if not (isinstance(n_support, int) and n_support >= 0):
                out.append(f"'n_support' = {n_support!r} is not a count")
            if not (isinstance(gamma, (int, float)) and math.isfinite(gamma) and gamma > 0):
                out.append(f"'gamma' = {gamma!r} is not a positive number")
        t = f.get("temperature")
        if not (isinstance(t, (int, float)) and math.isfinite(t) and t > 0):
            out.append(f"'temperature' = {t!r} is not a positive number")
        return out

    def _allocate(self, fitted: dict[str, Any]) -> None:
        problems = self._fitted_problems(fitted)
        if problems:
            raise ValueError(f"classical head {self.estimator_name}: its fitted settings are wrong: "
                             f"{'; '.join(problems)}")
        self.fitted = fitted
        for name, shape in self.expected_shapes().items():
            blank = torch.zeros(shape, dtype=torch.float64)
            if name.startswith(("scaler_", "pca_")):
                self.register_buffer(name, blank)  # preprocessing statistics
            else:
                self.register_parameter(name, nn.Parameter(blank, requires_grad=False))  # the estimator's weights

    def array_problems(self, state: Mapping[str, torch.Tensor]) -> list[str]:
        """What is wrong with stored arrays (keys relative to this module) against the fitted settings:
        a missing array, a shape the settings do not call for, a non-finite value, a scale <= 0."""
        if self.fitted is None:
            return ["the head has no fitted settings ('fitted' in config.json)"]
        out = []
        for name, shape in self.expected_shapes().items():
            if name not in state:
                out.append(f"array {name!r} is missing")
                continue
            got = tuple(state[name].shape)
            if got != shape:
                out.append(f"array {name!r} has shape {got}, but its settings ({self._describe()}) need {shape}")
            elif not torch.isfinite(state[name].double()).all():
                out.append(f"array {name!r} holds non-finite values")
            elif name == "scaler_scale" and not bool((state[name] > 0).all()):
                out.append("array 'scaler_scale' holds values <= 0")
        return out

    def _describe(self) -> str:
        f = self.fitted or {}
        parts = [f"n_classes = {len(f.get('classes', []))}", f"n_features = {self.n_features}"]
        if self.reduce:
            parts.append(f"components = {f.get('components')}")
        if self.spec.kernel == "rbf":
            parts.append(f"n_support = {f.get('n_support')}")
        return ", ".join(parts)

    # -- fitting --------------------------------------------------------------------------

    def _sklearn_steps(self, components: Sequence[int]) -> list[tuple[str, Any]]:
        from sklearn.compose import ColumnTransformer
        from sklearn.decomposition import PCA
        from sklearn.preprocessing import StandardScaler

        steps: list[tuple[str, Any]] = [("scale", StandardScaler())]
        if self.reduce:
            starts = np.cumsum([0, *self.blocks])
            steps.append(("reduce", ColumnTransformer(
                [(f"block{i}", PCA(int(k), svd_solver="full"), list(range(starts[i], starts[i + 1])))
                 for i, k in enumerate(components)])))
        return steps

    def _pipeline(self, n_samples: int, seed: int) -> tuple[Any, list[int] | None]:
        """An unfitted scikit-learn pipeline for ``n_samples`` rows, and its PCA size per block."""
        from sklearn.pipeline import Pipeline

        components = [min(int(self.settings["components"]), d, n_samples) for d in self.blocks] \
            if self.reduce else None
        steps = [*self._sklearn_steps(components or []), ("estimator", self.spec.make(self.settings, seed))]
        return Pipeline(steps), components

    @staticmethod
    def _fit_quietly(pipeline: Any, x: np.ndarray, y: np.ndarray) -> bool:
        """Fit ``pipeline``; whether it converged (no ``ConvergenceWarning``)."""
        from sklearn.exceptions import ConvergenceWarning
        from threadpoolctl import threadpool_limits

        # BLAS threads as torch's for this job (core.threads): a small fit gains nothing from more
        with warnings.catch_warnings(record=True) as caught, threadpool_limits(limits=torch.get_num_threads()):
            warnings.simplefilter("always", ConvergenceWarning)
            pipeline.fit(x, y)
        return not any(issubclass(w.category, ConvergenceWarning) for w in caught)

    def _cross_fitted(self, x: np.ndarray, y: np.ndarray, classes: list[int], seed: int,
                      folds: int = 5) -> tuple[np.ndarray, np.ndarray]:
        """Held-out decision values of ``(x, y)`` by k-fold cross-fitting, over ``classes`` (a class a fold's
        model never saw gets -inf), and the row positions of the true classes; rows whose class their
        fold's model never saw are left out."""
        from sklearn.model_selection import KFold

        rows, labels = [], []
        for kept, held in KFold(min(folds, len(y)), shuffle=True, random_state=seed).split(x):
            seen = np.unique(y[kept])
            if len(seen) < 2:
                continue
            pipeline, _ = self._pipeline(len(kept), seed)
            self._fit_quietly(pipeline, x[kept], y[kept])
            full = np.full((len(held), len(classes)), -np.inf)
            full[:, np.searchsorted(classes, seen)] = _two_columns(pipeline.decision_function(x[held]))
            known = np.isin(y[held], seen)
            rows.append(full[known])
            labels.append(np.searchsorted(classes, y[held][known]))
        if not rows:
            return np.zeros((0, len(classes))), np.zeros(0, dtype=np.int64)
        return np.concatenate(rows), np.concatenate(labels)

    def fit(self, x: np.ndarray, y: np.ndarray, x_cal: np.ndarray | None = None, y_cal: np.ndarray | None = None,
            seed: int = 0) -> ClassicalClassifier:
        """Fit the pipeline on ``(x, y)``; an SVM's temperature on ``(x_cal, y_cal)`` when given, else on
        cross-fitted decisions of ``(x, y)``. Returns self."""
        x, y = np.asarray(x, dtype=np.float64), np.asarray(y).astype(np.int64)
        if x.ndim != 2 or x.shape[1] != self.n_features or len(x) != len(y):
            raise DataError(f"classical head {self.estimator_name}: features of shape {x.shape} with {len(y)} "
                            f"labels, expected (n, {self.n_features}) and n labels",
                            fix="pass one feature row per label, blocks in the head's order")
        classes = sorted(int(c) for c in np.unique(y))
        if len(classes) < 2 or classes[0] < 0 or classes[-1] >= self.n_classes:
            raise DataError(f"classical head {self.estimator_name}: the fit split holds the classes {classes}, "
                            f"two or more of 0..{self.n_classes - 1} are needed",
                            fix="use a split with samples of at least two classes")
        seed = int(seed) % (2**31)
        pipeline, components = self._pipeline(len(x), seed)
        converged = self._fit_quietly(pipeline, x, y)
        arrays = self._export(pipeline)
        arrays_est, scalars = self.spec.export(pipeline.named_steps["estimator"])
        arrays.update(arrays_est)
        fitted: dict[str, Any] = {"classes": classes, "temperature": 1.0, "converged": converged}
        if components is not None:
            fitted["components"] = components
        if self.spec.kernel == "rbf":
            fitted["n_support"] = int(arrays["support_vectors"].shape[0])
            fitted["gamma"] = float(scalars["gamma"])
        if not self.spec.probabilistic:
            if x_cal is not None and y_cal is not None:
                y_cal = np.asarray(y_cal).astype(np.int64)
                keep = np.isin(y_cal, classes)
                d = _two_columns(pipeline.decision_function(np.asarray(x_cal, dtype=np.float64)[keep]))
                fitted["temperature"] = _fit_temperature(d, np.searchsorted(classes, y_cal[keep]))
                fitted["temperature_from"] = "calibration split"
            else:
                fitted["temperature"] = _fit_temperature(*self._cross_fitted(x, y, classes, seed))
                fitted["temperature_from"] = "cross-fitted"
        self._allocate(fitted)
        with torch.no_grad():
            for name, value in arrays.items():
                getattr(self, name).copy_(torch.from_numpy(value))
        self.pipeline_ = pipeline
        return self

    def _export(self, pipeline: Any) -> dict[str, np.ndarray]:
        scaler = pipeline.named_steps["scale"]
        arrays = {"scaler_mean": _f64(scaler.mean_), "scaler_scale": _f64(scaler.scale_)}
        if self.reduce:
            for i, (_, pca, _) in enumerate(pipeline.named_steps["reduce"].transformers_[:len(self.blocks)]):
                arrays[f"pca_components_{i}"] = _f64(pca.components_)
                arrays[f"pca_mean_{i}"] = _f64(pca.mean_)
        return arrays

    # -- prediction -----------------------------------------------------------------------

    def _require_fitted(self) -> dict[str, Any]:
        if self.fitted is None:
            raise RuntimeError(f"classical head {self.estimator_name} is not fitted; call fit() or load its arrays")
        return self.fitted

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        """The estimator's input (float64): standardised features, reduced per block by PCA with ``reduce``."""
        self._require_fitted()
        z = (x.double() - self.scaler_mean) / self.scaler_scale
        if not self.reduce:
            return z
        parts, start = [], 0
        for i, d in enumerate(self.blocks):
            block = z[:, start:start + d] - getattr(self, f"pca_mean_{i}")
            parts.append(block @ getattr(self, f"pca_components_{i}").T)
            start += d
        return torch.cat(parts, dim=-1)

    def decision(self, x: torch.Tensor) -> torch.Tensor:
        """scikit-learn's ``decision_function`` (float64), ``(B, C')``: one column for two classes."""
        z = self.transform(x)
        if self.spec.kernel == "rbf":
            sv = self.support_vectors
            d2 = (z * z).sum(-1, keepdim=True) + (sv * sv).sum(-1)[None, :] - 2.0 * (z @ sv.T)
            return torch.exp(-float(self._require_fitted()["gamma"]) * d2.clamp_min(0.0)) @ self.dual_coef.T \
                + self.intercept
        return z @ self.coef.T + self.intercept

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Logits over all ``n_classes`` (float64): decisions / T; :data:`MISSING_CLASS_LOGIT` for unseen classes."""
        fitted = self._require_fitted()
        d = self.decision(x)
        if d.shape[1] == 1:
            d = torch.cat([torch.zeros_like(d), d], dim=1)
        out = torch.full((d.shape[0], self.n_classes), MISSING_CLASS_LOGIT, dtype=torch.float64, device=d.device)
        out[:, fitted["classes"]] = d / float(fitted["temperature"])
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.log_softmax(self.logits(x), dim=-1).float()

    # -- scikit-learn again -----------------------------------------------------------------

    def to_sklearn(self) -> Any:
        """The fitted scikit-learn ``Pipeline`` rebuilt from the arrays and settings alone (nothing unpickled):
        ``StandardScaler``, with ``reduce`` one ``PCA`` whose components are the blocks' (block-diagonal),
        then the estimator. On the feature matrix, its ``decision_function`` is :meth:`decision`'s."""
        from sklearn.decomposition import PCA
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import StandardScaler

        fitted = self._require_fitted()
        arrays = {k: v.detach().cpu().numpy().astype(np.float64) for k, v in
                  [*self.named_buffers(recurse=False), *self.named_parameters(recurse=False)]}
        scaler = StandardScaler()
        scaler.mean_, scaler.scale_ = arrays["scaler_mean"], arrays["scaler_scale"]
        scaler.var_ = scaler.scale_ ** 2
        scaler.n_features_in_, scaler.n_samples_seen_ = self.n_features, 0
        steps: list[tuple[str, Any]] = [("scale", scaler)]
        width = self.n_features
        if self.reduce:
            width = sum(fitted["components"])
            comps = np.zeros((width, self.n_features))
            row = col = 0
            for i, (k, d) in enumerate(zip(fitted["components"], self.blocks)):
                comps[row:row + k, col:col + d] = arrays[f"pca_components_{i}"]
                row, col = row + k, col + d
            pca = PCA(width, svd_solver="full")
            pca.components_, pca.n_components_ = comps, width
            pca.mean_ = np.concatenate([arrays[f"pca_mean_{i}"] for i in range(len(self.blocks))])
            pca.explained_variance_ = np.ones(width)  # unused without whitening
            pca.n_features_in_, pca.n_samples_ = self.n_features, 0
            steps.append(("reduce", pca))
        scalars = {"gamma": fitted["gamma"]} if "gamma" in fitted else {}
        steps.append(("estimator", self.spec.rebuild(arrays, scalars, self.settings, width)))
        return Pipeline(steps)


__all__ = ["ClassicalClassifier", "MISSING_CLASS_LOGIT"]

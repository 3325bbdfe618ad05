"""The scikit-learn estimators of the classical heads, registered in ``CLASSICAL_ESTIMATORS``, and their names.

A classical head is named ``<estimator>-<aggregation>`` (``logreg-early``,
``svc-rbf-late``; :func:`list_classical`, :func:`parse_classical`). Each
estimator (:class:`~core.fusion.ClassicalEstimator`) makes the unfitted
scikit-learn estimator, exports a fitted one's arrays (float64) and scalars,
and rebuilds the fitted estimator from them alone (nothing unpickled):

==============  ====================================================  ====================
name            scikit-learn estimator                                exported arrays
==============  ====================================================  ====================
``logreg``      ``LogisticRegression`` (lbfgs; multinomial)           ``coef``, ``intercept``
``svc-linear``  ``LinearSVC`` (liblinear; one-vs-rest)                ``coef``, ``intercept``
``svc-rbf``     ``OneVsRestClassifier(SVC(kernel="rbf",               ``support_vectors``,
                gamma="scale"))``: one binary SVC per class           ``dual_coef``,
                                                                      ``intercept``; ``gamma``
==============  ====================================================  ====================
"""
from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np

from core.errors import ConfigError, DataError, choices, did_you_mean
from core.fusion._base import ClassicalEstimator
from core.fusion.registry import CLASSICAL_ESTIMATORS, list_classical

#: How a classical head aggregates the modalities: ``early`` (concatenated embeddings), ``intermediate``
#: (each embedding reduced by PCA, then concatenated), ``late`` (stacking the unimodal classifiers' probabilities).
AGGREGATIONS = ("early", "intermediate", "late")
#: The settings of a classical head and their defaults (``[train.classical]`` of an experiment file).
CLASSICAL_DEFAULTS: dict[str, Any] = {"C": 1.0, "components": 32, "max_iter": 2000}


# --------------------------------------------------------------------------- names

def classical_name(estimator: str, aggregation: str) -> str:
    return f"{estimator}-{aggregation}"


def is_classical(name: str) -> bool:
    """Whether ``name`` is a classical head's name (a registered estimator, a supported aggregation)."""
    return name in list_classical()


def parse_classical(name: str) -> tuple[str, str]:
    """``(estimator, aggregation)`` of a head name; an unknown estimator or an aggregation it does not
    support is a ConfigError naming the choices."""
    estimator, _, aggregation = str(name).rpartition("-")
    known = CLASSICAL_ESTIMATORS.names()
    if estimator not in CLASSICAL_ESTIMATORS:
        raise ConfigError(f"{name!r} is not a classical head: no classical estimator {estimator or name!r}",
                          fix=f"{did_you_mean(name, list_classical())}write <estimator>-<aggregation> with an "
                              f"estimator of: {choices(known)} and an aggregation of: {choices(AGGREGATIONS)}")
    supported = CLASSICAL_ESTIMATORS.meta(estimator)["aggregations"]
    if aggregation not in supported:
        raise ConfigError(f"classical head {estimator!r} does not support the aggregation {aggregation!r} "
                          f"(in {name!r})",
                          fix=f"{did_you_mean(aggregation, supported)}use one of: "
                              f"{choices(classical_name(estimator, a) for a in supported)}")
    return estimator, aggregation


def validated_settings(settings: Mapping[str, Any] | None) -> dict[str, Any]:
    """``settings`` over :data:`CLASSICAL_DEFAULTS`; unknown keys and bad values are a ConfigError."""
    given = dict(settings or {})
    unknown = sorted(set(given) - set(CLASSICAL_DEFAULTS))
    if unknown:
        raise ConfigError(f"classical head got unknown setting(s): {', '.join(unknown)}",
                          fix=f"use only: {choices(CLASSICAL_DEFAULTS)}")
    out = {**CLASSICAL_DEFAULTS, **given}
    if not (isinstance(out["C"], (int, float)) and out["C"] > 0 and math.isfinite(out["C"])):
        raise ConfigError(f"classical head C = {out['C']!r} is not a positive number", fix="set C > 0 (default 1.0)")
    for key in ("components", "max_iter"):
        if isinstance(out[key], bool) or not isinstance(out[key], int) or out[key] < 1:
            raise ConfigError(f"classical head {key} = {out[key]!r} is not an integer >= 1",
                              fix=f"set {key} = {CLASSICAL_DEFAULTS[key]} (the default)")
    return out


# --------------------------------------------------------------------------- estimators

def _f64(a: Any) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(a, dtype=np.float64))


class _LinearEstimator(ClassicalEstimator):
    """Shared part of the linear estimators: ``coef_`` and ``intercept_`` are all there is."""

    kernel = "linear"

    def export(self, fitted: Any) -> tuple[dict[str, Any], dict[str, float]]:
        return {"coef": _f64(fitted.coef_), "intercept": _f64(fitted.intercept_).reshape(-1)}, {}

    def _blank(self, settings: dict[str, Any]) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def rebuild(self, arrays: dict[str, Any], scalars: dict[str, float], settings: dict[str, Any],
                n_features: int) -> Any:
        est = self._blank(settings)
        est.coef_ = _f64(arrays["coef"])
        est.intercept_ = _f64(arrays["intercept"])
        n_out = est.coef_.shape[0]
        est.classes_ = np.arange(2 if n_out == 1 else n_out)
        est.n_features_in_ = int(n_features)
        est.n_iter_ = np.zeros(1, dtype=np.int32)
        return est


@CLASSICAL_ESTIMATORS.register("logreg", label="Logistic regression", aggregations=AGGREGATIONS)
class LogisticRegressionEstimator(_LinearEstimator):
    """``LogisticRegression(C, max_iter)``, lbfgs: multinomial for three classes or more."""

    probabilistic = True

    def make(self, settings: dict[str, Any], seed: int) -> Any:
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(C=float(settings["C"]), max_iter=int(settings["max_iter"]), random_state=seed)

    def _blank(self, settings: dict[str, Any]) -> Any:
        return self.make(settings, 0)


@CLASSICAL_ESTIMATORS.register("svc-linear", label="Linear SVM (one-vs-rest)", aggregations=AGGREGATIONS)
class LinearSVCEstimator(_LinearEstimator):
    """``LinearSVC(C, max_iter)`` (liblinear, squared hinge), one-vs-rest by construction."""

    def make(self, settings: dict[str, Any], seed: int) -> Any:
        from sklearn.svm import LinearSVC

        return LinearSVC(C=float(settings["C"]), max_iter=int(settings["max_iter"]), random_state=seed)

    def _blank(self, settings: dict[str, Any]) -> Any:
        return self.make(settings, 0)


@CLASSICAL_ESTIMATORS.register("svc-rbf", label="RBF SVM (one-vs-rest)", aggregations=AGGREGATIONS)
class RBFSVCEstimator(ClassicalEstimator):
    """One ``SVC(kernel="rbf", C, gamma="scale")`` per class against the rest (``OneVsRestClassifier``).

    Exported as the union of the binary machines' support vectors ``(U, D)``,
    a dense ``dual_coef`` ``(C', U)`` (row ``k``: machine ``k``'s ``y_i alpha_i``,
    zero where a vector is not one of its support vectors), ``intercept`` and ``gamma``:
    ``decision_k(x) = sum_i dual_coef[k, i] exp(-gamma |x - sv_i|^2) + intercept[k]``.
    """

    kernel = "rbf"

    def make(self, settings: dict[str, Any], seed: int) -> Any:
        from sklearn.multiclass import OneVsRestClassifier
        from sklearn.svm import SVC

        return OneVsRestClassifier(SVC(kernel="rbf", C=float(settings["C"]), gamma="scale",
                                       max_iter=-1, random_state=seed))

    def export(self, fitted: Any) -> tuple[dict[str, Any], dict[str, float]]:
        machines = fitted.estimators_
        if any(not hasattr(m, "support_vectors_") for m in machines):
            raise DataError("an RBF SVM of the classical head was fitted on a constant label column",
                            fix="give every class at least one sample in the fit split")
        rows: dict[int, np.ndarray] = {}
        for m in machines:
            for i, v in zip(m.support_, m.support_vectors_):
                rows.setdefault(int(i), v)
        order = sorted(rows)
        pos = {i: j for j, i in enumerate(order)}
        dual = np.zeros((len(machines), len(order)))
        for k, m in enumerate(machines):
            dual[k, [pos[int(i)] for i in m.support_]] = m.dual_coef_[0]
        gammas = {float(m._gamma) for m in machines}
        if len(gammas) != 1:
            raise DataError(f"the RBF SVMs of a classical head were fitted with different gammas {sorted(gammas)}",
                            fix="fit every one-vs-rest machine on the same features")
        sv = np.stack([rows[i] for i in order]) if order else np.zeros((0, fitted.n_features_in_))
        return ({"support_vectors": _f64(sv), "dual_coef": _f64(dual),
                 "intercept": _f64([m.intercept_[0] for m in machines])}, {"gamma": gammas.pop()})

    def rebuild(self, arrays: dict[str, Any], scalars: dict[str, float], settings: dict[str, Any],
                n_features: int) -> Any:
        from sklearn.multiclass import OneVsRestClassifier
        from sklearn.preprocessing import LabelBinarizer
        from sklearn.svm import SVC

        sv, dual, intercept = _f64(arrays["support_vectors"]), _f64(arrays["dual_coef"]), _f64(arrays["intercept"])
        gamma = float(scalars["gamma"])
        machines = []
        for k in range(dual.shape[0]):
            used = np.flatnonzero(dual[k] != 0)
            used = used[np.argsort(dual[k, used] > 0, kind="stable")]  # the rest's vectors first, as libsvm has them
            m = SVC(kernel="rbf", C=float(settings["C"]), gamma=gamma)
            coef = dual[k, used][None, :].copy()
            m.support_vectors_ = np.ascontiguousarray(sv[used])
            m.support_ = np.arange(len(used), dtype=np.int32)
            m._n_support = np.array([int((coef < 0).sum()), int((coef > 0).sum())], dtype=np.int32)
            m.dual_coef_, m._dual_coef_ = coef, -coef
            m.intercept_ = intercept[k:k + 1].copy()
            m._intercept_ = -m.intercept_
            m._probA = m._probB = np.empty(0, dtype=np.float64)
            m._gamma, m._sparse, m.fit_status_ = gamma, False, 0
            m.shape_fit_ = (len(used), int(n_features))
            m.n_features_in_ = int(n_features)
            m.classes_ = np.array([0, 1])
            m.class_weight_ = np.ones(2)
            m._effective_probability = False
            m._num_iter = np.zeros(1, dtype=np.int32)
            machines.append(m)
        n_classes = 2 if len(machines) == 1 else len(machines)
        ovr = OneVsRestClassifier(SVC(kernel="rbf", C=float(settings["C"]), gamma="scale"))
        ovr.estimators_ = machines
        ovr.label_binarizer_ = LabelBinarizer(sparse_output=True).fit(np.arange(n_classes))
        ovr.classes_ = ovr.label_binarizer_.classes_
        ovr.n_features_in_ = int(n_features)
        return ovr


__all__ = [
    "AGGREGATIONS",
    "CLASSICAL_DEFAULTS",
    "LinearSVCEstimator",
    "LogisticRegressionEstimator",
    "RBFSVCEstimator",
    "classical_name",
    "is_classical",
    "parse_classical",
    "validated_settings",
]

"""The estimator contract: a boolean-mask game in, one :class:`ShapleyValues` out.

A *game* is a function ``value_fn(mask) -> outputs``: ``mask`` is a boolean
matrix of shape ``(B, n_features)`` (True = feature present, False = masked)
and the function returns the ``B`` scalar outputs of the masked variants.
Estimators only ever talk to the model through this function, and always in
batches (:class:`Evaluator`: chunks of ``batch_size`` rows, each distinct row
once).

Every estimator is a subclass of :class:`Estimator` registered in
:data:`ESTIMATORS` (one module each: ``exact``, ``permutation``, ``kernel``,
``recombined``); ``__init__`` only stores parameters and
:meth:`Estimator.estimate` computes. Also here: the FLOP cost model shared by
the factorised estimators (:func:`head_row_flops`).
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field, replace
from typing import Any, Callable, ClassVar

import numpy as np

from core.errors import ConfigError
from core.registry import Registry

#: More permutations than this is refused: use exact or the kernel estimator instead.
MAX_PERMUTATIONS = 10_000
#: Per-row overhead of a head pass, in FLOPs (indexing, softmax, Python), added to the counted FLOPs.
HEAD_ROW_OVERHEAD_FLOPS = 200_000

ValueFn = Callable[[np.ndarray], Any]

#: name -> estimator class; ``create_estimator(name, **params)`` builds one.
ESTIMATORS: Registry["Estimator"] = Registry("Shapley estimator")


@dataclass(frozen=True, eq=False)
class ShapleyValues:
    """Shapley values of one game.

    ``values[j]`` is player ``j``'s value; they sum to ``full_value - base_value``
    (efficiency) for every method. ``n_evals`` counts the distinct masks that
    ``value_fn`` evaluated. ``stderr`` is the standard error of each value (None
    for exact values); ``replicates``, where the estimator has them, are its
    independent and identically distributed units, shape ``(B, n)``, whose mean
    is ``values`` (a permutation walk; a block of recombined walks): the standard
    error of anything computed from the values (a modality's share) is taken
    from them (:func:`core.explain.share_stderr`).
    """

    values: np.ndarray
    base_value: float
    full_value: float
    stderr: np.ndarray | None
    method: str
    n_evals: int
    settings: dict[str, Any] = field(default_factory=dict)
    replicates: np.ndarray | None = None

    @property
    def n_features(self) -> int:
        return int(self.values.shape[0])

    def recorded_as(self, method: str) -> "ShapleyValues":
        """The same values with ``settings["method"]`` set to ``method`` (the method a caller asked
        for, for example ``"auto"``, where the estimator records its own name)."""
        if self.settings.get("method") == method:
            return self
        return replace(self, settings={**self.settings, "method": method})


# --------------------------------------------------------------------------- evaluation


def as_outputs(out: Any, n_rows: int) -> np.ndarray:
    if hasattr(out, "detach"):  # torch tensor
        out = out.detach().cpu().numpy()
    arr = np.asarray(out, dtype=np.float64)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.shape != (n_rows,):
        raise ConfigError(
            f"value_fn returned shape {tuple(arr.shape)} for {n_rows} masks",
            fix="return one scalar per mask row, shape (B,)",
        )
    return arr


class Evaluator:
    """Calls ``value_fn`` in chunks of ``batch_size`` rows and counts evaluations."""

    def __init__(self, value_fn: ValueFn, n_features: int, batch_size: int) -> None:
        self.value_fn = value_fn
        self.n_features = n_features
        self.batch_size = batch_size
        self.n_evals = 0

    def raw(self, masks: np.ndarray) -> np.ndarray:
        """Evaluate every row of ``masks`` (assumed distinct)."""
        masks = np.ascontiguousarray(masks, dtype=bool)
        out = np.empty(len(masks), dtype=np.float64)
        for start in range(0, len(masks), self.batch_size):
            chunk = masks[start:start + self.batch_size]
            out[start:start + len(chunk)] = as_outputs(self.value_fn(chunk), len(chunk))
        self.n_evals += len(masks)
        return out

    def __call__(self, masks: np.ndarray) -> np.ndarray:
        """Evaluate the rows of ``masks``, each distinct row once."""
        if len(masks) == 0:
            return np.empty(0, dtype=np.float64)
        packed = np.packbits(masks, axis=1)
        keys = np.ascontiguousarray(packed).view(np.dtype((np.void, packed.shape[1]))).ravel()
        _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
        # evaluate distinct rows in order of first appearance, so calls are reproducible
        order = np.argsort(first, kind="stable")
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        distinct = masks[first[order]]
        return self.raw(distinct)[rank[inverse.ravel()]]


def check_int(name: str, value: Any, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ConfigError(f"{name} must be an integer, got {value!r}", fix=f"pass an integer {name}")
    value = int(value)
    if value < low or (high is not None and value > high):
        bounds = f">= {low}" if high is None else f"between {low} and {high}"
        raise ConfigError(f"{name}={value} is out of range", fix=f"use {name} {bounds}")
    return value


def head_row_flops(head_flops: float) -> float:
    """FLOPs of one head row of a factorised game: counted FLOPs plus :data:`HEAD_ROW_OVERHEAD_FLOPS`."""
    return head_flops + HEAD_ROW_OVERHEAD_FLOPS


# --------------------------------------------------------------------------- the contract


class Estimator(ABC):
    """One way to estimate Shapley values from a boolean-mask game.

    The one method every estimator provides is :meth:`estimate`. ``__init__``
    only stores parameters (scikit-learn style); every estimator takes
    ``n_permutations`` (the reference's budget: ``n_permutations (2n + 1)``
    evaluations, or its number of walks) and ``seed`` (same seed, same values),
    and records both in its result's ``settings`` with its ``method`` name.
    """

    #: the name it is registered and recorded under
    name: ClassVar[str]

    def __init__(self, *, n_permutations: int = 10, seed: int = 0) -> None:
        self.n_permutations = n_permutations
        self.seed = seed

    @abstractmethod
    def estimate(self, game: ValueFn, n_features: int, *, batch_size: int = 256) -> ShapleyValues:
        """Shapley values of ``game`` over ``n_features`` players, calling ``game`` on at most
        ``batch_size`` masks at a time.

        The values sum to ``full_value - base_value`` (efficiency), a player the
        game ignores gets 0, and ``settings`` records ``method``,
        ``n_permutations``, ``seed`` and what else decided the values. A sampled
        estimate's ``stderr`` is computed from its independent units (never from
        draws that share parts) and ``settings["stderr"]`` says from which;
        ``tests/core/explain/test_stderr.py`` holds every estimator to it.
        """

    def evaluations(self, n_features: int) -> int:
        """Evaluations :meth:`estimate` plans for ``n_features`` players (a progress bar's total)."""
        return int(self.n_permutations) * (2 * int(n_features) + 1)

    def _result(self, values: np.ndarray, base: float, full: float, stderr: np.ndarray | None,
                ev: Evaluator, settings: dict[str, Any], n_permutations: int | None = None,
                replicates: np.ndarray | None = None) -> ShapleyValues:
        """The result with ``settings`` followed by ``method``, ``n_permutations`` and ``seed``."""
        settings = dict(settings)
        settings.update(method=self.name,
                        n_permutations=self.n_permutations if n_permutations is None else n_permutations,
                        seed=self.seed)
        return ShapleyValues(values=values, base_value=base, full_value=full, stderr=stderr, method=self.name,
                             n_evals=ev.n_evals, settings=settings, replicates=replicates)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(n_permutations={self.n_permutations}, seed={self.seed})"


def create_estimator(name: str, **params: Any) -> Estimator:
    """Build the registered estimator ``name``; unknown names list the known ones."""
    return ESTIMATORS.create(name, **params)


def list_estimators() -> list[str]:
    """Names of the registered estimators, in registration order."""
    return ESTIMATORS.names()

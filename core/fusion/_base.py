"""The contracts of the fusion registries: a fusion method, and a classical head's estimator."""
from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn


class FusionMethod(nn.Module):
    """Fuses a list of per-modality embeddings into one vector.

    Subclasses take ``in_dims`` (one embedding size per modality, two or more)
    and ``dim`` (the shared projection size), set ``self.out_dim`` in
    ``__init__``, and implement ``forward(xs) -> (B, out_dim)`` where ``xs`` is
    a list of ``(B, in_dims[i])`` tensors in the order of ``in_dims``.
    """

    strategy: ClassVar[str] = "intermediate"
    out_dim: int

    def __init__(self, in_dims: list[int], dim: int = 128) -> None:
        super().__init__()
        if len(in_dims) < 2:
            raise ValueError(f"{type(self).__name__} fuses two or more modalities, got {len(in_dims)}")
        self.in_dims = list(in_dims)
        self.dim = dim

    def forward(self, xs: list[torch.Tensor]) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


class ClassicalEstimator:
    """The contract of a scikit-learn estimator that a classical head fits (``CLASSICAL_ESTIMATORS``).

    ``kernel`` says which arrays the fitted estimator exports and how the head's
    torch module computes its decision function from them: ``"linear"``
    (``coef`` ``(C', D)``, ``intercept`` ``(C',)``) or ``"rbf"``
    (``support_vectors`` ``(U, D)``, ``dual_coef`` ``(C', U)``, ``intercept``
    ``(C',)`` and the scalar ``gamma``), ``C'`` being 1 for two classes and the
    class count otherwise, as scikit-learn's ``decision_function``.
    ``probabilistic``: its ``predict_proba`` is the softmax of its decision
    values (no temperature is fitted).
    """

    kernel: ClassVar[str] = "linear"
    probabilistic: ClassVar[bool] = False

    def make(self, settings: dict[str, Any], seed: int) -> Any:  # pragma: no cover - abstract
        """An unfitted scikit-learn estimator with these settings."""
        raise NotImplementedError

    def export(self, fitted: Any) -> tuple[dict[str, Any], dict[str, float]]:  # pragma: no cover - abstract
        """``(arrays, scalars)`` of a fitted estimator: float64 numpy arrays and plain floats."""
        raise NotImplementedError

    def rebuild(self, arrays: dict[str, Any], scalars: dict[str, float], settings: dict[str, Any],
                n_features: int) -> Any:  # pragma: no cover - abstract
        """The fitted scikit-learn estimator again, from ``export``'s arrays and scalars alone."""
        raise NotImplementedError

"""Tabular encoders: an MLP on standardised numeric columns.

``prepare`` standardises every column with the training split's mean and
standard deviation (learnt by ``fit_preprocessing``, kept as buffers and so
saved in the run's safetensors), so that 0 in model-input space is the
training mean of a column: the MM-SHAP fill of a masked column. A column that
is constant in training is only centred. With ``missing="mean"`` (the tabular
kind's ``missing`` option) NaN entries are allowed: the statistics are computed
on the non-missing training values and a NaN becomes 0, the training mean.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from core.encoders.registry import ENCODERS
from core.encoders._base import Encoder
from core.errors import ConfigError, DataError


def vectors_to_tensor(items: Sequence[Any], n: int, *, allow_nan: bool = False) -> torch.Tensor:
    """Stack 1-D numeric vectors of length ``n`` into a (B, n) float32 tensor (a DataError otherwise;
    NaN entries only with ``allow_nan``)."""
    rows = []
    for i, item in enumerate(items):
        v = np.asarray(item)
        if v.ndim != 1 or v.shape[0] != n or not np.issubdtype(v.dtype, np.number):
            raise DataError(f"tabular item {i} has shape {v.shape} and dtype {v.dtype}, expected {n} numbers",
                            fix=f"give every sample a 1-D vector of {n} numbers (the encoder was built for {n})")
        if np.isinf(v).any() or (not allow_nan and np.isnan(v).any()):
            raise DataError(f"tabular item {i} holds NaN or infinite values",
                            fix="give finite numbers only" + ("" if allow_nan else
                                                              ', or build the encoder with missing="mean"'))
        rows.append(v.astype(np.float32))
    if not rows:
        return torch.zeros(0, n)
    return torch.from_numpy(np.stack(rows))


@ENCODERS.register("mlp", kind="tabular")
class MLPEncoder(Encoder):
    """An MLP (``layers`` hidden layers of ``hidden`` units, ReLU, dropout) on standardised columns.

    ``in_features`` and ``feature_names`` are filled in from the data at training
    (the vector's length and the manifest column names) and saved with the run;
    ``missing="mean"`` accepts NaN entries and sets them to the column's training mean.
    """

    kind = "tabular"
    registry_name = "mlp"

    def __init__(self, in_features: int | None = None, hidden: int = 64, out_dim: int = 32, layers: int = 2,
                 dropout: float = 0.1, feature_names: list[str] | None = None, missing: str = "refuse") -> None:
        super().__init__()
        if in_features is None:
            raise ConfigError("the mlp encoder needs in_features (the length of the vector)",
                              fix="training sets it from the data; from Python pass in_features=<number of columns>")
        if isinstance(in_features, bool) or int(in_features) != in_features or in_features < 1:
            raise ConfigError(f"in_features = {in_features!r} is not a positive integer",
                              fix="give the number of columns")
        if isinstance(layers, bool) or int(layers) != layers or layers < 1:
            raise ConfigError(f"layers = {layers!r} is not an integer >= 1", fix="use layers = 2 (the default)")
        self.in_features, self.hidden, self.out_dim = int(in_features), int(hidden), int(out_dim)
        self.layers, self.dropout = int(layers), float(dropout)
        names = [str(n) for n in feature_names] if feature_names is not None else None
        if names is not None and len(names) != self.in_features:
            raise ConfigError(f"{len(names)} feature_names for {self.in_features} columns",
                              fix="give one name per column, or none")
        self.feature_names = names or [f"f{i}" for i in range(self.in_features)]
        if missing not in ("refuse", "mean"):
            raise ConfigError(f"missing = {missing!r} is not a rule", fix='use "refuse" (the default) or "mean"')
        self.missing = missing
        self.register_buffer("mean", torch.zeros(self.in_features))
        self.register_buffer("std", torch.ones(self.in_features))
        blocks: list[nn.Module] = []
        width = self.in_features
        for _ in range(self.layers):
            blocks += [nn.Linear(width, self.hidden), nn.ReLU(), nn.Dropout(self.dropout)]
            width = self.hidden
        blocks.append(nn.Linear(width, self.out_dim))
        self.net = nn.Sequential(*blocks)

    def fit_preprocessing(self, items: Sequence[Any]) -> None:
        """Per-column mean and standard deviation of the training items (of their non-missing
        values; a column missing in every item gets mean 0 and deviation 1)."""
        x = vectors_to_tensor(items, self.in_features, allow_nan=self.missing == "mean").double()
        if len(x) == 0:
            raise DataError("no training items to fit the column statistics on", fix="give the train split samples")
        seen = ~torch.isnan(x)
        if seen.all():
            mean, std, count = x.mean(dim=0), x.std(dim=0, unbiased=False), seen.sum(dim=0)
        else:
            count = seen.sum(dim=0)
            mean = torch.where(seen, x, 0.0).sum(dim=0) / count.clamp_min(1)
            std = (torch.where(seen, x - mean, 0.0) ** 2).sum(dim=0).div(count.clamp_min(1)).sqrt()
        self.mean.copy_(mean.float())
        self.std.copy_(torch.where((std > 1e-12) & (count > 0), std, torch.ones_like(std)).float())

    def prepare(self, items: Sequence[Any]) -> dict[str, torch.Tensor]:
        x = vectors_to_tensor(items, self.in_features, allow_nan=self.missing == "mean")
        return {"features": torch.nan_to_num((x - self.mean.cpu()) / self.std.cpu(), nan=0.0)}  # NaN: the mean

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.net(inputs["features"].to(self.mean.device))

    def structure(self, inputs: dict[str, torch.Tensor]) -> dict[str, Any]:
        return {"n_features": self.in_features, "feature_names": list(self.feature_names)}

    def spec(self) -> dict[str, Any]:
        return {"name": "mlp", "kwargs": {"in_features": self.in_features, "hidden": self.hidden,
                                           "out_dim": self.out_dim, "layers": self.layers, "dropout": self.dropout,
                                           "feature_names": list(self.feature_names), "missing": self.missing}}

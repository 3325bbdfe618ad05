"""Seeded draws shared by the scene sampler and the depth degradation."""
from __future__ import annotations

from typing import Sequence

import numpy as np


def uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    """One uniform draw in [lo, hi) as a Python float."""
    return float(rng.uniform(lo, hi))


def jitter(rng: np.random.Generator, color: Sequence[float], amount: float = 0.06) -> np.ndarray:
    """``color`` with a random brightness (+-10 %) and per-channel offset (+-``amount``), in [0, 1]."""
    return np.clip(np.asarray(color) * uniform(rng, 0.9, 1.1) + rng.uniform(-amount, amount, 3), 0.0, 1.0)

"""Tolerances that follow from float32 arithmetic, for every float comparison in the tests.

The models compute in float32: ``EPS32 = 2**-23 ~ 1.19e-7`` is the gap between 1.0 and
the next float32, and one rounding moves a value of magnitude ``s`` by at most
``EPS32 / 2 * s``. A reduction (sum, dot product, matrix product, mean) of ``n`` terms of
magnitude up to ``s`` accumulates about ``EPS32 * s * sqrt(n)`` (rounding errors add
like a random walk), and the same reduction done in another order (another batch size,
another BLAS blocking, another thread count, another CPU's vector width) differs from
the first by that much. So two results that went through float32 agree to

    atol = k * EPS32 * scale * sqrt(n)

with ``scale`` the magnitude of the float32 values summed (not of the result, which may
cancel: a logit of 0.01 made of terms of size 3 carries the rounding of 3), ``n`` the
length of the longest reduction, and ``k`` a safety factor (default 16) for the few
chained layers and the nonlinearity after them (softmax and tanh have slopes <= 1, so
they do not amplify the error). Results computed wholly in float64 from the same inputs
use :data:`EPS64` the same way; when float32 values feed float64 math (Shapley sums over
a table of float32 model outputs cast to float64), the float32 term is the one that counts.

Exact equality (``assert_array_equal``, ``==``) stays only where the code guarantees it:
the same inputs through the same deterministic operations in the same process and thread
count (a seeded rerun, a value read back from a file, a hand-set number copied through),
and each such assertion says so in a comment.
"""
from __future__ import annotations

import math

import numpy as np

EPS32 = float(np.finfo(np.float32).eps)
EPS64 = float(np.finfo(np.float64).eps)
#: safety factor over the random-walk estimate
K = 16.0


def f32_atol(scale: float = 1.0, n: int = 1, k: float = K) -> float:
    """Absolute tolerance for a value that went through float32 reductions of ``n`` terms of
    magnitude ``scale``: ``k * EPS32 * scale * sqrt(n)``."""
    return float(k * EPS32 * max(abs(float(scale)), EPS32) * math.sqrt(max(int(n), 1)))


def f64_atol(scale: float = 1.0, n: int = 1, k: float = K) -> float:
    """The same rule for a value computed in float64 throughout."""
    return float(k * EPS64 * max(abs(float(scale)), EPS64) * math.sqrt(max(int(n), 1)))


def f32_rtol(n: int = 1, k: float = K) -> float:
    """Relative tolerance for a float32 result of ``n``-term reductions without cancellation."""
    return f32_atol(1.0, n, k)


def output_atol(logit_scale: float = 1.0, k: float = K) -> float:
    """Two float32 evaluations of one network output (another batch size, thread count or
    CPU) differ by a few ulps of the logits' scale (at most 4 measured on the tiny runs,
    1 and 2 threads, batches of 1 and 37); a probability taken from them differs by no more
    (softmax has slope <= 1/2). ``logit_scale``: the largest |logit| involved, at least 1."""
    return f32_atol(max(1.0, float(logit_scale)), 1, k)


def shapley_atol(logit_scale: float = 1.0, k: float = K) -> float:
    """Shapley values from two such evaluations of the same game: each value is a weighted
    sum of output differences whose weights add up to 1, so it moves by at most twice
    :func:`output_atol`."""
    return 2.0 * output_atol(logit_scale, k)


def longest_reduction(model) -> int:
    """The most terms one output element of ``model``'s linear and convolution layers sums:
    the ``n`` of the rule for a whole network's outputs."""
    import torch

    n = 1
    for module in model.modules():
        if isinstance(module, torch.nn.Linear):
            n = max(n, module.in_features)
        elif isinstance(module, torch.nn.modules.conv._ConvNd):
            n = max(n, module.in_channels // module.groups * math.prod(module.kernel_size))
    return n

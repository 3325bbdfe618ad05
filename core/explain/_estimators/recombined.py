"""The recombined estimator: permutation walks in independent blocks, each recombining one order per modality.

A *block* draws one random order of each modality's features (their prefixes
and suffixes are all that modality's encoder ever sees) and walks
``walks_per_block`` permutations, each a uniformly random interleaving of the
block's orders, forward and backward (antithetic). Every walk is a uniformly
random permutation, so the estimate is unbiased and exactly efficient (each
walk telescopes to ``full - base``), and a modality the model ignores gets
exactly 0. A modality whose orders would visit as many sub-masks as it has (a
4-token title) is *tabulated*: its encoder sees every sub-mask and each walk
takes a fresh order of it.

On a factorised game a block costs its orders' sub-masks once per modality
(``2 n_m - 2`` encoder rows) and every walk only head passes; unfactorised,
every walk costs ``2n - 2`` whole-model passes (the same estimate, at a cost:
``docs/EXPLAIN.md``).

Standard errors: walks of one block share its orders, so they are not
independent; blocks are (independent orders, independent interleavings). The
stderr is the spread of the ``n_blocks`` block means, ``std (ddof 1) /
sqrt(n_blocks)`` (a Student t with ``n_blocks - 1`` degrees of freedom), and
the block means are the result's ``replicates`` (from which the shares'
standard errors are taken, :func:`core.explain.share_stderr`). Treating the
walks as independent, as before engine version 2, understated the error
several-fold (median ``|phi| / stderr`` 8.6 on RGB-D runs with 2 orders per
modality).

The plan (:func:`plan_recombined`) depends on the game's shape only (players
per modality, blocks, walks per block), never on counted or timed costs, so
every run of an experiment with the same modalities is explained with the same
estimator and settings, factorised or not.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from core.errors import ConfigError
from core.explain._estimators.base import ESTIMATORS, Estimator, Evaluator, ShapleyValues, check_int
from core.explain._estimators.permutation import replicate_stderr, walk_contributions

#: Most blocks (orders per modality) and walks a plan takes.
MAX_BLOCKS, MAX_WALKS = 1000, 10_000


@dataclass(frozen=True)
class RecombinedPlan:
    """How ``"recombined"`` walks one game shape: ``n_blocks`` independent blocks of
    ``walks_per_block`` walks, one order per (untabulated) modality per block."""

    sizes: tuple[int, ...]
    n_blocks: int
    walks_per_block: int
    tabulated: tuple[bool, ...]

    @property
    def n_walks(self) -> int:
        return self.n_blocks * self.walks_per_block

    @property
    def orders(self) -> tuple[int, ...]:
        """Distinct orders per modality: one per block; a tabulated modality's are fresh per walk."""
        return tuple(self.n_walks if t else self.n_blocks for t in self.tabulated)

    @property
    def encoder_rows(self) -> tuple[int, ...]:
        """Most sub-masks each modality's encoder sees (every one of a tabulated modality)."""
        return tuple(2 ** s if t else min(2 ** s, self.n_blocks * _chain_rows(s) + 2)
                     for s, t in zip(self.sizes, self.tabulated))

    @property
    def head_rows(self) -> int:
        """Most distinct coalitions evaluated: head rows of a factorised game, whole-model passes of
        an unfactorised one."""
        n = sum(self.sizes)
        return int(min(2 ** n, 2 + self.n_walks * max(0, 2 * n - 2)))


def _chain_rows(n_m: int) -> int:
    """Sub-masks one antithetic order adds beyond the empty and full ones."""
    return max(0, 2 * n_m - 2)


def plan_recombined(sizes: Sequence[int], n_blocks: int, walks_per_block: int = 1) -> RecombinedPlan:
    """The plan for players ``sizes`` (per modality): ``n_blocks`` blocks of ``walks_per_block``
    walks; a modality whose ``n_blocks`` orders would visit all its ``2^{n_m}`` sub-masks is
    tabulated. Depends on the shape only, so it is the same for every run and machine."""
    sizes = tuple(int(s) for s in sizes)
    n_blocks = check_int("n_blocks", n_blocks, 1, MAX_BLOCKS)
    walks_per_block = check_int("walks_per_block", walks_per_block, 1, MAX_WALKS // n_blocks)
    tab = tuple(2 ** s <= n_blocks * _chain_rows(s) + 2 for s in sizes)
    return RecombinedPlan(sizes, n_blocks, walks_per_block, tab)


def recombined_permutations(plan: RecombinedPlan, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The walks of ``plan`` for ``seed``: orders ``(n_walks, n)`` and each walk's block.

    Modality ``m`` owns features ``offset_m .. offset_m + sizes[m] - 1``. Block ``b`` draws
    one order per untabulated modality, then its walks: a uniformly random interleaving of the
    modalities each, a fresh order of every tabulated one. Blocks are drawn one after the
    other from one generator, so a plan with more blocks extends one with fewer.
    """
    rng = np.random.default_rng([seed, 0x5EED, 2])
    sizes = plan.sizes
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
    n = int(offsets[-1])
    labels = np.repeat(np.arange(len(sizes)), sizes)
    out = np.empty((plan.n_walks, n), dtype=np.int64)
    w = 0
    for _ in range(plan.n_blocks):
        fixed = [None if tab else rng.permutation(s) for s, tab in zip(sizes, plan.tabulated)]
        for _ in range(plan.walks_per_block):
            slots = rng.permutation(labels)
            for m, s in enumerate(sizes):
                if s:
                    order = rng.permutation(s) if fixed[m] is None else fixed[m]
                    out[w, slots == m] = offsets[m] + order
            w += 1
    return out, np.repeat(np.arange(plan.n_blocks), plan.walks_per_block)


def game_sizes(game: Any, n_features: int) -> tuple[int, ...]:
    """Players per modality of a game (``game.sizes``), else one modality of ``n_features``."""
    sizes = getattr(game, "sizes", None)
    return (int(n_features),) if sizes is None else tuple(int(s) for s in sizes)


@ESTIMATORS.register("recombined")
class RecombinedEstimator(Estimator):
    """``n_blocks`` independent blocks (default ``n_permutations``) of ``walks_per_block`` walks,
    or an explicit ``plan``. The game tells its modality structure by ``game.sizes`` (players
    per modality, in order; :class:`core.explain.SampleGame` does), else it is one modality."""

    name = "recombined"

    def __init__(self, *, n_permutations: int = 10, seed: int = 0, n_blocks: int | None = None,
                 walks_per_block: int = 1, plan: RecombinedPlan | None = None) -> None:
        super().__init__(n_permutations=n_permutations, seed=seed)
        self.n_blocks = n_blocks
        self.walks_per_block = walks_per_block
        self.plan = plan

    def plan_for(self, sizes: Sequence[int]) -> RecombinedPlan:
        if self.plan is not None:
            return self.plan
        return plan_recombined(sizes, self.n_permutations if self.n_blocks is None else self.n_blocks,
                               self.walks_per_block)

    def evaluations(self, n_features: int) -> int:
        plan = self.plan_for((n_features,)) if self.plan is None else self.plan
        return 2 + plan.n_walks * max(0, 2 * int(n_features) - 2)

    def estimate(self, game: Any, n_features: int, *, batch_size: int = 256) -> ShapleyValues:
        sizes = game_sizes(game, n_features)
        plan = self.plan_for(sizes)
        if plan.sizes != sizes:
            raise ConfigError(f"the plan is for players {plan.sizes}, the game has {sizes}",
                              fix="plan the game's own sizes (plan_recombined(game.sizes, ...))")
        perms, block = recombined_permutations(plan, self.seed)
        ev = Evaluator(game, n_features, batch_size)
        _, per_walk, base, full = walk_contributions(ev, n_features, perms)
        block_means = per_walk.reshape(plan.n_blocks, plan.walks_per_block, n_features).mean(axis=1)
        values = block_means.mean(axis=0)
        players = list(getattr(game, "players", [f"m{i}" for i in range(len(sizes))]))
        settings = dict(n_blocks=plan.n_blocks, walks_per_block=plan.walks_per_block, n_walks=plan.n_walks,
                        orders={m: int(o) for m, o in zip(players, plan.orders)},
                        tabulated={m: bool(t) for m, t in zip(players, plan.tabulated)},
                        stderr=f"between {plan.n_blocks} independent blocks")
        return self._result(values, base, full, replicate_stderr(block_means), ev, settings,
                            n_permutations=self.n_permutations, replicates=block_means)

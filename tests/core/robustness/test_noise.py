"""The noises of every modality kind on raw items: level 0 is the identity, a higher level perturbs
more, the same seed gives the same noise, and a level outside [0, 1] is refused."""
from __future__ import annotations

import numpy as np
import pytest

from core.errors import ConfigError
from core.kinds import list_kinds
from core.robustness import (NOISES, check_level, fit_noise, get_noise, noise_levels, noises_for, perturb_items)

RNG = np.random.default_rng(0)
IDS = [f"s{i}" for i in range(6)]


def _items(kind: str) -> list:
    """A few raw items of ``kind``, as its ``load`` returns them."""
    if kind == "text":
        return [" ".join(f"w{i}{j}" for j in range(12)) for i in range(len(IDS))]
    if kind == "image":
        return [RNG.integers(0, 256, (16, 16, 3)).astype(np.uint8) for _ in IDS]
    if kind == "video":
        return [RNG.integers(0, 256, (4, 12, 12, 3)).astype(np.uint8) for _ in IDS]
    if kind == "tabular":
        return [RNG.normal(size=6).astype(np.float32) * [1, 2, 3, 4, 5, 6] for _ in IDS]
    if kind == "timeseries":
        t = np.linspace(0, 6, 40)[:, None]
        return [(np.sin(t * [1, 2, 3] + RNG.uniform(0, 6, 3)) + RNG.normal(0, 0.05, (40, 3))).astype(np.float32)
                for _ in IDS]
    if kind == "audio":
        t = np.arange(1600) / 16000
        return [(0.3 * np.sin(2 * np.pi * RNG.uniform(200, 800) * t)).astype(np.float32) for _ in IDS]
    raise AssertionError(f"no test items for kind {kind!r}: add them here")


def _distance(a, b) -> float:
    if isinstance(a, str):
        return float(len(a.split()) - len(b.split()))
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    diff = np.abs(a - b)
    diff[np.isnan(diff)] = 10.0 * (np.nanmax(np.abs(a)) + 1.0)  # a value lost: as far as it gets
    return float(diff.mean())


CASES = [(kind, noise) for kind in list_kinds() for noise in noises_for(kind)]


def test_every_kind_has_a_noise():
    for kind in list_kinds():
        assert noises_for(kind), f"kind {kind!r} has no noise: register one in core/robustness/_noise.py"
    assert {NOISES.meta(n)["kind"] for n in NOISES.names()} <= set(list_kinds())


@pytest.mark.parametrize("kind,noise", CASES)
def test_level_zero_is_the_identity_and_higher_levels_perturb_more(kind, noise):
    items = _items(kind)
    stats = fit_noise(kind, noise, items)
    out0 = perturb_items(kind, noise, items, 0.0, ids=IDS, modality="m", stats=stats)
    assert all(o is i for o, i in zip(out0, items))
    levels = [0.0, 0.25, 0.5, 0.75, 1.0]
    dist = []
    for level in levels:
        out = perturb_items(kind, noise, items, level, ids=IDS, modality="m", stats=stats)
        assert len(out) == len(items)
        for o, i in zip(out, items):
            assert type(o) is type(i) and (isinstance(o, str) or (o.shape == i.shape and o.dtype == i.dtype))
        dist.append(np.mean([_distance(i, o) for i, o in zip(items, out)]))
    assert dist[0] == 0.0 and dist[-1] > 0.0
    assert all(b >= a - 1e-9 for a, b in zip(dist, dist[1:])), dist


@pytest.mark.parametrize("kind,noise", CASES)
def test_the_noise_is_seeded_per_sample(kind, noise):
    items = _items(kind)
    stats = fit_noise(kind, noise, items)
    a = perturb_items(kind, noise, items, 0.6, ids=IDS, modality="m", stats=stats, seed=3)
    b = perturb_items(kind, noise, items, 0.6, ids=IDS, modality="m", stats=stats, seed=3)
    c = perturb_items(kind, noise, items, 0.6, ids=IDS, modality="m", stats=stats, seed=4)
    assert all(_distance(x, y) == 0.0 for x, y in zip(a, b))
    assert any(_distance(x, y) != 0.0 for x, y in zip(a, c))
    # one sample's noise does not depend on which other samples are perturbed with it
    alone = perturb_items(kind, noise, items[2:3], 0.6, ids=IDS[2:3], modality="m", stats=stats, seed=3)
    assert _distance(alone[0], a[2]) == 0.0


@pytest.mark.parametrize("level", [-0.1, 1.01, float("nan"), "0.5", True, None])
def test_a_level_outside_zero_one_is_refused(level):
    with pytest.raises(ConfigError, match="outside \\[0, 1\\].*Fix: use a level between 0"):
        perturb_items("text", "token-dropout", ["a b"], level, ids=["x"], modality="t")
    with pytest.raises(ConfigError):
        check_level(level)


def test_unknown_noise_names_the_kinds_noises():
    with pytest.raises(ConfigError, match="no noise 'blur'.*pixel-noise, occlusion"):
        get_noise("image", "blur")
    assert noises_for("features") == noises_for("tabular")  # an old kind name resolves


def test_known_answers():
    # token dropout at level 1 leaves nothing; occlusion at level 1 is the item's mean colour everywhere
    assert perturb_items("text", "token-dropout", ["a b c"], 1.0, ids=["x"], modality="t") == [""]
    img = np.zeros((4, 4, 3), np.uint8)
    img[:2] = 200
    out = perturb_items("image", "occlusion", [img], 1.0, ids=["x"], modality="i")[0]
    assert (out == 100).all()
    # a quarter of the area at level 0.25: a 2 x 2 box of a 4 x 4 image
    out = perturb_items("image", "occlusion", [np.arange(48, dtype=np.uint8).reshape(4, 4, 3)], 0.25, ids=["x"],
                        modality="i")[0]
    assert (out != np.arange(48).reshape(4, 4, 3)).any(-1).sum() <= 4
    # tabular noise scales with the column's training sd: a constant column gets none
    train = [np.array([1.0, v], np.float32) for v in (0.0, 2.0, 4.0)]
    stats = fit_noise("tabular", "column-noise", train)
    out = perturb_items("tabular", "column-noise", train, 1.0, ids=["a", "b", "c"], modality="t", stats=stats)
    assert all(o[0] == 1.0 for o in out) and any(o[1] != t[1] for o, t in zip(out, train))
    assert noise_levels(11)[:3] == [0.0, 0.1, 0.2] and noise_levels(2) == [0.0, 1.0]
    with pytest.raises(ConfigError):
        noise_levels(1)

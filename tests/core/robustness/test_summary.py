"""MultiBench's summaries against hand-computed values, and the seeded missing-at-random table."""
from __future__ import annotations

import numpy as np
import pytest

from core.errors import ConfigError
from core.robustness import effective_robustness, missing_table, relative_robustness


def test_relative_robustness_is_the_area_under_the_curve():
    acc = [1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.0]
    # MultiBench: sum of (a_i + a_{i+1}) * 0.1 / 2 over 11 levels; a straight line from 1 to 0 has area 0.5
    assert relative_robustness(acc) == pytest.approx(0.5, abs=1e-12)
    assert relative_robustness([0.8] * 11) == pytest.approx(0.8, abs=1e-12)
    assert relative_robustness([0.6, 0.2], [0.0, 1.0]) == pytest.approx(0.4, abs=1e-12)
    # uneven levels: trapezoids of widths 0.5 and 0.5 -> (0.9 + 0.7) / 4 + (0.7 + 0.1) / 4 = 0.6
    assert relative_robustness([0.9, 0.7, 0.1], [0.0, 0.5, 1.0]) == pytest.approx(0.6, abs=1e-12)
    manual = sum((acc[i] + acc[i + 1]) * 0.1 / 2 for i in range(10))
    assert relative_robustness(acc) == pytest.approx(manual, abs=1e-12)


def test_effective_robustness_against_a_shifted_late_fusion_baseline():
    lf = [0.7, 0.6, 0.5]
    f = [0.9, 0.85, 0.6]
    # beta = lf + (0.9 - 0.7) = [0.9, 0.8, 0.7]; f - beta = [0, 0.05, -0.1]; summed: -0.05
    assert effective_robustness(f, lf) == pytest.approx(-0.05, abs=1e-12)
    assert effective_robustness(lf, lf) == pytest.approx(0.0, abs=1e-12)
    assert effective_robustness([0.5, 0.5, 0.5], [0.9, 0.8, 0.7]) == pytest.approx(0.3, abs=1e-12)
    with pytest.raises(ConfigError, match="same noise levels"):
        effective_robustness([0.5, 0.4], [0.5, 0.4, 0.3])
    with pytest.raises(ConfigError, match="finite accuracies"):
        relative_robustness([0.5, float("nan")])


def test_the_missing_table_is_seeded_per_sample_and_keeps_a_modality():
    ids = [f"s{i}" for i in range(400)]
    mods = ["image", "title", "description"]
    table = missing_table(ids, mods, 0.7, seed=0)
    assert table.shape == (400, 3) and table.any(1).all()  # every sample keeps at least one modality
    hit = (~table).any(1).mean()
    assert 0.6 < hit < 0.8  # about 70 % of samples lose one or more
    lost = (~table).sum(1)
    assert set(lost[lost > 0]) == {1, 2}  # one modality or several
    assert (missing_table(ids, mods, 0.7, seed=0) == table).all()
    assert (missing_table(ids[::7], mods, 0.7, seed=0) == table[::7]).all()  # whatever the subsample
    assert (missing_table(ids, mods, 0.7, seed=1) != table).any()
    assert missing_table(ids, mods, 0.0).all() and missing_table(ids, ["one"], 1.0).all()
    with pytest.raises(ConfigError, match="outside \\[0, 1\\]"):
        missing_table(ids, mods, 1.5)
    assert np.isclose((~missing_table(ids, mods, 1.0)).any(1).mean(), 1.0)

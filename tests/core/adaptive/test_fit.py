"""The adaptive training loop on a synthetic task with a known answer, and the decisions it stores."""
from __future__ import annotations

import pandas as pd
import pytest
import torch

from core.adaptive import decisions_frame, fit_adaptive, selection_rates
from core.fusion import AdaptiveHead

S, C, D = 4, 3, 8


def _task(n: int, g: torch.Generator) -> tuple[list[torch.Tensor], torch.Tensor]:
    """A costly modality ("rgb") whose embedding carries the class in one segment of four, which its summary
    flags; a cheap one ("audio") weakly informative everywhere."""
    y = torch.randint(0, C, (n,), generator=g)
    cue = torch.zeros(n, S)
    cue[torch.arange(n), torch.randint(0, S, (n,), generator=g)] = 1
    proto = torch.eye(C, D) * 3
    rgb = torch.randn(n, S, D, generator=g) + cue[..., None] * proto[y][:, None]
    rgb_summary = torch.stack([cue, 0.1 * torch.randn(n, S, generator=g)], -1)
    audio = torch.randn(n, S, D, generator=g) + 0.2 * proto[y][:, None]
    audio_summary = 0.1 * torch.randn(n, S, 2, generator=g)
    return [torch.cat([rgb, rgb_summary], -1).flatten(1), torch.cat([audio, audio_summary], -1).flatten(1)], y


@pytest.fixture(scope="module")
def task() -> tuple[dict, dict]:
    g = torch.Generator().manual_seed(1)
    splits = {s: _task(n, g) for s, n in (("train", 400), ("val", 150), ("test", 300))}
    return {s: v[0] for s, v in splits.items()}, {s: v[1] for s, v in splits.items()}


def _head() -> AdaptiveHead:
    torch.manual_seed(0)
    return AdaptiveHead([D, D], 16, n_classes=C, modalities=["rgb", "audio"], policy=["rgb", "audio"], segments=S,
                        summary_dims={"rgb": 2, "audio": 2})


CFG = {"epochs": 20, "lr": 0.01, "weight_decay": 1e-4, "batch_size": 64, "patience": 5, "warmup_epochs": 5,
       "cost_ramp_epochs": 8}


def test_the_policy_runs_the_costly_modality_where_its_summary_flags_the_cue(task):
    xs, y = task
    head = _head()
    record = fit_adaptive(head, xs, y, [0.5, 0.05], 1.0, (1.0, 0.1), CFG, seed=0)
    with torch.no_grad():
        logits, decisions = head.forward_parts(xs["test"])
        seg, summ, always = head.split(xs["test"])
        every = head.combine(seg, always, torch.ones(decisions.shape))
    top1 = float((logits.argmax(1) == y["test"]).float().mean())
    all_on = float((every.argmax(1) == y["test"]).float().mean())
    rates = selection_rates(decisions, head.policy)
    cue = summ["rgb"][..., 0] > 0.5
    assert 0.15 <= rates["rgb"] <= 0.45, rates  # one segment in four holds the cue
    assert decisions[..., 0][cue].float().mean() > 0.6 > decisions[..., 0][~cue].float().mean()
    assert top1 >= all_on - 0.03, (top1, all_on)  # at (nearly) the accuracy of running everything
    assert record["best_epoch"] < record["epochs_run"] and len(record["history"]) == record["epochs_run"]


def test_a_high_cost_runs_less_than_no_cost(task):
    xs, y = task
    rates = {}
    for weight in (0.0, 5.0):
        head = _head()
        # gamma = 0: a wrong prediction costs nothing, so only usage and cross-entropy count
        fit_adaptive(head, xs, y, [weight, weight], 0.0, (1.0, 0.1), CFG, seed=0)
        with torch.no_grad():
            rates[weight] = sum(selection_rates(head.forward_parts(xs["test"])[1], head.policy).values())
    assert rates[5.0] < 0.5 * rates[0.0], rates


def test_training_is_repeatable_with_a_seed(task):
    xs, y = task
    cfg = {**CFG, "epochs": 3, "warmup_epochs": 1, "cost_ramp_epochs": 1}
    runs = []
    for _ in range(2):
        head = _head()
        fit_adaptive(head, xs, y, [0.5, 0.05], 1.0, (1.0, 0.1), cfg, seed=3)
        runs.append(head.state_dict())
    # the same seeds and data through the same operations in one process: identical weights
    assert all(torch.equal(runs[0][k], runs[1][k]) for k in runs[0])


def test_decisions_frame_layout():
    decisions = torch.tensor([[[True, False], [False, False]], [[True, True], [False, True]]])
    frame = decisions_frame(["a", "b"], decisions, ["rgb", "depth"])
    assert list(frame.columns) == ["id", "segment", "modality", "used"]
    assert frame["used"].dtype == bool and len(frame) == 8
    one = frame[frame["id"] == "b"].pivot(index="modality", columns="segment", values="used")
    assert one.loc["depth"].tolist() == [True, True] and one.loc["rgb"].tolist() == [True, False]
    assert selection_rates(decisions, ["rgb", "depth"]) == pytest.approx({"rgb": 0.5, "depth": 0.5})
    assert isinstance(frame, pd.DataFrame)

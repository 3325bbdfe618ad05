"""Robustness tables of a tiny built experiment: each rule of a missing modality against a hand
computation, curves, resumability, the time budget, bad input and the CLI."""
from __future__ import annotations

import json
import shutil
import tomllib
from pathlib import Path

import numpy as np
import pytest
import torch

from core.bundle import load_run
from core.catalog import list_runs
from core.cli import main
from core.errors import BundleError, ConfigError
from core.data import load_experiment_dataset
from core.experiment import parse_experiment
from core.robustness import (ROBUSTNESS_FILE, RobustnessSettings, load_robustness, missing_rule, robustness_run,
                             robustness_runs)
from core.train import load_cached_embeddings, train_experiment

FAST = RobustnessSettings(levels=3, share_samples=0)
MDROP = "multconcat-mdrop-image+title+description"


@pytest.fixture(scope="module")
def rob_root(tiny_built, tmp_path_factory) -> Path:
    """A copy of the tiny experiment plus the modality-dropout twin of its MultConcat run."""
    exp_path, built = tiny_built
    root = tmp_path_factory.mktemp("robustness") / "runs"
    shutil.copytree(built, root)
    raw = tomllib.loads(exp_path.read_text())
    raw["fusion"]["dropout_runs"] = ["multconcat"]
    train_experiment(parse_experiment(raw, exp_path), root, only=[MDROP], progress=False)
    return root


def _acc(logits: torch.Tensor, y: np.ndarray) -> float:
    return float((logits.argmax(1).numpy() == y).mean())


def _train_mean(exp: Path, unimodal: str) -> torch.Tensor:
    ds, _ = load_experiment_dataset(exp)
    ids, cached = load_cached_embeddings(exp, unimodal)
    pos = {i: k for k, i in enumerate(ids)}
    return cached[[pos[i] for i in ds.ids("train")]].mean(0)


def _test_data(run):
    """The run's test embeddings per modality and labels, in prediction order (every test sample)."""
    emb = run.embeddings()
    y = np.array([run.classes.index(c) for c in run.predictions["label"]])
    return [torch.as_tensor(emb[m]) for m in run.modalities], y


def test_modality_dropout_trains_and_stores_its_missing_embedding(rob_root):
    run = load_run(rob_root / "tiny" / MDROP)
    assert run.config["fusion"] == "multconcat" and run.config["strategy"] == "intermediate"
    assert run.config["modality_dropout"] == {m: 0.3 for m in run.modalities}
    assert run.config["head"]["modality_dropout"] == [0.3, 0.3, 0.3]
    head = run.model().head
    assert head.missing is not None and [p.shape[0] for p in head.missing] == run.config["head"]["in_dims"]
    assert missing_rule(run.config) == "learned"
    # learned: started at the training mean embedding, moved by training
    assert not torch.allclose(head.missing[0].detach(), _train_mean(rob_root / "tiny", "unimodal-image"), atol=1e-4)
    plain = load_run(rob_root / "tiny" / "multconcat-image+title+description")
    assert plain.model().head.missing is None and missing_rule(plain.config) == "train-mean"


def test_each_missing_rule_against_a_hand_computation(rob_root):
    exp = rob_root / "tiny"
    robustness_runs(list_runs(exp), FAST, share_run=None)
    n_test = len(load_run(exp / "unimodal-title").predictions)
    # late fusion: the vote renormalised over the modalities present; without the image, the
    # late-average of image + title is the title classifier alone, i.e. the unimodal title run
    late = load_robustness(exp / "late-average-image+title")
    assert late["rule"] == "renormalised" and late["n"] == n_test
    assert late["missing"]["image"] == pytest.approx(load_robustness(exp / "unimodal-title")["clean"], abs=1e-9)
    # an intermediate head: the training split's mean embedding in place of the modality
    run = load_run(exp / "concat-image+title")
    embs, y = _test_data(run)
    mean = _train_mean(exp, "unimodal-title")  # the stage-2 cache: what the head trained on
    with torch.no_grad():
        by_hand = _acc(run.model().head([embs[0], mean.expand_as(embs[1])]), y)
    table = load_robustness(exp / "concat-image+title")
    assert table["rule"] == "train-mean" and table["missing"]["title"] == pytest.approx(by_hand, abs=1e-9)
    assert table["clean"] == pytest.approx(run.metrics["top1"], abs=1e-9)
    # modality dropout: the learned missing-modality embedding
    run = load_run(exp / MDROP)
    embs, y = _test_data(run)
    head = run.model().head
    with torch.no_grad():
        by_hand = _acc(head([embs[0], head.missing[1].detach().expand_as(embs[1]), embs[2]]), y)
    assert load_robustness(exp / MDROP)["missing"]["title"] == pytest.approx(by_hand, abs=1e-9)


def test_curves_summaries_and_the_shared_missing_pattern(rob_root):
    exp = rob_root / "tiny"
    robustness_runs(list_runs(exp), FAST, share_run=None)
    tables = {p.name: load_robustness(p) for p in list_runs(exp)}
    for name, t in tables.items():
        for m, per in t["noise"].items():
            for noise, curve in per.items():
                assert curve["levels"] == [0.0, 0.5, 1.0] and curve["accuracy"][0] == t["clean"]
                assert all(0.0 <= a <= 1.0 for a in curve["accuracy"])
                assert 0.0 <= curve["relative"] <= 1.0
        late = name.startswith("late-average")
        for m, per in t["noise"].items():  # the late-average run is its own baseline: effective 0
            if late and len(t["missing"]) == len(t["noise"]):
                assert all(c["effective"] == 0.0 and c["baseline"] == name for c in per.values())
    # every run over the same modalities sees the same missing-at-random pattern
    hits = {t["random_missing"][0]["n_missing"] for n, t in tables.items() if n.endswith("image+title+description")}
    assert len(hits) == 1
    assert set(tables["unimodal-image"]["noise"]["image"]) == {"pixel-noise", "occlusion"}


def test_tables_are_kept_until_forced_and_the_budget_leaves_runs(rob_root):
    exp = rob_root / "tiny"
    runs = list_runs(exp)
    robustness_runs(runs, FAST, share_run=None)
    again = robustness_runs(runs, FAST, share_run=None)
    assert again["computed"] == [] and len(again["kept"]) == len(runs)
    other = RobustnessSettings(levels=2, share_samples=0, samples=4)
    out = robustness_runs(runs[:2], other, time_limit=0.0, share_run=None)
    assert out["computed"] == [] and out["left"] == [p.resolve() for p in runs[:2]]
    out = robustness_runs(runs[:1], other, share_run=None)
    assert out["computed"] == [runs[0].name] and load_robustness(runs[0])["n"] == 4


def test_a_run_that_the_previous_ones_time_says_would_overrun_the_budget_is_not_started(rob_root, monkeypatch):
    import itertools
    import time

    runs = list_runs(rob_root / "tiny")[:2]
    other = RobustnessSettings(levels=2, share_samples=0, samples=3)
    ticks = itertools.count()
    monkeypatch.setattr(time, "perf_counter", lambda: float(next(ticks)))   # one second per reading
    first = robustness_runs(runs[:1], other, force=True, share_run=None)["per_run"][runs[0].name]
    # the first run ends about `first` seconds in, within the limit; the second would end about 2 x first in
    out = robustness_runs(runs, other, force=True, share_run=None, time_limit=1.5 * first + 1)
    assert out["computed"] == [runs[0].name] and out["left"] == [runs[1].resolve()]
    out = robustness_runs(runs, other, force=True, share_run=None, time_limit=3 * first + 10)
    assert out["computed"] == [r.name for r in runs] and out["left"] == []


def test_shares_of_perturbed_inputs(rob_root):
    run_dir = rob_root / "tiny" / "concat-image+title"
    table = robustness_run(run_dir, RobustnessSettings(levels=2, share_samples=2, share_levels=(0.0, 1.0)),
                           share_run="concat-image+title", force=True)
    shares = table["shares"]
    assert set(shares) == {"image", "title"}
    entry = shares["title"]["token-dropout"]
    assert entry["levels"] == [0.0, 1.0] and all(0 <= k <= 2 for k in entry["n"])
    for values in entry["shares"].values():
        assert len(values) == 2
    first = [entry["shares"][m][0] for m in ("image", "title")]
    assert entry["n"][0] == 0 or sum(first) == pytest.approx(1.0, abs=1e-6)
    assert table["shares_status"] == {"samples": 2, "planned": 2}


def test_shares_of_perturbed_inputs_stop_at_the_deadline_with_whole_samples(rob_root):
    """Past the build's deadline no explanation is started and an unfinished sample is dropped, so every curve
    rests on the same samples; the status says how many of how many."""
    import time

    from core.robustness import EmbeddingBank, share_curves
    from core.bundle import load_run

    run = load_run(rob_root / "tiny" / "concat-image+title")
    settings = RobustnessSettings(levels=2, share_samples=3, share_levels=(0.0, 1.0))
    bank = EmbeddingBank(run.path.parent, settings)
    curves, status = share_curves(run, run.model(), bank, settings, ["image", "title"], deadline=time.perf_counter())
    assert status == {"samples": 0, "planned": 3}
    for m in ("image", "title"):
        entry = next(iter(curves[m].values()))
        assert entry["n"] == [0, 0] and all(v is None for vs in entry["shares"].values() for v in vs)
    import types

    calls = []

    def clock() -> float:  # the deadline passes before the 6th explanation: inside the second sample
        calls.append(1)
        return 0.0 if len(calls) <= 5 else float("inf")

    with pytest.MonkeyPatch.context() as mp:  # the clock of share_curves' module only
        mp.setitem(share_curves.__globals__, "time", types.SimpleNamespace(perf_counter=clock))
        curves, status = share_curves(run, run.model(), bank, settings, ["image", "title"], deadline=1.0)
    assert status == {"samples": 1, "planned": 3}  # 4 explanations a sample: the second is dropped
    for m in ("image", "title"):
        entry = next(iter(curves[m].values()))
        assert len(entry["n"]) == 2 and max(entry["n"]) <= 1  # one sample (a flat prediction counts 0)


def test_bad_input_is_refused_with_the_fix(rob_root):
    run_dir = rob_root / "tiny" / "unimodal-title"
    with pytest.raises(ConfigError, match="have no modality 'image'.*Fix: use some of their modalities: title"):
        robustness_runs([run_dir], RobustnessSettings(modalities=("image",)))
    with pytest.raises(ConfigError, match="outside \\[0, 1\\]"):
        RobustnessSettings(missing_rates=(1.5,))
    with pytest.raises(ConfigError, match="outside \\[0, 1\\]"):
        RobustnessSettings(share_levels=(-0.5,))
    with pytest.raises(ConfigError, match="levels"):
        RobustnessSettings(levels=1)
    damaged = rob_root / "tiny" / "concat-image+title+description"
    (damaged / ROBUSTNESS_FILE).write_text('{"schema_version": 1, "noise": ')
    with pytest.raises(BundleError, match=f"{ROBUSTNESS_FILE}.*Fix: delete it and rerun .*robustness"):
        load_robustness(damaged)
    (damaged / ROBUSTNESS_FILE).write_text(json.dumps({"schema_version": 99}))
    with pytest.raises(BundleError, match="schema version 99"):
        load_robustness(damaged)
    (damaged / ROBUSTNESS_FILE).unlink()


def test_cli(rob_root, capsys):
    args = ["--runs-dir", str(rob_root), "--quiet", "robustness", "tiny", "--run", "late-average-image+title",
            "--levels", "3", "--share-samples", "0", "--force"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "late-average-image+title: clean top-1" in out and "without image" in out and "1 computed" in out
    assert main([*args[:-1], "--missing-rate", "1.5"]) == 2
    assert "outside [0, 1]" in capsys.readouterr().err
    assert main([*args, "--modality", "nope"]) == 2
    err = capsys.readouterr().err
    assert "no modality 'nope'" in err and "Fix: use some of their modalities: image, title" in err


def test_the_next_runs_time_leaves_out_the_shared_set_up_the_first_run_paid():
    from types import SimpleNamespace

    from core.robustness import RunTimes

    late = SimpleNamespace(config={"strategy": "late"})
    head = SimpleNamespace(config={"strategy": "intermediate"})
    early = SimpleNamespace(config={"strategy": "early"})
    adaptive = SimpleNamespace(config={"strategy": "adaptive"})
    times = RunTimes()
    assert times.predict(late, 2) == 0.0  # nothing measured yet: the first run always starts
    times.observe(late, 20.0, 18.0, 2)  # 18 s of it encoded two encoders' inputs, shared from then on
    assert times.predict(head, 0) == pytest.approx(2.0)  # a run on the same embeddings: its own work only
    assert times.predict(head, 1) == pytest.approx(2.0 + 9.0)  # one encoder not encoded yet: its set-up too
    times.observe(head, 0.1, 0.0, 0)
    assert times.predict(late, 0) == pytest.approx(0.1)
    # scored end to end and not seen yet: the longest run so far, not the last (cheap) one
    assert times.predict(early, 0) == pytest.approx(20.0)
    times.observe(late, 30.0, 0.0, 0, shares=True)  # explained up to the deadline: says nothing of the others
    assert times.predict(late, 0) == pytest.approx(0.1) and times.predict(early, 0) == pytest.approx(30.0)
    times.observe(early, 12.0, 0.5, 0)
    assert times.predict(early, 0) == pytest.approx(11.5) and times.predict(late, 0) == pytest.approx(0.1)
    assert times.predict(adaptive, 0) == pytest.approx(30.0)  # each end-to-end strategy on its own


def test_the_bank_times_its_shared_set_up_once_and_says_what_it_has_encoded(rob_root):
    from core.robustness import EmbeddingBank, Scorer, encoder_source

    run = load_run(rob_root / "tiny" / "concat-image+title")
    bank = EmbeddingBank(rob_root / "tiny", RobustnessSettings(levels=2, share_samples=0, samples=4))
    sources = {m: encoder_source(run.config, m) for m in run.modalities}
    assert bank.setup_seconds == 0.0 and not any(bank.encoded(s, m) for m, s in sources.items())
    scorer = Scorer(run, bank)
    scorer.curves(list(run.modalities), [0.0, 1.0], scorer.clean())
    assert all(bank.encoded(s, m) for m, s in sources.items())
    assert bank.setup_seconds >= bank.encode_seconds > 0.0
    spent = bank.setup_seconds
    scorer.curves(list(run.modalities), [0.0, 1.0], scorer.clean())  # all cached: no set-up left to pay
    assert bank.setup_seconds == spent

"""The MM-SHAP engine: factorised games, estimators, known answers, shap as oracle, bad input."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from torch import nn

from core.encoders import Encoder
from core.errors import ConfigError, DataError
from core.explain import (
    RECOMBINED_BUDGET,
    ExplainSettings,
    OutputSpec,
    SampleGame,
    build_maskers,
    encoder_batch_size,
    explain_inputs,
    explain_sample,
    is_factorisable,
    modality_shares,
    plan_recombined,
    recombined_permutations,
    resolve_run,
    run_inputs,
    shap_permutations,
)
from core.fusion import list_fusions
from core.model import IntermediateHead, LateHead, MultimodalClassifier
from tests._tolerance import f64_atol, output_atol, shapley_atol

# Tolerances (tests/_tolerance.py): values from two evaluations of a float32 model (another
# batch composition, factorised or not, another game) agree to shapley_atol(logit scale);
# identities inside one game (efficiency: the values telescope to full - base from the same
# table of outputs) hold to float64 rounding, f64_atol.

# --------------------------------------------------------------------------- toy models

VOCAB = ["a", "red", "blue", "cat", "dog", "on", "the", "mat", "big"]
CLASSES = ["c0", "c1", "c2"]


class ToyTextEncoder(Encoder):
    """Word ids with [CLS]=1 / [SEP]=2 around them; tanh of mean word vectors."""

    kind = "text"

    def __init__(self, dim: int = 4, seed: int = 0) -> None:
        super().__init__()
        self.vocab = {w: i + 3 for i, w in enumerate(VOCAB)}
        self.pad_token_id = 0
        g = torch.Generator().manual_seed(seed)
        self.emb = nn.Embedding(len(VOCAB) + 3, dim)
        with torch.no_grad():
            self.emb.weight.copy_(torch.randn(len(VOCAB) + 3, dim, generator=g))
        self.out_dim = dim

    def prepare(self, items):
        seqs = [[1, *(self.vocab[w] for w in t.split()), 2] for t in items]
        length = max(map(len, seqs))
        ids = torch.zeros(len(seqs), length, dtype=torch.long)
        att = torch.zeros_like(ids)
        special = torch.ones_like(ids)
        for i, s in enumerate(seqs):
            ids[i, : len(s)] = torch.tensor(s)
            att[i, : len(s)] = 1
            special[i, 1: len(s) - 1] = 0
        return {"input_ids": ids, "attention_mask": att, "special_tokens_mask": special}

    def forward(self, inputs):
        att = inputs["attention_mask"].unsqueeze(-1).float()
        x = self.emb(inputs["input_ids"]) * att
        return torch.tanh(x.sum(1) / att.sum(1).clamp_min(1) * 3)

    def tokens(self, inputs, index=0):
        inv = {v: k for k, v in self.vocab.items()} | {0: "[PAD]", 1: "[CLS]", 2: "[SEP]"}
        return [inv[int(i)] for i in inputs["input_ids"][index]]


class ToyImageEncoder(Encoder):
    kind = "image"

    def __init__(self, dim: int = 4, seed: int = 1) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.conv = nn.Conv2d(3, 3, 3, padding=1)
        self.proj = nn.Linear(3 * 4, dim)
        self.out_dim = dim

    def prepare(self, items):
        x = torch.as_tensor(np.stack(items)).permute(0, 3, 1, 2).float()
        return {"pixels": (x - 0.5) * 4}

    def forward(self, inputs):
        h = torch.relu(self.conv(inputs["pixels"]))
        return torch.tanh(self.proj(nn.functional.adaptive_avg_pool2d(h, 2).flatten(1)))


class ToyVideoEncoder(Encoder):
    kind = "video"

    def __init__(self, channels: int, dim: int = 4, seed: int = 2) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.proj = nn.Linear(channels * 8, dim)
        self.out_dim = dim

    def prepare(self, items):
        return {"clips": torch.as_tensor(np.stack(items)).permute(0, 4, 1, 2, 3).float()}

    def forward(self, inputs):
        return torch.tanh(self.proj(nn.functional.adaptive_avg_pool3d(inputs["clips"], 2).flatten(1)))


class ToyFeatureEncoder(Encoder):
    kind = "features"

    def __init__(self, d: int, dim: int = 4, seed: int = 3) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.proj = nn.Linear(d, dim)
        self.out_dim = dim

    def prepare(self, items):
        return {"features": torch.as_tensor(np.stack(items)).float()}

    def forward(self, inputs):
        return torch.tanh(self.proj(inputs["features"]))


class ToyHead(nn.Module):
    """A one-hidden-layer MLP on the concatenated embeddings; ``zero`` silences a modality."""

    def __init__(self, dims: list[int], zero: int | None = None, seed: int = 4) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.l1 = nn.Linear(sum(dims), 8)
        self.l2 = nn.Linear(8, len(CLASSES))
        if zero is not None:
            start = sum(dims[:zero])
            with torch.no_grad():
                self.l1.weight[:, start:start + dims[zero]] = 0.0

    def forward(self, xs):
        return self.l2(torch.tanh(self.l1(torch.cat(list(xs), dim=1)))) * 3


def toy_model(zero: str | None = None) -> MultimodalClassifier:
    mods = ["image", "title"]
    encoders = {"image": ToyImageEncoder(), "title": ToyTextEncoder()}
    head = ToyHead([4, 4], zero=None if zero is None else mods.index(zero))
    return MultimodalClassifier(mods, encoders, head, CLASSES).eval()


def toy_inputs(model, text: str = "a red cat on the mat", seed: int = 0, size: int = 8):
    rng = np.random.default_rng(seed)
    img = rng.uniform(0, 1, (size, size, 3)).astype(np.float32)
    items = {"image": [img], "title": [text]}
    items.update({m: [rng.uniform(0, 1, (4, 6, 6, 1 if m == "depth" else 3)).astype(np.float32)]
                  for m in model.modalities if m in ("rgb", "depth")})
    items.update({m: [rng.normal(size=5).astype(np.float32)] for m in model.modalities if m == "tab"})
    return model.prepare({m: items[m] for m in model.modalities})


class EarlyToy(nn.Module):
    """An early-fusion model: raw inputs meet before any per-modality encoder (no factorisation)."""

    def __init__(self) -> None:
        super().__init__()
        self.modalities = ["image", "title"]
        self.modality_kinds = {"image": "image", "title": "text"}
        self.encoders = {"image": ToyImageEncoder(), "title": ToyTextEncoder()}
        self.classes = CLASSES
        torch.manual_seed(5)
        self.emb = nn.Embedding(len(VOCAB) + 3, 3 * 8 * 8)
        self.out = nn.Linear(3 * 8 * 8, len(CLASSES))

    def prepare(self, items):
        return {m: self.encoders[m].prepare(items[m]) for m in self.modalities}

    def forward(self, inputs):
        words = self.emb(inputs["title"]["input_ids"]).mean(1)
        return self.out(torch.tanh(inputs["image"]["pixels"].flatten(1) * words))


def brute_force_phi(game, n: int) -> np.ndarray:
    """The Shapley formula over every coalition of ``game`` (one table of 2^n values)."""
    masks = ((np.arange(2 ** n)[:, None] >> np.arange(n)) & 1).astype(bool)
    values = game(masks)
    index = {tuple(m): v for m, v in zip(masks.tolist(), values)}
    phi = np.zeros(n)
    for j in range(n):
        others = [i for i in range(n) if i != j]
        for k in range(n):
            w = math.factorial(k) * math.factorial(n - k - 1) / math.factorial(n)
            for S in itertools.combinations(others, k):
                m = [False] * n
                for i in S:
                    m[i] = True
                without = index[tuple(m)]
                m[j] = True
                phi[j] += w * (index[tuple(m)] - without)
    return phi


def logit_scale(model, inputs, settings=ExplainSettings(), factorised=True) -> float:
    """The largest |logit| over the coalitions where each modality is wholly present or
    masked (at least 1): the scale of the float32 values behind the outputs a game combines."""
    game = game_of(model, inputs, settings, factorised=factorised)
    groups = game.group_indices()
    masks = np.zeros((2 ** len(groups), game.n_features), dtype=bool)
    for row in range(len(masks)):
        for g, idx in enumerate(groups):
            masks[row, idx] = bool(row >> g & 1)
    return max(1.0, float(game.logits(masks).abs().max()))


def efficiency_atol(e) -> float:
    """Efficiency inside one game: float64 sums over the n_evals outputs of one table."""
    scale = max(1.0, abs(e.full_value), abs(e.base_value), float(np.abs(e.values).sum()))
    return f64_atol(scale, e.settings.get("n_evals", 2 ** e.n_features))


def game_of(model, inputs, settings=ExplainSettings(), factorised=True, players=None):
    players = players or list(model.modalities)
    maskers, _ = build_maskers(model, inputs, players, settings)
    game = SampleGame(model, inputs, maskers, players, factorised=factorised)
    game.set_output(lambda logits: torch.softmax(logits.double(), -1)[:, 0])
    return game


# --------------------------------------------------------------------------- factorisation


def test_factorised_game_equals_unfactorised_brute_force() -> None:
    model = toy_model()
    inputs = toy_inputs(model, "red cat on mat")
    settings = ExplainSettings(grid=2)
    fac = game_of(model, inputs, settings, factorised=True)
    raw = game_of(model, inputs, settings, factorised=False)
    n = fac.n_features
    assert n == 4 + 4
    for factorise in (True, False):
        e = explain_inputs(model, inputs, settings=ExplainSettings(grid=2, method="exact"), factorise=factorise)
        assert e.settings["engine"] == ("factorised" if factorise else "unfactorised")
        c = model.classes.index(e.explained_class)
        raw.set_output(lambda logits: torch.softmax(logits.double(), -1)[:, c])
        np.testing.assert_allclose(e.values, brute_force_phi(raw, n), atol=shapley_atol(logit_scale(model, inputs)))
    # the factorised game encodes each modality's distinct sub-masks once: 2^4 + 2^4 encoder rows
    fac(((np.arange(2 ** n)[:, None] >> np.arange(n)) & 1).astype(bool))
    assert fac.encoder_rows == {"image": 16, "title": 16}


def test_factorised_equals_unfactorised_on_a_real_run(tiny_built) -> None:
    _, root = tiny_built
    run = resolve_run(root / "tiny" / "multconcat-image+title+description")
    sid = run.predictions["id"].iloc[0]
    model, inputs = run.model(), run_inputs(run, sid)
    for settings in (ExplainSettings(method="permutation", n_permutations=2, seed=3),
                     ExplainSettings(method="exact", grid=2, modalities=("image", "title"))):
        a = explain_inputs(model, inputs, settings=settings, factorise=True)
        b = explain_inputs(model, inputs, settings=settings, factorise=False)
        scale = logit_scale(model, inputs, settings)
        np.testing.assert_allclose(a.values, b.values, atol=shapley_atol(scale))
        assert a.base_value == pytest.approx(b.base_value, abs=output_atol(scale))
        assert a.settings["engine"] == "factorised" and b.settings["engine"] == "unfactorised"


@pytest.mark.parametrize("method", ["auto", "exact", "permutation", "kernel", "recombined"])
def test_efficiency_on_a_real_run(tiny_built, method: str) -> None:
    _, root = tiny_built
    run_dir = root / "tiny" / "multconcat-image+title+description"
    run = resolve_run(run_dir)
    sid = run.predictions["id"].iloc[1]
    e = explain_sample(run_dir, sid, method=method, store=False)
    assert e.values.sum() == pytest.approx(e.full_value - e.base_value, abs=efficiency_atol(e))
    assert sum(e.shares.values()) == pytest.approx(1.0, abs=f64_atol(1.0, len(e.shares)))
    assert set(e.modalities) == {"image", "title", "description"}
    assert e.settings["n_features"] == {"image": 9, "title": 3, "description": 3}
    # modality-level Shapley values are exact and efficient too, in a game of their own: its full and
    # empty coalitions are evaluated in other batches, so they agree to float32 rounding (on another
    # CPU this test was off by 4e-9 against the 1e-9 it had; the same game for all five methods)
    scale = logit_scale(run.model(), run_inputs(run, sid))
    assert sum(e.modality_shapley.values()) == pytest.approx(e.full_value - e.base_value,
                                                             abs=2 * output_atol(scale))
    assert e.method in ("exact", "permutation", "kernel", "recombined")


@pytest.mark.parametrize("method", ["auto", "exact", "permutation", "recombined", "kernel"])
def test_a_modality_the_head_ignores_gets_share_zero(method: str) -> None:
    model = toy_model(zero="image")
    inputs = toy_inputs(model)
    e = explain_inputs(model, inputs, settings=ExplainSettings(method=method, grid=2))
    # zero up to float32 rounding: the coalitions with and without an image patch are other rows,
    # maybe in other batches, and a batch's BLAS kernel may round a row differently
    tol = shapley_atol(logit_scale(model, inputs, ExplainSettings(grid=2)))
    assert np.all(np.abs(e.modality_values("image")) <= tol)
    assert abs(e.modality_shapley["image"]) <= tol
    bound = len(e.modality_values("image")) * tol / np.abs(e.values).sum()
    assert e.shares["image"] <= bound
    assert e.shares["title"] == pytest.approx(1.0, abs=bound + f64_atol(1.0, 2))


def test_special_tokens_are_never_masked(tiny_built) -> None:
    _, root = tiny_built
    run = resolve_run(root / "tiny" / "multconcat-image+title+description")
    model = run.model()
    inputs = run_inputs(run, run.predictions["id"].iloc[2])
    seen: list[torch.Tensor] = []
    real_encode = model.encode

    def spy(modality, x):
        if modality == "title":
            seen.append(x["input_ids"].clone())
        return real_encode(modality, x)

    model.encode = spy
    try:
        explain_inputs(model, inputs, settings=ExplainSettings(method="exact", grid=1))
    finally:
        del model.encode
    ids = torch.cat(seen)
    special = inputs["title"]["special_tokens_mask"][0].bool()
    original = inputs["title"]["input_ids"][0]
    assert len(ids) == 2 ** int((~special).sum())  # every sub-mask of the title, each encoded once
    assert torch.equal(ids[:, special], original[special].expand(len(ids), -1))
    pad = model.encoders["title"].pad_token_id
    assert set(ids[:, ~special].unique().tolist()) <= set(original[~special].tolist()) | {pad}


# --------------------------------------------------------------------------- shap as oracle


def test_permutation_method_equals_shap_permutation_explainer_on_a_real_run(tiny_built, shap_uncompiled) -> None:
    shap = shap_uncompiled
    _, root = tiny_built
    run = resolve_run(root / "tiny" / "multconcat-image+title+description")
    model = run.model()
    sid = run.predictions["id"].iloc[3]
    inputs = run_inputs(run, sid)
    n_perm, seed = 3, 7
    ours = explain_inputs(model, inputs, settings=ExplainSettings(method="permutation", n_permutations=n_perm,
                                                                  seed=seed))
    # the reference: shap's explainer, a function masker, the raw model one masked variant at a time
    raw = game_of(model, inputs, factorised=False)
    c = CLASS = model.classes.index(ours.explained_class)
    raw.set_output(lambda logits: torch.softmax(logits.double(), -1)[:, CLASS])
    n = raw.n_features
    f = lambda X: np.array([raw(np.asarray(row > 0.5)[None])[0] for row in X])  # noqa: E731
    masker = lambda mask, x: (x * mask).reshape(1, -1)  # noqa: E731
    ref = shap.PermutationExplainer(f, masker, seed=seed)(np.ones((1, n)), max_evals=n_perm * (2 * n + 1),
                                                          silent=True)
    # our factorised game against the raw model one variant at a time: float32 rounding apart
    scale = logit_scale(model, inputs)
    np.testing.assert_allclose(ours.values, ref.values[0], atol=shapley_atol(scale))
    assert ours.base_value == pytest.approx(float(np.ravel(ref.base_values)[0]), abs=output_atol(scale))
    assert ours.settings["class_index"] == c


# --------------------------------------------------------------------------- estimators


def test_recombined_walks_are_permutations_in_blocks_of_one_order_per_modality() -> None:
    plan = plan_recombined([7, 6, 3], n_blocks=3, walks_per_block=4)
    assert plan.tabulated == (False, False, True)    # 2^3 sub-masks <= 3 orders' 3 * 4 + 2
    perms, block = recombined_permutations(plan, seed=0)
    assert perms.shape == (12, 16) and block.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    assert all(np.array_equal(np.sort(p), np.arange(16)) for p in perms)
    # within a block, a walk restricted to an untabulated modality follows the block's one order
    for lo, hi in [(0, 7), (7, 13)]:
        per_block = [{tuple(p[(p >= lo) & (p < hi)]) for p in perms[block == b]} for b in range(3)]
        assert all(len(orders) == 1 for orders in per_block) and len(set.union(*per_block)) == 3
    again, _ = recombined_permutations(plan, 0)
    np.testing.assert_array_equal(perms, again)
    # more blocks extend fewer: the first blocks are the same walks
    longer, _ = recombined_permutations(plan_recombined([7, 6, 3], 5, 4), 0)
    np.testing.assert_array_equal(longer[:12], perms)


def test_recombined_is_exact_on_an_additive_model() -> None:
    # a linear head on embeddings that are linear in the masks: every walk gives the exact values
    class Linear(nn.Module):
        def forward(self, xs):
            return torch.cat([xs[0].sum(1, keepdim=True), xs[1].sum(1, keepdim=True), torch.zeros_like(xs[0][:, :1])],
                             dim=1)

    class Sum(Encoder):
        kind = "features"
        out_dim = 3

        def __init__(self, w):
            super().__init__()
            self.w = torch.tensor(w)

        def prepare(self, items):
            return {"features": torch.as_tensor(np.stack(items)).float()}

        def forward(self, inputs):
            return inputs["features"] * self.w

    model = MultimodalClassifier(["a", "b"], {"a": Sum([1.0, 2.0, 3.0]), "b": Sum([-1.0, 0.5, 4.0])}, Linear(),
                                 CLASSES).eval()
    inputs = model.prepare({"a": [np.ones(3, np.float32)], "b": [np.ones(3, np.float32)]})
    tol = shapley_atol(6.0)    # float32 logits: sums of the embeddings, |logit| <= 1 + 2 + 3
    for method in ("recombined", "permutation", "exact"):
        e = explain_inputs(model, inputs, settings=ExplainSettings(method=method, output="logit:c0"))
        np.testing.assert_allclose(e.values, [1, 2, 3, 0, 0, 0], atol=tol)
        e = explain_inputs(model, inputs, settings=ExplainSettings(method=method, output="logit:c1"))
        np.testing.assert_allclose(e.values, [0, 0, 0, -1, 0.5, 4], atol=tol)


def test_recombined_plan_depends_on_the_shape_and_kinds_only() -> None:
    from core.explain import RECOMBINED_BUDGET, RECOMBINED_BUDGET_BY_KIND, recombined_budget

    assert recombined_budget(["image", "text"]) == RECOMBINED_BUDGET
    assert recombined_budget(["video", "video"]) == RECOMBINED_BUDGET_BY_KIND["video"]
    plan = plan_recombined([18, 18], *RECOMBINED_BUDGET_BY_KIND["video"])
    assert plan == plan_recombined([18, 18], *RECOMBINED_BUDGET_BY_KIND["video"])
    assert plan.encoder_rows == (plan.n_blocks * 34 + 2,) * 2 and not any(plan.tabulated)
    assert plan.head_rows == 2 + plan.n_walks * 70
    small = plan_recombined([2, 3, 1], 16, 8)
    assert all(small.tabulated)                      # tiny modalities are tabulated whole


def test_auto_picks_exact_for_small_games_and_records_the_choice() -> None:
    model = toy_model()
    e = explain_inputs(model, toy_inputs(model, "red cat"), settings=ExplainSettings(grid=2))
    assert e.method == "exact" and e.stderr is None
    assert all(v == 0 for v in e.share_stderr.values())
    assert e.settings["cost_flops"]["exact"] > 0 and e.settings["method"] == "auto"
    e = explain_inputs(model, toy_inputs(model, "a big red cat on the mat"), settings=ExplainSettings(grid=8))
    assert e.method == "recombined"
    assert (e.settings["n_blocks"], e.settings["walks_per_block"]) == RECOMBINED_BUDGET
    assert np.all(e.stderr > 0) and all(0 < v < 0.5 for v in e.share_stderr.values())
    e = explain_inputs(model, toy_inputs(model, "a big red cat on the mat"),
                       settings=ExplainSettings(grid=8, n_orders=5, n_walks=12))
    assert (e.settings["n_blocks"], e.settings["walks_per_block"], e.settings["n_walks"]) == (5, 3, 15)


def test_seeded_results_are_identical_between_calls() -> None:
    model = toy_model()
    inputs = toy_inputs(model, "a big red cat on the mat")
    for method in ("permutation", "recombined", "kernel"):
        a = explain_inputs(model, inputs, settings=ExplainSettings(method=method, seed=4, grid=4))
        b = explain_inputs(model, inputs, settings=ExplainSettings(method=method, seed=4, grid=4))
        # same process, model, inputs and batches: bit-identical by construction
        np.testing.assert_array_equal(a.values, b.values)
        c = explain_inputs(model, inputs, settings=ExplainSettings(method=method, seed=5, grid=4))
        assert not np.array_equal(a.values, c.values)


def test_permutation_walks_shaps_orders() -> None:
    model = toy_model()
    inputs = toy_inputs(model)
    e = explain_inputs(model, inputs, settings=ExplainSettings(method="permutation", n_permutations=4, seed=2,
                                                               grid=2))
    raw = game_of(model, inputs, ExplainSettings(grid=2), factorised=False)
    c = model.classes.index(e.explained_class)
    raw.set_output(lambda logits: torch.softmax(logits.double(), -1)[:, c])
    from core.explain import shapley_values

    ref = shapley_values(raw, raw.n_features, method="permutation",
                         permutations=shap_permutations(raw.n_features, 4, 2))
    tol = shapley_atol(logit_scale(model, inputs, ExplainSettings(grid=2)))
    np.testing.assert_allclose(e.values, ref.values, atol=tol)


# --------------------------------------------------------------------------- outputs and modalities


def test_outputs_are_configurable_and_recorded() -> None:
    model = toy_model()
    inputs = toy_inputs(model)
    with torch.no_grad():
        full = model(inputs)[0]
    probs = torch.softmax(full.double(), -1)
    pred = int(full.argmax())
    e = explain_inputs(model, inputs, settings=ExplainSettings(grid=2))
    tol = output_atol(float(full.abs().max()))   # the factorised game against one plain forward pass
    assert (e.output_kind, e.explained_class) == ("pred_prob", CLASSES[pred])
    assert e.full_value == pytest.approx(float(probs[pred]), abs=tol)
    e = explain_inputs(model, inputs, label="c2", settings=ExplainSettings(grid=2, output="true_prob"))
    assert (e.output_kind, e.explained_class) == ("true_prob", "c2")
    assert e.full_value == pytest.approx(float(probs[2]), abs=tol)
    e = explain_inputs(model, inputs, settings=ExplainSettings(grid=2, output=OutputSpec.parse(("class", "c1")).key))
    assert (e.output_kind, e.explained_class) == ("class_prob", "c1")
    e = explain_inputs(model, inputs, settings=ExplainSettings(grid=2, output="logit"))
    assert e.output_kind == "logit" and e.full_value == pytest.approx(float(full[pred]), abs=tol)
    assert e.settings["output"] == "logit"


def test_explaining_some_modalities_keeps_the_others_present() -> None:
    model = toy_model()
    inputs = toy_inputs(model)
    e = explain_inputs(model, inputs, settings=ExplainSettings(grid=2, modalities=("title",)))
    assert e.modalities == ["title"] and e.shares == {"title": 1.0}   # x / x: exactly 1
    assert e.full_value - e.base_value == pytest.approx(e.values.sum(), abs=efficiency_atol(e))


def test_video_and_feature_modalities() -> None:
    mods = ["rgb", "depth", "tab"]
    encoders = {"rgb": ToyVideoEncoder(3), "depth": ToyVideoEncoder(1), "tab": ToyFeatureEncoder(5)}
    model = MultimodalClassifier(mods, encoders, ToyHead([4, 4, 4]), CLASSES).eval()
    inputs = toy_inputs(model)
    e = explain_inputs(model, inputs, settings=ExplainSettings(video_grid=2, video_segments=2))
    assert e.settings["n_features"] == {"rgb": 8, "depth": 8, "tab": 5}   # same tube grid for RGB and depth
    assert e.values.sum() == pytest.approx(e.full_value - e.base_value, abs=efficiency_atol(e))
    info = e.feature_info[: 8]
    assert {(i["segment"], i["row"], i["col"]) for i in info} == set(itertools.product(range(2), range(2), range(2)))
    assert e.settings["video_grid"] == 2 and e.settings["video_segments"] == 2


@pytest.mark.parametrize("fusion", [*list_fusions("intermediate"), "late-average", "late-weighted"])
def test_every_fusion_head_is_factorised_faithfully(fusion: str) -> None:
    """Each registered fusion: factorised exact values equal the unfactorised ones and are efficient."""
    encoders = {"image": ToyImageEncoder(), "title": ToyTextEncoder()}
    torch.manual_seed(0)
    if fusion.startswith("late"):
        head = LateHead([4, 4], len(CLASSES), fusion)
    else:
        head = IntermediateHead([4, 4], len(CLASSES), fusion, dim=6)
    model = MultimodalClassifier(["image", "title"], encoders, head, CLASSES).eval()
    inputs = toy_inputs(model, "red cat on mat")
    settings = ExplainSettings(method="exact", grid=2)
    a = explain_inputs(model, inputs, settings=settings, factorise=True)
    b = explain_inputs(model, inputs, settings=settings, factorise=False)
    np.testing.assert_allclose(a.values, b.values, atol=shapley_atol(logit_scale(model, inputs, settings)))
    assert a.values.sum() == pytest.approx(a.full_value - a.base_value, abs=efficiency_atol(a))


def test_an_early_fusion_model_is_explained_unfactorised() -> None:
    model = EarlyToy().eval()
    assert not is_factorisable(model)
    flagged = toy_model()
    flagged.factorizable = False          # the spelling of core.model.EarlyFusionClassifier
    assert not is_factorisable(flagged)
    inputs = toy_inputs(model, "red cat")
    e = explain_inputs(model, inputs, settings=ExplainSettings(grid=2))
    assert e.settings["engine"] == "unfactorised" and e.method == "exact"
    raw = game_of(model, inputs, ExplainSettings(grid=2), factorised=False)
    c = model.classes.index(e.explained_class)
    raw.set_output(lambda logits: torch.softmax(logits.double(), -1)[:, c])
    scale = logit_scale(model, inputs, ExplainSettings(grid=2), factorised=False)
    np.testing.assert_allclose(e.values, brute_force_phi(raw, raw.n_features), atol=shapley_atol(scale))
    with pytest.raises(ConfigError, match="cannot be factorised"):
        explain_inputs(model, inputs, factorise=True)


def test_grid_rules() -> None:
    model = toy_model()
    inputs = toy_inputs(model, "a big red cat on the mat")   # 7 words + 2 special tokens = 9 tokens
    _, info = build_maskers(model, inputs, model.modalities, ExplainSettings())
    assert info["image_grid"] == {"image": 3} and info["text_tokens"] == {"title": 9}
    _, info = build_maskers(model, inputs, model.modalities, ExplainSettings(grid=5))
    assert info["image_grid"] == {"image": 5}
    two = MultimodalClassifier(["image", "t1", "t2"], {"image": ToyImageEncoder(), "t1": ToyTextEncoder(),
                                                       "t2": ToyTextEncoder()}, ToyHead([4, 4, 4]), CLASSES)
    rng = np.random.default_rng(0)
    x = two.prepare({"image": [rng.uniform(0, 1, (8, 8, 3)).astype(np.float32)],
                     "t1": ["a big red cat on the mat"], "t2": ["red cat on the mat"]})  # 9 and 7 tokens
    _, info = build_maskers(two, x, two.modalities, ExplainSettings())
    assert info["image_grid"] == {"image": 3}                          # ceil(sqrt(mean 8))
    _, info = build_maskers(two, x, two.modalities, ExplainSettings(grid="total"))
    assert info["image_grid"] == {"image": 4}                          # ceil(sqrt(16))
    assert encoder_batch_size(x["t1"]) == 256 and encoder_batch_size({"pixels": torch.zeros(1, 3, 48, 48)}) == 4
    assert encoder_batch_size({"clips": torch.zeros(1, 3, 8, 64, 64)}) == 4     # at least 4, even for a clip


# --------------------------------------------------------------------------- progress, bad input, shap


def test_progress_callable_reaches_the_total() -> None:
    model = toy_model()
    calls: list[tuple[int, int]] = []
    explain_inputs(model, toy_inputs(model), settings=ExplainSettings(grid=3, method="recombined"),
                   progress=lambda done, total: calls.append((done, total)))
    assert calls and calls[-1][0] == calls[-1][1]
    assert all(d <= t for d, t in calls) and [d for d, _ in calls] == sorted(d for d, _ in calls)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n_permutations": 5000}, "more than sensible"),
        ({"method": "magic"}, "unknown method"),
        ({"output": "probability"}, "unknown output"),
        ({"output": ("class",)}, "not \\(kind, class name\\)"),
        ({"grid": "huge"}, "grid"),
        ({"grid": 0}, "grid"),
        ({"n_walks": 0}, "n_walks"),
        ({"n_orders": 0}, "n_orders=0 is out of range"),
        ({"n_orders": 8, "n_walks": 4}, "fewer than the n_orders=8 blocks"),
        ({"seed": -1}, "seed"),
    ],
)
def test_bad_settings_say_what_to_do(kwargs: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match) as info:
        ExplainSettings(**kwargs)
    assert "Fix:" in str(info.value)


def test_bad_inputs_say_what_to_do(tiny_built) -> None:
    _, root = tiny_built
    run_dir = root / "tiny" / "multconcat-image+title+description"
    sid = resolve_run(run_dir).predictions["id"].iloc[0]
    with pytest.raises(ConfigError, match="exact Shapley values .* need 2\\^.*Fix: use method='auto'"):
        explain_sample(run_dir, sid, method="exact", grid=5, store=False)
    with pytest.raises(DataError, match="not in run .*Fix: pick an id from the run's predictions"):
        explain_sample(run_dir, "no-such-sample", store=False)
    with pytest.raises(ConfigError, match="has no modality 'audio'.*Fix: explain some of its modalities"):
        explain_sample(run_dir, sid, modalities=["audio"], store=False)
    with pytest.raises(ConfigError, match="unknown class 'zebra'"):
        explain_sample(run_dir, sid, output=("class", "zebra"), store=False)
    with pytest.raises(ConfigError, match="progress"):
        explain_sample(run_dir, sid, progress="yes", store=False)


def test_to_shap_works_on_an_engine_result() -> None:
    shap = pytest.importorskip("shap")
    model = toy_model()
    e = explain_inputs(model, toy_inputs(model), settings=ExplainSettings(grid=2))
    s = e.to_shap()
    assert isinstance(s, shap.Explanation)
    np.testing.assert_array_equal(s.values, e.values)          # copied, not computed
    assert s.feature_names[0] == "image:r0c0" and "title:red" in s.feature_names
    assert float(s.base_values) == e.base_value


def test_shares_match_modality_shares_of_the_values() -> None:
    model = toy_model()
    e = explain_inputs(model, toy_inputs(model), settings=ExplainSettings(grid=3))
    groups = [e.feature_indices(m) for m in e.modalities]
    # the same function on the same values and groups: bit-identical
    np.testing.assert_array_equal([e.shares[m] for m in e.modalities], modality_shares(e.values, groups))

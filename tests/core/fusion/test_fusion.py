"""Every registered intermediate fusion method: shape, gradients, determinism, sensitivity."""
from __future__ import annotations

import pytest
import torch

from core.errors import ConfigError
from core.fusion import FUSIONS, FusionMethod, create_fusion, list_fusions

INTERMEDIATE = FUSIONS.names(strategy="intermediate")
IN_DIMS = [[7, 5], [7, 5, 3]]
DIM = 8
BATCH = 4


def _inputs(in_dims: list[int], seed: int = 1, requires_grad: bool = False) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(BATCH, d, generator=g).requires_grad_(requires_grad) for d in in_dims]


def _build(name: str, in_dims: list[int], seed: int = 0) -> FusionMethod:
    torch.manual_seed(seed)
    return create_fusion(name, in_dims, dim=DIM)


def test_all_methods_registered() -> None:
    expected = {"multconcat", "concat", "addition", "max", "product", "average", "gated", "lmf", "tensor"}
    assert expected <= set(INTERMEDIATE)
    assert set(INTERMEDIATE) == set(list_fusions("intermediate"))
    for name in INTERMEDIATE:
        assert FUSIONS.meta(name)["label"]


@pytest.mark.parametrize("in_dims", IN_DIMS, ids=lambda d: f"{len(d)}mod")
@pytest.mark.parametrize("name", INTERMEDIATE)
def test_shape_and_finite(name: str, in_dims: list[int]) -> None:
    fusion = _build(name, in_dims)
    assert isinstance(fusion, FusionMethod)
    out = fusion(_inputs(in_dims))
    assert out.shape == (BATCH, fusion.out_dim)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("in_dims", IN_DIMS, ids=lambda d: f"{len(d)}mod")
@pytest.mark.parametrize("name", INTERMEDIATE)
def test_gradients_reach_every_parameter_and_input(name: str, in_dims: list[int]) -> None:
    fusion = _build(name, in_dims)
    xs = _inputs(in_dims, requires_grad=True)
    out = fusion(xs)
    weights = torch.randn(out.shape, generator=torch.Generator().manual_seed(2))
    (out * weights).sum().backward()
    params = list(fusion.named_parameters())
    assert params
    for pname, p in params:
        assert p.grad is not None, f"{pname} got no gradient"
        assert p.grad.abs().sum() > 0, f"{pname} got an all-zero gradient"
    for i, x in enumerate(xs):
        assert x.grad is not None and x.grad.abs().sum() > 0, f"input {i} got no gradient"


@pytest.mark.parametrize("in_dims", IN_DIMS, ids=lambda d: f"{len(d)}mod")
@pytest.mark.parametrize("name", INTERMEDIATE)
def test_deterministic_under_seed(name: str, in_dims: list[int]) -> None:
    a = _build(name, in_dims, seed=3)(_inputs(in_dims))
    b = _build(name, in_dims, seed=3)(_inputs(in_dims))
    assert torch.equal(a, b)     # same seed, inputs and process: bit for bit


@pytest.mark.parametrize("in_dims", IN_DIMS, ids=lambda d: f"{len(d)}mod")
@pytest.mark.parametrize("name", INTERMEDIATE)
def test_each_modality_matters(name: str, in_dims: list[int]) -> None:
    fusion = _build(name, in_dims)
    xs = _inputs(in_dims)
    base = fusion(xs)
    for i, d in enumerate(in_dims):
        changed = list(xs)
        changed[i] = torch.randn(BATCH, d, generator=torch.Generator().manual_seed(100 + i))
        assert not torch.allclose(fusion(changed), base), f"modality {i} does not affect the output"


@pytest.mark.parametrize("name", INTERMEDIATE)
def test_fewer_than_two_modalities_raises(name: str) -> None:
    with pytest.raises(ValueError):
        create_fusion(name, [7], dim=DIM)


@pytest.mark.parametrize("name", INTERMEDIATE)
def test_wrong_number_of_inputs_raises(name: str) -> None:
    fusion = _build(name, [7, 5])
    with pytest.raises(ValueError):
        fusion(_inputs([7, 5, 3]))


@pytest.mark.parametrize("name", INTERMEDIATE)
def test_unknown_option_raises_config_error(name: str) -> None:
    with pytest.raises(ConfigError, match="not_an_option"):
        create_fusion(name, [7, 5], dim=DIM, not_an_option=1)


def test_unknown_name_lists_known_names() -> None:
    with pytest.raises(ConfigError) as info:
        create_fusion("nope", [7, 5], dim=DIM)
    message = str(info.value)
    assert "nope" in message
    for name in INTERMEDIATE:
        assert name in message


def _identity_multconcat(n: int, dim: int) -> FusionMethod:
    fusion = create_fusion("multconcat", [dim] * n, dim=dim)
    with torch.no_grad():
        for proj in fusion.projections:
            proj.weight.copy_(torch.eye(dim))
            proj.bias.zero_()
    return fusion


def test_multconcat_known_answer_two_modalities() -> None:
    fusion = _identity_multconcat(2, 3)
    x1 = torch.tensor([[1.0, -2.0, 3.0]])
    x2 = torch.tensor([[2.0, 5.0, -1.0]])
    # ReLU: [1, 0, 3] and [2, 5, 0]; product [2, 0, 0].
    expected = torch.tensor([[1.0, 0.0, 3.0, 2.0, 5.0, 0.0, 2.0, 0.0, 0.0]])   # small integers: exact in float32
    assert fusion.out_dim == 9
    assert torch.equal(fusion([x1, x2]), expected)


def test_multconcat_known_answer_three_modalities() -> None:
    fusion = _identity_multconcat(3, 2)
    xs = [torch.tensor([[2.0, -1.0]]), torch.tensor([[3.0, 4.0]]), torch.tensor([[0.5, 2.0]])]
    # ReLU: [2, 0], [3, 4], [0.5, 2]; product [3, 0].
    expected = torch.tensor([[2.0, 0.0, 3.0, 4.0, 0.5, 2.0, 3.0, 0.0]])   # exact in float32
    assert fusion.out_dim == 8
    assert torch.equal(fusion(xs), expected)


@pytest.mark.parametrize(
    ("name", "n", "expected"),
    [("multconcat", 2, 3 * DIM), ("multconcat", 3, 4 * DIM), ("concat", 2, 2 * DIM), ("concat", 3, 3 * DIM)]
    + [(m, 3, DIM) for m in ("addition", "max", "product", "average", "gated", "lmf", "tensor")],
)
def test_out_dim_formula(name: str, n: int, expected: int) -> None:
    assert create_fusion(name, [4] * n, dim=DIM).out_dim == expected


def test_tensor_fusion_shrinks_with_modalities() -> None:
    sizes = {n: create_fusion("tensor", [3] * n, dim=DIM).tensor_dim for n in (2, 3, 4, 5)}
    assert sizes == {2: 16, 3: 16, 4: 8, 5: 5}
    for n, t in sizes.items():
        assert (t + 1) ** n <= 8192


def test_lmf_factors_are_registered_parameters() -> None:
    fusion = create_fusion("lmf", [7, 5, 3], dim=DIM, rank=2)
    names = {n for n, _ in fusion.named_parameters()}
    assert {"factors.0", "factors.1", "factors.2", "fusion_weights", "fusion_bias"} <= names
    assert fusion.factors[0].shape == (2, 8, DIM)


@pytest.mark.parametrize("name", ["lmf", "tensor", "product"])
def test_many_modalities_stay_well_scaled(name: str) -> None:
    in_dims = [6] * 6
    fusion = _build(name, in_dims)
    out = fusion([torch.randn(64, 6, generator=torch.Generator().manual_seed(i)) for i in range(6)])
    assert torch.isfinite(out).all()
    assert 1e-2 < out.std().item() < 1e2

"""The compute cost of a run: FLOPs per sample, per modality encoder and for the head.

:func:`count_gflops` runs the model on prepared samples, one at a time (a batch
of 1, eval mode, no gradients), under ``torch.utils.flop_counter.FlopCounterMode``
and splits the count into parts: one per modality encoder (the encoder's
``prepare`` included, so any torch work it does is counted; loading and
decoding files outside the model is not), ``head`` (fusion and classifier),
and for an early-fusion run one joint encoder named ``"rgb+depth"`` (its
modalities joined by ``+``). A late-fusion run's head holds the unimodal
classifiers that vote, so its total is the sum of the unimodal models it
combines.

FLOPs are counted as the counter counts them: matrix products, convolutions and
attention, a multiply-add = 2 FLOPs; element-wise work (activations,
normalisation, softmax, pooling, the gates of a recurrent cell, biases) is not
counted. Two operations that torch 2.13's counter does not know are counted
here with the same convention (:data:`EXTRA_FORMULAS`): the CPU kernel of an
LSTM layer (``aten.mkldnn_rnn_layer``: input and hidden products of every step)
and scaled dot-product attention's CPU kernel. Any other matrix-like operation
the counter does not know is never a silent 0: it is listed in ``uncounted``
with the module that ran it.

Inputs of variable size (text: tokens) cost what their own size costs, so the
count is the mean over the given samples; samples whose prepared inputs have the
same shapes are counted once (the count depends on shapes only).

An adaptive run (one that runs a part only for some samples) stores the
*expected* cost given its measured selection rates: :func:`expected_gflops`.
:func:`compute_run` adds the count to an existing run's ``metrics.json``
without retraining (``fusionlens compute``).
"""
from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode, flop_registry, sdpa_flop_count
from torch.utils.module_tracker import ModuleTracker

from core.bundle import load_run
from core.data import load_experiment_dataset
from core.errors import ConfigError, DataError
from core.io import read_json, write_json
from core.threads import torch_threads

__all__ = [
    "COUNT_SAMPLES",
    "EXTRA_FORMULAS",
    "compute_run",
    "count_gflops",
    "expected_gflops",
    "gflops_metrics",
    "has_gflops",
]

#: A run's count averages over its first ``COUNT_SAMPLES`` test samples (those its inference is timed on).
COUNT_SAMPLES = 32


def _prod(shape: Sequence[int]) -> int:
    return math.prod(int(s) for s in shape)


def _lstm_layer_flops(input_shape: Sequence[int], w_ih: Sequence[int], w_hh: Sequence[int], *args: Any,
                      out_shape: Any = None, **kwargs: Any) -> int:
    """One LSTM layer and direction on CPU: every step multiplies its input by ``w_ih`` (4H x in) and the
    hidden state by ``w_hh`` (4H x H); the same products the counter counts for a GRU, which runs as addmm."""
    steps = _prod(input_shape[:-1])  # (T, B) or (B, T), or the packed (sum of lengths,)
    return 2 * steps * (_prod(w_ih) + _prod(w_hh))


def _sdpa_cpu_flops(query: Sequence[int], key: Sequence[int], value: Sequence[int], *args: Any,
                    out_shape: Any = None, **kwargs: Any) -> int:
    """Scaled dot-product attention on CPU: the counter's formula for its other kernels (QK^T and AV)."""
    return int(sdpa_flop_count(query, key, value))


def _extra_formulas() -> dict[Any, Callable[..., int]]:
    ops = {"mkldnn_rnn_layer": _lstm_layer_flops, "_scaled_dot_product_flash_attention_for_cpu": _sdpa_cpu_flops}
    return {getattr(torch.ops.aten, name): fn for name, fn in ops.items() if hasattr(torch.ops.aten, name)}


#: Operations counted here that the counter of torch 2.13 does not know (op -> formula on shapes).
EXTRA_FORMULAS: dict[Any, Callable[..., int]] = _extra_formulas()

#: Names of operations that multiply matrices or convolve: one the counter cannot count is reported
#: (interpolation is element-wise work, even when its name says linear).
_MATRIX_LIKE = re.compile(r"conv|(^|_)(add|b|baddb|addb|scaled_)?mm(_|$)|matmul|linear|rnn|lstm|gru|attention|"
                          r"einsum|tensordot|fft")
_NOT_MATRIX_LIKE = re.compile(r"upsample|interp|grid_sampler")


class _UncountedOps(TorchDispatchMode):
    """Records matrix-like operations that reach the kernels with no FLOP formula (entered outside
    the counter, so it sees what the counter executed after its own decompositions)."""

    def __init__(self, known: set[Any]) -> None:
        super().__init__()
        self.known = known
        self.tracker = ModuleTracker()
        self.found: set[tuple[str, str]] = set()

    def __enter__(self) -> "_UncountedOps":
        self.tracker.__enter__()
        return super().__enter__()

    def __exit__(self, *exc: Any) -> None:
        super().__exit__(*exc)
        self.tracker.__exit__(*exc)

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        packet = func._overloadpacket
        name = str(packet)
        short = name.rpartition(".")[2]
        if packet not in self.known and _MATRIX_LIKE.search(short) and not _NOT_MATRIX_LIKE.search(short):
            parents = [p for p in self.tracker.parents if p != "Global"]
            module = max(parents, key=lambda p: (p.count("."), p)) if parents else ""
            self.found.add((module.partition(".")[2] if "." in module else module, name))
        return func(*args, **(kwargs or {}))


class _Count:
    """FLOPs of what runs inside one ``with`` block, and the operations it could not count."""

    def __init__(self) -> None:
        self.counter = FlopCounterMode(display=False, custom_mapping=EXTRA_FORMULAS)
        self.recorder = _UncountedOps(set(flop_registry) | set(EXTRA_FORMULAS))
        self.analytic: set[str] = set()

    def __enter__(self) -> "_Count":
        self.recorder.__enter__()
        self.counter.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.counter.__exit__(*exc)
        self.recorder.__exit__(*exc)
        self.analytic = {str(op) for op in self.counter.get_flop_counts().get("Global", {}) if op in EXTRA_FORMULAS}

    @property
    def flops(self) -> int:
        return int(self.counter.get_total_flops())

    def uncounted(self, part: str) -> set[str]:
        return {f"{part}: {module or '(outside modules)'} ({op})" for module, op in self.recorder.found}


def _signature(inputs: Any) -> tuple:
    """The shapes (and dtypes) of prepared inputs: the count depends on these only."""
    if isinstance(inputs, torch.Tensor):
        return ("tensor", tuple(inputs.shape), str(inputs.dtype))
    if isinstance(inputs, Mapping):
        return ("map", tuple((str(k), _signature(v)) for k, v in sorted(inputs.items(), key=lambda kv: str(kv[0]))))
    if isinstance(inputs, (list, tuple)):
        return ("seq", tuple(_signature(v) for v in inputs))
    return ("value", repr(inputs))


def _n_samples(model: Any, items: Mapping[str, Sequence[Any]]) -> int:
    missing = [m for m in model.modalities if m not in items]
    if missing:
        raise DataError(f"no items for modality {', '.join(map(repr, missing))} to count FLOPs on",
                        fix=f"give items for every modality of the model: {', '.join(model.modalities)}")
    sizes = {m: len(items[m]) for m in model.modalities}
    if len(set(sizes.values())) != 1 or not next(iter(sizes.values())):
        raise DataError(f"items to count FLOPs on must hold the same number (>= 1) of samples per modality: {sizes}",
                        fix="pass the same samples for every modality")
    return next(iter(sizes.values()))


def _count_part(part: str, n: int, prepare: Callable[[int], Any], encode: Callable[[Any], torch.Tensor],
                notes: dict[str, set[str]]) -> tuple[float, torch.Tensor]:
    """Mean FLOPs of ``encode(prepare(i))`` over samples ``i < n``; one ``encode`` count per input shape.
    Returns the mean and the first sample's output (the head's input)."""
    per_shape: dict[tuple, int] = {}
    total, first = 0, None
    for i in range(n):
        with _Count() as c:
            inputs = prepare(i)
        total += c.flops
        _note(notes, part, c)
        key = _signature(inputs)
        if key not in per_shape:
            with _Count() as c:
                out = encode(inputs)
            per_shape[key] = c.flops
            _note(notes, part, c)
            first = out if first is None else first
        total += per_shape[key]
    return total / n, first


def _note(notes: dict[str, set[str]], part: str, count: _Count) -> None:
    notes.setdefault("uncounted", set()).update(count.uncounted(part))
    notes.setdefault("analytic", set()).update(count.analytic)


def count_gflops(model: Any, items: Mapping[str, Sequence[Any]]) -> dict[str, Any]:
    """FLOPs per sample of a model (a :class:`core.model.MultimodalClassifier` or
    :class:`~core.model.EarlyFusionClassifier`) on raw ``items`` (modality -> the same samples'
    raw items), each sample alone (batch of 1), in eval mode without gradients.

    Returns ``flops_per_sample`` and ``flops_by_part`` (mean FLOPs over the samples; exact
    integers when every sample has the same shapes), the same in GFLOPs (``gflops_per_sample``,
    ``gflops_by_part``: 1e9 FLOPs), ``uncounted`` (``"part: module (op)"`` of every matrix-like
    operation without a formula: the count misses it), ``analytic`` (the ops counted with
    :data:`EXTRA_FORMULAS`) and ``samples``. Parts: each modality and ``head``; an early-fusion
    model has one joint part (its modalities joined by ``+``) and ``head``.
    """
    n = _n_samples(model, items)
    one = {m: (lambda i, m=m: items[m][i:i + 1]) for m in model.modalities}
    notes: dict[str, set[str]] = {}
    flops: dict[str, float] = {}
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            if getattr(model, "factorizable", True):
                embeddings = []
                for m in model.modalities:
                    enc = model.encoders[m]
                    flops[m], emb = _count_part(m, n, lambda i, enc=enc, m=m: enc.prepare(one[m](i)),
                                                lambda x, m=m: model.encode(m, x), notes)
                    embeddings.append(emb)
            elif hasattr(model, "joint_embedding"):
                part = "+".join(model.modalities)
                flops[part], emb = _count_part(
                    part, n, lambda i: model.prepare({m: one[m](i) for m in model.modalities}), model.joint_embedding,
                    notes)
                embeddings = [emb]
            else:
                raise ConfigError(f"cannot split the FLOPs of a {type(model).__name__} into parts",
                                  fix="give the model per-modality encoders (factorizable) or a joint_embedding")
            with _Count() as c:
                model.forward_embeddings(embeddings)
            flops["head"] = float(c.flops)
            _note(notes, "head", c)
    finally:
        model.train(was_training)
    return {
        "flops_per_sample": float(sum(flops.values())),
        "flops_by_part": {k: float(v) for k, v in flops.items()},
        "gflops_per_sample": sum(flops.values()) / 1e9,
        "gflops_by_part": {k: v / 1e9 for k, v in flops.items()},
        "uncounted": sorted(notes.get("uncounted", ())),
        "analytic": sorted(notes.get("analytic", ())),
        "samples": n,
    }


def gflops_metrics(count: Mapping[str, Any]) -> dict[str, Any]:
    """The entries of ``metrics.json`` for a count of :func:`count_gflops` (a run that runs every part)."""
    return {"gflops_per_sample": float(count["gflops_per_sample"]),
            "gflops_by_part": {str(k): float(v) for k, v in count["gflops_by_part"].items()},
            "gflops_uncounted": list(count.get("uncounted", []))}


def expected_gflops(gflops_by_part: Mapping[str, float], selection_rates: Mapping[str, float],
                    uncounted: Sequence[str] = ()) -> dict[str, Any]:
    """The entries of ``metrics.json`` for an adaptive run: part ``p`` costs ``gflops_by_part[p]``
    when it runs and runs for the fraction ``selection_rates[p]`` of the samples (a part without a
    rate always runs), so ``gflops_by_part`` holds each part's expected GFLOPs,
    ``gflops_per_sample`` their sum, ``gflops_max_per_sample`` the cost when every part runs."""
    unknown = sorted(set(selection_rates) - set(gflops_by_part))
    if unknown:
        raise ConfigError(f"selection rates for parts that have no count: {unknown}",
                          fix=f"use parts of the count: {', '.join(gflops_by_part)}")
    bad = {p: r for p, r in selection_rates.items()
           if not isinstance(r, (int, float)) or isinstance(r, bool) or not 0.0 <= float(r) <= 1.0}
    if bad:
        raise ConfigError(f"selection rates must be fractions between 0 and 1: {bad}",
                          fix="give each part the share of samples for which it runs")
    expected = {str(p): float(g) * float(selection_rates.get(p, 1.0)) for p, g in gflops_by_part.items()}
    return {"gflops_per_sample": sum(expected.values()), "gflops_by_part": expected,
            "gflops_uncounted": list(uncounted),
            "gflops_selection_rates": {str(p): float(r) for p, r in selection_rates.items()},
            "gflops_max_per_sample": float(sum(gflops_by_part.values()))}


def has_gflops(metrics: Mapping[str, Any]) -> bool:
    return "gflops_per_sample" in metrics and "gflops_by_part" in metrics


def compute_run(run_dir: str | Path, *, force: bool = False) -> dict[str, Any]:
    """Count a run's FLOPs from its bundle and its experiment's dataset (no retraining) and write
    them into its ``metrics.json``, atomically, every other key as it was; a run that already
    has them is kept unless ``force``. Returns ``{"run", "computed", "gflops_per_sample",
    "gflops_by_part", "uncounted"}``."""
    run_dir = Path(run_dir)
    run = load_run(run_dir)
    if has_gflops(run.metrics) and not force:
        return {"run": run.name, "computed": False, "gflops_per_sample": run.metrics["gflops_per_sample"],
                "gflops_by_part": run.metrics["gflops_by_part"], "uncounted": run.metrics.get("gflops_uncounted", [])}
    ds, _ = load_experiment_dataset(run_dir.parent)
    ids = run.predictions["id"].astype(str).tolist()[:COUNT_SAMPLES]
    if not ids:
        raise DataError(f"run {run.name} has no test samples to count its FLOPs on",
                        fix="give the experiment a test split and rebuild the run")
    items = {m: ds.items(m, ids) for m in run.modalities}
    with torch_threads("encoder"):
        count = count_gflops(run.model(), items)
    metrics = read_json(run_dir / "metrics.json", what="run metrics")  # as stored, so no other key changes
    rates = metrics.get("gflops_selection_rates")
    # an adaptive run keeps its expected cost: the new count weighted by its stored selection rates
    counted = expected_gflops(count["gflops_by_part"], rates, count["uncounted"]) if rates else gflops_metrics(count)
    metrics.update(counted)
    write_json(run_dir / "metrics.json", metrics)
    return {"run": run.name, "computed": True, "gflops_per_sample": counted["gflops_per_sample"],
            "gflops_by_part": counted["gflops_by_part"], "uncounted": count["uncounted"]}

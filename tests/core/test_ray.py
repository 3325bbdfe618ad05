"""``--ray`` (core.scale): explain, project and robustness as Ray tasks on a local 2-CPU instance write
the rows and files a local run writes, resume without submitting finished work, and without Ray the
flag fails with the install command."""
from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from core.cli import main
from core.errors import BundleError, ConfigError
from core.explain import (
    ExplainSettings,
    SampleGame,
    build_maskers,
    explanation_status,
    load_explanations,
    resolve_run,
    run_inputs,
)
from core.projection import list_projections, load_projection
from core.robustness import load_robustness
from core.scale import ShardTask, require_ray, run_sharded
from tests._tolerance import f32_atol, shapley_atol

RUN = "multconcat-image+title+description"
NO_RAY = "Ray is an optional dependency (pip install -r requirements-extra.txt; CI installs the extras)"


@pytest.fixture(scope="module")
def ray_local():
    """A local Ray instance with 2 CPUs on 127.0.0.1 for the module; core.scale uses it as it is."""
    ray = pytest.importorskip("ray", reason=NO_RAY)
    ray.init(address="local", num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1",
             log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def roots(tiny_built, tmp_path_factory) -> dict[str, Path]:
    """Two copies of the tiny experiment's runs root: one for local commands, one for Ray ones."""
    _, built = tiny_built
    out = {}
    for name in ("local", "ray"):
        out[name] = tmp_path_factory.mktemp(f"scale-{name}") / "runs"
        shutil.copytree(built, out[name])
    return out


def cli(root: Path, *args: str) -> int:
    return main(["--runs-dir", str(root), "--quiet", *args])


def sorted_rows(frame: pd.DataFrame, cols: list[str]) -> pd.DataFrame:
    return frame.sort_values(cols).reset_index(drop=True)


def logit_scale(run_dir: Path, sample_ids) -> float:
    """The largest |logit| over each sample's coalitions of whole modalities (at least 1): the scale of
    the float32 values the explanations combine."""
    run = resolve_run(run_dir)
    model = run.model()
    scale = 1.0
    for sid in sample_ids:
        inputs = run_inputs(run, sid)
        players = list(model.modalities)
        maskers, _ = build_maskers(model, inputs, players, ExplainSettings())
        game = SampleGame(model, inputs, maskers, players, factorised=True)
        groups = game.group_indices()
        masks = np.zeros((2 ** len(groups), game.n_features), dtype=bool)
        for row in range(len(masks)):
            for g, idx in enumerate(groups):
                masks[row, idx] = bool(row >> g & 1)
        with torch.inference_mode():
            scale = max(scale, float(game.logits(masks).abs().max()))
    return scale


# --------------------------------------------------------------------------- explain


def test_explain_on_ray_gives_the_rows_of_a_local_run_and_resumes(ray_local, roots, capsys) -> None:
    local, on_ray = roots["local"] / "tiny" / RUN, roots["ray"] / "tiny" / RUN
    flags = ["--n", "5", "--seed", "1"]
    assert cli(roots["local"], "explain", str(local), *flags) == 0
    assert cli(roots["ray"], "explain", str(on_ray), *flags, "--ray") == 0
    out = capsys.readouterr().out
    assert "2 shard task(s) of 2 per run, 0 shard(s) already stored; 5 sample(s) explained, 0 left" in out
    # the parts two `--shard i/2` processes would write, each with the command that resumes it
    parts = sorted(p.name.rsplit("-", 1)[1] for p in (on_ray / "explanations").glob("samples-*.parquet"))
    assert parts == ["part0of2.parquet", "part1of2.parquet"]
    status = explanation_status(on_ray)
    assert status["complete"].all() and status["requested"].sum() == 5
    assert all("--shard" in c and c.split()[2] == str(on_ray) for c in status["command"])

    a_s, a_f = load_explanations(local)
    b_s, b_f = load_explanations(on_ray)
    assert sorted(a_s["sample_id"]) == sorted(b_s["sample_id"]) and len(a_s) == 5
    # exact: ids, labels, methods and feature names are chosen by the code, not computed in float
    keys = ["sample_id", "label", "pred", "method", "settings_hash", "n_evals"]
    pd.testing.assert_frame_equal(sorted_rows(a_s[keys], ["sample_id"]), sorted_rows(b_s[keys], ["sample_id"]))
    # values: the same code in another process (a Ray worker, one thread): equal within float32 rounding
    tol = shapley_atol(logit_scale(local, a_s["sample_id"]))
    values = ["base_value", "full_value", "share_image", "share_title", "share_description"]
    np.testing.assert_allclose(sorted_rows(a_s, ["sample_id"])[values].to_numpy(float),
                               sorted_rows(b_s, ["sample_id"])[values].to_numpy(float), atol=tol, rtol=0)
    fkeys = ["sample_id", "modality", "feature_index"]
    a_f, b_f = sorted_rows(a_f, fkeys), sorted_rows(b_f, fkeys)
    pd.testing.assert_frame_equal(a_f[[*fkeys, "token"]], b_f[[*fkeys, "token"]])
    np.testing.assert_allclose(a_f["phi"].to_numpy(float), b_f["phi"].to_numpy(float), atol=tol, rtol=0)

    # resumable: a second call submits nothing and rewrites nothing
    stamps = {p: p.stat().st_mtime_ns for p in (on_ray / "explanations").iterdir()}
    assert cli(roots["ray"], "explain", str(on_ray), *flags, "--ray") == 0
    assert "every sample already stored, nothing submitted" in capsys.readouterr().out
    assert {p: p.stat().st_mtime_ns for p in (on_ray / "explanations").iterdir()} == stamps
    # a lost shard is the only one submitted again; a local run then finds everything stored
    for p in (on_ray / "explanations").glob("*-part1of2.parquet"):
        p.unlink()
    assert cli(roots["ray"], "explain", str(on_ray), *flags, "--ray") == 0
    assert "1 shard task(s) of 2 per run, 1 shard(s) already stored" in capsys.readouterr().out
    assert cli(roots["ray"], "explain", str(on_ray), *flags) == 0
    assert "0 sample(s) explained, 5 already stored" in capsys.readouterr().out
    # one shard per process is what --shard means: with --ray it is refused, with the fix
    assert cli(roots["ray"], "explain", str(on_ray), *flags, "--shard", "0/2", "--ray") == 2
    assert "--ray runs every shard" in capsys.readouterr().err


# --------------------------------------------------------------------------- project and robustness


def test_project_on_ray_writes_the_files_of_a_local_run(ray_local, roots, capsys) -> None:
    runs = ["--run", RUN, "--run", "late-average-image+title"]
    assert cli(roots["local"], "project", "tiny", *runs, "--methods", "pca") == 0
    assert cli(roots["ray"], "project", "tiny", *runs, "--methods", "pca", "--ray") == 0
    assert "projections on Ray: 2 run task(s), 0 run(s) already complete" in capsys.readouterr().out
    for run in (RUN, "late-average-image+title"):
        a, b = (list_projections(roots[k] / "tiny" / run) for k in ("local", "ray"))
        assert len(a) == 4 if run == RUN else len(a) == 3  # every modality's embedding and the fused one
        # exact: the file keys hash the method, its resolved parameters and the seed
        assert sorted(a["key"]) == sorted(b["key"]) and b["error"].isna().all()
        for name in a["embedding"]:
            ids_a, pa = load_projection(roots["local"] / "tiny" / run, name, "pca")
            ids_b, pb = load_projection(roots["ray"] / "tiny" / run, name, "pca")
            assert list(ids_a) == list(ids_b)
            # PCA of the same float32 embeddings in another process: float32 rounding of d-term products
            scale = float(np.abs(pa.coords).max())
            np.testing.assert_allclose(pa.coords, pb.coords, atol=f32_atol(scale, 384), rtol=0)
    assert cli(roots["ray"], "project", "tiny", *runs, "--methods", "pca", "--ray") == 0
    assert "0 run task(s), 2 run(s) already complete" in capsys.readouterr().out


def test_robustness_on_ray_writes_the_table_of_a_local_run(ray_local, roots, capsys) -> None:
    runs = ["--run", "late-average-image+title", "--run", "multconcat-image+title"]
    fast = ["--levels", "3", "--share-samples", "0"]
    assert cli(roots["local"], "robustness", "tiny", *runs, *fast) == 0
    assert cli(roots["ray"], "robustness", "tiny", *runs, *fast, "--ray") == 0
    out = capsys.readouterr().out
    assert "robustness on Ray: 2 run task(s), 2 computed, 0 already stored" in out and "without image" in out
    for run in ("late-average-image+title", "multconcat-image+title"):
        a, b = (load_robustness(roots[k] / "tiny" / run) for k in ("local", "ray"))
        for t, root in ((a, roots["local"]), (b, roots["ray"])):
            del t["computed_at"], t["seconds"]
            t["command"] = t["command"].replace(str(root), "ROOT")  # the runs roots differ, nothing else
        # exact: accuracies are shares of argmax decisions of the same seeded inputs (one thread each);
        # the multconcat run's effective robustness uses the late-fusion baseline's curve, as locally
        assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
    assert load_robustness(roots["ray"] / "tiny" / "multconcat-image+title")["noise"]["image"]
    assert cli(roots["ray"], "robustness", "tiny", *runs, *fast, "--ray") == 0
    assert "0 run task(s), 0 computed, 2 already stored" in capsys.readouterr().out
    assert cli(roots["ray"], "robustness", "tiny", *runs, *fast, "--modality", "nope", "--ray") == 2
    assert "Fix: use some of their modalities: image, title" in capsys.readouterr().err


def test_a_failed_task_is_raised_as_its_error_after_the_others(ray_local, roots) -> None:
    good = ShardTask("project", str(roots["ray"] / "tiny" / "concat-image+title"), {"methods": ["pca"], "seed": 0})
    bad = ShardTask("project", str(roots["ray"] / "tiny" / "no-such-run"), {"methods": ["pca"], "seed": 0},
                    label="no-such-run")
    with pytest.raises(BundleError, match=r"\[Ray task no-such-run\]") as info:
        run_sharded([bad, good], progress=False)
    assert info.value.fix
    assert len(list_projections(good.run_dir)) == 3  # the other task ran to its end


# --------------------------------------------------------------------------- without Ray


def test_without_ray_the_flag_says_how_to_install_it(roots, monkeypatch, capsys) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    with pytest.raises(ConfigError, match="pip install -r requirements-extra.txt"):
        require_ray()
    run = roots["local"] / "tiny" / "concat-image+title"
    for args in (["explain", str(run), "--n", "1", "--ray"], ["project", str(run), "--methods", "pca", "--ray"],
                 ["robustness", str(run), "--levels", "3", "--share-samples", "0", "--ray"]):
        assert cli(roots["local"], *args) == 2
        assert "Fix: install Ray (an optional dependency): pip install -r requirements-extra.txt" in \
            capsys.readouterr().err
    assert not (run / "explanations").exists()
    # and without --ray nothing needs it
    assert cli(roots["local"], "project", str(run), "--methods", "pca") == 0

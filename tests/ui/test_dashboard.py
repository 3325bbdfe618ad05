"""The dashboard's plain-Python side (no server): safe paths, discovery, cache keys, page queries,
precomputed status and the viewers' value extractors (ui.queries, ui.stamps, ui.precomputed, ui.commands,
ui.contributions, over core.catalog)."""
from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pandas as pd
import pytest

from core import catalog
from core.bundle import is_complete
from core.explain import Explanation
from core.kinds import get_kind, list_kinds
from core.ranking import best_run
from ui import commands, contributions, precomputed, queries, stamps, viewers


# --------------------------------------------------------------------------- safe paths


@pytest.mark.parametrize("name", ["..", ".", "../x", "a/b", "/etc", "/etc/passwd", "a\\b", ".hidden", "", "x\x00y",
                                  "a" * 300])
def test_check_name_refuses_anything_but_a_plain_name(name):
    with pytest.raises(catalog.PathRefused) as info:
        catalog.check_name(name, "run")
    assert "Fix:" in str(info.value)


@pytest.mark.parametrize("name", ["emoji", "concat-image+title", "late-average-image+title+description", "r_1.v2"])
def test_check_name_accepts_run_names(name):
    assert catalog.check_name(name) == name


def test_safe_join_refuses_symlinks_out_of_the_root(tmp_path):
    root = tmp_path / "runs"
    (root / "exp" / "run").mkdir(parents=True)
    outside = tmp_path / "secret"
    outside.mkdir()
    (root / "exp" / "link").symlink_to(outside, target_is_directory=True)
    assert catalog.safe_join(root, "exp", "run") == (root / "exp" / "run").resolve()
    with pytest.raises(catalog.PathRefused, match="outside the runs directory"):
        catalog.safe_join(root, "exp", "link")
    with pytest.raises(catalog.PathRefused):
        catalog.safe_join(root, "exp", "../../secret")


def test_check_run_dir_refuses_a_run_whose_files_link_outside(tmp_path):
    root = tmp_path / "runs"
    run = root / "exp" / "run"
    run.mkdir(parents=True)
    (tmp_path / "passwd").write_text("secret")
    (run / "predictions.parquet").symlink_to(tmp_path / "passwd")
    with pytest.raises(catalog.PathRefused, match="predictions.parquet"):
        catalog.check_run_dir(root, "exp", "run")


def test_discovery_lists_runs_inside_the_root_only(tmp_path):
    root = tmp_path / "runs"
    exp = root / "exp"
    for name in ("b-run", "a-run", "c.partial", "d.old", "_cache", ".hidden", "not-a-run"):
        (exp / name).mkdir(parents=True)
    for name in ("a-run", "b-run", "c.partial", "d.old"):
        (exp / name / "config.json").write_text("{}")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "config.json").write_text("{}")
    (exp / "linked-run").symlink_to(outside, target_is_directory=True)
    (root / "linked-exp").symlink_to(exp, target_is_directory=True)  # inside: allowed
    (root / "_private").mkdir()
    assert catalog.list_run_names(root, "exp") == ["a-run", "b-run"]
    assert catalog.list_experiments(root) == ["exp", "linked-exp"]
    assert catalog.list_experiments(tmp_path / "missing") == []
    assert not is_complete(exp / "a-run")  # listed, and shown as incomplete


def test_safe_items_refuse_paths_outside_the_data_folder(tmp_path):
    from core.data.manifest import Dataset

    data = tmp_path / "data"
    data.mkdir()
    frame = pd.DataFrame({"id": ["a", "b"], "label": ["x", "y"], "split": ["test", "test"],
                          "image": ["../outside.png", "ok.png"], "title": ["t1", "t2"]})
    ds = Dataset(name="d", root=data, frame=frame, modalities={"image": "image", "title": "text"}, classes=["x", "y"])
    with pytest.raises(catalog.PathRefused, match="outside the data folder"):
        queries.safe_items(ds, "image", ["a"])
    assert queries.safe_items(ds, "title", ["a", "b"]) == ["t1", "t2"]
    # which cells are paths is the kind's to say: a vector file (old kind name too) is checked the same way
    for kind in ("tabular", "features"):
        vectors = Dataset(name="d", root=data, frame=frame.assign(vec=["/etc/x.npy", "v.npy"]),
                          modalities={"vec": kind}, classes=["x", "y"])
        with pytest.raises(catalog.PathRefused, match="outside the data folder"):
            queries.safe_items(vectors, "vec", ["a"])


def test_run_stamp_changes_when_a_run_gains_files(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text("{}")
    before = stamps.run_stamp(run)
    assert stamps.run_stamp(run) == before
    (run / "projections").mkdir()
    assert stamps.run_stamp(run) != before
    stamp = stamps.run_stamp(run)
    (run / "config.json").write_text('{"x": 1}')
    os.utime(run / "config.json", ns=(1, 1))
    assert stamps.run_stamp(run) != stamp


# --------------------------------------------------------------------------- tables


@pytest.fixture
def predictions() -> pd.DataFrame:
    return pd.DataFrame({
        "id": ["a", "b", "c", "d"], "label": ["cat", "cat", "dog", "dog"], "pred": ["cat", "dog", "dog", "cat"],
        "confidence": [0.9, 0.4, 0.8, 0.55], "correct": [True, False, True, False],
        "top1_label": ["cat", "dog", "dog", "cat"], "top2_label": ["dog", "cat", "cat", "dog"],
    })


@pytest.fixture
def summaries() -> pd.DataFrame:
    # the engine's per-sample rows: keyed by sample_id, one sample not explained
    return pd.DataFrame({"sample_id": ["a", "b", "c"], "share_image": [0.7, 0.2, np.nan],
                         "share_title": [0.3, 0.8, np.nan], "base_value": [0.1, 0.1, 0.1]})


def test_share_frame_renames_sample_id_to_id(summaries):
    frame = queries.share_frame(summaries, ["image", "title"])
    assert list(frame.columns) == ["id", "share_image", "share_title", "base_value"]   # the modality game's too
    assert frame["id"].tolist() == ["a", "b", "c"]
    assert queries.share_frame(None, ["image"]).empty
    game = summaries.assign(exact_share_image=0.5, interaction_image__title=0.1, flat=False, label="x")
    assert list(queries.share_frame(game, ["image", "title"]).columns) == [
        "id", "share_image", "share_title", "base_value", "exact_share_image", "interaction_image__title", "flat"]


def test_predictions_view_joins_shares_and_texts(predictions, summaries):
    shares = queries.share_frame(summaries, ["image", "title"])
    texts = pd.DataFrame({"id": ["a", "b", "c", "d"], "title": ["a cat", "tabby", "a dog", "puppy"]})
    view = queries.predictions_view(predictions, ["image", "title"], shares, texts)
    assert view["dominant"].tolist() == ["image", "title", None, None]
    assert view["title"].tolist() == ["a cat", "tabby", "a dog", "puppy"]
    bare = queries.predictions_view(predictions, ["image", "title"])
    assert bare["dominant"].isna().all() and bare["share_image"].isna().all()
    # a prediction that barely depends on its inputs has no dominant modality (its shares are noise)
    flagged = queries.share_frame(summaries.assign(flat=[False, True, False]), ["image", "title"])
    view = queries.predictions_view(predictions, ["image", "title"], flagged)
    assert view["dominant"].tolist() == ["image", None, None, None] and "flat" not in view.columns


def test_filter_predictions(predictions, summaries):
    texts = pd.DataFrame({"id": ["a", "b", "c", "d"], "title": ["a cat", "tabby", "a dog", "puppy"]})
    view = queries.predictions_view(predictions, ["image", "title"], queries.share_frame(summaries, ["image", "title"]), texts)

    def ids(**kw):
        return queries.filter_predictions(view, search_columns=["id", "label", "pred", "title"], **kw)["id"].tolist()

    assert ids() == ["a", "b", "c", "d"]
    assert ids(true_classes=["dog"]) == ["c", "d"]
    assert ids(pred_classes=["cat"], correctness="Incorrect") == ["d"]
    assert ids(correctness="Correct") == ["a", "c"]
    assert ids(confidence=(0.5, 0.85)) == ["c", "d"]
    assert ids(dominant=["title"]) == ["b"]
    assert ids(search="TABBY") == ["b"]
    assert ids(search="a (") == []  # plain text, not a regex
    assert ids(true_classes=["cat"], search="puppy") == []  # a filter matching nothing


def test_sample_across_runs(predictions):
    other = predictions.assign(pred=predictions["label"], correct=True, confidence=0.99)
    table = queries.sample_across_runs({"r1": predictions, "r2": other, "r3": predictions.iloc[:0]}, "b")
    assert table["run"].tolist() == ["r2", "r1"]  # correct first
    assert table.loc[table["run"] == "r1", "true class rank"].item() == 2
    assert queries.sample_across_runs({"r1": predictions}, "zzz").empty


def test_best_run_split_counts_and_gallery():
    results = pd.DataFrame({"run": ["x", "y", "z"], "top1": [0.5, 0.9, 0.9]})
    assert best_run(results) == "y"
    assert best_run(results.iloc[:0]) is None
    frame = pd.DataFrame({"id": [f"s{i}" for i in range(12)], "label": ["a"] * 6 + ["b"] * 6,
                          "split": ["train", "train", "val", "test", "test", "test"] * 2})
    counts = queries.split_counts(frame, ["b", "a"])
    assert list(counts.index) == ["b", "a"]
    assert list(counts.columns) == ["train", "val", "test", "total"]
    assert counts.loc["a"].tolist() == [2, 1, 3, 6]
    picked = queries.gallery_ids(frame, n=4)
    assert len(picked) == 4 and len(set(picked)) == 4
    assert {frame.set_index("id").loc[i, "split"] for i in picked} == {"test"}
    assert {frame.set_index("id").loc[i, "label"] for i in picked[:2]} == {"a", "b"}  # one per class first
    assert queries.gallery_ids(frame, n=4) == picked  # seeded


def test_best_run_breaks_ties_by_modalities_then_explanations_then_name():
    from core.ranking import run_rank_key

    results = pd.DataFrame({
        "run": ["unimodal-title", "concat-image+title", "late-average-image+title", "gated-image+title+text",
                "weak-image+title+text"],
        "modalities": ["title", "image+title", "image+title", "image+title+text", "image+title+text"],
        "top1": [0.9, 0.9, 0.9, 0.9, 0.5]})
    # a tie on top-1: the run over more modalities, never the unimodal one that comes first
    assert best_run(results) == "gated-image+title+text"
    two = results.iloc[:3]
    assert best_run(two) == "concat-image+title"  # same modalities: by name
    assert best_run(two, explained=["late-average-image+title"]) == "late-average-image+title"
    assert best_run(results.assign(top1=[0.95, 0.9, 0.9, 0.9, 0.5])) == "unimodal-title"  # higher top-1 wins
    assert best_run(results.assign(top1=[float("nan")] * 5)) is None
    assert run_rank_key("a", "not a number", 3, True) > run_rank_key("b", 0.0, 1, False)
    assert run_rank_key("a", 0.1 + 0.2, 2, False) < run_rank_key("b", 0.3, 2, False)  # float noise is a tie


def test_explained_runs_and_the_build_pick_the_same_run(tiny_built, tmp_path):
    from core.explain import select_build_runs
    from core.ranking import has_explanations

    _, root = tiny_built
    copy = tmp_path / "runs"
    shutil.copytree(root, copy)
    exp = copy / "tiny"
    for run_dir in exp.iterdir():  # every run ties on top-1
        if (run_dir / "metrics.json").is_file():
            metrics = json.loads((run_dir / "metrics.json").read_text())
            (run_dir / "metrics.json").write_text(json.dumps({**metrics, "top1": 0.75}))
    from core.results import results_table

    results, _ = results_table(exp)
    best = best_run(results, explained=queries.explained_runs(copy, "tiny", results["run"]))
    assert best == "concat-image+title+description"  # the most modalities, then the name
    assert select_build_runs(exp)[0].name == best  # the build explains the run the Overview shows
    # a stored explanation moves both to that run among the tied ones
    target = exp / "multconcat-image+title+description"
    (target / "explanations").mkdir(exist_ok=True)
    (target / "explanations" / "samples-000000000000-part0of1.parquet").write_bytes(b"")
    assert has_explanations(target) and queries.explained_runs(copy, "tiny", results["run"]) == [target.name]
    best = best_run(results, explained=queries.explained_runs(copy, "tiny", results["run"]))
    assert best == target.name and select_build_runs(exp)[0].name == best


def test_the_default_run_uses_every_modality_and_the_build_explains_it_first(tiny_built, tmp_path):
    from core.explain import select_build_runs
    from core.ranking import best_full_run, full_runs
    from core.results import results_table

    _, root = tiny_built
    copy = tmp_path / "runs"
    shutil.copytree(root, copy)
    exp = copy / "tiny"
    top1 = {"concat-image+title": 0.9, "unimodal-title": 0.9, "late-average-image+title+description": 0.8}
    for run_dir in exp.iterdir():
        if (run_dir / "metrics.json").is_file():
            metrics = json.loads((run_dir / "metrics.json").read_text())
            (run_dir / "metrics.json").write_text(json.dumps({**metrics, "top1": top1.get(run_dir.name, 0.5)}))
    results, _ = results_table(exp)
    assert best_run(results) == "concat-image+title"  # the best overall leaves the description out
    assert set(full_runs(results)["modalities"]) == {"image+title+description"}
    assert best_full_run(results) == "late-average-image+title+description"
    assert best_full_run(results, ["image", "title"]) == "concat-image+title"  # image+title runs qualify too
    assert best_full_run(results, ["image", "title", "audio"]) is None  # no run has every modality
    assert select_build_runs(exp)[0].name == "late-average-image+title+description"  # explained first


def test_filter_results():
    results = pd.DataFrame({"run": ["unimodal-image", "concat-image+title", "gated-image+title"],
                            "strategy": ["unimodal", "intermediate", "intermediate"],
                            "fusion": ["unimodal", "concat", "gated"], "modalities": ["image", "image+title",
                                                                                    "image+title"],
                            "encoders": ["e", "e", "e"]})
    assert queries.filter_results(results, strategies=["intermediate"])["run"].tolist() == ["concat-image+title",
                                                                                      "gated-image+title"]
    assert queries.filter_results(results, fusions=["gated"], search="GATED")["run"].tolist() == ["gated-image+title"]
    assert queries.filter_results(results, fusions=["gated"], modalities=["image"]).empty


def test_selected_ids_from_plotly_events():
    event = {"selection": {"points": [{"customdata": "a"}, {"customdata": ["b", 1]}, {"customdata": "a"}, {"x": 1}]}}
    assert queries.selected_ids(event) == ["a", "b"]
    assert queries.selected_ids(None) == []
    assert queries.selected_ids({"selection": {"points": []}}) == []


def test_projection_frame_joins_view(predictions):
    view = queries.predictions_view(predictions, ["image"])
    frame = queries.projection_frame(np.array(["d", "a"], dtype=object), np.array([[0.0, 1.0], [2.0, 3.0]]), view)
    assert frame["id"].tolist() == ["d", "a"]
    assert frame["label"].tolist() == ["dog", "cat"]
    assert frame[["x", "y"]].to_numpy().tolist() == [[0.0, 1.0], [2.0, 3.0]]


# --------------------------------------------------------------------------- explanations


def _explanation() -> Explanation:
    image_info = [{"row": r, "col": c} for r in range(2) for c in range(2)]
    video_info = [{"row": 0, "col": c, "segment": s, "frame_start": 2 * s, "frame_end": 2 * s + 2}
                  for s in range(2) for c in range(2)]
    text_info = [{"token": "red", "position": 1}, {"token": "circle", "position": 2}]
    values = np.array([0.1, -0.2, 0.3, 0.0, 1.0, 2.0, 3.0, 4.0, 0.5, -0.5])
    return Explanation(
        sample_id="s1", modalities=["image", "rgb", "title"], values=values,
        feature_modality=[0] * 4 + [1] * 4 + [2] * 2, feature_info=image_info + video_info + text_info,
        base_value=0.0, full_value=float(values.sum()), stderr=None,
        shares={"image": 0.1, "rgb": 0.8, "title": 0.1}, modality_shapley=None, output_kind="pred_prob",
        explained_class="cat", method="exact")


def test_explanation_views():
    exp = _explanation()
    # the values reshaped, not computed: equal bit for bit
    np.testing.assert_array_equal(contributions.patch_grid(exp, "image"), [[0.1, -0.2], [0.3, 0.0]])
    np.testing.assert_array_equal(contributions.tube_values(exp, "rgb"), [[[1.0, 2.0]], [[3.0, 4.0]]])
    assert contributions.token_values(exp, "title") == (["red", "circle"], [0.5, -0.5])
    assert contributions.token_values(exp, "image") is None
    assert contributions.patch_grid(exp, "title") is None


def test_column_values_of_a_tabular_modality():
    exp = Explanation(
        sample_id="s1", modalities=["note", "worker"], values=np.array([0.25, 1.5, -0.5, 0.0]),
        feature_modality=[0, 1, 1, 1], feature_info=[{"token": "hi", "position": 1}, {"column": "zone"},
                                                     {"column": "speed"}, {"column": "shift"}],
        base_value=0.0, full_value=1.25, stderr=None, shares={"note": 0.1, "worker": 0.9}, modality_shapley=None,
        output_kind="pred_prob", explained_class="low", method="exact")
    assert contributions.column_values(exp, "worker") == (["zone", "speed", "shift"], [1.5, -0.5, 0.0])
    assert contributions.column_values(exp, "note") is None
    assert exp.feature_names() == ["note:hi", "worker:zone", "worker:speed", "worker:shift"]


def test_text_modalities_are_the_kinds_with_text_cells():
    kinds = {"photo": "image", "title": "text", "worker": "features", "x": "no-such-kind", "note": "text"}
    assert queries.text_modalities(kinds) == ["title", "note"]
    assert queries.text_modalities(kinds, ["note", "photo", "title", "absent"]) == ["note", "title"]


@pytest.mark.parametrize("kind", list_kinds())
def test_every_modality_kind_has_a_viewer(kind):
    viewer = viewers.registered_viewer(kind)
    assert viewer is not None and callable(viewer.show)
    assert viewers.VIEWERS[get_kind(kind).viewer] is viewer


def test_old_and_unknown_kinds_find_a_viewer():
    assert viewers.registered_viewer("features") is viewers.VIEWERS["tabular"]  # the old name of tabular
    assert viewers.registered_viewer("no-such-kind") is None
    assert viewers.viewer_for("no-such-kind") is viewers.PLAIN_VIEWER  # shown as its item's text
    assert viewers.viewer_for(None) is viewers.PLAIN_VIEWER and viewers.PLAIN_VIEWER.caption is str
    assert viewers.first_frame(np.zeros((4, 8, 8, 3))).shape == (8, 8, 3)  # a clip's gallery picture
    assert viewers.first_frame(np.zeros((8, 8, 3))).shape == (8, 8, 3)


def test_precomputed_reads_explanations_through_core_explain(tmp_path):
    # a run folder with nothing stored: no rows, no explanation (never an error)
    assert precomputed.explanation_summaries(tmp_path) is None
    assert precomputed.stored_explanation(tmp_path, "a") is None
    assert precomputed.expected_projections(["image"], ["pca", "tsne"]) == [("image", "pca"), ("image", "tsne")]


# --------------------------------------------------------------------------- with a built experiment


def test_precompute_status_and_project_cli(tiny_built, tmp_path, capsys):
    from core.cli import main

    _, root = tiny_built
    copy = tmp_path / "runs"
    shutil.copytree(root / "tiny" / "concat-image+title", copy / "tiny" / "concat-image+title")
    run_dir = copy / "tiny" / "concat-image+title"
    status = precomputed.precompute_status(run_dir, ["image", "title"])
    assert len(status["missing_projections"]) == 9 and status["projections"].empty
    assert status["n_explained"] == 0
    assert main(["--runs-dir", str(copy), "--quiet", "project", "tiny", "--methods", "pca"]) == 0
    assert "3 computed" in capsys.readouterr().out
    status = precomputed.precompute_status(run_dir, ["image", "title"])
    assert sorted(status["projections"]["embedding"]) == ["fused", "image", "title"]
    assert {m for _, m in status["missing_projections"]} == {"tsne", "umap"}
    # resumable: a second call keeps what is stored
    assert main(["--runs-dir", str(copy), "--quiet", "project", str(run_dir), "--methods", "pca"]) == 0
    assert "3 already stored" in capsys.readouterr().out
    assert main(["--runs-dir", str(copy), "--quiet", "project", "tiny", "--run", "nope"]) == 2


def test_project_runs_reuses_identical_embeddings(tiny_built, tmp_path):
    from core.projection import list_projections, project_runs

    _, root = tiny_built
    runs = []
    for name in ("concat-image+title", "multconcat-image+title"):
        shutil.copytree(root / "tiny" / name, tmp_path / name)
        runs.append(tmp_path / name)
    counts = project_runs(runs, methods=["pca"], progress=False)
    # image and title embeddings are the same cached unimodal embeddings in both runs
    assert counts == {"computed": 4, "reused": 2, "kept": 0}
    assert len(list_projections(runs[1])) == 3


def test_build_commands_name_the_runs_root(monkeypatch, tmp_path):
    from core.errors import cli_command
    from core.experiment import PROJECT_ROOT

    monkeypatch.chdir(PROJECT_ROOT)
    cli = cli_command()
    default = commands.build_commands("emoji", "concat-image+title", root=PROJECT_ROOT / "runs")
    assert default == {
        "everything": "bash scripts/run.sh",
        "build": f"{cli} build emoji",
        "project": f"{cli} project emoji --run concat-image+title",
        "explain": f"{cli} explain runs/emoji/concat-image+title",
        "explain_all": f"{cli} explain runs/emoji",
        "check": f"{cli} check runs/emoji/concat-image+title",
        "robustness": f"{cli} robustness emoji --run concat-image+title",
        "blame": f"{cli} blame emoji --run concat-image+title",
        "report": f"{cli} report emoji --run concat-image+title",
    }
    other = commands.build_commands("tiny", None, root=tmp_path)
    assert other["robustness"] == f"{cli} robustness tiny --runs-dir {tmp_path.resolve()}"
    assert other["everything"] == f"FUSIONLENS_RUNS={tmp_path.resolve()} bash scripts/run.sh"
    assert other["build"] == f"{cli} build tiny --runs-dir {tmp_path.resolve()}"
    assert other["explain"] == f"{cli} explain {tmp_path.resolve() / 'tiny' / '<run>'}"
    assert other["explain_all"] == f"{cli} explain {tmp_path.resolve() / 'tiny'}"
    # from a data folder (the dashboard started there): its ./runs is the CLI's default, paths are relative
    monkeypatch.chdir(tmp_path)
    here = commands.build_commands("tiny", "concat-image+title", root=tmp_path / "runs")
    assert here["build"] == f"{cli_command()} build tiny"
    assert here["explain"] == f"{cli_command()} explain runs/tiny/concat-image+title"
    assert here["everything"] == f"FUSIONLENS_RUNS={tmp_path.resolve() / 'runs'} bash {PROJECT_ROOT / 'scripts' / 'run.sh'}"


def test_build_commands_name_a_users_experiment_file(monkeypatch, tmp_path):
    from core.errors import cli_command
    from core.experiment import EXPERIMENTS_DIR

    data = tmp_path / "my data"
    (data / "runs" / "my").mkdir(parents=True)
    exp_file = data / "my.toml"
    exp_file.write_text('[dataset]\nsource = "emoji"\n')
    info = data / "runs" / "my" / "dataset.json"

    def record(path):
        info.write_text(json.dumps({"name": "my", "root": str(data), "modalities": {"image": "image"},
                                    "classes": ["a", "b"], "experiment_file": str(path)}))

    record(exp_file)
    monkeypatch.chdir(data)  # the dashboard started from the data folder
    assert commands.build_commands("my", root=data / "runs")["build"] == f"{cli_command()} build my.toml"
    monkeypatch.chdir(tmp_path)  # elsewhere: the path, quoted for the shell
    assert commands.build_commands("my", root=data / "runs")["build"] == \
        f"{cli_command()} build 'my data/my.toml' --runs-dir 'my data/runs'"
    # a demo experiment keeps its name; a file that is gone, or no record, falls back to the name
    cli = cli_command()
    record(EXPERIMENTS_DIR / "my.toml")
    assert commands.build_commands("my", root=data / "runs")["build"].startswith(f"{cli} build my ")
    record(data / "gone.toml")
    assert commands.build_commands("my", root=data / "runs")["build"].startswith(f"{cli} build my ")
    info.write_text("{not json")
    assert commands.build_commands("my", root=data / "runs")["build"].startswith(f"{cli} build my ")

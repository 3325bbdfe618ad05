"""The Overview's story under AppTest: its sentences with a link to the page that proves each, the
best run over every modality as the default run (the best overall shown beside it), the report
built on demand and offered for download, and the empty states (nothing explained, only unimodal
runs, no readable run, no run at all)."""
from __future__ import annotations

import shutil

import pytest

pytest.importorskip("streamlit")

from tests.ui.test_app import assert_ok, make_app_root, open_app, texts  # noqa: E402


def best_full(root, experiment: str = "tiny") -> str:
    from core.ranking import best_full_run
    from core.results import results_table
    from ui.queries import explained_runs

    results, _ = results_table(root / experiment)
    return best_full_run(results, explained=explained_runs(root, experiment, results["run"]))


@pytest.fixture(scope="module")
def app_root(tiny_built, tmp_path_factory) -> dict:
    return make_app_root(tiny_built, tmp_path_factory.mktemp("story"))


def page_links(at) -> list[str]:
    """The pages the story links to (their URL keys)."""
    return [link.proto.page for link in at.get("page_link")]


def test_the_story_names_the_best_run_over_every_modality_and_links_its_proof(monkeypatch, app_root):
    root = app_root["root"]
    at = open_app(monkeypatch, root, "overview")
    assert_ok(at, "overview")
    assert not at.error, texts(at.error)
    best = best_full(root)
    assert "+".join(["image", "title", "description"]) in best
    assert at.session_state["fl_last_ctx"].run == best  # the sidebar's default shows every modality
    md = texts(at.markdown)
    assert "#### The story" in md and f"Best run over every modality (Image, Title, Description)\\: `{best}`" in md
    assert "Best run over every modality" in texts(at.subheader) and f"### `{best}`" in md
    assert "not explained yet" in md and "explain" in md  # nothing of the best run is explained in this root
    # one link per sentence, each to the page that proves it
    from ui.story import load_story

    story = load_story(root, "tiny")
    assert page_links(at) == [s.page for s in story.sentences] and len(story.sentences) >= 4
    assert all(s.markdown() in md for s in story.sentences)


def test_the_story_of_an_explained_run_says_which_modality_drives(monkeypatch, app_root, tmp_path):
    from core.explain import explain_run

    root = tmp_path / "runs"
    shutil.copytree(app_root["root"], root)
    best = best_full(root)
    explain_run(root / "tiny" / best, n=3, seed=0, progress=False)
    at = open_app(monkeypatch, root, "overview")
    assert_ok(at, "overview")
    md = texts(at.markdown)
    assert "drives **" in md and "n = " in md and "not explained yet" not in md
    assert {"contributions", "misclassifications"} <= set(page_links(at))
    # the report, built on demand for the selected run, then offered for download
    assert not at.get("download_button")
    at.button(key="ov_report_prepare").click().run()
    assert not at.exception and not at.error, texts(at.error)
    ready = at.session_state["ov_report"]
    assert ready["key"][:2] == ("tiny", best) and ready["html"].startswith("<!DOCTYPE html>")
    assert f"<dd>{best}: " in ready["html"] and len(at.get("download_button")) == 1


def test_only_unimodal_runs(monkeypatch, tiny_built, tmp_path):
    _, built = tiny_built
    root = tmp_path / "runs"
    shutil.copytree(built, root)
    for run in (root / "tiny").iterdir():
        if run.is_dir() and (run / "config.json").is_file() and not run.name.startswith("unimodal-"):
            shutil.rmtree(run)
    at = open_app(monkeypatch, root, "overview")
    assert_ok(at, "overview")
    assert not at.error, texts(at.error)
    md = texts(at.markdown)
    assert "No run uses every modality (Image, Title, Description) yet" in md
    assert "fusionlens build" in texts(at.code) and "tiny.toml" in texts(at.code)
    assert at.session_state["fl_last_ctx"].run.startswith("unimodal-")  # the best run there is
    assert "#### The story" in md and "Best run" in texts(at.subheader)


def test_no_readable_run_and_no_run(monkeypatch, app_root, tmp_path):
    root = tmp_path / "runs"
    exp = root / "tiny"
    exp.mkdir(parents=True)
    for name in ("dataset.json", "dataset.parquet"):
        shutil.copy(app_root["root"] / "tiny" / name, exp / name)
    at = open_app(monkeypatch, root, "overview")  # a prepared experiment without runs
    assert_ok(at, "overview")
    assert "has no runs yet" in texts(at.info) and not at.get("page_link")
    shutil.copytree(app_root["root"] / "tiny" / "corrupted-run", exp / "corrupted-run")
    at = open_app(monkeypatch, root, "overview")  # runs, none readable
    assert_ok(at, "overview")
    assert "No run of this experiment can be read" in texts(at.info) and not at.get("page_link")

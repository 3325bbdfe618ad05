"""Every dashboard page under streamlit's AppTest, against the tiny built experiment.

The runs root is a copy of the session's tiny experiment with PCA projections
and a few stored explanations for one run, plus three broken runs (corrupted,
incomplete, older format) that must not take the others down.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

from core.errors import cli_command  # noqa: E402

APP = str(Path(__file__).resolve().parents[2] / "app.py")
PAGES = {
    "overview": ("views/1_overview.py", "Overview"),
    "compare": ("views/2_compare.py", "Compare fusion methods"),
    "contributions": ("views/3_contributions.py", "Modality contributions"),
    "explorer": ("views/4_explorer.py", "Sample explorer"),
    "embeddings": ("views/5_embeddings.py", "Embeddings"),
    "misclassifications": ("views/6_misclassifications.py", "Misclassifications"),
    "robustness": ("views/7_robustness.py", "Robustness"),
    "efficiency": ("views/8_efficiency.py", "Efficiency"),
    "slices": ("views/9_slices.py", "Slice finder"),
}
RUN = "concat-image+title"          # projected and (partly) explained
BARE = "multconcat-image+title"     # nothing precomputed
BROKEN = {"corrupted-run": "corrupted", "incomplete-run": "incomplete", "old-run": "older format"}


def make_app_root(tiny_built, folder: Path) -> dict:
    """A runs root under ``folder``: the tiny experiment + projections + explanations + broken runs."""
    from core.explain import explain_run
    from core.projection import project_runs

    _, root = tiny_built
    copy = folder / "runs"
    shutil.copytree(root, copy)
    exp = copy / "tiny"
    project_runs([exp / RUN], methods=["pca"], progress=False)
    explain_run(exp / RUN, n=3, progress=False)
    explained = pd.read_parquet(next((exp / RUN / "explanations").glob("samples-*.parquet")))["sample_id"].tolist()
    for name, kind in BROKEN.items():
        shutil.copytree(exp / BARE, exp / name)
        if kind == "corrupted":
            (exp / name / "predictions.parquet").write_bytes(b"not a parquet file")
        elif kind == "incomplete":
            (exp / name / "metrics.json").unlink()
        else:
            cfg = json.loads((exp / name / "config.json").read_text())
            cfg["format_version"] = 0
            (exp / name / "config.json").write_text(json.dumps(cfg))
    preds = pd.read_parquet(exp / RUN / "predictions.parquet")
    return {"root": copy, "explained": explained, "sample": explained[0],
            "wrong": preds.loc[~preds["correct"], "id"].tolist(),
            "classes": json.loads((exp / RUN / "config.json").read_text())["classes"]}


@pytest.fixture(scope="module")
def app_root(tiny_built, tmp_path_factory) -> dict:
    return make_app_root(tiny_built, tmp_path_factory.mktemp("app"))


def open_app(monkeypatch, root: Path, at_page: str | None = None, **query: str) -> AppTest:
    """The app after its first run; ``at_page`` is opened like a link to it (``?page=``)."""
    monkeypatch.setenv("FUSIONLENS_RUNS", str(root))
    at = AppTest.from_file(APP, default_timeout=90)
    if at_page is not None:
        query = {"page": at_page, **query}
    for key, value in query.items():
        at.query_params[key] = value
    at.run()
    return at


def texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)


def assert_ok(at: AppTest, page: str) -> None:
    assert not at.exception, texts(at.exception)
    assert [t.value for t in at.title] == [PAGES[page][1]]


# --------------------------------------------------------------------------- every page


@pytest.mark.parametrize("page", list(PAGES))
def test_every_page_renders(monkeypatch, app_root, page):
    at = open_app(monkeypatch, app_root["root"], page, run=RUN, sample=app_root["sample"])
    assert_ok(at, page)
    assert not at.error, texts(at.error)
    assert at.session_state["fl_last_ctx"].run == RUN
    assert at.query_params["page"] == [page] or at.query_params["page"] == page
    if page in ("explorer", "embeddings", "misclassifications", "contributions", "compare"):
        assert at.get("plotly_chart"), "the page shows no figure"


@pytest.mark.parametrize("page", list(PAGES))
def test_every_page_without_precomputed_results(monkeypatch, app_root, page):
    at = open_app(monkeypatch, app_root["root"], page, run=BARE)
    assert_ok(at, page)
    assert not at.error, texts(at.error)
    messages = texts(at.info) + texts(at.code)
    if page in ("contributions", "misclassifications"):
        assert "No explanations yet" in messages and f"{cli_command()} explain" in messages
    if page == "embeddings":
        assert "No t-SNE projection yet" in messages or "No PCA projection yet" in messages
        assert f"{cli_command()} project tiny" in messages
    if page == "explorer":
        assert "No sample selected" in messages


@pytest.mark.parametrize("page", list(PAGES))
def test_empty_runs_root_says_what_to_run(monkeypatch, tmp_path, page):
    at = open_app(monkeypatch, tmp_path / "no-runs-here", page)
    assert_ok(at, page)
    messages = texts(at.info) + texts(at.code)
    assert "No runs yet" in messages
    assert "bash scripts/run.sh" in messages and f"{cli_command()} build emoji" in messages


@pytest.mark.parametrize("broken", list(BROKEN))
def test_a_broken_run_shows_its_problem_and_the_others_stay_usable(monkeypatch, app_root, broken):
    for page in ("overview", "explorer", "misclassifications"):
        at = open_app(monkeypatch, app_root["root"], page, run=broken)
        assert not at.exception, texts(at.exception)
        if page != "overview":
            errors = texts(at.error)
            assert f"Run `{broken}` cannot be shown" in errors
            assert "Fix:" in errors
    # pick a good run in the sidebar: the page works again
    at.selectbox(key="fl_run").select(RUN).run()
    assert not at.exception and not at.error, texts(at.error)
    assert at.get("plotly_chart")
    assert at.query_params["run"] in ([RUN], RUN)


def test_overview_lists_unreadable_runs(monkeypatch, app_root):
    at = open_app(monkeypatch, app_root["root"], "compare", run=RUN)
    assert_ok(at, "compare")
    problems = " ".join(e.label for e in at.expander) if at.expander else ""
    assert "could not be read" in problems
    assert "(incomplete)" in at.selectbox(key="fl_run").format_func("incomplete-run")


def test_a_page_view_never_starts_umap(monkeypatch, app_root):
    import sys

    if "umap" in sys.modules:
        pytest.skip("umap was imported by another test in this process")
    for page in PAGES:
        assert not open_app(monkeypatch, app_root["root"], page, run=RUN).exception
    assert "umap" not in sys.modules  # its numba compile only runs from a button or the CLI


# --------------------------------------------------------------------------- safety


@pytest.mark.parametrize("query", [
    {"run": "../../../etc"},
    {"run": "/etc/passwd"},
    {"exp": ".."},
    {"exp": "../tiny", "run": RUN},
    {"run2": "..%2F..%2Fetc"},
])
def test_path_traversal_in_the_url_is_refused(monkeypatch, app_root, query):
    at = open_app(monkeypatch, app_root["root"], "explorer", **query)
    assert not at.exception, texts(at.exception)
    errors = texts(at.error)
    assert "Refused" in errors and "not a plain name inside the runs directory" in errors
    ctx = at.session_state["fl_last_ctx"]
    assert ctx.experiment == "tiny" and ctx.run in ctx.runs


def test_unknown_names_in_the_url_fall_back_with_a_message(monkeypatch, app_root):
    at = open_app(monkeypatch, app_root["root"], "explorer", run="no-such-run", sample="no-such-sample")
    assert not at.exception
    assert "no-such-run" in texts(at.error)
    assert "not in this run" in texts(at.warning)


def test_a_symlinked_run_pointing_outside_is_not_listed(monkeypatch, app_root, tmp_path):
    outside = tmp_path / "outside-run"
    shutil.copytree(app_root["root"] / "tiny" / BARE, outside)
    link = app_root["root"] / "tiny" / "linked-out"
    link.symlink_to(outside, target_is_directory=True)
    try:
        at = open_app(monkeypatch, app_root["root"], "explorer", run="linked-out")
        assert not at.exception
        assert "linked-out" not in at.session_state["fl_last_ctx"].runs
        assert "linked-out" in texts(at.error)
    finally:
        link.unlink()


# --------------------------------------------------------------------------- state, filters, drill-down


def test_selection_survives_page_changes_and_is_in_the_url(monkeypatch, app_root):
    at = open_app(monkeypatch, app_root["root"], None)
    at.selectbox(key="fl_run").select(BARE).run()
    at.selectbox(key="fl_run2").select(RUN).run()
    for page in ("compare", "misclassifications", "contributions"):
        at.switch_page(PAGES[page][0]).run()
        assert_ok(at, page)
        ctx = at.session_state["fl_last_ctx"]
        assert (ctx.run, ctx.run2) == (BARE, RUN)
    assert dict(at.query_params) | {} and at.query_params["run2"] in ([RUN], RUN)


def test_page_param_in_a_link_opens_that_page(monkeypatch, app_root):
    at = open_app(monkeypatch, app_root["root"], None, page="explorer", run=RUN, sample=app_root["sample"])
    assert_ok(at, "explorer")
    at = open_app(monkeypatch, app_root["root"], None, run=RUN, sample=app_root["sample"])
    at.switch_page(PAGES["explorer"][0]).run()  # a nav click
    assert_ok(at, "explorer")
    assert f"Sample `{app_root['sample']}`" in texts(at.subheader)


def test_explorer_shows_the_stored_explanation(monkeypatch, app_root):
    at = open_app(monkeypatch, app_root["root"], "explorer", run=RUN, sample=app_root["sample"])
    assert_ok(at, "explorer")
    titles = [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in at.get("plotly_chart")]
    assert any("patch contributions" in t for t in titles), titles
    assert any("Modality shares" in t for t in titles) and any("Top-5" in t for t in titles)
    assert any("fusionlens-tokens" in str(h.proto) for h in at.get("html"))  # tokens coloured by contribution
    across = at.dataframe[-1].value  # the same sample under the other (readable) runs
    assert len(across) >= 5 and RUN not in set(across["run"]) and not set(BROKEN) & set(across["run"])


def test_explain_a_sample_on_the_spot(monkeypatch, app_root, tmp_path):
    root = tmp_path / "runs"
    shutil.copytree(app_root["root"] / "tiny" / BARE, root / "tiny" / BARE)
    for f in ("dataset.json", "dataset.parquet"):
        shutil.copy(app_root["root"] / "tiny" / f, root / "tiny" / f)
    sample = app_root["wrong"][0] if app_root["wrong"] else app_root["sample"]
    at = open_app(monkeypatch, root, "explorer", run=BARE, sample=sample)
    assert "No MM-SHAP explanation for this sample yet" in texts(at.info)
    at.button(key="explain_now").click().run()
    assert not at.exception and not at.error, texts(at.exception) + texts(at.error)
    titles = [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in at.get("plotly_chart")]
    assert any("Modality shares" in t for t in titles)
    assert list((root / "tiny" / BARE / "explanations").glob("samples-*.parquet"))  # stored with the run


def test_explorer_filters_and_empty_filter(monkeypatch, app_root):
    at = open_app(monkeypatch, app_root["root"], "explorer", run=RUN)
    at.text_input(key="ex_search").input("zzz-matches-nothing").run()
    assert not at.exception
    assert "No sample matches these filters" in texts(at.warning)
    at.text_input(key="ex_search").input("").run()
    at.segmented_control(key="ex_correct").set_value("Correct").run()
    assert not at.exception and not at.warning
    n_total = len(pd.read_parquet(app_root["root"] / "tiny" / RUN / "predictions.parquet"))
    n_right = n_total - len(app_root["wrong"])
    assert f"{n_right:,} of {n_total:,} test samples" in texts(at.markdown)


def test_compare_filters_and_downloads(monkeypatch, app_root):
    at = open_app(monkeypatch, app_root["root"], "compare", run=RUN)
    assert len(at.get("download_button")) == 2
    at.multiselect(key="cmp_fusion").select("concat").run()
    assert not at.exception and "2 of" in texts(at.markdown)
    at.text_input(key="cmp_search").input("no-such-method").run()
    assert "No run matches these filters" in texts(at.warning)


def test_misclassifications_cell_lists_its_samples(monkeypatch, app_root):
    at = open_app(monkeypatch, app_root["root"], "misclassifications", run=RUN)
    preds = pd.read_parquet(app_root["root"] / "tiny" / RUN / "predictions.parquet")
    true, pred = preds.loc[preds["correct"], ["label", "pred"]].iloc[0]
    at.selectbox(key="mis_true").select(true).run()
    at.selectbox(key="mis_pred").select(pred).run()
    assert not at.exception
    n = int(((preds["label"] == true) & (preds["pred"] == pred)).sum())
    assert f"{n:,} correct predictions" in texts(at.markdown)
    at.toggle(key="mis_norm").set_value(True).run()
    assert not at.exception


def test_embeddings_compute_a_missing_projection_from_the_page(monkeypatch, app_root, tmp_path):
    root = tmp_path / "runs"
    shutil.copytree(app_root["root"] / "tiny" / BARE, root / "tiny" / BARE)
    for f in ("dataset.json", "dataset.parquet"):
        shutil.copy(app_root["root"] / "tiny" / f, root / "tiny" / f)
    at = open_app(monkeypatch, root, "embeddings", run=BARE)
    assert "No PCA projection yet" in texts(at.info)
    assert not at.get("plotly_chart")
    at.button(key="compute_pca").click().run()
    assert not at.exception
    assert len(at.get("plotly_chart")) == 3  # image, title, fused
    assert (root / "tiny" / BARE / "projections").is_dir()
    captions = texts(at.caption)
    assert "Trustworthiness" in captions


def test_embeddings_draw_a_density_above_the_threshold(monkeypatch, app_root):
    import ui.figures

    monkeypatch.setattr(ui.figures, "DENSITY_MIN_POINTS", 5)   # the tiny run counts as "large"
    at = open_app(monkeypatch, app_root["root"], "embeddings", run=RUN)
    assert_ok(at, "embeddings")
    traces = [json.loads(c.proto.spec)["data"] for c in at.get("plotly_chart")]
    assert traces and all(t[0]["type"] == "heatmap" for t in traces)
    assert "density view" in texts(at.caption) and "Trustworthiness" in texts(at.caption)
    at.toggle(key="emb_every_point").set_value(True).run()       # back to every point
    assert not at.exception
    traces = [json.loads(c.proto.spec)["data"] for c in at.get("plotly_chart")]
    assert all(tr["type"] == "scattergl" for t in traces for tr in t)
    assert "every point drawn" in texts(at.caption)


def test_contributions_side_by_side(monkeypatch, app_root):
    at = open_app(monkeypatch, app_root["root"], "contributions", run=RUN, run2=BARE)
    assert_ok(at, "contributions")
    headers = texts(at.markdown)
    assert f"#### `{RUN}`" in headers and f"#### `{BARE}`" in headers
    assert "No explanations yet" in texts(at.info)  # the second run is not explained
    assert len(at.get("plotly_chart")) >= 3


# --------------------------------------------------------------------------- two experiments, ties, gaps


def chart_titles(at: AppTest) -> list[str]:
    return [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in at.get("plotly_chart")]


def test_contributions_show_both_meanings_of_share_and_the_interactions(monkeypatch, app_root):
    at = open_app(monkeypatch, app_root["root"], "contributions", run=RUN)
    assert_ok(at, "contributions")
    titles = chart_titles(at)
    assert "Mean modality share per class" in titles
    assert "Mean modality share: MM-SHAP and exact" in titles and "Modality interaction per class" in titles
    captions = texts(at.caption)
    assert "MM-SHAP share: sum of |phi| of the modality's tokens / patches" in captions
    assert "Exact modality share: the modality as one player, positive and negative parts cancel" in captions
    assert "only exists when the two modalities are seen together" in texts(at.markdown)
    tables = [d.value for d in at.dataframe]
    inter = [t for t in tables if ("All", "Image \u00d7 Title") in list(t.columns)]
    assert inter, [list(t.columns) for t in tables]
    cells = [c for c in inter[0][("All", "Image \u00d7 Title")] if c != "/"]
    assert cells and all(c[0] in "+-" and c.endswith(")") for c in cells)   # mean [interval] (n)
    at.radio(key="contrib_meaning").set_value("exact").run()
    assert not at.exception
    assert "Mean exact modality share per class" in chart_titles(at)


@pytest.fixture(scope="module")
def game_root(app_root, tmp_path_factory) -> Path:
    """The app root with the blame (and so every test prediction's modality game) of RUN and BARE."""
    from core.explain import blame_run

    root = tmp_path_factory.mktemp("game") / "runs"
    shutil.copytree(app_root["root"] / "tiny", root / "tiny", ignore=shutil.ignore_patterns(*BROKEN))
    for run in (RUN, BARE):
        blame_run(root / "tiny" / run)
    return root


def test_contributions_show_every_prediction_from_the_modality_game(monkeypatch, game_root):
    n_test = len(pd.read_parquet(game_root / "tiny" / BARE / "predictions.parquet"))
    # a run without MM-SHAP explanations opens on the exact shares of every test prediction
    at = open_app(monkeypatch, game_root, "contributions", run=BARE)
    assert_ok(at, "contributions")
    assert not at.error, texts(at.error)
    assert at.radio(key="contrib_meaning").value == "exact"
    assert f"Exact modality shares of **every test prediction** ({n_test:,})" in texts(at.caption)
    share_table = next(d.value for d in at.dataframe if ("All", "n") in list(d.value.columns))
    assert int(share_table[("All", "n")].sum()) == n_test
    assert "Modality interaction per class" in chart_titles(at)
    assert "Per-sample exact modality share by class" in chart_titles(at)
    # an explained run: MM-SHAP on its explained samples, exact on every prediction
    at = open_app(monkeypatch, game_root, "contributions", run=RUN)
    assert at.radio(key="contrib_meaning").value == "mmshap"
    assert "explained samples of" in texts(at.caption)
    at.radio(key="contrib_meaning").set_value("exact").run()
    assert not at.exception
    assert f"**every test prediction** ({n_test:,})" in texts(at.caption)
    assert "Mean modality share: MM-SHAP and exact" in chart_titles(at)   # both meanings: the explained samples
    # the explorer shows a sample without MM-SHAP values its exact modality shares and interactions
    sample = str(pd.read_parquet(game_root / "tiny" / BARE / "predictions.parquet")["id"].iloc[0])
    at = open_app(monkeypatch, game_root, "explorer", run=BARE, sample=sample)
    assert_ok(at, "explorer")
    assert "Modality shares: exact (MM-SHAP not computed)" in chart_titles(at)
    assert "No MM-SHAP explanation for this sample yet" in texts(at.info)
    assert "Image \u00d7 Title: **" in texts(at.markdown)
    # a game of an earlier training is not used: the page says so and names the command
    meta_path = game_root / "tiny" / BARE / "blame.json"
    meta = json.loads(meta_path.read_text())
    meta["run_fingerprint"] = "an earlier training"
    meta_path.write_text(json.dumps(meta))
    at = open_app(monkeypatch, game_root, "contributions", run=BARE)
    assert_ok(at, "contributions")
    assert "No explanations yet" in texts(at.info)
    at.radio(key="contrib_meaning").set_value("exact").run()
    assert "of an earlier training of this run" in texts(at.caption) and "blame tiny" in texts(at.caption)


def test_explorer_shows_exact_share_and_interaction_of_the_sample(monkeypatch, app_root):
    at = open_app(monkeypatch, app_root["root"], "explorer", run=RUN, sample=app_root["sample"])
    assert_ok(at, "explorer")
    assert "Modality shares: MM-SHAP and exact" in chart_titles(at)
    chart = next(json.loads(c.proto.spec) for c in at.get("plotly_chart")
                 if "MM-SHAP and exact" in json.loads(c.proto.spec)["layout"]["title"]["text"])
    assert [t["name"] for t in chart["data"] if t.get("showlegend")] == ["MM-SHAP share", "Exact modality share"]
    assert "Modality interactions" in texts(at.markdown) and "Image \u00d7 Title: **" in texts(at.markdown)
    # the estimate says what it is and shows its error, next to the share
    mmshap = next(t for t in chart["data"] if t.get("name") == "MM-SHAP share" and "error_x" in t)
    assert mmshap["error_x"]["visible"] and all(e >= 0 for e in mmshap["error_x"]["array"])
    assert "MM-SHAP shares are estimated (" in texts(at.caption) and "95 % interval of the estimate" in texts(at.caption)


@pytest.fixture(scope="module")
def flat_root(app_root, tmp_path_factory) -> Path:
    """The explained run with every stored explanation scaled down 10^4 times: predictions that
    barely depend on their inputs, as a randomised model gives."""
    root = tmp_path_factory.mktemp("flat") / "runs"
    shutil.copytree(app_root["root"] / "tiny" / RUN, root / "tiny" / RUN)
    for f in ("dataset.json", "dataset.parquet"):
        shutil.copy(app_root["root"] / "tiny" / f, root / "tiny" / f)
    folder = root / "tiny" / RUN / "explanations"
    for path in folder.glob("features-*.parquet"):
        frame = pd.read_parquet(path)
        frame["phi"] = frame["phi"] * 1e-4
        frame.to_parquet(path)
    for path in folder.glob("samples-*.parquet"):
        frame = pd.read_parquet(path)
        frame["full_value"] = frame["base_value"] + (frame["full_value"] - frame["base_value"]) * 1e-4
        frame["sum_abs_phi"] = frame["sum_abs_phi"] * 1e-4
        frame["flat"] = True
        frame.to_parquet(path)
    return root


def test_flat_predictions_show_no_share(monkeypatch, flat_root, app_root):
    at = open_app(monkeypatch, flat_root, "explorer", run=RUN, sample=app_root["sample"])
    assert_ok(at, "explorer")
    assert "No share: the prediction barely depends on its inputs" in texts(at.warning)
    assert "Modality shares: MM-SHAP and exact" not in chart_titles(at)
    at = open_app(monkeypatch, flat_root, "contributions", run=RUN)
    assert_ok(at, "contributions")
    assert "no share: the prediction barely depends on its inputs" in texts(at.caption)
    share_table = next(d.value for d in at.dataframe if ("All", "n") in list(d.value.columns))
    assert set(share_table[("All", "Image")]) == {"/"}      # counted, but no mean share


def copy_experiment(root: Path, source: str, name: str, drop: tuple[str, ...] = ()) -> Path:
    """A copy of experiment ``source`` under ``name`` (its runs' config names the new experiment)."""
    target = root / name
    shutil.copytree(root / source, target)
    for run in drop:
        shutil.rmtree(target / run)
    for cfg_path in target.glob("*/config.json"):
        cfg = json.loads(cfg_path.read_text())
        cfg["experiment"] = name
        cfg_path.write_text(json.dumps(cfg))
    info = json.loads((target / "dataset.json").read_text())
    (target / "dataset.json").write_text(json.dumps({**info, "name": name}))
    return target


ONLY_IN_A = ("late-weighted-image+title", "late-weighted-image+title+description")  # runs tiny-b lacks


@pytest.fixture(scope="module")
def two_experiments(tiny_built, tmp_path_factory) -> Path:
    """A runs root with experiments ``tiny`` and ``tiny-b`` (a copy without the runs ``ONLY_IN_A``)."""
    _, built = tiny_built
    root = tmp_path_factory.mktemp("two") / "runs"
    shutil.copytree(built, root)
    copy_experiment(root, "tiny", "tiny-b", drop=ONLY_IN_A)
    return root


def test_open_in_explorer_keeps_the_experiment_run_and_sample(monkeypatch, two_experiments):
    at = open_app(monkeypatch, two_experiments, None)
    at.selectbox(key="fl_exp").select("tiny-b").run()
    ctx = at.session_state["fl_last_ctx"]
    run = next(r for r in reversed(ctx.runs) if r != ctx.run)  # not the default (best) run
    at.selectbox(key="fl_run").select(run).run()
    at.switch_page(PAGES["misclassifications"][0]).run()
    assert_ok(at, "misclassifications")
    preds = pd.read_parquet(two_experiments / "tiny-b" / run / "predictions.parquet")
    sample, true, pred = preds[["id", "label", "pred"]].iloc[-1]
    at.selectbox(key="mis_true").select(true).run()
    at.selectbox(key="mis_pred").select(pred).run()
    at.session_state["fl_sample"] = str(sample)  # what selecting the sample's row in the cell's table sets
    at.run()
    at.button(key="mis_open").click().run()  # ui.context.open_in_explorer -> st.switch_page
    assert_ok(at, "explorer")
    assert not at.error and not at.warning, texts(at.error) + texts(at.warning)
    ctx = at.session_state["fl_last_ctx"]
    assert (ctx.experiment, ctx.run) == ("tiny-b", run)
    assert f"Sample `{sample}`" in texts(at.subheader)
    assert {k: at.query_params[k] for k in ("exp", "run", "sample")} in (
        {"exp": "tiny-b", "run": run, "sample": str(sample)}, {"exp": ["tiny-b"], "run": [run], "sample": [str(sample)]})


def test_switching_experiment_falls_back_silently(monkeypatch, two_experiments):
    from core.ranking import best_full_run
    from core.results import results_table

    at = open_app(monkeypatch, two_experiments, "compare", run=ONLY_IN_A[0], run2=ONLY_IN_A[1])
    assert not at.error, texts(at.error)
    ctx = at.session_state["fl_last_ctx"]
    assert (ctx.experiment, ctx.run, ctx.run2) == ("tiny", *ONLY_IN_A)
    at.selectbox(key="fl_exp").select("tiny-b").run()
    assert not at.exception and not at.error, texts(at.error)  # a stale run is no security refusal
    ctx = at.session_state["fl_last_ctx"]
    # nothing is explained here; the default is the best run over every modality
    best = best_full_run(results_table(two_experiments / "tiny-b")[0])
    assert (ctx.experiment, ctx.run, ctx.run2) == ("tiny-b", best, None)  # that experiment's default run
    assert at.query_params["exp"] in ("tiny-b", ["tiny-b"]) and "run2" not in at.query_params
    at.selectbox(key="fl_exp").select("tiny").run()
    assert not at.error, texts(at.error)
    # a name in a link that is not in the runs directory is still reported
    at = open_app(monkeypatch, two_experiments, "explorer", exp="tiny-b", run=ONLY_IN_A[0])
    assert ONLY_IN_A[0] in texts(at.error) and "Refused" in texts(at.error)


@pytest.fixture(scope="module")
def tied_and_half_explained(tiny_built, tmp_path_factory) -> dict:
    """Every run ties on top-1; one fused run is explained for 3 of the build's 8 samples."""
    from core.explain import explain_run, select_build_runs

    _, built = tiny_built
    root = tmp_path_factory.mktemp("gaps") / "runs"
    shutil.copytree(built, root)
    exp = root / "tiny"
    for metrics_path in exp.glob("*/metrics.json"):
        metrics = json.loads(metrics_path.read_text())
        metrics_path.write_text(json.dumps({**metrics, "top1": 0.75}))
    explained = "multconcat-image+title+description"
    explain_run(exp / explained, n=3, seed=0, progress=False)
    return {"root": root, "explained": explained, "plan": [p.name for p in select_build_runs(exp)]}


def test_overview_says_what_explanations_are_missing_and_how_to_fill_them(monkeypatch, tied_and_half_explained):
    root, explained, plan = (tied_and_half_explained[k] for k in ("root", "explained", "plan"))
    assert plan[0] == explained  # the build explains the run the Overview calls best
    at = open_app(monkeypatch, root, "overview")
    assert_ok(at, "overview")
    # a tie on top-1: the explained run over the most modalities, not the first (unimodal) row
    assert f"### `{explained}`" in texts(at.markdown)
    assert at.session_state["fl_last_ctx"].run == explained  # the sidebar's default run too
    warnings = texts(at.warning)
    assert "Explanations incomplete" in warnings and f"`{explained}` 3 of 8" in warnings
    assert all(f"`{name}` 0 of 8" in warnings for name in plan[1:])
    commands = texts(at.code)
    assert f"explain {root / 'tiny' / explained} --n 1000 --seed 0" in commands  # the default: every sample
    assert all(f"explain {root / 'tiny' / name} --n 1000 --seed 0" in commands for name in plan[1:])
    assert "3 of the 8 samples the build explains" in warnings  # the selected run's own state
    assert not any("test samples explained" in s.value for s in at.success)  # no green box while incomplete


def test_overview_sums_the_shared_sample_of_every_run_in_one_command(monkeypatch, tied_and_half_explained,
                                                                      tmp_path):
    """[precompute] explain_every_run: the many runs of the shared sample are one line and one command."""
    root = tmp_path / "runs"
    shutil.copytree(tied_and_half_explained["root"], root)
    (root / "tiny" / "precompute.json").write_text(json.dumps({"explain_max_runs": 1, "explain_every_run": 2}))
    explained = tied_and_half_explained["explained"]
    at = open_app(monkeypatch, root, "overview")
    assert_ok(at, "overview")
    warnings = texts(at.warning)
    assert "Explanations incomplete" in warnings and f"`{explained}` 3 of 8" in warnings
    # the other 7 fused runs ask the 2 shared samples; the explained run holds 2 of them already
    assert "7 runs asking 2 seeded samples each, 0 of 14 explanations stored" in warnings
    commands = texts(at.code)
    assert f"explain {root / 'tiny'} --n 2 --seed 0" in commands
    assert f"explain {root / 'tiny' / explained} --n 1000 --seed 0" in commands
    assert "concat-image+title --n 2" not in commands


def test_compare_crowns_no_timing_and_no_trivial_topk(monkeypatch, app_root):
    import re

    at = open_app(monkeypatch, app_root["root"], "compare", run=RUN)
    assert_ok(at, "compare")
    table = at.dataframe[0]
    columns = list(table.value.columns)
    styles = table.proto.arrow_data.styler.styles
    crowned = {columns[int(c)] for c in re.findall(r"_row\d+_col(\d+)", styles)}
    assert "top1" in crowned and "top3" in crowned  # 4 classes: top-3 still says something
    assert "top5" not in crowned and "inference_ms" not in crowned
    config = json.loads(table.proto.columns)
    assert config["top5"]["label"] == "Top-5 (not meaningful)" and "(indicative)" in config["inference_ms"]["label"]
    assert "indicative" in texts(at.caption)
    # GFLOPs beside the timing: counted, not timed, so the cheapest run is marked, and the help says what counts
    assert columns.index("gflops") == columns.index("inference_ms") + 1 and "gflops" in crowned
    assert config["gflops"]["label"] == "GFLOPs / sample" and "multiply-add is 2 FLOPs" in config["gflops"]["help"]


@pytest.fixture(scope="module")
def three_classes(tmp_path_factory) -> Path:
    """A runs root with a 3-class experiment (top-3 and top-5 are trivially 1)."""
    from core.experiment import load_experiment
    from core.train import train_experiment

    from tests._experiments import write_tiny_experiment

    folder = tmp_path_factory.mktemp("three")
    exp_path = write_tiny_experiment(folder, methods=["concat"], n_classes=3, per_class=8)
    train_experiment(load_experiment(exp_path), folder / "runs", progress=False)
    return folder / "runs"


def test_compare_with_three_classes_crowns_no_topk(monkeypatch, three_classes):
    import re

    at = open_app(monkeypatch, three_classes, "compare")
    assert_ok(at, "compare")
    table = at.dataframe[0]
    columns = list(table.value.columns)
    crowned = {columns[int(c)] for c in re.findall(r"_row\d+_col(\d+)", table.proto.arrow_data.styler.styles)}
    assert "top1" in crowned and not crowned & {"top3", "top5", "inference_ms"}
    config = json.loads(table.proto.columns)
    assert config["top3"]["label"].endswith("(not meaningful)") and config["top5"]["label"].endswith("(not meaningful)")
    at = open_app(monkeypatch, three_classes, "overview")
    assert_ok(at, "overview")
    assert any(m.label == "Top-5" and m.value == "n/a" for m in at.metric)

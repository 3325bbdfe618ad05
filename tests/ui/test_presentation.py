"""Saved views and presentation mode in the dashboard (AppTest): save a view with the explorer's filters set,
open it from a fresh session with ``?view=``, refuse unknown and hostile names, present a sequence of views."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

from ui import figures as F  # noqa: E402
from ui.figures.style import empty_figure, style_figure  # noqa: E402
from ui.context import PAGE_BY_KEY  # noqa: E402
from ui.saved_views import SavedView, ViewStore  # noqa: E402

APP = str(Path(__file__).resolve().parents[2] / "app.py")
RUN = "concat-image+title"
OTHER = "multconcat-image+title"


@pytest.fixture
def root(tiny_built, tmp_path) -> Path:
    _, built = tiny_built
    copy = tmp_path / "runs"
    shutil.copytree(built, copy)
    return copy


def open_app(monkeypatch, root: Path, **query: str) -> AppTest:
    monkeypatch.setenv("FUSIONLENS_RUNS", str(root))
    at = AppTest.from_file(APP, default_timeout=90)
    for key, value in query.items():
        at.query_params[key] = value
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)


def param(at: AppTest, key: str):
    value = at.query_params.get(key)
    return value[0] if isinstance(value, list) else value


# --------------------------------------------------------------------------- larger figures while presenting


def font_sizes(obj, path="") -> dict:
    """Every ``*font.size`` of a figure's JSON, by its path."""
    out = {}
    if isinstance(obj, dict):
        for key, value in obj.items():
            if key.endswith("font") and isinstance(value, dict) and "size" in value:
                out[f"{path}/{key}"] = value["size"]
            elif isinstance(value, (dict, list)):
                out.update(font_sizes(value, f"{path}/{key}"))
    elif isinstance(obj, list):
        for i, value in enumerate(obj):
            if isinstance(value, dict):
                out.update(font_sizes(value, f"{path}[{i}]"))
    return out


def _annotated():
    import plotly.graph_objects as go

    fig = go.Figure(go.Bar(x=["a", "b"], y=[1, 2], textfont={"size": 12}))
    fig.add_annotation(text="note", x=0, y=1, font={"size": 10})
    return style_figure(fig, "Title", "x", "y", height=300)


def _series():
    import numpy as np
    import pandas as pd

    players = pd.DataFrame({"segment": [0, 1], "group": [0, 0], "t0": [0, 10], "t1": [10, 20], "phi": [0.3, -0.1]})
    return F.make_series_figure(np.sin(np.arange(40.0))[:, None] * [1.0, 2.0], ["x", "y"], contributions=players,
                                title="Track")


def _interactions():
    import pandas as pd

    from ui.labels import SUBSETS

    row = {"class": "cat"}
    for s in SUBSETS:
        row.update({f"interaction_image__text_{s}": 0.1, f"interaction_image__text_{s}_n": 5,
                    f"interaction_image__text_{s}_low": 0.0, f"interaction_image__text_{s}_high": 0.2})
    return F.make_interaction_figure(pd.DataFrame([row, {**row, "class": "dog"}]), ["image", "text"])


def _embedding():
    import pandas as pd

    names = [f"class {i}" for i in range(12)]  # more than 8 legend entries: the legend goes under the plot
    coords = pd.DataFrame({"id": [f"s{i}" for i in range(24)], "x": range(24), "y": range(24),
                           "label": [names[i % 12] for i in range(24)]})
    return F.make_embedding_figure(coords, "label", ["label"], "Fused")


def _topk():
    return F.make_topk_figure({"label": "dog", "top1_label": "cat", "top1_prob": 0.6, "top2_label": "dog",
                               "top2_prob": 0.3})


BUILDERS = {
    "confusion": lambda: F.make_confusion_figure(["cat", "dog", "fish"], [[5, 1, 0], [2, 4, 1], [0, 1, 6]]),
    "pairs": lambda: F.make_confused_pairs_figure(["cat", "dog", "fish"], [[5, 1, 0], [2, 4, 1], [0, 1, 6]]),
    "empty": lambda: empty_figure("nothing yet", "Empty"),
    "annotated": _annotated,
    # builders that set a font (or margin) after style_figure: through style.font_size / scaled_px
    "series": _series,
    "interactions": _interactions,
    "embedding": _embedding,
    "topk": _topk,
}


@pytest.mark.parametrize("name", list(BUILDERS))
def test_every_font_and_the_height_grow_while_presenting(name):
    normal = BUILDERS[name]()
    with F.scaled_figures(F.PRESENT_SCALE):
        large = BUILDERS[name]()
    assert F.figure_scale() == 1.0  # only inside the block
    before, after = font_sizes(normal.to_plotly_json()), font_sizes(large.to_plotly_json())
    assert before and set(before) == set(after)
    for path, size in before.items():
        assert after[path] == pytest.approx(size * F.PRESENT_SCALE, abs=1.0), path
    if normal.layout.height:
        assert large.layout.height == pytest.approx(normal.layout.height * F.PRESENT_SCALE, abs=1)
    if name in ("series", "embedding"):  # a legend under the plot: its margin grows with the fonts
        assert large.layout.margin.b == pytest.approx(normal.layout.margin.b * F.PRESENT_SCALE, abs=1)
    assert font_sizes(BUILDERS[name]().to_plotly_json()) == before  # nothing leaks out of the block


def test_styling_twice_does_not_enlarge_twice():
    with F.scaled_figures(2.0):
        fig = _annotated()
        style_figure(fig, "Again", "x", "y", height=300)
    sizes = font_sizes(fig.to_plotly_json())
    assert sizes["/data[0]/textfont"] == 24 and sizes["/layout/annotations[0]/font"] == 20
    assert fig.layout.height == 600
    with pytest.raises(ValueError, match="outside"):
        with F.scaled_figures(10):
            pass


# --------------------------------------------------------------------------- saved views in the app


def test_save_a_view_on_the_explorer_and_open_it_from_a_fresh_session(monkeypatch, root):
    first = open_app(monkeypatch, root)
    run = next(r for r in first.selectbox(key="fl_run").options if r != first.selectbox(key="fl_run").value)
    at = open_app(monkeypatch, root, page="explorer", run=run)
    classes = at.multiselect(key="ex_true").options
    at.multiselect(key="ex_true").select(classes[0]).run()
    at.segmented_control(key="ex_correct").set_value("Incorrect").run()
    at.slider(key="ex_conf").set_value((0.1, 0.8)).run()
    at.text_input(key="ex_search").input("s").run()
    at.text_input(key="fl_view_name").input("wrong ones").run()
    at.button(key="fl_view_save").click().run()
    assert not at.exception, texts(at.exception)
    assert "Saved view **wrong ones**" in texts(at.success)
    saved = ViewStore(root, PAGE_BY_KEY).load()["wrong ones"]
    assert saved.page == "explorer" and saved.exp == "tiny" and saved.run == run
    assert saved.filters["ex_true"] == [classes[0]] and saved.filters["ex_correct"] == "Incorrect"
    assert saved.filters["ex_conf"] == [0.1, 0.8] and saved.filters["ex_search"] == "s"

    fresh = open_app(monkeypatch, root, view="wrong ones")
    assert [t.value for t in fresh.title] == ["Sample explorer"]
    assert fresh.selectbox(key="fl_run").value == run  # not the default run of a fresh session
    assert fresh.multiselect(key="ex_true").value == [classes[0]]
    assert fresh.segmented_control(key="ex_correct").value == "Incorrect"
    assert tuple(fresh.slider(key="ex_conf").value) == (0.1, 0.8)
    assert fresh.text_input(key="ex_search").value == "s"
    assert param(fresh, "page") == "explorer" and param(fresh, "run") == run and "view" not in fresh.query_params
    assert not fresh.error, texts(fresh.error)


@pytest.mark.parametrize("name, problem", [("no such view", "no saved view is called 'no such view'"),
                                           ("../../etc/passwd", "not a plain name"),
                                           (".fusionlens", "not a plain name")])
def test_unknown_or_hostile_view_in_the_url_is_refused(monkeypatch, root, name, problem):
    ViewStore(root, PAGE_BY_KEY).save(SavedView.create("kept", "explorer", pages=PAGE_BY_KEY, exp="tiny"))
    at = open_app(monkeypatch, root, view=name)
    errors = texts(at.error)
    assert "Refused:" in errors and problem in errors and "Fix:" in errors
    assert [t.value for t in at.title] == ["Overview"]  # the app stays usable
    assert "view" not in at.query_params


def test_a_view_naming_options_that_are_gone_still_opens(monkeypatch, root):
    # a class, modality or method the run no longer has: the widgets drop it, the page works
    ViewStore(root, PAGE_BY_KEY).save(SavedView.create("stale", "explorer", pages=PAGE_BY_KEY, exp="tiny", filters={
        "ex_true": ["no such class"], "ex_correct": "Maybe", "ex_conf": [0.2, 0.4], "ex_dominant": ["smell"]}))
    at = open_app(monkeypatch, root, view="stale")
    assert [t.value for t in at.title] == ["Sample explorer"] and not at.error, texts(at.error)
    assert tuple(at.slider(key="ex_conf").value) == (0.2, 0.4)

def test_sidebar_overwrite_asks_first_then_open_and_delete(monkeypatch, root):
    at = open_app(monkeypatch, root, page="misclassifications", run=RUN)
    at.toggle(key="mis_norm").set_value(True).run()
    at.text_input(key="fl_view_name").input("cells").run()
    at.button(key="fl_view_save").click().run()
    assert ViewStore(root, PAGE_BY_KEY).get("cells").filters["mis_norm"] is True
    at.toggle(key="mis_norm").set_value(False).run()
    at.text_input(key="fl_view_name").input("cells").run()
    at.button(key="fl_view_save").click().run()
    assert "A view called **cells** exists" in texts(at.warning)
    assert ViewStore(root, PAGE_BY_KEY).get("cells").filters["mis_norm"] is True  # not yet
    at.button(key="fl_view_overwrite").click().run()
    assert ViewStore(root, PAGE_BY_KEY).get("cells").filters["mis_norm"] is False

    at.switch_page("views/1_overview.py").run()
    assert [t.value for t in at.title] == ["Overview"]
    at.button(key="fl_view_open_cells").click().run()
    assert not at.exception, texts(at.exception)
    assert [t.value for t in at.title] == ["Misclassifications"]
    assert at.toggle(key="mis_norm").value is False
    at.button(key="fl_view_delete_cells").click().run()
    assert "Deleted view **cells**" in texts(at.success)
    assert ViewStore(root, PAGE_BY_KEY).load() == {}


def test_a_damaged_views_file_is_reported_and_moved_aside_on_request(monkeypatch, root):
    store = ViewStore(root, PAGE_BY_KEY)
    store.folder.mkdir()
    store.path.write_text("[1, 2")
    at = open_app(monkeypatch, root)
    assert "Saved views cannot be read" in texts(at.error) and "not valid JSON" in texts(at.error)
    assert store.path.read_text() == "[1, 2"
    at.button(key="fl_view_move_aside").click().run()
    assert "moved to" in texts(at.warning)
    assert not store.path.exists() and len(list(store.folder.glob("views.json.damaged-*"))) == 1
    at.text_input(key="fl_view_name").input("fresh").run()
    at.button(key="fl_view_save").click().run()
    assert list(store.load()) == ["fresh"]



def present_css(at: AppTest) -> bool:
    return any('[data-testid="stSidebar"]' in str(h.proto.body) and "display: none" in str(h.proto.body)
               for h in at.get("html"))


def layout_font(at: AppTest) -> float:
    return json.loads(at.get("plotly_chart")[0].proto.spec)["layout"]["font"]["size"]


def test_presentation_steps_through_the_prepared_views(monkeypatch, root):
    store = ViewStore(root, PAGE_BY_KEY)
    store.save(SavedView.create("start", "misclassifications", pages=PAGE_BY_KEY, exp="tiny", run=RUN))
    store.save(SavedView.create("errors", "explorer", pages=PAGE_BY_KEY, exp="tiny", run=OTHER,
                                filters={"ex_correct": "Incorrect"}))
    store.save(SavedView.create("overview", "overview", pages=PAGE_BY_KEY, exp="tiny"))
    store.set_presentation(["start", "errors", "overview"])

    at = open_app(monkeypatch, root, page="misclassifications", run=RUN)
    assert not present_css(at)
    normal_font = layout_font(at)
    at.toggle(key="_fl_present_toggle").set_value(True).run()  # starts at the first view
    assert not at.exception, texts(at.exception)
    assert present_css(at) and param(at, "present") == "1"
    assert [t.value for t in at.title] == ["Misclassifications"]
    assert "**1 / 3** · start" in texts(at.markdown)
    assert at.button(key="fl_present_prev").disabled and not at.button(key="fl_present_next").disabled
    assert layout_font(at) == pytest.approx(normal_font * 1.35, abs=0.11)  # larger figures while presenting

    at.button(key="fl_present_next").click().run()
    assert [t.value for t in at.title] == ["Sample explorer"]
    assert "**2 / 3** · errors" in texts(at.markdown)
    assert at.segmented_control(key="ex_correct").value == "Incorrect"
    assert at.selectbox(key="fl_run").value == OTHER and param(at, "present") == "1" and present_css(at)
    at.button(key="fl_present_next").click().run()
    assert [t.value for t in at.title] == ["Overview"] and "**3 / 3** · overview" in texts(at.markdown)
    assert at.button(key="fl_present_next").disabled
    at.button(key="fl_present_prev").click().run()
    assert [t.value for t in at.title] == ["Sample explorer"] and "**2 / 3** · errors" in texts(at.markdown)

    at.button(key="fl_present_exit").click().run()
    assert not at.exception, texts(at.exception)
    assert not present_css(at) and "present" not in at.query_params
    assert [t.value for t in at.title] == ["Sample explorer"]
    assert all(b.key != "fl_present_next" for b in at.button)  # no presenter bar
    assert at.toggle(key="_fl_present_toggle").value is False


def test_present_link_without_a_prepared_presentation(monkeypatch, root):
    at = open_app(monkeypatch, root, page="misclassifications", run=RUN, present="1")
    assert present_css(at) and "No presentation prepared" in texts(at.caption)
    assert layout_font(at) == pytest.approx(15 * 1.35, abs=0.11)
    at.button(key="fl_present_exit").click().run()
    assert not present_css(at) and layout_font(at) == 15

"""Saved views and the presentation file (ui.saved_views): round trip, validation, hostile names, damaged
files that are never overwritten, atomic writes."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from core import catalog
from core.errors import ConfigError
from ui.context import PAGE_BY_KEY
from ui.saved_views import (
    FORMAT_VERSION,
    VIEWS_DIR,
    SavedView,
    ViewExists,
    ViewsDamaged,
    ViewStore,
    capture_filters,
    check_view_name,
    is_filter_key,
    view_link,
)

PAGES = tuple(PAGE_BY_KEY)  # the dashboard's page keys, as app.py gives them to the store


def store_at(root: Path) -> ViewStore:
    return ViewStore(root, PAGES)


def explorer_view(name: str = "wrong cats", **filters) -> SavedView:
    return SavedView.create(name, "explorer", pages=PAGES, exp="tiny", run="concat-image+title", sample="s7",
                            filters=filters or {"ex_true": ["cat"], "ex_conf": (0.2, 0.9), "ex_correct": "Incorrect"})


def test_round_trip_keeps_every_field(tmp_path):
    store = store_at(tmp_path)
    assert store.load() == {} and store.presentation() == []
    view = explorer_view()
    store.save(view)
    other = SavedView.create("overview", "overview", pages=PAGES)
    store.save(other)
    loaded = store_at(tmp_path).load()
    assert list(loaded) == ["wrong cats", "overview"]  # saving order
    assert loaded["wrong cats"] == view
    assert loaded["wrong cats"].filters == {"ex_true": ["cat"], "ex_conf": [0.2, 0.9], "ex_correct": "Incorrect"}
    assert loaded["wrong cats"].widget_values()["ex_conf"] == (0.2, 0.9)  # a range slider's value is a tuple
    assert view.query_params() == {"page": "explorer", "exp": "tiny", "run": "concat-image+title", "sample": "s7"}
    assert other.query_params() == {"page": "overview"}
    assert view.created_at.endswith("+00:00")
    data = json.loads(store.path.read_text())
    assert data["format"] == FORMAT_VERSION and store.path.parent.name == VIEWS_DIR


def test_saving_a_taken_name_needs_overwrite(tmp_path):
    store = store_at(tmp_path)
    store.save(explorer_view())
    with pytest.raises(ViewExists, match="saved already"):
        store.save(explorer_view(ex_search="dog"))
    assert store.get("wrong cats").filters["ex_true"] == ["cat"]
    store.save(explorer_view(ex_search="dog"), overwrite=True)
    assert store.get("wrong cats").filters == {"ex_search": "dog"}


def test_delete_also_leaves_the_presentation(tmp_path):
    store = store_at(tmp_path)
    for name in ("a", "b", "c"):
        store.save(explorer_view(name))
    store.set_presentation(["c", "a", "b"])
    assert store.presentation() == ["c", "a", "b"]
    store.delete("a")
    assert list(store.load()) == ["b", "c"] and store.presentation() == ["c", "b"]
    with pytest.raises(ConfigError, match="no saved view"):
        store.delete("a")
    with pytest.raises(ConfigError, match="not saved"):
        store.set_presentation(["b", "zzz"])
    with pytest.raises(ConfigError, match="twice"):
        store.set_presentation(["b", "b"])
    assert store.presentation() == ["c", "b"]


@pytest.mark.parametrize("name", ["../x", "..", ".hidden", "a/b", "a\\b", "x\x00y", "", "   ", "a" * 81,
                                  "<script>", "new\nline", "[link](javascript:alert(1))", "/etc/passwd", 7])
def test_hostile_names_are_refused(tmp_path, name):
    with pytest.raises(ConfigError) as info:
        check_view_name(name)
    assert info.value.fix
    store = store_at(tmp_path)
    with pytest.raises(ConfigError):
        store.get(name)
    with pytest.raises(ConfigError):
        SavedView.create(name, "explorer", pages=PAGES)
    assert not (tmp_path / VIEWS_DIR).exists()


def test_plain_names_pass():
    for name in ("wrong cats", "Sponsor-demo_2", "v1.2", "Ünïcode"):
        assert check_view_name(f"  {name} ") == name


def test_unknown_view_says_which_are_there(tmp_path):
    store = store_at(tmp_path)
    with pytest.raises(ConfigError, match="save a view first"):
        store.get("nothing")
    store.save(explorer_view("wrong cats"))
    with pytest.raises(ConfigError, match="did you mean 'wrong cats'"):
        store.get("wrong cat")


def test_filters_only_whitelisted_plain_values():
    assert is_filter_key("explorer", "ex_true") and not is_filter_key("explorer", "fl_ctx")
    assert not is_filter_key("overview", "ex_true")  # another page's widget
    assert is_filter_key("embeddings", "emb_colored_label") and not is_filter_key("embeddings", "emb_colored_")
    assert not is_filter_key("embeddings", "emb_colored_a-b")
    state = {"ex_true": ["cat"], "ex_conf": (0.0, 0.5), "fl_ctx": object(), "_fl_url_written": {"a": 1},
             "ex_search": object(), "mis_norm": True, "ex_dominant": [float("nan")]}
    assert capture_filters("explorer", state) == {"ex_true": ["cat"], "ex_conf": [0.0, 0.5]}
    assert capture_filters("misclassifications", {"mis_norm": "yes", "mis_true": "cat"}) == {"mis_true": "cat"}
    assert capture_filters("slices", {"sl_conditions": 2, "sl_alpha": 0.05, "sl_min_size": 5, "sl_pick": 1}) == \
        {"sl_conditions": 2, "sl_alpha": 0.05}  # a bounded number input is not kept
    with pytest.raises(ConfigError, match="not a list of texts"):
        SavedView.create("x", "explorer", pages=PAGES, filters={"ex_true": [{"nested": 1}]})


@pytest.mark.parametrize("page, filters, problem", [
    ("explorer", {"ex_conf": [0.5, 2.0]}, "pair \\[low, high\\] within 0-1"),
    ("explorer", {"ex_conf": [0.8, 0.2]}, "pair"),
    ("explorer", {"ex_conf": [0.1, float("nan")]}, "pair"),
    ("explorer", {"ex_search": 5}, "not a text"),
    ("explorer", {"ex_true": "cat"}, "not a list of texts"),
    ("misclassifications", {"mis_norm": "x"}, "not true or false"),
    ("explorer", {"ex_search": "x" * 501}, "not a text"),
    ("slices", {"sl_conditions": 1.5}, "not a whole number"),
    ("slices", {"sl_conditions": 10**400}, "not a whole number"),
    ("slices", {"sl_alpha": float("inf")}, "not a number"),
    ("slices", {"sl_alpha": True}, "not a number"),
])
def test_a_filter_value_of_the_wrong_kind_is_refused(page, filters, problem):
    # such a value would make the widget fail when the view is opened
    with pytest.raises(ConfigError, match=problem):
        SavedView.create("x", page, pages=PAGES, filters=filters)


def test_unknown_filter_keys_in_the_file_never_come_back(tmp_path):
    store = store_at(tmp_path)
    store.save(explorer_view())
    data = json.loads(store.path.read_text())
    data["views"][0]["filters"].update({"fl_ctx": "evil", "_fl_url_written": {}, "mis_norm": True})
    store.path.write_text(json.dumps(data))
    assert store.get("wrong cats").filters == {"ex_true": ["cat"], "ex_conf": [0.2, 0.9], "ex_correct": "Incorrect"}


def _damage(store: ViewStore, mutate) -> None:
    data = json.loads(store.path.read_text())
    mutate(data)
    store.path.write_text(json.dumps(data))


@pytest.mark.parametrize("mutate, problem", [
    (lambda d: d["views"][0].update(page="admin"), "unknown page"),
    (lambda d: d["views"][0].update(run="../../etc"), "not a plain name"),
    (lambda d: d["views"][0].update(name="../up"), "not a plain name"),
    (lambda d: d["views"].append(dict(d["views"][0])), "appears twice"),
    (lambda d: d["views"][0]["filters"].update(ex_true={"a": 1}), "not a list of texts"),
    (lambda d: d.update(format=99), "format 99"),
    (lambda d: d.pop("views"), "list \"views\""),
])
def test_damaged_views_file_is_reported_and_never_overwritten(tmp_path, mutate, problem):
    store = store_at(tmp_path)
    store.save(explorer_view())
    _damage(store, mutate)
    before = store.path.read_bytes()
    with pytest.raises(ViewsDamaged, match=problem) as info:
        store.load()
    assert "move it aside" in info.value.fix and info.value.path == store.path
    for write in (lambda: store.save(explorer_view("new")), lambda: store.delete("wrong cats"),
                  lambda: store.set_presentation([])):
        with pytest.raises(ViewsDamaged):
            write()
    assert store.path.read_bytes() == before
    moved = store.move_aside(store.path)
    assert moved.name.startswith("views.json.damaged-") and moved.read_bytes() == before
    assert store.load() == {}
    store.save(explorer_view("new"))
    assert list(store.load()) == ["new"]


def test_not_json_and_damaged_presentation(tmp_path):
    store = store_at(tmp_path)
    store.folder.mkdir()
    store.path.write_text("{not json")
    with pytest.raises(ViewsDamaged, match="not valid JSON"):
        store.load()
    store.move_aside(store.path)
    store.save(explorer_view())
    store.presentation_path.write_text(json.dumps({"format": 1, "views": ["../x"]}))
    with pytest.raises(ViewsDamaged, match="presentation"):
        store.presentation()
    with pytest.raises(ViewsDamaged):
        store.set_presentation(["wrong cats"])
    assert json.loads(store.presentation_path.read_text())["views"] == ["../x"]
    with pytest.raises(ConfigError, match="not a file of the saved views"):
        store.move_aside(tmp_path / "elsewhere.json")


def test_a_linked_views_folder_is_refused(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    root = tmp_path / "runs"
    root.mkdir()
    (root / VIEWS_DIR).symlink_to(outside, target_is_directory=True)
    store = store_at(root)
    with pytest.raises(ViewsDamaged, match="is a link"):
        store.save(explorer_view())
    with pytest.raises(ViewsDamaged, match="is a link"):
        store.load()
    assert list(outside.iterdir()) == []


def test_a_failed_write_leaves_the_old_file(tmp_path, monkeypatch):
    store = store_at(tmp_path)
    store.save(explorer_view())
    before = store.path.read_bytes()

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("core.io.os.replace", broken_replace)
    with pytest.raises(OSError):
        store.save(explorer_view("second"))
    monkeypatch.undo()
    assert store.path.read_bytes() == before
    assert [p.name for p in store.folder.iterdir() if p.name.endswith(".tmp")] == []
    assert list(store.load()) == ["wrong cats"]


def test_the_views_folder_is_not_an_experiment(tmp_path):
    store = store_at(tmp_path)
    store.save(explorer_view())
    (tmp_path / VIEWS_DIR / "dataset.json").write_text("{}")  # even one that looks like an experiment
    assert catalog.list_experiments(tmp_path) == []


def test_view_links():
    assert view_link("wrong cats") == "?view=wrong%20cats"
    assert view_link("a", "http://host:8501/") == "http://host:8501/?view=a"

"""Figure builders (ui.figures): demo conventions (titled axes, class names, modality colours), and the
tables the pages format (ui.tables) over core's per-class share table."""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from core.errors import ConfigError, DataError
from core.explain import class_share_table
from ui import figures as F
from ui import tables as T
from tests._tolerance import f64_atol

CLASSES = ["Bucket-Worker", "Cabin-Worker", "Safe action"]
MODS = ["rgb", "depth"]


def _axis_titles(fig: go.Figure) -> tuple[str, str]:
    return fig.layout.xaxis.title.text, fig.layout.yaxis.title.text


def _assert_titled(fig: go.Figure) -> None:
    assert isinstance(fig, go.Figure)
    x, y = _axis_titles(fig)
    assert x and y, f"untitled axis: x={x!r} y={y!r}"
    assert fig.layout.font.size >= 14


@pytest.fixture
def results_df() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "run": ["concat_rgb+depth", "multconcat_rgb+depth", "unimodal_rgb"],
            "encoders": ["tiny_cnn", "tiny_cnn", "tiny_cnn"],
            "fusion": ["concat", "multconcat", "none"],
            "strategy": ["intermediate", "intermediate", "unimodal"],
            "modalities": ["rgb,depth", "rgb,depth", "rgb"],
            "top1": [0.80, 0.893, 0.86],
            "top3": [0.95, 0.99, 0.97],
            "top5": [1.0, 1.0, 1.0],
            "macro_f1": [0.78, 0.88, 0.84],
            "n_params": [120_000, 150_000, 60_000],
            "inference_ms": [1.5, 1.8, 0.9],
        }
    )


@pytest.fixture
def samples_df() -> pd.DataFrame:
    # hand-made: means below are computed by hand in test_per_class_share_table_is_cores_and_the_page_lays_it_out
    return pd.DataFrame(
        {
            "id": ["a", "b", "c", "d", "e", "f"],
            "label": ["Bucket-Worker", "Bucket-Worker", "Bucket-Worker", "Cabin-Worker", "Cabin-Worker", "Safe action"],
            "pred": ["Bucket-Worker", "Bucket-Worker", "Cabin-Worker", "Cabin-Worker", "Cabin-Worker", "Safe action"],
            "correct": [True, True, False, True, True, True],
            "share_rgb": [0.6, 0.4, 0.8, 0.5, 0.7, 0.55],
            "share_depth": [0.4, 0.6, 0.2, 0.5, 0.3, 0.45],
        }
    )


CONFUSION = np.array([[5, 2, 1], [0, 7, 3], [0, 0, 9]])


# --------------------------------------------------------------------------- colours


def test_modality_colours_are_fixed_and_distinct():
    assert F.modality_color("image", ["image", "title", "description"]) == F.MODALITY_COLORS["image"]
    assert F.modality_color("rgb", ["rgb", "depth"]) == F.MODALITY_COLORS["image"]  # primary visual = same blue
    assert F.modality_color("depth", ["rgb", "depth"]) != F.modality_color("rgb", ["rgb", "depth"])
    colors = F.modality_colors(["image", "title", "description", "mystery", "other"])
    assert len(set(colors.values())) == 5
    # stable: same answer every call, and without the list for known names
    assert F.modality_colors(["rgb", "weird"]) == F.modality_colors(["rgb", "weird"])
    assert F.modality_color("depth") == F.MODALITY_COLORS["depth"]
    # two known names with the same colour in one run still get distinct colours
    both = F.modality_colors(["image", "rgb"])
    assert both["image"] != both["rgb"]


def test_modality_colour_consistent_between_builders(samples_df):
    table = class_share_table(samples_df, MODS, overall=False)
    bars = F.make_modality_share_bar_figure(table, MODS)
    boxes = F.make_share_distribution_figure(samples_df, MODS)
    civ = F.make_share_correct_vs_incorrect_figure(samples_df, MODS)
    for fig in (bars, boxes, civ):
        by_name = {t.name: t.marker.color for t in fig.data}
        assert by_name == {"RGB": F.modality_color("rgb", MODS), "Depth": F.modality_color("depth", MODS)}


# --------------------------------------------------------------------------- results


def test_results_bar_figure(results_df):
    fig = F.make_results_bar_figure(results_df)
    _assert_titled(fig)
    assert [t.name for t in fig.data] == ["Top-1 accuracy", "Top-3 accuracy", "Top-5 accuracy"]
    assert all(isinstance(t, go.Bar) for t in fig.data)
    assert list(fig.data[0].x) == list(results_df["run"])
    assert fig.layout.barmode == "group"
    assert F.make_results_bar_figure(results_df.iloc[:0]).layout.annotations  # empty state explains


def test_per_class_heatmap_figure():
    metrics = {
        "run_a": {"per_class": {c: {"recall": r, "precision": 0.5} for c, r in zip(CLASSES, (0.9, 0.5, 1.0))}},
        "run_b": {"per_class": {c: {"recall": r} for c, r in zip(CLASSES, (0.7, 0.6, 0.8))}},
    }
    table = T.per_class_recall_table(metrics)
    assert list(table.index) == ["run_a", "run_b"] and list(table.columns) == CLASSES
    assert table.loc["run_b", "Cabin-Worker"] == 0.6
    fig = F.make_per_class_heatmap_figure(table)
    _assert_titled(fig)
    assert list(fig.data[0].x) == CLASSES and list(fig.data[0].y) == ["run_a", "run_b"]
    assert fig.data[0].colorbar.title.text == "Recall"


def test_best_rows_and_latex(results_df):
    best = T.best_rows(results_df)
    assert best["top1"] == [1] and best["top5"] == [0, 1, 2]
    assert best["n_params"] == [2]  # lower is better for cost
    assert "inference_ms" not in best  # a timing is indicative: never crowned
    tex = T.results_latex(results_df)
    assert tex.startswith(r"\begin{tabular}") and r"\toprule" in tex and r"\bottomrule" in tex
    assert r"\textbf{0.893}" in tex and "0.800" in tex and r"\textbf{0.800}" not in tex
    assert r"concat\_rgb+depth" in tex  # underscores escaped
    assert r"\textbf{0.06}" in tex  # 60k params = 0.06 M, the fewest
    assert tex.count(r"\\") == len(results_df) + 1
    wrapped = T.results_latex(results_df, caption="Results & more", label="tab:res")
    assert r"\caption{Results \& more}" in wrapped and r"\label{tab:res}" in wrapped


def test_trivial_topk_columns_are_not_crowned(results_df):
    assert T.trivial_topk(3) == ["top3", "top5"] and T.trivial_topk(5) == ["top5"] and T.trivial_topk(6) == []
    assert T.trivial_topk(None) == []
    best = T.best_rows(results_df, n_classes=3)
    assert "top3" not in best and "top5" not in best and best["top1"] == [1]
    assert set(T.best_rows(results_df, n_classes=4)) >= {"top3"} and "top5" not in T.best_rows(results_df, n_classes=5)
    assert "top5" in T.best_rows(results_df, n_classes=6)
    tex = T.results_latex(results_df, n_classes=3)
    assert r"\textbf{0.990}" not in tex and r"\textbf{1.000}" not in tex and r"\textbf{0.893}" in tex
    assert r"\textbf{0.990}" in T.results_latex(results_df, n_classes=10)


# --------------------------------------------------------------------------- many classes (2 to 200)


def _many(n: int, seed: int = 0) -> tuple[list[str], np.ndarray]:
    rng = np.random.default_rng(seed)
    names = [f"class {i:03d} " + "x" * (i % 7) for i in range(n)]
    matrix = rng.integers(0, 3, size=(n, n)) * (rng.random((n, n)) < 0.05)
    np.fill_diagonal(matrix, rng.integers(5, 20, size=n))
    return names, matrix


def _ticks(axis) -> list[str]:
    return list(axis.tickvals) if axis.tickmode == "array" else []


@pytest.mark.parametrize("n", [2, 12, 82, 200])
def test_confusion_figure_names_every_class_and_grows(n):
    names, matrix = _many(n)
    fig = F.make_confusion_figure(names, matrix, hide_diagonal=n > 20)
    _assert_titled(fig)
    assert _ticks(fig.layout.xaxis) == names and _ticks(fig.layout.yaxis) == names  # every label, no skipping
    assert len(fig.layout.xaxis.ticktext) == n and fig.layout.xaxis.tickfont.size >= F.MIN_CLASS_FONT_SIZE
    # rows are at least one readable line of text apart
    plot_height = fig.layout.height - fig.layout.margin.t - fig.layout.margin.b
    assert plot_height / n >= fig.layout.yaxis.tickfont.size + 4
    if n >= 82:  # wider than a page: an explicit width (the page scrolls it), columns as far apart as rows
        plot_width = fig.layout.width - fig.layout.margin.l - fig.layout.margin.r
        assert plot_width / n >= fig.layout.xaxis.tickfont.size + 4
        assert fig.layout.xaxis.side == "top"  # the predicted classes are named where the view starts
    assert "%{customdata[0]}" in fig.data[0].hovertemplate  # hover gives the full names


def test_confusion_figure_heights_grow_with_classes():
    heights = [F.make_confusion_figure(*_many(n)).layout.height for n in (2, 12, 40, 82, 200)]
    assert heights == sorted(heights) and heights[-1] > 3 * heights[2]


def test_confusion_figure_of_some_classes_keeps_row_totals():
    names, matrix = _many(82)
    top = T.top_error_classes(names, matrix, top=10)
    errors = matrix.copy()
    np.fill_diagonal(errors, 0)
    involved = errors.sum(axis=0) + errors.sum(axis=1)
    assert involved[names.index(top[0])] == involved.max() and len(top) == 10
    fig = F.make_confusion_figure(names, matrix, classes=top)
    heat = fig.data[0]
    kept = [n for n in names if n in set(top)]  # the run's class order
    assert list(heat.y) == kept and list(heat.x) == [*kept, F.OTHER_CLASSES]
    counts = np.asarray(heat.z, dtype=float)
    np.testing.assert_array_equal(counts.sum(axis=1), matrix[[names.index(c) for c in kept]].sum(axis=1))
    normalized = np.asarray(F.make_confusion_figure(names, matrix, normalize=True, classes=top).data[0].z, dtype=float)
    np.testing.assert_allclose(normalized.sum(axis=1), 1.0, rtol=0, atol=f64_atol(1.0, normalized.shape[1]))
    assert "selected classes" in F.make_confusion_figure(names, matrix, classes=["nope"]).layout.annotations[0].text


@pytest.mark.parametrize("n", [2, 82, 200])
def test_precision_recall_figure_names_every_class(n):
    names, _ = _many(n)
    per_class = {c: {"precision": (i % 10) / 10, "recall": 0.5, "f1": (i % 7) / 7, "support": 3} for i, c in enumerate(names)}
    fig = F.make_precision_recall_figure(per_class)
    _assert_titled(fig)
    axis = fig.layout.yaxis if n > 12 else fig.layout.xaxis  # one row per class when there are many
    assert _ticks(axis) == names and axis.tickfont.size >= F.MIN_CLASS_FONT_SIZE
    if n > 12:
        assert fig.data[0].orientation == "h" and (fig.layout.height - 150) / n >= 18
    worst = T.lowest_classes(per_class, "f1", top=5)
    assert [per_class[c]["f1"] for c in worst] == sorted(per_class[c]["f1"] for c in per_class)[:5]
    sub = F.make_precision_recall_figure(per_class, classes=worst[::-1])
    assert list(sub.data[0].x if sub.data[0].orientation != "h" else sub.data[0].y) == worst[::-1]


@pytest.mark.parametrize("n", [3, 82, 200])
def test_per_class_heatmap_names_every_class(n):
    names, _ = _many(n)
    runs = [f"run-{r}" for r in range(6)]
    rng = np.random.default_rng(1)
    table = pd.DataFrame(rng.random((len(runs), n)), index=runs, columns=names)
    fig = F.make_per_class_heatmap_figure(table)
    _assert_titled(fig)
    if n > 12:  # one row per class: the class axis grows downwards, every class named
        assert _ticks(fig.layout.yaxis) == names and list(fig.data[0].y) == names
        assert fig.layout.yaxis.title.text == "Class" and fig.layout.yaxis.tickfont.size >= F.MIN_CLASS_FONT_SIZE
        assert (fig.layout.height - fig.layout.margin.t - fig.layout.margin.b) / n >= 16
        np.testing.assert_array_equal(np.asarray(fig.data[0].z, dtype=float), table.to_numpy().T)  # copied
    else:
        assert _ticks(fig.layout.xaxis) == names
    some = F.make_per_class_heatmap_figure(table, classes=names[:2][::-1])
    assert list(some.data[0].x) == names[:2][::-1]


@pytest.mark.parametrize("n", [5, 82, 200])
def test_embedding_legend_stays_readable_with_many_classes(n):
    names, _ = _many(n)
    rng = np.random.default_rng(2)
    labels = rng.choice(names, size=max(400, 3 * n)).tolist()
    labels[: len(names)] = names  # every class present
    coords = pd.DataFrame({"id": [f"s{i}" for i in range(len(labels))], "x": rng.normal(size=len(labels)),
                           "y": rng.normal(size=len(labels)), "label": labels})
    fig = F.make_embedding_figure(coords, "label", ["label"], "t", category_order=names)
    legend = [t for t in fig.data if t.showlegend is not False]
    assert fig.layout.showlegend is not False and 0 < len(legend) <= 20
    assert sum(len(t.customdata) for t in fig.data) == len(coords)  # every point drawn once
    colours = [t.marker.color for t in legend if not t.name.startswith("Other")]
    assert len(set(colours)) == len(colours)  # the coloured classes are told apart
    if n > 20:
        other = next(t for t in fig.data if t.name.startswith("Other"))
        assert other.name == f"Other ({n - 19} classes)"
        counts = pd.Series(labels).value_counts()
        assert {t.name for t in legend} - {other.name} == set(
            sorted(names, key=lambda c: (-counts[c], names.index(c)))[:19])
        assert all("True class" in t for t in other.text)  # hover still names the class
        picked = F.make_embedding_figure(coords, "label", ["label"], "t", category_order=names, colored=names[:3])
        assert [t.name for t in picked.data][1:] == names[:3]
    else:
        assert [t.name for t in legend] == names


def test_split_counts_figure_with_many_classes():
    names, _ = _many(82)
    counts = pd.DataFrame({"train": 5, "val": 1, "test": 2}, index=names)
    fig = F.make_split_counts_figure(counts)
    _assert_titled(fig)
    assert _ticks(fig.layout.yaxis) == names and fig.data[0].orientation == "h"
    assert fig.layout.height >= 82 * 18


# --------------------------------------------------------------------------- misclassifications


@pytest.mark.parametrize("normalize", [False, True])
def test_confusion_figure(normalize):
    fig = F.make_confusion_figure(CLASSES, CONFUSION, normalize=normalize)
    _assert_titled(fig)
    assert _axis_titles(fig) == ("Predicted class", "True class")
    heat = fig.data[0]
    assert list(heat.x) == CLASSES and list(heat.y) == CLASSES
    # cell (row 0 = Bucket-Worker true, col 1 = Cabin-Worker predicted)
    true, pred, count, share = heat.customdata[0][1]
    assert (true, pred, count) == ("Bucket-Worker", "Cabin-Worker", 2)
    assert share == pytest.approx(2 / 8, abs=f64_atol(1.0, CONFUSION.shape[1]))
    assert "True" in heat.hovertemplate and "Predicted" in heat.hovertemplate and "Count" in heat.hovertemplate
    z = np.asarray(heat.z, dtype=float)
    if normalize:
        np.testing.assert_allclose(z.sum(axis=1), 1.0, rtol=0, atol=f64_atol(1.0, z.shape[1]))
    else:
        np.testing.assert_array_equal(z, CONFUSION)


def test_confusion_figure_rejects_bad_shape():
    with pytest.raises(DataError, match="shape"):
        F.make_confusion_figure(CLASSES, np.zeros((2, 2)))


def test_confused_pairs():
    table = T.confused_pairs_table(CLASSES, CONFUSION, top=2)
    assert list(table.itertuples(index=False, name=None)) == [
        ("Cabin-Worker", "Safe action", 3, 0.3),
        ("Bucket-Worker", "Cabin-Worker", 2, 0.25),
    ]
    fig = F.make_confused_pairs_figure(CLASSES, CONFUSION, top=10)
    _assert_titled(fig)
    assert fig.data[0].y[-1] == "Cabin-Worker → Safe action"  # largest on top
    assert list(fig.data[0].customdata[-1][:2]) == ["Cabin-Worker", "Safe action"]
    empty = F.make_confused_pairs_figure(CLASSES, np.diag([3, 4, 5]))
    assert "No misclassifications" in empty.layout.annotations[0].text


def test_precision_recall_figure():
    per_class = {c: {"precision": 0.5 + i / 10, "recall": 0.9 - i / 10, "f1": 0.7, "support": 10 + i} for i, c in enumerate(CLASSES)}
    fig = F.make_precision_recall_figure(per_class)
    _assert_titled(fig)
    assert [t.name for t in fig.data] == ["Precision", "Recall", "F1"]
    assert list(fig.data[0].x) == CLASSES
    assert fig.data[1].y[2] == pytest.approx(0.7, abs=f64_atol(1.0, 2))      # 0.9 - 2 / 10


# --------------------------------------------------------------------------- modality shares


def test_per_class_share_table_is_cores_and_the_page_lays_it_out(samples_df):
    # the one per-class share table (core.explain, also the CLI's explain-table), in the page's class order
    table = class_share_table(samples_df, MODS, classes=CLASSES, overall=False)
    assert list(table.columns) == ["class", "n_all", "n_correct", "n_incorrect", "share_rgb_all", "share_rgb_correct",
                                   "share_rgb_incorrect", "share_depth_all", "share_depth_correct",
                                   "share_depth_incorrect", "n_flat",
                                   *(f"share_{m}_{s}_{b}" for m in MODS for s in ("all", "correct", "incorrect")
                                     for b in ("low", "high"))]
    assert table["class"].tolist() == CLASSES
    row = table.set_index("class")
    tol = f64_atol(1.0, len(samples_df))     # float64 means of shares in [0, 1]
    # Bucket-Worker: rgb 0.6, 0.4 (correct) and 0.8 (incorrect)
    assert row.loc["Bucket-Worker", "share_rgb_all"] == pytest.approx((0.6 + 0.4 + 0.8) / 3, abs=tol)
    assert row.loc["Bucket-Worker", "share_rgb_correct"] == pytest.approx(0.5, abs=tol)
    assert row.loc["Bucket-Worker", "share_depth_incorrect"] == pytest.approx(0.2, abs=tol)
    assert row.loc["Bucket-Worker", "n_all"] == 3
    assert row.loc["Bucket-Worker", "n_incorrect"] == 1
    # the 95 % Student-t interval of a mean: 0.6, 0.4, 0.8 -> sd 0.2, t(0.975, 2) = 4.303, clipped to [0, 1]
    from scipy.stats import t

    half = float(t.ppf(0.975, 2)) * 0.2 / np.sqrt(3)
    assert row.loc["Bucket-Worker", "share_rgb_all_low"] == pytest.approx(0.6 - half, abs=tol)
    assert row.loc["Bucket-Worker", "share_rgb_all_high"] == 1.0  # 0.6 + 0.497 clipped: a share lies in [0, 1]
    assert np.isnan(row.loc["Bucket-Worker", "share_rgb_incorrect_low"])  # one sample: no interval
    assert row.loc["Cabin-Worker", "share_depth_correct"] == pytest.approx(0.4, abs=tol)
    # no incorrect Safe action: n = 0 and NaN, shown as "/" in the reference
    assert row.loc["Safe action", "n_incorrect"] == 0
    assert np.isnan(row.loc["Safe action", "share_rgb_incorrect"])
    # a class asked for that has no explained sample: a row of counts 0 and NaN shares
    more = class_share_table(samples_df, MODS, classes=["Empty", *CLASSES], overall=False).set_index("class")
    assert list(more.index) == ["Empty", *CLASSES] and more.loc["Empty", "n_all"] == 0
    assert np.isnan(more.loc["Empty", "share_depth_all"])

    wide = T.share_table_display(table, MODS)
    assert list(wide.index) == CLASSES
    assert wide.loc["Bucket-Worker", ("Correct", "RGB")] == "50.0% [0%, 100%]"  # two samples: a wide interval
    assert wide.loc["Bucket-Worker", ("Incorrect", "RGB")] == "80.0%"  # one sample: no interval
    assert wide.loc["Cabin-Worker", ("All", "n")] == 2
    assert wide.loc["Safe action", ("Incorrect", "Depth")] == "/"
    assert wide.columns[0] == ("All", "n")

    # 'correct' is derived from label/pred when absent
    derived = class_share_table(samples_df.drop(columns="correct"), MODS, classes=CLASSES, overall=False)
    pd.testing.assert_frame_equal(derived, table, check_exact=True)   # the same means of the same rows
    with pytest.raises(ConfigError, match="audio"):
        class_share_table(samples_df, ["rgb", "audio"])


def test_modality_share_bar_figure(samples_df):
    table = class_share_table(samples_df, MODS, overall=False)
    fig = F.make_modality_share_bar_figure(table, MODS)
    _assert_titled(fig)
    assert fig.layout.barmode == "stack"
    classes_on_x = set(fig.data[0].x[0])  # multicategory: (class, subset)
    assert classes_on_x == set(CLASSES)
    assert "Incorrect" in set(fig.data[0].x[1])
    one = F.make_modality_share_bar_figure(table, MODS, subsets=("all",))
    assert list(one.data[0].x) == CLASSES
    np.testing.assert_allclose(np.asarray(one.data[0].y) + np.asarray(one.data[1].y), 1.0, rtol=0,
                               atol=f64_atol(1.0, len(samples_df)))
    assert F.make_modality_share_bar_figure(table.iloc[:0], MODS).layout.annotations
    picked = F.make_modality_share_bar_figure(table, MODS, subsets=("incorrect", "all"))  # the order picked
    assert list(picked.data[0].x[0])[:3] == ["Bucket-Worker", "Bucket-Worker", "Cabin-Worker"]
    assert list(picked.data[0].x[1])[:3] == ["Incorrect", "All", "All"]  # Cabin-Worker has no incorrect one


@pytest.mark.parametrize("kind", ["box", "violin"])
def test_share_distribution_figure(samples_df, kind):
    fig = F.make_share_distribution_figure(samples_df, MODS, kind=kind)
    _assert_titled(fig)
    assert set(fig.data[0].x) == set(CLASSES)
    assert list(fig.data[0].customdata) == list(samples_df["id"])


def test_share_correct_vs_incorrect_figure(samples_df):
    fig = F.make_share_correct_vs_incorrect_figure(samples_df, MODS)
    _assert_titled(fig)
    assert set(fig.data[0].x) == {"Correct predictions", "Incorrect predictions"}
    assert "(n=1)" in fig.layout.xaxis.ticktext[1]



# --------------------------------------------------------------------------- both meanings, interactions


@pytest.fixture
def game_df(samples_df) -> pd.DataFrame:
    """samples_df with the modality game's columns; sample f barely depends on its inputs."""
    return samples_df.assign(
        exact_share_rgb=[0.9, 0.5, 0.7, 0.6, 0.8, 0.5], exact_share_depth=[0.1, 0.5, 0.3, 0.4, 0.2, 0.5],
        interaction_rgb__depth=[0.02, 0.04, -0.1, 0.05, 0.07, 0.3],
        flat=[False, False, False, False, False, True], output_kind="pred_prob")


def test_flat_predictions_are_left_out_of_the_share_figures(game_df):
    boxes = F.make_share_distribution_figure(game_df, MODS)
    assert "f" not in list(boxes.data[0].customdata) and len(boxes.data[0].customdata) == 5
    civ = F.make_share_correct_vs_incorrect_figure(game_df, MODS)
    assert "(n=4)" in civ.layout.xaxis.ticktext[0]          # 5 correct, one of them flat


def test_share_meanings_figure(game_df):
    fig = F.make_share_meanings_figure(game_df, MODS)
    _assert_titled(fig)
    assert [t.name for t in fig.data if t.showlegend] == ["MM-SHAP share", "Exact modality share"]   # grey keys
    tol = f64_atol(1.0, len(game_df))
    assert fig.data[0].y[0] == pytest.approx(np.mean([0.6, 0.4, 0.8, 0.5, 0.7]), abs=tol)   # rgb, f left out
    assert fig.data[1].y[1] == pytest.approx(np.mean([0.1, 0.5, 0.3, 0.4, 0.2]), abs=tol)   # exact depth
    assert list(fig.data[1].marker.color) == [F.modality_color(m, MODS) for m in MODS]
    assert fig.data[1].marker.pattern.shape == "/" and not fig.data[0].marker.pattern.shape
    all_flat = F.make_share_meanings_figure(game_df.assign(flat=True), MODS)
    assert "barely depends" in all_flat.layout.annotations[0].text
    one = F.make_sample_share_meanings_figure({"rgb": 0.7, "depth": 0.3}, None, MODS)
    assert "Modality shares" in one.layout.title.text
    exact_bars = next(t for t in one.data if t.name == "Exact modality share" and not t.showlegend)
    assert list(exact_bars.text) == ["n/a", "n/a"]


def test_interaction_figure_and_table(game_df):
    from core.explain import class_interaction_table

    table = class_interaction_table(game_df, MODS, classes=CLASSES, overall=False)
    fig = F.make_interaction_figure(table, MODS)
    assert fig.layout.xaxis.title.text == "Class" and "Mean interaction (probability)" == fig.layout.yaxis.title.text
    assert [t.name for t in fig.data] == ["All", "Correct", "Incorrect"]
    assert [t.marker.color for t in fig.data] == [F.SUBSET_COLORS[s] for s in ("all", "correct", "incorrect")]
    tol = f64_atol(1.0, len(game_df))
    correct = fig.data[1]
    i = list(correct.x).index("Bucket-Worker")
    assert correct.y[i] == pytest.approx(0.03, abs=tol)
    low = table.set_index("class").loc["Bucket-Worker", "interaction_rgb__depth_correct_low"]
    assert correct.error_y.arrayminus[i] == pytest.approx(0.03 - low, abs=tol)
    assert "Safe action" not in list(fig.data[0].x)          # its only sample is flat: no interaction
    rows = F.interaction_rows(table, MODS)
    assert set(rows["subset"]) == {"all", "correct", "incorrect"} and rows["pair"].iloc[0] == ("rgb", "depth")
    wide = T.interaction_table_display(table, MODS)
    assert wide.loc["Bucket-Worker", ("Incorrect", "RGB \u00d7 Depth")] == "-0.100 (1)"    # one sample: no interval
    assert wide.loc["Safe action", ("All", "RGB \u00d7 Depth")] == "/"
    assert wide.loc["Bucket-Worker", ("Correct", "RGB \u00d7 Depth")].startswith("+0.030 [")
    # empty states say what is missing
    assert F.make_interaction_figure(table, ["rgb"]).layout.annotations
    assert F.make_interaction_figure(table.iloc[:0], MODS).layout.annotations
    none = class_interaction_table(game_df.assign(interaction_rgb__depth=np.nan), MODS, overall=False)
    assert "No interaction computed" in F.make_interaction_figure(none, MODS).layout.annotations[0].text
    assert F.output_unit("logit") == "logit" and F.output_unit("pred_prob") == "probability"

# --------------------------------------------------------------------------- embeddings & samples


@pytest.fixture
def coords_df(samples_df) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return samples_df.assign(x=rng.normal(size=len(samples_df)), y=rng.normal(size=len(samples_df)))


def test_embedding_figure_by_class(coords_df):
    fig = F.make_embedding_figure(coords_df, "label", ["label", "pred", "share_rgb"], "Fused, t-SNE", axis_label="t-SNE")
    _assert_titled(fig)
    assert _axis_titles(fig) == ("t-SNE 1", "t-SNE 2")
    assert all(isinstance(t, go.Scattergl) for t in fig.data)
    assert [t.name for t in fig.data] == CLASSES
    ids = [i for t in fig.data for i in t.customdata]
    assert sorted(ids) == sorted(coords_df["id"])
    assert all("<b>" in s for s in fig.data[0].text)  # hovering names the sample
    assert fig.data[0].text[0].startswith("<b>a</b>")
    assert fig.layout.dragmode == "lasso"


def test_embedding_figure_by_correctness_and_share(coords_df):
    fig = F.make_embedding_figure(coords_df, "correct", [], "Correctness")
    assert [t.name for t in fig.data] == ["Correct", "Incorrect"]
    assert list(fig.data[1].customdata) == ["c"]
    cont = F.make_embedding_figure(coords_df, "share_rgb", [], "RGB share", highlight_id="d")
    assert isinstance(cont.data[0], go.Scattergl)
    assert list(cont.data[0].customdata) == list(coords_df["id"])
    assert cont.data[0].marker.colorbar.title.text == "RGB share"
    assert list(cont.data[-1].customdata) == ["d"]  # highlighted sample ring


def test_embedding_figure_escapes_hover(coords_df):
    evil = coords_df.assign(id=["<script>x</script>"] + list(coords_df["id"][1:]))
    fig = F.make_embedding_figure(evil, "label", ["label"], "t")
    assert "<script>" not in fig.data[0].text[0]


def test_topk_figure():
    row = {"id": "a", "label": "Cabin-Worker", **{f"top{k}_label": c for k, c in zip((1, 2, 3), ["Bucket-Worker", "Cabin-Worker", "Safe action"])},
           "top1_prob": 0.6, "top2_prob": 0.3, "top3_prob": 0.1}
    fig = F.make_topk_figure(pd.Series(row))
    _assert_titled(fig)
    assert list(fig.data[0].y) == ["Safe action", "Cabin-Worker", "Bucket-Worker"]  # best on top
    assert list(fig.data[0].x) == [0.1, 0.3, 0.6]
    assert fig.data[0].marker.color[1] == "#1B9E77"  # true class highlighted


def test_image_overlay_figure():
    img = np.zeros((32, 48, 3), dtype=np.uint8)
    grid = np.array([[0.5, -0.2, 0.0], [0.1, -1.0, 0.3]])
    fig = F.make_image_overlay_figure(img, grid, "Patch contributions")
    assert isinstance(fig.data[0], go.Image) and isinstance(fig.data[1], go.Heatmap)
    heat = fig.data[1]
    assert heat.colorbar.title.text == "SHAP value"
    assert heat.zmin == -1.0 and heat.zmax == 1.0  # symmetric around 0
    assert 0 < heat.opacity < 1
    # pixel centres: small integers and halves, exact in float64
    assert heat.x[0] == 16 / 2 - 0.5 and heat.y[-1] == 16 + 8 - 0.5
    # feature rows and flat square vectors work too
    rows = pd.DataFrame({"patch_row": [0, 0, 1, 1], "patch_col": [0, 1, 0, 1], "value": [1.0, 2.0, 3.0, -4.0]})
    np.testing.assert_array_equal(F.make_image_overlay_figure(img, rows).data[1].z, [[1, 2], [3, -4]])
    np.testing.assert_array_equal(F.make_image_overlay_figure(img[..., 0], np.arange(4.0)).data[1].z, [[0, 1], [2, 3]])
    with pytest.raises(DataError, match="square"):
        F.make_image_overlay_figure(img, np.arange(5.0))


def test_frames_overlay_figure():
    frames = np.random.default_rng(0).random((8, 16, 16)).astype(np.float32)  # depth clip
    tubes = np.stack([np.full((2, 2), v) for v in (-2.0, 0.5)])  # 2 temporal slices of 4 frames
    fig = F.make_frames_overlay_figure(frames, tubes, frame_index=5)
    assert isinstance(fig.data[0], go.Image)
    assert np.asarray(fig.data[0].z).shape == (16, 16, 3)
    heat = fig.data[1]
    assert np.all(np.asarray(heat.z) == 0.5)  # frame 5 is in the second slice
    assert heat.zmin == -2.0 and heat.zmax == 2.0  # shared across frames
    assert "Frame 6 of 8" in fig.layout.title.text
    first = F.make_frames_overlay_figure(frames, tubes, frame_index=0)
    assert np.all(np.asarray(first.data[1].z) == -2.0)


def test_token_html_escapes_and_colours():
    out = F.token_html(["<script>alert(1)</script>", "good", "bad"], [0.0, 0.8, -0.4])
    assert "<script>" not in out and "&lt;script&gt;" in out
    assert "rgba(178,24,43,0.850)" in out  # strongest positive: full red
    assert "rgba(33,102,172,0.425)" in out  # half as strong negative: half-alpha blue
    assert 'title="good: +0.8000"' in out
    assert F.token_html(["play", "##ing"], [0.1, 0.2]).count("</span> <span") == 0
    assert F.token_html(["a", "b"], [0.1, 0.2]).count("</span> <span") == 1
    with pytest.raises(DataError, match="2 tokens but 1 values"):
        F.token_html(["a", "b"], [0.1])


def test_builders_have_readable_fonts_and_titles(results_df, samples_df):
    figs = [
        F.make_results_bar_figure(results_df),
        F.make_confusion_figure(CLASSES, CONFUSION),
        F.make_share_distribution_figure(samples_df, MODS),
    ]
    for fig in figs:
        assert 14 <= fig.layout.font.size <= 16
        assert fig.layout.title.text

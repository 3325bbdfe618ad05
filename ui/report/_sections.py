"""The report's sections: each a small function of :class:`ReportData` returning its HTML.

A section registers itself with :func:`report_section` (key, title, and optionally the
key of the section it follows), so a new one is one function in any module:

    @report_section("slices", "Slices with the most errors", after="samples")
    def slices_section(data: ReportData) -> str: ...

:data:`SECTIONS` holds them in report order; :func:`ui.report.render_report` draws them.
Figures come from the same :mod:`ui.figures` builders as the dashboard's pages, so the
report and the pages show the same figures in the same colours.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import pandas as pd

from core.errors import FusionLensError
from core.explain import ALL_CLASSES, class_share_table
from core.kinds import get_kind
from ui import figures as F
from ui import tables as T
from ui.labels import pretty, pretty_modality
from ui.report._data import N_CORRECT_CARDS, N_ERROR_CARDS, Card, ReportData
from ui.report._page import esc, figure_html, overlay_rgb, png_data_uri, table_html

__all__ = ["Section", "SECTIONS", "report_section", "get_section"]

#: Classes of the confusion matrix in the report (those in the most errors): readable on A4.
CONFUSION_CLASSES = 25
#: Players listed on a card for a modality shown without a picture or tokens.
TOP_PLAYERS = 5


@dataclass(frozen=True)
class Section:
    """One section of the report: its anchor ``key``, its ``title`` and the function that draws its body."""

    key: str
    title: str
    render: Callable[[ReportData], str]


#: The report's sections, in order.
SECTIONS: list[Section] = []


def report_section(key: str, title: str, *, after: str | None = None) -> Callable:
    """Register a section function (``data -> HTML`` of its body); ``after``: the key of the section
    it follows (default: the end). A key registered again replaces its section in place."""
    def register(render: Callable[[ReportData], str]) -> Callable[[ReportData], str]:
        section = Section(key, title, render)
        keys = [s.key for s in SECTIONS]
        if key in keys:
            SECTIONS[keys.index(key)] = section
        elif after is not None:
            if after not in keys:
                raise KeyError(f"no report section {after!r} to follow (known: {', '.join(keys)})")
            SECTIONS.insert(keys.index(after) + 1, section)
        else:
            SECTIONS.append(section)
        return render
    return register


def get_section(key: str) -> Section:
    found = [s for s in SECTIONS if s.key == key]
    if not found:
        raise KeyError(f"no report section {key!r} (known: {', '.join(s.key for s in SECTIONS)})")
    return found[0]


def _note(text: str) -> str:
    return f'<p class="note">{esc(text)}</p>'


def _no_explanations(data: ReportData) -> str:
    if data.explain_problem:
        return _note(f"The stored explanations of {data.run.name} cannot be read: {data.explain_problem}")
    return (f'<p class="note">Not explained yet: compute the explanations of this run with '
            f"<code>{esc(data.explain_command)}</code> and write the report again.</p>")


# --------------------------------------------------------------------------- the story


@report_section("story", "The story")
def story_section(data: ReportData) -> str:
    story = data.story
    if not story.sentences:
        return _note("No run of this experiment can be read yet.")
    items = "".join(f'<li>{s.html()} <span class="proof">(dashboard: {esc(s.page_title)})</span></li>'
                    for s in story.sentences)
    rows = []
    picks = [("Best over every modality", story.best if story.state == "ready" else None),
             ("Best overall", story.best_overall),
             *((f"Best {pretty_modality(m)} alone", pick) for m, pick in story.singles.items()),
             ("This report", None)]
    for label, pick in picks:
        name = data.run.name if pick is None and label == "This report" else (pick.run if pick else None)
        if name is None:
            continue
        row = data.results[data.results["run"].astype(str) == name]
        if row.empty:
            continue
        r = row.iloc[0]
        rows.append({"": label, "run": name, "fusion": r["fusion"], "strategy": r["strategy"],
                     "modalities": r["modalities"], "top1": r["top1"], "macro_f1": r["macro_f1"]})
    table = table_html(pd.DataFrame(rows), formats={"top1": ".1%", "macro_f1": ".3f"}) if rows else ""
    return f'<ul class="story">{items}</ul>{table}'


# --------------------------------------------------------------------------- results


@report_section("results", "Results of every run")
def results_section(data: ReportData) -> str:
    results = data.results
    if results.empty:
        return _note("No run of this experiment can be read yet.")
    n_classes = len(data.classes)
    trivial = T.trivial_topk(n_classes)
    shown = results[["run", "strategy", "fusion", "modalities", "top1", "top3", "top5", "macro_f1"]].copy()
    marks = {i: "selected" for i in shown.index[shown["run"].astype(str) == data.run.name]}
    best = data.story.best.run if data.story.best else None
    for i in shown.index[shown["run"].astype(str) == best]:
        marks[i] = f"{marks.get(i, '')} best".strip()
    shown.columns = ["Run", "Strategy", "Fusion", "Modalities", *(pretty(c) for c in shown.columns[4:])]
    formats = {pretty(c): ".3f" for c in ("top1", "top3", "top5", "macro_f1")}
    notes = [f"{len(results)} run(s). Highlighted: the run of this report; \u2605 the best run over every modality."]
    if trivial:
        trivial_names = " and ".join(pretty(t) for t in trivial)
        notes.append(f"With {n_classes} classes {trivial_names} is always 1: not meaningful.")
    if data.problems:
        notes.append(f"{len(data.problems)} run(s) could not be read and are left out: " + "; ".join(data.problems))
    fig = F.make_results_bar_figure(results, [m for m in ("top1", "top3", "top5") if m not in trivial] + ["macro_f1"])
    return table_html(shown, highlight=marks, formats=formats) + "".join(_note(n) for n in notes) + figure_html(fig)


# --------------------------------------------------------------------------- modality shares


@report_section("shares", "Modality shares (MM-SHAP)")
def shares_section(data: ReportData) -> str:
    mods = data.modalities
    head = _note(f"Run {data.run.name}: {F.SHARE_MEANINGS['mmshap']}.")
    if data.explained.empty:
        return head + _no_explanations(data)
    classes = [c for c in data.classes if c in set(data.explained["label"].astype(str))]
    table = class_share_table(data.explained, mods, classes=classes, overall=True, save=False)
    per_class = table[table["class"] != ALL_CLASSES]
    n, n_test = len(data.explained), len(data.run.predictions)
    flat = int(table["n_flat"].iloc[-1]) if len(table) else 0
    parts = [head, _note(f"{n:,} explained test samples of {n_test:,}" + (
        f"; {flat} prediction(s) that barely depend on their inputs have no share and are left out of the means"
        if flat else "") + ".")]
    many = len(per_class) > 8
    parts.append(figure_html(F.make_modality_share_bar_figure(per_class, mods, horizontal=many)))
    display = T.share_table_display(table, mods)
    parts.append(table_html(display, index=True))
    parts.append(_note("Mean share per class over all, correct and incorrect predictions; \u201c/\u201d: no such "
                       f"prediction; the last row, {ALL_CLASSES}, is over every class."))
    parts.append(figure_html(F.make_share_correct_vs_incorrect_figure(data.explained, mods)))
    return "".join(parts)


# --------------------------------------------------------------------------- confusion


@report_section("confusion", "Confusion matrix")
def confusion_section(data: ReportData) -> str:
    confusion = data.run.metrics.get("confusion") or {}
    labels, matrix = confusion.get("labels") or [], confusion.get("matrix") or []
    if not labels:
        return _note("This run's metrics have no confusion matrix.")
    try:
        classes = T.top_error_classes(labels, matrix, CONFUSION_CLASSES) if len(labels) > CONFUSION_CLASSES else None
        fig = F.make_confusion_figure(labels, matrix, classes=classes)
        pairs = T.confused_pairs_table(labels, matrix, top=10)
    except Exception as exc:  # a matrix from another format version: a note, not a failed report
        return _note(f"The confusion matrix of this run cannot be drawn: {exc}")
    parts = [figure_html(fig, f"The {CONFUSION_CLASSES} classes in the most errors of {len(labels)}; "
                              f"{F.OTHER_CLASSES} counts predictions into the others." if classes else None)]
    if len(pairs):
        pairs = pairs.rename(columns={"true": "True class", "pred": "Predicted class", "count": "Samples",
                                      "share": "Share of the true class"})
        parts += ["<h3>Most confused pairs</h3>", table_html(pairs, formats={"Share of the true class": ".1%"})]
    else:
        parts.append(_note("No test sample is misclassified."))
    return "".join(parts)


# --------------------------------------------------------------------------- sample cards


def _feature_rows(explanation: Any, modality: str) -> pd.DataFrame:
    frame = explanation.per_feature_frame()
    return frame[frame["modality"] == modality]


def _grid(rows: pd.DataFrame, segment: int | None = None) -> np.ndarray | None:
    """(rows, cols) Shapley values of an image's patches (or of one time slice of a clip's tubes)."""
    if rows.empty or "row" not in rows.columns or rows["row"].isna().all():
        return None
    if segment is not None and "segment" in rows.columns:
        rows = rows[rows["segment"].fillna(0).astype(int) == segment]
    r, c = rows["row"].astype(int).to_numpy(), rows["col"].astype(int).to_numpy()
    grid = np.full((r.max() + 1, c.max() + 1), np.nan)
    grid[r, c] = rows["phi"].to_numpy(dtype=float)
    return grid


def _picture(image: Any, explanation: Any, modality: str, *, frame: bool = False) -> str:
    rows = _feature_rows(explanation, modality) if explanation is not None and not explanation.flat else None
    grid = _grid(rows, segment=0 if frame else None) if rows is not None else None
    what = "first frame" if frame else "input"
    caption = f"<figcaption>{what}</figcaption>" if frame or grid is not None else ""
    out = [f'<figure><img alt="{esc(modality)}: {what}" src="{png_data_uri(image)}">{caption}</figure>']
    if grid is not None:
        out.append(f'<figure><img alt="{esc(modality)} contributions" src="{png_data_uri(overlay_rgb(image, grid))}">'
                   f"<figcaption>patch contributions</figcaption></figure>")
    return f'<div class="pictures">{"".join(out)}</div>'


def _modality_html(card: Card, modality: str, kind: str) -> str:
    title = f"<b>{esc(pretty_modality(modality))}</b>"
    if modality in card.item_problems:
        return f'<div class="modality">{title}: <span class="note">{esc(card.item_problems[modality])}</span></div>'
    item = card.items.get(modality)
    exp = card.explanation
    try:
        viewer = get_kind(kind).viewer
    except FusionLensError:  # a kind this version does not know: its item as text
        viewer = ""
    if viewer == "image":
        return f'<div class="modality">{title}{_picture(item, exp, modality)}</div>'
    if viewer == "video":
        clip = np.asarray(item)
        return f'<div class="modality">{title}{_picture(clip[0], exp, modality, frame=True)}</div>'
    rows = _feature_rows(exp, modality) if exp is not None else None
    if viewer == "text":
        if rows is not None and "token" in rows.columns and not rows["token"].isna().all():
            body = F.token_html(rows["token"].astype(str).tolist(), rows["phi"].astype(float).tolist(),
                                font_size=14)
        else:
            body = f"<div>{esc(item)}</div>"
        return f'<div class="modality">{title}{body}</div>'
    if rows is not None and len(rows):  # any other kind: the players that moved the prediction most
        labels = exp.feature_labels()
        idx = exp.feature_indices(modality)
        top = sorted(zip(idx, exp.values[idx]), key=lambda p: -abs(p[1]))[:TOP_PLAYERS]
        listed = ", ".join(f"{esc(labels[i])} {v:+.3g}" for i, v in top)
        return f'<div class="modality">{title}: largest contributions {listed}</div>'
    return f'<div class="modality">{title}: shown on the Sample explorer page</div>'


def _share_bar(card: Card, modalities: list[str]) -> str:
    values = {m: v for m, v in card.shares.items() if isinstance(v, float) and math.isfinite(v)}
    if card.explanation is not None and card.explanation.flat:
        return '<p class="note">No share: the prediction barely depends on its inputs.</p>'
    if not values:
        return ""
    total = sum(values.values()) or 1.0
    spans = "".join(f'<span title="{esc(pretty_modality(m))} {v:.0%}" style="width:{100 * v / total:.2f}%;'
                    f'background:{F.modality_color(m, modalities)}"></span>' for m, v in values.items())
    legend = "".join(f'<span class="swatch" style="background:{F.modality_color(m, modalities)}"></span>'
                     f"{esc(pretty_modality(m))} {v:.0%}" for m, v in values.items())
    return f'<div class="sharebar">{spans}</div><div class="legend note">MM-SHAP share:{legend}</div>'


def _card_html(card: Card, data: ReportData) -> str:
    verdict = '<span class="verdict right">correct</span>' if card.correct else \
        '<span class="verdict wrong">wrong</span>'
    parts = [f"<h4>{esc(card.sample_id)}</h4>",
             f"<div>True <b>{esc(card.label)}</b> \u00b7 predicted <b>{esc(card.pred)}</b> "
             f"({card.confidence:.1%}) \u00b7 {verdict}</div>", _share_bar(card, data.modalities)]
    parts += [_modality_html(card, m, data.kinds.get(m, "")) for m in data.modalities]
    if card.explanation is None:
        parts.append(_note(card.explanation_problem or "Not explained yet."))
    return f'<div class="card">{"".join(parts)}</div>'


@report_section("samples", "Sample cards")
def samples_section(data: ReportData) -> str:
    if not data.cards:
        return _note("This run has no test predictions.")
    errors = [c for c in data.cards if not c.correct]
    right = [c for c in data.cards if c.correct]
    parts = [_note(f"The {len(errors)} most confident errors of {data.run.name} (up to {N_ERROR_CARDS}) and "
                   f"{len(right)} correct predictions (up to {N_CORRECT_CARDS}; explained ones first, most confident "
                   "first). Contributions: red pushes towards the predicted class, blue against it.")]
    if not any(c.explanation is not None for c in data.cards):
        parts.append(_no_explanations(data))
    for heading, cards in (("Most confident errors", errors), ("Correct predictions", right)):
        if cards:
            parts += [f"<h3>{heading}</h3>", f'<div class="cards">{"".join(_card_html(c, data) for c in cards)}</div>']
    return "".join(parts)

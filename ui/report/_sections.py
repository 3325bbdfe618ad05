"""The report's sections: each a small function of :class:`ReportData` returning its HTML.

A section registers itself with :func:`report_section` (key, title, and optionally the
key of the section it follows), so a new one is one function in any module:

    @report_section("outliers", "Outliers", after="samples")
    def outliers_section(data: ReportData) -> str: ...

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

from core.data import frame_rate
from core.errors import FusionLensError
from core.explain import (
    ALL_CLASSES,
    class_interaction_table,
    class_share_table,
    current_modality_game,
)
from core.kinds import get_kind
from ui import figures as F
from ui import tables as T
from ui.commands import build_commands
from ui.contributions import audio_settings, audio_track, feature_rows, patch_grid, token_values, tube_values
from ui.figures.clips import MAX_FRAMES, MAX_SIDE
from ui.figures.overlays import tube_slice
from ui.labels import pretty, pretty_modality
from ui.report._data import N_CORRECT_CARDS, N_ERROR_CARDS, Card, ReportData
from ui.report._page import esc, figure_html, overlay_rgb, png_data_uri, table_html

__all__ = ["Section", "SECTIONS", "report_section", "get_section"]

#: Classes of the confusion matrix in the report (those in the most errors): readable on A4.
CONFUSION_CLASSES = 25
#: Players listed on a card for a modality shown without a picture or tokens.
TOP_PLAYERS = 5
#: Cards whose clips also get the clip player (each a figure of up to MAX_FRAMES frames of MAX_SIDE px).
CLIP_PLAYERS = 2


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
    parts.append(_note("Mean share per class over all, correct and incorrect predictions, with its 95 % "
                       "interval over the class's samples (none for one sample); \u201c/\u201d: no such "
                       f"prediction; the last row, {ALL_CLASSES}, is over every class."))
    parts.append(figure_html(F.make_share_correct_vs_incorrect_figure(data.explained, mods)))
    return "".join(parts)


@report_section("exact_shares", "Modality shares, exact, of every test prediction", after="shares")
def exact_shares_section(data: ReportData) -> str:
    """The exact modality shares and interactions of every test prediction, from the modality game the blame
    step stores (``core.explain.load_modality_game``)."""
    mods = data.modalities
    command = build_commands(data.experiment, data.run.name, root=data.root)["blame"]
    try:
        game, why = current_modality_game(data.run.path, data.run.config)
    except FusionLensError as exc:
        return _note(f"The modality game of {data.run.name} cannot be read: {exc}")
    if game is None:
        return ('<p class="note">The modality game of every test prediction (exact modality shares, no estimate) '
                f"{why}: compute it with <code>{esc(command)} --force</code> and write the report again.</p>")
    classes = [c for c in data.classes if c in set(game["label"].astype(str))]
    table = class_share_table(game, mods, classes=classes, overall=True, save=False, share="exact")
    per_class = table[table["class"] != ALL_CLASSES]
    flat = int(table["n_flat"].iloc[-1]) if len(table) else 0
    parts = [_note(f"Run {data.run.name}: {F.SHARE_MEANINGS['exact']}. Every one of the {len(game):,} test "
                   "predictions, from its modality game (each modality wholly masked, 2^M coalitions: exact, no "
                   "estimate)" + (f"; {flat} prediction(s) that barely depend on their inputs have no share"
                                  if flat else "") + ".")]
    parts.append(figure_html(F.make_modality_share_bar_figure(per_class, mods, horizontal=len(per_class) > 8,
                                                              title="Mean exact modality share per class")))
    parts.append(table_html(T.share_table_display(table, mods), index=True))
    if len(mods) >= 2:
        inter = class_interaction_table(game, mods, classes=classes, overall=True, save=False)
        parts.append("<h3>Modality interactions</h3>")
        parts.append(table_html(T.interaction_table_display(inter, mods), index=True))
        parts.append(_note("How much of the prediction only exists when the two modalities are seen together "
                           "(above 0: more together than apart; below 0: either one alone suffices), in "
                           "probability points: mean [95 % interval] (samples)."))
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


def _pictures(pictures: list[tuple[np.ndarray, np.ndarray | None, str]], modality: str) -> str:
    """Pictures (picture, its contribution grid or None, what it is), each followed by its overlay."""
    out = []
    for picture, grid, what in pictures:
        out.append(f'<figure><img alt="{esc(modality)}: {esc(what)}" src="{png_data_uri(picture)}">'
                   f"<figcaption>{esc(what)}</figcaption></figure>")
        if grid is not None:
            out.append(f'<figure><img alt="{esc(modality)} contributions, {esc(what)}" '
                       f'src="{png_data_uri(overlay_rgb(picture, grid))}"><figcaption>'
                       f"{'tube' if 'frame' in what else 'patch'} contributions</figcaption></figure>")
    return f'<div class="pictures">{"".join(out)}</div>'


def _explained(explanation: Any) -> bool:
    return explanation is not None and not explanation.flat


def _image_html(image: Any, explanation: Any, modality: str) -> str:
    grid = patch_grid(explanation, modality) if _explained(explanation) else None
    return _pictures([(np.asarray(image), grid, "input")], modality)


def _clip_html(clip: Any, explanation: Any, modality: str) -> str:
    """The clip's first and middle frames, each with the tubes of its time slice over it."""
    clip = np.asarray(clip)
    tubes = tube_values(explanation, modality) if _explained(explanation) else None
    n = clip.shape[0]
    shown = []
    for index in sorted({0, n // 2}):
        grid = tubes[tube_slice(len(tubes), index, n)] if tubes is not None else None
        shown.append((clip[index], grid, f"frame {index + 1} of {n}"))
    return _pictures(shown, modality)


def _audio_html(wave: Any, explanation: Any, modality: str, data: ReportData) -> str:
    """The clip's log-mel spectrogram as the run's encoder computes it, its patches' contributions over it."""
    track = audio_track(wave, modality, explanation if _explained(explanation) else None,
                        _audio_settings(data, modality))
    what = "patch contributions" if track.patches is not None else "log-mel spectrogram"
    fig = F.make_spectrogram_figure(track.db, track.times, track.hz_edges, track.patches,
                                    title=f"{pretty_modality(modality)}: {what}")
    fig.update_layout(height=300, margin={"l": 60, "r": 10})
    return figure_html(fig)


def _audio_settings(data: ReportData, modality: str) -> dict[str, Any]:
    kwargs = ((data.run.config.get("encoders") or {}).get(modality) or {}).get("kwargs")
    options = (getattr(data.dataset, "options", None) or {}).get(modality, {})
    return audio_settings(kwargs, options)


def _viewer(kind: str) -> str:
    try:
        return get_kind(kind).viewer
    except FusionLensError:  # a kind this version does not know: its item as text
        return ""


def _modality_html(card: Card, modality: str, kind: str, data: ReportData) -> str:
    title = f"<b>{esc(pretty_modality(modality))}</b>"
    if modality in card.item_problems:
        return f'<div class="modality">{title}: <span class="note">{esc(card.item_problems[modality])}</span></div>'
    item = card.items.get(modality)
    exp = card.explanation
    viewer = _viewer(kind)
    if viewer == "image":
        return f'<div class="modality">{title}{_image_html(item, exp, modality)}</div>'
    if viewer == "video":
        return f'<div class="modality">{title}{_clip_html(item, exp, modality)}</div>'
    if viewer == "audio":
        return f'<div class="modality">{title}{_audio_html(item, exp, modality, data)}</div>'
    if viewer == "text":
        tokens = token_values(exp, modality) if exp is not None else None
        body = F.token_html(*tokens, font_size=14) if tokens is not None else f"<div>{esc(item)}</div>"
        return f'<div class="modality">{title}{body}</div>'
    rows = feature_rows(exp, modality) if exp is not None else None
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
    parts += [_modality_html(card, m, data.kinds.get(m, ""), data) for m in data.modalities]
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
    parts.append(_clip_players(data))
    return "".join(parts)


def _clip_players(data: ReportData) -> str:
    """The clip player (:func:`ui.figures.make_clip_player_figure`) of the first :data:`CLIP_PLAYERS`
    cards with clips: their clips and audio playing in sync with their contributions."""
    video = [m for m in data.modalities if _viewer(data.kinds.get(m, "")) == "video"]
    if not video:
        return ""
    sound = [m for m in data.modalities if _viewer(data.kinds.get(m, "")) == "audio"]
    playable = [c for c in data.cards if any(m in c.items for m in video)]
    if not playable:
        return ""
    shown = playable[:CLIP_PLAYERS]
    parts = ["<h3>Clips playing</h3>", _note(
        f"The clips of the first {len(shown)} card(s) with clips (of {len(playable)}), playing in sync with "
        "their contributions: press Play or drag the slider. To keep the file small each player holds at most "
        f"{MAX_FRAMES} evenly spaced frames of at most {MAX_SIDE} pixels a side; its subtitle says what was "
        "left out. Every clip is on the Sample explorer page in full.")]
    for card in shown:
        clips = {m: np.asarray(card.items[m]) for m in video if m in card.items}
        exp = card.explanation if _explained(card.explanation) else None
        tubes = {m: tube_values(exp, m) if exp is not None else None for m in clips}
        audio = [audio_track(card.items[m], m, exp, _audio_settings(data, m)) for m in sound if m in card.items]
        longest = max(clips, key=lambda m: clips[m].shape[0])
        fps = frame_rate(data.dataset, longest, clips[longest].shape[0]) if data.dataset is not None else None
        fig = F.make_clip_player_figure(clips, tubes, audio=audio, modalities=data.modalities, fps=fps,
                                        title=esc(f"{card.sample_id}: true {card.label}, predicted {card.pred}"))
        parts.append(figure_html(fig))
    return "".join(parts)

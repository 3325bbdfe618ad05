"""The report's sections on where the run fails: the slices with the most errors (SliceLine, as the
Slice finder page searches them) and which modality misled the model (the run's stored modality blame,
as the Misclassifications page shows it).

Both read what the pages read and draw with the same builders and words (:mod:`ui.slices`,
:mod:`ui.blame`, :mod:`ui.figures`); neither computes anything slow: the slice search takes a second
or two, and a blame that was never computed is named with the command that computes it.
"""
from __future__ import annotations

import pandas as pd

from core.errors import FusionLensError
from core.explain import ALL_CLASSES, blame_is_current, blame_sentences, blame_table, load_blame
from core.slices import NOT_EXPLAINED, slice_features
from ui import figures as F
from ui.blame import blame_caption, blame_display_table
from ui.commands import build_commands
from ui.figures.blame import blame_classes
from ui.labels import pretty_modality
from ui.report._data import ReportData
from ui.report._page import esc, figure_html, table_html
from ui.report._sections import report_section
from ui.slices import no_significant_text, search_slices, slices_caption

__all__ = ["slices_section", "blame_section"]


def _note(text: str) -> str:
    return f'<p class="note">{esc(text)}</p>'


def _problem(exc: FusionLensError) -> str:
    return exc.problem + (f". Fix: {exc.fix}" if exc.fix else "")


# --------------------------------------------------------------------------- slices


def _slice_rows(table: pd.DataFrame) -> pd.DataFrame:
    """The slices as the report lists them: the error rate with its Wilson 95 % interval in one cell."""
    rate = [f"{r:.1%} [{lo:.1%}, {hi:.1%}]" for r, lo, hi in zip(table["error_rate"], table["ci_low"],
                                                                     table["ci_high"])]
    return pd.DataFrame({
        "Rank": table["rank"].astype(int), "Slice": table["description"].astype(str),
        "Samples": table["size"].astype(int), "Errors": table["errors"].astype(int),
        "Error rate [95 % interval]": rate, "Lift": table["lift"].astype(float),
        "q-value": table["q_value"].astype(float),
        "Significant": ["yes" if s else "no" for s in table["significant"]],
    })


@report_section("slices", "Where the model fails: slices", after="confusion")
def slices_section(data: ReportData) -> str:
    view = data.view
    if view.empty:
        return _note("This run has no test predictions, so there is no slice to search.")
    try:
        features = slice_features(view, data.modalities, data.dataset)
        table = search_slices(features, view)  # the Slice finder page's defaults
    except FusionLensError as exc:
        return _note(f"Slices cannot be searched: {_problem(exc)}")
    summary = table.attrs
    parts = []
    n_explained = int(view["dominant"].notna().sum()) if "dominant" in view.columns else 0
    if n_explained < len(view):
        parts.append(_note(f"{n_explained:,} of {len(view):,} test samples are explained: the others are "
                           f"\u201c{NOT_EXPLAINED}\u201d in the dominant modality and share columns."))
    skipped = dict(summary.get("skipped") or {})
    if skipped:
        parts.append(_note("Not searched: " + "; ".join(f"{c}, {why}" for c, why in skipped.items()) + "."))
    if summary.get("reason"):
        return "".join(parts) + _note(f"No slice to show: {summary['reason']}.")
    n_significant = int(table["significant"].sum())
    parts.insert(0, _note(f"Test samples {summary['n']:,}; errors {summary['n_errors']:,} "
                          f"({summary['error_rate']:.1%}); significant slices {n_significant} of {len(table)} "
                          f"(q < {summary['alpha']:g}). Searched with the Slice finder page's defaults: every "
                          f"column, at least {summary['min_size']} samples, up to {summary['max_conditions']} "
                          "conditions."))
    if not n_significant:
        parts.append(_note(f"No significant slice. {no_significant_text(summary)}"))
    parts.append(figure_html(F.make_slice_figure(table, title=f"Error rate per slice \u00b7 run {data.run.name}")))
    parts.append(table_html(_slice_rows(table), formats={"Lift": ".2f", "q-value": ".2g"}))
    parts.append(_note(slices_caption(summary)))
    return "".join(parts)


# --------------------------------------------------------------------------- modality blame


@report_section("blame", "Which modality misled the model", after="slices")
def blame_section(data: ReportData) -> str:
    command = build_commands(data.experiment, data.run.name, root=data.root)["blame"]
    try:
        frame = load_blame(data.run.path)
    except FusionLensError as exc:
        return _note(f"The blame of {data.run.name} cannot be read: {_problem(exc)}")
    if frame is None:
        return ('<p class="note">No blame computed yet for this run (for every test prediction, which modality '
                f"pushed it toward the wrong class): compute it with <code>{esc(command)}</code> and write the "
                "report again.</p>")
    parts = []
    if not blame_is_current(data.run.path, data.run.config):
        parts.append(f'<p class="note">This blame was computed for an earlier training of the run: recompute it '
                     f"with <code>{esc(command)} --force</code>.</p>")
    mods = data.modalities
    blamed = blame_table(frame, data.classes)
    n_errors = int(blamed.loc[blamed["class"].astype(str) == ALL_CLASSES, "n_errors"].iloc[0])
    if n_errors == 0:
        return "".join(parts) + _note(f"No errors among the {len(frame):,} test predictions: no modality misled "
                                      "the model.")
    sentences = blame_sentences(blamed, modalities=mods, name=pretty_modality)
    parts.append('<ul class="story">' + "".join(f"<li>{esc(s)}</li>" for s in sentences) + "</ul>")
    parts.append(figure_html(F.make_blame_class_figure(blamed, mods)))
    parts.append(table_html(blame_display_table(blamed, mods, blame_classes(blamed, top=len(blamed)))))
    caption = esc(blame_caption(lambda word: f"\x00{word}\x01"))
    parts.append(f'<p class="caption">{caption.replace(chr(0), "<b>").replace(chr(1), "</b>")}</p>')
    return "".join(parts)

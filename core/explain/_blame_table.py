"""The blame of a run's errors per class: counts, shares and means with their intervals, and sentences.

:func:`blame_table` aggregates a blame table (``core.explain.load_blame``) per true class and over
all classes (:data:`~core.explain.ALL_CLASSES`): how many errors, for each modality in how many of
them it misled the model (its Shapley value of the margin game is > 0: it pushed toward the wrong
class) and in how many it was the culprit (the largest positive push), the mean push over the
errors with a 95 % Student-t interval, and the same mean over the correct predictions (there the
margin is against the runner-up class, so a negative mean says the modality supported the right
answer). :func:`blame_sentences` writes the table's lines in words, each with the n it rests on
("image misled the model in 23 of 61 errors"). Nothing here imports torch.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from core.errors import ConfigError
from core.explain._aggregate import ALL_CLASSES
from core.explain._blame_store import blame_column
from core.metrics import mean_interval

#: Confidence of the intervals of :func:`blame_table`.
BLAME_CONFIDENCE = 0.95
#: Fewer errors than this: the sentences say the shares rest on few errors.
FEW_ERRORS = 10


def blame_modalities(frame: pd.DataFrame) -> list[str]:
    """The modalities of a blame table: its ``attrs`` when loaded, else its ``blame_<m>`` columns in order."""
    named = frame.attrs.get("modalities") if hasattr(frame, "attrs") else None
    if named:
        return [str(m) for m in named]
    return [c[len("blame_"):] for c in frame.columns if c.startswith("blame_")]


def _share(k: int, n: int) -> float:
    return k / n if n else float("nan")


def blame_table(frame: pd.DataFrame, classes: Sequence[str] | None = None, *,
                modalities: Sequence[str] | None = None, overall: bool = True,
                confidence: float = BLAME_CONFIDENCE) -> pd.DataFrame:
    """Per true class (in the order of ``classes``, default the classes of the table sorted), then
    :data:`ALL_CLASSES` when ``overall``: one row with

    ``class``, ``n`` (predictions), ``n_errors``, ``n_correct``, ``n_no_culprit`` (errors no modality
    pushed toward the wrong class), and per modality ``m``: ``misled_<m>`` (errors where ``blame_<m> > 0``),
    ``misled_share_<m>`` (of the errors; NaN without errors), ``culprit_<m>``, ``culprit_share_<m>``,
    ``blame_<m>_errors`` (mean over the errors) with ``blame_<m>_errors_low`` / ``_high`` (the
    ``confidence`` Student-t interval of the mean; NaN with fewer than 2 errors), and
    ``blame_<m>_correct`` with its interval over the correct predictions. Values are in logit units.
    """
    if not 0 < float(confidence) < 1:
        raise ConfigError(f"confidence must lie in (0, 1), got {confidence!r}", fix="pass for example 0.95")
    mods = [str(m) for m in (blame_modalities(frame) if modalities is None else modalities)]
    missing = [c for c in ("label", "correct", "culprit", *(blame_column(m) for m in mods)) if c not in frame.columns]
    if missing:
        raise ConfigError(f"the blame table lacks column(s) {', '.join(missing)}",
                          fix="pass the frame core.explain.load_blame(run) returns")
    labels = frame["label"].astype(str).to_numpy()
    wrong = ~frame["correct"].astype(bool).to_numpy()
    culprit = frame["culprit"].astype(object).where(frame["culprit"].notna(), None).to_numpy()
    values = {m: pd.to_numeric(frame[blame_column(m)], errors="coerce").to_numpy(dtype=float) for m in mods}
    names = sorted(set(labels)) if classes is None else [str(c) for c in classes]
    groups = [(c, labels == c) for c in names]
    if overall:
        groups.append((ALL_CLASSES, np.ones(len(frame), dtype=bool)))
    columns = ["class", "n", "n_errors", "n_correct", "n_no_culprit"]
    for m in mods:
        columns += [f"misled_{m}", f"misled_share_{m}", f"culprit_{m}", f"culprit_share_{m}",
                    *(f"{blame_column(m)}_{s}{x}" for s in ("errors", "correct") for x in ("", "_low", "_high"))]
    rows = []
    for name, rows_of in groups:
        errors, right = rows_of & wrong, rows_of & ~wrong
        n_err = int(errors.sum())
        row: dict[str, Any] = {"class": name, "n": int(rows_of.sum()), "n_errors": n_err,
                               "n_correct": int(right.sum()),
                               "n_no_culprit": int(sum(1 for c in culprit[errors] if c is None))}
        for m in mods:
            v = values[m]
            misled = int((v[errors] > 0).sum())
            blamed = int(sum(1 for c in culprit[errors] if c == m))
            row.update({f"misled_{m}": misled, f"misled_share_{m}": _share(misled, n_err),
                        f"culprit_{m}": blamed, f"culprit_share_{m}": _share(blamed, n_err)})
            for subset, mask in (("errors", errors), ("correct", right)):
                vals = v[mask]
                mean, low, high, _ = mean_interval(vals, float(confidence))
                row.update({f"{blame_column(m)}_{subset}": mean, f"{blame_column(m)}_{subset}_low": low,
                            f"{blame_column(m)}_{subset}_high": high})
        rows.append(row)
    table = pd.DataFrame(rows, columns=columns)
    table.attrs.update(modalities=mods, confidence=float(confidence))
    return table


def _interval(mean: float, low: float, high: float) -> str:
    if not np.isfinite(mean):
        return "-"
    if np.isfinite(low):
        return f"{mean:+.2f} [{low:+.2f}, {high:+.2f}]"
    return f"{mean:+.2f}"


def blame_sentences(table: pd.DataFrame, cls: str = ALL_CLASSES, *, modalities: Sequence[str] | None = None,
                    name: Callable[[str], str] = str) -> list[str]:
    """The row of class ``cls`` of a :func:`blame_table` in words, one sentence per modality (the one that
    misled most often first), each with the counts it rests on; ``name`` shows a modality's name.

    Example: "image misled the model in 23 of 61 errors (38 %) and was the culprit in 17; its mean push
    toward the wrong class is +0.42 logit (95 % interval +0.31 to +0.53), against -1.20 over the 180
    correct predictions (negative: toward the true class)."
    """
    mods = [str(m) for m in (table.attrs.get("modalities") or [] if modalities is None else modalities)]
    hit = table[table["class"].astype(str) == str(cls)]
    if hit.empty:
        return [f"No predictions of class {cls}."]
    r = hit.iloc[0]
    n_err, n_ok = int(r["n_errors"]), int(r["n_correct"])
    where = "" if cls == ALL_CLASSES else f" of class {cls}"
    if n_err == 0:
        return [f"No errors among the {int(r['n'])} predictions{where}: nothing misled the model."]
    confidence = float(table.attrs.get("confidence", BLAME_CONFIDENCE))
    out = []
    if n_err < FEW_ERRORS:
        out.append(f"Only {n_err} error{'s' if n_err != 1 else ''}{where}: read these counts as counts, "
                   "not as rates.")
    for m in sorted(mods, key=lambda m: (-int(r[f"misled_{m}"]), mods.index(m))):
        misled, culprit = int(r[f"misled_{m}"]), int(r[f"culprit_{m}"])
        col = blame_column(m)
        mean, low, high = r[f"{col}_errors"], r[f"{col}_errors_low"], r[f"{col}_errors_high"]
        text = (f"{name(m)} misled the model in {misled} of {n_err} error{'s' if n_err != 1 else ''}{where} "
                f"({misled / n_err:.0%}) and was the culprit in {culprit}")
        if np.isfinite(mean):
            text += f"; its mean push toward the wrong class is {mean:+.2f} logit"
            if np.isfinite(low):
                text += f" ({confidence:.0%} interval {low:+.2f} to {high:+.2f})"
        correct = r[f"{col}_correct"]
        if n_ok and np.isfinite(correct):
            text += (f", against {correct:+.2f} over the {n_ok} correct prediction{'s' if n_ok != 1 else ''} "
                     "(negative: toward the true class)")
        out.append(text + ".")
    if int(r["n_no_culprit"]):
        out.append(f"In {int(r['n_no_culprit'])} of the {n_err} errors no modality pushed toward the wrong class: "
                   "with every modality masked the model already preferred it, and the modalities did not pull it "
                   "back far enough.")
    return out


def format_blame_table(table: pd.DataFrame, modalities: Sequence[str] | None = None) -> str:
    """The table as text for a terminal: per class the errors, and per modality misled / culprit counts
    and the mean push over errors with its interval."""
    mods = [str(m) for m in (table.attrs.get("modalities") or [] if modalities is None else modalities)]
    if table.empty:
        return "no predictions"
    header = ["class", "errors", *(f"{m}: misled / culprit / mean [95 %]" for m in mods)]
    lines = []
    for _, r in table.iterrows():
        cells = [str(r["class"]), f"{int(r['n_errors'])} of {int(r['n'])}"]
        for m in mods:
            col = blame_column(m)
            cells.append(f"{int(r[f'misled_{m}'])} / {int(r[f'culprit_{m}'])} / "
                         + _interval(r[f"{col}_errors"], r[f"{col}_errors_low"], r[f"{col}_errors_high"]))
        lines.append(cells)
    widths = [max(len(h), *(len(c[i]) for c in lines)) for i, h in enumerate(header)]
    fmt = lambda cells: "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))
    return "\n".join([fmt(header), *(fmt(c) for c in lines)])

"""Tables as the pages show them: best cells, LaTeX, class rankings and the share table's layout.

Nothing here computes a result of its own: the results table comes from
:func:`core.results.results_table`, the per-class modality shares and
interactions from :func:`core.explain.class_share_table` and
:func:`core.explain.class_interaction_table`, per-class metrics and the confusion
matrix from a run's ``metrics.json``. These functions pick, order, reshape and
format them for a page, a download or a figure.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from core.errors import DataError
from core.explain import interaction_columns, interval_text, share_text
from ui.labels import METRIC_LABELS, SUBSET_LABELS, SUBSETS, pretty_modality

__all__ = [
    "INDICATIVE",
    "LOWER_IS_BETTER",
    "trivial_topk",
    "best_rows",
    "results_latex",
    "per_class_recall_table",
    "confusion_array",
    "confused_pairs_table",
    "top_error_classes",
    "lowest_classes",
    "share_table_display",
]

# Metrics where lower is better (for "best per column").
LOWER_IS_BETTER: frozenset[str] = frozenset({"n_params", "inference_ms", "train_seconds", "inference_ms_per_sample",
                                             "gflops", "gflops_per_sample"})
#: Columns that are measured, not scored: shown, never crowned "best" (a timing depends on the
#: machine and its load; see core.train's inference timing).
INDICATIVE: frozenset[str] = frozenset({"inference_ms", "inference_ms_per_sample", "train_seconds"})


# --------------------------------------------------------------------------- the results table


def trivial_topk(n_classes: int | None) -> list[str]:
    """The top-k columns that say nothing with ``n_classes`` classes (k >= classes: always 1.0)."""
    if not n_classes:
        return []
    return [f"top{k}" for k in (3, 5) if int(n_classes) <= k]


def best_rows(results_df: pd.DataFrame, columns: Sequence[str] | None = None, *,
              n_classes: int | None = None) -> dict[str, list[Any]]:
    """Index labels of the best row(s) per numeric metric column (ties all count).

    Higher is better except for cost columns (:data:`LOWER_IS_BETTER`). No row
    wins an :data:`INDICATIVE` column (timings) or a top-k column that is
    trivially 1.0 with ``n_classes`` classes (:func:`trivial_topk`).
    """
    if columns is None:
        columns = [c for c in results_df.columns if c in METRIC_LABELS or c in LOWER_IS_BETTER]
    skip = INDICATIVE | set(trivial_topk(n_classes))
    out: dict[str, list[Any]] = {}
    for col in columns:
        if col not in results_df.columns or col in skip:
            continue
        values = pd.to_numeric(results_df[col], errors="coerce")
        if values.notna().sum() == 0:
            continue
        best = values.min() if col in LOWER_IS_BETTER else values.max()
        out[col] = list(results_df.index[np.isclose(values.to_numpy(dtype=float), best, rtol=0, atol=1e-12)])
    return out


_LATEX_ESCAPES = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
    "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
}


def _latex_escape(text: Any) -> str:
    return "".join(_LATEX_ESCAPES.get(ch, ch) for ch in str(text))


def results_latex(results_df: pd.DataFrame, *, caption: str | None = None, label: str | None = None,
                  n_classes: int | None = None) -> str:
    """The results table as LaTeX (booktabs), best value per metric column in bold.

    Needs ``\\usepackage{booktabs}``. Accuracy-like columns are formatted with 3
    decimals, parameter counts in millions. Timings and trivial top-k columns
    (see :func:`best_rows`) are never bold.
    """
    df = results_df.reset_index(drop=True)
    text_cols = [c for c in ("run", "encoders", "fusion", "strategy", "modalities") if c in df.columns]
    num_cols = [c for c in df.columns if c not in text_cols and pd.api.types.is_numeric_dtype(df[c])]
    cols = text_cols + num_cols
    best = best_rows(df, [c for c in num_cols if c in METRIC_LABELS or c in LOWER_IS_BETTER], n_classes=n_classes)
    header_names = {
        "run": "Run", "encoders": "Encoders", "fusion": "Fusion", "strategy": "Strategy",
        "modalities": "Modalities", "top1": "Top-1", "top3": "Top-3", "top5": "Top-5",
        "macro_f1": "Macro-F1", "n_params": "Params (M)", "inference_ms": "ms/sample", "gflops": "GFLOPs",
    }

    def cell(col: str, i: int) -> str:
        v = df.at[i, col]
        if col in text_cols:
            return _latex_escape(v)
        if v is None or (isinstance(v, float) and not np.isfinite(v)):
            return "--"
        if col == "n_params":
            s = f"{float(v) / 1e6:.2f}"
        elif col == "gflops":  # a small encoder costs < 1e-3 GFLOPs: significant digits, not decimals
            s = f"{float(v):.3g}"
        elif isinstance(v, (int, np.integer)):
            s = str(int(v))
        else:
            s = f"{float(v):.3f}"
        return rf"\textbf{{{s}}}" if i in best.get(col, []) else s

    lines = []
    if caption or label:
        lines += [r"\begin{table}[t]", r"\centering"]
    lines.append(r"\begin{tabular}{" + "l" * len(text_cols) + "r" * len(num_cols) + "}")
    lines.append(r"\toprule")
    lines.append(" & ".join(_latex_escape(header_names.get(c, c)) for c in cols) + r" \\")
    lines.append(r"\midrule")
    for i in range(len(df)):
        lines.append(" & ".join(cell(c, i) for c in cols) + r" \\")
    lines.append(r"\bottomrule")
    lines.append(r"\end{tabular}")
    if caption or label:
        if caption:
            lines.append(rf"\caption{{{_latex_escape(caption)}}}")
        if label:
            lines.append(rf"\label{{{label}}}")
        lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- per-class metrics


def per_class_recall_table(metrics_by_run: Mapping[str, Mapping[str, Any]], value: str = "recall") -> pd.DataFrame:
    """Runs x classes table of ``value`` (recall = per-class accuracy) from each run's metrics.json."""
    rows: dict[str, dict[str, float]] = {}
    classes: list[str] = []
    for run, metrics in metrics_by_run.items():
        per_class = (metrics or {}).get("per_class", {}) or {}
        rows[str(run)] = {str(c): float(v.get(value, float("nan"))) for c, v in per_class.items()}
        for c in per_class:
            if str(c) not in classes:
                classes.append(str(c))
    table = pd.DataFrame.from_dict(rows, orient="index").reindex(columns=classes)
    table.index.name = "run"
    return table


def confusion_array(labels: Sequence[Any], matrix: Any) -> tuple[list[str], np.ndarray]:
    """Class names and the confusion matrix of metrics.json as a float array, shape checked."""
    names = [str(l) for l in labels]
    m = np.asarray(matrix, dtype=float)
    if m.ndim != 2 or m.shape != (len(names), len(names)):
        raise DataError(
            f"confusion matrix has shape {m.shape} for {len(names)} labels",
            fix="use metrics.json 'confusion': a square matrix with one row per label",
        )
    return names, m


def top_error_classes(labels: Sequence[Any], matrix: Any, top: int | None = None) -> list[str]:
    """Classes by the number of errors they take part in (as true or as predicted class), most first.

    Ties keep the run's class order; classes without errors come last. ``top``
    keeps the first ``top`` (the default view of a large confusion matrix).
    """
    names, counts = confusion_array(labels, matrix)
    errors = counts.copy()
    np.fill_diagonal(errors, 0)
    involved = errors.sum(axis=1) + errors.sum(axis=0)
    order = sorted(range(len(names)), key=lambda i: (-involved[i], i))
    ranked = [names[i] for i in order]
    return ranked if top is None else ranked[: int(top)]


def confused_pairs_table(labels: Sequence[Any], matrix: Any, top: int = 10) -> pd.DataFrame:
    """The ``top`` most frequent (true, predicted) confusions, off-diagonal and non-zero.

    Columns: true, pred, count, share (of the true class's samples).
    """
    names, counts = confusion_array(labels, matrix)
    totals = counts.sum(axis=1)
    rows = [
        {"true": names[i], "pred": names[j], "count": int(counts[i, j]),
         "share": float(counts[i, j] / totals[i]) if totals[i] > 0 else 0.0}
        for i in range(len(names)) for j in range(len(names))
        if i != j and counts[i, j] > 0
    ]
    table = pd.DataFrame(rows, columns=["true", "pred", "count", "share"])
    if len(table):
        table = table.sort_values(["count", "share", "true", "pred"], ascending=[False, False, True, True], kind="stable")
    return table.head(int(top)).reset_index(drop=True)


def lowest_classes(per_class_dict: Mapping[str, Mapping[str, Any]], metric: str = "f1",
                   top: int | None = None) -> list[str]:
    """Classes by ``metric`` from metrics.json ``per_class``, lowest first (ties keep the class order)."""
    names = [str(c) for c in per_class_dict]
    values = [float((v or {}).get(metric, float("nan"))) for v in per_class_dict.values()]
    order = sorted(range(len(names)), key=lambda i: (np.nan_to_num(values[i], nan=np.inf), i))
    ranked = [names[i] for i in order]
    return ranked if top is None else ranked[: int(top)]


# --------------------------------------------------------------------------- modality shares


def share_table_display(share_table: pd.DataFrame, modalities: Sequence[str]) -> pd.DataFrame:
    """The reference's per-class MM-SHAP table as a page shows it, from
    :func:`core.explain.class_share_table`: one row per class (index ``Class``), columns
    (subset, ``n``) and (subset, modality) for all / correct / incorrect predictions, shares
    in percent with their 95 % interval over the class's samples where the table has one (``53.2% [48%, 58%]``;
    a mean of one sample has none) and ``/`` where a class has no such prediction (as in the reference)."""
    parts = []
    nan = np.full(len(share_table), np.nan)
    for subset in SUBSETS:
        label = SUBSET_LABELS[subset]
        part = pd.DataFrame({(label, "n"): share_table[f"n_{subset}"].astype(int).to_numpy()},
                            index=share_table["class"].astype(str).to_numpy())
        for m in modalities:
            col = f"share_{m}_{subset}"
            values = share_table[col].to_numpy(dtype=float)
            low = share_table[f"{col}_low"].to_numpy(dtype=float) if f"{col}_low" in share_table else nan
            high = share_table[f"{col}_high"].to_numpy(dtype=float) if f"{col}_high" in share_table else nan
            part[(label, pretty_modality(m))] = [share_text(v, lo, hi, empty="/")
                                                 for v, lo, hi in zip(values, low, high)]
        parts.append(part)
    wide = pd.concat(parts, axis=1)
    wide.columns = pd.MultiIndex.from_tuples(wide.columns)
    wide.index.name = "Class"
    return wide


def interaction_table_display(interaction_table: pd.DataFrame, modalities: Sequence[str]) -> pd.DataFrame:
    """:func:`core.explain.class_interaction_table` as a page shows it: one row per class (index
    ``Class``), columns (subset, pair) holding ``mean [low, high] (n)``, ``/`` where no sample
    has an interaction (as in the share table), the mean alone where one sample gives no interval."""
    pairs = interaction_columns(modalities)
    wide = pd.DataFrame(index=interaction_table["class"].astype(str).to_numpy())
    for subset in SUBSETS:
        for (a, b), c in pairs.items():
            cells = [interval_text(mean, low, high, n, digits=3, empty="/") for mean, low, high, n in zip(
                interaction_table[f"{c}_{subset}"], interaction_table[f"{c}_{subset}_low"],
                interaction_table[f"{c}_{subset}_high"], interaction_table[f"{c}_{subset}_n"])]
            wide[(SUBSET_LABELS[subset], f"{pretty_modality(a)} \u00d7 {pretty_modality(b)}")] = cells
    wide.columns = pd.MultiIndex.from_tuples(wide.columns) if len(wide.columns) else wide.columns
    wide.index.name = "Class"
    return wide

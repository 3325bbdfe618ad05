"""The self-contained HTML report of a run: one file a sponsor can keep, readable offline.

:func:`write_report` (``fusionlens report <experiment> [--run NAME] [--output PATH]``, and the
Overview's "Download report (HTML)") writes what :func:`render_report` draws: a header (the
experiment, the run, the date, the FusionLens version and the data it came from), then the
sections of :data:`SECTIONS` in order (the story, the results table, modality shares per
class and correct vs incorrect, the confusion matrix, the slices with the most errors, which
modality misled the model, sample cards with clips playing), each a small function
of :class:`ReportData` returning HTML (add one with :func:`report_section`; :func:`esc`,
:func:`figure_html` and :func:`table_html` draw its parts).

One file, no server, no network: plotly.js is inlined once, every figure is drawn by it
(the same :mod:`ui.figures` builders as the pages), pictures are base64 PNGs, and nothing
refers to a URL (no CDN, web font or MathJax). Every text from data is escaped. A print
layout (``@media print``) puts each section on a new A4 page, hides the buttons and redraws
the figures at the paper's width. Plain package: no streamlit. See ``docs/REPORT.md``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

from core.errors import ConfigError
from core.io import atomic_path
from ui.report._data import REPORT_STEPS, Card, ReportData, collect
from ui.report._page import FIGURE_CLASS, esc, figure_html, page_html, table_html
from ui.report._sections import SECTIONS, Section, get_section, report_section
from ui.report._failures import blame_section, slices_section  # registers them after the confusion matrix

__all__ = [
    "FIGURE_CLASS",
    "SECTIONS",
    "Card",
    "ReportData",
    "Section",
    "collect",
    "default_output",
    "esc",
    "figure_html",
    "get_section",
    "render_report",
    "report_section",
    "table_html",
    "write_report",
]

Progress = Callable[[int, int, str], None]


def _progress(progress: bool | Progress | None, desc: str) -> tuple[Progress | None, Callable[[], None]]:
    """``progress``: True (a tqdm bar), False/None (silent) or a callable ``(done, total, label)``."""
    if progress is None or progress is False:
        return None, lambda: None
    if callable(progress):
        return progress, lambda: None
    if progress is not True:
        raise ConfigError(f"progress={progress!r} is not understood",
                          fix="pass True (progress bar), False, or a callable(done, total, label)")
    from tqdm.auto import tqdm

    bar = tqdm(total=1, desc=desc, leave=False)

    def update(done: int, total: int, label: str) -> None:
        bar.total = total
        bar.set_postfix_str(label, refresh=False)
        bar.update(done - bar.n)

    return update, bar.close


def _header(data: ReportData) -> str:
    run, info = data.run, data.info
    cfg = run.config
    encoders = ", ".join(f"{m}: {(cfg.get('encoders') or {}).get(m, {}).get('name', '?')}" for m in run.modalities)
    prep = info.get("preparation") if isinstance(info.get("preparation"), dict) else {}
    splits = prep.get("splits") if isinstance(prep.get("splits"), dict) else {}
    source = info.get("manifest") or info.get("root") or info.get("source") or "unknown"
    data_line = f"{source}" + (f" (fingerprint {info['fingerprint']})" if info.get("fingerprint") else "")
    counts = ", ".join(f"{k} {v:,}" for k, v in splits.items() if isinstance(v, int))
    rows = [
        ("Experiment", data.experiment),
        ("Run", f"{run.name}: {cfg.get('strategy', '')} fusion, {cfg.get('fusion', '')}, "
                f"{'+'.join(run.modalities)}"),
        ("Encoders", encoders),
        ("Test split", f"{len(run.predictions):,} samples, {len(run.classes)} classes"),
        ("Data", data_line),
        ("Samples", counts or "unknown"),
        ("Runs directory", str(Path(data.root).resolve())),
        ("Created", data.created.strftime("%Y-%m-%d %H:%M UTC")),
        ("FusionLens", data.version),
    ]
    if data.dataset_problem:
        rows.append(("Dataset", f"cannot be read: {data.dataset_problem}"))
    meta = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in rows)
    return ('<header class="report"><button class="print no-print" type="button" onclick="flPrint()">'
            f"Print / save as PDF</button><h1>FusionLens report: {esc(data.experiment)}</h1>"
            f'<dl class="meta">{meta}</dl></header>')


def _render(data: ReportData, sections: Sequence[Section] | None) -> str:
    from plotly.offline import get_plotlyjs

    chosen = list(SECTIONS if sections is None else sections)
    body = [f'<section id="{esc(s.key)}"><h2>{esc(s.title)}</h2>{s.render(data)}</section>' for s in chosen]
    return page_html(f"FusionLens report: {data.experiment} / {data.run.name}", _header(data),
                     [(s.key, s.title) for s in chosen], body, plotly_js=get_plotlyjs())


def _collect_and_render(root: str | Path, experiment: str, run: str | None, sections: Sequence[Section] | None,
                        progress: bool | Progress | None) -> tuple[ReportData, str]:
    update, close = _progress(progress, "report")
    try:
        data = collect(root, experiment, run, progress=update)
        document = _render(data, sections)
        if update is not None:
            update(REPORT_STEPS, REPORT_STEPS, "drawn")
        return data, document
    finally:
        close()


def render_report(root: str | Path, experiment: str, run: str | None = None, *,
                  sections: Sequence[Section] | None = None, progress: bool | Progress | None = None) -> str:
    """The report of ``run`` (default: the best run over every modality) of an experiment of the runs
    root ``root``, as one self-contained HTML document (see the module's docstring).

    ``sections``: default :data:`SECTIONS`; ``progress``: True (a tqdm bar), False/None, or a
    callable ``(done, total, label)``."""
    return _collect_and_render(root, experiment, run, sections, progress)[1]


def default_output(root: str | Path, experiment: str, run: str) -> Path:
    """Where a report is written by default: ``<runs root>/<experiment>/reports/<run>.html``."""
    return Path(root) / experiment / "reports" / f"{run}.html"


def write_report(root: str | Path, experiment: str, run: str | None = None, output: str | Path | None = None,
                 progress: bool | Progress | None = None) -> Path:
    """Write the report of :func:`render_report` atomically to ``output`` (default
    :func:`default_output`; an existing folder gets ``<experiment>-<run>.html``); returns the path."""
    data, document = _collect_and_render(root, experiment, run, None, progress)
    if output is None:
        path = default_output(root, experiment, data.run.name)
    else:
        path = Path(output)
        if path.is_dir():
            path = path / f"{experiment}-{data.run.name}.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        Path(tmp).write_text(document, encoding="utf-8")
    return path

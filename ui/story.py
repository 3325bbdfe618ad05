"""The experiment's story in the reference's terms, for the Overview and the HTML report.

Four questions, each answered by one or two sentences that name the dashboard page
proving them:

- which run is best among the runs that use every modality of the experiment (ties
  broken by :func:`core.ranking.run_rank_key`), and the best run overall when it is
  another one (a text-only run tied at top-1, say);
- what fusion gains over the best single-modality run: the difference in top-1, in
  points, with its paired bootstrap 95 % interval over the test samples both runs
  predicted (:func:`core.metrics.paired_accuracy_difference`); "no clear gain" when
  the interval includes 0;
- which fusion method wins over every modality, the methods ranked by their best run,
  and whether the winner's lead over the runner-up is more than noise;
- which modality matters most: the mean MM-SHAP share of each modality over the best
  run's explained test samples, with its Student-t 95 % interval and n, and the same
  for its correct and its wrong predictions; "not explained yet" with the command
  when nothing is stored.

:func:`make_story` is pure (a results table and two callables that give a run's
predictions and stored shares); :func:`load_story` reads them from a runs root.
Plain module: no streamlit.
"""
from __future__ import annotations

import html
import math
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import pandas as pd

from core.bundle import load_run
from core.catalog import safe_join
from core.errors import FusionLensError
from core.explain import flat_mask
from core.metrics import mean_interval, paired_accuracy_difference
from core.ranking import best_run, full_runs, run_modalities, run_rank_key
from core.results import results_table
from ui.commands import build_commands
from ui.labels import pretty_modality
from ui.precomputed import explanation_summaries
from ui.queries import dataset_info, explained_runs, share_frame

__all__ = [
    "FEW_SAMPLES",
    "PAGE_TITLES",
    "RunPick",
    "Comparison",
    "ModalityShare",
    "ShareSummary",
    "Sentence",
    "Story",
    "make_story",
    "load_story",
]

#: Below this many samples a mean share is called a rough estimate.
FEW_SAMPLES = 30
#: The dashboard pages a sentence can point to (their titles in ``ui.context.PAGES``, checked by a test).
PAGE_TITLES: dict[str, str] = {
    "overview": "Overview",
    "compare": "Compare fusion methods",
    "contributions": "Modality contributions",
    "explorer": "Sample explorer",
    "misclassifications": "Misclassifications",
}

PredictionsOf = Callable[[str], "pd.DataFrame | None"]
SharesOf = Callable[[str], "pd.DataFrame | None"]


# --------------------------------------------------------------------------- the pieces


@dataclass(frozen=True)
class RunPick:
    """One run of the results table, as the story names it."""

    run: str
    top1: float
    fusion: str
    strategy: str
    modalities: tuple[str, ...]

    @property
    def method(self) -> str:
        """The fusion method as the story names it: the method, and the run when its name says more
        (``multconcat (multconcat-mdrop-image+title)``)."""
        plain = f"{self.fusion}-{'+'.join(self.modalities)}"
        return self.fusion if self.run in (plain, self.fusion) else f"{self.fusion} ({self.run})"

    @classmethod
    def from_row(cls, row: pd.Series) -> "RunPick":
        return cls(run=str(row["run"]), top1=float(row["top1"]), fusion=str(row.get("fusion", "")),
                   strategy=str(row.get("strategy", "")),
                   modalities=tuple(m for m in str(row.get("modalities", "")).split("+") if m))


@dataclass(frozen=True)
class Comparison:
    """Top-1 of ``first`` minus top-1 of ``second``, on the test samples both predicted.

    ``difference``, ``low`` and ``high`` are fractions (0.004 = 0.4 points); the interval is
    the paired bootstrap's (NaN when the predictions could not be read, ``n`` 0).
    """

    first: RunPick
    second: RunPick
    difference: float
    low: float
    high: float
    n: int
    p_value: float
    method: str = "paired bootstrap"
    level: float = 0.95

    @property
    def known(self) -> bool:
        """Whether the interval is known (both runs' predictions were read and share samples)."""
        return self.n > 0 and math.isfinite(self.low) and math.isfinite(self.high)

    @property
    def clear(self) -> bool:
        """Whether the interval excludes 0: a difference the test split can tell from noise."""
        return self.known and (self.low > 0 or self.high < 0)


@dataclass(frozen=True)
class ModalityShare:
    """One modality's mean MM-SHAP share over explained samples: all, correct and wrong ones."""

    modality: str
    mean: float
    low: float
    high: float
    n: int
    mean_correct: float
    low_correct: float
    high_correct: float
    n_correct: int
    mean_incorrect: float
    low_incorrect: float
    high_incorrect: float
    n_incorrect: int


@dataclass(frozen=True)
class ShareSummary:
    """The mean shares of a run's explained samples, the modality with the largest share first."""

    run: str
    shares: tuple[ModalityShare, ...]
    n_explained: int
    n_flat: int
    n_test: int

    @property
    def top(self) -> ModalityShare:
        return self.shares[0]


@dataclass(frozen=True)
class Sentence:
    """One sentence of the story and the dashboard page that proves it (a key of :data:`PAGE_TITLES`).

    ``parts`` are ``(style, text)`` pairs: ``text`` plain words, ``name`` a run name,
    ``strong`` the number the sentence is about, ``code`` a shell command. Every renderer
    escapes the text (names and classes come from user data).
    """

    key: str
    page: str
    parts: tuple[tuple[str, str], ...]
    #: the run the proving page should show (None: the page's own choice)
    run: str | None = None

    @property
    def text(self) -> str:
        return "".join(text for _, text in self.parts)

    @property
    def page_title(self) -> str:
        return PAGE_TITLES.get(self.page, self.page)

    def markdown(self) -> str:
        """Streamlit markdown: names and commands as code, numbers in bold, the rest escaped."""
        out = []
        for style, text in self.parts:
            if style in ("name", "code"):
                out.append(f"`{text.replace('`', '')}`")
            elif style == "strong":  # spaces stay outside the markers, or markdown shows the asterisks
                core = text.strip()
                lead, tail = text[:len(text) - len(text.lstrip())], text[len(text.rstrip()):]
                out.append(f"{lead}**{_md_escape(core)}**{tail}" if core else text)
            else:
                out.append(_md_escape(text))
        return "".join(out)

    def html(self) -> str:
        """HTML: every text escaped, names and commands in ``<code>``, numbers in ``<strong>``."""
        out = []
        for style, text in self.parts:
            escaped = html.escape(text, quote=True)
            out.append(f"<code>{escaped}</code>" if style in ("name", "code")
                       else f"<strong>{escaped}</strong>" if style == "strong" else escaped)
        return "".join(out)


def _md_escape(text: str) -> str:
    # markdown and Streamlit's own syntax ($ starts LaTeX, : starts an emoji or a colour)
    return re.sub(r"([\\`*_\[\]<>#|$~:])", r"\\\1", text)


@dataclass(frozen=True)
class Story:
    """What the Overview's headline says about an experiment.

    ``state``: ``no-runs`` (no usable run), ``no-full-run`` (no run uses every modality;
    ``best`` is then the best run overall) or ``ready``.
    """

    modalities: tuple[str, ...]
    state: str
    best: RunPick | None = None
    best_overall: RunPick | None = None
    overall_vs_best: Comparison | None = None
    singles: dict[str, RunPick] = field(default_factory=dict)
    gain: Comparison | None = None
    fusion_ranking: tuple[RunPick, ...] = ()
    runner_up: Comparison | None = None
    shares: ShareSummary | None = None
    shares_problem: str | None = None
    explain_command: str | None = None
    sentences: tuple[Sentence, ...] = ()


# --------------------------------------------------------------------------- numbers


def _percent(value: float, digits: int = 1) -> str:
    return f"{100 * value:.{digits}f} %"


def _points(value: float) -> str:
    return f"{100 * abs(value):.1f} points"


def _signed_points(value: float) -> str:
    return f"{100 * value:+.1f}".replace("-", "\u2212")


def _interval(c: Comparison) -> str:
    return (f"{int(round(100 * c.level))} % CI {_signed_points(c.low)} to {_signed_points(c.high)} points, "
            f"{c.method} over {c.n:,} test samples")


def _share_interval(mean: float, low: float, high: float, n: int) -> str:
    if n >= 2 and math.isfinite(low) and math.isfinite(high):
        return f"95 % CI {100 * low:.0f}\u2013{100 * high:.0f} %, n = {n:,}"
    return f"n = {n:,}, no interval"


def _rank(frame: pd.DataFrame, explained: set[str]) -> pd.DataFrame:
    """Rows sorted best first by :func:`core.ranking.run_rank_key`."""
    if frame.empty:
        return frame
    n_mods = run_modalities(frame).map(len)
    keys = [run_rank_key(str(r), t, int(k), str(r) in explained)
            for r, t, k in zip(frame["run"], frame["top1"], n_mods)]
    order = sorted(range(len(frame)), key=lambda i: keys[i])
    return frame.iloc[order]


def _compare(first: RunPick, second: RunPick, predictions: PredictionsOf | None, *, seed: int,
             n_boot: int) -> Comparison:
    """``first`` vs ``second`` paired on the samples both predicted; NaN interval when unreadable."""
    a = b = None
    if predictions is not None:
        try:
            a, b = predictions(first.run), predictions(second.run)
        except FusionLensError:
            a = b = None
    if a is None or b is None or not {"id", "correct"} <= set(a.columns) or not {"id", "correct"} <= set(b.columns):
        return Comparison(first, second, first.top1 - second.top1, math.nan, math.nan, 0, math.nan)
    pair = (a[["id", "correct"]].assign(id=lambda f: f["id"].astype(str)).drop_duplicates("id")
            .merge(b[["id", "correct"]].assign(id=lambda f: f["id"].astype(str)).drop_duplicates("id"),
                   on="id", suffixes=("_a", "_b")))
    test = paired_accuracy_difference(pair["correct_a"].astype(bool), pair["correct_b"].astype(bool),
                                      seed=seed, n_boot=n_boot)
    diff = test["difference"] if test["n"] else first.top1 - second.top1
    return Comparison(first, second, float(diff), test["low"], test["high"], test["n"], test["p_value"],
                      test["method"], test["level"])


def _share_summary(run: RunPick, shares: pd.DataFrame, preds: pd.DataFrame | None) -> ShareSummary | None:
    """Mean shares of ``run``'s explained samples (flat predictions left out), with correctness
    from its predictions."""
    if shares is None or shares.empty:
        return None
    rows = shares.copy()
    rows["id"] = rows["id"].astype(str)
    if preds is not None and {"id", "correct"} <= set(preds.columns):
        rows = rows.merge(preds[["id", "correct"]].assign(id=lambda f: f["id"].astype(str)).drop_duplicates("id"),
                          on="id", how="inner")
    if rows.empty:
        return None
    flat = np.asarray(flat_mask(rows), dtype=bool)
    kept = rows[~flat]
    correct = kept["correct"].astype(bool).to_numpy() if "correct" in kept.columns else None
    out = []
    for m in run.modalities:
        col = f"share_{m}"
        values = pd.to_numeric(kept[col], errors="coerce").to_numpy(dtype=float) if col in kept.columns \
            else np.full(len(kept), np.nan)
        mean, low, high, n = mean_interval(values)
        if correct is not None:
            mc, lc, hc, nc = mean_interval(values[correct])
            mi, li, hi, ni = mean_interval(values[~correct])
        else:
            mc = lc = hc = mi = li = hi = math.nan
            nc = ni = 0
        out.append(ModalityShare(m, mean, low, high, n, mc, lc, hc, nc, mi, li, hi, ni))
    if not any(s.n for s in out):
        return None
    out.sort(key=lambda s: -s.mean if math.isfinite(s.mean) else math.inf)
    n_test = int(len(preds)) if preds is not None else int(len(rows))
    return ShareSummary(run.run, tuple(out), int((~flat).sum()), int(flat.sum()), n_test)


# --------------------------------------------------------------------------- sentences


def _best_sentences(story: Story) -> list[Sentence]:
    best, overall = story.best, story.best_overall
    out: list[Sentence] = []
    if best is None:
        return out
    mods = ", ".join(pretty_modality(m) for m in story.modalities)
    if story.state == "no-full-run":
        out.append(Sentence("best", "compare", (
            ("text", f"No run uses every modality ({mods}) yet; the best run is "), ("name", best.run),
            ("text", f" ({'+'.join(best.modalities)}, {best.fusion}) at "), ("strong", f"{_percent(best.top1)} top-1"),
            ("text", ". Build the fusion runs to compare them."))))
        return out
    method = "one modality" if len(story.modalities) == 1 else f"{best.fusion} fusion ({best.strategy})"
    out.append(Sentence("best", "compare", (
        ("text", f"Best run over every modality ({mods}): "), ("name", best.run), ("text", f", {method}, "),
        ("strong", f"{_percent(best.top1)} top-1"), ("text", "."))))
    c = story.overall_vs_best
    if overall is not None and overall.run != best.run and c is not None:
        parts: list[tuple[str, str]] = [("text", "The best run overall, "), ("name", overall.run),
                                        ("text", f" ({'+'.join(overall.modalities)}), reaches "),
                                        ("strong", _percent(overall.top1))]
        if abs(c.difference) < 5e-10:
            parts.append(("text", ", a tie on top-1"))
        else:
            parts.append(("text", f", {_points(c.difference)} {'higher' if c.difference > 0 else 'lower'}"))
        if c.known:
            parts.append(("text", f" ({_interval(c)}" + ("" if c.clear else "; within noise") + ")"))
        parts.append(("text", "."))
        out.append(Sentence("overall", "compare", tuple(parts)))
    return out


def _gain_sentence(story: Story) -> Sentence | None:
    best = story.best
    if best is None or story.state != "ready" or len(story.modalities) < 2:
        return None
    c = story.gain
    if c is None:
        return Sentence("gain", "compare", (
            ("text", "What fusion gains over one modality is unknown: no single-modality run of this experiment "
                     "is built."),))
    single = c.second
    alone = f"{pretty_modality(single.modalities[0]) if single.modalities else single.run} alone"
    ref: list[tuple[str, str]] = [("text", " ("), ("name", single.run), ("text", f", {_percent(single.top1)}")]
    ref += [("text", f"; {_interval(c)})")] if c.known else [("text", "; no interval: the predictions of the two "
                                                                       "runs could not be paired)")]
    head: list[tuple[str, str]] = [("text", f"Fusion ({best.fusion}, "), ("name", best.run), ("text", ") reaches ")]
    if c.known and not c.clear:
        parts = [("strong", "No clear gain from fusion:"), ("text", f" {best.fusion} ("), ("name", best.run),
                 ("text", ") reaches "), ("strong", _percent(best.top1)),
                 ("text", f" top-1, {_points(c.difference)} {'over' if c.difference >= 0 else 'below'} {alone}"),
                 *ref, ("text", ", and the interval includes 0.")]
    elif c.difference >= 0:
        parts = [*head, ("strong", _percent(best.top1)), ("text", " top-1, "),
                 ("strong", _points(c.difference)), ("text", f" over {alone}"), *ref, ("text", ".")]
    else:
        parts = [*head, ("strong", _percent(best.top1)), ("text", " top-1, "),
                 ("strong", _points(c.difference)), ("text", f" below {alone}: fusion loses here"), *ref,
                 ("text", ".")]
    return Sentence("gain", "compare", tuple(parts))


def _fusion_sentence(story: Story) -> Sentence | None:
    ranking = story.fusion_ranking
    if story.state != "ready" or len(story.modalities) < 2 or not ranking:
        return None
    win = ranking[0]
    if len(ranking) == 1:
        return Sentence("fusion", "compare", (
            ("text", "Only one fusion method uses every modality: "), ("strong", win.method),
            ("text", f" ({win.strategy}, {_percent(win.top1)} top-1)."),))
    c = story.runner_up
    tied = c is not None and abs(win.top1 - c.second.top1) < 5e-10
    rest = ranking[2:4] if tied else ranking[1:3]
    then = f"; then {', '.join(f'{r.method} {_percent(r.top1)}' for r in rest)}" if rest else ""
    parts: list[tuple[str, str]] = [
        ("text", "Fusion method: "), ("strong", win.method),
        ("text", f" ({win.strategy}) " + ("ranks first" if tied else "wins") + " over every modality with "
                 f"{_percent(win.top1)}" + (f", tied on top-1 with {c.second.method}, which the tie rule puts second"
                                            if tied else "")
                 + f"{then} ({len(ranking)} methods, each by its best run)")]
    if tied:
        parts.append(("text", "."))
    elif c is not None and c.known:
        lead = f"{_points(c.difference)} ahead of {c.second.method}"
        parts.append(("text", f"; its lead ({lead}, {_interval(c)}) is "
                              + ("clear" if c.clear else "within noise") + "."))
    else:
        parts.append(("text", "."))
    return Sentence("fusion", "compare", tuple(parts))


def _share_sentences(story: Story) -> list[Sentence]:
    best = story.best
    if best is None or story.state != "ready" or len(story.modalities) < 2:
        return []
    if story.shares_problem is not None:
        return [Sentence("modality", "contributions", (
            ("text", "Which modality matters most is unknown: the stored explanations of "), ("name", best.run),
            ("text", f" cannot be read ({story.shares_problem}).")), run=best.run)]
    s = story.shares
    if s is None:
        parts: list[tuple[str, str]] = [("text", "Which modality matters most: "), ("strong", "not explained yet"),
                                        ("text", " for "), ("name", best.run)]
        if story.explain_command:
            parts += [("text", ". Compute it with "), ("code", story.explain_command)]
        parts.append(("text", "."))
        return [Sentence("modality", "contributions", tuple(parts), run=best.run)]
    top = s.top
    rest = ", ".join(f"{pretty_modality(m.modality)} {100 * m.mean:.0f} %" for m in s.shares[1:]
                     if math.isfinite(m.mean))
    parts = [("text", f"{pretty_modality(top.modality)} drives "), ("strong", f"{100 * top.mean:.0f} %"),
             ("text", f" of the prediction on average ({_share_interval(top.mean, top.low, top.high, top.n)} "
                      f"explained test samples of {s.n_test:,}, MM-SHAP shares of "), ("name", s.run),
             ("text", ")" + (f", then {rest}" if rest else ""))]
    if top.n < FEW_SAMPLES:
        parts.append(("text", f"; only {top.n} samples, a rough estimate"))
    if s.n_flat:
        parts.append(("text", f"; {s.n_flat} prediction(s) that barely depend on their inputs have no share and "
                              "are left out"))
    parts.append(("text", "."))
    out = [Sentence("modality", "contributions", tuple(parts), run=best.run)]
    if top.n_incorrect and top.n_correct:
        name = pretty_modality(top.modality)
        wrong = f"{100 * top.mean_incorrect:.0f} %"
        right = f"{100 * top.mean_correct:.0f} %"
        out.append(Sentence("errors", "misclassifications", run=best.run, parts=(
            ("text", f"In wrong predictions {name}'s share is "), ("strong", wrong),
            ("text", f" ({_share_interval(top.mean_incorrect, top.low_incorrect, top.high_incorrect, top.n_incorrect)})"
                     f" against {right} in correct ones "
                     f"({_share_interval(top.mean_correct, top.low_correct, top.high_correct, top.n_correct)})"
                     + ("; few wrong predictions are explained, so this is a rough comparison"
                        if top.n_incorrect < FEW_SAMPLES else "") + "."))))
    elif top.n_correct and not top.n_incorrect:
        out.append(Sentence("errors", "misclassifications", run=best.run, parts=(
            ("text", "None of the explained predictions is wrong, so the shares of right and wrong predictions "
                     "cannot be compared yet."),)))
    return out


# --------------------------------------------------------------------------- the story


def make_story(results: pd.DataFrame | None, modalities: Sequence[str] | None = None, *,
               explained: Iterable[str] = (), predictions: PredictionsOf | None = None,
               shares: SharesOf | None = None, explain_command: Callable[[str], str] | str | None = None,
               seed: int = 0, n_boot: int = 10_000) -> Story:
    """The story of an experiment from its results table (:func:`core.results.results_table`).

    Args:
        modalities: every modality of the experiment (default: every modality a run uses).
        explained: runs with stored explanations (a tie on top-1 goes to them).
        predictions: a run's ``predictions.parquet`` frame (``id``, ``correct``...) by name, or
            None when unreadable; the intervals of differences are paired on it.
        shares: a run's stored per-sample shares (:func:`ui.queries.share_frame`, keyed by ``id``),
            or None when nothing is stored; a damaged store raises a FusionLensError, which the
            story reports.
        explain_command: the command that explains a run (a callable of the run name, or a string).
    """
    if (results is None or results.empty or "top1" not in results.columns
            or not pd.to_numeric(results["top1"], errors="coerce").notna().any()):
        return Story(modalities=tuple(modalities or ()), state="no-runs")
    results = results[pd.to_numeric(results["top1"], errors="coerce").notna()]
    explained = {str(r) for r in explained}
    mods = tuple(modalities) if modalities else tuple(dict.fromkeys(m for ms in run_modalities(results) for m in ms))
    picks = {str(r["run"]): RunPick.from_row(r) for _, r in results.iterrows()}
    overall = picks[best_run(results, explained=explained)]
    full = _rank(full_runs(results, mods), explained)
    if full.empty:
        story = Story(modalities=mods, state="no-full-run", best=overall, best_overall=overall)
        return _with_sentences(story)
    best = picks[str(full.iloc[0]["run"])]
    kw = {"seed": seed, "n_boot": n_boot}
    overall_vs_best = _compare(overall, best, predictions, **kw) if overall.run != best.run else None
    # the best single-modality run of each modality
    singles: dict[str, RunPick] = {}
    ranked = _rank(results, explained)
    for _, row in ranked.iterrows():
        pick = picks[str(row["run"])]
        if len(pick.modalities) == 1 and pick.modalities[0] not in singles:
            singles[pick.modalities[0]] = pick
    gain = None
    if singles and len(mods) > 1:
        best_single = min(singles.values(), key=lambda p: run_rank_key(p.run, p.top1, 1, p.run in explained))
        gain = _compare(best, best_single, predictions, **kw)
    # fusion methods over every modality, each by its best run
    fused = full[full["strategy"].astype(str) != "unimodal"] if "strategy" in full.columns else full
    ranking = tuple(picks[str(r)] for r in fused.drop_duplicates("fusion", keep="first")["run"]) \
        if "fusion" in fused.columns else ()
    runner_up = _compare(ranking[0], ranking[1], predictions, **kw) if len(ranking) > 1 else None
    # which modality matters most, over the best run's explained samples
    summary, problem = None, None
    if shares is not None and len(mods) > 1:
        try:
            frame = shares(best.run)
            preds = predictions(best.run) if predictions is not None else None
            summary = _share_summary(best, frame, preds) if frame is not None else None
        except FusionLensError as exc:
            problem = f"{exc.problem}" + (f"; fix: {exc.fix}" if exc.fix else "")
    command = explain_command(best.run) if callable(explain_command) else explain_command
    story = Story(modalities=mods, state="ready", best=best, best_overall=overall, overall_vs_best=overall_vs_best,
                  singles=singles, gain=gain, fusion_ranking=ranking, runner_up=runner_up, shares=summary,
                  shares_problem=problem, explain_command=command)
    return _with_sentences(story)


def _with_sentences(story: Story) -> Story:
    sentences = [*_best_sentences(story), _gain_sentence(story), _fusion_sentence(story), *_share_sentences(story)]
    return replace(story, sentences=tuple(s for s in sentences if s is not None))


def load_story(root: str | Path, experiment: str, *, seed: int = 0, n_boot: int = 10_000) -> Story:
    """:func:`make_story` of an experiment of the runs root ``root``, read from its files (each
    run's predictions read once; the stored explanations of the best run only)."""
    root = Path(root)
    exp_dir = safe_join(root, experiment)
    results, _ = results_table(exp_dir, root)
    info = dataset_info(root, experiment) or {}
    mods = list(info.get("modalities") or {}) or None
    loaded: dict[str, Any] = {}

    def run_of(name: str) -> Any:
        if name not in loaded:
            loaded[name] = load_run(exp_dir / name)
        return loaded[name]

    def predictions(name: str) -> pd.DataFrame | None:
        return run_of(name).predictions

    def shares(name: str) -> pd.DataFrame | None:
        frame = explanation_summaries(exp_dir / name)
        return None if frame is None else share_frame(frame, run_of(name).modalities)

    return make_story(results, mods, explained=explained_runs(root, experiment, results["run"].tolist()),
                      predictions=predictions, shares=shares, seed=seed, n_boot=n_boot,
                      explain_command=lambda run: build_commands(experiment, run, root=root)["explain"])

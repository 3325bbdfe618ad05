"""The Trust panel (Modality contributions): whether a run's shares deserve belief.

It shows ``<run>/trust.json`` (written by ``fusionlens check``, ``docs/TRUST.md``)
through the cached loader :func:`ui.loaders.trust_report`: each check as a pass /
warn / fail / skip badge with its one-sentence reason and the number of samples
it rests on, then the figures of :mod:`ui.figures.trust`. Without the file it
shows the command that computes it; a damaged file is an error naming the file
and the fix, and the rest of the page stays usable.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import streamlit as st

from core.trust import CHECKS
from ui import loaders as L
from ui.commands import build_commands
from ui.context import Context
from ui.figures.trust import (
    make_controlled_figure,
    make_randomisation_figure,
    make_reliance_difference_figure,
    make_reliance_figure,
)
from ui.labels import pretty_modality
from ui.widgets import show_error

__all__ = ["STATUS_BADGES", "trust_lines", "render_trust_panel"]

#: Streamlit markdown badge of each status (green pass, orange warn, red fail, grey skip).
STATUS_BADGES = {"pass": ":green-badge[pass]", "warn": ":orange-badge[warn]", "fail": ":red-badge[fail]",
                 "skip": ":gray-badge[skip]"}


def _escape(text: str) -> str:
    """``text`` for st.markdown: ``$``, ``*``, ``_``, ``[``, ``]`` and ``\\`` shown as written, except
    inside `code spans` (the commands a reason names), which markdown shows as written anyway."""
    parts = text.split("`")
    for i in range(0, len(parts), 2):  # the even parts lie outside code spans
        for char in "\\$*_[]":
            parts[i] = parts[i].replace(char, "\\" + char)
    return "`".join(parts)


def trust_lines(report: Mapping[str, Any]) -> list[str]:
    """One markdown line per check: status badge, title, the samples it rests on (n), the reason."""
    lines = []
    for name, title in CHECKS.items():
        check = report.get("checks", {}).get(name)
        if not isinstance(check, Mapping):
            continue
        n = check.get("n")
        badge = STATUS_BADGES.get(check.get("status"), str(check.get("status")))
        lines.append(f"{badge} **{title}**" + (f" (n = {n})" if n is not None else "")
                     + f": {_escape(str(check.get('reason', '')))}")
    return lines


def _estimator_lines(check: Mapping[str, Any]) -> list[str]:
    numbers = check.get("numbers") or {}
    if "coverage" not in numbers:
        return []
    ref = numbers.get("reference") or {}

    def fmt(value: Any, spec: str) -> str:
        return format(value, spec) if isinstance(value, (int, float)) else "n/a"

    return [f"- mean |share − reference share|: **{fmt(numbers.get('share_error_mean'), '.3f')}** "
            f"(max {fmt(numbers.get('share_error_max'), '.3f')})",
            f"- |phi − phi_ref| within 1.96 standard errors: **{fmt(numbers.get('coverage'), '.0%')}** of "
            f"{numbers.get('n_features')} values (ideal 95 %)",
            f"- median |phi| / stderr: {fmt(numbers.get('median_abs_phi_over_stderr'), '.1f')}; median rank "
            f"correlation with the reference: {fmt((numbers.get('map_rank') or {}).get('median'), '.2f')}",
            f"- reference: method {ref.get('method')}, {ref.get('n_permutations')} permutations"
            + (f", {ref.get('n_walks')} walks" if ref.get("n_walks") else "") + f", seed {ref.get('seed')}"]


def _details(report: Mapping[str, Any], run: Any, key: str) -> None:
    checks = report.get("checks", {})
    thresholds = report.get("thresholds") or {}
    st.plotly_chart(make_randomisation_figure(checks.get("randomisation"), thresholds), key=f"trust_rand_{key}")
    reliance = checks.get("reliance") or {}
    reported = list((reliance.get("numbers") or {}).get("modalities") or {})
    if reliance.get("status") != "skip" and len(reported) > 1:  # several modalities (sufficient sets): one tab each
        st.plotly_chart(make_reliance_difference_figure(reliance, run.modalities), key=f"trust_reldiff_{key}")
        for tab, m in zip(st.tabs([pretty_modality(m) for m in reported]), reported):
            with tab:
                st.plotly_chart(make_reliance_figure(reliance, modality=m), key=f"trust_rel_{key}_{m}")
    elif reliance.get("status") != "skip":
        st.plotly_chart(make_reliance_figure(reliance), key=f"trust_rel_{key}")
    controlled = checks.get("controlled") or {}
    if controlled.get("status") != "skip":
        st.plotly_chart(make_controlled_figure(controlled, run.modalities), key=f"trust_ctrl_{key}")
    lines = _estimator_lines(checks.get("estimator") or {})
    if lines:
        st.markdown("**Estimator error** (n = {})\n\n{}".format(checks["estimator"].get("n"), "\n".join(lines)))


def _stale(report: Mapping[str, Any], run: Any) -> bool:
    stored = report.get("run_fingerprint")
    return stored is not None and stored != run.config.get("fingerprint")


def render_trust_panel(ctx: Context, runs: Sequence[Any]) -> None:
    """The Trust panel for the shown runs (one block per run)."""
    st.markdown("### Trust checks")
    st.caption("Do these shares deserve belief? Model randomisation, designed reliance, a controlled variant, the "
               "estimator's own error and a summary of both meanings of share (docs/TRUST.md).")
    for run in runs:
        if len(runs) > 1:
            st.markdown(f"#### `{run.name}`")
        report, problem = L.trust_report(run)
        if problem is not None:
            show_error(problem, f"The trust checks of `{run.name}` cannot be read")
            continue
        command = build_commands(ctx.experiment, run.name, root=ctx.root)["check"]
        if report is None:
            st.info(f"**No trust checks yet** for `{run.name}`: compute them with (add `--controlled` for the "
                    "slower controlled-variant test)", icon=":material/info:")
            st.code(command, language="bash")
            continue
        if _stale(report, run):
            st.warning(f"These checks were computed for an earlier training of `{run.name}`: rerun `{command}`.",
                       icon=":material/history:")
        with st.container(border=True):
            for line in trust_lines(report):
                st.markdown(line)
        total = (report.get("timings") or {}).get("total")
        st.caption(f"Computed {report.get('computed_at', '?')} by `{report.get('command', command)}`"
                   + (f" in {total:.0f} s" if isinstance(total, (int, float)) else "") + ".")
        with st.expander("Trust check details", expanded=False):
            _details(report, run, run.name)

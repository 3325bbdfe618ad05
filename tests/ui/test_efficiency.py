"""The Efficiency page and the adaptive parts of the Sample explorer, and their figures."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

from core.adaptive import pareto_front  # noqa: E402
from tests._experiments import ADAPTIVE_RUN, COSTLY_RUN, FUSION_RUN, TINY_ADAPTIVE, built_experiment  # noqa: E402
from ui import figures as F  # noqa: E402

APP = str(Path(__file__).resolve().parents[2] / "app.py")


# --------------------------------------------------------------------------- figures

def _results() -> pd.DataFrame:
    return pd.DataFrame({"run": ["uni", "fused", "ada", "slow"], "strategy": ["unimodal", "intermediate", "adaptive",
                                                                            "intermediate"],
                         "modalities": ["rgb", "rgb+depth", "rgb+depth", "rgb+depth"],
                         "top1": [0.6, 0.9, 0.89, 0.85], "gflops": [1.0, 3.0, 1.5, 4.0]})


def test_pareto_front_and_its_figure():
    frame = _results()
    front = pareto_front(frame)
    assert front.tolist() == [True, True, True, False]  # "slow" costs more and scores less than "fused"
    fig = F.make_pareto_figure(frame, front, highlight=["ada"])
    assert fig.layout.xaxis.type == "log"
    assert fig.layout.xaxis.title.text and fig.layout.yaxis.title.text
    hover = " ".join(str(t.customdata.tolist()) for t in fig.data if t.customdata is not None)
    assert all(r in hover for r in frame["run"])  # run names on hover
    line = [t for t in fig.data if t.name == "Pareto front"][0]
    assert list(line.x) == [1.0, 1.5, 3.0]
    assert "No run" in F.make_pareto_figure(frame.iloc[:0]).layout.annotations[0].text


def test_decision_timeline_colours_used_and_skipped_segments():
    table = pd.DataFrame([[True, False, True], [False, False, True]], index=["rgb", "depth"], columns=[0, 1, 2])
    fig = F.make_decision_timeline_figure(table, always_on=["location"], spans=["a", "b", "c"])
    rows = {t.y[0]: t for t in fig.data}
    assert set(rows) == {"rgb", "depth", "location"}
    skipped = "#E5E7EB"
    assert [c == skipped for c in rows["rgb"].marker.color] == [False, True, False]
    assert [c == skipped for c in rows["depth"].marker.color] == [True, True, False]
    assert skipped not in rows["location"].marker.color  # always on: every segment runs
    assert len({rows[m].marker.color[2] for m in rows}) == 3  # one colour per modality
    assert fig.layout.xaxis.title.text and fig.layout.yaxis.title.text
    assert "No decisions" in F.make_decision_timeline_figure(pd.DataFrame()).layout.annotations[0].text


def test_selection_rate_figure_has_one_bar_trace_per_modality():
    rates = pd.DataFrame({"rgb": [0.5, 1.0, 0.75], "depth": [0.0, 0.25, 0.125], "n": [2, 2, 4]},
                         index=["A", "B", "all"])
    fig = F.make_selection_rate_figure(rates)
    assert [t.name for t in fig.data] == ["rgb", "depth"]
    assert list(fig.data[0].x) == ["A", "B", "all"] and fig.layout.yaxis.title.text


# --------------------------------------------------------------------------- pages

@pytest.fixture(scope="module")
def ada_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    with built_experiment(tmp_path_factory.mktemp("ada-ui"), TINY_ADAPTIVE) as (_, root):
        yield root


def _open(monkeypatch, root: Path, page: str, **query: str) -> AppTest:
    monkeypatch.setenv("FUSIONLENS_RUNS", str(root))
    at = AppTest.from_file(APP, default_timeout=90)
    for key, value in {"page": page, "exp": "tiny-ada", **query}.items():
        at.query_params[key] = value
    at.run()
    assert not at.exception, "\n".join(str(e.value) for e in at.exception)
    assert not at.error, "\n".join(str(e.value) for e in at.error)
    return at


def _titles(at: AppTest) -> list[str]:
    return [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in at.get("plotly_chart")]


def test_efficiency_page_with_an_adaptive_run(monkeypatch, ada_root):
    sample = str(pd.read_parquet(ada_root / "tiny-ada" / ADAPTIVE_RUN / "predictions.parquet")["id"].iloc[0])
    at = _open(monkeypatch, ada_root, "efficiency", run=ADAPTIVE_RUN, sample=sample)
    assert [t.value for t in at.title] == ["Efficiency"]
    titles = _titles(at)
    assert "Accuracy against compute" in titles and "How often each modality runs" in titles
    assert "What the policy ran, per segment" in titles
    table = next(d.value for d in at.dataframe if "method" in d.value.columns)
    assert {ADAPTIVE_RUN, COSTLY_RUN, FUSION_RUN} <= set(table["run"])


def test_efficiency_page_with_another_run_and_without_adaptive_runs(monkeypatch, ada_root, tmp_path):
    at = _open(monkeypatch, ada_root, "efficiency", run=FUSION_RUN)
    assert "Pick an adaptive run" in "\n".join(str(i.value) for i in at.info)
    bare = tmp_path / "runs"
    shutil.copytree(ada_root, bare)
    for name in (ADAPTIVE_RUN, COSTLY_RUN):
        shutil.rmtree(bare / "tiny-ada" / name)
    at = _open(monkeypatch, bare, "efficiency", run=FUSION_RUN)
    assert "No adaptive run in this experiment" in "\n".join(str(i.value) for i in at.info)
    assert "Accuracy against compute" in _titles(at)


def test_explorer_shows_the_decisions_of_an_adaptive_run(monkeypatch, ada_root):
    sample = str(pd.read_parquet(ada_root / "tiny-ada" / ADAPTIVE_RUN / "predictions.parquet")["id"].iloc[0])
    at = _open(monkeypatch, ada_root, "explorer", run=ADAPTIVE_RUN, sample=sample)
    assert "What the policy ran, per segment" in _titles(at)
    at = _open(monkeypatch, ada_root, "explorer", run=FUSION_RUN, sample=sample)
    assert "What the policy ran, per segment" not in _titles(at)

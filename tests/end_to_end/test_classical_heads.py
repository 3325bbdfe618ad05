"""Classical heads end to end: on the tiny experiment's unimodal runs, `[fusion] classical` heads train, appear in
the results table, reproduce their predictions from the bundle, are explained by the factorised MM-SHAP engine,
and a bundle whose arrays were tampered with is refused naming the array and the fix."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import torch

from core.bundle import load_run
from core.errors import BundleError
from core.experiment import load_experiment
from core.explain import explain_sample
from core.io import read_tensors, write_tensors
from core.model import ClassicalHead
from core.results import results_table
from core.train import reproduce_predictions, train_experiment
from tests._tolerance import f64_atol

RUNS = ["logreg-early-image+title+description", "svc-rbf-late-image+title",
        "svc-linear-intermediate-image+title+description"]


@pytest.fixture(scope="module")
def classical_built(tiny_built, tmp_path_factory):
    """(runs root, experiment) with three classical runs trained over a copy of the tiny unimodal runs."""
    exp_path, root = tiny_built
    folder = tmp_path_factory.mktemp("classical")
    runs = folder / "runs"
    shutil.copytree(root, runs)  # the unimodal runs are up to date there: only the classical heads train
    text = exp_path.read_text().replace('manifest = "data/manifest.csv"',
                                        f'manifest = {json.dumps(str(exp_path.parent / "data" / "manifest.csv"))}')
    text = text.replace("[fusion]\n", '[fusion]\nclassical = ["logreg-early", "svc-rbf-late", '
                                      '"svc-linear-intermediate"]\n')
    path = folder / "tiny.toml"
    path.write_text(text + "\n[train.classical]\ncomponents = 4\n")
    exp = load_experiment(path)
    before = {p.name: (p / "config.json").stat().st_mtime_ns for p in (runs / "tiny").glob("unimodal-*")}
    train_experiment(exp, runs, only=RUNS, progress=False)
    after = {p.name: (p / "config.json").stat().st_mtime_ns for p in (runs / "tiny").glob("unimodal-*")}
    assert before == after  # stage 1 was not redone
    return runs, exp


def test_classical_runs_are_in_the_results_table(classical_built):
    runs, _ = classical_built
    table, problems = results_table(runs / "tiny")
    assert not problems
    rows = table.set_index("run").loc[RUNS]
    assert set(rows["strategy"]) == {"classical"}
    assert list(rows["fusion"]) == ["logreg-early", "svc-rbf-late", "svc-linear-intermediate"]
    assert (rows["top1"] >= 0).all() and (rows["n_params"] > 0).all()


@pytest.mark.parametrize("name", RUNS)
def test_a_classical_bundle_rebuilds_its_head_and_reproduces_its_predictions(classical_built, name):
    runs, _ = classical_built
    run = load_run(runs / "tiny" / name)
    assert run.config["strategy"] == "classical" and run.config["train"]["components"] == 4
    head = run.model().head
    assert isinstance(head, ClassicalHead) and head.method == run.config["fusion"]
    if name.startswith("svc-linear-intermediate"):
        assert run.config["head"]["fitted"]["components"] == [4, 4, 4]
    check = reproduce_predictions(run.path)
    assert check["same_topk_labels"] and check["max_abs_prob_diff"] < 1e-5
    emb = run.embeddings()  # the test split's per-modality embeddings
    xs = [torch.from_numpy(emb[m]) for m in run.modalities]
    with torch.no_grad():
        feats = head.features(xs).double().numpy()
        predicted = run.model().forward_embeddings(xs).argmax(1).numpy()
    pipeline = head.to_sklearn()  # rebuilt from the bundle's arrays alone
    classes = np.asarray(head.estimator.fitted["classes"])
    np.testing.assert_array_equal(classes[pipeline.predict(feats)], predicted)
    assert list(run.classes[i] for i in predicted) == run.predictions["pred"].astype(str).tolist()


def test_mm_shap_explains_a_classical_run_with_the_factorised_engine(classical_built):
    runs, _ = classical_built
    run_dir = runs / "tiny" / "svc-rbf-late-image+title"
    sid = load_run(run_dir).predictions["id"].iloc[0]
    e = explain_sample(run_dir, sid, method="exact", grid=2, store=False)
    assert e.settings["engine"] == "factorised"
    assert set(e.modalities) == {"image", "title"}
    assert e.values.sum() == pytest.approx(e.full_value - e.base_value, abs=1e-4)
    assert sum(e.shares.values()) == pytest.approx(1.0, abs=f64_atol(1.0, len(e.shares)))


def test_tampered_arrays_are_refused_naming_the_array_and_the_fix(classical_built, tmp_path):
    runs, _ = classical_built
    run_dir = tmp_path / "tiny" / "svc-rbf-late-image+title"
    shutil.copytree(runs / "tiny" / "svc-rbf-late-image+title", run_dir)
    weights = read_tensors(run_dir / "model.safetensors", what="weights")
    weights["head.estimator.support_vectors"] = weights["head.estimator.support_vectors"][:-1]
    write_tensors(run_dir / "model.safetensors", weights)
    with pytest.raises(BundleError, match=r"classical head svc-rbf-late: array 'support_vectors' has shape .* but "
                                          r"its settings \(.*n_support = .*\) need .*Fix: .*--run "
                                          r"svc-rbf-late-image\+title --force"):
        load_run(run_dir).model()


@pytest.fixture(scope="module")
def classical_app(classical_built):
    """The runs root with the RBF stacking run projected (PCA) and three of its samples explained."""
    from core.explain import explain_run
    from core.projection import project_runs

    runs, _ = classical_built
    run_dir = runs / "tiny" / "svc-rbf-late-image+title"
    project_runs([run_dir], methods=["pca"], progress=False)
    explain_run(run_dir, n=3, progress=False)
    explained = pd.read_parquet(next((run_dir / "explanations").glob("samples-*.parquet")))
    return runs, run_dir.name, str(explained["sample_id"].iloc[0])


def test_every_page_renders_a_classical_run(monkeypatch, classical_app):
    pytest.importorskip("streamlit")
    from tests.ui.test_app import PAGES, assert_ok, open_app, texts

    runs, run, sample = classical_app
    for page in PAGES:
        at = open_app(monkeypatch, runs, page, run=run, sample=sample)
        assert_ok(at, page)
        assert not at.error, f"{page}: {texts(at.error)}"
        assert at.session_state["fl_last_ctx"].run == run
        if page in ("explorer", "embeddings", "misclassifications", "contributions", "compare"):
            assert at.get("plotly_chart"), f"{page} shows no figure"

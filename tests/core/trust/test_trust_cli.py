"""`fusionlens check`: every check of a run of the tiny experiment, stored as trust.json."""
from __future__ import annotations

import shutil

from core.cli import main
from core.explain import explain_run, load_explanations
from core.trust import CHECKS, STATUSES, load_trust

RUN = "concat-image+title"


def test_check_stores_every_check_with_its_status_and_timings(tiny_built, tmp_path, capsys):
    _, built = tiny_built
    root = tmp_path / "runs"
    shutil.copytree(built, root)
    run_dir = root / "tiny" / RUN
    explain_run(run_dir, n=4, progress=False)
    rc = main(["check", "tiny", "--run", RUN, "--runs-dir", str(root), "--samples", "3", "--estimator-samples", "1",
               "--quiet"])
    out = capsys.readouterr().out
    assert rc == 0
    report = load_trust(run_dir)
    assert list(report["checks"]) == list(CHECKS)
    assert all(c["status"] in STATUSES and c["reason"] for c in report["checks"].values())
    assert report["checks"]["randomisation"]["n"] == 3 and report["checks"]["estimator"]["n"] == 1
    assert report["checks"]["summary"]["status"] != "skip" and report["checks"]["summary"]["n"] == 4
    controlled = report["checks"]["controlled"]
    assert controlled["status"] == "skip" and "--controlled" in controlled["reason"]
    assert report["checks"]["reliance"]["status"] == "skip"  # the tiny manifest has no reliance column
    explained = set(load_explanations(run_dir)[0]["sample_id"])
    assert report["settings"]["explanations"] == "stored" and set(report["settings"]["sample_ids"]) <= explained
    assert report["timings"]["total"] > 0 and "randomisation" in report["timings"]
    assert f"saved {run_dir / 'trust.json'}" in out and "[" in out and "Model randomisation" in out


def test_reliance_on_every_prediction_from_the_stored_modality_game(tiny_built, tmp_path, capsys):
    """With the modality game of every test prediction stored (``blame``), the designed-reliance check runs
    on every prediction's exact share: alone without explanations, beside the explained samples' result with."""
    import numpy as np
    import pandas as pd

    from core.explain import blame_run

    _, built = tiny_built
    root = tmp_path / "runs"
    shutil.copytree(built, root)
    ds_path = root / "tiny" / "dataset.parquet"
    frame = pd.read_parquet(ds_path)
    frame["reliance"] = np.resize(["image", "title", "both"], len(frame))   # a user's designed reliance
    frame.to_parquet(ds_path)
    run_dir = root / "tiny" / RUN
    n_test = len(pd.read_parquet(run_dir / "predictions.parquet"))
    args = ["check", "tiny", "--run", RUN, "--runs-dir", str(root), "--samples", "2", "--estimator-samples", "0",
            "--quiet"]
    assert main(args) == 0
    assert load_trust(run_dir)["checks"]["reliance"]["status"] == "skip"          # nothing to compare yet
    blame_run(run_dir)
    assert main(args) == 0
    reliance = load_trust(run_dir)["checks"]["reliance"]
    assert reliance["status"] in STATUSES and reliance["status"] != "skip"
    assert reliance["reason"].startswith(f"Exact modality shares of every test prediction (n = {reliance['n']};")
    assert 0 < reliance["n"] <= n_test
    cells = reliance["numbers"]["modalities"]["title"]
    assert set(cells) >= {"all/exact", "correct/exact"} and not any(k.endswith("/mmshap") for k in cells)
    explain_run(run_dir, n=4, progress=False)
    assert main(args) == 0
    reliance = load_trust(run_dir)["checks"]["reliance"]
    assert reliance["n"] <= 4 and "every_prediction" in reliance["numbers"]        # the explained samples first
    assert "On every test prediction:" in reliance["reason"]
    assert reliance["numbers"]["every_prediction"]["n"] > reliance["n"]
    capsys.readouterr()

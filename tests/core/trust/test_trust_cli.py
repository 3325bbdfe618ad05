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

"""What the explain benchmarks share: an experiment's fused runs, and every run's stored values to compare."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable


def stored_values(runs: list[Path], name: Callable[[Path], str] = lambda run: run.name) -> dict[str, dict]:
    """Per run (keyed by ``name(run)``): ``phi`` (every stored Shapley value, in sample, modality and feature
    order), ``shares`` (the samples' share columns, in sample order) and ``head_rows`` (summed)."""
    from core.explain import load_explanations

    out = {}
    for run in runs:
        samples, features = load_explanations(run)
        share_cols = sorted(c for c in samples.columns if c.startswith(("share_", "exact_share_")))
        out[name(run)] = {
            "phi": features.sort_values(["sample_id", "modality", "feature_index"])["phi"].to_numpy(),
            "shares": samples.sort_values("sample_id")[share_cols].to_numpy(dtype=float),
            "head_rows": sum(json.loads(s).get("head_rows") or 0 for s in samples["settings"]),
        }
    return out


def fused_runs(exp_dir: Path) -> list[Path]:
    """The experiment's fused runs (more than one modality), most modalities first, then by name."""
    out = []
    for d in sorted(p for p in exp_dir.iterdir() if (p / "config.json").is_file()):
        cfg = json.loads((d / "config.json").read_text())
        if cfg.get("strategy") != "unimodal" and len(cfg.get("modalities", [])) > 1:
            out.append((-len(cfg["modalities"]), d.name, d))
    return [d for *_, d in sorted(out)]


def fresh_experiment_copy(exp_dir: Path, dest: Path) -> Path:
    """The experiment folder without anything the precompute wrote (explanations, blame, robustness)."""
    import shutil

    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(exp_dir, dest, ignore=shutil.ignore_patterns("explanations", "blame*", "robustness*"))
    return dest


def reference_game(model, inputs, settings):
    """The unfactorised game of one sample as the MM-SHAP code plays it: every coalition through the whole
    model, the predicted class's probability explained."""
    import numpy as np

    from core.explain import SampleGame, build_maskers, output_function

    maskers, _ = build_maskers(model, inputs, list(model.modalities), settings)
    game = SampleGame(model, inputs, maskers, list(model.modalities), factorised=False, encoder_batch=1)
    c = int(game.logits(np.ones((1, game.n_features), dtype=bool))[0].argmax())
    game.set_output(output_function("pred_prob", c))
    return game


def game_groups(game) -> list:
    """Each modality's feature indices in a game."""
    import numpy as np

    return [np.arange(game.offsets[i], game.offsets[i + 1]) for i in range(len(game.players))]


def reference_explain(game, seed: int, permutations: int = 10):
    """The reference procedure on ``game``: ``shap.PermutationExplainer`` with a function masker,
    ``permutations`` permutations (``max_evals = permutations (2n + 1)``), the model called on one masked
    variant at a time. Returns (shares, CPU seconds, evaluations)."""
    import time

    import numpy as np
    import shap

    from core.explain import modality_shares

    n = game.n_features

    def one_at_a_time(X):
        return np.array([game(np.asarray(row > 0.5)[None])[0] for row in X])

    explainer = shap.PermutationExplainer(one_at_a_time, lambda mask, x: (x * mask).reshape(1, -1), seed=seed)
    evals = permutations * (2 * n + 1)
    t0 = time.process_time()
    ref = explainer(np.ones((1, n)), max_evals=evals, silent=True)
    return modality_shares(ref.values[0], game_groups(game)), time.process_time() - t0, evals


def true_shares(model, inputs, game, exact_max_features: int = 20, truth_blocks: int = 200):
    """(shares, tag): exact modality shares (factorised tables) of a game with at most
    ``exact_max_features`` players, else a converged estimate (recombined, two seeds of ``truth_blocks``
    independent blocks of 10 walks, averaged; its own spread is about 0.003 in share)."""
    import numpy as np

    from core.explain import (ExplainSettings, RecombinedEstimator, SampleGame, explain_inputs, modality_shares,
                              output_function, plan_recombined)

    n = game.n_features
    if n <= exact_max_features:
        ex = explain_inputs(model, inputs, settings=ExplainSettings(method="exact"))
        return np.array([ex.shares[m] for m in ex.modalities]), "exact"
    fac = SampleGame(model, inputs, game.maskers, game.players, factorised=True)
    c = int(fac.logits(np.ones((1, n), dtype=bool))[0].argmax())
    fac.set_output(output_function("pred_prob", c))
    plan = plan_recombined(fac.sizes, truth_blocks, 10)
    vals = [RecombinedEstimator(plan=plan, seed=1000 + s).estimate(fac, n, batch_size=4096).values for s in range(2)]
    return modality_shares(np.mean(vals, axis=0), game_groups(game)), f"~{2 * plan.n_walks} walks"


def built_experiment(path: str) -> Path:
    """The built experiment folder ``path`` (exits with the build command when it holds no fused run), with the
    environment the explain benchmarks run in: offline, one torch thread per process."""
    import os
    import sys

    exp_dir = Path(path)
    if not exp_dir.is_dir() or not fused_runs(exp_dir):
        sys.exit(f"{exp_dir} holds no built experiment with fused runs: build one first "
                 "(`python -m core build emoji`) or pass --experiment")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ["FUSIONLENS_THREADS"] = "1"
    return exp_dir

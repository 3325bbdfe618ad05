"""How much can RGB-D fusion gain over the better single modality on the RGB-D demo? (issue 11's "+5 points")

    .venv/bin/python benchmarks/bench_rgbd_fusion_ceiling.py [--seeds 0 1] [--rgb-epochs 20] [--depth-epochs 20]
                                                             [--keep-cache]

Trains unimodal StatCNN models on the default `experiments/rgbd.toml` split with the build's own stage-1 recipe
(`core.train.fit_end_to_end`, `[train.unimodal]`, epochs overridable), each modality with every seed, and then
fuses every (RGB, depth) pair of them without training anything else on the training split:

* **probability average** (late fusion, nothing fitted);
* **stacking**: a logistic regression on the two models' validation logits, applied to the test logits;
* **embedding fusion**: a logistic regression on the two standardised validation embeddings;
* **oracle**: a test clip counted right when either model is right (not a classifier; the ceiling of any decision
  that has to pick one of the two answers, and above what fusion can reach when the two disagree on the same
  look-alikes).

Validation clips are out of sample for both encoders, so the two fitted fusions are honest (the build's heads train
on out-of-fold train embeddings instead). It prints each model's top-1 and per-variant test counts (the simulator's
variants, `docs/SIMULATOR.md`), then each pair's gains over the better of its two models, and the median and
largest gain over all pairs, against the +5-point target. About 80 s per training on 2 cores.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

TARGET_GAIN = 0.05


def _train(exp, ds, modality: str, epochs: int, seed: int, items, y):
    import torch

    from core.model import build_encoder, build_head
    from core.train import encode_items, fit_end_to_end, resolve_spec, seed_everything

    spec = resolve_spec(exp.encoder_sets[0].specs[modality], ds, modality)
    cfg = {**exp.train["unimodal"], "epochs": int(epochs)}
    seed_everything(seed)
    encoder = build_encoder(spec)
    head = build_head({"type": "unimodal", "in_dims": [encoder.out_dim], "n_classes": len(ds.classes), "hidden": 0,
                       "dropout": cfg["dropout"]})
    fit_end_to_end(encoder, head, items["train"], y["train"], items["val"], y["val"], cfg, f"{modality} seed {seed}",
                   True)
    out = {}
    for split in ("val", "test"):
        emb = encode_items(encoder, items[split])
        with torch.no_grad():
            out[split] = (head([emb]).float().numpy(), emb.numpy())
    return out


def _pair_gains(rgb, depth, y_val, y_test) -> dict[str, float]:
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    def softmax(z):
        e = np.exp(z - z.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)

    (lr_v, er_v), (lr_t, er_t) = rgb["val"], rgb["test"]
    (ld_v, ed_v), (ld_t, ed_t) = depth["val"], depth["test"]
    right_r, right_d = lr_t.argmax(1) == y_test, ld_t.argmax(1) == y_test
    best_single = max(right_r.mean(), right_d.mean())
    average = (softmax(lr_t) + softmax(ld_t)).argmax(1)
    stack = LogisticRegression(C=1.0, max_iter=3000).fit(np.hstack([lr_v, ld_v]), y_val)
    ev, et = np.hstack([er_v, ed_v]), np.hstack([er_t, ed_t])
    mu, sd = ev.mean(0), ev.std(0) + 1e-6
    emb = LogisticRegression(C=0.1, max_iter=3000).fit((ev - mu) / sd, y_val)
    acc = {"average": (average == y_test).mean(),
           "stacking": (stack.predict(np.hstack([lr_t, ld_t])) == y_test).mean(),
           "embedding": (emb.predict((et - mu) / sd) == y_test).mean()}
    gains = {k: float(v - best_single) for k, v in acc.items()}
    gains["best fitted"] = max(gains["stacking"], gains["embedding"])
    gains["oracle"] = float((right_r | right_d).mean() - best_single)
    gains["best single"] = float(best_single)
    return gains


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--rgb-epochs", type=int, nargs="+", default=[20])
    ap.add_argument("--depth-epochs", type=int, nargs="+", default=[20])
    ap.add_argument("--keep-cache", action="store_true", help="reuse already rendered clips")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="fusionlens-fusion-ceiling-"))
    if not args.keep_cache:
        os.environ["FUSIONLENS_CACHE"] = str(tmp / "cache")
    import numpy as np
    import pandas as pd
    import torch

    from core.data import prepare_dataset
    from core.data.sources import fetch_manifest
    from core.experiment import load_experiment

    t0 = time.perf_counter()
    exp = load_experiment("rgbd")
    ds = prepare_dataset(exp, tmp / "runs")
    meta = pd.read_parquet(fetch_manifest(exp.dataset, seed=exp.seed, progress=False).parent / "clips_meta.parquet")
    variant_of = dict(zip(meta["id"].astype(str), meta["variant"].astype(str)))
    splits = ("train", "val", "test")
    ids = {s: ds.ids(s) for s in splits}
    y = {s: torch.as_tensor(ds.label_indices(ids[s])) for s in splits}
    variants = np.array([variant_of[i] for i in ids["test"]])
    print(f"data: {len(ids['train'])} train / {len(ids['val'])} val / {len(ids['test'])} test clips "
          f"({time.perf_counter() - t0:.0f} s)")

    models: dict[str, dict] = {}
    for modality, epochs_list in (("rgb", args.rgb_epochs), ("depth", args.depth_epochs)):
        items = {s: ds.items(modality, ids[s]) for s in splits}
        for epochs in epochs_list:
            for seed in args.seeds:
                t1 = time.perf_counter()
                key = f"{modality} {epochs} ep, seed {seed}"
                models[key] = _train(exp, ds, modality, epochs, seed, items, y)
                print(f"trained {key} in {time.perf_counter() - t1:.0f} s")
        del items

    y_val, y_test = y["val"].numpy(), y["test"].numpy()
    names = sorted(set(variants))
    print("\nTest top-1 and right/total per variant:")
    table = {}
    for key, out in models.items():
        right = out["test"][0].argmax(1) == y_test
        table[key] = {"top-1": f"{right.mean():.3f}",
                      **{v: f"{int(right[variants == v].sum())}/{int((variants == v).sum())}" for v in names}}
    print(pd.DataFrame(table).T.to_string())

    rows = []
    for kr in (k for k in models if k.startswith("rgb")):
        for kd in (k for k in models if k.startswith("depth")):
            rows.append({"rgb": kr, "depth": kd, **_pair_gains(models[kr], models[kd], y_val, y_test)})
    frame = pd.DataFrame(rows)
    print("\nFusion of each pair minus the better of its two models (test top-1 points):")
    shown = frame.copy()
    for c in ("average", "stacking", "embedding", "best fitted", "oracle"):
        shown[c] = (100 * shown[c]).map("{:+.1f}".format)
    shown["best single"] = shown["best single"].map("{:.3f}".format)
    print(shown.to_string(index=False))
    best = np.maximum(frame["average"], frame["best fitted"])
    print(f"\n{len(frame)} pairs. Best fusion of each pair minus its better model: median {100 * best.median():+.1f}, "
          f"largest {100 * best.max():+.1f} points; target +{100 * TARGET_GAIN:.0f} "
          f"(ratio of the largest to the target {best.max() / TARGET_GAIN:.2f}). "
          f"Oracle: median {100 * frame['oracle'].median():+.1f}. Total {time.perf_counter() - t0:.0f} s.")


if __name__ == "__main__":
    main()

"""docs/results/ct_affinity_cpu.md: extra figures from a finished ``reproduce affinity`` run.

1. Accuracy, macro F1 and one-vs-rest macro AUC of ``predictions.csv`` with 95 % percentile
   bootstrap intervals over test images, beside the majority-class control (the recipe's
   ``DummyClassifier`` of the training labels: COVID for every image; its AUC is 0.5).
2. Whether X2 carries the image class: X2 = W1^T X1 of every test phantom from the run's
   exported model, then the leave-one-out nearest-centroid accuracy of the flattened X2 (chance
   1/3) and a figure of the class-mean X2 (A x C) of each class.

    .venv/bin/python docs/results/ct_affinity_cpu_metrics.py RUN_FOLDER OUT_PREFIX
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import keras
import numpy as np
import pandas as pd
from scipy.stats import bootstrap
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

from kerassev.plots import save_figure
from kerassev.recipes.ct_affinity.config import CLASS_NAMES, CtAffinityConfig
from kerassev.recipes.ct_affinity.data import load_data
from kerassev.recipes.ct_affinity.evaluate import x2_of
from kerassev.recipes.ct_affinity.figures import shared_scale, x2_figure
from kerassev.stats.tables import to_markdown


def _metrics(y, probs):
    pred = probs.argmax(1)
    return {
        "accuracy": accuracy_score(y, pred),
        "macro F1": f1_score(y, pred, average="macro", labels=[0, 1, 2], zero_division=0),
        # per-class sigmoids (eq. 7) do not sum to 1: each class's own score against the rest
        "macro AUC (one-vs-rest)": np.mean(
            [
                roc_auc_score(y == c, probs[:, c]) if 0 < (y == c).sum() < len(y) else 0.5
                for c in range(3)
            ]
        ),  # fmt: skip
    }


def metric_table(run: Path, seed: int = 0) -> pd.DataFrame:
    frame = pd.read_csv(run / "predictions.csv")
    y = frame["label"].map({n: i for i, n in enumerate(CLASS_NAMES)}).to_numpy()
    probs = frame[[f"p_{n}" for n in CLASS_NAMES]].to_numpy()
    control = np.tile(np.eye(3)[0], (len(y), 1))  # majority class of balanced labels: COVID
    rows = []
    for name, value in _metrics(y, probs).items():
        idx = np.arange(len(y))

        def stat(i, name=name):
            return _metrics(y[i], probs[i])[name]

        ci = bootstrap((idx,), stat, vectorized=False, n_resamples=1000, method="percentile",
                       random_state=seed).confidence_interval  # fmt: skip
        ctrl = _metrics(y, control)[name]
        rows.append({"metric": name, "estimate": round(value, 3), "95% CI lo": round(ci.low, 3),
                     "95% CI hi": round(ci.high, 3), "majority-class control": round(ctrl, 3),
                     "beats control": "yes" if ci.low > ctrl else "no", "n": len(y)})  # fmt: skip
    return pd.DataFrame(rows)


def x2_structure(run: Path, out_prefix: str):
    info = json.loads((run / "run.json").read_text())
    config = CtAffinityConfig(**{k: tuple(v) if isinstance(v, list) else v
                                 for k, v in info["config"].items()})  # fmt: skip
    model = keras.saving.load_model(run / "export" / "affinity.keras", compile=False)
    data = load_data(config)  # the same seeded test phantoms
    images = np.stack([s.image for s in data.test])[..., None].astype(np.float32)
    x2 = np.concatenate([x2_of(model, images[i : i + 16]) for i in range(0, len(images), 16)])
    y = data.test_labels
    flat = x2.reshape(len(x2), -1)
    # leave-one-out nearest centroid (Euclidean): each image against the other images' means
    sums = np.stack([flat[y == c].sum(0) for c in range(3)])
    counts = np.bincount(y, minlength=3).astype(float)
    hits = 0
    for i in range(len(flat)):
        s, n = sums.copy(), counts.copy()
        s[y[i]] -= flat[i]
        n[y[i]] -= 1
        hits += int(np.argmin(((s / n[:, None] - flat[i]) ** 2).sum(1)) == y[i])
    means = np.stack([x2[y == c].mean(0) for c in range(3)])
    fig = x2_figure(means, [f"{n}: mean of {int(counts[c])} test phantoms"
                            for c, n in enumerate(CLASS_NAMES)],
                    vmax=shared_scale(means), heading="class-mean X2 = W1^T X1 (last epoch)")  # fmt: skip
    save_figure(fig, Path(f"{out_prefix}_x2_class_means.png"),
                f"Class-mean X2 of the test phantoms, run {run.name}.")  # fmt: skip
    return hits / len(flat), len(flat)


if __name__ == "__main__":
    run, prefix = Path(sys.argv[1]), sys.argv[2]
    print(to_markdown(metric_table(run)))
    acc, n = x2_structure(run, prefix)
    print(
        f"X2 leave-one-out nearest-centroid accuracy: {acc:.3f} of {n} test phantoms (chance 1/3)"
    )

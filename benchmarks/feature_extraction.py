"""Paper 03's feature extraction, float32 against bf16: images/s and the linear probe on top.

For each encoder (the XRV DenseNet-121 and the average-pooled ResNet-50, both at 224 px) the
same weights are run under each precision over the 94 severity-scored covid-chestxray images,
through the suite's own input pipeline (``kerassev.recipes.cohen.extract_features``), alternating
precisions for ``--rounds`` rounds after one untimed warm-up pass each; the median is printed.
Then paper 03's linear probe (OLS, the 50 patient-grouped splits) is fitted on each precision's
features: the MAE of both and the features' agreement (cosine, relative error) say whether bf16
changes the results.

Weights are random unless given (no XRV checkpoint ships offline; ``--xrv FILE`` takes one
written by ``kerassev convert xrv``, ``--resnet FILE`` an ImageNet notop file): random weights
time the same arithmetic, but their probe MAEs are those of random features.

    .venv/bin/python benchmarks/feature_extraction.py
    .venv/bin/python benchmarks/feature_extraction.py --models resnet50 --rounds 5 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from _device import machine_line  # noqa: E402

from kerassev.evaluation.linear_probe import linear_probe  # noqa: E402
from kerassev.precision import apply_precision, precision_scope  # noqa: E402
from kerassev.recipes.cohen import CohenConfig  # noqa: E402
from kerassev.recipes.cohen.data import ImageBank, load_tables, make_splits  # noqa: E402
from kerassev.recipes.cohen.encoders import extract_features  # noqa: E402

TARGETS = ("opacity_mean", "geographic_mean")


def build(name: str, weights: str | None) -> tuple[keras.Model, int, str, str]:
    """``(model, channels, preprocessing, feature key)`` under the current dtype policy."""
    if name == "densenet121":
        from kerassev.models.xrv_densenet import build_xrv_densenet

        return build_xrv_densenet(weights=weights), 1, "xrv", "logits"
    from kerassev.models.backbones import build_backbone

    model = build_backbone("resnet50", weights=weights, input_shape=(224, 224, 3), pooling="avg")
    return model, 3, "imagenet", ""


def features_once(model, images, channels, preprocess, key, batch):
    fn = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
    run = lambda: extract_features(  # noqa: E731
        fn, images, preprocess=preprocess, batch_size=batch, image_size=224, channels=channels
    )
    run()  # warm-up: tracing and oneDNN primitive creation
    start = time.perf_counter()
    out = run()
    seconds = time.perf_counter() - start
    return (out[key] if key else out), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["densenet121", "resnet50"])
    parser.add_argument("--precisions", nargs="+", default=["float32", "bfloat16"])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--xrv", help="converted XRV DenseNet weights (.weights.h5)")
    parser.add_argument("--resnet", help="ResNet-50 notop weights file")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()

    config = CohenConfig.paper()
    _, scored, _ = load_tables(config)
    splits = make_splits(scored, config)
    images = ImageBank(scored).at(224)
    y = {t: scored[t].to_numpy(dtype=np.float64) for t in TARGETS}
    print(machine_line())
    print(f"data: {len(images)} severity-scored covid-chestxray images at 224 px")

    results = []
    for name in args.models:
        weights = args.xrv if name == "densenet121" else args.resnet
        with tempfile.TemporaryDirectory() as tmp:
            # one set of weights for every precision: built once in float32, saved, reloaded
            apply_precision("float32")
            model, *_ = build(name, weights)
            shared = str(Path(tmp) / "w.weights.h5")
            model.save_weights(shared)
            del model
            keras.backend.clear_session()
            seconds = {p: [] for p in args.precisions}
            feats = {}
            for _ in range(args.rounds):
                for p in args.precisions:
                    with precision_scope(p):
                        model, channels, prep, key = build(name, None)
                        model.load_weights(shared)
                        f, s = features_once(model, images, channels, prep, key, args.batch)
                    seconds[p].append(s)
                    feats[p] = f
                    del model
                    keras.backend.clear_session()
        ref = feats[args.precisions[0]]
        for p in args.precisions:
            f = feats[p]
            cos = np.sum(f * ref, 1) / (np.linalg.norm(f, axis=1) * np.linalg.norm(ref, axis=1))
            rel = np.linalg.norm(f - ref) / np.linalg.norm(ref)
            probe = linear_probe(f, y, splits).summary()
            row = {
                "model": name,
                "precision": p,
                "img_per_s": len(images) / statistics.median(seconds[p]),
                "cosine_min": float(cos.min()),
                "relative_error": float(rel),
                **{f"{t}_mae": float(probe.loc[t, "mae_mean"]) for t in TARGETS},
            }
            results.append(row)

    base = {r["model"]: r["img_per_s"] for r in results if r["precision"] == args.precisions[0]}
    print(
        "\n| model | precision | img/s | speed-up | min cosine | rel. error | "
        + " | ".join(f"{t} MAE" for t in TARGETS)
        + " |"
    )
    print("|---" * (6 + len(TARGETS)) + "|")
    for r in results:
        maes = " | ".join(f"{r[f'{t}_mae']:.3f}" for t in TARGETS)
        print(
            f"| {r['model']} | {r['precision']} | {r['img_per_s']:.1f} | "
            f"{r['img_per_s'] / base[r['model']]:.2f}x | {r['cosine_min']:.4f} | "
            f"{r['relative_error']:.4f} | {maes} |"
        )
    print(
        f"\nmedian of {args.rounds} rounds, batch {args.batch}; weights: "
        f"{'given' if args.xrv or args.resnet else 'random'}; probe = OLS over the "
        f"{len(splits)} patient-grouped splits (features: DenseNet 18 logits, ResNet 2048 pooled)"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

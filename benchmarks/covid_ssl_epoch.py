"""Time one SSL epoch per method and one fine-tuning epoch at a covid-ssl preset's settings, and
extrapolate the whole Table-2 run (all methods, 100 % shot, plus the preset's low-shot rows).

    .venv/bin/python benchmarks/covid_ssl_epoch.py [--preset cpu] [--methods cross simclr ...]

Random images stand in for the pool (the speed does not depend on the pixels). Each
measurement is a few steps after one warm-up step (tracing is timed separately) and is scaled
to the pool's step count. Besides wall time it reports process CPU time / cores, which is what
the wall time would be on uncontended cores when TensorFlow keeps them all busy: on a shared
machine the wall time overstates the cost.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from kerassev.models.ssl import METHODS  # noqa: E402
from kerassev.recipes.covid_ssl import CovidSSLConfig  # noqa: E402
from kerassev.recipes.covid_ssl.finetune import build_classifier  # noqa: E402
from kerassev.recipes.ssl_pretraining import build_ssl  # noqa: E402
from kerassev.training import cosine_sgd  # noqa: E402

POOL, TRAIN = 951, 400  # images in the real pool and training split


CORES = os.cpu_count() or 1


def _time_steps(step, steps):
    """(trace wall s, per-step wall s, per-step CPU s / cores)."""
    t = time.perf_counter()
    step()  # warm-up: tracing
    trace = time.perf_counter() - t
    t, c = time.perf_counter(), time.process_time()
    for _ in range(steps):
        step()
    return trace, (time.perf_counter() - t) / steps, (time.process_time() - c) / steps / CORES


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="cpu")
    ap.add_argument("--methods", nargs="+", default=list(METHODS))
    ap.add_argument("--steps", type=int, default=3)
    args = ap.parse_args()
    cfg = CovidSSLConfig.from_preset(args.preset)
    b, s = cfg.ssl_batch_size, cfg.view_size
    rng = np.random.default_rng(0)
    v1 = rng.random((b, s, s, 3), dtype=np.float32)
    v2, idx = v1[:, ::-1].copy(), np.arange(b, dtype=np.float32)
    ssl_steps = POOL // b
    total = cpu_total = 0.0
    print(
        f"preset {cfg.preset}: {cfg.describe()}; {keras.backend.backend()} on {os.cpu_count()} CPUs"
    )
    for method in args.methods:
        model = build_ssl(cfg.encoder_spec(method), n_images=POOL)
        model.compile(
            optimizer=cosine_sgd(
                cfg.lr, momentum=cfg.momentum, steps=1000, weight_decay=cfg.weight_decay
            )
        )
        trace, per_step, cpu = _time_steps(
            lambda m=model: m.train_on_batch((v1, v2), idx), args.steps
        )
        epoch = per_step * ssl_steps
        total += trace + cfg.ssl_epochs * epoch
        cpu_total += trace + cfg.ssl_epochs * cpu * ssl_steps
        print(
            f"ssl {method:14s} trace {trace:6.1f} s  step {per_step:6.2f} s wall, {cpu:6.2f} s "
            f"CPU/core; epoch ({ssl_steps} steps) {epoch:7.1f} s wall, {cpu * ssl_steps:7.1f} s CPU/core"
        )
    fb = min(cfg.finetune_batch_size, TRAIN)
    x = rng.random((fb, cfg.image_size, cfg.image_size, 3), dtype=np.float32)
    y = rng.integers(0, 2, fb)
    clf = build_classifier(cfg, 2)
    clf.compile(
        optimizer=keras.optimizers.SGD(cfg.lr, momentum=cfg.momentum),
        loss="sparse_categorical_crossentropy",
    )
    trace, per_step, cpu = _time_steps(lambda: clf.train_on_batch(x, y), args.steps)
    ft_steps = int(np.ceil(TRAIN / fb))
    ft_epoch = per_step * ft_steps
    rows = len(cfg.rows()) - 2  # Transfer and Ours are skipped offline
    low = sum(f for f in cfg.low_shot if f < 1) * len(cfg.low_shot_methods or cfg.rows())
    ft_total = (rows + low) * (trace + cfg.finetune_epochs * ft_epoch)
    ft_cpu = (rows + low) * (trace + cfg.finetune_epochs * cpu * ft_steps)
    print(
        f"fine-tune     trace {trace:6.1f} s  step {per_step:6.2f} s wall, {cpu:6.2f} s CPU/core; "
        f"epoch ({TRAIN} images) {ft_epoch:7.1f} s wall"
    )
    scale = len(METHODS) / len(args.methods)
    for what, ssl_s, ft_s in (("wall", total, ft_total), ("CPU/core", cpu_total, ft_cpu)):
        print(
            f"extrapolated run ({what}): SSL {scale * ssl_s / 60:.1f} min (all {len(METHODS)} "
            f"methods x {cfg.ssl_epochs} epochs) + fine-tuning {ft_s / 60:.1f} min ({rows} rows at "
            f"100 % + low-shot, {cfg.finetune_epochs} epochs) = {(scale * ssl_s + ft_s) / 60:.1f} "
            "min, plus data loading, probes and figures (~2 min)"
        )


if __name__ == "__main__":
    main()

"""End-to-end SSL epochs (augmentation included) beside the same steps on pre-made views.

For each image size and augmentation policy: SimSiam (ResNet-50, 2048-d projector, random init,
whole backbone trainable, as ``benchmarks/ssl_step.py``) is fitted for ``--epochs`` timed epochs
of ``--steps`` steps after one untimed epoch (tracing), on

* ``model-only``: the same number of steps on one pre-made pair of views (one batch of real
  ``simsiam`` views made once; no input pipeline);
* ``<source>/<augment_on>``: real epochs of the suite's pipeline
  (:mod:`kerassev.data.pipeline`, ``two_view_policy``): images in memory
  (``build_dataset_from_arrays``, what the SSL recipe feeds) or decoded from PNG files every
  epoch (``build_dataset``), with the views made in ``tf.data`` (``augment_on="data"``) or in
  the train step (``"model"``, :class:`kerassev.transforms.views.ViewMaker`), fed to ``fit``
  as a finite dataset whose iterator restarts every epoch (``--feed epoch``) or as a repeated
  one with ``steps_per_epoch`` (``--feed repeat``: one iterator for the whole fit, as the SSL
  recipe feeds it since issue 13).

It prints source images/s of each, the ratio end-to-end / model-only, and the augmentation's
share of an end-to-end step: the time to make one batch's two views alone (the ``tf.data``
pipeline iterated without the model, or the view maker in a ``tf.function``) over the
end-to-end step time. Images: the first ``steps x batch`` PNGs of
``../shared/data/covid_radiography`` (``$KERASSEV_DATA``), else phantoms (a note says so).

    .venv/bin/python benchmarks/ssl_epoch.py                        # 64/112/224, all policies
    .venv/bin/python benchmarks/ssl_epoch.py --sizes 64 --policies simsiam --steps 3 --epochs 1
    .venv/bin/python benchmarks/ssl_epoch.py --sources memory --augment-on data model

Timings on a shared machine are contended: compare variants within one run only.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import tensorflow as tf  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from _device import device as find_device  # noqa: E402
from ssl_step import machine_line  # noqa: E402

from kerassev.data.pipeline import (  # noqa: E402
    PipelineConfig,
    build_dataset,
    build_dataset_from_arrays,
    load_images,
    view_maker,
)
from kerassev.precision import PRECISIONS, apply_precision  # noqa: E402
from kerassev.recipes.ssl_pretraining import EncoderSpec, build_ssl  # noqa: E402
from kerassev.transforms.augment import POLICIES  # noqa: E402


class _EpochTimer(keras.callbacks.Callback):
    """Wall time of each epoch, iterator start and pipeline fill included."""

    def __init__(self):
        super().__init__()
        self.seconds: list[float] = []

    def on_epoch_begin(self, epoch, logs=None):
        self._t = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        float(logs["loss"])  # the epoch's steps have finished
        self.seconds.append(time.perf_counter() - self._t)


def image_table(n: int) -> tuple[pd.DataFrame, str]:
    """``n`` real radiograph PNGs, or phantom PNGs written to a temporary folder."""
    from kerassev.config import data_root

    root = data_root() / "covid_radiography"
    paths = sorted(root.glob("*/images/*.png"))
    if len(paths) >= n:
        step = len(paths) // n  # spread over both classes
        return pd.DataFrame({"path": [str(p) for p in paths[::step][:n]]}), f"{n} PNGs of {root}"
    from kerassev.data.phantoms.cxr import make_phantom_cohort

    folder = Path(tempfile.mkdtemp(prefix="ssl_epoch_"))
    rows = []
    for i, pixels in enumerate(make_phantom_cohort(n, timepoints=(1, 1), size=256).images[:n]):
        png = tf.io.encode_png(tf.cast(np.clip(pixels, 0, 1)[..., None] * 255, tf.uint8))
        path = folder / f"phantom_{i}.png"
        tf.io.write_file(str(path), png)
        rows.append(str(path))
    return pd.DataFrame({"path": rows}), f"NOTE: no real data under {root}; {n} phantom PNGs"


def fit_epochs(model, data, *, steps=None, epochs) -> float:
    """Seconds per timed epoch (median over ``epochs`` after one untimed epoch). ``steps`` only
    for an endless dataset; a finite one restarts its iterator every epoch, as in the recipe."""
    timer = _EpochTimer()
    model.fit(data, epochs=1 + epochs, steps_per_epoch=steps, verbose=0, callbacks=[timer])
    return float(np.median(timer.seconds[1:]))


def views_alone(pipe: PipelineConfig, images, table, source, steps) -> float:
    """Seconds to make one batch's two views without the model."""
    if pipe.views_in_model:
        maker = view_maker(pipe)
        raw = tf.constant(images[: pipe.batch_size, ..., None])
        make = tf.function(lambda x: (maker(x), maker(x)))
        make(raw)
        t = time.perf_counter()
        for _ in range(steps):
            [v.numpy() for v in make(raw)]
        return (time.perf_counter() - t) / steps
    ds = _dataset(pipe.replace(repeat=True), images, table, source)
    it = iter(ds)
    next(it)
    t = time.perf_counter()
    for _ in range(steps):
        next(it)
    return (time.perf_counter() - t) / steps


def _dataset(pipe, images, table, source):
    if source == "memory":
        return build_dataset_from_arrays(images, pipe)
    return build_dataset(table, pipe)


def build_model(size, policy=None, pipe=None):
    keras.utils.set_random_seed(0)
    model = build_ssl(EncoderSpec("simsiam", image_size=size), n_images=1)
    if pipe is not None and pipe.views_in_model:
        model.augmenter = view_maker(pipe)
    model.compile(optimizer=keras.optimizers.SGD(0.02, momentum=0.6))
    return model


def run_size(size, args, table, precision_policy):
    n = args.steps * args.batch
    images = load_images(table, size)[:n]
    rows = []
    keras.backend.clear_session()
    keras.mixed_precision.set_global_policy(precision_policy)
    shared = build_model(size)  # every data-side run: same train step, traced once
    # pre-made views: one batch of real simsiam views, made once (input values as in training)
    once = PipelineConfig(image_size=size, batch_size=args.batch, two_view_policy="simsiam")
    views = next(iter(build_dataset_from_arrays(images, once)))
    premade = tf.data.Dataset.from_tensors(views).repeat()
    first = fit_epochs(shared, premade, steps=args.steps, epochs=args.epochs)
    for policy in args.policies:
        for on in args.augment_on:
            pipe = PipelineConfig(
                image_size=size,
                batch_size=args.batch,
                two_view_policy=policy,
                augment_on=on,
                drop_remainder=True,
                seed=0,
                threads=args.data_threads,
            )
            # views in the step: a new train step per policy, so a new model (traced again)
            model = build_model(size, policy, pipe) if on == "model" else shared
            for source, feed in [(s, f) for s in args.sources for f in args.feed]:
                if feed == "repeat":  # one iterator across epochs
                    data = _dataset(pipe.replace(repeat=True), images, table, source)
                    per_epoch = fit_epochs(model, data, steps=args.steps, epochs=args.epochs)
                else:  # one real epoch of steps batches, a fresh iterator each epoch
                    data = _dataset(pipe, images, table, source)
                    per_epoch = fit_epochs(model, data, epochs=args.epochs)
                aug = views_alone(pipe, images, table, source, min(args.steps, 3))
                name = f"{source}/{on}" + ("" if len(args.feed) == 1 else f"/{feed}")
                r = {
                    "size": size,
                    "policy": policy,
                    "run": name,
                    "img_s": n / per_epoch,
                    "aug_share": aug / (per_epoch / args.steps),
                }
                rows.append(r)
    # model-only again at the end: the ratios use the mean of both (a shared machine drifts)
    last = fit_epochs(shared, premade, steps=args.steps, epochs=args.epochs)
    base = (first + last) / 2
    for r in rows:
        r["ratio"] = r["img_s"] * base / n
    head = {"size": size, "policy": "-", "run": "model-only", "img_s": n / base}
    head["first_last_img_s"] = [n / first, n / last]
    for r in [head, *rows]:
        _print(r, args)
    return rows


def _print(r, args):
    if args.json:
        print(json.dumps(r), flush=True)
        return
    ratio = f"{r['ratio']:6.2f}x" if "ratio" in r else f"{'':7s}"
    share = f"{100 * r['aug_share']:8.1f}%" if "aug_share" in r else ""
    if "first_last_img_s" in r:
        share = "   (first / last run: {:.2f} / {:.2f} img/s)".format(*r["first_last_img_s"])
    print(
        f"{r['size']:>5} {r['policy']:>10} {r['run']:>20} {r['img_s']:>8.2f} {ratio} {share}",
        flush=True,
    )


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[64, 112, 224])
    p.add_argument("--policies", nargs="+", choices=POLICIES, default=list(POLICIES))
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--steps", type=int, default=4, help="steps per epoch (images = steps x batch)")
    p.add_argument("--epochs", type=int, default=1, help="timed epochs after one untimed")
    p.add_argument("--sources", nargs="+", choices=["memory", "files"], default=["memory", "files"])
    p.add_argument("--augment-on", nargs="+", choices=["data", "model"], default=["data", "model"])
    p.add_argument(
        "--feed",
        nargs="+",
        choices=["epoch", "repeat"],
        default=["repeat"],
        help="epoch: a finite dataset, new iterator per epoch; repeat: one endless iterator",
    )
    p.add_argument("--precision", choices=PRECISIONS, default="auto")
    p.add_argument(
        "--data-threads", type=int, default=0, help="PipelineConfig.threads (0: TF default)"
    )
    p.add_argument("--json", action="store_true", help="one JSON line per row")
    args = p.parse_args(argv)
    choice = apply_precision(args.precision)
    table, what = image_table(args.steps * args.batch)
    device, name = find_device()
    if not args.json:
        print(machine_line())
        print(
            f"device: {name} ({device}); TF {tf.__version__}, Keras {keras.__version__}; SimSiam "
            f"ResNet-50 (trainable) batch {args.batch}; {args.steps} steps/epoch, 1 untimed + "
            f"{args.epochs} timed epochs; precision {choice.policy} ({choice.reason}); data: {what}"
        )
        print(f"{'size':>5} {'policy':>10} {'run':>20} {'img/s':>8} {'ratio':>7} {'aug share':>9}")
    for size in args.sizes:
        run_size(size, args, table, choice.policy)


if __name__ == "__main__":
    main()

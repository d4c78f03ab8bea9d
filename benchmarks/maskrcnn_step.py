"""Mask R-CNN (ResNet-50-FPN, random init) speed: train step and inference, s/image, vs a roofline.

For each image size (default 256 and 512 px, batch 1, one "lesion" class) it times ``fit`` steps on
an in-memory slice with two instances and ``model(images)`` inference (both traced once, warm-up
excluded), estimates the FLOPs of one inference and one training step from the traced graphs
(TensorFlow's profiler counts Conv2D / MatMul / crop_and_resize ... FLOPs; a train step is
counted from its full forward + backward graph), and divides the achieved FLOP/s by the peak
this process measures for a large float32 matmul and a 3x3 conv (the better of the two). The
ratio says how far from the hardware's dense-math ceiling the step runs (1.0 = at the ceiling).
Peak memory is the process peak RSS on CPU, the allocator peak on GPU. ``--precision float32
bfloat16`` times each model under each setting in the same process (the peak is float32's, so a
16-bit row's "of peak" can exceed what float32 could reach).

    .venv/bin/python benchmarks/maskrcnn_step.py                  # 256 and 512 px
    .venv/bin/python benchmarks/maskrcnn_step.py --sizes 256 --steps 5
    .venv/bin/python benchmarks/maskrcnn_step.py --sizes 256 --precision float32 bfloat16

On a shared machine other processes' load lowers every number; the CPU-seconds column (this
process's CPU time per image) is less sensitive to that.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
from _device import device as find_device  # noqa: E402
from _device import peak_memory_mib  # noqa: E402
from detection_harness import two_lesion_batch  # noqa: E402

from kerassev.models.detection import MaskRCNN, MaskRCNNConfig  # noqa: E402
from kerassev.precision import PRECISIONS, precision_scope  # noqa: E402
from kerassev.recipes.ct_lesions import CtLesionsConfig  # noqa: E402


def graph_flops(concrete) -> float:
    """FLOPs TensorFlow's profiler counts in a concrete function's graph."""
    from tensorflow.python.profiler import model_analyzer, option_builder

    opts = (
        option_builder.ProfileOptionBuilder(option_builder.ProfileOptionBuilder.float_operation())
        .with_empty_output()
        .build()
    )
    return float(model_analyzer.profile(concrete.graph, options=opts).total_float_ops)


def measured_peak(repeats: int = 5) -> dict[str, tuple[float, float]]:
    """``{op: (FLOP per wall second, FLOP per CPU second)}``, best of ``repeats``, for a 2048^3
    float32 matmul and a 3x3, 256-channel conv on 8 x 64 x 64."""
    a = tf.random.normal((2048, 2048))
    x = tf.random.normal((8, 64, 64, 256))
    k = tf.random.normal((3, 3, 256, 256))
    mm = tf.function(lambda: tf.matmul(a, a))
    cv = tf.function(lambda: tf.nn.conv2d(x, k, 1, "SAME"))
    out = {}
    for name, fn, flops in (
        ("matmul", mm, 2 * 2048**3),
        ("conv3x3", cv, 2 * 8 * 64 * 64 * 256 * 256 * 9),
    ):
        fn().numpy()
        wall = cpu = float("inf")
        for _ in range(repeats):
            t, c = time.perf_counter(), time.process_time()
            fn().numpy()
            wall = min(wall, time.perf_counter() - t)
            cpu = min(cpu, time.process_time() - c)
        out[name] = (flops / wall, flops / cpu)
    return out


def model_config(size: int, preset: str) -> MaskRCNNConfig:
    """torchvision's defaults at ``size``, or the ct-lesions ``cpu`` preset's model."""
    if preset == "cpu":
        return CtLesionsConfig.cpu(image_size=size).model_config(num_classes=1, mean=0.3, std=0.25)
    return MaskRCNNConfig(image_size=size, num_classes=1, mean=0.3, std=0.25)


def run_size(
    size: int, *, preset: str, steps: int, device: str, precision: str = "float32"
) -> dict[str, float]:
    keras.backend.clear_session()  # resets the global policy: the scope applies it after
    with precision_scope(precision) as choice:
        r = _time_model(size, preset=preset, steps=steps, device=device)
    return {**r, "policy": choice.policy}


def _time_model(size: int, *, preset: str, steps: int, device: str) -> dict[str, float]:
    keras.utils.set_random_seed(0)
    config = model_config(size, preset)
    model = MaskRCNN(config)
    model.compile(optimizer=keras.optimizers.Adam(1e-4))
    batch = two_lesion_batch(size, config.max_instances)
    tensors = {k: tf.constant(v) for k, v in batch.items()}

    train = tf.function(model.train_step)
    t0 = time.perf_counter()
    float(train(tensors)["loss"])
    warm = time.perf_counter() - t0
    t, c = time.perf_counter(), time.process_time()
    for _ in range(steps):
        float(train(tensors)["loss"])
    train_s, train_cpu = (time.perf_counter() - t) / steps, (time.process_time() - c) / steps

    infer = tf.function(lambda x: model(x))
    images = tensors["images"]
    infer(images)["num_detections"].numpy()
    t, c = time.perf_counter(), time.process_time()
    for _ in range(steps):
        infer(images)["num_detections"].numpy()
    infer_s, infer_cpu = (time.perf_counter() - t) / steps, (time.process_time() - c) / steps
    return {
        "size": size,
        "train_s": train_s,
        "train_cpu_s": train_cpu,
        "infer_s": infer_s,
        "infer_cpu_s": infer_cpu,
        "warmup_s": warm,
        "train_gflop": graph_flops(train.get_concrete_function(tensors)) / 1e9,
        "infer_gflop": graph_flops(infer.get_concrete_function(images)) / 1e9,
        "peak_mib": peak_memory_mib(device),
    }


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    p.add_argument("--steps", type=int, default=3, help="timed steps per measurement")
    p.add_argument(
        "--cpu-preset-sizes",
        type=int,
        nargs="*",
        default=[256],
        help="sizes also timed with the ct-lesions cpu preset's model (fewer RoIs, 32 mask slots)",
    )
    p.add_argument(
        "--precision",
        nargs="+",
        default=["float32"],
        choices=PRECISIONS,
        help="each model is timed under each of these settings (kerassev.precision)",
    )
    args = p.parse_args(argv)
    device, name = find_device()
    peak = measured_peak()
    best = max(v[0] for v in peak.values())
    best_cpu = max(v[1] for v in peak.values())
    print(
        f"device: {name} ({device}); CPU cores: {os.cpu_count()}; TF {tf.__version__}, "
        f"Keras {keras.__version__}; Mask R-CNN ResNet-50-FPN, random init, batch 1, "
        f"{args.steps} timed steps after 1 warm-up"
    )
    print(
        f"measured peak: matmul {peak['matmul'][0] / 1e9:.0f} GFLOP/s "
        f"({peak['matmul'][1] / 1e9:.0f} per CPU-s), conv3x3 {peak['conv3x3'][0] / 1e9:.0f} "
        f"GFLOP/s ({peak['conv3x3'][1] / 1e9:.0f} per CPU-s); 'of peak' = achieved / best peak, "
        "by wall time and by CPU time (the CPU-time ratio is the one load from other processes "
        "disturbs least)"
    )
    mem = "GPU peak MiB" if device.startswith("GPU") else "proc RSS MiB"
    print(
        f"{'model':>11} {'size':>4} {'policy':>14} | {'train s/img':>11} {'CPU-s':>6} {'GFLOP':>6} {'peak wall':>9} "
        f"{'peak CPU':>8} | {'infer s/img':>11} {'CPU-s':>6} {'GFLOP':>6} {'peak wall':>9} "
        f"{'peak CPU':>8} | {'warm-up s':>9} {mem:>12}"
    )
    rows = [("torchvision", s) for s in args.sizes]
    rows += [("cpu preset", s) for s in args.cpu_preset_sizes]
    for (preset, size), precision in itertools.product(rows, args.precision):
        kind = "cpu" if preset == "cpu preset" else "default"
        r = run_size(size, preset=kind, steps=args.steps, device=device, precision=precision)
        cells = []
        for part in ("train", "infer"):
            flop = r[f"{part}_gflop"] * 1e9
            cells.append(
                f"{r[f'{part}_s']:>11.2f} {r[f'{part}_cpu_s']:>6.2f} {flop / 1e9:>6.0f} "
                f"{flop / r[f'{part}_s'] / best:>9.2f} {flop / r[f'{part}_cpu_s'] / best_cpu:>8.2f}"
            )
        print(
            f"{preset:>11} {size:>4} {r['policy']:>14} | {cells[0]} | {cells[1]} | {r['warmup_s']:>9.1f} "
            f"{r['peak_mib']:>12.0f}",
            flush=True,
        )


if __name__ == "__main__":
    main()

"""SimSiam training throughput: ResNet-50 encoder (random init), 2048-d projector, eq. 3 loss.

Times ``model.fit`` on in-memory random views (so the input pipeline is not measured) for each
image size x batch size x XLA setting, excluding warm-up steps (tracing / XLA compilation).
"images/s" counts training images; each is seen as two augmented views. Also prints images per
CPU-second of this process (less sensitive to other load on a shared CPU) and peak memory: the
GPU allocator's peak per configuration on GPU, the process peak RSS so far on CPU.

    .venv/bin/python benchmarks/ssl_step.py                      # default grid for the device
    .venv/bin/python benchmarks/ssl_step.py --sizes 224 --batches 32 --xla on --steps 10
    .venv/bin/python benchmarks/ssl_step.py --full               # full grid (slow on CPU)
    .venv/bin/python benchmarks/ssl_step.py --compare-torch      # vs PyTorch eager, same CPU

``--precision`` (default ``auto``: bf16 on AMX/AVX512-BF16 CPUs) sets the Keras policy;
``--plain-bn`` uses Keras' own BatchNormalization instead of the suite's fused one, to measure it.
``--compare-torch`` runs this step and ``ssl_step_torch.py``'s variants in fresh processes,
alternating for ``--rounds`` rounds, and prints the median of each and the ratio kerassev / best
PyTorch: the machine's speed drifts between sessions, the ratio much less.

On CPU the default grid is trimmed (see ``CPU_DEFAULT``) so it finishes in a few minutes on two
cores; on GPU it is 64/128/224 px x batch 8/32 x XLA off/on.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from _device import device as find_device  # noqa: E402
from _device import machine_line, peak_memory_mib  # noqa: E402

from kerassev.models.backbones import build_backbone  # noqa: E402
from kerassev.models.heads import build_encoder, build_predictor  # noqa: E402
from kerassev.models.ssl import SimSiam  # noqa: E402
from kerassev.precision import PRECISIONS, apply_precision  # noqa: E402

FULL = [(s, b, x) for x in (False, True) for s in (64, 128, 224) for b in (8, 32)]
# (size, batch, xla) on CPU: both ends of the size range, both batches at 224, XLA at the small end.
# About 5 minutes on two cores (tracing alone is 20-60 s per configuration).
CPU_DEFAULT = [(64, 8, False), (64, 8, True), (224, 8, False), (224, 32, False)]


class _StepTimer(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.wall, self.cpu = [], []

    def on_train_batch_end(self, batch, logs=None):
        if logs and "loss" in logs:
            float(logs["loss"])  # forces the step to finish before the clock is read
        self.wall.append(time.perf_counter())
        self.cpu.append(time.process_time())


def run_one(
    size,
    batch,
    xla,
    *,
    steps,
    warmup,
    projection_dim,
    freeze_backbone,
    device,
    fused_bn=True,
    policy="float32",
):
    keras.backend.clear_session()
    keras.mixed_precision.set_global_policy(policy)  # clear_session resets it to float32
    keras.utils.set_random_seed(0)
    if device.startswith("GPU"):
        tf.config.experimental.reset_memory_stats(device)
    backbone = build_backbone(
        "resnet50", weights=None, input_shape=(size, size, 3), fused_batch_norm=fused_bn
    )
    if freeze_backbone:
        backbone.trainable = False
    encoder = build_encoder(backbone, projection_dim=projection_dim)
    model = SimSiam(encoder, build_predictor(projection_dim, hidden=512))
    model.compile(optimizer=keras.optimizers.SGD(0.02, momentum=0.6), jit_compile=xla)
    rng = np.random.default_rng(0)
    views = tuple(rng.normal(size=(batch, size, size, 3)).astype("float32") for _ in range(2))
    data = tf.data.Dataset.from_tensors(views).repeat()
    timer = _StepTimer()
    t0 = time.perf_counter()
    model.fit(data, epochs=1, steps_per_epoch=warmup + steps, verbose=0, callbacks=[timer])
    warm_s = timer.wall[warmup - 1] - t0
    wall = timer.wall[-1] - timer.wall[warmup - 1]
    cpu = timer.cpu[-1] - timer.cpu[warmup - 1]
    return {
        "size": size,
        "batch": batch,
        "xla": xla,
        "img_s": steps * batch / wall,
        "img_cpu_s": steps * batch / cpu if cpu > 0 else float("nan"),
        "step_ms": 1000 * wall / steps,
        "warmup_s": warm_s,
        "peak_mib": peak_memory_mib(device),
    }


def _child(cmd: list[str]) -> dict:
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def compare_torch(args) -> None:
    """Alternate kerassev and each PyTorch variant in fresh processes; medians and the ratio."""
    torch_script = str(Path(__file__).with_name("ssl_step_torch.py"))
    grid = list(zip(args.sizes or [224, 112], args.batches or [32, 64], strict=True))
    print(machine_line())
    print(
        f"{args.rounds} alternating rounds of {args.warmup or 1} warm-up + {args.steps or 3} steps"
    )
    for size, batch in grid:
        runs: dict[str, list[float]] = {}
        for _ in range(args.rounds):
            mine = f"kerassev {args.precision}{' plain-bn' if args.plain_bn else ''}"
            cmd = [sys.executable, __file__, "--json", "--sizes", str(size), "--batches"]
            cmd += [str(batch), "--xla", "off", "--precision", args.precision]
            cmd += ["--steps", str(args.steps or 3), "--warmup", str(args.warmup or 1)]
            r = _child(cmd + (["--plain-bn"] if args.plain_bn else []))
            runs.setdefault(f"{mine} ({r['policy']})", []).append(r["img_s"])
            for variant in ("fp32-nchw", "fp32-cl", "bf16-cl"):
                cmd = [sys.executable, torch_script, "--json", "--variant", variant]
                cmd += ["--size", str(size), "--batch", str(batch)]
                cmd += ["--steps", str(args.steps or 3), "--warmup", str(args.warmup or 1)]
                r = _child(cmd)
                runs.setdefault(r["name"], []).append(r["img_s"])
        medians = {k: statistics.median(v) for k, v in runs.items()}
        ours = next(v for k, v in medians.items() if k.startswith("kerassev"))
        best_name, best = max(
            ((k, v) for k, v in medians.items() if k.startswith("torch")), key=lambda kv: kv[1]
        )
        print(f"\n{size} px, batch {batch} (source images/s, median of {args.rounds})")
        for name, value in medians.items():
            print(f"  {name:36s} {value:7.2f}")
        print(f"  ratio kerassev / best PyTorch ({best_name}): {ours / best:.2f}x", flush=True)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", help="image sizes (default: device grid)")
    p.add_argument("--batches", type=int, nargs="+", help="batch sizes (default: device grid)")
    p.add_argument(
        "--xla", choices=["off", "on", "both"], help="XLA setting (default: device grid)"
    )
    p.add_argument("--full", action="store_true", help="full 64/128/224 x 8/32 x XLA off/on grid")
    p.add_argument("--steps", type=int, help="timed steps (default 20 on GPU, 2 on CPU)")
    p.add_argument("--warmup", type=int, default=None, help="untimed steps (default 3 GPU, 1 CPU)")
    p.add_argument("--projection-dim", type=int, default=2048)
    p.add_argument("--freeze-backbone", action="store_true", help="stage A of §3.1 (frozen ResNet)")
    p.add_argument("--precision", choices=PRECISIONS, default="auto")
    p.add_argument("--plain-bn", action="store_true", help="Keras' BatchNormalization, not fused")
    p.add_argument("--compare-torch", action="store_true", help="alternate with PyTorch eager")
    p.add_argument("--rounds", type=int, default=2, help="alternating rounds for --compare-torch")
    p.add_argument("--json", action="store_true", help="one JSON line per configuration")
    args = p.parse_args(argv)
    if args.compare_torch:
        return compare_torch(args)
    choice = apply_precision(args.precision)

    device, name = find_device()
    on_gpu = device.startswith("GPU")
    steps = args.steps or (20 if on_gpu else 2)
    warmup = max(1, args.warmup if args.warmup is not None else (3 if on_gpu else 1))
    if args.full or on_gpu or args.sizes or args.batches or args.xla:
        xlas = {"off": [False], "on": [True], "both": [False, True], None: [False, True]}[args.xla]
        grid = [
            (s, b, x)
            for x in xlas
            for s in (args.sizes or [64, 128, 224])
            for b in (args.batches or [8, 32])
        ]
    else:
        grid = CPU_DEFAULT
    if not args.json:
        print(
            f"device: {name} ({device}); CPU cores: {os.cpu_count()}; TF {tf.__version__}, "
            f"Keras {keras.__version__}; backbone {'frozen' if args.freeze_backbone else 'trainable'}; "
            f"projector {args.projection_dim}; {warmup} warm-up + {steps} timed steps; precision "
            f"{choice.policy} ({choice.reason}); batch norm {'plain' if args.plain_bn else 'fused'}"
        )
        mem = "GPU peak MiB" if on_gpu else "proc RSS MiB"
        print(
            f"{'size':>5} {'batch':>5} {'xla':>4} {'img/s':>8} {'img/CPU-s':>9} {'ms/step':>9} {'warm-up s':>9} {mem:>13}"
        )
    for size, batch, xla in grid:
        r = run_one(
            size,
            batch,
            xla,
            steps=steps,
            warmup=warmup,
            projection_dim=args.projection_dim,
            freeze_backbone=args.freeze_backbone,
            device=device,
            fused_bn=not args.plain_bn,
            policy=choice.policy,
        )
        if args.json:
            print(json.dumps({**r, "policy": choice.policy}), flush=True)
            continue
        print(
            f"{r['size']:>5} {r['batch']:>5} {'on' if r['xla'] else 'off':>4} {r['img_s']:>8.1f} "
            f"{r['img_cpu_s']:>9.1f} {r['step_ms']:>9.0f} {r['warmup_s']:>9.1f} {r['peak_mib']:>13.0f}",
            flush=True,
        )


if __name__ == "__main__":
    main()

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
``--no-conv-bias`` drops the biases of Keras' ResNet-50 convolutions (each is followed by batch
norm, so in training they cancel; torchvision's ResNet has none), to measure what they cost.
``--compare-torch`` runs this step and ``ssl_step_torch.py``'s variants in fresh processes,
alternating for ``--rounds`` rounds, and prints the median of each and the ratio kerassev / best
PyTorch: the machine's speed drifts between sessions, the ratio much less. It names the CPU kind
and picks the pair for it: on a bf16 CPU (AMX or AVX512-BF16) kerassev ``auto`` against every
PyTorch variant; on an AVX2-only CPU float32 against PyTorch's float32 variants (bf16 autocast
there is emulated). ``--isa avx2`` caps oneDNN, MKL and PyTorch's kernels at AVX2 in both
frameworks' processes, which stands in for the AVX2-only kind on a bigger CPU (an emulation:
same cores and caches). ``--intra-op`` / ``--inter-op`` set both frameworks' thread pools.

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
from kerassev.precision import PRECISIONS, apply_precision, cpu_flags  # noqa: E402

FULL = [(s, b, x) for x in (False, True) for s in (64, 128, 224) for b in (8, 32)]
# (size, batch, xla) on CPU: both ends of the size range, both batches at 224, XLA at the small end.
# About 5 minutes on two cores (tracing alone is 20-60 s per configuration).
CPU_DEFAULT = [(64, 8, False), (64, 8, True), (224, 8, False), (224, 32, False)]
# --isa avx2: oneDNN (TF's and PyTorch's convolutions and matmuls), PyTorch's ATen kernels and MKL
# capped at AVX2. TF's Eigen kernels are built for AVX2 at most already (its start-up banner).
ISA_CAPS = {
    "avx2": {
        "ONEDNN_MAX_CPU_ISA": "AVX2",
        "ATEN_CPU_CAPABILITY": "avx2",
        "MKL_ENABLE_INSTRUCTIONS": "AVX2",
    }
}


class _StepTimer(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.wall, self.cpu, self.loss = [], [], []

    def on_train_batch_end(self, batch, logs=None):
        if logs and "loss" in logs:  # float() forces the step to finish before the clock is read
            self.loss.append(float(logs["loss"]))
        self.wall.append(time.perf_counter())
        self.cpu.append(time.process_time())


def _without_conv_bias(layer):
    config = layer.get_config()
    if isinstance(layer, keras.layers.Conv2D):
        config["use_bias"] = False
    return layer.__class__.from_config(config)


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
    conv_bias=True,
):
    keras.backend.clear_session()
    keras.mixed_precision.set_global_policy(policy)  # clear_session resets it to float32
    keras.utils.set_random_seed(0)
    if device.startswith("GPU"):
        tf.config.experimental.reset_memory_stats(device)
    backbone = build_backbone(
        "resnet50", weights=None, input_shape=(size, size, 3), fused_batch_norm=fused_bn
    )
    if not conv_bias:
        backbone = keras.models.clone_model(backbone, clone_function=_without_conv_bias)
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
        "losses": [round(v, 5) for v in timer.loss],  # same seed and data: settings comparable
    }


def _child(cmd: list[str], env: dict | None = None) -> dict:
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    return json.loads(out.strip().splitlines()[-1])


def compare_torch(args) -> None:
    """Alternate kerassev and each PyTorch variant in fresh processes; medians and the ratio."""
    torch_script = str(Path(__file__).with_name("ssl_step_torch.py"))
    grid = list(zip(args.sizes or [224, 112], args.batches or [32, 64], strict=True))
    env = {**os.environ, **ISA_CAPS.get(args.isa, {})}
    bf16_cpu = bool(cpu_flags() & {"amx_bf16", "avx512_bf16"}) and args.isa is None
    precision, variants = args.precision, ("fp32-nchw", "fp32-cl", "bf16-cl")
    if not bf16_cpu:  # the AVX2-only kind: float32 against float32
        precision, variants = "float32", ("fp32-nchw", "fp32-cl")
    threads = []
    if args.intra_op:
        threads += ["--intra-op", str(args.intra_op)]
    if args.inter_op:
        threads += ["--inter-op", str(args.inter_op)]
    torch_threads = []
    if args.intra_op:
        torch_threads += ["--threads", str(args.intra_op)]
    if args.inter_op:
        torch_threads += ["--interop-threads", str(args.inter_op)]
    print(machine_line())
    kind = "bf16 (AMX or AVX512-BF16)" if bf16_cpu else "AVX2 only, no bf16"
    capped = f" (emulated: ISA capped by {' '.join(ISA_CAPS[args.isa])})" if args.isa else ""
    print(f"kind: {kind}{capped}; kerassev {precision} against torch {', '.join(variants)}")
    print(
        f"{args.rounds} alternating rounds of {args.warmup or 1} warm-up + {args.steps or 3} steps"
    )
    for size, batch in grid:
        runs: dict[str, list[float]] = {}
        for _ in range(args.rounds):
            mine = f"kerassev {precision}{' plain-bn' if args.plain_bn else ''}"
            mine += " no-conv-bias" if args.no_conv_bias else ""
            cmd = [sys.executable, __file__, "--json", "--sizes", str(size), "--batches"]
            cmd += [str(batch), "--xla", args.xla or "off", "--precision", precision, *threads]
            cmd += ["--steps", str(args.steps or 3), "--warmup", str(args.warmup or 1)]
            cmd += ["--plain-bn"] if args.plain_bn else []
            r = _child(cmd + (["--no-conv-bias"] if args.no_conv_bias else []), env)
            runs.setdefault(f"{mine} ({r['policy']})", []).append(r["img_s"])
            for variant in variants:
                cmd = [sys.executable, torch_script, "--json", "--variant", variant]
                cmd += ["--size", str(size), "--batch", str(batch), *torch_threads]
                cmd += ["--steps", str(args.steps or 3), "--warmup", str(args.warmup or 1)]
                r = _child(cmd, env)
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
    p.add_argument("--no-conv-bias", action="store_true", help="ResNet-50 convs without biases")
    p.add_argument("--compare-torch", action="store_true", help="alternate with PyTorch eager")
    p.add_argument("--rounds", type=int, default=2, help="alternating rounds for --compare-torch")
    p.add_argument("--json", action="store_true", help="one JSON line per configuration")
    p.add_argument("--intra-op", type=int, help="intra-op threads (default: TF's, the cores)")
    p.add_argument("--inter-op", type=int, help="inter-op threads (default: TF's)")
    p.add_argument("--isa", choices=sorted(ISA_CAPS), help="cap the ISA (emulate that CPU kind)")
    args = p.parse_args(argv)
    if args.isa and any(os.environ.get(k) != v for k, v in ISA_CAPS[args.isa].items()):
        # the caps are read when the libraries load: start again with them set
        os.execve(sys.executable, [sys.executable, __file__, *(argv or sys.argv[1:])],
                  {**os.environ, **ISA_CAPS[args.isa]})  # fmt: skip
    if args.intra_op:
        tf.config.threading.set_intra_op_parallelism_threads(args.intra_op)
    if args.inter_op:
        tf.config.threading.set_inter_op_parallelism_threads(args.inter_op)
    if args.compare_torch:
        if args.xla == "both":
            p.error("--compare-torch times one XLA setting: --xla off or on")
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
            f"{choice.policy} ({choice.reason}); batch norm {'plain' if args.plain_bn else 'fused'}; conv biases "
            f"{'off' if args.no_conv_bias else 'on'}"
        )
        mem = "GPU peak MiB" if on_gpu else "proc RSS MiB"
        print(
            f"{'size':>5} {'batch':>5} {'xla':>4} {'img/s':>8} {'img/CPU-s':>9} {'ms/step':>9} {'warm-up s':>9} {mem:>13}  running-mean loss per step"
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
            conv_bias=not args.no_conv_bias,
            policy=choice.policy,
        )
        if args.json:
            print(json.dumps({**r, "policy": choice.policy}), flush=True)
            continue
        print(
            f"{r['size']:>5} {r['batch']:>5} {'on' if r['xla'] else 'off':>4} {r['img_s']:>8.1f} "
            f"{r['img_cpu_s']:>9.1f} {r['step_ms']:>9.0f} {r['warmup_s']:>9.1f} {r['peak_mib']:>13.0f}  "
            f"{' '.join(f'{v:.4f}' for v in r['losses'])}",
            flush=True,
        )


if __name__ == "__main__":
    main()

"""The run settings every recipe config shares (a base dataclass: its fields come first)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RunSettings:
    # auto | float32 | bfloat16 | float16 (kerassev.precision): auto is bf16 on AMX/AVX512-BF16
    # CPUs, mixed_float16 on tensor-core GPUs, float32 otherwise. Smoke presets pin float32, so
    # CI numbers are the same on every machine; bf16 numerics are tested on their own.
    precision: str = "auto"
    # auto | none | mirrored | multi_worker (kerassev.distribute): auto is MultiWorkerMirrored
    # under a multi-task TF_CONFIG, Mirrored on 2+ GPUs, else one device; batch sizes are global.
    distribution: str = "auto"

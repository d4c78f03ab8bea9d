"""What the benchmarks share: the device they time on and its peak memory."""

from __future__ import annotations

import os
import platform
import resource
from pathlib import Path

import tensorflow as tf


def device() -> tuple[str, str]:
    """``("GPU:0" | "CPU", human-readable name)``."""
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        return "GPU:0", details.get("device_name", "GPU")
    return "CPU", f"CPU ({cpu_model()})"


def peak_memory_mib(device_name: str) -> float:
    """The GPU allocator's peak on GPU; on CPU the process's peak RSS so far (Linux: KiB)."""
    if device_name.startswith("GPU"):
        return tf.config.experimental.get_memory_info(device_name)["peak"] / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_model() -> str:
    """The CPU's marketing name from /proc/cpuinfo (``platform.processor()`` is often empty)."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        lines = []
    names = (ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name"))
    return next(names, platform.processor() or platform.machine())


def machine_line() -> str:
    """CPU model, the ISA flags that decide bf16 speed, and thread counts."""
    from kerassev.precision import cpu_flags

    isa = sorted(cpu_flags() & {"avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile"})
    return (
        f"CPU: {cpu_model()}; cores {os.cpu_count()}; ISA {' '.join(isa) or '-'}; TF threads "
        f"intra {tf.config.threading.get_intra_op_parallelism_threads() or 'auto'} / inter "
        f"{tf.config.threading.get_inter_op_parallelism_threads() or 'auto'}"
    )

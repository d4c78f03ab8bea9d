"""What the benchmarks share: the device they time on and its peak memory."""

from __future__ import annotations

import platform
import resource

import tensorflow as tf


def device() -> tuple[str, str]:
    """``("GPU:0" | "CPU", human-readable name)``."""
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        return "GPU:0", details.get("device_name", "GPU")
    return "CPU", f"CPU ({platform.processor() or platform.machine()})"


def peak_memory_mib(device_name: str) -> float:
    """The GPU allocator's peak on GPU; on CPU the process's peak RSS so far (Linux: KiB)."""
    if device_name.startswith("GPU"):
        return tf.config.experimental.get_memory_info(device_name)["peak"] / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

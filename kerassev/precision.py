"""Numeric precision as a setting: ``auto | float32 | bfloat16 | float16``.

``auto`` picks what is fast and safe on the machine at hand:

* a GPU with tensor cores (compute capability >= 7.0) -> ``mixed_float16``;
* a CPU with AMX-BF16 or AVX512-BF16 (oneDNN runs bf16 convolutions and matmuls natively there,
  ~3x float32 on AMX) -> ``mixed_bfloat16``;
* otherwise ``float32`` (bf16 without hardware support is emulated and slower).

Mixed policies keep variables in float32 and compute in 16 bits; the suite's losses, batch-norm
statistics (:mod:`kerassev.models.batch_norm`), collapse monitor and metrics are float32.
:func:`resolve_precision` says what it chose and why, for the run folder. Note that
``keras.backend.clear_session()`` resets the global policy to float32: apply the policy after it.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

PRECISIONS = ("auto", "float32", "bfloat16", "float16")
_POLICY = {"float32": "float32", "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}
_BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")


@dataclass(frozen=True)
class PrecisionChoice:
    setting: str  # what was asked for
    policy: str  # the Keras dtype policy applied
    reason: str  # why, in one line

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


def cpu_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> set[str]:
    """The CPU feature flags Linux reports (empty where ``/proc/cpuinfo`` does not exist)."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def _tensor_core_gpu() -> str | None:
    import tensorflow as tf

    for gpu in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(gpu)
        if tuple(details.get("compute_capability", (0, 0))) >= (7, 0):
            return details.get("device_name", gpu.name)
    return None


def resolve_precision(
    setting: str = "auto", *, flags: set[str] | None = None, gpu: str | None | bool = False
) -> PrecisionChoice:
    """The policy for ``setting``; ``flags`` and ``gpu`` override detection (for tests)."""
    if setting not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}; got {setting!r}")
    if setting != "auto":
        return PrecisionChoice(setting, _POLICY[setting], "set explicitly")
    gpu_name = _tensor_core_gpu() if gpu is False else gpu
    if gpu_name:
        return PrecisionChoice(setting, "mixed_float16", f"GPU with tensor cores ({gpu_name})")
    found = sorted((cpu_flags() if flags is None else flags) & set(_BF16_CPU_FLAGS))
    if found:
        return PrecisionChoice(
            setting, "mixed_bfloat16", f"CPU with native bf16 ({', '.join(found)})"
        )
    return PrecisionChoice(setting, "float32", "no tensor-core GPU and no bf16 CPU instructions")


_active: PrecisionChoice | None = None


def apply_precision(setting: str = "auto") -> PrecisionChoice:
    """Resolve ``setting`` and make it Keras' global dtype policy (call before building models)."""
    import keras  # here, not at the top: the CLI imports this module before TensorFlow is quiet

    global _active
    choice = resolve_precision(setting)
    keras.mixed_precision.set_global_policy(choice.policy)
    _active = choice
    return choice


def active_precision() -> dict[str, str]:
    """What the current Keras policy is and why (what run folders record)."""
    import keras

    policy = keras.mixed_precision.global_policy().name
    if _active is not None and _active.policy == policy:
        return _active.to_dict()
    return PrecisionChoice(
        "float32" if policy == "float32" else policy, policy, "Keras global policy"
    ).to_dict()


@contextlib.contextmanager
def precision_scope(setting: str = "auto") -> Iterator[PrecisionChoice]:
    """Apply ``setting`` for the block, then restore the previous policy (so a recipe run inside
    a notebook or test leaves the process as it found it)."""
    import keras

    global _active
    previous, previous_active = keras.mixed_precision.global_policy(), _active
    try:
        yield apply_precision(setting)
    finally:
        keras.mixed_precision.set_global_policy(previous)
        _active = previous_active


def runs_in_configured_precision(fn):
    """Decorator for a recipe entry point whose first argument is a config with ``precision``:
    the run builds and trains its models under that policy and restores the previous one."""

    @functools.wraps(fn)
    def wrapper(config, *args, **kwargs):
        with precision_scope(getattr(config, "precision", "auto")):
            return fn(config, *args, **kwargs)

    return wrapper

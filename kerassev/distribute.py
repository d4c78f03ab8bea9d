"""Where a recipe trains, as a setting: ``distribution = auto | none | mirrored | multi_worker``.

* ``none``: TensorFlow's default strategy (one device: the CPU, or the first GPU);
* ``mirrored``: ``tf.distribute.MirroredStrategy`` over every local GPU (synchronous data
  parallelism on one machine; with no GPU, over the CPU devices TensorFlow sees);
* ``multi_worker``: ``tf.distribute.MultiWorkerMirroredStrategy`` across the machines that
  ``TF_CONFIG`` lists (SageMaker distributed training, Kubernetes / TFJob and ``tf.distribute``'s
  own launchers set it); every worker runs the same command;
* ``auto``: ``multi_worker`` when ``TF_CONFIG`` names more than one task, ``mirrored`` when there
  are two or more GPUs, else ``none``.

The suite's models scale their losses per replica (``kerassev.models.ssl.base``), so a config's
batch sizes are *global* batches, split across replicas by ``fit``; batch norm normalises each
replica's share (as PyTorch's DistributedDataParallel does without SyncBatchNorm).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass

DISTRIBUTIONS = ("auto", "none", "mirrored", "multi_worker")


@dataclass(frozen=True)
class DistributionChoice:
    setting: str  # what was asked for
    strategy: str  # "none" | "mirrored" | "multi_worker"
    reason: str  # why, in one line

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


def _tf_config_tasks(tf_config: str | None) -> int:
    """How many tasks ``TF_CONFIG``'s cluster lists (0 where unset or unreadable)."""
    if not tf_config:
        return 0
    try:
        cluster = json.loads(tf_config).get("cluster", {})
    except (ValueError, AttributeError) as err:
        raise ValueError(f"TF_CONFIG is not valid JSON with a 'cluster': {err}") from err
    return sum(len(v) for v in cluster.values())


def resolve_distribution(
    setting: str = "auto", *, tf_config: str | None | bool = False, gpus: int | None = None
) -> DistributionChoice:
    """The strategy for ``setting``; ``tf_config`` and ``gpus`` override detection (tests)."""
    if setting not in DISTRIBUTIONS:
        raise ValueError(f"distribution must be one of {', '.join(DISTRIBUTIONS)}; got {setting!r}")
    if setting != "auto":
        return DistributionChoice(setting, setting, "set explicitly")
    tasks = _tf_config_tasks(os.environ.get("TF_CONFIG") if tf_config is False else tf_config)
    if tasks > 1:
        return DistributionChoice(setting, "multi_worker", f"TF_CONFIG lists {tasks} tasks")
    if gpus is None:
        import tensorflow as tf

        gpus = len(tf.config.list_physical_devices("GPU"))
    if gpus > 1:
        return DistributionChoice(setting, "mirrored", f"{gpus} GPUs on this machine")
    return DistributionChoice(setting, "none", f"one machine, {gpus} GPU(s): one device")


def make_strategy(kind: str):
    """The ``tf.distribute`` strategy for a resolved kind."""
    import tensorflow as tf

    if kind == "mirrored":
        return tf.distribute.MirroredStrategy()
    if kind == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    if kind == "none":
        return tf.distribute.get_strategy()
    raise ValueError(f"unknown strategy kind {kind!r}")


_active: DistributionChoice | None = None


@contextlib.contextmanager
def distribution_scope(setting: str = "auto") -> Iterator[DistributionChoice]:
    """Build and train the block's models under ``setting``'s strategy."""
    global _active
    choice = resolve_distribution(setting)
    previous = _active
    _active = choice
    try:
        if choice.strategy == "none":
            yield choice
        else:
            with make_strategy(choice.strategy).scope():
                yield choice
    finally:
        _active = previous


def active_distribution() -> dict[str, object]:
    """The strategy in force and why, with its replica count (what run folders record)."""
    import tensorflow as tf

    strategy = tf.distribute.get_strategy()
    base = _active or DistributionChoice("none", "none", "default strategy")
    return {**base.to_dict(), "replicas": int(strategy.num_replicas_in_sync)}


def scale_for_replicas(loss):
    """A per-replica loss divided by the replica count: ``tf.distribute`` sums gradients across
    replicas, so a custom ``train_step`` scales before taking them (Keras' own does the same)."""
    import tensorflow as tf

    n = tf.distribute.get_strategy().num_replicas_in_sync
    return loss / n if n > 1 else loss


def runs_under_configured_distribution(fn):
    """Decorator for a recipe entry point whose first argument is a config with
    ``distribution``: the run builds and trains its models under that strategy."""

    @functools.wraps(fn)
    def wrapper(config, *args, **kwargs):
        with distribution_scope(getattr(config, "distribution", "auto")):
            return fn(config, *args, **kwargs)

    return wrapper

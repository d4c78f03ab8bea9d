"""Where a recipe trains, as a setting: ``distribution = auto | none | mirrored | multi_worker``.

* ``none``: TensorFlow's default strategy (one device: the CPU, or the first GPU);
* ``mirrored``: ``tf.distribute.MirroredStrategy`` over every local GPU (synchronous data
  parallelism on one machine; with no GPU, over the logical CPU devices configured, else one);
* ``multi_worker``: ``tf.distribute.MultiWorkerMirroredStrategy`` across the machines that
  ``TF_CONFIG`` lists (SageMaker distributed training, Kubernetes / TFJob and ``tf.distribute``'s
  own launchers set it); every worker runs the same command;
* ``auto``: ``multi_worker`` when ``TF_CONFIG`` names more than one task, ``mirrored`` when there
  are two or more GPUs, else ``none``.

The suite's models scale their losses per replica (``kerassev.models.ssl.base``), so a config's
batch sizes are *global* batches, split across replicas by ``fit``; batch norm normalises each
replica's share (as PyTorch's DistributedDataParallel does without SyncBatchNorm).

Under ``multi_worker`` each worker reads its own shard of every global batch
(:func:`shard_by_data`), only the chief writes the run folder (:mod:`kerassev.distributed_io`),
and ``run.json`` records the strategy class, the cluster and the worker count.
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

    if kind != "none":
        _fix_keras_fit_under_strategies()
    if kind == "mirrored":
        cpus = tf.config.list_logical_devices("CPU")
        if not tf.config.list_logical_devices("GPU") and len(cpus) > 1:
            return tf.distribute.MirroredStrategy([d.name for d in cpus])
        return tf.distribute.MirroredStrategy()
    if kind == "multi_worker":
        try:
            return tf.distribute.MultiWorkerMirroredStrategy()
        except RuntimeError as err:  # "Collective ops must be configured at program startup"
            raise RuntimeError(
                f"{err}: under distribution=multi_worker, enter the distribution scope (or call "
                "the recipe) before TensorFlow runs anything else in this process"
            ) from err
    if kind == "none":
        return tf.distribute.get_strategy()
    raise ValueError(f"unknown strategy kind {kind!r}")


def _fix_keras_fit_under_strategies() -> None:
    """Let Keras 3's ``fit`` run under ``MultiWorkerMirroredStrategy`` (and resume exactly under
    any strategy: (3) below). Idempotent; installed when a strategy is made.

    Keras 3.15 (tensorflow/tensorflow#72388) (1) averages a step's logs across workers with
    ``strategy.reduce("MEAN", v, axis=0)``, which fails on the scalar logs every train step
    returns ("Invalid reduction dimension 0 for input with 0 dimensions"); the logs come from
    metric variables the strategy already keeps in sync, so ``axis=None`` is what was meant; and
    (2) before the first step reduces the whole first batch, an ``(x, y)`` tuple, in one call the
    multi-worker strategy cannot take; only its shapes are needed, which one replica's part gives;
    (3) under any strategy it pulls that batch even when nothing needs building.
    """
    from keras import tree
    from keras.src.backend.tensorflow import trainer

    original_reduce = trainer.reduce_per_replica
    if getattr(original_reduce, "kerassev_fix", False):
        return

    def reduce_per_replica(values, strategy, reduction):
        if reduction in ("auto", "mean") and trainer._collective_all_reduce_multi_worker(strategy):
            return tree.map_structure(lambda v: strategy.reduce("MEAN", v, axis=None), values)
        return original_reduce(values, strategy, reduction)

    original_build = trainer.TensorFlowTrainer._maybe_symbolic_build

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        strategy = self._distribute_strategy
        if iterator is not None and not _needs_a_batch(self):
            # Nothing to build from data (the suite's models are built before fit): pull no
            # batch. That pull opens an extra iterator whose passes advance the feed's reshuffle
            # seeds, so a stage resumed mid-way would not see the batches of an uninterrupted run.
            return original_build(self)
        if iterator is None or not trainer._collective_all_reduce_multi_worker(strategy):
            return original_build(self, iterator=iterator, data_batch=data_batch)
        for _, _, it in iterator:
            data_batch = tree.map_structure(
                lambda v: (
                    strategy.experimental_local_results(v)[0]
                    if isinstance(v, tf.distribute.DistributedValues)
                    else v
                ),
                next(it),
            )
            break
        return original_build(self, data_batch=data_batch)

    def _needs_a_batch(model) -> bool:  # what Trainer._symbolic_build builds from a batch
        return not all(layer.built for layer in model._flatten_layers()) or any(
            part is not None and not part.built
            for part in (model._compile_metrics, model._compile_loss)
        )

    import tensorflow as tf

    reduce_per_replica.kerassev_fix = True
    trainer.reduce_per_replica = reduce_per_replica
    trainer.TensorFlowTrainer._maybe_symbolic_build = _maybe_symbolic_build


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

    from kerassev.distributed_io import cluster_workers, task_of

    strategy = tf.distribute.get_strategy()
    base = _active or DistributionChoice("none", "none", "default strategy")
    record = {
        **base.to_dict(),
        "replicas": int(strategy.num_replicas_in_sync),
        "tf_strategy": _public_name(strategy),
        "workers": 1,
    }
    if base.strategy == "multi_worker":
        workers = cluster_workers()
        record.update(workers=len(workers), cluster=workers, task="{} {}".format(*task_of()))
    return record


def _public_name(strategy) -> str:
    """The ``tf.distribute`` name of ``strategy`` (MultiWorkerMirroredStrategy's class is called
    CollectiveAllReduceStrategy)."""
    import tensorflow as tf

    for name in ("MultiWorkerMirroredStrategy", "MirroredStrategy", "OneDeviceStrategy"):
        if isinstance(strategy, getattr(tf.distribute, name)):
            return name
    return type(strategy).__name__


def multi_worker_active() -> bool:
    """Whether the block runs under ``MultiWorkerMirroredStrategy`` (one of several workers)."""
    return _active is not None and _active.strategy == "multi_worker"


def shard_by_data(dataset):
    """``dataset`` with tf.data's DATA auto-shard policy: under ``MultiWorkerMirroredStrategy``
    each worker keeps its own part of every global batch (worker i the i-th contiguous
    ``batch / workers`` rows, as ``MirroredStrategy`` splits a batch among its replicas). In-memory
    arrays have no files to shard by (the default AUTO policy tries FILE first and then warns)."""
    import tensorflow as tf

    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


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

"""Who writes what in a multi-worker run (Keras' multi-worker convention).

Under ``MultiWorkerMirroredStrategy`` every worker runs the same command and the same code, so
every worker would write a run folder. Only the *chief* (``TF_CONFIG`` task ``chief``, or worker 0
when the cluster has no chief job) writes one in ``--out``: run.json, logs, checkpoints, tables,
figures and exports. Every other worker writes the same files into a temporary folder
(:func:`scratch_parent`, under ``$TMPDIR``) that :meth:`kerassev.runs.RunFolder.mark_complete`
removes, as tf.keras' multi-worker ``ModelCheckpoint`` / ``BackupAndRestore`` do with their
``workertemp_<id>`` folders.

A worker restarted after a failure must continue from the same state as the chief, or the
workers would run different numbers of steps and wait on each other forever; so a non-chief
worker that resumes copies the chief's run folder (:func:`copy_for_worker`), which needs a file
system all workers see (the loopback cluster of the tests, or a shared volume). Where the hosts
share no file system (SageMaker), a failed job is simply started again.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

#: What a worker's copy of the chief's run folder leaves out (summaries, set-aside partial
#: outputs, files being written at this moment).
_NOT_COPIED = ("tensorboard", "incomplete-*", "*.tmp", "partial-*")


def _tf_config(tf_config: str | None | bool = False) -> dict:
    text = os.environ.get("TF_CONFIG") if tf_config is False else tf_config
    if not text:
        return {}
    try:
        config = json.loads(text)
    except ValueError as err:
        raise ValueError(f"TF_CONFIG is not valid JSON: {err}") from err
    if not isinstance(config, dict):
        raise ValueError(f"TF_CONFIG must be a JSON object, got {text[:200]}")
    return config


def cluster_workers(tf_config: str | None | bool = False) -> list[str]:
    """Every task's address in ``TF_CONFIG``, chief first (what a run records as its cluster)."""
    cluster = _tf_config(tf_config).get("cluster", {})
    return [*cluster.get("chief", []), *cluster.get("worker", [])]


def task_of(tf_config: str | None | bool = False) -> tuple[str, int]:
    """This process's ``(task type, index)``; ``("worker", 0)`` without ``TF_CONFIG``."""
    task = _tf_config(tf_config).get("task", {})
    return str(task.get("type", "worker")), int(task.get("index", 0))


def is_chief(tf_config: str | None | bool = False) -> bool:
    """Whether this process writes the run's outputs: the ``chief`` task, or worker 0 of a
    cluster without one (``tf.distribute``'s rule); True outside a cluster."""
    kind, index = task_of(tf_config)
    if "chief" in _tf_config(tf_config).get("cluster", {}):
        return kind == "chief"
    return kind == "worker" and index == 0


def scratch_parent(tf_config: str | None | bool = False) -> Path:
    """A new temporary folder for a non-chief worker's run folder."""
    kind, index = task_of(tf_config)
    return Path(tempfile.mkdtemp(prefix=f"kerassev-{kind}{index}-"))


def copy_for_worker(run_path: str | Path, tf_config: str | None | bool = False) -> Path:
    """A non-chief worker's temporary copy of the chief's run folder ``run_path`` (checkpoints,
    backups and logs: the state a resumed stage restores)."""
    run_path = Path(run_path)
    kind, index = task_of(tf_config)
    # copies this task left when it was killed: SIGKILL runs no clean-up
    for stale in Path(tempfile.gettempdir()).glob(f"kerassev-{kind}{index}-*/{run_path.name}"):
        shutil.rmtree(stale.parent, ignore_errors=True)
    target = scratch_parent(tf_config) / run_path.name
    shutil.copytree(run_path, target, ignore=shutil.ignore_patterns(*_NOT_COPIED))
    return target


def remove_scratch(run_path: str | Path) -> None:
    """Delete a non-chief worker's temporary run folder and the folder made for it."""
    run_path = Path(run_path)
    shutil.rmtree(run_path.parent if run_path.parent.name.startswith("kerassev-") else run_path)

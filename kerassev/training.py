"""Resumable training stages shared by every recipe.

A *stage* is one ``model.fit`` call with its own optimiser schedule (e.g. SimSiam stage A,
stage B, regressor head, fine-tuning). :func:`fit_stage` makes every stage survive a kill:

- Keras' ``BackupAndRestore`` saves model, optimiser and epoch counter after every epoch and,
  when the same stage is started again, restores them and continues from the next epoch;
- a finished stage writes ``checkpoints/<stage>.weights.h5`` and is recorded in ``run.json``,
  so a resumed run loads its weights instead of training it again;
- per-epoch metrics go to ``logs/<stage>.csv`` (appended across resumes) and TensorBoard;
- ``verbose=1`` shows one progress bar per stage (epochs, with the latest loss), not Keras'
  bar per epoch; ``verbose=2`` Keras' one line per epoch.

Stage checkpoints hold the optimiser state too (a ResNet-50 fine-tuned with Adam is ~375 MB), so
once a stage's product is saved elsewhere (an SSL encoder in ``models/``, a fold's out-of-fold
predictions) :func:`discard_stage_checkpoints` deletes them: paper 01's smoke run keeps 1.1 GB
(models and exports) instead of 7.6 GB.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from pathlib import Path

import keras
import pandas as pd

from kerassev.runs import RunError, RunFolder

log = logging.getLogger(__name__)


def _is_array(x) -> bool:
    return hasattr(x, "shape") and hasattr(x, "dtype")


def warmup_cosine(lr: float, *, steps: int, warmup_steps: int = 0):
    """Cosine decay from ``lr`` to 0 over ``steps``, the first ``warmup_steps`` of them a linear
    warm-up from 0 (Goyal et al. 2017) where given."""
    warmup_steps = min(max(0, warmup_steps), max(0, steps - 1))
    if not warmup_steps:
        return keras.optimizers.schedules.CosineDecay(lr, decay_steps=max(1, steps))
    return keras.optimizers.schedules.CosineDecay(
        0.0, decay_steps=steps - warmup_steps, warmup_target=lr, warmup_steps=warmup_steps
    )


def cosine_sgd(
    lr: float,
    *,
    momentum: float,
    steps: int,
    weight_decay: float | None = None,
    warmup_steps: int = 0,
):
    """SGD with momentum on :func:`warmup_cosine` (paper 01, §3.1: cosine decay, no warm-up)."""
    schedule = warmup_cosine(lr, steps=steps, warmup_steps=warmup_steps)
    return keras.optimizers.SGD(schedule, momentum=momentum, weight_decay=weight_decay)


class StageProgress(keras.callbacks.Callback):
    """One tqdm bar for a whole stage: a tick per epoch, the latest loss beside it."""

    def __init__(self, stage: str, epochs: int, *, leave: bool = True):
        super().__init__()
        self.stage, self.epochs, self.leave = stage, epochs, leave
        self.bar = None

    def on_train_begin(self, logs=None):
        from tqdm.auto import tqdm

        self.bar = tqdm(total=self.epochs, desc=self.stage, unit="epoch", leave=self.leave)

    def on_epoch_end(self, epoch, logs=None):
        # BackupAndRestore may resume mid-stage: the bar shows the epoch reached, not a count.
        self.bar.n = epoch + 1
        if logs and "loss" in logs:
            self.bar.set_postfix(loss=f"{float(logs['loss']):.4g}", refresh=False)
        self.bar.refresh()

    def on_train_end(self, logs=None):
        if self.bar is not None:
            self.bar.close()


class ModelState:
    """Weights and optimiser state of a compiled model, to start every CV fold afresh.

    Tracing a ResNet-50 train step costs ~20 s on a 2-core CPU, more than an epoch of the smoke
    preset. Recipes therefore compile one model per stage and, before each fold, restore the
    state captured here instead of building and compiling a new model.
    """

    def __init__(self, model: keras.Model):
        if model.optimizer is None:
            raise ValueError(f"model {model.name!r} must be compiled before its state is captured")
        if not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
        self.weights = [w.copy() for w in model.get_weights()]
        self.optimizer = [v.numpy().copy() for v in model.optimizer.variables]

    def restore(self, model: keras.Model) -> None:
        model.set_weights(self.weights)
        for var, value in zip(model.optimizer.variables, self.optimizer, strict=True):
            var.assign(value)


def _stage_key(stage: str) -> str:
    return stage.replace("/", "__")


def stage_weights_path(run: RunFolder, stage: str):
    return run.subdir("checkpoints") / f"{_stage_key(stage)}.weights.h5"


def stage_backup_dir(run: RunFolder, stage: str) -> Path:
    """Where ``BackupAndRestore`` keeps an unfinished stage's last finished epoch."""
    return run.subdir("checkpoints", "backup", _stage_key(stage))


def backed_up_epochs(run: RunFolder, stage: str) -> int:
    """How many epochs of ``stage`` a restart restores from its backup (0 without one)."""
    meta = run.path / "checkpoints" / "backup" / _stage_key(stage) / "training_metadata.json"
    try:
        return int(json.loads(meta.read_text())["epoch"])
    except (OSError, ValueError, KeyError):
        return 0


def save_model_weights(model: keras.Model, path: str | Path) -> Path:
    """Save the layers' weights only (``model.save_weights`` on a compiled model also writes its
    optimiser state, 2-3x the size), atomically: a kill mid-write leaves no half file behind."""
    path = Path(path)
    if not path.name.endswith(".weights.h5"):
        raise ValueError(f"{path}: weights files must end in .weights.h5")
    # A functional model over the same graph shares the layers but has no optimiser.
    _save_atomically(keras.Model(model.inputs, model.outputs), path)
    return path


def _save_atomically(model: keras.Model, path: Path) -> None:
    partial = path.with_name(f"partial-{path.name}")
    model.save_weights(partial)
    partial.replace(path)


def discard_stage_checkpoints(run: RunFolder, prefix: str) -> list[str]:
    """Delete the end-of-stage checkpoints of the run's finished stages named ``prefix...``.

    Call it once what the stages produced is saved elsewhere. The stages stay recorded as done,
    with the discard noted in ``run.json``; returns the stages whose files were deleted.
    """
    discarded = []
    for stage in run.info["stages_done"]:
        path = stage_weights_path(run, stage)
        if stage.startswith(prefix) and path.is_file():
            path.unlink()
            discarded.append(stage)
    if discarded:
        run.info.setdefault("checkpoints_discarded", []).extend(discarded)
        run.save()
        log.info("discarded %d finished-stage checkpoint(s) under %s", len(discarded), prefix)
    return discarded


def read_stage_log(run: RunFolder, stage: str) -> pd.DataFrame:
    """Per-epoch log of a stage; rows repeated by a resume keep their last copy."""
    path = run.path / "logs" / f"{_stage_key(stage)}.csv"
    if not path.is_file():
        return pd.DataFrame()
    df = pd.read_csv(path)
    return df.drop_duplicates("epoch", keep="last").reset_index(drop=True) if len(df) else df


def fit_stage(
    model: keras.Model,
    data,
    *,
    run: RunFolder,
    stage: str,
    epochs: int,
    compile_fn: Callable[[keras.Model], None] | None,
    validation_data=None,
    extra_callbacks: list | None = None,
    verbose: int = 0,
    progress_leave: bool = True,
    backup: bool = True,
    **fit_kwargs,
) -> pd.DataFrame:
    """Train ``model`` for one stage, or load its weights if the run already finished it.

    ``compile_fn(model)`` compiles the model for this stage (called on resume too, so the
    restored optimiser state matches); ``None`` keeps the model's current compilation (see
    :class:`ModelState` for reusing one compiled model across folds). ``fit_kwargs`` (e.g. ``batch_size``) go to ``fit``.
    ``verbose=1``: one progress bar for the stage (``progress_leave=False`` clears it when
    done); ``verbose=2``: Keras' line per epoch. Returns the stage's per-epoch log.
    ``backup=False`` skips the per-epoch checkpoint, for stages cheaper to rerun from their start
    than to checkpoint (a head on precomputed embeddings); a killed one then starts over.
    """
    final = stage_weights_path(run, stage)
    if run.stage_done(stage):
        if not final.is_file():
            raise RunError(
                f"stage {stage} of {run.path} is done but {final} is gone"
                + (
                    " (discarded once its product was saved; the caller should load that)"
                    if stage in run.info.get("checkpoints_discarded", [])
                    else ""
                )
            )
        model.load_weights(final)
        log.info("stage %s already done in %s: loaded %s", stage, run.path.name, final.name)
        return read_stage_log(run, stage)

    started = time.perf_counter()
    if compile_fn is not None:
        compile_fn(model)
    if epochs > 0:
        # First, so the backup is on disk before anything else reacts to the epoch.
        # double_checkpoint: the previous epoch's backup is kept, and Keras falls back on it
        # when a kill mid-write left the newest unreadable (seen once epochs took milliseconds,
        # issue 23).
        backup_dir = str(stage_backup_dir(run, stage))
        backups = [keras.callbacks.BackupAndRestore(backup_dir, double_checkpoint=True)]
        callbacks = [
            *(backups if backup else []),
            # Before the loggers, so metrics they add to the epoch logs (SSL's online k-NN
            # monitor) reach the CSV and TensorBoard.
            *(extra_callbacks or []),
            keras.callbacks.CSVLogger(
                str(run.subdir("logs") / f"{_stage_key(stage)}.csv"), append=True
            ),
            keras.callbacks.TensorBoard(str(run.subdir("tensorboard", _stage_key(stage)))),
            keras.callbacks.TerminateOnNaN(),
        ]
        if verbose == 1:
            callbacks.append(StageProgress(stage, epochs, leave=progress_leave))
        # ``data``: a tf.data.Dataset (or anything fit takes as x), or an (x, y) tuple of arrays.
        x, y = data if isinstance(data, tuple) else (data, None)
        if y is None and not _is_array(x):
            # A dataset shuffles itself (or not); fit's default shuffle=True would only warn.
            fit_kwargs.setdefault("shuffle", False)
        history = model.fit(
            x,
            y,
            epochs=epochs,
            validation_data=validation_data,
            callbacks=callbacks,
            verbose=2 if verbose >= 2 else 0,
            **fit_kwargs,
        )
        losses = history.history.get("loss", [])
        if losses and not all(math.isfinite(v) for v in losses):
            raise FloatingPointError(
                f"stage {stage}: loss became NaN/inf; see {run.path / 'logs'}; weights not saved"
            )
    _save_atomically(model, final)  # with the optimiser state: the next stage may continue it
    run.mark_stage_done(stage, seconds=time.perf_counter() - started)
    return read_stage_log(run, stage)

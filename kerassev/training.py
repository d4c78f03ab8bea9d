"""Resumable training stages shared by every recipe.

A *stage* is one ``model.fit`` call with its own optimiser schedule (e.g. SimSiam stage A,
stage B, regressor head, fine-tuning). :func:`fit_stage` makes every stage survive a kill:

- Keras' ``BackupAndRestore`` saves model, optimiser and epoch counter after every epoch and,
  when the same stage is started again, restores them and continues from the next epoch;
- a finished stage writes ``checkpoints/<stage>.weights.h5`` and is recorded in ``run.json``,
  so a resumed run loads its weights instead of training it again;
- per-epoch metrics go to ``logs/<stage>.csv`` (appended across resumes) and TensorBoard.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

import keras
import pandas as pd

from kerassev.runs import RunFolder

log = logging.getLogger(__name__)


def cosine_sgd(lr: float, *, momentum: float, steps: int, weight_decay: float | None = None):
    """SGD with momentum and cosine decay from ``lr`` to 0 over ``steps`` (paper 01, §3.1)."""
    schedule = keras.optimizers.schedules.CosineDecay(lr, decay_steps=max(1, steps))
    return keras.optimizers.SGD(schedule, momentum=momentum, weight_decay=weight_decay)


def _stage_key(stage: str) -> str:
    return stage.replace("/", "__")


def stage_weights_path(run: RunFolder, stage: str):
    return run.subdir("checkpoints") / f"{_stage_key(stage)}.weights.h5"


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
    compile_fn: Callable[[keras.Model], None],
    validation_data=None,
    extra_callbacks: list | None = None,
    verbose: int = 0,
) -> pd.DataFrame:
    """Train ``model`` for one stage, or load its weights if the run already finished it.

    ``compile_fn(model)`` compiles the model for this stage; it is called on resume too, so
    the restored optimiser state matches. Returns the stage's per-epoch log.
    """
    final = stage_weights_path(run, stage)
    if run.stage_done(stage):
        model.load_weights(final)
        log.info("stage %s already done in %s: loaded %s", stage, run.path.name, final.name)
        return read_stage_log(run, stage)

    compile_fn(model)
    if epochs > 0:
        callbacks = [
            # First, so the backup is on disk before anything else reacts to the epoch.
            keras.callbacks.BackupAndRestore(
                str(run.subdir("checkpoints", "backup", _stage_key(stage)))
            ),
            keras.callbacks.CSVLogger(
                str(run.subdir("logs") / f"{_stage_key(stage)}.csv"), append=True
            ),
            keras.callbacks.TensorBoard(str(run.subdir("tensorboard", _stage_key(stage)))),
            keras.callbacks.TerminateOnNaN(),
            *(extra_callbacks or []),
        ]
        # ``data``: a tf.data.Dataset (or anything fit takes as x), or an (x, y) tuple of arrays.
        x, y = data if isinstance(data, tuple) else (data, None)
        history = model.fit(
            x,
            y,
            epochs=epochs,
            validation_data=validation_data,
            callbacks=callbacks,
            verbose=verbose,
        )
        losses = history.history.get("loss", [])
        if losses and not all(math.isfinite(v) for v in losses):
            raise FloatingPointError(
                f"stage {stage}: loss became NaN/inf; see {run.path / 'logs'}; weights not saved"
            )
    model.save_weights(final)
    run.mark_stage_done(stage)
    return read_stage_log(run, stage)

"""SimSiam pre-training on in-memory images, in one or more stages; shared by papers 01 and 03.

A stage is an :class:`SSLStage`: an epoch count, SGD with momentum and cosine decay from ``lr`` to
0 over the stage (:func:`kerassev.training.cosine_sgd`), and how much of the backbone trains.
:func:`pretrain_simsiam` runs the stages in order on two augmented views of the same images
(:func:`kerassev.data.pipeline.build_dataset_from_arrays` with a ``two_view_policy``). With a
:class:`~kerassev.runs.RunFolder` every stage goes through :func:`kerassev.training.fit_stage`
(checkpointed every epoch, resumable, logged to ``logs/<stage>.csv``); its product is the encoder,
saved to ``encoder_file``, after which the stage checkpoints (SimSiam plus optimiser state) go.

- paper 01 (:mod:`kerassev.recipes.mrale.ssl`): stage A with the backbone frozen, stage B with
  the top-most 20 non-BatchNormalization backbone layers unfrozen;
- paper 03 (:mod:`kerassev.recipes.cohen.ssl`): one stage, whole random-init backbone trainable.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import pandas as pd

from kerassev.data.pipeline import PipelineConfig, build_dataset_from_arrays
from kerassev.models.simsiam import SimSiam
from kerassev.models.unfreeze import freeze_all, unfreeze_top
from kerassev.runs import RunFolder
from kerassev.training import (
    cosine_sgd,
    discard_stage_checkpoints,
    fit_stage,
    read_stage_log,
    save_model_weights,
)


@dataclass(frozen=True)
class SSLStage:
    """One SimSiam stage (paper 01 §3.1): SGD with momentum, cosine decay from ``lr``.

    ``unfreeze_top`` decides which backbone layers train during the stage (projector and
    predictor always train):

    - ``None``: the whole backbone, BatchNormalization included (a cold start has nothing to
      freeze);
    - ``0``: none, the backbone is frozen (paper 01 stage A);
    - ``N``: the top-most ``N`` weight-bearing layers except BatchNormalization (paper 01 stage B,
      ``N=20``; see :func:`kerassev.models.unfreeze.unfreeze_top`).
    """

    epochs: int
    lr: float = 0.02
    momentum: float = 0.6
    unfreeze_top: int | None = 0


def set_backbone_trainable(model: SimSiam, backbone_name: str, unfreeze: int | None) -> None:
    """Apply an :attr:`SSLStage.unfreeze_top` to the backbone nested in ``model.encoder``."""
    backbone = model.encoder.get_layer(backbone_name)
    if unfreeze is None:
        backbone.trainable = True
    elif unfreeze == 0:
        freeze_all(backbone)
    else:
        unfreeze_top(model.encoder, unfreeze, within=backbone_name)


def pretrain_simsiam(
    model: SimSiam,
    images: np.ndarray,
    *,
    stages: Sequence[tuple[str, SSLStage]],
    pipeline: PipelineConfig,
    run: RunFolder | None,
    backbone_name: str,
    stage_prefix: str = "",
    encoder_file: str | Path | None = None,
    verbose: int = 0,
) -> pd.DataFrame:
    """Train ``model`` on ``[0, 1]`` images ``(N, S, S)`` through ``stages`` (name, stage) in order.

    ``pipeline`` makes the two views (its ``two_view_policy`` must be set); ``backbone_name`` is
    the backbone's layer name inside ``model.encoder`` (what :attr:`SSLStage.unfreeze_top` acts
    on). With ``run`` each stage is the resumable ``fit_stage`` stage ``<stage_prefix><name>``; a
    stage the run already finished is loaded instead of trained. Without ``run`` the stages are
    plain ``fit`` calls. With ``run`` and ``encoder_file`` the trained ``model.encoder`` is saved
    there and the stage checkpoints are discarded; a rerun that finds the file loads it and trains
    nothing. Returns the per-epoch log of all stages end to end (see
    :func:`stages_log`): ``epoch`` (within its stage), the model's metrics (``loss``, ``z_std``,
    ``z_std_ratio`` collapse monitor: about 1 healthy, 0 collapsed, ...), ``stage`` (the name) and
    ``global_epoch`` (1, 2, ... across stages).
    """
    if not pipeline.two_view_policy:
        raise ValueError("SimSiam needs two views: set pipeline.two_view_policy")
    names = [name for name, _ in stages]
    if run is not None and encoder_file is not None:
        encoder_file = Path(encoder_file)
        if encoder_file.is_file() and all(run.stage_done(stage_prefix + n) for n in names):
            model.encoder.load_weights(encoder_file)
            return stages_log(run, names, prefix=stage_prefix)
    views = build_dataset_from_arrays(images, pipeline)
    n_batches = len(images) / pipeline.batch_size
    steps_per_epoch = max(
        1, math.floor(n_batches) if pipeline.drop_remainder else math.ceil(n_batches)
    )

    parts = []
    for name, stage in stages:
        set_backbone_trainable(model, backbone_name, stage.unfreeze_top)

        def compile_fn(m: keras.Model, stage: SSLStage = stage) -> None:
            steps = stage.epochs * steps_per_epoch
            m.compile(optimizer=cosine_sgd(stage.lr, momentum=stage.momentum, steps=steps))

        if run is not None:
            fit_stage(
                model,
                views,
                run=run,
                stage=f"{stage_prefix}{name}",
                epochs=stage.epochs,
                compile_fn=compile_fn,
                verbose=verbose,
            )
        else:
            compile_fn(model)
            history = model.fit(views, epochs=stage.epochs, verbose=verbose).history
            df = pd.DataFrame(history)
            df.insert(0, "epoch", np.arange(len(df)))
            parts.append(df.assign(stage=name))
    if run is None:
        return _end_to_end(parts)
    if encoder_file is not None:
        save_model_weights(model.encoder, encoder_file)
        for name in names:
            discard_stage_checkpoints(run, stage_prefix + name)
    return stages_log(run, names, prefix=stage_prefix)


def stages_log(run: RunFolder, names: Sequence[str], *, prefix: str = "") -> pd.DataFrame:
    """Saved per-epoch logs of the run's stages ``<prefix><name>``, end to end, with a ``stage``
    column (the name) and a ``global_epoch`` counter; stages without a log are left out."""
    parts = []
    for name in names:
        df = read_stage_log(run, f"{prefix}{name}")
        if len(df):
            parts.append(df.assign(stage=name))
    return _end_to_end(parts)


def _end_to_end(parts: list[pd.DataFrame]) -> pd.DataFrame:
    if not parts:
        return pd.DataFrame()
    log = pd.concat(parts, ignore_index=True)
    log["global_epoch"] = np.arange(1, len(log) + 1)
    return log

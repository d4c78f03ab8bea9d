"""Algorithm 1: pre-train a video encoder on clips of training patients, return embeddings.

One resumable stage per (data set, row) through :func:`kerassev.training.fit_stage`: Adam with
cosine annealing from ``lr`` to 0 over all steps (Table 2). The health score is standardised
on the training clips (the ranking of ``d_ij`` and the wCL weights, normalised to mean 1, do not
depend on its scale; the MSE does, and a z-score keeps it comparable with the CL term).
"""

from __future__ import annotations

import math

import keras
import numpy as np

from kerassev.losses.learner import loss_spec
from kerassev.models.learner import LearnerPretrainer, build_hs_head
from kerassev.models.tsm import build_video_encoder
from kerassev.runs import RunFolder
from kerassev.training import fit_stage

from .config import ROWS, LearnerConfig
from .data import ClipData


def build_pretrainer(row: str, config: LearnerConfig) -> LearnerPretrainer:
    _, kind, loss, sim = ROWS[row]
    encoder = build_video_encoder(
        kind, config.n_frames, (config.frame_size, config.frame_size, 1), width=config.width
    )
    head = build_hs_head(encoder.output_shape[-1], config.head_hidden)
    spec = loss_spec(loss)
    if spec is not None:
        spec = {**spec, "similarity_kind": sim, "eps": config.eps}
    return LearnerPretrainer(
        encoder, head, contrastive=spec, cl_weight=config.cl_weight, name=f"learner_{row}"
    )


def pretrain_row(
    row: str,
    data: ClipData,
    train_idx: np.ndarray,
    config: LearnerConfig,
    run: RunFolder,
    *,
    stage_prefix: str,
    val_idx: np.ndarray | None = None,
    verbose: int = 0,
) -> keras.Model:
    """Train row ``row``'s encoder on ``train_idx`` (resumable); returns the encoder."""
    keras.utils.set_random_seed(config.seed)
    model = build_pretrainer(row, config)
    hs = data.table["hs"].to_numpy(np.float32)
    mean, std = hs[train_idx].mean(), hs[train_idx].std() + 1e-6
    z = (hs - mean) / std
    steps = config.epochs * math.ceil(len(train_idx) / config.batch_size)

    def compile_fn(m):
        schedule = keras.optimizers.schedules.CosineDecay(config.lr, decay_steps=max(1, steps))
        m.compile(keras.optimizers.Adam(schedule), run_eagerly=config.run_eagerly)

    val = None
    if config.monitor_val and val_idx is not None and len(val_idx) >= 2:
        val = (data.inputs(val_idx), z[val_idx])
    model(data.inputs(train_idx[:2]))  # build before a resume loads weights
    fit_stage(
        model,
        (data.inputs(train_idx), z[train_idx]),
        run=run,
        stage=f"{stage_prefix}/{row}",
        epochs=config.epochs,
        compile_fn=compile_fn,
        validation_data=val,
        batch_size=config.batch_size,
        shuffle=True,
        verbose=verbose,
    )
    return model.encoder


def random_encoder(row: str, config: LearnerConfig) -> keras.Model:
    """The same architecture untrained: the control every pre-training must beat."""
    keras.utils.set_random_seed(config.seed)
    return build_pretrainer(row, config).encoder


def embed(encoder: keras.Model, data: ClipData, batch_size: int = 32) -> np.ndarray:
    """Clip embeddings ``(N, D)`` from the frozen encoder (inference mode)."""
    return encoder.predict(data.inputs(), batch_size=batch_size, verbose=0).astype(np.float32)

"""Algorithm 1: pre-train a video encoder on clips of training patients, return embeddings.

One resumable stage per (data set, row) through :func:`kerassev.training.fit_stage`: Adam with
cosine annealing from ``lr`` to 0 over all steps (Table 2). The health score is standardised
on the training clips (the ranking of ``d_ij`` and the wCL weights, normalised to mean 1, do not
depend on its scale; the MSE does, and a z-score keeps it comparable with the CL term).

The clips are fed by one endless tf.data iterator with ``steps_per_epoch`` (:func:`clip_feed`),
as :func:`kerassev.recipes.ssl_pretraining.pretrain_ssl` feeds SSL: NumPy arrays through Keras'
adapter restart their iterator every epoch (issue 13 measured that at a quarter of an epoch).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

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


def clip_feed(
    clips: np.ndarray, targets: np.ndarray, batch_size: int, *, seed: int = 0
) -> tuple[tf.data.Dataset, int]:
    """``(endless dataset of (clips, targets) batches, steps_per_epoch)``.

    Each pass over the clips is reshuffled and batched on its own, then the passes repeat
    (shuffle -> batch -> repeat -> gather), so ``steps_per_epoch = ceil(n / batch)`` batches are
    one epoch: every clip once, the last batch short, never a clip twice in a batch (CL would
    pair a clip with itself). One ``tf.gather`` a batch, no per-element ``map``.
    """
    n = len(clips)
    if n == 0 or len(targets) != n:
        raise ValueError(f"clip_feed needs as many targets as clips, got {len(targets)} and {n}")
    data = tf.constant(np.asarray(clips, np.float32))
    ys = tf.constant(np.asarray(targets, np.float32))
    ds = tf.data.Dataset.range(n).shuffle(n, seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size).repeat()
    ds = ds.map(lambda rows: (tf.gather(data, rows), tf.gather(ys, rows)))
    return ds.prefetch(tf.data.AUTOTUNE), math.ceil(n / batch_size)


@dataclass
class Pretrained:
    """A trained pretrainer and the standardisation of its health score (head output is z)."""

    model: LearnerPretrainer
    hs_mean: float
    hs_std: float

    @property
    def encoder(self) -> keras.Model:
        return self.model.encoder

    def predict_hs(self, inputs: np.ndarray, batch_size: int = 32) -> np.ndarray:
        """Health scores on their own scale, ``(n,)``."""
        z = self.model.predict(inputs, batch_size=batch_size, verbose=0)[:, 0]
        return (self.hs_mean + self.hs_std * z).astype(float)

    def scoring_model(self, name: str = "severity") -> keras.Model:
        """Clip ``(T, S, S, 1)`` in ``[0, 1]`` -> health score on its own scale: encoder, head,
        and the inverse z-score as a ``Rescaling`` layer (what is exported)."""
        clip = keras.Input(self.encoder.input_shape[1:], name="clip")
        z = self.model.head(self.encoder(clip))
        out = keras.layers.Rescaling(self.hs_std, self.hs_mean, name=name)(z)
        return keras.Model(clip, out, name=f"{self.model.name}_{name}")


def pretrain_model(
    row: str,
    data: ClipData,
    train_idx: np.ndarray,
    config: LearnerConfig,
    run: RunFolder,
    *,
    stage_prefix: str,
    val_idx: np.ndarray | None = None,
    verbose: int = 0,
) -> Pretrained:
    """Train row ``row``'s encoder and head on ``train_idx`` (resumable)."""
    keras.utils.set_random_seed(config.seed)
    model = build_pretrainer(row, config)
    hs = data.table["hs"].to_numpy(np.float32)
    mean, std = float(hs[train_idx].mean()), float(hs[train_idx].std() + 1e-6)
    z = (hs - mean) / std
    feed, steps_per_epoch = clip_feed(
        data.inputs(train_idx), z[train_idx], config.batch_size, seed=config.seed
    )
    steps = config.epochs * steps_per_epoch

    def compile_fn(m):
        schedule = keras.optimizers.schedules.CosineDecay(config.lr, decay_steps=max(1, steps))
        m.compile(keras.optimizers.Adam(schedule), run_eagerly=config.run_eagerly)

    val = None
    if config.monitor_val and val_idx is not None and len(val_idx) >= 2:
        val = (data.inputs(val_idx), z[val_idx])
    model(data.inputs(train_idx[:2]))  # build before a resume loads weights
    fit_stage(
        model,
        feed,  # a resumed stage restarts the feed at its first batch (another shuffle order)
        run=run,
        stage=f"{stage_prefix}/{row}",
        epochs=config.epochs,
        compile_fn=compile_fn,
        validation_data=val,
        steps_per_epoch=steps_per_epoch,
        verbose=verbose,
    )
    return Pretrained(model, mean, std)


def pretrain_row(row: str, data: ClipData, train_idx, config, run, **kwargs) -> keras.Model:
    """:func:`pretrain_model`'s encoder."""
    return pretrain_model(row, data, train_idx, config, run, **kwargs).encoder


def random_encoder(row: str, config: LearnerConfig) -> keras.Model:
    """The same architecture untrained: the control every pre-training must beat."""
    keras.utils.set_random_seed(config.seed)
    return build_pretrainer(row, config).encoder


def embed(encoder: keras.Model, data: ClipData, batch_size: int = 32) -> np.ndarray:
    """Clip embeddings ``(N, D)`` from the frozen encoder (inference mode)."""
    return encoder.predict(data.inputs(), batch_size=batch_size, verbose=0).astype(np.float32)

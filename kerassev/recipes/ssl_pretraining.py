"""Staged self-supervised pre-training on in-memory images, for any method; shared by papers 01,
03 and 04.

:class:`EncoderSpec` names the method (:data:`kerassev.models.ssl.METHODS`) and the network it
trains (backbone, projector, predictor); :class:`SSLStage` is one stage: an epoch count, SGD with
momentum (and optional weight decay) with cosine decay from ``lr`` to 0 over the stage
(:func:`kerassev.training.cosine_sgd`), and how much of the backbone trains (``train``).
:func:`pretrain_encoder` builds the model and runs the stages in order on two augmented views of
the same images (:func:`kerassev.data.pipeline.build_dataset_from_arrays` with a
``two_view_policy``; memory-bank methods also get each image's row number). With a
:class:`~kerassev.runs.RunFolder` every stage goes through :func:`kerassev.training.fit_stage`
(checkpointed every epoch, resumable, logged to ``logs/<stage>.csv``); its product, the encoder,
is saved to ``encoder_file``, after which the stage checkpoints (model plus optimiser) go.

- paper 01: stage A trains the projector and predictor on a frozen backbone (``train="head"``),
  stage B also the top-most 20 non-BN backbone layers (``train=20``);
- paper 03: one stage, the whole random-init backbone (``train="all"``);
- paper 04: one stage, the whole backbone, SGD lr 0.03 at batch 256 (scaled linearly with the
  batch), momentum 0.9, weight decay 4e-4 (PyTorch's coupled L2).

The optimiser is :func:`kerassev.models.ssl.optim.ssl_sgd` (PyTorch SGD semantics: weight decay is
coupled L2, added to the gradient before the momentum). EMA methods (BYOL, Cross) get BYOL's
cosine schedule of ``tau`` from ``tau_base`` to 1 over each stage's steps, ``tau_base`` chosen by
run length (:func:`ema_tau_base`) unless the spec fixes it. What each stage ran with (effective
lr, batch, weight decay, ``tau_base``, steps) goes to ``run.json`` under ``ssl_protocol``. With
``knn`` (labelled training images) an online k-NN monitor logs ``knn_acc`` every epoch
(:class:`kerassev.models.ssl.monitor.KNNMonitor`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import pandas as pd

from kerassev.data.pipeline import PipelineConfig, build_dataset_from_arrays, view_maker
from kerassev.distribute import shard_by_data
from kerassev.models.backbones import build_backbone
from kerassev.models.heads import build_encoder
from kerassev.models.ssl import METHODS, TwoViewSSL, backbone_of, build_ssl_model
from kerassev.models.ssl.monitor import KNNMonitor
from kerassev.models.ssl.optim import linear_scaled_lr, ssl_sgd
from kerassev.models.unfreeze import freeze_all, unfreeze_top
from kerassev.runs import RunFolder
from kerassev.training import (
    backed_up_epochs,
    discard_stage_checkpoints,
    fit_stage,
    read_stage_log,
    save_model_weights,
)

__all__ = [
    "EncoderSpec",
    "SSLStage",
    "build_ssl",
    "build_ssl_encoder",
    "ema_tau_base",
    "encoder_file",
    "network_inputs",
    "pretrain_encoder",
    "pretrain_in_run",
    "pretrain_ssl",
    "set_backbone_trainable",
    "stages_log",
]


@dataclass(frozen=True)
class SSLStage:
    """One pre-training stage: SGD with momentum, cosine decay from ``lr`` (paper 01 §3.1).

    ``lr`` is given at batch ``lr_batch`` and scaled linearly with the real batch (``lr * batch /
    lr_batch``, SimSiam/BYOL/MoCo); ``lr_batch=None`` uses ``lr`` as it is. ``weight_decay`` is
    PyTorch's coupled L2 (``torch.optim.SGD(weight_decay=)``, the papers' framework), not Keras'
    decoupled one (:class:`kerassev.models.ssl.optim.CoupledSGD`).

    ``train`` decides which backbone layers train (projector and predictor always do):

    - ``"all"``: the whole backbone, BatchNormalization included (a cold start has nothing to
      freeze);
    - ``"head"``: none, the backbone is frozen (paper 01 stage A);
    - ``N`` (int >= 1): the top-most ``N`` weight-bearing layers except BatchNormalization
      (paper 01 stage B, ``N=20``; see :func:`kerassev.models.unfreeze.unfreeze_top`).
    """

    epochs: int
    lr: float = 0.02
    momentum: float = 0.6
    train: str | int = "head"
    weight_decay: float | None = None  # coupled L2, as torch.optim.SGD
    lr_batch: int | None = None  # the batch size lr is given at; None: no scaling

    def __post_init__(self):
        ok = self.train in ("all", "head") or (
            isinstance(self.train, int) and not isinstance(self.train, bool) and self.train >= 1
        )
        if not ok:
            raise ValueError(
                f"SSLStage.train must be 'all', 'head' or an int >= 1, got {self.train!r}"
            )


@dataclass(frozen=True)
class EncoderSpec:
    """The method and the network it trains: backbone -> projector MLP (-> predictor).

    Defaults are SimSiam's as paper 01 uses it (2048-d 3-layer projector ending in BN, 512
    bottleneck predictor, L2 1e-3). ``flexible_input`` builds the backbone for any input size
    (PIRL-Jigsaw runs its tiles through it at tile size instead of resizing them).
    """

    method: str = "simsiam"
    backbone: str = "resnet50"
    image_size: int = 224
    projection_dim: int = 2048
    projection_hidden: int | None = None  # None: projection_dim
    projection_layers: int = 3
    projection_bn: bool = True
    predictor_hidden: int = 512
    predictor_dim: int | None = None  # None: projection_dim (SPEC 04)
    l2: float | None = 1e-3
    tau: float | None = None  # EMA tau_base (BYOL, Cross); None: by run length (ema_tau_base)
    tau_schedule: str = "cosine"  # BYOL's cosine tau_base -> 1; "constant" (paper 04 eq. 5)
    temperature: float | None = None  # None: the method's default (SimCLR 0.1, PIRL 0.07)
    flexible_input: bool = False

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"unknown SSL method {self.method!r}; choose one of {METHODS}")
        if self.tau_schedule not in ("cosine", "constant"):
            raise ValueError(
                f"tau_schedule must be 'cosine' or 'constant', got {self.tau_schedule!r}"
            )


def ema_tau_base(total_steps: int) -> float:
    """``tau_base`` for a run of ``total_steps``: BYOL's 0.996 when the target's averaging horizon
    ``1 / (1 - 0.996)`` = 250 steps is at most a quarter of the run (>= 1,000 steps: the paper's
    40 epochs), else 0.99 as BYOL and solo-learn use for short / small-data runs: at 0.996 a
    70-step run moves the target only 25 % of the way from its random init (issue 18 fault 2)."""
    return 0.996 if total_steps >= 1000 else 0.99


def build_ssl_encoder(spec: EncoderSpec, *, weights=None) -> keras.Model:
    """Backbone (pooled; ``weights``: None, "imagenet" or a file) + projector."""
    size = None if spec.flexible_input else spec.image_size
    backbone = build_backbone(
        spec.backbone, weights=weights, input_shape=(size, size, 3), pooling="avg"
    )
    return build_encoder(
        backbone,
        projection_dim=spec.projection_dim,
        hidden=spec.projection_hidden,
        n_layers=spec.projection_layers,
        l2=spec.l2,
        output_bn=spec.projection_bn,
    )


def build_ssl(
    spec: EncoderSpec,
    *,
    n_images: int,
    weights=None,
    seed: int = 0,
    name: str | None = None,
    tau: float | None = None,
) -> TwoViewSSL:
    """The method's model on a new encoder; ``n_images`` sizes a memory bank (PIRL); ``tau``
    (default: ``spec.tau``, else 0.996) is the EMA ``tau_base``."""
    return build_ssl_model(
        spec.method,
        build_ssl_encoder(spec, weights=weights),
        predictor_hidden=spec.predictor_hidden,
        predictor_dim=spec.predictor_dim,
        l2=spec.l2,
        tau=tau if tau is not None else (spec.tau if spec.tau is not None else 0.996),
        temperature=spec.temperature,
        bank_size=n_images,
        seed=seed,
        name=name,
    )


def network_inputs(images: np.ndarray, image_size: int, *, preprocessing="imagenet") -> np.ndarray:
    """(N, S, S) images in [0, 1] -> the network's input: 3 channels, backbone preprocessing."""
    pipe = PipelineConfig(
        image_size=image_size, batch_size=128, shuffle=False, preprocessing=preprocessing
    )
    return np.concatenate([np.asarray(b) for b in build_dataset_from_arrays(images, pipe)])


def encoder_file(run: RunFolder, key: str) -> Path:
    """Where a run keeps the pre-trained encoder ``key`` (e.g. "imagenet", "byol")."""
    return run.subdir("models") / f"encoder_{key}.weights.h5"


def set_backbone_trainable(model: TwoViewSSL, backbone_name: str, train: str | int) -> None:
    """Apply an :attr:`SSLStage.train` to the backbone nested in ``model.encoder``."""
    backbone = model.encoder.get_layer(backbone_name)
    if train == "all":
        backbone.trainable = True
    elif train == "head":
        freeze_all(backbone)
    else:
        unfreeze_top(model.encoder, train, within=backbone_name)


def pretrain_encoder(
    spec: EncoderSpec,
    images: np.ndarray,
    *,
    stages: Sequence[tuple[str, SSLStage]],
    pipeline: PipelineConfig,
    run: RunFolder | None,
    stage_prefix: str = "",
    encoder_file: str | Path | None = None,
    weights=None,
    seed: int = 0,
    verbose: int = 0,
    knn: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[keras.Model, pd.DataFrame]:
    """Build ``spec``'s model (backbone ``weights``), pre-train it on ``images`` through
    ``stages`` (see :func:`pretrain_ssl`) and return its encoder and the per-epoch log.
    ``tau_base`` is ``spec.tau``, or :func:`ema_tau_base` of the run's total steps."""
    keras.utils.set_random_seed(seed)
    total = sum(stage.epochs for _, stage in stages) * _steps_per_epoch(len(images), pipeline)
    tau = spec.tau if spec.tau is not None else ema_tau_base(total)
    model = build_ssl(spec, n_images=len(images), weights=weights, seed=seed, tau=tau)
    log = pretrain_ssl(
        model,
        images,
        stages=stages,
        pipeline=pipeline,
        run=run,
        backbone_name=backbone_of(model.encoder).name,
        stage_prefix=stage_prefix,
        encoder_file=encoder_file,
        verbose=verbose,
        tau_schedule=spec.tau_schedule,
        knn=knn,
    )
    return model.encoder, log


def _steps_per_epoch(n_images: int, pipeline: PipelineConfig) -> int:
    n_batches = n_images / pipeline.batch_size
    return max(1, math.floor(n_batches) if pipeline.drop_remainder else math.ceil(n_batches))


def pretrain_ssl(
    model: TwoViewSSL,
    images: np.ndarray,
    *,
    stages: Sequence[tuple[str, SSLStage]],
    pipeline: PipelineConfig,
    run: RunFolder | None,
    backbone_name: str,
    stage_prefix: str = "",
    encoder_file: str | Path | None = None,
    verbose: int = 0,
    tau_schedule: str = "cosine",
    knn: tuple[np.ndarray, np.ndarray] | None = None,
) -> pd.DataFrame:
    """Train ``model`` on ``[0, 1]`` images ``(N, S, S)`` through ``stages`` (name, stage) in order.

    ``pipeline`` makes the two views (its ``two_view_policy`` must be set; with
    ``augment_on="model"`` it feeds raw images and ``model.augmenter`` is set to its
    :func:`~kerassev.data.pipeline.view_maker`, so the views are made in the step); ``backbone_name`` is
    the backbone's layer name inside ``model.encoder`` (what :attr:`SSLStage.train` acts on).
    With ``run`` each stage is the resumable ``fit_stage`` stage ``<stage_prefix><name>``; a
    stage the run already finished is loaded instead of trained. Without ``run`` the stages are
    plain ``fit`` calls. With ``run`` and ``encoder_file`` the trained ``model.encoder`` is saved
    there and the stage checkpoints are discarded; a rerun that finds the file loads it and trains
    nothing. Returns the per-epoch log of all stages end to end (see :func:`stages_log`):
    ``epoch`` (within its stage), the model's metrics (``loss``, ``z_std``, ``z_std_ratio``
    collapse monitor: about 1 healthy, 0 collapsed, ``tau`` for EMA methods, ...), ``knn_acc``
    with ``knn`` (labelled network inputs and labels of training images), ``stage`` and
    ``global_epoch``. ``tau_schedule="cosine"`` runs an EMA model's ``tau`` from its ``tau``
    to 1 over each stage (BYOL §3.2); "constant" keeps it.
    """
    if not pipeline.two_view_policy:
        raise ValueError("two-view SSL needs two views: set pipeline.two_view_policy")
    names = [name for name, _ in stages]
    if run is not None and encoder_file is not None:
        encoder_file = Path(encoder_file)
        if encoder_file.is_file() and all(run.stage_done(stage_prefix + n) for n in names):
            model.encoder.load_weights(encoder_file)
            return stages_log(run, names, prefix=stage_prefix)
    # memory-bank methods get each image's row number with its two views
    index = np.arange(len(images), dtype=np.float32) if hasattr(model, "bank") else None
    steps_per_epoch = _steps_per_epoch(len(images), pipeline)
    callbacks = [] if knn is None else [KNNMonitor(backbone_of(model.encoder), *knn)]
    # One endless iterator for the whole fit, epochs of steps_per_epoch batches (each epoch one
    # reshuffled pass, as before): a finite dataset restarts its iterator and refills the
    # prefetch every epoch, which cost 2-3 s per epoch on 2 cores (docs/results/ssl_epoch_speed.md).
    views = build_dataset_from_arrays(images, pipeline.replace(repeat=True), labels=index)
    views = shard_by_data(views)  # multi-worker: each worker its part of every global batch
    if pipeline.views_in_model:  # the batches are raw images; the train step makes the views
        model.augmenter = view_maker(pipeline)

    parts = []
    for name, stage in stages:
        set_backbone_trainable(model, backbone_name, stage.train)

        steps = stage.epochs * steps_per_epoch
        lr = linear_scaled_lr(stage.lr, pipeline.batch_size, stage.lr_batch)
        protocol = {
            "batch_size": pipeline.batch_size,
            "lr": lr,
            "lr_given": stage.lr,
            "lr_batch": stage.lr_batch,
            "momentum": stage.momentum,
            "weight_decay": stage.weight_decay,
            "weight_decay_kind": "coupled L2 (torch.optim.SGD)",
            "steps": steps,
        }
        if hasattr(model, "tau_total_steps"):  # EMA target (BYOL, Cross)
            protocol.update(tau_base=model.tau, tau_schedule=tau_schedule)
        if run is not None:
            run.info.setdefault("ssl_protocol", {})[f"{stage_prefix}{name}"] = protocol
            run.save()

        def compile_fn(m: keras.Model, steps: int = steps, lr: float = lr, stage=stage) -> None:
            if hasattr(m, "tau_total_steps"):  # read when the train step is traced
                m.tau_total_steps = steps if tau_schedule == "cosine" else None
            wd = stage.weight_decay
            m.compile(optimizer=ssl_sgd(lr, momentum=stage.momentum, steps=steps, weight_decay=wd))

        if run is not None:
            # A stage resumed by BackupAndRestore at epoch k gets the batches an uninterrupted
            # run would see from epoch k on (the endless feed restarts at its first batch).
            done = backed_up_epochs(run, f"{stage_prefix}{name}")
            fit_stage(
                model,
                views.skip(done * steps_per_epoch) if done else views,
                run=run,
                stage=f"{stage_prefix}{name}",
                epochs=stage.epochs,
                compile_fn=compile_fn,
                verbose=verbose,
                steps_per_epoch=steps_per_epoch,
                extra_callbacks=callbacks,
            )
        else:
            compile_fn(model)
            history = model.fit(
                views,
                epochs=stage.epochs,
                steps_per_epoch=steps_per_epoch,
                verbose=verbose,
                callbacks=callbacks,
            ).history
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


def pretrain_in_run(
    spec: EncoderSpec,
    images: np.ndarray,
    stages: Sequence[tuple[str, SSLStage]],
    *,
    run: RunFolder | None,
    key: str,
    policy: str,
    batch_size: int,
    seed: int = 0,
    weights=None,
    augment_on: str = "model",
    verbose: int = 0,
    knn: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[keras.Model, pd.DataFrame]:
    """:func:`pretrain_encoder` with the suite's conventions: views by ``policy`` at the spec's
    size, stages ``ssl_<key>/<stage>``, the encoder kept as :func:`encoder_file` ``(run, key)``.
    The last incomplete batch is dropped whenever there is more than one (a batch of one
    breaks BatchNorm). ``augment_on="model"`` (default) makes the views inside the train step,
    ``"data"`` in ``tf.data``: the same views at about the same speed on CPU, where the views
    cost 1-3 % of a step (docs/results/ssl_epoch_speed.md); on a GPU ``"model"`` makes them there."""
    pipe = PipelineConfig(
        image_size=spec.image_size,
        batch_size=batch_size,
        seed=seed,
        two_view_policy=policy,
        drop_remainder=len(images) > batch_size,
        augment_on=augment_on,
    )
    return pretrain_encoder(
        spec,
        images,
        stages=stages,
        pipeline=pipe,
        run=run,
        stage_prefix=f"ssl_{key}/",
        encoder_file=None if run is None else encoder_file(run, key),
        weights=weights,
        seed=seed,
        verbose=verbose,
        knn=knn,
    )

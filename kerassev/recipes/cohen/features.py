"""The rows of paper 03's Table 1: the encoders a configuration asks for and their features.

:func:`build_encoders` builds (and, for SimSiam, pre-trains) the encoders in table order;
:func:`feature_rows` extracts every encoder's feature sets over all frontal images once, saves
them in the run folder (``features_<encoder>.npz``, reused on resume) and adds the "no data" row.

Encoders (each becomes rows of the table, labelled with its data and configuration):

* ``xrv`` -- TorchXRayVision DenseNet-121 ("all"), the paper's extractor, when a converted
  checkpoint is given (``xrv_checkpoint``; convert with ``kerassev convert xrv``). Feature sets:
  1024-d intermediate features, 18 outputs, 4 outputs, the "lung opacity" output (pre-sigmoid).
* ``simsiam`` (or the ``ssl.method`` chosen) -- **not in the paper**: our offline substitute when
  the XRV checkpoint cannot be downloaded (:func:`ssl_encoder`). Feature set: the 2048-d pooled
  backbone output.
* ``random`` -- the same ResNet-50 with random weights: a control for what architecture alone
  gives.
* ``imagenet`` -- ResNet-50 with ImageNet weights from a local file (``imagenet_weights``).
* ``no data`` -- the intercept-only model (training-half mean), independent of any encoder.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import keras
import numpy as np

from kerassev.models.batch_norm import precise_batch_norm
from kerassev.models.ssl import backbone_of
from kerassev.recipes.ssl_pretraining import network_inputs, pretrain_in_run
from kerassev.runs import RunFolder

from .config import CohenConfig, backbone_label, method_label
from .data import ImageBank
from .encoders import Encoder, resnet_encoder, xrv_encoder
from .table import FeatureRow, no_data_row

#: Encoders whose BN statistics are kept: distributed weights trained with their own statistics.
#: Every other encoder (SSL, random init) gets precise BN on the bank's images before its
#: features are extracted (issue 18 fault 1: short SSL leaves the moving statistics stale).
KEEP_BN_STATISTICS = ("xrv", "imagenet")


def build_encoders(
    config: CohenConfig, bank: ImageBank, *, run: RunFolder | None = None, verbose: int = 0
) -> tuple[list[Encoder], dict]:
    """The encoders this configuration asks for, in table order; and an info dict (SSL history).

    ``bank`` holds the unlabelled frontal images SimSiam pretrains on.
    """
    encoders: list[Encoder] = []
    info: dict = {}
    if config.xrv_checkpoint:
        encoders.append(xrv_encoder(config.xrv_checkpoint))
    if config.ssl is not None:
        enc, history = ssl_encoder(bank.at(config.ssl.image_size), config, run=run, verbose=verbose)
        encoders.append(enc)
        info[f"{config.ssl.method}_history"] = history
    if config.imagenet_weights:
        encoders.append(
            resnet_encoder(
                "imagenet",
                f"{backbone_label(config.backbone)} ImageNet "
                f"({Path(config.imagenet_weights).name}, no training), "
                f"{config.resnet_image_size}px",
                weights=config.imagenet_weights,
                image_size=config.resnet_image_size,
                backbone=config.backbone,
            )
        )
    if config.random_control:
        keras.utils.set_random_seed(config.seed + 1)
        size = config.ssl.image_size if config.ssl is not None else config.resnet_image_size
        encoders.append(
            resnet_encoder(
                "random",
                f"{backbone_label(config.backbone)} random init (control, no training), {size}px",
                image_size=size,
                backbone=config.backbone,
            )
        )
    return encoders, info


def ssl_encoder(
    images: np.ndarray, config: CohenConfig, *, run: RunFolder | None = None, verbose: int = 0
) -> tuple[Encoder, dict[str, list[float]]]:
    """Pretrain a random-init backbone with ``config.ssl.method`` on unlabelled ``[0, 1]``
    images ``(N, S, S)`` (labels are never used, but the 94 scored images and their patients are
    among them): one stage, the whole backbone trainable, through the shared
    :func:`kerassev.recipes.ssl_pretraining.pretrain_in_run` (resumable with ``run``).

    Returns the frozen backbone as an :class:`Encoder` and the per-epoch history (``loss``,
    ``z_std_ratio`` collapse monitor: about 1 healthy, 0 collapsed).
    """
    ssl = config.ssl
    if ssl is None:
        raise ValueError("config.ssl is None: SSL pretraining disabled")
    encoder, log = pretrain_in_run(
        ssl.encoder_spec(config.backbone),
        images,
        [("all", ssl.stage())],
        run=run,
        key=ssl.method,
        policy=ssl.augmentation,
        batch_size=ssl.batch_size,
        seed=config.seed,
        verbose=verbose,
    )
    backbone = backbone_of(encoder)
    backbone.trainable = False
    label = (
        f"{method_label(ssl.method)} {backbone_label(config.backbone)} (random init; SSL on "
        f"{len(images)} unlabelled frontal CXRs, {ssl.image_size}px, {ssl.epochs} epochs)"
    )
    skip = ("epoch", "stage", "global_epoch")
    history = {k: [float(v) for v in log[k]] for k in log.columns if k not in skip}
    return Encoder(ssl.method, label, backbone, ssl.image_size, 3, "imagenet"), history


def feature_rows(
    encoders: Sequence[Encoder],
    bank: ImageBank,
    *,
    batch_size: int = 16,
    run: RunFolder | None = None,
    verbose: int = 0,
) -> list[FeatureRow]:
    """Every encoder's feature sets over the bank's images, then the "no data" row.

    With ``run`` the features are saved as ``features_<encoder>.npz`` (with the image paths);
    ``verbose`` shows one progress bar per encoder.
    """
    rows: list[FeatureRow] = []
    for enc in encoders:
        stage = f"features_{enc.key}"
        if run is not None and run.stage_done(stage):  # resumed run: reuse saved features
            with np.load(run.path / f"{stage}.npz") as saved:
                sets = {k: saved[k] for k in saved.files if k != "paths"}
        else:
            images = bank.at(enc.image_size)
            if enc.key not in KEEP_BN_STATISTICS:
                precise_batch_norm(
                    enc.model,
                    network_inputs(images, enc.image_size, preprocessing=enc.preprocess),
                    batch_size=batch_size,
                )
            sets = enc.extract(images, batch_size, progress=bool(verbose))
            if run is not None:
                np.savez_compressed(
                    run.new_file(f"{stage}.npz"), paths=bank.table["path"].to_numpy(str), **sets
                )
                run.mark_stage_done(stage)
        order = [k for k in ("lung_opacity", "4", "18", "1024") if k in sets] or list(sets)
        rows.extend(FeatureRow(enc.key, enc.label, k, sets[k]) for k in order)
    rows.append(no_data_row(len(bank.table)))
    return rows

"""The SimSiam substitute encoder of paper 03 (not in the paper).

When the TorchXRayVision checkpoint cannot be had offline, a random-init ResNet-50 is
SimSiam-pretrained on the unlabelled frontal images of the same collection (labels are never used,
but the 94 scored images and their patients are among them) and frozen. One stage, the whole
backbone trainable (a cold start has nothing to freeze), through the shared
:func:`kerassev.recipes.ssl_pretraining.pretrain_simsiam`.
"""

from __future__ import annotations

import keras
import numpy as np

from kerassev.data.pipeline import PipelineConfig
from kerassev.models.backbones import build_backbone
from kerassev.models.heads import build_encoder, build_predictor
from kerassev.models.simsiam import SimSiam
from kerassev.recipes.ssl_pretraining import pretrain_simsiam
from kerassev.runs import RunFolder

from .config import CohenConfig, backbone_label
from .encoders import Encoder

SSL_STAGE = "simsiam"  # the fit_stage name in the run folder


def simsiam_encoder(
    images: np.ndarray, config: CohenConfig, *, run: RunFolder | None = None, verbose: int = 0
) -> tuple[Encoder, dict[str, list[float]]]:
    """SimSiam-pretrain a random-init ResNet-50 on unlabelled ``[0, 1]`` images ``(N, S, S)``.

    Returns the frozen backbone as an :class:`Encoder` and the per-epoch history (``loss``,
    ``z_std_ratio`` collapse monitor: about 1 healthy, 0 collapsed). With ``run`` (a
    :class:`kerassev.runs.RunFolder`) training is checkpointed and resumable through
    :func:`kerassev.training.fit_stage`.
    """
    ssl = config.ssl
    if ssl is None:
        raise ValueError("config.ssl is None: SimSiam pretraining disabled")
    keras.utils.set_random_seed(config.seed)
    size = ssl.image_size
    backbone = build_backbone(
        config.backbone, weights=None, input_shape=(size, size, 3), pooling="avg"
    )
    encoder = build_encoder(backbone, projection_dim=ssl.projection_dim)
    predictor = build_predictor(ssl.projection_dim, hidden=ssl.predictor_hidden)
    pipe = PipelineConfig(
        image_size=size,
        channels=3,
        preprocessing="imagenet",
        batch_size=ssl.batch_size,
        shuffle=True,
        seed=config.seed,
        two_view_policy=ssl.augmentation,
        drop_remainder=len(images) > ssl.batch_size,  # BN needs > 1 image per batch
    )
    log = pretrain_simsiam(
        SimSiam(encoder, predictor),
        images,
        stages=[(SSL_STAGE, ssl.stage())],
        pipeline=pipe,
        run=run,
        backbone_name=backbone.name,
        encoder_file=None if run is None else run.subdir("models") / "simsiam_encoder.weights.h5",
        verbose=verbose,
    )
    backbone.trainable = False
    label = (
        f"SimSiam {backbone_label(config.backbone)} (random init; SSL on {len(images)} "
        f"unlabelled frontal CXRs, {size}px, {ssl.epochs} epochs)"
    )
    history = {
        k: [float(v) for v in log[k]]
        for k in log.columns
        if k not in ("epoch", "stage", "global_epoch")
    }
    return Encoder("simsiam", label, backbone, size, 3, "imagenet"), history

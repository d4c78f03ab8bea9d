"""Paper 01's self-supervised stage: a SimSiam encoder trained in two stages (§3.1, SPEC 01).

Stage A trains the projector and predictor on a frozen ResNet-50; stage B also unfreezes the
top-most 20 backbone layers except BatchNormalization. Both use SGD (momentum 0.6) with cosine
decay from 0.02. The staged training is :func:`kerassev.recipes.ssl_pretraining.pretrain_simsiam`;
the SimSiam loss itself (eq. 3) lives in :mod:`kerassev.losses.simsiam`.
"""

from __future__ import annotations

import keras
import numpy as np
import pandas as pd

from kerassev.data.pipeline import PipelineConfig, build_dataset_from_arrays
from kerassev.models.backbones import build_backbone
from kerassev.models.heads import build_encoder, build_predictor
from kerassev.models.simsiam import SimSiam
from kerassev.recipes.ssl_pretraining import pretrain_simsiam, stages_log
from kerassev.runs import RunFolder

from .config import MraleConfig

BACKBONE = "resnet50"
SSL_STAGES = ("stage_a", "stage_b")  # stage A: backbone frozen; stage B: top 20 layers open


def build_mrale_encoder(config: MraleConfig, *, weights=None) -> keras.Model:
    """ResNet-50 (no top, average-pooled) + projector MLP -> 2048-d embedding (§2.1)."""
    size = config.image_size
    backbone = build_backbone(BACKBONE, weights=weights, input_shape=(size, size, 3))
    return build_encoder(backbone, projection_dim=config.projection_dim, l2=config.l2)


def model_inputs(images: np.ndarray, config: MraleConfig) -> np.ndarray:
    """(N, S, S) images in [0, 1] -> the network's input: 3 channels, ImageNet preprocessing."""
    pipe = PipelineConfig(image_size=config.image_size, batch_size=128, shuffle=False)
    return np.concatenate([np.asarray(b) for b in build_dataset_from_arrays(images, pipe)])


def encoder_path(run: RunFolder, init: str):
    return run.subdir("models") / f"encoder_{init}.weights.h5"


def pretrain_encoder(
    images: np.ndarray,
    config: MraleConfig,
    run: RunFolder,
    *,
    init: str,
    weights=None,
    verbose: int = 0,
) -> tuple[keras.Model, pd.DataFrame]:
    """Train (or, in a resumed run, reload) the SimSiam encoder for one initialisation.

    ``init`` names the start ("imagenet" = hot start, "scratch" = cold start, Fig. 3). Returns the
    encoder and the per-epoch SSL log of both stages (loss and the collapse monitor ``z_std``).
    """
    encoder = build_mrale_encoder(config, weights=weights)
    predictor = build_predictor(config.projection_dim, hidden=config.predictor_hidden, l2=config.l2)
    pipe = PipelineConfig(
        image_size=config.image_size,
        batch_size=config.batch_size,
        seed=config.seed,
        two_view_policy=config.augment_policy,
        drop_remainder=True,  # a batch of one breaks BatchNorm
    )
    pretrain_simsiam(
        SimSiam(encoder, predictor, name=f"simsiam_{init}"),
        images,
        stages=list(zip(SSL_STAGES, (config.ssl_stage_a, config.ssl_stage_b), strict=True)),
        pipeline=pipe,
        run=run,
        backbone_name=BACKBONE,
        stage_prefix=f"ssl_{init}/",
        encoder_file=encoder_path(run, init),
        verbose=verbose,
    )
    return encoder, ssl_log(run, init)


def ssl_log(run: RunFolder, init: str) -> pd.DataFrame:
    """Both SSL stages' per-epoch logs end to end, with a global epoch counter."""
    log = stages_log(run, SSL_STAGES, prefix=f"ssl_{init}/")
    if len(log):
        log.insert(log.columns.get_loc("stage") + 1, "init", init)
    return log

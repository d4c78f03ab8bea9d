"""The self-supervised family: one ``TwoViewSSL`` base, one module per method."""

from .base import (
    EMATargetSSL,
    TwoViewSSL,
    backbone_of,
    collapse_std,
    ema_momentum,
    ema_update,
    make_target,
    unpack_views,
)
from .byol import BYOL
from .cross import Cross
from .factory import METHOD_LABELS, METHODS, NEEDS_INDEX, build_ssl_model
from .pirl import PIRL, jigsaw_tiles, random_rotation
from .simclr import SimCLR
from .simsiam import SimSiam

__all__ = [
    "BYOL",
    "EMATargetSSL",
    "METHODS",
    "METHOD_LABELS",
    "NEEDS_INDEX",
    "PIRL",
    "Cross",
    "SimCLR",
    "SimSiam",
    "TwoViewSSL",
    "backbone_of",
    "build_ssl_model",
    "collapse_std",
    "ema_momentum",
    "ema_update",
    "jigsaw_tiles",
    "make_target",
    "random_rotation",
    "unpack_views",
]

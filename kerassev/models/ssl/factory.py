"""Build any of the suite's self-supervised methods by name on a given encoder."""

from __future__ import annotations

import keras

from kerassev.models.heads import build_predictor

from .base import TwoViewSSL
from .byol import BYOL
from .cross import Cross
from .pirl import PIRL
from .simclr import SimCLR
from .simsiam import SimSiam

__all__ = ["METHODS", "METHOD_LABELS", "NEEDS_INDEX", "build_ssl_model"]

#: Method keys, in paper 04's Table 2 order (Cross first).
METHODS = ("cross", "byol", "simsiam", "simclr", "pirl_jigsaw", "pirl_rotation")
METHOD_LABELS = {
    "cross": "Cross",
    "byol": "BYOL",
    "simsiam": "SimSiam",
    "simclr": "SimCLR",
    "pirl_jigsaw": "PIRL-Jigsaw",
    "pirl_rotation": "PIRL-Rotation",
}
#: Methods whose data must carry each image's row number (a memory bank).
NEEDS_INDEX = ("pirl_jigsaw", "pirl_rotation")


def build_ssl_model(
    method: str,
    encoder: keras.Model,
    *,
    predictor_hidden: int = 512,
    predictor_dim: int | None = None,
    l2: float | None = None,
    tau: float = 0.996,
    temperature: float | None = None,
    bank_size: int | None = None,
    seed: int | None = None,
    name: str | None = None,
) -> TwoViewSSL:
    """``method`` (one of :data:`METHODS`) on ``encoder`` (backbone + projector).

    ``predictor_hidden`` / ``predictor_dim`` size the predictor (SimSiam, BYOL, Cross; the output
    defaults to the encoder's); ``tau`` is the EMA momentum (BYOL, Cross); ``temperature``
    defaults to 0.1 (SimCLR) or 0.07 (PIRL); ``bank_size`` (PIRL) is the number of images.
    """
    if method not in METHODS:
        raise ValueError(f"unknown SSL method {method!r}; choose one of {METHODS}")
    name = name or method
    dim = int(encoder.output_shape[-1])
    if method in ("simsiam", "byol", "cross"):
        predictor = build_predictor(dim, hidden=predictor_hidden, out_dim=predictor_dim, l2=l2)
        if method == "simsiam":
            return SimSiam(encoder, predictor, name=name)
        cls = BYOL if method == "byol" else Cross
        return cls(encoder, predictor, tau=tau, name=name)
    if method == "simclr":
        return SimCLR(encoder, temperature=temperature or 0.1, name=name)
    if bank_size is None:
        raise ValueError(f"{method} needs bank_size (the number of images)")
    return PIRL(
        encoder,
        bank_size=bank_size,
        pretext=method.split("_", 1)[1],
        temperature=temperature or 0.07,
        seed=seed,
        name=name,
    )

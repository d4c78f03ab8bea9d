"""SimSiam loss (Liang et al. 2023, eq. 3; Chen & He 2021).

``D(p, z) = -cos(p, stopgrad(z))`` averaged over the batch (minimum -1), and the symmetrised loss
``L = 1/2 D(p1, stopgrad(z2)) + 1/2 D(p2, stopgrad(z1))``. The cosine is Keras' own
(``keras.losses.cosine_similarity``, which already returns its negative); inputs are cast to
float32 so the loss is exact under mixed precision.
"""

from __future__ import annotations

import keras
from keras import ops

__all__ = ["negative_cosine", "simsiam_loss"]


def negative_cosine(p, z):
    """``D(p, z) = -mean_b cos(p_b, stopgrad(z_b))`` (eq. 3); in ``[-1, 1]``, minimum -1."""
    z = ops.stop_gradient(ops.cast(z, "float32"))
    return ops.mean(keras.losses.cosine_similarity(z, ops.cast(p, "float32")))


def simsiam_loss(p1, p2, z1, z2):
    """Symmetric SimSiam loss, eq. 3: ``1/2 D(p1, sg(z2)) + 1/2 D(p2, sg(z1))``."""
    return 0.5 * negative_cosine(p1, z2) + 0.5 * negative_cosine(p2, z1)

"""BYOL loss (Grill et al. 2020, eq. 2): normalised MSE ``2 - 2 cos(p, sg(z'))``, symmetrised.

:func:`normalized_mse` is also the term of paper 04's eqs. 1-2 (:mod:`kerassev.losses.cross`).
Float32 throughout so the loss is exact under mixed precision.
"""

from __future__ import annotations

import keras
from keras import ops

__all__ = ["byol_loss", "normalized_mse"]


def normalized_mse(p, z):
    """``mean_b ||p_b/|p_b| - z_b/|z_b|||^2 = 2 - 2 cos(p, z)``, in ``[0, 4]``; no stop-gradient."""
    p, z = ops.cast(p, "float32"), ops.cast(z, "float32")
    # keras.losses.cosine_similarity is -cos
    return 2.0 + 2.0 * ops.mean(keras.losses.cosine_similarity(z, p))


def byol_loss(p1, p2, t1, t2):
    """``L = ||p1 - sg(t2)||^2 + ||p2 - sg(t1)||^2`` (normalised): online predictions ``p`` of one
    view against the target projections ``t`` of the other."""
    return normalized_mse(p1, ops.stop_gradient(t2)) + normalized_mse(p2, ops.stop_gradient(t1))

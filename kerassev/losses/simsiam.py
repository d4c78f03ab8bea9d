"""SimSiam loss (Liang et al. 2023, eq. 3; Chen & He 2021).

``D(p, z) = -cos(p, stopgrad(z))`` averaged over the batch (minimum -1), and the symmetrised loss
``L = 1/2 D(p1, stopgrad(z2)) + 1/2 D(p2, stopgrad(z1))``. Computed in float32 so it is exact under
mixed precision.
"""

from __future__ import annotations

from keras import ops

__all__ = ["cosine_similarity", "negative_cosine", "simsiam_loss"]


def cosine_similarity(a, b):
    """Row-wise cosine similarity of two ``(B, d)`` tensors -> ``(B,)`` (float32)."""
    a = ops.normalize(ops.cast(a, "float32"), axis=-1, order=2)
    b = ops.normalize(ops.cast(b, "float32"), axis=-1, order=2)
    return ops.sum(a * b, axis=-1)


def negative_cosine(p, z):
    """``D(p, z) = -mean_b cos(p_b, stopgrad(z_b))`` (eq. 3); in ``[-1, 1]``, minimum -1."""
    return -ops.mean(cosine_similarity(p, ops.stop_gradient(z)))


def simsiam_loss(p1, p2, z1, z2):
    """Symmetric SimSiam loss, eq. 3: ``1/2 D(p1, sg(z2)) + 1/2 D(p2, sg(z1))``."""
    return 0.5 * negative_cosine(p1, z2) + 0.5 * negative_cosine(p2, z1)

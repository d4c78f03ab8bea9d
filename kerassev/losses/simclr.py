"""SimCLR's NT-Xent loss (Chen et al. 2020, eq. 1) over the 2N views of a batch.

Each view's positive is the other view of its image; the other ``2N - 2`` views are its
negatives. Logits are cosine similarities over ``temperature``; the loss is the cross-entropy of
picking the positive, averaged over all 2N anchors. Default temperature 0.1: SimCLR's Table 5
and B.5 find lower temperatures best with few negatives (small batches, as here on CPU), and 0.5
at batch 4096; 0.1 is the value solo-learn uses for small-batch runs.
"""

from __future__ import annotations

import keras
from keras import ops

__all__ = ["nt_xent"]


def nt_xent(z1, z2, temperature: float = 0.1):
    """NT-Xent of projections ``z1``, ``z2`` ``(N, d)`` (views of the same N images)."""
    z = ops.normalize(ops.cast(ops.concatenate([z1, z2], axis=0), "float32"), axis=-1)
    n = ops.shape(z1)[0]
    logits = ops.matmul(z, ops.transpose(z)) / temperature
    # a view is not its own negative: mask the diagonal out of the softmax
    logits = logits - 1e9 * ops.eye(2 * n, dtype="float32")
    positives = ops.concatenate([ops.arange(n) + n, ops.arange(n)], axis=0)
    return ops.mean(
        keras.losses.sparse_categorical_crossentropy(positives, logits, from_logits=True)
    )

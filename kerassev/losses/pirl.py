"""PIRL's loss (Misra & van der Maaten 2020, eqs. 3-5) against a memory bank of image embeddings.

``L = lam * L_NCE(m_I, g(v_It)) + (1 - lam) * L_NCE(m_I, f(v_I))`` (eq. 5, lam = 0.5): the
memory-bank entry ``m_I`` of each image is the positive for both its transformed embedding
``g(v_It)`` and its untransformed one ``f(v_I)``; every other bank entry is a negative.
Deviation, stated: the contrast is the softmax (InfoNCE) form over the positive and the bank
negatives, with temperature 0.07 as PIRL, instead of PIRL's binary NCE with an estimated
normalising constant; both estimate the same instance-discrimination objective, the softmax form
needs no constant and is stable on small banks.
"""

from __future__ import annotations

import keras
from keras import ops

__all__ = ["bank_nce", "pirl_loss"]


def bank_nce(query, bank, index, temperature: float = 0.07):
    """InfoNCE of ``query`` ``(B, d)`` against the L2-normalised ``bank`` ``(M, d)``; the positive
    of row ``b`` is bank row ``index[b]``, the other ``M - 1`` rows its negatives. The bank is
    a constant (stop-gradient)."""
    q = ops.normalize(ops.cast(query, "float32"), axis=-1)
    logits = ops.matmul(q, ops.transpose(ops.stop_gradient(bank))) / temperature
    return ops.mean(keras.losses.sparse_categorical_crossentropy(index, logits, from_logits=True))


def pirl_loss(f, g, bank, index, *, temperature: float = 0.07, lam: float = 0.5):
    """Eq. 5 for image embeddings ``f`` and transformed-image embeddings ``g``."""
    return lam * bank_nce(g, bank, index, temperature) + (1.0 - lam) * bank_nce(
        f, bank, index, temperature
    )

"""Paper 04's loss (Li et al., "Self-supervised transfer learning for COVID-19 detection", eqs. 1-3).

``L1 = 2 - 2 cos(P1, P2)`` (eq. 1: the online predictions of the two views, gradient through
both), ``L2 = 2 - 2 cos(P2, Y2')`` (eq. 2: view 2's prediction against the target encoder's
projection of the same view, stop-gradient on ``Y2'``), ``L = L1 + L2`` (eq. 3).
"""

from __future__ import annotations

from keras import ops

from kerassev.losses.byol import normalized_mse

__all__ = ["cross_loss"]


def cross_loss(p1, p2, y2_target):
    """Eq. 3: ``L1 + L2``; in ``[0, 8]``."""
    if p2.shape[-1] != y2_target.shape[-1]:
        raise ValueError(
            f"eq. 2 compares P2 ({p2.shape[-1]}-d) with Y2' ({y2_target.shape[-1]}-d): the "
            "predictor's output size must equal the projector's (SPEC 04)"
        )
    return normalized_mse(p1, p2) + normalized_mse(p2, ops.stop_gradient(y2_target))

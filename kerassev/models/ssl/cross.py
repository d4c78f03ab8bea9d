"""The method of paper 04 (Li et al.; "Cross", Li et al. 2021b), eqs. 1-5.

Online encoder E1 (backbone + projector) gives ``Y1 = E1(V1)``, ``Y2 = E1(V2)``; predictor G gives
``P1 = G(Y1)``, ``P2 = G(Y2)``; the target encoder E2, an EMA of E1 (eq. 5, tau 0.996, every
iteration), gives ``Y2' = E2(V2)`` without gradient. ``L = (2 - 2cos(P1, P2)) + (2 - 2cos(P2,
Y2'))`` (eqs. 1-3) updates E1 and G (eq. 4). SPEC 04: the paper's projector (512 -> 128) and
predictor (4096 -> 256) sizes contradict eq. 2, so the predictor's output defaults to the
projector's (both configurable; a mismatch is an error).
"""

from __future__ import annotations

import keras

from kerassev.losses.cross import cross_loss

from .base import EMATargetSSL

__all__ = ["Cross"]


@keras.saving.register_keras_serializable(package="kerassev")
class Cross(EMATargetSSL):
    """Paper 04's self-supervised model (eqs. 1-5)."""

    def compute_ssl_loss(self, view1, view2, training, index=None):
        y1 = self.encoder(view1, training=training)
        y2 = self.encoder(view2, training=training)
        p1 = self.predictor(y1, training=training)
        p2 = self.predictor(y2, training=training)
        y2_target = self.target_embedding(view2, training)  # Y2', no gradient (eq. 5 note)
        return cross_loss(p1, p2, y2_target), y1, y2

"""BYOL (Grill et al. 2020): online encoder + predictor, target = EMA of the online encoder."""

from __future__ import annotations

import keras

from kerassev.losses.byol import byol_loss

from .base import EMATargetSSL

__all__ = ["BYOL"]


@keras.saving.register_keras_serializable(package="kerassev")
class BYOL(EMATargetSSL):
    """Symmetric BYOL loss (eq. 2 and its mirror): ``p1`` against the target's ``t2`` and ``p2``
    against ``t1``. ``tau`` 0.996; ``tau_total_steps`` gives BYOL's cosine schedule to 1."""

    def compute_ssl_loss(self, view1, view2, training, index=None):
        z1 = self.encoder(view1, training=training)
        z2 = self.encoder(view2, training=training)
        p1 = self.predictor(z1, training=training)
        p2 = self.predictor(z2, training=training)
        t1 = self.target_embedding(view1, training)
        t2 = self.target_embedding(view2, training)
        return byol_loss(p1, p2, t1, t2), z1, z2

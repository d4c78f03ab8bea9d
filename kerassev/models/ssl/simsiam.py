"""SimSiam (Chen & He 2021; Liang et al. 2023, §2.1 eq. 3, §3.1)."""

from __future__ import annotations

import keras

from kerassev.losses.simsiam import simsiam_loss

from .base import TwoViewSSL

__all__ = ["SimSiam"]


@keras.saving.register_keras_serializable(package="kerassev")
class SimSiam(TwoViewSSL):
    """Shared encoder f (backbone + projector) and predictor h.

    ``z_i = f(x_i)``, ``p_i = h(z_i)``, ``L = 1/2 D(p1, sg(z2)) + 1/2 D(p2, sg(z1))``. Each view
    is encoded separately so batch-norm statistics are per view, as in the reference code.
    """

    def __init__(self, encoder, predictor, **kwargs):
        if predictor is None:
            raise ValueError("SimSiam needs a predictor")
        super().__init__(encoder, predictor, **kwargs)

    def compute_ssl_loss(self, view1, view2, training, index=None):
        z1 = self.encoder(view1, training=training)
        z2 = self.encoder(view2, training=training)
        p1 = self.predictor(z1, training=training)
        p2 = self.predictor(z2, training=training)
        return simsiam_loss(p1, p2, z1, z2), z1, z2

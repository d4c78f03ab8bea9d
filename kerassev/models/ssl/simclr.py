"""SimCLR (Chen et al. 2020): encoder + projector, NT-Xent over the 2N views of a batch."""

from __future__ import annotations

import keras

from kerassev.losses.simclr import nt_xent

from .base import TwoViewSSL

__all__ = ["SimCLR"]


@keras.saving.register_keras_serializable(package="kerassev")
class SimCLR(TwoViewSSL):
    """No predictor, no target: each view's negatives are the batch's other 2N - 2 views.
    ``temperature`` 0.1 by default (see :mod:`kerassev.losses.simclr` for why)."""

    def __init__(self, encoder, predictor=None, *, temperature: float = 0.1, **kwargs):
        super().__init__(encoder, None, **kwargs)
        self.temperature = float(temperature)

    def compute_ssl_loss(self, view1, view2, training, index=None):
        z1 = self.encoder(view1, training=training)
        z2 = self.encoder(view2, training=training)
        return nt_xent(z1, z2, self.temperature), z1, z2

    def get_config(self):
        return {**super().get_config(), "temperature": self.temperature}

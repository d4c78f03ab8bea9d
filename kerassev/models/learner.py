"""LEARNER pre-training model (paper 02, Algorithm 1): video encoder + MLP head regressing HS.

``train_step`` computes the clip embeddings U = encoder(x), the head's prediction Y = head(U),
and the loss ``MSE(hs, Y) + cl_weight * CL(U, hs)`` (eqs. 1 and 3, :mod:`kerassev.losses.learner`),
so ``fit``, callbacks, checkpoints and distribution strategies keep working. ``contrastive=None``
is the MSE-only comparator.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import layers

from kerassev.losses.learner import contrastive_loss, mse_loss


def build_hs_head(dim: int, hidden: int = 128, name: str = "hs_head") -> keras.Model:
    """MLP head: embedding -> Dense(hidden, relu) -> Dense(1) health score."""
    inputs = keras.Input((dim,), name="embedding")
    x = layers.Dense(hidden, activation="relu", name="hidden")(inputs)
    return keras.Model(inputs, layers.Dense(1, name="hs")(x), name=name)


@keras.saving.register_keras_serializable(package="kerassev")
class LearnerPretrainer(keras.Model):
    """Encoder and HS head trained with MSE (+ CL / wCL / literal eq. 3)."""

    def __init__(
        self,
        encoder: keras.Model,
        head: keras.Model,
        *,
        contrastive: dict | None = None,
        cl_weight: float = 1.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.encoder, self.head = encoder, head
        self.contrastive = dict(contrastive) if contrastive is not None else None
        self.cl_weight = float(cl_weight)
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.mse_tracker = keras.metrics.Mean(name="mse")
        self.cl_tracker = keras.metrics.Mean(name="cl")
        # fit runs train_step, never __call__, so Keras would not mark the model built: saved
        # unbuilt, a .keras file reloads without its optimiser state
        self.built = encoder.built and head.built

    def get_config(self) -> dict:
        """Encoder, head and loss settings, so the model saves as ``.keras`` and loads back."""
        return {
            **super().get_config(),
            "encoder": keras.saving.serialize_keras_object(self.encoder),
            "head": keras.saving.serialize_keras_object(self.head),
            "contrastive": self.contrastive,
            "cl_weight": self.cl_weight,
        }

    @classmethod
    def from_config(cls, config: dict) -> LearnerPretrainer:
        config = dict(config)
        encoder = keras.saving.deserialize_keras_object(config.pop("encoder"))
        head = keras.saving.deserialize_keras_object(config.pop("head"))
        return cls(encoder, head, **config)

    @property
    def metrics(self):
        return [self.loss_tracker, self.mse_tracker, self.cl_tracker]

    def call(self, x, training=False):
        return self.head(self.encoder(x, training=training), training=training)

    def _loss_terms(self, x, hs, training: bool):
        u = self.encoder(x, training=training)
        mse = mse_loss(hs, self.head(u, training=training))
        cl = (
            contrastive_loss(u, hs, **self.contrastive)
            if self.contrastive is not None
            else tf.constant(0.0)
        )
        return mse + self.cl_weight * cl, mse, cl

    def _track(self, loss, mse, cl):
        self.loss_tracker.update_state(loss)
        self.mse_tracker.update_state(mse)
        self.cl_tracker.update_state(cl)
        return {m.name: m.result() for m in self.metrics}

    def train_step(self, data):
        x, hs = data[0], data[1]
        with tf.GradientTape() as tape:
            loss, mse, cl = self._loss_terms(x, hs, training=True)
        weights = self.trainable_variables
        self.optimizer.apply_gradients(zip(tape.gradient(loss, weights), weights, strict=True))
        return self._track(loss, mse, cl)

    def test_step(self, data):
        return self._track(*self._loss_terms(data[0], data[1], training=False))

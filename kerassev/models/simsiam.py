"""SimSiam as a Keras model with ``train_step`` (Liang et al. 2023, §2.1 eq. 3, §3.1).

``TwoViewSSL`` holds what any two-view self-supervised model needs (view unpacking, the gradient
step with loss scaling for mixed precision and distribution, L2 regularisation, metric trackers and
the collapse monitor); ``SimSiam`` only defines the forward pass and loss. A BYOL model subclasses
``TwoViewSSL`` the same way, overriding ``compute_ssl_loss``, ``ssl_trainable_variables`` (online
network only) and ``after_train_step`` (EMA update of the target network).

Metrics, reset every epoch and logged through History / CSVLogger:
``loss`` (eq. 3 only, what the paper's Fig. 3 plots; -1 is the minimum), ``reg_loss`` (L2 terms,
added to the optimised objective), ``z_std`` (collapse monitor, :func:`collapse_std`) and
``z_std_ratio`` = ``z_std * sqrt(d)`` (about 1 when healthy, 0 when collapsed).
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf
from keras import ops

from kerassev.losses.simsiam import simsiam_loss

__all__ = ["SimSiam", "TwoViewSSL", "collapse_std", "unpack_views"]


def collapse_std(z):
    """Mean over dimensions of the per-dimension batch std of L2-normalised ``z`` (SimSiam §4.1).

    About ``1/sqrt(d)`` for a healthy embedding, 0 when every image maps to the same vector.
    """
    z = ops.normalize(ops.cast(z, "float32"), axis=-1, order=2)
    return ops.mean(ops.std(z, axis=0))


def unpack_views(data):
    """``(view1, view2)`` from ``(v1, v2)``, ``((v1, v2),)``, ``((v1, v2), y[, w])`` or a dict
    with keys ``view1``/``view2``. Labels, if any, are ignored."""
    if isinstance(data, dict):
        return data["view1"], data["view2"]
    while isinstance(data, (tuple, list)) and len(data) == 1:
        data = data[0]
    if isinstance(data, dict):
        return data["view1"], data["view2"]
    if isinstance(data, (tuple, list)) and data:
        first = data[0]
        if isinstance(first, (tuple, list)) and len(first) == 2:
            return first[0], first[1]
        if isinstance(first, dict):
            return first["view1"], first["view2"]
        if len(data) == 2:
            return data[0], data[1]
    raise ValueError(
        "expected two views: (view1, view2), ((view1, view2),) or {'view1', 'view2'}; "
        f"got {type(data).__name__} of length {len(data) if hasattr(data, '__len__') else '?'}"
    )


def _scale_for_distribution(loss):
    """Per-replica loss / n_replicas, since gradients are summed across replicas."""
    n = tf.distribute.get_strategy().num_replicas_in_sync
    return loss / n if n > 1 else loss


class TwoViewSSL(keras.Model):
    """Base class: two augmented views -> loss; tracks ``loss``, ``reg_loss``, ``z_std``, ``z_std_ratio``.

    Subclasses implement :meth:`compute_ssl_loss`. ``call(x)`` returns ``encoder(x)`` (the
    embedding), so ``predict`` gives embeddings.
    """

    def __init__(self, encoder: keras.Model, predictor: keras.Model, **kwargs):
        super().__init__(**kwargs)
        self.encoder = encoder
        self.predictor = predictor
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.reg_loss_tracker = keras.metrics.Mean(name="reg_loss")
        self.z_std_tracker = keras.metrics.Mean(name="z_std")
        self.z_std_ratio_tracker = keras.metrics.Mean(name="z_std_ratio")
        if getattr(encoder, "built", False) and getattr(predictor, "built", False):
            self.built = True

    @property
    def metrics(self):
        # Listed here so fit/evaluate reset them at each epoch (Keras 3 pattern).
        return [
            self.loss_tracker,
            self.reg_loss_tracker,
            self.z_std_tracker,
            self.z_std_ratio_tracker,
        ]

    def call(self, inputs, training=None):
        return self.encoder(inputs, training=training)

    # --- hooks for subclasses -------------------------------------------------------------
    def compute_ssl_loss(self, view1, view2, training):
        """Return ``(loss, z1, z2)``: scalar float32 loss and the two projections."""
        raise NotImplementedError

    def ssl_trainable_variables(self):
        """Variables the optimiser updates (BYOL: the online network only)."""
        return self.trainable_variables

    def after_train_step(self):
        """Called after each optimiser step (BYOL: EMA update of the target network)."""

    # --- shared machinery ----------------------------------------------------------------
    def regularization_loss(self):
        losses = [ops.cast(x, "float32") for x in self.losses]
        return ops.sum(ops.stack(losses)) if losses else ops.convert_to_tensor(0.0, "float32")

    def _update_metrics(self, loss, reg, z1, z2):
        z_std = 0.5 * (collapse_std(z1) + collapse_std(z2))
        d = int(z1.shape[-1])
        self.loss_tracker.update_state(loss)
        self.reg_loss_tracker.update_state(reg)
        self.z_std_tracker.update_state(z_std)
        self.z_std_ratio_tracker.update_state(z_std * math.sqrt(d))
        return {m.name: m.result() for m in self.metrics}

    def train_step(self, data):
        view1, view2 = unpack_views(data)
        variables = self.ssl_trainable_variables()
        with tf.GradientTape() as tape:
            loss, z1, z2 = self.compute_ssl_loss(view1, view2, training=True)
            reg = self.regularization_loss()
            total = _scale_for_distribution(loss + reg)
            # LossScaleOptimizer (mixed_float16) scales here and unscales in apply().
            scaled = self.optimizer.scale_loss(total)
        grads = tape.gradient(scaled, variables)
        self.optimizer.apply(grads, variables)
        self.after_train_step()
        return self._update_metrics(loss, reg, z1, z2)

    def test_step(self, data):
        view1, view2 = unpack_views(data)
        loss, z1, z2 = self.compute_ssl_loss(view1, view2, training=False)
        return self._update_metrics(loss, self.regularization_loss(), z1, z2)

    def get_config(self):
        return {
            **super().get_config(),
            "encoder": keras.saving.serialize_keras_object(self.encoder),
            "predictor": keras.saving.serialize_keras_object(self.predictor),
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        encoder = keras.saving.deserialize_keras_object(config.pop("encoder"))
        predictor = keras.saving.deserialize_keras_object(config.pop("predictor"))
        return cls(encoder, predictor, **config)


@keras.saving.register_keras_serializable(package="kerassev")
class SimSiam(TwoViewSSL):
    """SimSiam (eq. 3): shared encoder f (backbone + projector) and predictor h.

    ``z_i = f(x_i)``, ``p_i = h(z_i)``, ``L = 1/2 D(p1, sg(z2)) + 1/2 D(p2, sg(z1))``. Each view
    is encoded separately so batch-norm statistics are per view, as in the reference code.
    """

    def compute_ssl_loss(self, view1, view2, training):
        z1 = self.encoder(view1, training=training)
        z2 = self.encoder(view2, training=training)
        p1 = self.predictor(z1, training=training)
        p2 = self.predictor(z2, training=training)
        return simsiam_loss(p1, p2, z1, z2), z1, z2

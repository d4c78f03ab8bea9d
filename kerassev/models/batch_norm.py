"""Fused batch normalisation: the same layer and weights as Keras', one kernel instead of seven.

Keras 3's ``BatchNormalization`` on TensorFlow computes moments and the affine transform as
separate ops, and under a bfloat16/float16 policy it casts every activation to float32 and back
around them. In a ResNet-50 training step those casts and element-wise passes cost more than the
bf16 convolutions save: the step gains nothing from ``mixed_bfloat16`` (issue 12).
``FusedBatchNormalization`` calls ``FusedBatchNormV3`` (oneDNN on CPU, cuDNN on GPU), which takes
bf16/fp16 activations with float32 scale, offset and statistics, accumulates in float32, and has a
fused gradient. Statistics and their update follow Keras exactly (biased batch variance,
``moving = moving * momentum + batch * (1 - momentum)``), so weights move freely between the two.

Cases the fused kernel does not cover (masks, renorm, synchronized BN, an axis other than the last
of a 2-D or 4-D input, another backend) fall back to Keras' implementation.
"""

from __future__ import annotations

import weakref

import keras
import numpy as np
import tensorflow as tf

__all__ = [
    "FusedBatchNormalization",
    "fuse_batch_norm",
    "precise_batch_norm",
    "recompute_batch_norm_statistics",
]


@keras.saving.register_keras_serializable(package="kerassev", name="FusedBatchNormalization")
class FusedBatchNormalization(keras.layers.BatchNormalization):
    """Drop-in ``keras.layers.BatchNormalization`` using ``FusedBatchNormV3`` where it applies."""

    def _fusable(self, inputs, mask) -> bool:
        axis = self.axis if isinstance(self.axis, int) else None
        return (
            keras.backend.backend() == "tensorflow"
            and mask is None
            and not self.renorm
            and not self.synchronized
            and len(inputs.shape) in (2, 4)
            and axis in (-1, len(inputs.shape) - 1)
        )

    def call(self, inputs, training=None, mask=None):
        if not self._fusable(inputs, mask):
            return super().call(inputs, training=training, mask=mask)
        channels = inputs.shape[-1]
        if len(inputs.shape) == 2:  # (B, C) -> (B, 1, 1, C): heads' BN fuses too
            flat = self.call(inputs[:, None, None, :], training=training)
            return flat[:, 0, 0, :]
        scale = self.gamma if self.scale else tf.ones((channels,), "float32")
        offset = self.beta if self.center else tf.zeros((channels,), "float32")
        scale, offset = tf.cast(scale, "float32"), tf.cast(offset, "float32")
        if training and self.trainable:
            y, mean, variance = tf.compat.v1.nn.fused_batch_norm(
                inputs, scale, offset, epsilon=self.epsilon, is_training=True
            )[:3]
            # The kernel returns the Bessel-corrected variance; Keras tracks the biased one.
            n = tf.cast(tf.reduce_prod(tf.shape(inputs)[:3]), "float32")
            variance = variance * (n - 1.0) / tf.maximum(n, 2.0)
            m = self.momentum
            self.moving_mean.assign(self.moving_mean * m + mean * (1.0 - m))
            self.moving_variance.assign(self.moving_variance * m + variance * (1.0 - m))
            return y
        return tf.compat.v1.nn.fused_batch_norm(
            inputs,
            scale,
            offset,
            mean=tf.cast(self.moving_mean, "float32"),
            variance=tf.cast(self.moving_variance, "float32"),
            epsilon=self.epsilon,
            is_training=False,
        )[0]


# Keras keys ``.weights.h5`` / ``.keras`` entries by the snake-cased class name
# ("layers/batch_normalization_3/vars"); keeping Keras' name keeps every weight file, old or new,
# loadable into fused and plain models alike. The registered name above stays distinct.
FusedBatchNormalization.__name__ = FusedBatchNormalization.__qualname__ = "BatchNormalization"


def fuse_batch_norm(model: keras.Model) -> keras.Model:
    """A copy of functional ``model`` with every Keras ``BatchNormalization`` fused, same weights.

    Nested functional models are cloned recursively by ``keras.models.clone_model``; layer names,
    order and weights are unchanged, so checkpoints and weight files load into either version.
    """

    def clone(layer):
        if type(layer) is keras.layers.BatchNormalization:
            return FusedBatchNormalization.from_config(layer.get_config())
        if isinstance(layer, keras.Model):
            return fuse_batch_norm(layer)
        return layer.__class__.from_config(layer.get_config())

    fused = keras.models.clone_model(model, clone_function=clone)
    fused.set_weights(model.get_weights())
    fused.trainable = model.trainable
    return fused


_PRECISE_BN_FORWARD: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def recompute_batch_norm_statistics(model: keras.Model, images, *, batch_size: int = 32) -> int:
    """Precise BN: set every trainable BN layer's moving mean and variance to the equal-weight
    average of its batch statistics over ``images`` under the current weights; returns the number
    of batches used.

    Short fine-tuning at a high learning rate moves the weights faster than the moving averages
    follow (momentum 0.99 averages over ~100 steps), so inference-mode outputs can be useless while
    batch statistics are fine (docs/results/covid_ssl_cpu.md). This is PreciseBN of pycls and
    Detectron2 (Wu & Johnson, "Rethinking 'Batch' in BatchNorm", 2021, §3.1): a forward pass in
    training mode with momentum (n - 1) / n at the n-th batch, i.e. a cumulative mean. Only full
    batches are used (a short last batch would weigh as much with noisier statistics).
    """
    layers = [
        layer
        for layer in model._flatten_layers(include_self=False)
        if isinstance(layer, keras.layers.BatchNormalization) and layer.trainable
    ]
    n_batches = max(1, len(images) // batch_size)
    if not layers:
        return 0
    # One traced forward pass per model, reused by later calls (fine-tuning calls this once per
    # predicted epoch, and a trace costs as much as the pass); it reads `momentum`, a variable.
    if model not in _PRECISE_BN_FORWARD:
        momentum = tf.Variable(0.0, trainable=False, dtype="float32")
        ref = weakref.ref(model)  # a strong reference here would keep the key alive forever
        _PRECISE_BN_FORWARD[model] = (momentum, tf.function(lambda x: ref()(x, training=True)))
    momentum, forward = _PRECISE_BN_FORWARD[model]
    saved = [layer.momentum for layer in layers]
    try:
        for layer in layers:
            layer.momentum = momentum  # read at each call of the traced forward pass
        strategy = tf.distribute.get_strategy()
        for i in range(n_batches):
            momentum.assign(i / (i + 1))
            batch = tf.convert_to_tensor(images[i * batch_size : (i + 1) * batch_size])
            # Under a tf.distribute strategy the statistics are replica variables, updated in a
            # replica context: every replica (worker) runs the same batch, so their mean is it.
            strategy.run(forward, args=(batch,))
    finally:
        for layer, m in zip(layers, saved, strict=True):
            layer.momentum = m
    return n_batches


def precise_batch_norm(
    model: keras.Model, images, *, batch_size: int = 32, max_images: int | None = 1024, seed=0
) -> int:
    """:func:`recompute_batch_norm_statistics` for a frozen feature extractor: every BN layer of
    ``model`` is re-estimated, whatever its ``trainable`` flag, which is restored after.

    Issue 18 fault 1: after a short SSL run the moving statistics (momentum 0.99) are half their
    (0, 1) start and half lagged batch statistics, and a frozen probe reads them in inference
    mode. ``max_images`` (a seeded random subset; None: all) bounds the cost: 1,024 images
    estimate a channel's mean and variance to well under 1 % of its spread. Returns the batches used.
    """
    images = np.asarray(images)
    if max_images is not None and len(images) > max_images:
        pick = np.sort(np.random.default_rng(seed).choice(len(images), max_images, replace=False))
        images = images[pick]
    layers = [model, *model._flatten_layers(include_self=False)]
    flags = [layer.trainable for layer in layers]
    try:
        model.trainable = True
        return recompute_batch_norm_statistics(
            model, images, batch_size=min(batch_size, len(images))
        )
    finally:
        for layer, flag in zip(layers, flags, strict=True):  # parents first, then children
            layer.trainable = flag

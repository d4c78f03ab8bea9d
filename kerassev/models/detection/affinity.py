"""The affinity layer of paper 05 (Ter-Sarkisov 2021, §3, Fig. 2, eqs. 1-5).

Input: a ranked batch of ``B`` lesion-mask features per image, ``(N, B, H, W, C)`` (paper:
8 x 28 x 28 x 256, channels last here). Four stages:

1. **mask sieve**: each RoI alone, ``N_s`` times (3 in the paper) H -> H/2 (2x2 conv, stride 2,
   BN, ReLU) -> H (2x2 transposed conv, stride 2); trained by the image loss only (eqs. 9-10);
2. **vectorisation**: H x W -> 1 x 1 (a spatial mean) gives X1, ``B x C`` (eq. 1);
3. **affinity matrix**: trainable W1 ``(B, A)``, X2 = W1^T X1, ``A x C`` (eqs. 2-4): column r
   of W1 weighs feature j across the B lesion masks into its r-th affinity;
4. **affinity vector**: trainable w2 ``(A,)``, x3 = w2^T X2, ``C`` (eq. 5);

then two fully connected layers with ReLU and a 3-neuron logits layer (§3: COVID, CP, Normal).
The hidden width of the two FC layers is not given in the paper (``hidden`` here).

Under a mixed policy the sieve and the FC layers compute in 16 bits; the vectorisation (a mean
of 784 values), W1, w2 (eqs. 1-5, tiny) and the returned logits and X2 are float32.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import layers

from kerassev.models.detection.heads import _flat, _restore


class MaskSieve(keras.layers.Layer):
    """``stages`` x (conv 2x2/2 -> BN -> ReLU -> transposed conv 2x2/2): same shape out."""

    def __init__(self, stages: int = 3, **kwargs):
        super().__init__(**kwargs)
        self.stages = stages

    def build(self, input_shape):
        c = int(input_shape[-1])
        self.blocks = []
        for i in range(self.stages):
            block = [
                layers.Conv2D(c, 2, strides=2, name=f"down{i + 1}"),
                layers.BatchNormalization(name=f"bn{i + 1}"),
                layers.ReLU(),
                layers.Conv2DTranspose(c, 2, strides=2, name=f"up{i + 1}"),
            ]
            self.blocks.append(block)
        shape = (None, *input_shape[-3:])
        for block in self.blocks:
            for layer in block:
                layer.build(shape)
                shape = layer.compute_output_shape(shape)
        self.built = True

    def call(self, x, training=False):
        y, lead = _flat(x)  # every RoI processed alone, as in the RoI heads
        for block in self.blocks:
            for layer in block:
                y = (
                    layer(y, training=training)
                    if isinstance(layer, layers.BatchNormalization)
                    else layer(y)
                )
        return _restore(y, lead)

    def get_config(self):
        return {**super().get_config(), "stages": self.stages}


class AffinityLayer(keras.layers.Layer):
    """Lesion-mask features ``(N, B, H, W, C)`` -> ``(logits (N, classes), X2 (N, A, C))``."""

    def __init__(
        self,
        affinities: int = 256,
        sieve_stages: int = 3,
        hidden: int = 1024,
        num_classes: int = 3,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.affinities, self.sieve_stages = affinities, sieve_stages
        self.hidden, self.num_classes = hidden, num_classes
        self.sieve = MaskSieve(sieve_stages, name="mask_sieve")
        self.fc1 = layers.Dense(hidden, activation="relu", name="fc1")
        self.fc2 = layers.Dense(hidden, activation="relu", name="fc2")
        self.logits = layers.Dense(num_classes, name="class_logits")

    def build(self, input_shape):
        b, c = int(input_shape[1]), int(input_shape[-1])
        self.sieve.build(input_shape)
        # W1: B x A (eq. 2), one column per affinity; w2: length A (eq. 5).
        self.w1 = self.add_weight(
            shape=(b, self.affinities), initializer="glorot_uniform", name="w1", autocast=False
        )
        self.w2 = self.add_weight(
            shape=(self.affinities,), initializer="glorot_uniform", name="w2", autocast=False
        )
        self.fc1.build((None, c))
        self.fc2.build((None, self.hidden))
        self.logits.build((None, self.hidden))
        self.built = True

    def call(self, features, training=False):
        sieved = self.sieve(features, training=training)
        x1 = tf.reduce_mean(tf.cast(sieved, tf.float32), axis=(2, 3))  # vectorise: (N, B, C), eq. 1
        x2 = tf.einsum("ba,nbc->nac", tf.cast(self.w1, tf.float32), x1)  # X2 = W1^T X1, eq. 2
        x3 = tf.einsum("a,nac->nc", tf.cast(self.w2, tf.float32), x2)  # x3 = w2^T X2, eq. 5
        logits = self.logits(self.fc2(self.fc1(x3)))
        return tf.cast(logits, tf.float32), x2

    def get_config(self):
        return {
            **super().get_config(),
            "affinities": self.affinities,
            "sieve_stages": self.sieve_stages,
            "hidden": self.hidden,
            "num_classes": self.num_classes,
        }

"""The affinity layer of paper 05 (Ter-Sarkisov 2021, §3, Fig. 2, eqs. 1-5).

Input: a ranked batch of ``B`` lesion-mask features per image, ``(N, B, H, W, C)`` (paper:
8 x 28 x 28 x 256, channels last here). Four stages:

1. **mask sieve**: each RoI alone, ``N_s`` times (3 in the paper) H -> H/2 (2x2 conv, stride 2,
   BN, ReLU) -> H (2x2 transposed conv, stride 2); trained by the image loss only (eqs. 9-10);
2. **vectorisation**: H x W -> 1 x 1 gives X1, ``B x C`` (eq. 1). ``vectorise="conv"`` follows
   the author's ``AffinityLayer`` (COVID-Affinity-Model, ``affinity_model.py``): conv 2x2/2 ->
   ReLU -> BN, twice, then a conv of the remaining H/4 x W/4 -> ReLU -> BN, all C channels.
   ``"mean"`` is a spatial mean (the sieve ends in a linear transposed conv, so signed features
   can cancel in it: kept only for comparison);
3. **affinity matrix**: trainable W1 ``(B, A)``, X2 = W1^T X1, ``A x C`` (eqs. 2-4): column r
   of W1 weighs feature j across the B lesion masks into its r-th affinity;
4. **affinity vector**: trainable w2 ``(A,)``, x3 = w2^T X2, ``C`` (eq. 5);

then two fully connected layers with ReLU and a 3-neuron logits layer (§3: COVID, CP, Normal).
The hidden width of the two FC layers is not given in the paper; the author's code uses 128.
W1 and w2 are drawn from a standard normal as the author's ``torch.randn`` (``affinity_init=
"normal"``; Glorot makes x3 about 180x smaller at B=8, A=256).

Remaining differences from the author's code: the author's ``nn.Sequential`` holds one sieve
module three times and applies it three times (nine applications of shared weights); here the
``N_s`` sieve stages are separate blocks applied once each, as §3 describes.

Under a mixed policy the sieve and the FC layers compute in 16 bits; the vectorisation (a mean
of 784 values), W1, w2 (eqs. 1-5, tiny) and the returned logits and X2 are float32.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import layers

from kerassev.models.detection.heads import _flat, _restore

VECTORISE = ("conv", "mean")
AFFINITY_INIT = {"normal": lambda: keras.initializers.RandomNormal(0.0, 1.0),
                 "glorot": keras.initializers.GlorotUniform}  # fmt: skip


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
        hidden: int = 128,
        num_classes: int = 3,
        vectorise: str = "conv",
        affinity_init: str = "normal",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if vectorise not in VECTORISE:
            raise ValueError(f"vectorise must be one of {VECTORISE}, not {vectorise!r}")
        if affinity_init not in AFFINITY_INIT:
            raise ValueError(f"affinity_init must be one of {tuple(AFFINITY_INIT)}")
        self.vectorise, self.affinity_init = vectorise, affinity_init
        self.affinities, self.sieve_stages = affinities, sieve_stages
        self.hidden, self.num_classes = hidden, num_classes
        self.sieve = MaskSieve(sieve_stages, name="mask_sieve")
        self.fc1 = layers.Dense(hidden, activation="relu", name="fc1")
        self.fc2 = layers.Dense(hidden, activation="relu", name="fc2")
        self.logits = layers.Dense(num_classes, name="class_logits")

    def build(self, input_shape):
        b, h, w, c = (int(v) for v in input_shape[1:])
        self.sieve.build(input_shape)
        self.vector_layers = []
        if self.vectorise == "conv":  # the author's conv_d1 / conv_d2 / conv_d_final + BN
            if h % 4 or w % 4:
                raise ValueError(f"vectorise='conv' needs H, W divisible by 4, got {h}x{w}")
            init = keras.initializers.HeNormal()  # kaiming_normal_ as the author's
            for i, (kernel, stride) in enumerate(((2, 2), (2, 2), ((h // 4, w // 4), 1)), 1):
                conv = layers.Conv2D(c, kernel, strides=stride, activation="relu",
                                     kernel_initializer=init, name=f"vector_conv{i}")  # fmt: skip
                self.vector_layers += [conv, layers.BatchNormalization(name=f"vector_bn{i}")]
            shape = (None, h, w, c)
            for layer in self.vector_layers:
                layer.build(shape)
                shape = layer.compute_output_shape(shape)
        # W1: B x A (eq. 2), one column per affinity; w2: length A (eq. 5).
        self.w1 = self.add_weight(
            shape=(b, self.affinities), initializer=AFFINITY_INIT[self.affinity_init](),
            name="w1", autocast=False,
        )  # fmt: skip
        self.w2 = self.add_weight(
            shape=(self.affinities,), initializer=AFFINITY_INIT[self.affinity_init](),
            name="w2", autocast=False,
        )  # fmt: skip
        self.fc1.build((None, c))
        self.fc2.build((None, self.hidden))
        self.logits.build((None, self.hidden))
        self.built = True

    def call(self, features, training=False):
        sieved = self.sieve(features, training=training)
        x1 = tf.cast(self._vectorise(sieved, training), tf.float32)  # (N, B, C), eq. 1
        x2 = tf.einsum("ba,nbc->nac", tf.cast(self.w1, tf.float32), x1)  # X2 = W1^T X1, eq. 2
        x3 = tf.einsum("a,nac->nc", tf.cast(self.w2, tf.float32), x2)  # x3 = w2^T X2, eq. 5
        logits = self.logits(self.fc2(self.fc1(x3)))
        return tf.cast(logits, tf.float32), x2

    def _vectorise(self, sieved, training):
        if self.vectorise == "mean":
            return tf.reduce_mean(tf.cast(sieved, tf.float32), axis=(2, 3))
        y, lead = _flat(sieved)
        for layer in self.vector_layers:
            is_bn = isinstance(layer, layers.BatchNormalization)
            y = layer(y, training=training) if is_bn else layer(y)
        return tf.squeeze(_restore(y, lead), axis=(2, 3))  # (N, B, 1, 1, C) -> (N, B, C)

    def get_config(self):
        return {
            **super().get_config(),
            "vectorise": self.vectorise,
            "affinity_init": self.affinity_init,
            "affinities": self.affinities,
            "sieve_stages": self.sieve_stages,
            "hidden": self.hidden,
            "num_classes": self.num_classes,
        }

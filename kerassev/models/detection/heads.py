"""R-CNN branches on pooled RoI features, each a Keras layer on its own (He et al. 2017, Fig. 4 right).

- :class:`BoxHead`: flatten the 7x7 RoI -> FC -> ReLU -> FC -> ReLU (torchvision ``TwoMLPHead``);
- :class:`BoxPredictor`: class logits (background + ``num_classes``) and per-class box deltas;
- :class:`MaskHead`: four 3x3 convs + ReLU on the 14x14 RoI (``MaskRCNNHeads``);
- :class:`MaskPredictor`: 2x2 stride-2 transposed conv + ReLU -> 1x1 conv: 28x28 logits per class.

Inputs are ``(B, R, P, P, C)`` (or ``(N, P, P, C)``); leading dimensions are kept. Under a mixed
policy the layers compute in 16 bits and the predictors return float32 (as Keras' mixed-precision
guide casts a model's outputs), so box decoding, NMS and the losses are float32. Paper 05 builds
its classification and mask-feature branches as copies of these layers, so each stands alone.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import layers


def _flat(x):
    """``(..., P, P, C)`` -> ``(N, P, P, C)`` and the leading shape to restore."""
    lead = tf.shape(x)[:-3]
    return tf.reshape(x, (-1, *x.shape[-3:])), lead


def _restore(y, lead):
    return tf.reshape(y, tf.concat([lead, tf.shape(y)[1:]], axis=0))


class BoxHead(keras.layers.Layer):
    def __init__(self, representation_size: int = 1024, **kwargs):
        super().__init__(**kwargs)
        self.representation_size = representation_size
        self.fc6 = layers.Dense(representation_size, activation="relu", name="fc6")
        self.fc7 = layers.Dense(representation_size, activation="relu", name="fc7")

    def call(self, rois):
        x, lead = _flat(rois)
        x = tf.reshape(x, (tf.shape(x)[0], int(x.shape[1] * x.shape[2] * x.shape[3])))
        return _restore(self.fc7(self.fc6(x)), lead)

    def get_config(self):
        return {**super().get_config(), "representation_size": self.representation_size}


class BoxPredictor(keras.layers.Layer):
    """``(class logits (..., K + 1), deltas (..., K + 1, 4))``; index 0 is background."""

    def __init__(self, num_classes: int, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = num_classes
        self.cls_score = layers.Dense(
            num_classes + 1, kernel_initializer=keras.initializers.RandomNormal(stddev=0.01)
        )
        self.bbox_pred = layers.Dense(
            4 * (num_classes + 1), kernel_initializer=keras.initializers.RandomNormal(stddev=0.001)
        )

    def call(self, x):
        deltas = tf.cast(self.bbox_pred(x), tf.float32)
        shape = tf.concat([tf.shape(deltas)[:-1], [self.num_classes + 1, 4]], axis=0)
        return tf.cast(self.cls_score(x), tf.float32), tf.reshape(deltas, shape)

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes}


class MaskHead(keras.layers.Layer):
    """``group_norm``: conv -> GroupNorm(32) -> ReLU, Detectron2's ``MaskRCNNConvUpsampleHead``
    with ``norm="GN"`` (issue 19 fault 2); otherwise conv -> ReLU as torchvision."""

    def __init__(self, channels: int = 256, num_convs: int = 4, group_norm: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.channels, self.num_convs, self.group_norm = channels, num_convs, group_norm
        self.convs = [
            layers.Conv2D(
                channels,
                3,
                padding="same",
                activation=None if group_norm else "relu",
                kernel_initializer="he_normal",
                name=f"mask_fcn{i + 1}",
            )
            for i in range(num_convs)
        ]
        self.norms = [
            layers.GroupNormalization(min(32, channels), epsilon=1e-5, name=f"mask_gn{i + 1}")
            for i in range(num_convs if group_norm else 0)
        ]

    def call(self, rois):
        x, lead = _flat(rois)
        for i, conv in enumerate(self.convs):
            x = conv(x)
            if self.group_norm:
                x = tf.nn.relu(self.norms[i](x))
        return _restore(x, lead)

    def get_config(self):
        return {**super().get_config(), "channels": self.channels, "num_convs": self.num_convs,
                "group_norm": self.group_norm}  # fmt: skip


class MaskPredictor(keras.layers.Layer):
    """Mask logits ``(..., 2P, 2P, K + 1)`` (channel 0 is background, never trained)."""

    def __init__(self, num_classes: int, channels: int = 256, **kwargs):
        super().__init__(**kwargs)
        self.num_classes, self.channels = num_classes, channels
        self.deconv = layers.Conv2DTranspose(
            channels,
            2,
            strides=2,
            activation="relu",
            kernel_initializer="he_normal",
            name="conv5_mask",
        )
        self.logits = layers.Conv2D(num_classes + 1, 1, kernel_initializer="he_normal")

    def call(self, x):
        x, lead = _flat(x)
        return _restore(tf.cast(self.logits(self.deconv(x)), tf.float32), lead)

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes, "channels": self.channels}

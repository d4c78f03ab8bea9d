"""Multi-level RoIAlign (He et al. 2017, §3; Lin et al. 2017, eq. 1) from ``tf.image.crop_and_resize``.

Each box is pooled from one FPN level, ``k = floor(4 + log2(sqrt(w h) / 224))`` clipped to P2-P5.
Sampling is "aligned" (Detectron2's ``aligned=True``): a box is shifted by half a feature pixel so
pixel centres sit at integer coordinates, split into ``P x P`` bins, each bin sampled at
``s x s`` evenly spaced points by bilinear interpolation and averaged.

The sample points of a box form a regular ``(P s) x (P s)`` grid, which is exactly what
``crop_and_resize`` samples, so one call per box does the interpolation. Feature maps get a 1-pixel
edge-replicated border first: torchvision's RoIAlign clamps points within one pixel outside the
map to the edge and gives 0 further out, and the border reproduces that. All levels are stacked
(zero-padded to P2's size) into one batch so a single ``crop_and_resize`` serves every box at the
cost of its own level only, with static shapes.
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf


def fpn_level(boxes, *, k_min: int = 2, k_max: int = 5, canonical_size=224.0, canonical_level=4):
    """FPN level of each ``[y1, x1, y2, x2]`` box (Lin et al. 2017, eq. 1), int32 in [k_min, k_max]."""
    area = tf.maximum(boxes[..., 2] - boxes[..., 0], 0.0) * tf.maximum(
        boxes[..., 3] - boxes[..., 1], 0.0
    )
    log2 = tf.math.log(tf.sqrt(area) / canonical_size + 1e-8) / math.log(2.0)
    k = tf.floor(canonical_level + log2 + 1e-6)  # torchvision's LevelMapper epsilon
    return tf.cast(tf.clip_by_value(k, k_min, k_max), tf.int32)


class MultiLevelRoIAlign(keras.layers.Layer):
    """``(features [P2..P5], boxes (B, R, 4) in input pixels) -> (B, R, P, P, C)``."""

    def __init__(self, output_size: int = 7, sampling_ratio: int = 2, strides=(4, 8, 16, 32), **kw):
        super().__init__(**kw)
        self.output_size = output_size
        self.sampling_ratio = sampling_ratio
        self.strides = tuple(strides)

    def call(self, features, boxes):
        features = list(features)[: len(self.strides)]
        p, s = self.output_size, self.sampling_ratio
        b = tf.shape(boxes)[0]
        r = boxes.shape[1]
        c = features[0].shape[-1]
        # One stacked map per (image, level): edge border of 1, then zeros up to P2's size.
        h0, w0 = features[0].shape[1] + 2, features[0].shape[2] + 2
        stacked = []
        for f in features:
            f = tf.pad(f, [[0, 0], [1, 1], [1, 1], [0, 0]], mode="SYMMETRIC")
            stacked.append(tf.pad(f, [[0, 0], [0, h0 - f.shape[1]], [0, w0 - f.shape[2]], [0, 0]]))
        stacked = tf.reshape(tf.stack(stacked, axis=1), (-1, h0, w0, c))  # (B * L, h0, w0, C)

        level = fpn_level(boxes, k_min=2, k_max=1 + len(self.strides)) - 2  # (B, R)
        scale = 1.0 / tf.gather(tf.constant(self.strides, tf.float32), level)[..., None]
        fb = boxes * scale - 0.5  # aligned: pixel centres at integer feature coordinates
        bin_h = (fb[..., 2] - fb[..., 0]) / p
        bin_w = (fb[..., 3] - fb[..., 1]) / p
        half_h, half_w = 0.5 * bin_h / s, 0.5 * bin_w / s
        # First and last sample point, +1 for the border, normalised as crop_and_resize wants.
        norm = tf.stack(
            [
                (fb[..., 0] + half_h + 1.0) / (h0 - 1),
                (fb[..., 1] + half_w + 1.0) / (w0 - 1),
                (fb[..., 2] - half_h + 1.0) / (h0 - 1),
                (fb[..., 3] - half_w + 1.0) / (w0 - 1),
            ],
            axis=-1,
        )
        index = tf.range(b)[:, None] * len(self.strides) + level
        crops = tf.image.crop_and_resize(
            stacked,
            tf.reshape(norm, (-1, 4)),
            tf.reshape(index, (-1,)),
            (p * s, p * s),
            method="bilinear",
            extrapolation_value=0.0,
        )
        if s > 1:
            crops = tf.nn.avg_pool2d(crops, s, s, "VALID")
        return tf.reshape(crops, (b, r, p, p, c))

    def get_config(self):
        return {
            **super().get_config(),
            "output_size": self.output_size,
            "sampling_ratio": self.sampling_ratio,
            "strides": self.strides,
        }

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

Under a mixed policy the sample coordinates are float32 (a bf16 box coordinate at 512 px is off
by up to 2 px) and so is the interpolation (torchvision's autocast runs roi_align in float32 too):
``CropAndResize`` has no bf16 kernel, its output is float32 whatever its input, and measured on
this CPU (512 boxes, 14x14x256, forward + backward) a float16 input is ~4x slower than float32
and the gather path ~1.4x slower in bf16 than in float32. The heads after it cast back to their
compute dtype.
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf


def gather_crop_and_resize(image, boxes, box_indices, crop_size, extrapolation_value=0.0):
    """``tf.image.crop_and_resize`` (bilinear) from gathers, which XLA compiles (it has no
    CropAndResize kernel): same sample points, same zero outside the image."""
    h, w, c = image.shape[1], image.shape[2], image.shape[3]
    ph, pw = crop_size
    ty = tf.range(ph, dtype=tf.float32) / max(ph - 1, 1)
    tx = tf.range(pw, dtype=tf.float32) / max(pw - 1, 1)
    ys = (boxes[:, 0:1] + ty[None] * (boxes[:, 2:3] - boxes[:, 0:1])) * (h - 1)  # (K, ph)
    xs = (boxes[:, 1:2] + tx[None] * (boxes[:, 3:4] - boxes[:, 1:2])) * (w - 1)  # (K, pw)
    inside = ((ys >= 0) & (ys <= h - 1))[:, :, None] & ((xs >= 0) & (xs <= w - 1))[:, None, :]
    y0, x0 = tf.floor(ys), tf.floor(xs)
    wy, wx = (ys - y0)[:, :, None, None], (xs - x0)[:, None, :, None]
    y0i = tf.clip_by_value(tf.cast(y0, tf.int32), 0, h - 1)
    x0i = tf.clip_by_value(tf.cast(x0, tf.int32), 0, w - 1)
    y1i, x1i = tf.minimum(y0i + 1, h - 1), tf.minimum(x0i + 1, w - 1)
    flat = tf.reshape(image, (-1, c))
    base = tf.cast(box_indices, tf.int32)[:, None, None] * (h * w)

    def at(yi, xi):
        return tf.gather(flat, base + yi[:, :, None] * w + xi[:, None, :])  # (K, ph, pw, C)

    top = at(y0i, x0i) * (1 - wx) + at(y0i, x1i) * wx
    bottom = at(y1i, x0i) * (1 - wx) + at(y1i, x1i) * wx
    out = top * (1 - wy) + bottom * wy
    return tf.where(inside[..., None], out, extrapolation_value)


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

    def __init__(
        self, output_size=7, sampling_ratio=2, strides=(4, 8, 16, 32), xla_friendly=False, **kw
    ):
        # No input autocasting: boxes must stay float32 under a mixed policy (features are cast
        # to float32 below).
        kw.setdefault("autocast", False)
        super().__init__(**kw)
        self.xla_friendly = xla_friendly  # gathers instead of CropAndResize (no XLA kernel)
        self.output_size = output_size
        self.sampling_ratio = sampling_ratio
        self.strides = tuple(strides)

    def call(self, features, boxes):
        features = [tf.cast(f, tf.float32) for f in list(features)[: len(self.strides)]]
        boxes = tf.cast(boxes, tf.float32)
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
        crop = gather_crop_and_resize if self.xla_friendly else tf.image.crop_and_resize
        crops = crop(
            stacked,
            tf.reshape(norm, (-1, 4)),
            tf.reshape(index, (-1,)),
            (p * s, p * s),
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
            "xla_friendly": self.xla_friendly,
        }

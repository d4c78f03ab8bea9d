"""Box coder: boxes <-> regression deltas relative to reference boxes (Girshick et al. 2014, App. C).

``t_y = w_y (y - y_a) / h_a``, ``t_h = w_h log(h / h_a)`` and likewise for x / w, with per-coordinate
weights (torchvision: (1, 1, 1, 1) for the RPN, (10, 10, 5, 5) for the box head) and the predicted
log-scales clipped at ``log(1000 / 16)`` so a wild prediction cannot overflow ``exp``. Boxes are
``[y1, x1, y2, x2]``, deltas ``[dy, dx, dh, dw]``; any leading batch dimensions broadcast.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import tensorflow as tf

BBOX_XFORM_CLIP = math.log(1000.0 / 16)


def _centre_size(boxes):
    """``(cy, cx, h, w)`` of ``[y1, x1, y2, x2]`` boxes."""
    h = boxes[..., 2] - boxes[..., 0]
    w = boxes[..., 3] - boxes[..., 1]
    return boxes[..., 0] + 0.5 * h, boxes[..., 1] + 0.5 * w, h, w


@dataclass(frozen=True)
class BoxCoder:
    weights: tuple[float, float, float, float] = (1.0, 1.0, 1.0, 1.0)
    clip: float = BBOX_XFORM_CLIP

    def encode(self, boxes, reference):
        """Deltas that turn ``reference`` boxes into ``boxes`` (same shape ``(..., 4)``)."""
        boxes = tf.convert_to_tensor(boxes, tf.float32)
        reference = tf.convert_to_tensor(reference, tf.float32)
        wy, wx, wh, ww = self.weights
        cya, cxa, ha, wa = _centre_size(reference)
        cy, cx, h, w = _centre_size(boxes)
        # Guard degenerate (padding) boxes; their deltas are masked out of every loss.
        ha, wa = tf.maximum(ha, 1e-6), tf.maximum(wa, 1e-6)
        h, w = tf.maximum(h, 1e-6), tf.maximum(w, 1e-6)
        return tf.stack(
            [
                wy * (cy - cya) / ha,
                wx * (cx - cxa) / wa,
                wh * tf.math.log(h / ha),
                ww * tf.math.log(w / wa),
            ],
            axis=-1,
        )

    def decode(self, deltas, reference):
        """Boxes from ``deltas`` applied to ``reference`` (inverse of :meth:`encode`)."""
        deltas = tf.convert_to_tensor(deltas, tf.float32)
        reference = tf.convert_to_tensor(reference, tf.float32)
        wy, wx, wh, ww = self.weights
        cya, cxa, ha, wa = _centre_size(reference)
        dy, dx = deltas[..., 0] / wy, deltas[..., 1] / wx
        dh = tf.minimum(deltas[..., 2] / wh, self.clip)
        dw = tf.minimum(deltas[..., 3] / ww, self.clip)
        cy, cx = dy * ha + cya, dx * wa + cxa
        h, w = tf.exp(dh) * ha, tf.exp(dw) * wa
        return tf.stack([cy - 0.5 * h, cx - 0.5 * w, cy + 0.5 * h, cx + 0.5 * w], axis=-1)


def clip_boxes(boxes, image_size: tuple[int, int]):
    """Clip ``[y1, x1, y2, x2]`` boxes to an ``(H, W)`` image."""
    h, w = float(image_size[0]), float(image_size[1])
    lo = tf.zeros_like(boxes)
    hi = tf.constant([h, w, h, w], boxes.dtype) + lo
    return tf.clip_by_value(boxes, lo, hi)

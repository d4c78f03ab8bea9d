"""Region proposal network (Ren et al. 2015, §3.1) on FPN levels: the head and the proposal layer.

:class:`RPNHead` is torchvision's: one 3x3 conv + ReLU shared by all levels, then 1x1 convs for
``A`` objectness logits and ``4A`` box deltas per cell. :func:`propose` turns them into proposals
as Detectron's FPN RPN does: per level keep the ``pre_nms_top_n`` best anchors, decode, clip,
discard tiny boxes, NMS at 0.7 (``tf.image.non_max_suppression_padded``, fixed output size),
keep ``post_nms_top_n`` per level, then the ``post_nms_top_n`` best over all levels. Every tensor
has a static shape; padding proposals come back with ``valid == False``.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import tensorflow as tf
from keras import layers

from kerassev.models.detection.box_coder import BoxCoder, clip_boxes


class RPNHead(keras.layers.Layer):
    """Objectness logits ``(B, H*W*A)`` and deltas ``(B, H*W*A, 4)`` for each level, float32
    whatever the compute dtype (the convs run in the policy's)."""

    def __init__(self, num_anchors: int, channels: int = 256, **kwargs):
        super().__init__(**kwargs)
        self.num_anchors = num_anchors
        self.channels = channels
        init = keras.initializers.RandomNormal(stddev=0.01)
        self.conv = layers.Conv2D(
            channels, 3, padding="same", activation="relu", kernel_initializer=init, name="conv"
        )
        self.cls_logits = layers.Conv2D(num_anchors, 1, kernel_initializer=init, name="cls_logits")
        self.bbox_pred = layers.Conv2D(4 * num_anchors, 1, kernel_initializer=init, name="bbox")

    def call(self, features):
        logits, deltas = [], []
        for feature in features:
            t = self.conv(feature)
            b = tf.shape(t)[0]
            # float32 out: anchors, decoding, NMS and the losses are float32 (mixed precision).
            logits.append(tf.cast(tf.reshape(self.cls_logits(t), (b, -1)), tf.float32))
            deltas.append(tf.cast(tf.reshape(self.bbox_pred(t), (b, -1, 4)), tf.float32))
        return logits, deltas

    def get_config(self):
        return {**super().get_config(), "num_anchors": self.num_anchors, "channels": self.channels}


@dataclass(frozen=True)
class ProposalConfig:
    pre_nms_top_n: int = 2000  # per level
    post_nms_top_n: int = 2000  # per level, then over all levels
    nms_threshold: float = 0.7
    min_size: float = 1e-3


def propose(logits, deltas, anchors, image_size, config: ProposalConfig, coder=None):
    """Proposals ``(B, P, 4)``, their objectness logits ``(B, P)`` and ``valid (B, P)``.

    ``logits`` / ``deltas`` / ``anchors`` are per-level lists (anchors ``(N_l, 4)`` constants).
    No gradient flows through proposals (as in torchvision, which detaches them).
    """
    coder = coder or BoxCoder()
    boxes_all, scores_all = [], []
    for lvl_logits, lvl_deltas, lvl_anchors in zip(logits, deltas, anchors, strict=True):
        lvl_logits = tf.stop_gradient(lvl_logits)
        lvl_deltas = tf.stop_gradient(lvl_deltas)
        n = lvl_anchors.shape[0]
        k = min(config.pre_nms_top_n, n)
        scores, idx = tf.math.top_k(lvl_logits, k=k)
        boxes = coder.decode(
            tf.gather(lvl_deltas, idx, batch_dims=1), tf.gather(tf.constant(lvl_anchors), idx)
        )
        boxes = clip_boxes(boxes, image_size)
        small = tf.logical_or(
            boxes[..., 2] - boxes[..., 0] < config.min_size,
            boxes[..., 3] - boxes[..., 1] < config.min_size,
        )
        scores = tf.where(small, -1e9, scores)
        keep_n = min(config.post_nms_top_n, k)
        keep, n_valid = tf.image.non_max_suppression_padded(
            boxes, scores, keep_n, iou_threshold=config.nms_threshold, pad_to_max_output_size=True
        )
        kept_scores = tf.gather(scores, keep, batch_dims=1)
        padding = tf.range(keep_n)[None, :] >= n_valid[:, None]
        boxes_all.append(tf.gather(boxes, keep, batch_dims=1))
        scores_all.append(tf.where(padding | (kept_scores <= -1e8), -1e9, kept_scores))
    boxes = tf.concat(boxes_all, axis=1)
    scores = tf.concat(scores_all, axis=1)
    total = min(config.post_nms_top_n, boxes.shape[1])
    top_scores, top = tf.math.top_k(scores, k=total)
    return tf.gather(boxes, top, batch_dims=1), top_scores, top_scores > -1e8

"""Mask R-CNN losses (He et al. 2017, §3; Ren et al. 2015, eq. 1), as torchvision computes them.

- RPN: binary cross-entropy on the sampled anchors' objectness, smooth L1 (beta 1/9) on the
  positive anchors' deltas, both normalised by the number of sampled anchors;
- R-CNN: softmax cross-entropy over background + classes on the sampled RoIs, smooth L1 on the
  positive RoIs' deltas of their ground-truth class, normalised by the number of sampled RoIs;
- mask: per-pixel binary cross-entropy of the 28x28 mask of the RoI's ground-truth class only
  (the other classes' masks get no gradient), averaged over positive RoIs' pixels.

Each takes a validity mask for padded entries, so batches of fixed shape give exact losses.
"""

from __future__ import annotations

import tensorflow as tf

from kerassev.models.detection.roi_align import gather_crop_and_resize

SMOOTH_L1_BETA = 1.0 / 9.0


def smooth_l1(x, beta: float = SMOOTH_L1_BETA):
    ax = tf.abs(x)
    return tf.where(ax < beta, 0.5 * ax * ax / beta, ax - 0.5 * beta)


def _count(mask):
    return tf.maximum(tf.reduce_sum(tf.cast(mask, tf.float32)), 1.0)


def rpn_loss(logits, deltas, labels, targets, valid):
    """``(objectness, box)`` losses; all inputs are sampled ``(B, K, ...)`` with labels 0/1."""
    w = tf.cast(valid, tf.float32)
    y = tf.cast(labels == 1, tf.float32)
    bce = tf.nn.sigmoid_cross_entropy_with_logits(labels=y, logits=logits)
    n = _count(valid)
    objectness = tf.reduce_sum(bce * w) / n
    box = tf.reduce_sum(tf.reduce_sum(smooth_l1(deltas - targets), -1) * w * y) / n
    return objectness, box


def rcnn_loss(class_logits, deltas, labels, targets, valid):
    """``(classification, box)`` losses; ``labels (B, R)`` int, 0 background; ``deltas`` per class."""
    w = tf.cast(valid, tf.float32)
    ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=class_logits)
    n = _count(valid)
    classification = tf.reduce_sum(ce * w) / n
    own = tf.gather(deltas, labels, batch_dims=2)  # (B, R, 4): the ground-truth class's deltas
    pos = w * tf.cast(labels > 0, tf.float32)
    box = tf.reduce_sum(tf.reduce_sum(smooth_l1(own - targets), -1) * pos) / n
    return classification, box


def mask_loss(mask_logits, labels, mask_targets, valid):
    """Mean BCE of each positive RoI's own-class mask; ``mask_logits (B, R, M, M, K + 1)``."""
    own = tf.gather(tf.transpose(mask_logits, (0, 1, 4, 2, 3)), labels, batch_dims=2)
    bce = tf.nn.sigmoid_cross_entropy_with_logits(labels=mask_targets, logits=own)
    pos = tf.cast(valid, tf.float32) * tf.cast(labels > 0, tf.float32)
    return tf.reduce_sum(tf.reduce_mean(bce, axis=(-1, -2)) * pos) / tf.maximum(
        tf.reduce_sum(pos), 1.0
    )


def mask_targets(gt_masks, matched, boxes, size: int = 28, *, xla_friendly: bool = False):
    """Binary ``(B, R, size, size)`` targets: each box's matched instance mask resampled to the box.

    ``gt_masks (B, M, H, W)``, ``matched (B, R)`` instance index, ``boxes (B, R, 4)`` in pixels.
    Sample points are the centres of a ``size x size`` grid over the box (torchvision projects
    masks with RoIAlign the same way), thresholded at 0.5.
    """
    b, m, h, w = (tf.shape(gt_masks)[0], gt_masks.shape[1], gt_masks.shape[2], gt_masks.shape[3])
    r = boxes.shape[1]
    flat = tf.reshape(tf.cast(gt_masks, tf.float32), (-1, h, w, 1))
    index = tf.reshape(tf.range(b)[:, None] * m + matched, (-1,))
    bh = (boxes[..., 2] - boxes[..., 0]) / size
    bw = (boxes[..., 3] - boxes[..., 1]) / size
    norm = tf.stack(
        [
            (boxes[..., 0] + 0.5 * bh - 0.5) / (h - 1),
            (boxes[..., 1] + 0.5 * bw - 0.5) / (w - 1),
            (boxes[..., 2] - 0.5 * bh - 0.5) / (h - 1),
            (boxes[..., 3] - 0.5 * bw - 0.5) / (w - 1),
        ],
        axis=-1,
    )
    crop = gather_crop_and_resize if xla_friendly else tf.image.crop_and_resize
    crops = crop(flat, tf.reshape(norm, (-1, 4)), index, (size, size))
    return tf.reshape(tf.cast(crops[..., 0] >= 0.5, tf.float32), (b, r, size, size))

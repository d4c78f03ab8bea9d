"""IoU matching of boxes to ground truth and the balanced positive/negative sampler.

As torchvision's ``Matcher`` and ``BalancedPositiveNegativeSampler`` (Ren et al. 2015, §3.1.2;
Girshick 2015, §2.3), on fixed-size padded tensors so a train step traces once:

- ground truth is ``(B, M, 4)`` padded with a ``(B, M)`` validity mask; an image may have none;
- :meth:`Matcher.match` labels each box 1 (IoU >= high), 0 (IoU < low) or -1 (in between, or not
  a valid box), with "low-quality" matches (each ground truth's best box) promoted to positive;
- :func:`sample` draws ``K`` indices per image, at most ``positive_fraction * K`` positive and the
  rest negative, with a validity mask where an image has fewer than ``K`` candidates.
"""

from __future__ import annotations

from dataclasses import dataclass

import tensorflow as tf

POSITIVE, NEGATIVE, IGNORE = 1, 0, -1


def box_area(boxes):
    return tf.maximum(boxes[..., 2] - boxes[..., 0], 0.0) * tf.maximum(
        boxes[..., 3] - boxes[..., 1], 0.0
    )


def box_iou(a, b):
    """Pairwise IoU of ``a (..., N, 4)`` and ``b (..., M, 4)`` -> ``(..., N, M)``."""
    a = tf.convert_to_tensor(a, tf.float32)
    b = tf.convert_to_tensor(b, tf.float32)
    y1 = tf.maximum(a[..., :, None, 0], b[..., None, :, 0])
    x1 = tf.maximum(a[..., :, None, 1], b[..., None, :, 1])
    y2 = tf.minimum(a[..., :, None, 2], b[..., None, :, 2])
    x2 = tf.minimum(a[..., :, None, 3], b[..., None, :, 3])
    inter = tf.maximum(y2 - y1, 0.0) * tf.maximum(x2 - x1, 0.0)
    union = box_area(a)[..., :, None] + box_area(b)[..., None, :] - inter
    return tf.math.divide_no_nan(inter, union)


@dataclass(frozen=True)
class Matcher:
    high: float = 0.7
    low: float = 0.3
    allow_low_quality_matches: bool = True

    def match(self, boxes, gt_boxes, gt_valid, box_valid=None):
        """``(matched_gt (B, N) int32, labels (B, N) int32)`` for boxes ``(B, N, 4)``."""
        gt_valid = tf.cast(gt_valid, tf.bool)
        iou = box_iou(boxes, gt_boxes)
        iou = tf.where(gt_valid[:, None, :], iou, -1.0)  # padding never matches
        best = tf.reduce_max(iou, axis=2)
        matched = tf.argmax(iou, axis=2, output_type=tf.int32)
        labels = tf.where(best >= self.high, POSITIVE, tf.where(best < self.low, NEGATIVE, IGNORE))
        if self.allow_low_quality_matches:
            # Each ground truth's best boxes (ties included) are positive even below ``high``.
            best_per_gt = tf.reduce_max(iou, axis=1, keepdims=True)
            is_best = (iou >= best_per_gt) & (best_per_gt > 0.0) & gt_valid[:, None, :]
            labels = tf.where(tf.reduce_any(is_best, axis=2), POSITIVE, labels)
        if box_valid is not None:
            labels = tf.where(tf.cast(box_valid, tf.bool), labels, IGNORE)
        return matched, tf.cast(labels, tf.int32)


def sample(labels, num_samples: int, positive_fraction: float, *, seed=None):
    """Balanced sample of ``num_samples`` indices per image from ``labels (B, N)``.

    Returns ``(indices (B, K) int32, valid (B, K) bool)``: positives first (at most
    ``int(K * positive_fraction)``), then negatives filling the rest, chosen uniformly at random.
    """
    n = labels.shape[1]
    k = min(num_samples, n)
    k_pos = min(int(num_samples * positive_fraction), n)
    rand = tf.random.uniform(tf.shape(labels), seed=seed)
    pos_key = tf.where(labels == POSITIVE, rand, -1.0)
    neg_key = tf.where(labels == NEGATIVE, rand, -1.0)
    pos_val, pos_idx = tf.math.top_k(pos_key, k=k_pos)
    neg_val, neg_idx = tf.math.top_k(neg_key, k=k)
    pos_ok = pos_val >= 0.0
    n_pos = tf.reduce_sum(tf.cast(pos_ok, tf.int32), axis=1, keepdims=True)
    neg_ok = (neg_val >= 0.0) & (tf.range(k)[None, :] < k - n_pos)
    idx = tf.concat([pos_idx, neg_idx], axis=1)
    ok = tf.concat([pos_ok, neg_ok], axis=1)
    # Keep the valid entries first, in order: a key that is larger the earlier a valid entry is.
    order = tf.cast(tf.range(k_pos + k, 0, -1), tf.float32)[None, :]
    key = tf.where(ok, order + float(k_pos + k), order)
    _, pick = tf.math.top_k(key, k=k)
    return tf.gather(idx, pick, batch_dims=1), tf.gather(ok, pick, batch_dims=1)

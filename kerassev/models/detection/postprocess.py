"""Detections from the R-CNN outputs: boxes, scores, labels and full-size binary masks.

As torchvision's ``RoIHeads.postprocess_detections`` and ``paste_masks_in_image``: softmax scores,
per-class decoded boxes clipped to the image, background dropped, score threshold, per-class NMS
and the ``detections_per_image`` best over all classes (``tf.image.combined_non_max_suppression``,
padded to a fixed count with ``num_detections`` valid). Masks are each detection's 28x28
probabilities pasted into its box (zero border, bilinear) and thresholded.
"""

from __future__ import annotations

from dataclasses import dataclass

import tensorflow as tf

from kerassev.models.detection.box_coder import BoxCoder, clip_boxes

RCNN_BOX_WEIGHTS = (10.0, 10.0, 5.0, 5.0)


@dataclass(frozen=True)
class DetectionConfig:
    score_threshold: float = 0.05
    nms_threshold: float = 0.5
    detections_per_image: int = 100
    mask_threshold: float = 0.5


def detect(class_logits, deltas, proposals, valid, image_size, config: DetectionConfig):
    """``(boxes (B, D, 4), scores (B, D), labels (B, D) int32 1..K, num (B,))``."""
    coder = BoxCoder(RCNN_BOX_WEIGHTS)
    scores = tf.nn.softmax(class_logits, axis=-1)[..., 1:]
    boxes = coder.decode(deltas[..., 1:, :], proposals[:, :, None, :])
    boxes = clip_boxes(boxes, image_size)
    scores = scores * tf.cast(valid, scores.dtype)[..., None]
    d = config.detections_per_image
    out = tf.image.combined_non_max_suppression(
        boxes,
        scores,
        max_output_size_per_class=d,
        max_total_size=d,
        iou_threshold=config.nms_threshold,
        score_threshold=config.score_threshold,
        pad_per_class=False,
        clip_boxes=False,
    )
    labels = tf.cast(out.nmsed_classes, tf.int32) + 1
    return out.nmsed_boxes, out.nmsed_scores, labels, out.valid_detections


def paste_masks(mask_probs, boxes, image_size):
    """``(B, D, M, M)`` probabilities pasted into ``(B, D, H, W)`` at ``boxes`` (pixels)."""
    h, w = image_size
    b, d, m = tf.shape(mask_probs)[0], mask_probs.shape[1], mask_probs.shape[2]
    padded = tf.pad(tf.reshape(mask_probs, (-1, m, m, 1)), [[0, 0], [1, 1], [1, 1], [0, 0]])
    boxes = tf.reshape(boxes, (-1, 4))
    bh = tf.maximum(boxes[:, 2] - boxes[:, 0], 1e-3)
    bw = tf.maximum(boxes[:, 3] - boxes[:, 1], 1e-3)
    # Image pixel centre r + 0.5 lies at mask index (r + 0.5 - y1) / bh * m - 0.5, +1 for the pad.
    norm = tf.stack(
        [
            ((0.5 - boxes[:, 0]) * m / bh + 0.5) / (m + 1),
            ((0.5 - boxes[:, 1]) * m / bw + 0.5) / (m + 1),
            ((h - 0.5 - boxes[:, 0]) * m / bh + 0.5) / (m + 1),
            ((w - 0.5 - boxes[:, 1]) * m / bw + 0.5) / (m + 1),
        ],
        axis=-1,
    )
    index = tf.range(tf.shape(boxes)[0])
    pasted = tf.image.crop_and_resize(padded, norm, index, (h, w), extrapolation_value=0.0)
    return tf.reshape(pasted, (b, d, h, w))

"""RoI batch selection for image classification (paper 05 §3, after COVID-CT-Mask-Net [TS20a]).

Unlike :func:`postprocess.detect`, no RoI is dropped for a low score: Normal and CP images have
only low-confidence "lesions" and the classifier needs them all the same. RoIs are dropped only
by overlap (NMS, IoU 0.25 by default) and size (shorter side under ``min_size`` pixels); the
survivors are ranked by confidence and the first ``batch_size`` (B = 8, SPEC §05) kept. When fewer
survive, the batch is padded by repeating them in rank order, as the authors' code does, so the
affinity layer always sees a full ``B x C`` matrix.
"""

from __future__ import annotations

from dataclasses import dataclass

import tensorflow as tf

from kerassev.models.detection.box_coder import BoxCoder, clip_boxes
from kerassev.models.detection.postprocess import RCNN_BOX_WEIGHTS

_DROPPED = -1e9  # score given to invalid or too-small RoIs; real scores are probabilities


@dataclass(frozen=True)
class RoISelectionConfig:
    batch_size: int = 8  # B, SPEC §05
    nms_threshold: float = 0.25
    min_size: float = 1e-2  # pixels; torchvision's remove_small_boxes in postprocessing


def select_roi_batch(boxes, scores, valid=None, config: RoISelectionConfig | None = None):
    """``(boxes (N, B, 4), scores (N, B), indices (N, B) int32, num_kept (N,))`` per image.

    ``boxes (N, R, 4)`` ``[y1, x1, y2, x2]`` pixels, ``scores (N, R)`` confidences in [0, 1],
    ``valid (N, R)`` bool (padding False). ``indices`` point into R; ``num_kept`` counts the RoIs
    that survived before padding (0 when none did: then the batch repeats RoI 0, whatever it is).
    """
    c = config or RoISelectionConfig()
    boxes = tf.convert_to_tensor(boxes, tf.float32)
    scores = tf.convert_to_tensor(scores, tf.float32)
    h = boxes[..., 2] - boxes[..., 0]
    w = boxes[..., 3] - boxes[..., 1]
    keep = (h >= c.min_size) & (w >= c.min_size)
    if valid is not None:
        keep &= tf.cast(valid, tf.bool)
    ranked = tf.where(keep, scores, _DROPPED)
    # Greedy NMS in descending score order; the output is ranked by confidence.
    idx, num = tf.image.non_max_suppression_padded(
        boxes,
        ranked,
        max_output_size=c.batch_size,
        iou_threshold=c.nms_threshold,
        score_threshold=_DROPPED / 2,
        pad_to_max_output_size=True,
    )
    idx = tf.cast(idx, tf.int32)
    num = tf.cast(num, tf.int32)
    # Pad by repeating the survivors in rank order: slot k takes survivor k mod num_kept.
    slot = tf.range(c.batch_size)[None, :] % tf.maximum(num, 1)[:, None]
    idx = tf.gather(idx, slot, batch_dims=1)
    return tf.gather(boxes, idx, batch_dims=1), tf.gather(scores, idx, batch_dims=1), idx, num


def classification_rois(class_logits, deltas, proposals, valid, image_size, config=None):
    """Selected RoI batch from the classification branch's outputs (as :func:`select_roi_batch`).

    Each proposal's confidence is its best foreground softmax score and its box that class's
    decoded box, clipped to the image.
    """
    probs = tf.nn.softmax(class_logits, axis=-1)[..., 1:]
    best = tf.argmax(probs, axis=-1, output_type=tf.int32)
    scores = tf.reduce_max(probs, axis=-1)
    decoded = BoxCoder(RCNN_BOX_WEIGHTS).decode(deltas[..., 1:, :], proposals[:, :, None, :])
    boxes = clip_boxes(tf.gather(decoded, best, batch_dims=2), image_size)
    return select_roi_batch(boxes, scores, valid, config)

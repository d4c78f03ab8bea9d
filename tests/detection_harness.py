"""Shared pieces of the detection tests: a tiny Mask R-CNN config and a synthetic two-lesion slice."""

from __future__ import annotations

import numpy as np

from kerassev.models.detection.mask_rcnn import MaskRCNNConfig


def tiny_config(**overrides) -> MaskRCNNConfig:
    """A 128-px, narrow Mask R-CNN that trains in seconds on a CPU."""
    values = dict(
        image_size=128,
        backbone="tiny",
        tiny_width=8,
        fpn_channels=32,
        representation_size=128,
        mask_channels=32,
        anchor_sizes=(16, 32, 64, 128, 256),
        rpn_pre_nms_train=200,
        rpn_post_nms_train=200,
        rpn_pre_nms_test=100,
        rpn_post_nms_test=100,
        roi_batch=64,
        max_instances=4,
        detections_per_image=10,
        mean=0.3,
        std=0.25,
        # the tiny backbone has no BN, so "bn" is the plain network these tests were sized on;
        # norm="group" (GroupNorm in FPN and mask head) is covered in test_detection_norm_input
        norm="bn",
    )
    values.update(overrides)
    return MaskRCNNConfig(**values)


def two_lesion_batch(size: int = 128, max_instances: int = 4) -> dict[str, np.ndarray]:
    """One slice with an elliptic and a rectangular-ish bright lesion, as a training batch."""
    yy, xx = np.mgrid[:size, :size] / size
    masks = np.zeros((1, max_instances, size, size), np.uint8)
    masks[0, 0] = ((yy - 0.3) / 0.12) ** 2 + ((xx - 0.35) / 0.18) ** 2 <= 1
    masks[0, 1] = (np.abs(yy - 0.7) < 0.14) & (np.abs(xx - 0.65) < 0.1)
    rng = np.random.default_rng(0)
    image = 0.2 + 0.03 * rng.standard_normal((size, size))
    image[masks[0].any(0)] += 0.5
    boxes = np.zeros((1, max_instances, 4), np.float32)
    classes = np.zeros((1, max_instances), np.int32)
    for i in range(2):
        ys, xs = np.nonzero(masks[0, i])
        boxes[0, i] = [ys.min(), xs.min(), ys.max() + 1, xs.max() + 1]
        classes[0, i] = 1
    return {
        "images": image[None, :, :, None].astype(np.float32),
        "boxes": boxes,
        "classes": classes,
        "masks": masks,
    }


def union_iou(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(bool), b.astype(bool)
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0

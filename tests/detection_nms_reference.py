"""Greedy NMS in plain NumPy (torchvision.ops.nms semantics), the detection tests' reference."""

from __future__ import annotations

import numpy as np


def iou_one_to_many(box, boxes):
    ih = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0, None)
    iw = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0, None)
    inter = ih * iw
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / (area + areas - inter)


def nms(boxes: np.ndarray, scores: np.ndarray, threshold: float) -> list[int]:
    """Indices kept, best first: a box is dropped when its IoU with a kept one exceeds threshold."""
    order = list(np.argsort(-scores, kind="stable"))
    keep = []
    while order:
        i = order.pop(0)
        keep.append(int(i))
        if order:
            ious = iou_one_to_many(boxes[i], boxes[order])
            order = [j for j, v in zip(order, ious, strict=True) if v <= threshold]
    return keep

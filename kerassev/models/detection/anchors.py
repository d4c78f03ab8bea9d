"""Anchor generator: ``sizes x aspect_ratios`` anchors at every cell of every FPN level.

Follows torchvision's ``AnchorGenerator`` (Ren et al. 2015, §3.1; Lin et al. 2017, §4.1): one size
per level (32..512 px on P2..P6), ratios h/w in {0.5, 1, 2}, base anchors centred on the origin and
rounded, shifted by ``stride`` per cell. Boxes are ``[y1, x1, y2, x2]`` in input pixels (the
TensorFlow ``tf.image`` convention), ordered level, row, column, anchor — the order in which the RPN
head's outputs are flattened.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class AnchorGenerator:
    sizes: tuple[tuple[float, ...], ...] = ((32,), (64,), (128,), (256,), (512,))
    aspect_ratios: tuple[float, ...] = (0.5, 1.0, 2.0)
    strides: tuple[int, ...] = (4, 8, 16, 32, 64)

    def __post_init__(self):
        if len(self.sizes) != len(self.strides):
            raise ValueError(f"{len(self.sizes)} anchor size groups for {len(self.strides)} levels")

    @property
    def num_anchors_per_location(self) -> int:
        return len(self.sizes[0]) * len(self.aspect_ratios)

    def base_anchors(self, level: int) -> np.ndarray:
        """``(A, 4)`` anchors of one level centred on (0, 0), as torchvision rounds them."""
        scales = np.asarray(self.sizes[level], np.float64)
        ratios = np.asarray(self.aspect_ratios, np.float64)
        h_ratios = np.sqrt(ratios)
        w_ratios = 1.0 / h_ratios
        ws = (w_ratios[:, None] * scales[None, :]).reshape(-1)
        hs = (h_ratios[:, None] * scales[None, :]).reshape(-1)
        return np.round(np.stack([-hs, -ws, hs, ws], axis=1) / 2)

    def grid_sizes(self, image_size: tuple[int, int]) -> list[tuple[int, int]]:
        """Feature-map size of each level for an input of ``image_size`` (ceil division)."""
        h, w = image_size
        return [(math.ceil(h / s), math.ceil(w / s)) for s in self.strides]

    def level_anchors(self, image_size: tuple[int, int]) -> list[np.ndarray]:
        """Per level ``(H_l * W_l * A, 4)`` float32 anchors for an ``image_size`` input."""
        out = []
        for level, ((gh, gw), stride) in enumerate(
            zip(self.grid_sizes(image_size), self.strides, strict=True)
        ):
            ys, xs = np.meshgrid(np.arange(gh) * stride, np.arange(gw) * stride, indexing="ij")
            shifts = np.stack([ys, xs, ys, xs], axis=-1).reshape(-1, 1, 4)
            out.append((shifts + self.base_anchors(level)[None]).reshape(-1, 4).astype(np.float32))
        return out

    def anchors(self, image_size: tuple[int, int]) -> np.ndarray:
        """All anchors, ``(sum_l H_l * W_l * A, 4)``, levels concatenated."""
        return np.concatenate(self.level_anchors(image_size), axis=0)


def _best_iou(boxes: np.ndarray, anchors: np.ndarray, chunk: int = 64) -> np.ndarray:
    """Each box's best IoU over ``anchors`` (numpy, chunked so 10^5 anchors fit in memory)."""
    area_a = (anchors[:, 2] - anchors[:, 0]) * (anchors[:, 3] - anchors[:, 1])
    best = np.zeros(len(boxes), np.float64)
    for start in range(0, len(boxes), chunk):
        b = boxes[start : start + chunk, None, :]
        h = np.minimum(b[..., 2], anchors[:, 2]) - np.maximum(b[..., 0], anchors[:, 0])
        w = np.minimum(b[..., 3], anchors[:, 3]) - np.maximum(b[..., 1], anchors[:, 1])
        inter = np.maximum(h, 0) * np.maximum(w, 0)
        area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
        best[start : start + chunk] = (inter / (area_a + area_b - inter)).max(axis=1)
    return best


def anchor_recall(boxes, anchors, iou: float = 0.5) -> float:
    """Share of ground-truth ``boxes (N, 4)`` whose best anchor has IoU >= ``iou``.

    The RPN can only learn a box some anchor overlaps at its positive threshold (Ren et al. 2015,
    §3.1.2; the low-quality matches aside): a recall far below 1 means the anchors miss the data.
    """
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    if not len(boxes):
        return float("nan")
    return float((_best_iou(boxes, np.asarray(anchors, np.float64)) >= iou).mean())


def box_size_stats(boxes) -> dict[str, float]:
    """Side ``sqrt(h * w)`` and aspect ``h / w`` quantiles of ``boxes (N, 4)``, in their pixels."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    h, w = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    side, aspect = np.sqrt(h * w), h / np.maximum(w, 1e-6)
    out = {"boxes": float(len(boxes))}
    for q in (5, 25, 50, 75, 95):
        out[f"side_p{q}"] = float(np.percentile(side, q)) if len(boxes) else float("nan")
    for q in (5, 95):
        out[f"aspect_p{q}"] = float(np.percentile(aspect, q)) if len(boxes) else float("nan")
    return out


def sizes_from_boxes(boxes, levels: int = 5, low_q: float = 5, high_q: float = 95) -> tuple:
    """``levels`` anchor sizes (px) spread geometrically over the boxes' side quantiles.

    The data-driven version of the author's lesion-sized anchors (COVID-CT-Mask-Net,
    ``train_segmentation.py``: sizes (2, 4, 8, 16, 32) at 512 px): the smallest covers the
    ``low_q``-th percentile side, the largest the ``high_q``-th.
    """
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    if not len(boxes):
        raise ValueError("no ground-truth boxes to derive anchor sizes from")
    side = np.sqrt((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))
    lo, hi = np.percentile(side, [low_q, high_q])
    lo = max(lo, 2.0)
    hi = max(hi, 2 * lo)
    return tuple(int(round(s)) for s in np.geomspace(lo, hi, levels))

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

"""Instance masks from semantic label maps (connected components), for instance segmentation.

``ct_lesions`` label maps hold 0 background, 1 ground-glass opacity, 2 consolidation. Paper 05
(SPEC §05) merges GGO and consolidation into one "lesion" class and drops lesions under 10x10 px
into the background; the two-class variant keeps GGO and consolidation apart. Instances are
8-connected components of each class's mask. "Under 10x10 px" is read as a bounding box shorter
or narrower than ``min_size``; ``min_size=0`` keeps every component. ``ignore_area`` drops
components of at most that many pixels, as the author's ``ignore_small`` (COVID-CT-Mask-Net,
``dataset_segmentation.py``: regionprops area > 100 kept).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

#: variant -> (class names, {label-map value: class index 1..K})
VARIANTS: dict[str, tuple[tuple[str, ...], dict[int, int]]] = {
    "lesion": (("lesion",), {1: 1, 2: 1}),
    "ggo_consolidation": (("ggo", "consolidation"), {1: 1, 2: 2}),
}


@dataclass(frozen=True)
class Instances:
    """``masks (N, H, W) bool``, ``classes (N,) int32`` in 1..K, ``boxes (N, 4) float32``
    ``[y1, x1, y2, x2]`` in pixels with exclusive ends (a 1-pixel instance is 1 px wide)."""

    masks: np.ndarray
    classes: np.ndarray
    boxes: np.ndarray

    def __len__(self) -> int:
        return len(self.classes)

    @property
    def union(self) -> np.ndarray:
        return self.masks.any(axis=0) if len(self) else np.zeros(self.masks.shape[1:], bool)


def class_names(variant: str) -> tuple[str, ...]:
    if variant not in VARIANTS:
        raise ValueError(f"unknown lesion variant {variant!r}; choose one of {sorted(VARIANTS)}")
    return VARIANTS[variant][0]


def boxes_of(masks: np.ndarray) -> np.ndarray:
    """Tight ``[y1, x1, y2, x2]`` boxes (exclusive ends) of ``(N, H, W)`` masks; empty -> zeros."""
    out = np.zeros((len(masks), 4), np.float32)
    for i, m in enumerate(masks):
        rows, cols = np.nonzero(m.any(1))[0], np.nonzero(m.any(0))[0]
        if len(rows):
            out[i] = [rows[0], cols[0], rows[-1] + 1, cols[-1] + 1]
    return out


def instances_from_label_map(
    label_map: np.ndarray, *, variant: str = "lesion", min_size: int = 10, ignore_area: int = 0
) -> Instances:
    """Connected-component instances of ``label_map`` (H, W), largest first."""
    class_names(variant)
    mapping = VARIANTS[variant][1]
    h, w = label_map.shape
    masks, classes = [], []
    for k in sorted(set(mapping.values())):
        values = [v for v, c in mapping.items() if c == k]
        components, n = ndimage.label(np.isin(label_map, values), structure=np.ones((3, 3)))
        for sl, index in zip(ndimage.find_objects(components), range(1, n + 1), strict=True):
            if sl[0].stop - sl[0].start < min_size or sl[1].stop - sl[1].start < min_size:
                continue  # merged into the background (paper 05, §2)
            mask = components == index
            if ignore_area and mask.sum() <= ignore_area:
                continue  # the author's ignore_small
            masks.append(mask)
            classes.append(k)
    if not masks:
        return Instances(
            np.zeros((0, h, w), bool), np.zeros(0, np.int32), np.zeros((0, 4), np.float32)
        )
    masks = np.stack(masks)
    order = np.argsort(-masks.sum(axis=(1, 2)), kind="stable")
    masks = masks[order]
    return Instances(masks, np.asarray(classes, np.int32)[order], boxes_of(masks))

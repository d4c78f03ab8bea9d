"""Lesion sizes against the model's anchors, printed and recorded before training (issue 19).

A user with other data sees an anchor mismatch before spending hours: the lesions' side / aspect
quantiles at model resolution and the anchor recall (share of lesions whose best anchor has
IoU >= 0.5) on the training and test slices.
"""

from __future__ import annotations

import numpy as np

from kerassev.models.detection.anchors import AnchorGenerator, anchor_recall, box_size_stats

from .data import Slice, letterbox_scale


def model_boxes(slices: list[Slice], size: int) -> np.ndarray:
    """Every lesion box ``[y1, x1, y2, x2]`` of ``slices`` in letterboxed model pixels."""
    parts = [s.instances.boxes * letterbox_scale(s.image.shape, size) for s in slices]
    return np.concatenate(parts).astype(np.float64) if parts else np.zeros((0, 4))


def anchor_report(slices: dict[str, list[Slice]], generator: AnchorGenerator, size: int) -> dict:
    """``{split: {size stats..., "anchor_recall@0.5": r}}`` plus the anchors used."""
    anchors = generator.anchors((size, size))
    out = {"anchor_sizes": [list(map(float, s)) for s in generator.sizes],
           "aspect_ratios": list(generator.aspect_ratios), "anchors": len(anchors)}  # fmt: skip
    for split, items in slices.items():
        boxes = model_boxes(items, size)
        out[split] = {**box_size_stats(boxes), "anchor_recall@0.5": anchor_recall(boxes, anchors)}
    return out


def format_report(report: dict, size: int) -> str:
    lines = [f"lesion boxes at {size} px vs {report['anchors']} anchors "
             f"(sizes {report['anchor_sizes'][0]}..., ratios {report['aspect_ratios']}):"]  # fmt: skip
    for split in ("train", "test"):
        if split in report:
            r = report[split]
            lines.append(
                f"  {split}: {int(r['boxes'])} boxes, side p5/p25/p50/p75/p95 = "
                + "/".join(f"{r[f'side_p{q}']:.1f}" for q in (5, 25, 50, 75, 95))
                + f" px, aspect h/w p5-p95 {r['aspect_p5']:.2f}-{r['aspect_p95']:.2f}, "
                f"anchor recall@0.5 {r['anchor_recall@0.5']:.3f}"
            )
    return "\n".join(lines)

"""Predicted vs true lesion masks on the best and worst test slices (by union-mask Dice)."""

from __future__ import annotations

# no matplotlib.use("Agg") here: importing the recipe must not take a notebook's inline backend away
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd


def best_and_worst(per_slice: pd.DataFrame, k: int) -> tuple[list[int], list[int]]:
    order = per_slice.sort_values(["dice", "slice_id"], ascending=[False, True])
    k = min(k, len(order) // 2 if len(order) > 1 else 1)
    return list(order.index[:k]), list(order.index[::-1][:k])


def masks_figure(slices, preds, per_slice: pd.DataFrame, *, k: int, threshold: float):
    """Two rows (best, worst): slice with true (green) and predicted (red) lesion outlines."""
    best, worst = best_and_worst(per_slice, k)
    fig, axes = plt.subplots(2, len(best), figsize=(3.0 * len(best), 6.4), squeeze=False)
    for row, (label, picks) in enumerate((("best", best), ("worst", worst))):
        for col, i in enumerate(picks):
            ax = axes[row, col]
            s, p = slices[i], preds[i]
            keep = p.scores >= threshold
            pred = p.masks[keep].any(0) if keep.any() else np.zeros(s.image.shape, bool)
            ax.imshow(s.image, cmap="gray")
            if s.instances.union.any():
                ax.contour(s.instances.union, levels=[0.5], colors="lime", linewidths=0.8)
            if pred.any():
                ax.contour(pred, levels=[0.5], colors="red", linewidths=0.8)
            r = per_slice.loc[i]
            ax.set_title(
                f"{label}: slice {s.slice_id}\nDice {r.dice:.2f}, IoU {r.iou:.2f}", fontsize=8
            )
            ax.axis("off")
    fig.tight_layout()
    return fig

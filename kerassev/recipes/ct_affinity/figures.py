"""X2 heat maps (paper 05 Fig. 3): the A x C matrix X2 = W1^T X1 of chosen test images.

Element (i, j) is the strength of the i-th affinity for feature j across the B lesion-mask
vectors. One panel per image; both figures (epoch 1, last epoch) share one symmetric colour scale
so they can be compared.
"""

from __future__ import annotations

# no matplotlib.use("Agg") here: importing the recipe must not take a notebook's inline backend away
import matplotlib.pyplot as plt
import numpy as np


def shared_scale(*arrays: np.ndarray) -> float:
    """Symmetric colour limit: the 99th percentile of |X2| over every array (robust to spikes)."""
    values = np.concatenate([np.abs(a).ravel() for a in arrays])
    return float(np.percentile(values, 99)) or 1.0


def x2_figure(x2: np.ndarray, titles: list[str], *, vmax: float, heading: str):
    """``x2 (K, A, C)``: K panels, affinities down, features across, diverging colours."""
    k = len(x2)
    # The colour bar has its own column: save_figure's caption margin would push it over a panel.
    fig, axes = plt.subplots(
        1, k + 1, figsize=(3.2 * k + 0.6, 3.4), gridspec_kw={"width_ratios": [1] * k + [0.06]}
    )
    for ax, matrix, title in zip(axes[:k], x2, titles, strict=True):
        im = ax.imshow(matrix, cmap="RdBu_r", vmin=-vmax, vmax=vmax, aspect="auto",
                       interpolation="nearest")  # fmt: skip
        ax.set_title(title, fontsize=8)
        ax.set_xlabel(f"feature j (C = {matrix.shape[1]})", fontsize=7)
        if ax is axes[0]:  # one y label: the panels share their axes
            ax.set_ylabel(f"affinity i (A = {matrix.shape[0]})", fontsize=7)
        ax.tick_params(labelsize=6)
    fig.colorbar(im, cax=axes[k])
    axes[k].tick_params(labelsize=6)
    fig.suptitle(heading, fontsize=9)
    return fig

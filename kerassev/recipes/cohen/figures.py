"""Figures of paper 03 (Cohen et al. 2020), each saved with a caption naming data and configuration.

* Fig. 2 -- :func:`kerassev.plots.predicted_vs_true` on the held-out half of one split.
* Fig. 3 -- :func:`tsne_embedding` + :func:`plot_tsne`: t-SNE (sklearn) of a feature set for all
  frontal images, coloured by the predicted geographic extent, marker by survival (Y / N / unknown).
* Fig. 4 -- :func:`saliency_examples`: input-gradient saliency (:mod:`kerassev.explain.saliency`)
  of the composed model image -> frozen features -> linear regression, for well- and
  badly-predicted held-out images.

:func:`kerassev.plots.save_figure` saves each with its caption; :func:`.reproduce.write_figures`
draws all three for a reproduction run.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

SURVIVAL_MARKERS = {"Y": ("o", "survived (Y)"), "N": ("X", "died (N)"), "unknown": (".", "unknown")}


# ============================================================================ Fig. 2
# ============================================================================ Fig. 3
def tsne_embedding(
    features: np.ndarray, *, perplexity: float = 30.0, seed: int = 0, pca_dims: int = 50
) -> np.ndarray:
    """2-D t-SNE of ``features`` (n, d); perplexity is capped below n (sklearn's requirement).

    Features are standardised per dimension (constant dimensions left at 0) so no single
    feature's scale dominates the distances; more than ``pca_dims`` dimensions are first reduced
    with PCA (the usual t-SNE practice, and what keeps 2048-d features fast).
    """
    from threadpoolctl import threadpool_limits  # a scikit-learn dependency

    # One OpenMP thread: on two busy cores (CI's two pytest workers, TensorFlow) a second
    # thread spin-waits at every barrier: 30 s instead of 1.6 s for 558 points (issue 23).
    with threadpool_limits(limits=1):
        return _tsne(features, perplexity=perplexity, seed=seed, pca_dims=pca_dims)


def _tsne(features, *, perplexity: float, seed: int, pca_dims: int) -> np.ndarray:
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    x = np.asarray(features, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    if len(x) < 3:
        raise ValueError(f"t-SNE needs at least 3 points, got {len(x)}")
    std = x.std(axis=0)
    x = (x - x.mean(axis=0)) / np.where(std > 0, std, 1.0)
    if x.shape[1] > pca_dims and len(x) > pca_dims:
        x = PCA(pca_dims, random_state=seed).fit_transform(x)
    perplexity = float(min(perplexity, (len(x) - 1) / 3))
    tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed)
    return tsne.fit_transform(x)


def survival_category(values: Sequence) -> np.ndarray:
    """Metadata ``survival`` -> "Y", "N" or "unknown"."""
    out = []
    for v in values:
        s = "" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v).strip().upper()
        out.append(s if s in ("Y", "N") else "unknown")
    return np.asarray(out, dtype=object)


def plot_tsne(
    embedding: np.ndarray,
    colour: np.ndarray,
    survival: Sequence,
    *,
    colour_label: str = "predicted geographic extent",
    title: str | None = None,
    vmin: float | None = 0.0,
    vmax: float | None = 8.0,
):
    """Scatter of a 2-D embedding: colour = ``colour`` (e.g. predicted extent), marker = survival."""
    emb = np.asarray(embedding, dtype=float)
    colour = np.asarray(colour, dtype=float)
    cats = survival_category(survival)
    if not (len(emb) == len(colour) == len(cats)):
        raise ValueError(
            f"lengths differ: embedding {len(emb)}, colour {len(colour)}, survival {len(cats)}"
        )
    fig, ax = plt.subplots(figsize=(6.4, 5.4))
    sc = None
    for cat in ("unknown", "Y", "N"):  # draw the rare categories last, on top
        sel = cats == cat
        if not sel.any():
            continue
        marker, label = SURVIVAL_MARKERS[cat]
        size = 14 if cat == "unknown" else 46
        sc = ax.scatter(
            emb[sel, 0], emb[sel, 1], c=colour[sel], cmap="viridis", vmin=vmin, vmax=vmax,
            marker=marker, s=size, edgecolors="black" if cat != "unknown" else "none",
            linewidths=0.4, label=f"{label} ({int(sel.sum())})",
        )  # fmt: skip
    if sc is not None:
        fig.colorbar(sc, ax=ax, label=colour_label)
    ax.legend(title="survival", fontsize=8, loc="best")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlabel("t-SNE 1")
    ax.set_ylabel("t-SNE 2")
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


# ============================================================================ Fig. 4
def pick_examples(predictions: pd.DataFrame, n: int = 2) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(good, bad)``: the ``n`` held-out predictions with the smallest and largest |error|."""
    df = predictions.assign(abs_error=(predictions["y_pred"] - predictions["y_true"]).abs())
    df = df.sort_values("abs_error", kind="stable")
    return df.head(n), df.tail(n).iloc[::-1]


def saliency_examples(model_fn, images01: np.ndarray, titles: Sequence[str], *, blur: int = 5):
    """Saliency maps of ``model_fn`` on ``[0, 1]`` images ``(B, S, S)`` and their figure.

    Returns ``(maps, figure)``. ``model_fn`` maps ``(B, S, S, 1)`` images in [0, 1] to ``(B,)``
    predictions (see :func:`.encoders.composed_model`).
    """
    from kerassev.explain.saliency import saliency, saliency_grid

    x = np.asarray(images01, dtype=np.float32)[..., None]
    maps = saliency(model_fn, x, blur=blur)
    return maps, saliency_grid(x, maps, titles)


# ============================================================================ saving

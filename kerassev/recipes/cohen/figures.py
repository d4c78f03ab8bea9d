"""Figures of paper 03 (Cohen et al. 2020), each saved with a caption naming data and configuration.

* Fig. 2 -- :func:`plot_pred_vs_true`: predicted vs true score on the held-out half of one split,
  grey dashed unity line, red lines from each point to the unity line (the error).
* Fig. 3 -- :func:`tsne_embedding` + :func:`plot_tsne`: t-SNE (sklearn) of a feature set for all
  frontal images, coloured by the predicted geographic extent, marker by survival (Y / N / unknown).
* Fig. 4 -- :func:`saliency_examples`: input-gradient saliency (:mod:`kerassev.explain.saliency`)
  of the composed model image -> frozen features -> linear regression, for well- and
  badly-predicted held-out images.

:func:`save_figure` saves one with its caption; :func:`.reproduce.write_figures` draws all three
for a reproduction run.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

SURVIVAL_MARKERS = {"Y": ("o", "survived (Y)"), "N": ("X", "died (N)"), "unknown": (".", "unknown")}


# ============================================================================ Fig. 2
def plot_pred_vs_true(
    panels: Mapping[str, pd.DataFrame],
    *,
    ranges: Mapping[str, tuple[float, float]] | None = None,
    title: str | None = None,
):
    """One panel per target: ``panels[title]`` has columns ``y_true`` and ``y_pred``.

    Grey dashed line = perfect prediction; red segments = error of each prediction. The panel
    title gives n, MAE and R^2 of those points.
    """
    from kerassev.stats.metrics import regression_metrics

    ranges = dict(ranges or {})
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 4.4), squeeze=False)
    for ax, (name, df) in zip(axes[0], panels.items(), strict=True):
        t = df["y_true"].to_numpy(float)
        p = df["y_pred"].to_numpy(float)
        lo, hi = ranges.get(name, (min(t.min(), p.min()), max(t.max(), p.max())))
        ax.plot([lo, hi], [lo, hi], ls="--", color="grey", lw=1, label="perfect prediction")
        ax.vlines(
            t, np.minimum(t, p), np.maximum(t, p), color="red", lw=1, alpha=0.8, label="error"
        )
        ax.scatter(t, p, s=18, color="black", zorder=3)
        m = regression_metrics(t, p)
        ax.set_title(f"{name}\nn={len(t)}, MAE={m['mae']:.2f}, R²={m['r2']:.2f}", fontsize=10)
        ax.set_xlabel("ground truth (raters' mean)")
        ax.set_ylabel("prediction")
        pad = 0.05 * (hi - lo)
        ax.set_xlim(lo - pad, hi + pad)
        ax.set_ylim(min(lo, p.min()) - pad, max(hi, p.max()) + pad)
        ax.set_aspect("equal", adjustable="box")
        ax.legend(loc="upper left", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


# ============================================================================ Fig. 3
def tsne_embedding(
    features: np.ndarray, *, perplexity: float = 30.0, seed: int = 0, pca_dims: int = 50
) -> np.ndarray:
    """2-D t-SNE of ``features`` (n, d); perplexity is capped below n (sklearn's requirement).

    Features are standardised per dimension (constant dimensions left at 0) so no single
    feature's scale dominates the distances; more than ``pca_dims`` dimensions are first reduced
    with PCA (the usual t-SNE practice, and what keeps 2048-d features fast).
    """
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
def save_figure(fig, path: str | Path, caption: str, *, dpi: int = 120) -> Path:
    """Save ``fig`` as PNG with ``caption`` printed under it and in ``<path>.txt``; refuses to
    overwrite."""
    path = Path(path)
    for p in (path, path.with_suffix(".txt")):
        if p.exists():
            raise FileExistsError(f"{p} already exists; refusing to overwrite a result")
    wrapped = "\n".join(textwrap.wrap(caption, width=int(fig.get_figwidth() * 14)))
    n_lines = wrapped.count("\n") + 1
    height = fig.get_figheight()
    extra = 0.17 * n_lines + 0.1
    fig.set_figheight(height + extra)
    fig.subplots_adjust(
        bottom=extra / (height + extra) + fig.subplotpars.bottom * height / (height + extra)
    )
    fig.text(0.01, 0.005, wrapped, ha="left", va="bottom", fontsize=7.5, wrap=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    path.with_suffix(".txt").write_text(caption + "\n", encoding="utf-8")
    return path

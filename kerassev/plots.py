"""Matplotlib helpers shared by the notebooks and recipes: image grids (with mask outlines),
label histograms, predicted-vs-true panels, and :func:`save_figure`, the one way a result figure
is saved (with its data/configuration caption, never over an existing file)."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd


def load_gray(path: str | Path, max_side: int = 256) -> np.ndarray:
    """Image file (PNG/JPEG/GIF first frame, or DICOM) as float32 (H, W) in [0, 1], thumbnailed."""
    path = Path(path)
    if path.suffix.lower() in {".dcm", ".dicom"}:
        from PIL import Image

        from kerassev.io.dicom import read_dicom

        pixels = read_dicom(path).pixels
        im = Image.fromarray((np.clip(pixels, 0, 1) * 255).astype(np.uint8))
    else:
        from PIL import Image

        im = Image.open(path)
        im.seek(0)
        im = im.convert("L")
    im.thumbnail((max_side, max_side))
    return np.asarray(im, dtype=np.float32) / 255.0


def sample_grid(
    images: Sequence[np.ndarray | str | Path],
    *,
    titles: Sequence[str] | None = None,
    masks: Sequence[np.ndarray | None] | None = None,
    ncols: int = 4,
    size: float = 2.5,
):
    """Grid of grayscale images (arrays or file paths), each mask drawn as a red outline."""
    import matplotlib.pyplot as plt

    n = len(images)
    nrows = max(1, -(-n // ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= n:
            continue
        img = images[i]
        img = load_gray(img) if isinstance(img, str | Path) else np.asarray(img, dtype=np.float32)
        ax.imshow(img, cmap="gray", vmin=0.0, vmax=1.0)
        if masks is not None and masks[i] is not None and np.any(masks[i]):
            ax.contour(np.asarray(masks[i], dtype=float), levels=[0.5], colors="red", linewidths=1)
        if titles is not None:
            ax.set_title(str(titles[i]), fontsize=8)
    fig.tight_layout()
    return fig


def label_histograms(
    table: pd.DataFrame, columns: Sequence[str], *, bins: int = 20, size: float = 3.0
):
    """One histogram per label column (bar chart of counts for text columns); NaN ignored."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(columns), figsize=(size * len(columns), size), squeeze=False)
    for ax, col in zip(axes.flat, columns, strict=True):
        values = table[col].dropna()
        if pd.api.types.is_numeric_dtype(values):
            ax.hist(values, bins=bins, color="steelblue", edgecolor="white")
        else:
            counts = values.astype(str).value_counts()
            ax.bar(counts.index, counts.to_numpy(), color="steelblue")
            ax.tick_params(axis="x", rotation=45)
        ax.set_title(f"{col} (n={len(values)})", fontsize=9)
        ax.set_ylabel("count")
    fig.tight_layout()
    return fig


def predicted_vs_true(
    panels: Mapping[str, pd.DataFrame],
    *,
    ranges: Mapping[str, tuple[float, float]] | None = None,
    title: str | None = None,
    xlabel: str = "ground truth",
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
        ax.set_xlabel(xlabel)
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

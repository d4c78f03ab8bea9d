"""Small matplotlib helpers the notebooks share: image grids (with mask outlines) and
label histograms. Figures are returned, never shown or saved here."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

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

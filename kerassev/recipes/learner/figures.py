"""Fig. 1 of paper 02: cosine distance between scan embeddings against |label difference|."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy import stats


def embedding_distances(emb: np.ndarray, hs: np.ndarray, idx: np.ndarray) -> pd.DataFrame:
    """Every unordered pair of clips in ``idx``: cosine distance and |HS difference|."""
    u = emb[idx] / np.maximum(np.linalg.norm(emb[idx], axis=1, keepdims=True), 1e-12)
    i, j = np.triu_indices(len(idx), k=1)
    return pd.DataFrame(
        {
            "cosine_distance": 1.0 - np.sum(u[i] * u[j], axis=1),
            "abs_label_diff": np.abs(hs[idx][i] - hs[idx][j]),
        }
    )


def distance_summary(distances: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Per comparator: spread (std, IQR) of the distances and their Spearman rho with |diff|."""
    rows = []
    for name, df in distances.items():
        d = df["cosine_distance"].to_numpy()
        rho = stats.spearmanr(d, df["abs_label_diff"]).statistic if d.std() > 0 else np.nan
        q1, q3 = np.percentile(d, [25, 75])
        rows.append(
            {
                "comparator": name,
                "pairs": len(d),
                "mean distance": float(d.mean()),
                "std distance": float(d.std()),
                "IQR distance": float(q3 - q1),
                "Spearman rho (distance, |label diff|)": rho,
            }
        )
    return pd.DataFrame(rows)


def fig1(distances: dict[str, pd.DataFrame], hs_name: str, n_bins: int = 6):
    """One panel per comparator: box plots of cosine distance in bins of |label difference|."""
    fig, axes = plt.subplots(
        1, len(distances), figsize=(4.5 * len(distances), 3.6), sharey=True, squeeze=False
    )
    all_diff = np.concatenate([df["abs_label_diff"].to_numpy() for df in distances.values()])
    edges = np.unique(np.quantile(all_diff, np.linspace(0, 1, n_bins + 1)))
    for ax, (name, df) in zip(axes[0], distances.items(), strict=True):
        b = np.clip(np.digitize(df["abs_label_diff"], edges[1:-1]), 0, len(edges) - 2)
        groups = [df["cosine_distance"].to_numpy()[b == k] for k in range(len(edges) - 1)]
        ax.boxplot(groups, showfliers=False)
        ax.set_xticks(
            range(1, len(edges)),
            [f"{edges[k]:.0f}-{edges[k + 1]:.0f}" for k in range(len(edges) - 1)],
            rotation=45,
            fontsize=7,
        )
        ax.set_title(name, fontsize=9)
        ax.set_xlabel(f"|{hs_name} difference|")
    axes[0][0].set_ylabel("cosine distance between embeddings")
    fig.tight_layout()
    return fig

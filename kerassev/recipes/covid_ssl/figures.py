"""Paper 04's figures: example views per method, SSL curves, the low-shot curve (Fig. 3) and the
confusion matrix of the best model (Fig. 4)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import tensorflow as tf

from kerassev.models.ssl import jigsaw_tiles, random_rotation
from kerassev.transforms.augment import make_augmenter

from .config import LABELS


def view_pairs(images: np.ndarray, methods, *, policy: str, view_size: int, seed: int = 0):
    """One row per method: an image and its two views (PIRL: view 2 after the pretext task)."""
    aug = make_augmenter(policy, image_size=view_size, seed=seed, channels=1)
    x = tf.constant(images[:1, :, :, None])
    fig, axes = plt.subplots(len(methods), 3, figsize=(6, 2 * len(methods)), squeeze=False)
    for row, method in zip(axes, methods, strict=True):
        v1, v2 = aug(x, training=True), aug(x, training=True)
        if method == "pirl_jigsaw":
            t = jigsaw_tiles(v2, 3, seed=seed)[0]
            k = t.shape[1]
            v2 = tf.reshape(
                tf.transpose(tf.reshape(t, (3, 3, k, k, 1)), (0, 2, 1, 3, 4)), (1, 3 * k, 3 * k, 1)
            )
        elif method == "pirl_rotation":
            v2 = random_rotation(v2, seed=seed)
        for ax, img, title in zip(row, (x, v1, v2), ("image", "view 1", "view 2"), strict=True):
            ax.imshow(np.asarray(img)[0, :, :, 0], cmap="gray", vmin=0, vmax=1)
            ax.set_title(f"{LABELS[method]}: {title}", fontsize=8)
            ax.axis("off")
    fig.tight_layout()
    return fig


def ssl_curves(logs: dict[str, pd.DataFrame]):
    """Loss, collapse monitor (``z_std_ratio``: about 1 healthy, 0 collapsed) and, where logged,
    the online k-NN accuracy on labelled training images, per method."""
    knn = any("knn_acc" in log for log in logs.values())
    fig, axes = plt.subplots(1, 3 if knn else 2, figsize=(15 if knn else 10, 3.5))
    a, b = axes[:2]
    for method, log in logs.items():
        if len(log):
            a.plot(log["global_epoch"], log["loss"], marker="o", label=LABELS[method])
            b.plot(log["global_epoch"], log["z_std_ratio"], marker="o", label=LABELS[method])
            if knn and "knn_acc" in log:
                axes[2].plot(log["global_epoch"], log["knn_acc"], marker="o", label=LABELS[method])
    a.set(xlabel="epoch", ylabel="SSL loss (each method its own scale)", title="SSL loss")
    b.set(xlabel="epoch", ylabel="z_std * sqrt(d)", title="collapse monitor", ylim=(0, None))
    if knn:
        axes[2].set(
            xlabel="epoch", ylabel="k-NN accuracy", title="online k-NN (k=20, training images)"
        )
    a.legend(fontsize=7)
    fig.tight_layout()
    return fig


def low_shot_curve(table: pd.DataFrame):
    """Fig. 3: HM and Acc against the fraction of training images used."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    for ax, metric in zip(axes, ("HM", "Acc"), strict=True):
        for method, part in table.groupby("method", sort=False):
            part = part.sort_values("fraction")
            ax.plot(100 * part["fraction"], part[metric], marker="o", label=method)
        ax.set(
            xscale="log",
            xlabel="% of training images",
            ylabel=metric,
            title=f"({'ab'[metric == 'Acc']}) {metric}",
        )
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def confusion_figure(matrix: np.ndarray, classes, title: str):
    fig, ax = plt.subplots(figsize=(3.5, 3.2))
    ax.imshow(matrix, cmap="Blues")
    for (i, j), v in np.ndenumerate(matrix):
        ax.text(j, i, str(v), ha="center", va="center")
    ax.set_xticks(range(len(classes)), classes)
    ax.set_yticks(range(len(classes)), classes)
    ax.set(xlabel="predicted", ylabel="true", title=title)
    fig.tight_layout()
    return fig

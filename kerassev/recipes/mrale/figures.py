"""Paper 01's figures. They are saved with their data/configuration caption by
:func:`kerassev.plots.save_figure`; the predicted-vs-true panels are :func:`kerassev.plots.predicted_vs_true`."""

from __future__ import annotations

import textwrap

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd


def ssl_curves(logs: dict[str, pd.DataFrame]):
    """Fig. 3: SimSiam loss per epoch, hot (ImageNet) vs cold (scratch) start, plus the
    collapse monitor (per-dimension std of the normalised projection x sqrt(d); ~1 healthy)."""
    fig, (ax_loss, ax_std) = plt.subplots(1, 2, figsize=(10, 3.8))
    for init, log in logs.items():
        if log.empty:
            continue
        label = {"imagenet": "hot start (ImageNet)", "scratch": "cold start (scratch)"}.get(
            init, init
        )
        ax_loss.plot(log["global_epoch"], log["loss"], marker="o", label=label)
        if "z_std_ratio" in log:
            ax_std.plot(log["global_epoch"], log["z_std_ratio"], marker="o", label=label)
        boundary = (log["stage"] == "stage_a").sum()
        ax_loss.axvline(boundary + 0.5, color="grey", lw=0.8, ls=":")
    ax_loss.axhline(-1, color="k", lw=0.6)
    ax_loss.set(
        xlabel="epoch (stage A | stage B)", ylabel="SimSiam loss (eq. 3)", ylim=(-1.05, 0.05)
    )
    # Fixed scale: ~1 is healthy, 0 is collapsed; autoscaling would magnify noise near 1.
    ax_std.set(xlabel="epoch", ylabel="z std x sqrt(d)  (0 = collapsed)", ylim=(0, 1.1))
    for ax in (ax_loss, ax_std):
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def gradcam_mass_plot(mass: pd.DataFrame):
    """Share of Grad-CAM mass inside the phantom opacity mask, regressor vs random-init control."""
    fig, ax = plt.subplots(figsize=(5, 3.5))
    groups = list(mass.groupby("comparator"))
    data, labels = [], []
    for name, sub in groups:
        data += [sub["mass"].dropna(), sub["mass_control"].dropna()]
        labels += [f"{name}\ntrained", f"{name}\nrandom init"]
    ax.boxplot(data, tick_labels=labels)
    ax.axhline(np.nanmean(mass["mask_area"]), color="grey", ls=":", label="mask area (chance)")
    ax.set(ylabel="Grad-CAM mass inside opacity mask")
    ax.tick_params(axis="x", labelsize=7)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def augmentation_pairs(images: np.ndarray, policy: str, caption: str, *, seed: int = 0):
    """Fig. 2: two augmented views of the same images (the two 'identical image sets')."""
    import tensorflow as tf

    from kerassev.transforms.augment import make_augmenter, two_views

    size = images.shape[1]
    augment = two_views(make_augmenter(policy, image_size=size, seed=seed, channels=1))
    view1, view2 = (np.asarray(v)[..., 0] for v in augment(tf.constant(images[..., None])))
    fig, axes = plt.subplots(3, len(images), figsize=(2.2 * len(images), 6.6), squeeze=False)
    for row, (name, batch) in enumerate(
        (("original", images), ("view 1", view1), ("view 2", view2))
    ):
        for col, img in enumerate(batch):
            axes[row][col].imshow(img, cmap="gray", vmin=0, vmax=1)
            axes[row][col].set_xticks([])
            axes[row][col].set_yticks([])
        axes[row][0].set_ylabel(name)
    text = f"'{policy}' policy: flip, colour jitter, colour drop, no crop. {caption}"
    fig.suptitle(textwrap.fill(text, 110), fontsize=8)
    fig.tight_layout()
    return fig

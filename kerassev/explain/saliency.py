"""Input-gradient saliency blurred with a 5x5 Gaussian (paper 03, section 2.6 and Fig. 4).

The paper computes "the gradient of the output prediction with respect to the input image" and
blurs it "using a 5x5 Gaussian kernel". Choices the text leaves open, made here (all options):

- ``magnitude="abs"``: the absolute gradient is shown (how much a pixel changes the prediction,
  either way); for multi-channel inputs the channel maximum is taken;
- ``sigma=None``: OpenCV's rule for a k-tap kernel, ``0.3 * ((k - 1) / 2 - 1) + 0.8`` (= 1.1 for
  5x5), i.e. ``cv2.GaussianBlur(g, (5, 5), 0)``, as ``scipy.ndimage.gaussian_filter`` with
  ``radius=2``; borders are reflected;
- each map is divided by its maximum, so it lies in [0, 1] (all-zero maps stay zero).

The authors' script (TorchXRayVision ``scripts/covid-severity/predict_severity.py``) differs from the
text: it blurs ``grad**2`` with ``skimage.filters.gaussian(sigma=5, truncate=3.5)``; approximate it
with ``magnitude="square", blur=37, sigma=5.0``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import tensorflow as tf
from scipy import ndimage


def opencv_sigma(size: int = 5) -> float:
    """OpenCV's ``getGaussianKernel`` sigma for a ``size``-tap kernel (1.1 for 5 taps)."""
    if size < 1 or size % 2 == 0:
        raise ValueError(f"blur kernel size must be a positive odd integer, got {size}")
    return 0.3 * ((size - 1) * 0.5 - 1) + 0.8


def gaussian_blur(maps: np.ndarray, size: int = 5, sigma: float | None = None) -> np.ndarray:
    """Each ``(H, W)`` map blurred with a normalised ``size x size`` Gaussian, borders reflected:
    :func:`scipy.ndimage.gaussian_filter` with its ``radius`` fixed to ``(size - 1) / 2``."""
    default = opencv_sigma(size)  # also validates size
    sigma = default if sigma is None else float(sigma)
    radius = (size - 1) // 2
    return np.stack(
        [ndimage.gaussian_filter(m, sigma, mode="reflect", radius=radius) for m in maps]
    )


def input_gradients(model_fn: Callable, images) -> np.ndarray:
    """d prediction / d input for each image, same shape as ``images``.

    ``model_fn`` maps a batch to ``(B,)`` or ``(B, 1)`` predictions; each prediction must depend
    only on its own image (true for a Keras model in inference mode).
    """
    x = tf.convert_to_tensor(np.asarray(images, dtype=np.float32))
    with tf.GradientTape() as tape:
        tape.watch(x)
        pred = model_fn(x)
        if isinstance(pred, dict):
            raise ValueError("model_fn must return one prediction per image, not a dict")
        pred = tf.reshape(tf.convert_to_tensor(pred), (tf.shape(x)[0], -1))
        if pred.shape[-1] != 1:
            raise ValueError(f"model_fn must return (B,) or (B, 1) predictions, got {pred.shape}")
        total = tf.reduce_sum(pred)  # sum over independent images -> per-image gradients
    grad = tape.gradient(total, x)
    if grad is None:
        raise ValueError("model_fn output does not depend on its input (no gradient)")
    return grad.numpy()


def saliency(
    model_fn: Callable,
    images,
    *,
    blur: int = 5,
    sigma: float | None = None,
    magnitude: str = "abs",
) -> np.ndarray:
    """Paper 03 Fig. 4 saliency maps, shape ``(B, H, W)`` in [0, 1].

    ``images``: ``(B, H, W)`` or ``(B, H, W, C)``, passed to ``model_fn`` unchanged (e.g. XRV inputs
    in [-1024, 1024]); e.g. ``lambda x: xrv(x, training=False)["logits"][:, 16]`` for lung opacity, or
    a regression on XRV features composed with the network. Map = per-image-max-normalised Gaussian blur (``blur`` x ``blur``; 0 or 1 =
    none) of ``|d prediction / d pixel|`` (``magnitude="square"``: its square), channel max.
    """
    if magnitude not in ("abs", "square"):
        raise ValueError(f"magnitude must be 'abs' or 'square', got {magnitude!r}")
    grad = np.abs(input_gradients(model_fn, images))
    if magnitude == "square":
        grad = grad**2
    if grad.ndim == 4:
        grad = grad.max(axis=-1)
    elif grad.ndim != 3:
        raise ValueError(f"images must be (B, H, W) or (B, H, W, C), got shape {grad.shape}")
    grad = grad.astype(np.float64)
    if blur and blur > 1:
        grad = gaussian_blur(grad, blur, sigma)
    peak = grad.reshape(len(grad), -1).max(axis=1)
    peak = np.where(peak > 0, peak, 1.0)
    return (grad / peak[:, None, None]).astype(np.float32)


def saliency_grid(
    images,
    maps,
    titles: Sequence[str] | None = None,
    *,
    alpha: float = 0.5,
    cmap: str = "jet",
):
    """Figure with one column per image: the image (top) and the saliency overlaid (bottom)."""
    import matplotlib.pyplot as plt

    images = np.asarray(images)
    maps = np.asarray(maps)
    if images.ndim == 4:
        images = images[..., 0]
    if len(images) != len(maps):
        raise ValueError(f"{len(images)} images but {len(maps)} saliency maps")
    if titles is not None and len(titles) != len(images):
        raise ValueError(f"{len(images)} images but {len(titles)} titles")
    n = len(images)
    fig, axes = plt.subplots(2, n, figsize=(2.6 * n, 5.4), squeeze=False)
    for i in range(n):
        axes[0, i].imshow(images[i], cmap="gray")
        axes[1, i].imshow(images[i], cmap="gray")
        axes[1, i].imshow(maps[i], cmap=cmap, alpha=alpha, vmin=0.0, vmax=1.0)
        if titles is not None:
            axes[0, i].set_title(str(titles[i]), fontsize=9)
        for ax in axes[:, i]:
            ax.set_axis_off()
    fig.tight_layout()
    return fig

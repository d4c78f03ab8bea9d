"""Resizing to a square: centre crop to a square (or pad to one), then resize; or a plain
resize that stretches (``"stretch"``, a literal "resized to 224x224").

All functions take ``(H, W, C)`` float tensors (or arrays) with possibly unknown static shape and
work eagerly and inside ``tf.data`` / ``tf.function`` graphs.
"""

from __future__ import annotations

import tensorflow as tf

RESIZE_MODES = ("crop", "pad", "stretch")


def center_crop_square(image: tf.Tensor) -> tf.Tensor:
    """Largest centred square of an ``(H, W, C)`` image.

    Offsets follow TorchXRayVision's ``XRayCenterCrop.crop_center``
    (``start = dim // 2 - side // 2``), so :func:`kerassev.transforms.preprocess.xrv_preprocess`
    crops exactly the pixels TorchXRayVision crops.
    """
    image = tf.convert_to_tensor(image)
    shape = tf.shape(image)
    h, w = shape[0], shape[1]
    side = tf.minimum(h, w)
    top = h // 2 - side // 2
    left = w // 2 - side // 2
    return image[top : top + side, left : left + side, :]


def resize_keep_aspect(
    image: tf.Tensor,
    size: int,
    *,
    mode: str = "crop",
    antialias: bool = True,
    spacing: tuple[float, float] | None = None,
) -> tf.Tensor:
    """Resize ``(H, W, C)`` to ``(size, size, C)`` without distorting the aspect ratio.

    ``mode="crop"``: scale the shorter side to ``size`` and centre-crop the longer one. Implemented as
    centre-crop-to-square then resize, which selects the same pixels and resizes fewer of them.
    ``mode="pad"``: scale the longer side to ``size`` and zero-pad the shorter one, centred
    (``tf.image.resize_with_pad``). ``mode="stretch"``: resize both sides to ``size``, distorting
    a non-square image. Bilinear; ``antialias`` avoids aliasing when downsampling
    large radiographs (1024+ px -> 224). ``spacing``: the (row, column) pixel size (e.g. mm) of
    an image with non-square pixels (a NIfTI slice); "crop" and "pad" then keep the aspect
    ratio of the physical extent, not of the pixel grid.
    """
    if mode not in RESIZE_MODES:
        raise ValueError(f"resize mode must be one of {RESIZE_MODES}, got {mode!r}")
    image = tf.convert_to_tensor(image)
    if not image.dtype.is_floating:
        raise TypeError(f"resize_keep_aspect expects a float image, got {image.dtype}")
    if spacing is not None and mode != "stretch":
        out = _resize_physical(image, size, spacing, mode=mode, antialias=antialias)
    elif mode == "crop":
        out = tf.image.resize(
            center_crop_square(image), (size, size), method="bilinear", antialias=antialias
        )
    elif mode == "stretch":
        out = tf.image.resize(image, (size, size), method="bilinear", antialias=antialias)
    else:
        out = tf.image.resize_with_pad(image, size, size, method="bilinear", antialias=antialias)
    out = tf.cast(out, image.dtype)
    return tf.ensure_shape(out, (size, size, image.shape[-1]))


def _resize_physical(image, size: int, spacing, *, mode: str, antialias: bool) -> tf.Tensor:
    """Scale the physical extent (pixels x spacing) so its longer ("pad") or shorter ("crop")
    side is ``size``, then centre-pad / centre-crop to ``(size, size)``."""
    extent = tf.cast(tf.shape(image)[:2], tf.float32) * tf.constant(spacing, tf.float32)
    side = tf.reduce_max(extent) if mode == "pad" else tf.reduce_min(extent)
    target = tf.maximum(tf.cast(tf.round(extent / side * size), tf.int32), 1)
    out = tf.image.resize(image, target, method="bilinear", antialias=antialias)
    return tf.image.resize_with_crop_or_pad(out, size, size)

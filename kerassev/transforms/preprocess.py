"""Per-backbone input normalisation, applied last, on ``[0, 1]`` float images ``(..., H, W, C)``.

=========  ========  =======================================================================
name       channels  mapping
=========  ========  =======================================================================
imagenet   3         ``keras.applications.resnet50.preprocess_input(x * 255)``: Keras
                     ResNet-50's "caffe" mode, RGB -> BGR and per-channel ImageNet mean
                     subtraction (no std scaling). SPEC 01 and 04 (ImageNet-initialised ResNet-50).
xrv        1         ``x * 2048 - 1024``: [0, 1] -> [-1024, 1024], TorchXRayVision's input scale
                     (SPEC 03).
unit       any       unchanged (phantoms, debugging, models that normalise themselves).
=========  ========  =======================================================================

Relation to TorchXRayVision. ``xrv.datasets.normalize(img, maxval)`` maps ``[0, maxval]`` to
``[-1024, 1024]`` as ``(2 * img / maxval - 1) * 1024``. Our images are already ``img / maxval``
(in ``[0, 1]``), so the same map is ``x * 2048 - 1024``. TorchXRayVision then applies
``XRayCenterCrop`` (largest centred square) and ``XRayResizer(224)`` (skimage bilinear resize with
anti-aliasing). :func:`xrv_preprocess` does all three; the only difference is the resampler
(TensorFlow's anti-aliased bilinear vs skimage's Gaussian pre-filter + bilinear), a sub-grey-level
difference. Scaling commutes with the (affine) resize, so doing it last is equivalent.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import tensorflow as tf

from kerassev.transforms.geometry import center_crop_square

XRV_SIZE = 224
XRV_RANGE = 1024.0

PREPROCESSOR_CHANNELS = {"imagenet": 3, "xrv": 1, "unit": None}


def imagenet_preprocess(x: tf.Tensor) -> tf.Tensor:
    """[0, 1] RGB -> Keras ResNet-50 input (caffe: BGR, ImageNet mean subtracted, 0-255 scale)."""
    x = tf.convert_to_tensor(x, tf.float32)
    return keras.applications.resnet50.preprocess_input(x * 255.0)


def xrv_scale(x: tf.Tensor) -> tf.Tensor:
    """[0, 1] -> [-1024, 1024] (TorchXRayVision ``normalize`` with ``maxval`` folded in)."""
    x = tf.convert_to_tensor(x, tf.float32)
    return x * (2.0 * XRV_RANGE) - XRV_RANGE


def unit(x: tf.Tensor) -> tf.Tensor:
    """Identity (images stay in [0, 1])."""
    return tf.convert_to_tensor(x, tf.float32)


_PREPROCESSORS: dict[str, Callable[[tf.Tensor], tf.Tensor]] = {
    "imagenet": imagenet_preprocess,
    "xrv": xrv_scale,
    "unit": unit,
}


def get_preprocessor(name: str) -> Callable[[tf.Tensor], tf.Tensor]:
    """The normalisation function for ``name`` in ``{"imagenet", "xrv", "unit"}``."""
    try:
        return _PREPROCESSORS[name]
    except KeyError:
        raise ValueError(
            f"unknown preprocessing {name!r}; choose one of {sorted(_PREPROCESSORS)}"
        ) from None


def xrv_preprocess(image) -> tf.Tensor:
    """TorchXRayVision's full input preprocessing for one image in ``[0, 1]`` of any size.

    ``image``: ``(H, W)`` or ``(H, W, C)``; several channels are averaged (as XRV's ``img.mean(2)``).
    Steps: centre crop to the largest square (``XRayCenterCrop``), resize to 224 (``XRayResizer``),
    scale to [-1024, 1024] (``normalize``). Returns a ``(224, 224, 1)`` float32 tensor.
    """
    x = tf.convert_to_tensor(image, tf.float32)
    if x.shape.rank == 2:
        x = x[..., None]
    elif x.shape.rank == 3 and x.shape[-1] != 1:
        x = tf.reduce_mean(x, axis=-1, keepdims=True)
    elif x.shape.rank != 3:
        raise ValueError(f"xrv_preprocess expects (H, W) or (H, W, C), got shape {x.shape}")
    x = tf.image.resize(
        center_crop_square(x), (XRV_SIZE, XRV_SIZE), method="bilinear", antialias=True
    )
    return tf.ensure_shape(xrv_scale(x), (XRV_SIZE, XRV_SIZE, 1))

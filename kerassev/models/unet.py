"""A compact U-Net (Ronneberger et al. 2015) for binary lesion segmentation, in Keras 3.

The layout follows keras-io's "Image segmentation with a U-Net-like architecture" (conv -> norm
-> ReLU blocks, a down path of halving resolution, an up path of ``UpSampling2D``), with the
original U-Net's concatenated skips in place of that example's residual adds. ``width`` is the
first level's channels (doubled per level), ``depth`` the number of poolings. ``norm="group"``
(default) trains at batch 1, where batch norm's statistics are one image's (issue 19 fault 2);
``"bn"`` is keras-io's choice. The input is a ``(S, S, 1)`` slice in [0, 1], z-scored inside the
model with the training set's ``mean`` / ``std``, so a saved ``.keras`` file takes raw slices.
The output is a float32 sigmoid lesion probability per pixel (also under a mixed policy).

:func:`bce_dice` is the training loss (binary cross-entropy + soft Dice, see there).
"""

from __future__ import annotations

import keras
from keras import layers, ops

NORMS = ("group", "bn")


def _norm(x, kind: str, name: str):
    if kind == "group":
        channels = x.shape[-1]
        return layers.GroupNormalization(min(8, channels), epsilon=1e-5, name=f"{name}_gn")(x)
    return layers.BatchNormalization(name=f"{name}_bn")(x)


def _double_conv(x, filters: int, norm: str, name: str):
    for i in (1, 2):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv{i}")(x)
        x = _norm(x, norm, f"{name}_{i}")
        x = layers.ReLU(name=f"{name}_relu{i}")(x)
    return x


def build_unet(
    image_size: int = 256,
    *,
    width: int = 16,
    depth: int = 4,
    norm: str = "group",
    mean: float = 0.0,
    std: float = 1.0,
    name: str = "unet",
) -> keras.Model:
    """``(N, S, S, 1)`` slices in [0, 1] -> ``(N, S, S, 1)`` lesion probabilities.

    ``image_size`` must be divisible by ``2 ** depth`` (the skips are concatenated unpadded).
    """
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {NORMS}, not {norm!r}")
    if depth < 1 or image_size % 2**depth:
        raise ValueError(f"image_size {image_size} is not divisible by 2 ** depth ({2**depth})")
    inputs = keras.Input((image_size, image_size, 1), name="image")
    x = layers.Normalization(mean=mean, variance=std**2, name="zscore")(inputs)
    skips = []
    for level in range(depth):
        x = _double_conv(x, width * 2**level, norm, f"down{level}")
        skips.append(x)
        x = layers.MaxPooling2D(2, name=f"pool{level}")(x)
    x = _double_conv(x, width * 2**depth, norm, "bottom")
    for level in reversed(range(depth)):
        x = layers.UpSampling2D(2, interpolation="bilinear", name=f"up{level}")(x)
        x = layers.Concatenate(name=f"skip{level}")([x, skips[level]])
        x = _double_conv(x, width * 2**level, norm, f"dec{level}")
    # float32 output: the loss and the 0.5 threshold see full-precision probabilities
    outputs = layers.Conv2D(1, 1, activation="sigmoid", dtype="float32", name="lesion")(x)
    return keras.Model(inputs, outputs, name=name)


@keras.saving.register_keras_serializable(package="kerassev")
def bce_dice(y_true, y_pred):
    """Per-image binary cross-entropy + soft Dice (1 - Dice over each image's pixels).

    Lesions cover a few per cent of a slice: BCE alone is dominated by background pixels, while
    soft Dice is the evaluation metric's smooth form and ignores the imbalance. Soft Dice has no
    gradient on a lesion-free slice (its value is 1 whatever is predicted), BCE does; the sum is
    the usual Dice + CE pairing (nnU-Net's default loss).
    """
    y_true = ops.cast(y_true, "float32")
    y_pred = ops.cast(y_pred, "float32")
    bce = ops.mean(keras.losses.binary_crossentropy(y_true, y_pred), axis=(1, 2))
    dice = keras.losses.dice(y_true, y_pred, axis=(1, 2, 3))
    return bce + dice

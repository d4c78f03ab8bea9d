"""ResNet-18 (He et al. 2016, basic blocks [2, 2, 2, 2]) in Keras; keras.applications has none.

:func:`resnet18_features` applies the network to a tensor so that the 2D model and the TSM video
model (:mod:`kerassev.models.tsm`) are built by the same code with the same layer names: weights
move between them with ``set_weights``. ``residual_hook`` is called on the input of every block's
residual branch (before its first conv); TSM passes its temporal shift there (TSM ``blockres``).
``width`` scales the channels (64 is the paper's ResNet-18; smoke presets use less on 2 CPUs).
"""

from __future__ import annotations

from collections.abc import Callable

import keras
from keras import layers

from kerassev.models.batch_norm import FusedBatchNormalization

STAGE_BLOCKS = (2, 2, 2, 2)


def _conv_bn(x, filters: int, kernel: int, stride: int, name: str, relu: bool = True):
    x = layers.Conv2D(
        filters, kernel, strides=stride, padding="same", use_bias=False, name=f"{name}_conv"
    )(x)
    x = FusedBatchNormalization(epsilon=1e-5, momentum=0.9, name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x) if relu else x


def basic_block(x, filters: int, stride: int, name: str, residual_hook: Callable | None = None):
    """Two 3x3 convs with an identity (or 1x1 projection) shortcut."""
    shortcut = x
    if stride != 1 or x.shape[-1] != filters:
        shortcut = _conv_bn(x, filters, 1, stride, f"{name}_down", relu=False)
    branch = residual_hook(x, name) if residual_hook is not None else x
    y = _conv_bn(branch, filters, 3, stride, f"{name}_1")
    y = _conv_bn(y, filters, 3, 1, f"{name}_2", relu=False)
    return layers.ReLU(name=f"{name}_out")(layers.Add(name=f"{name}_add")([shortcut, y]))


def resnet18_features(x, *, width: int = 64, residual_hook: Callable | None = None):
    """Stem, four stages and global average pooling: ``(N, H, W, C)`` -> ``(N, 8 * width)``."""
    x = _conv_bn(x, width, 7, 2, "stem")
    x = layers.MaxPooling2D(3, strides=2, padding="same", name="stem_pool")(x)
    for s, n_blocks in enumerate(STAGE_BLOCKS):
        for b in range(n_blocks):
            stride = 2 if (s > 0 and b == 0) else 1
            x = basic_block(x, width * 2**s, stride, f"layer{s + 1}_{b}", residual_hook)
    return layers.GlobalAveragePooling2D(name="avg_pool")(x)


def build_resnet18(
    input_shape: tuple[int, int, int] = (112, 112, 1), *, width: int = 64, name: str = "resnet18"
) -> keras.Model:
    """2D ResNet-18 encoder: image ``(H, W, C)`` -> embedding ``(8 * width,)`` (512 at width 64)."""
    inputs = keras.Input(input_shape, name="image")
    return keras.Model(inputs, resnet18_features(inputs, width=width), name=name)

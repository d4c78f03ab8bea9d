"""Feature pyramid (Lin et al. 2017, §3) on the Keras ResNet-50: P2-P6 with 256 channels.

C2-C5 are the outputs of ResNet-50's four stages (strides 4, 8, 16, 32). Each gets a 1x1 lateral
conv; the top-down path upsamples (nearest) and adds; a 3x3 conv smooths each sum; P6 is a
stride-2 max-pool of P5 (torchvision's ``LastLevelMaxPool``), used by the RPN only.

Batch norm in a pretrained backbone is frozen (inference mode), as torchvision's
``FrozenBatchNorm2d``: detection batches of one or two images cannot estimate it. A randomly
initialised backbone keeps it trainable. ``backbone="tiny"`` is a four-stage plain CNN of
configurable width with the same strides, for tests and smoke runs.
"""

from __future__ import annotations

import keras
from keras import layers

from kerassev.models.backbones import build_backbone

RESNET50_STAGES = ("conv2_block3_out", "conv3_block4_out", "conv4_block6_out", "conv5_block3_out")
LEVELS = ("P2", "P3", "P4", "P5", "P6")
STRIDES = (4, 8, 16, 32, 64)


def _tiny_stages(image: keras.KerasTensor, width: int) -> list:
    x = layers.Conv2D(width, 3, strides=2, padding="same", activation="relu", name="stem")(image)
    outs = []
    for i, mult in enumerate((1, 2, 4, 8), start=2):
        x = layers.Conv2D(
            width * mult, 3, strides=2, padding="same", activation="relu", name=f"c{i}_down"
        )(x)
        x = layers.Conv2D(width * mult, 3, padding="same", activation="relu", name=f"c{i}_out")(x)
        outs.append(x)
    return outs


def build_fpn_backbone(
    image_size: int,
    *,
    backbone: str = "resnet50",
    weights=None,
    channels: int = 256,
    tiny_width: int = 16,
    name: str = "fpn_backbone",
) -> keras.Model:
    """A model ``(B, S, S, 3) -> [P2, P3, P4, P5, P6]``, each ``(B, S/s, S/s, channels)``."""
    if image_size % 64:
        raise ValueError(f"image_size must be a multiple of 64 (P6 stride), got {image_size}")
    image = keras.Input((image_size, image_size, 3), name="image")
    if backbone == "resnet50":
        net = build_backbone(
            "resnet50", weights=weights, input_shape=(image_size, image_size, 3), pooling=None
        )
        if weights is not None:
            for layer in net.layers:
                if isinstance(layer, layers.BatchNormalization):
                    layer.trainable = False
        body = keras.Model(net.input, [net.get_layer(n).output for n in RESNET50_STAGES])
        feats = body(image)
    elif backbone == "tiny":
        if weights is not None:
            raise ValueError("the tiny backbone has no pretrained weights; use weights=None")
        feats = _tiny_stages(image, tiny_width)
    else:
        raise ValueError(f"unknown detection backbone {backbone!r}; use 'resnet50' or 'tiny'")

    laterals = [
        layers.Conv2D(channels, 1, name=f"fpn_lateral{i}")(c) for i, c in enumerate(feats, 2)
    ]
    merged = [laterals[-1]]
    for i in range(len(laterals) - 2, -1, -1):
        up = layers.UpSampling2D(2, interpolation="nearest", name=f"fpn_up{i + 3}")(merged[0])
        merged.insert(0, layers.Add(name=f"fpn_add{i + 2}")([laterals[i], up]))
    pyramid = [
        layers.Conv2D(channels, 3, padding="same", name=f"fpn_output{i}")(m)
        for i, m in enumerate(merged, 2)
    ]
    pyramid.append(layers.MaxPooling2D(1, strides=2, name="fpn_p6")(pyramid[-1]))
    return keras.Model(image, pyramid, name=name)

"""Feature pyramid (Lin et al. 2017, §3) on the Keras ResNet-50: P2-P6 with 256 channels.

C2-C5 are the outputs of ResNet-50's four stages (strides 4, 8, 16, 32). Each gets a 1x1 lateral
conv; the top-down path upsamples (nearest) and adds; a 3x3 conv smooths each sum; P6 is a
stride-2 max-pool of P5 (torchvision's ``LastLevelMaxPool``), used by the RPN only.

``norm`` (issue 19 fault 2): ``"frozen_bn"`` freezes the backbone's batch norm (inference mode)
as torchvision's ``FrozenBatchNorm2d`` does under ImageNet weights, since batches of one image
cannot estimate it; ``"bn"`` trains it; ``"group"`` replaces every backbone BN by GroupNorm (32
groups) and puts GroupNorm after each FPN conv, as Detectron2's from-scratch Mask R-CNN (He et
al. 2019, "Rethinking ImageNet Pre-training", §3; Wu & He 2018). ``backbone="tiny"`` is a
four-stage plain CNN of configurable width with the same strides (no norm), for tests and smoke.
"""

from __future__ import annotations

import keras
from keras import layers

from kerassev.models.backbones import build_backbone

RESNET50_STAGES = ("conv2_block3_out", "conv3_block4_out", "conv4_block6_out", "conv5_block3_out")
LEVELS = ("P2", "P3", "P4", "P5", "P6")
NORMS = ("group", "frozen_bn", "bn")
GN_GROUPS = 32
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
    norm: str = "frozen_bn",
    name: str = "fpn_backbone",
) -> keras.Model:
    """A model ``(B, S, S, 3) -> [P2, P3, P4, P5, P6]``, each ``(B, S/s, S/s, channels)``."""
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {NORMS}, not {norm!r}")
    if norm == "group" and weights is not None:
        raise ValueError("norm='group' trains from scratch: pretrained BN weights need 'frozen_bn'")
    if image_size % 64:
        raise ValueError(f"image_size must be a multiple of 64 (P6 stride), got {image_size}")
    image = keras.Input((image_size, image_size, 3), name="image")
    if backbone == "resnet50":
        net = build_backbone(
            "resnet50", weights=weights, input_shape=(image_size, image_size, 3), pooling=None
        )
        if norm == "group":
            net = batch_norm_to_group_norm(net)
        for layer in net.layers:
            if isinstance(layer, layers.BatchNormalization):
                layer.trainable = norm == "bn"
        body = keras.Model(net.input, [net.get_layer(n).output for n in RESNET50_STAGES])
        feats = body(image)
    elif backbone == "tiny":
        if weights is not None:
            raise ValueError("the tiny backbone has no pretrained weights; use weights=None")
        feats = _tiny_stages(image, tiny_width)
    else:
        raise ValueError(f"unknown detection backbone {backbone!r}; use 'resnet50' or 'tiny'")

    def normed(x, layer_name):  # Detectron2 FPN(norm="GN"): conv -> GN on laterals and outputs
        if norm != "group":
            return x
        groups = min(GN_GROUPS, channels)
        return layers.GroupNormalization(groups, epsilon=1e-5, name=layer_name + "_gn")(x)

    laterals = [
        normed(layers.Conv2D(channels, 1, name=f"fpn_lateral{i}")(c), f"fpn_lateral{i}")
        for i, c in enumerate(feats, 2)
    ]
    merged = [laterals[-1]]
    for i in range(len(laterals) - 2, -1, -1):
        up = layers.UpSampling2D(2, interpolation="nearest", name=f"fpn_up{i + 3}")(merged[0])
        merged.insert(0, layers.Add(name=f"fpn_add{i + 2}")([laterals[i], up]))
    pyramid = [
        normed(
            layers.Conv2D(channels, 3, padding="same", name=f"fpn_output{i}")(m), f"fpn_output{i}"
        )
        for i, m in enumerate(merged, 2)
    ]
    pyramid.append(layers.MaxPooling2D(1, strides=2, name="fpn_p6")(pyramid[-1]))
    return keras.Model(image, pyramid, name=name)


@keras.saving.register_keras_serializable(package="kerassev")
class GroupNorm(layers.GroupNormalization):
    """GroupNormalization taking (and ignoring) the ``mask`` a cloned batch-norm call passes."""

    def call(self, inputs, mask=None):
        return super().call(inputs)


def batch_norm_to_group_norm(model: keras.Model, groups: int = GN_GROUPS) -> keras.Model:
    """A copy of functional ``model`` with every batch norm replaced by GroupNorm (fresh weights;
    Wu & He 2018: 32 groups), the other layers cloned as they are."""

    def clone(layer):
        if isinstance(layer, layers.BatchNormalization):
            return GroupNorm(groups, epsilon=1e-5, name=layer.name)
        return layer.__class__.from_config(layer.get_config())

    return keras.models.clone_model(model, clone_function=clone)

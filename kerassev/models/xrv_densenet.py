"""Keras DenseNet-121 identical to TorchXRayVision's ``DenseNet(weights="all")`` (paper 03).

Topology is torchvision's DenseNet-121 (growth 32, blocks (6, 12, 24, 16), bottleneck 4x, 64 initial
features) with one input channel and 18 outputs; the head is TorchXRayVision's
``features -> ReLU -> global average pool (1024-d) -> Linear(18)``. Layers are named after the
PyTorch state-dict keys (``features.denseblock1.denselayer1.conv1``), so the converter in
:mod:`kerassev.convert.xrv` is a name mapping.

Inputs are channels-last ``(B, 224, 224, 1)`` scaled to ``[-1024, 1024]``: use
``kerassev.transforms.preprocess.xrv_preprocess`` (centre crop to square, resize 224, rescale).
Outputs are pre-sigmoid logits, as the paper uses (SPEC 03); TorchXRayVision's ``op_threshs``
calibration is recorded (``model.op_threshs``) but never applied.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import keras
import numpy as np
from keras import layers

from kerassev.models.batch_norm import FusedBatchNormalization

# TorchXRayVision's output order for the "all" weights (``xrv.datasets.default_pathologies``).
XRV_PATHOLOGIES: tuple[str, ...] = (
    "Atelectasis",
    "Consolidation",
    "Infiltration",
    "Pneumothorax",
    "Edema",
    "Emphysema",
    "Fibrosis",
    "Effusion",
    "Pneumonia",
    "Pleural_Thickening",
    "Cardiomegaly",
    "Nodule",
    "Mass",
    "Hernia",
    "Lung Lesion",
    "Fracture",
    "Lung Opacity",
    "Enlarged Cardiomediastinum",
)

# Paper 03 section 2.5: outputs "more frequent in pneumonia", in the paper's listing order.
FOUR_OUTPUTS: tuple[str, ...] = ("Lung Opacity", "Pneumonia", "Infiltration", "Consolidation")

INPUT_SHAPE = (224, 224, 1)
GROWTH_RATE = 32
BLOCK_CONFIG = (6, 12, 24, 16)
NUM_INIT_FEATURES = 64
BN_SIZE = 4
NUM_CLASSES = len(XRV_PATHOLOGIES)
NUM_FEATURES = 1024

# PyTorch BatchNorm2d defaults: eps 1e-5; momentum 0.1 on the new batch == Keras momentum 0.9.
BN_EPSILON = 1e-5
BN_MOMENTUM = 0.9

# Root attribute of a converted ``.weights.h5`` that carries TorchXRayVision's op_threshs.
OP_THRESHS_ATTR = "xrv_op_threshs"


def _bn(x, name: str):
    return FusedBatchNormalization(epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name=name)(x)


def _conv(x, filters: int, kernel: int, name: str, stride: int = 1, pad: int = 0):
    """Conv without bias; PyTorch symmetric padding = ZeroPadding2D + 'valid'."""
    if pad:
        x = layers.ZeroPadding2D(pad, name=f"{name}_pad")(x)
    return layers.Conv2D(
        filters, kernel, strides=stride, padding="valid", use_bias=False, name=name
    )(x)


def _dense_layer(x, name: str):
    y = _bn(x, f"{name}.norm1")
    y = layers.ReLU(name=f"{name}.relu1")(y)
    y = _conv(y, BN_SIZE * GROWTH_RATE, 1, f"{name}.conv1")
    y = _bn(y, f"{name}.norm2")
    y = layers.ReLU(name=f"{name}.relu2")(y)
    y = _conv(y, GROWTH_RATE, 3, f"{name}.conv2", pad=1)
    return layers.Concatenate(axis=-1, name=f"{name}.cat")([x, y])


def _transition(x, filters: int, name: str):
    x = _bn(x, f"{name}.norm")
    x = layers.ReLU(name=f"{name}.relu")(x)
    x = _conv(x, filters, 1, f"{name}.conv")
    return layers.AveragePooling2D(2, strides=2, padding="valid", name=f"{name}.pool")(x)


def build_xrv_densenet(weights: str | Path | None = None) -> keras.Model:
    """TorchXRayVision DenseNet-121; outputs ``{"logits": (B, 18), "features": (B, 1024)}``.

    ``weights``: None (random init) or a local ``.weights.h5`` written by
    ``kerassev convert xrv``. Never downloads. ``model.op_threshs`` holds the checkpoint's
    operating thresholds (or None); they are not applied.
    """
    path = Path(weights) if weights is not None else None
    if path is not None and not path.is_file():  # fail before the (slow) build
        raise FileNotFoundError(
            f"XRV DenseNet weights not found: {path} "
            "(convert a TorchXRayVision checkpoint with `kerassev convert xrv`)"
        )
    inputs = keras.Input(INPUT_SHAPE, name="image")
    # Stem: conv0 7x7/2 pad 3, norm0, relu0, pool0 maxpool 3/2 pad 1.
    x = _conv(inputs, NUM_INIT_FEATURES, 7, "features.conv0", stride=2, pad=3)
    x = _bn(x, "features.norm0")
    x = layers.ReLU(name="features.relu0")(x)
    # Zero padding before max-pool equals PyTorch's -inf padding here: the input is post-ReLU (>= 0).
    x = layers.ZeroPadding2D(1, name="features.pool0_pad")(x)
    x = layers.MaxPooling2D(3, strides=2, padding="valid", name="features.pool0")(x)

    channels = NUM_INIT_FEATURES
    for i, n_layers in enumerate(BLOCK_CONFIG, start=1):
        for j in range(1, n_layers + 1):
            x = _dense_layer(x, f"features.denseblock{i}.denselayer{j}")
        channels += n_layers * GROWTH_RATE
        if i != len(BLOCK_CONFIG):
            channels //= 2
            x = _transition(x, channels, f"features.transition{i}")
    x = _bn(x, "features.norm5")

    # XRV head: F.relu -> adaptive_avg_pool2d(1) -> flatten -> classifier.
    x = layers.ReLU(name="relu")(x)
    features = layers.GlobalAveragePooling2D(name="features")(x)
    logits = layers.Dense(NUM_CLASSES, name="classifier")(features)
    model = keras.Model(inputs, {"logits": logits, "features": features}, name="xrv_densenet121")
    op_threshs = None
    if weights is not None:
        model.load_weights(path)
        op_threshs = read_op_threshs(path)
    object.__setattr__(model, "op_threshs", op_threshs)  # plain attribute, not a tracked weight
    return model


def read_op_threshs(weights_path: str | Path) -> np.ndarray | None:
    """TorchXRayVision op_threshs stored in a converted ``.weights.h5`` (None when absent)."""
    with h5py.File(weights_path, "r") as f:
        if OP_THRESHS_ATTR not in f.attrs:
            return None
        return np.asarray(f.attrs[OP_THRESHS_ATTR], dtype=np.float32)


def feature_sets(outputs) -> dict[str, np.ndarray]:
    """Paper 03 feature sets from model outputs (all pre-sigmoid).

    Returns ``{"1024": features, "18": logits, "4": [lung opacity, pneumonia, infiltration,
    consolidation], "lung_opacity": (B, 1)}``. ``outputs`` is the model's output dict.
    """
    logits = np.asarray(keras.ops.convert_to_numpy(outputs["logits"]))
    features = np.asarray(keras.ops.convert_to_numpy(outputs["features"]))
    four = [XRV_PATHOLOGIES.index(name) for name in FOUR_OUTPUTS]
    opacity = XRV_PATHOLOGIES.index("Lung Opacity")
    return {
        "1024": features,
        "18": logits,
        "4": logits[:, four],
        "lung_opacity": logits[:, [opacity]],
    }

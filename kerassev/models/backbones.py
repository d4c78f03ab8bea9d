"""Backbone factory: Keras ResNet-50 without top (Liang et al. 2023, §3.1), offline-safe.

``weights`` is ``None`` (random, the paper's "scratch"/cold start), ``"imagenet"`` (hot start) or a
path to a local ``.h5`` / ``.weights.h5`` file. ``"imagenet"`` never hangs without a network: the
Keras cache file is used when present, otherwise a 2-second connectivity probe runs before Keras
is allowed to download, and a :class:`BackboneWeightsError` explains how to supply the file.

``name="resnet18"`` is He et al.'s ResNet-18 (:mod:`kerassev.models.resnet18`, random init only);
``name="tiny_cnn"`` is a few-layer stand-in with the same interface, for tests and smoke runs.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import keras
from keras import layers

from kerassev.models.batch_norm import fuse_batch_norm

__all__ = [
    "BACKBONES",
    "RESNET50_NOTOP_FILE",
    "RESNET50_NOTOP_URL",
    "BackboneWeightsError",
    "build_backbone",
    "cached_weights_file",
    "keras_weights_cache",
]

RESNET50_NOTOP_FILE = "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"
RESNET50_NOTOP_URL = (
    "https://storage.googleapis.com/tensorflow/keras-applications/resnet/" + RESNET50_NOTOP_FILE
)
_PROBE_HOST = "storage.googleapis.com"
_PROBE_PORT = 443
_PROBE_TIMEOUT_S = 2.0


class BackboneWeightsError(RuntimeError):
    """Backbone weights could not be obtained or loaded; the message says how to fix it."""


def keras_weights_cache() -> list[Path]:
    """Directories where Keras caches application weights (``$KERAS_HOME``/``~/.keras``, ``/tmp``)."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    dirs = [Path(home) / "models", Path("/tmp/.keras/models")]
    return list(dict.fromkeys(dirs))


def cached_weights_file(file_name: str = RESNET50_NOTOP_FILE) -> Path | None:
    """The first Keras-cache copy of ``file_name`` (e.g. the ResNet-50 notop weights), or None."""
    for folder in keras_weights_cache():
        if (folder / file_name).is_file():
            return folder / file_name
    return None


def can_download_weights() -> bool:
    """Whether Keras could download application weights now (a 2-second probe)."""
    return _can_reach()


def _can_reach(host: str = _PROBE_HOST, port: int = _PROBE_PORT, timeout: float = _PROBE_TIMEOUT_S):
    """Quick TCP probe; ``False`` when offline (monkeypatched in tests)."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _offline_message(file_name: str, url: str) -> str:
    cache = keras_weights_cache()[0]
    return (
        f"ImageNet weights requested but '{file_name}' is not in the Keras cache ({cache}) and "
        f"{_PROBE_HOST}:{_PROBE_PORT} is unreachable (offline?). Download {url} on a machine with "
        f"network access, then either pass weights=PATH (CLI: --weights PATH) or copy the file to "
        f"{cache / file_name}."
    )


def _load_local(model: keras.Model, path: str | os.PathLike) -> None:
    path = Path(path).expanduser()
    if not path.is_file():
        raise BackboneWeightsError(
            f"backbone weights file not found: {path} (expected a .h5 or .weights.h5 file, e.g. "
            f"{RESNET50_NOTOP_FILE})"
        )
    if not (path.name.endswith(".h5") or path.name.endswith(".hdf5")):
        raise BackboneWeightsError(
            f"backbone weights file {path} has an unsupported suffix (use .h5 or .weights.h5)"
        )
    try:
        model.load_weights(str(path))
    except Exception as exc:  # re-raised with the file named
        raise BackboneWeightsError(
            f"could not load backbone weights from {path} into '{model.name}': "
            f"{type(exc).__name__}: {exc}"
        ) from exc


def _resnet50(input_shape, pooling, weights):
    return keras.applications.ResNet50(
        include_top=False, weights=weights, input_shape=input_shape, pooling=pooling
    )


def _tiny_cnn(input_shape, pooling, weights):
    """Three Conv-BN-ReLU stages (8/16/32 filters, stride 2): a fast stand-in for tests."""
    if weights == "imagenet":
        raise BackboneWeightsError("tiny_cnn has no ImageNet weights; use weights=None or a file")
    inputs = keras.Input(input_shape, name="image")
    x = inputs
    for i, filters in enumerate((8, 16, 32), start=1):
        x = layers.Conv2D(filters, 3, strides=2, padding="same", use_bias=False, name=f"conv{i}")(x)
        x = layers.BatchNormalization(name=f"bn{i}")(x)
        x = layers.ReLU(name=f"conv{i}_out")(x)
    if pooling == "avg":
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    elif pooling == "max":
        x = layers.GlobalMaxPooling2D(name="max_pool")(x)
    return keras.Model(inputs, x, name="tiny_cnn")


def _resnet18(input_shape, pooling, weights):
    """ResNet-18 (512-d pooled), ~1/2 ResNet-50's FLOPs and ~1/2 its weights: smoke presets."""
    if weights == "imagenet":
        raise BackboneWeightsError("resnet18 has no ImageNet weights; use weights=None or a file")
    if pooling != "avg":
        raise ValueError(f"resnet18 is built average-pooled only, got pooling={pooling!r}")
    from kerassev.models.resnet18 import build_resnet18

    return build_resnet18(input_shape)


BACKBONES = {
    "resnet50": (_resnet50, RESNET50_NOTOP_FILE, RESNET50_NOTOP_URL),
    "resnet18": (_resnet18, None, None),
    "tiny_cnn": (_tiny_cnn, None, None),
}


def build_backbone(
    name: str = "resnet50",
    *,
    weights: str | os.PathLike | None = None,
    input_shape: tuple[int, int, int] = (224, 224, 3),
    pooling: str | None = "avg",
    fused_batch_norm: bool = True,
) -> keras.Model:
    """Backbone without classification top; output ``(B, 2048)`` for ResNet-50 with ``pooling="avg"``.

    Inputs must already be preprocessed for the backbone (ImageNet "caffe" mode for ResNet-50,
    see ``kerassev.transforms.preprocess``). Raises :class:`BackboneWeightsError` on any weights
    problem (offline ImageNet request, missing or incompatible local file).
    ``fused_batch_norm`` swaps Keras' batch norm for the fused kernel (same weights and numerics
    within float round-off; 1.3x a float32 and 2x a bf16 ResNet-50 training step on CPU, see
    :mod:`kerassev.models.batch_norm`).
    """
    model = _build(name, weights, tuple(input_shape), pooling)
    return fuse_batch_norm(model) if fused_batch_norm else model


def _build(name, weights, input_shape, pooling) -> keras.Model:
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; choose one of {sorted(BACKBONES)}")
    factory, cache_file, url = BACKBONES[name]

    if weights is None:
        return factory(input_shape, pooling, None)

    if isinstance(weights, str) and weights == "imagenet":
        if cache_file is None:
            return factory(input_shape, pooling, "imagenet")  # raises a clear error
        cached = cached_weights_file(cache_file)
        if cached is not None:  # use the cached file directly: no hash check, no network
            model = factory(input_shape, pooling, None)
            _load_local(model, cached)
            return model
        if not _can_reach():
            raise BackboneWeightsError(_offline_message(cache_file, url))
        try:
            return factory(input_shape, pooling, "imagenet")
        except Exception as exc:  # download failures become one clear error
            raise BackboneWeightsError(
                f"downloading ImageNet weights failed ({type(exc).__name__}: {exc}). "
                + _offline_message(cache_file, url)
            ) from exc

    model = factory(input_shape, pooling, None)
    _load_local(model, weights)
    return model

"""Frozen feature extractors of paper 03 and how images reach them.

An :class:`Encoder` is a frozen Keras model plus its input size, channels and preprocessing;
:meth:`Encoder.extract` gives its feature sets (name -> ``(N, d)``) for every image.

- :func:`xrv_encoder`: the paper's TorchXRayVision DenseNet-121 ("all") from a converted
  checkpoint; feature sets "1024" (intermediate features), "18" outputs, "4" outputs and the
  "lung_opacity" output (pre-sigmoid).
- :func:`resnet_encoder`: an average-pooled ResNet-50 (random init, ImageNet file or given
  weights); feature set "pooled". The SimSiam-pretrained one comes from :mod:`.ssl`.

:func:`composed_model` chains image -> encoder -> feature set -> fitted OLS, differentiably, for
the saliency figure.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from kerassev.data.pipeline import PipelineConfig, build_dataset, build_dataset_from_arrays


def _image_batches(images_or_table, *, image_size, channels, preprocess, batch_size):
    cfg = PipelineConfig(
        image_size=image_size,
        channels=channels,
        preprocessing=preprocess or "unit",
        batch_size=batch_size,
        shuffle=False,
    )
    if isinstance(images_or_table, pd.DataFrame):
        return build_dataset(images_or_table, cfg), len(images_or_table)
    images = np.asarray(images_or_table, dtype=np.float32)
    return build_dataset_from_arrays(images, cfg), len(images)


def extract_features(
    encoder_fn: Callable | keras.Model,
    images_or_table: pd.DataFrame | np.ndarray,
    *,
    preprocess: str | None,
    batch_size: int = 16,
    image_size: int = 224,
    channels: int = 3,
    progress: str | None = None,
) -> np.ndarray | dict[str, np.ndarray]:
    """Run a frozen encoder over every image, in order.

    ``images_or_table``: a dataset table (files are decoded by the pipeline) or ``[0, 1]`` images
    ``(N, H, W)`` already in memory (see :func:`kerassev.data.pipeline.load_images`); either way they are centre-cropped,
    resized to ``image_size``, given ``channels`` and normalised with ``preprocess`` (a name of
    :func:`kerassev.transforms.preprocess.get_preprocessor`: "imagenet", "xrv", "unit").
    ``encoder_fn``: a Keras model or any callable mapping a preprocessed batch ``(B, S, S, C)`` to
    an array ``(B, d)`` or a dict of such arrays. Returns ``(N, d)`` float64, or a dict of them.
    ``progress``: a label to show one progress bar (batches) under, or None for none.
    """
    ds, n_expected = _image_batches(
        images_or_table,
        image_size=image_size,
        channels=channels,
        preprocess=preprocess,
        batch_size=batch_size,
    )
    call = _inference_call(encoder_fn)
    chunks: list = []
    if progress:
        from tqdm.auto import tqdm

        ds = tqdm(ds, desc=progress, total=-(-n_expected // batch_size), unit="batch")
    for batch in ds:
        out = call(batch)
        if isinstance(out, Mapping):
            chunks.append({k: np.asarray(keras.ops.convert_to_numpy(v)) for k, v in out.items()})
        else:
            chunks.append(np.asarray(keras.ops.convert_to_numpy(out)))
    if not chunks:
        raise ValueError("extract_features: no images")
    if isinstance(chunks[0], dict):
        result = {k: np.concatenate([c[k] for c in chunks]).astype(np.float64) for k in chunks[0]}
        n = len(next(iter(result.values())))
    else:
        result = np.concatenate(chunks).astype(np.float64)
        n = len(result)
    if n != n_expected:
        raise RuntimeError(f"extract_features: got {n} feature rows for {n_expected} images")
    return result


def _inference_call(encoder_fn):
    if isinstance(encoder_fn, keras.Model):
        return tf.function(lambda x: encoder_fn(x, training=False), reduce_retracing=True)
    return encoder_fn


@dataclass
class Encoder:
    """A frozen feature extractor and how to feed it."""

    key: str  # "xrv", "simsiam", "random", "imagenet"
    label: str  # honest row label: model, data, configuration
    model: keras.Model  # preprocessed image -> features (array or dict)
    image_size: int
    channels: int
    preprocess: str
    feature_sets: Callable[[object], dict[str, np.ndarray]] = field(repr=False, default=None)
    notes: str = ""

    def extract(
        self, images_or_table, batch_size: int = 16, *, progress: bool = False
    ) -> dict[str, np.ndarray]:
        """Feature sets (name -> (N, d)) of images (``[0, 1]`` arrays) or a table's files;
        ``progress`` shows a bar."""
        out = extract_features(
            self.model,
            images_or_table,
            progress=f"features {self.key}" if progress else None,
            preprocess=self.preprocess,
            batch_size=batch_size,
            image_size=self.image_size,
            channels=self.channels,
        )
        if self.feature_sets is not None:
            return {k: np.asarray(v, dtype=np.float64) for k, v in self.feature_sets(out).items()}
        return {"pooled": out}

    def feature_model(self, feature_set: str) -> Callable:
        """``preprocessed batch -> (B, d)`` tensor of one feature set (differentiable)."""
        if self.key == "xrv":
            from kerassev.models.xrv_densenet import FOUR_OUTPUTS, XRV_PATHOLOGIES

            cols = {
                "lung_opacity": [XRV_PATHOLOGIES.index("Lung Opacity")],
                "4": [XRV_PATHOLOGIES.index(n) for n in FOUR_OUTPUTS],
                "18": list(range(len(XRV_PATHOLOGIES))),
            }

            def fn(x):
                out = self.model(x, training=False)
                if feature_set == "1024":
                    return out["features"]
                return tf.gather(out["logits"], cols[feature_set], axis=1)

            return fn
        return lambda x: self.model(x, training=False)


def xrv_encoder(checkpoint: str | Path) -> Encoder:
    """The paper's extractor from a converted TorchXRayVision checkpoint."""
    from kerassev.models.xrv_densenet import build_xrv_densenet, feature_sets

    model = build_xrv_densenet(weights=checkpoint)
    model.trainable = False
    return Encoder(
        key="xrv",
        label=f"TorchXRayVision DenseNet-121 'all' ({Path(checkpoint).name})",
        model=model,
        image_size=224,
        channels=1,
        preprocess="xrv",
        feature_sets=feature_sets,
    )


def resnet_encoder(
    key: str, label: str, *, weights=None, image_size: int = 224, backbone: str = "resnet50"
) -> Encoder:
    """A ResNet-50 (avg-pooled, 2048-d) encoder: random init, ImageNet file, or given weights."""
    from kerassev.models.backbones import build_backbone

    model = build_backbone(
        backbone, weights=weights, input_shape=(image_size, image_size, 3), pooling="avg"
    )
    model.trainable = False
    return Encoder(key, label, model, image_size, 3, "imagenet")


def composed_model(encoder: Encoder, feature_set: str, ols) -> Callable:
    """``[0, 1]`` grayscale batch ``(B, S, S, 1)`` -> ``(B,)`` prediction: channel replication,
    the encoder's preprocessing, the frozen encoder, the feature set and the fitted linear
    regression, all differentiable (for saliency w.r.t. the displayed image)."""
    from kerassev.transforms.preprocess import get_preprocessor

    prep = get_preprocessor(encoder.preprocess)
    feats = encoder.feature_model(feature_set)
    coef = tf.constant(np.asarray(ols.coef_, dtype=np.float32).reshape(-1, 1))
    intercept = tf.constant(float(ols.intercept_), tf.float32)
    channels = encoder.channels

    def fn(images01):
        x = tf.convert_to_tensor(images01, tf.float32)
        if x.shape.rank == 3:
            x = x[..., None]
        if channels != 1:
            x = tf.repeat(x, channels, axis=-1)
        f = tf.cast(feats(prep(x)), tf.float32)
        return tf.squeeze(tf.matmul(f, coef), -1) + intercept

    return fn

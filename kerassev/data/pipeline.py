"""Dataset table / in-memory arrays -> ``tf.data.Dataset``, one builder for every paper.

Seeded shuffle of file paths (before decoding) -> per element: decode to grayscale ``[0, 1]``,
aspect-preserving resize (crop or pad) -> batch -> augmentation on whole batches (two views for
SSL, or one; on the single grey channel) -> 1 -> 3 channels (``channels=3``) -> per-backbone
preprocessing last (``kerassev.transforms.preprocess``) -> prefetch.

Decoding: PNG/JPEG (8- or 16-bit; RGB/RGBA converted to luma) with ``tf.io.decode_image`` in the
graph. DICOM through :class:`kerassev.data.cache.DecodedCache` (decoded once to a 16-bit PNG, then
read like any PNG); unreadable DICOMs and missing files are skipped before the graph is built, with
a :class:`SkippedFilesWarning` naming each file and why. With ``cache_decoded=False`` DICOMs are
decoded in the graph on every pass (``tf.numpy_function``), and bad ones are dropped there.

:func:`load_images` decodes a whole table once into an in-memory ``(N, S, S)`` array.

Element structure (``y``: float32 ``(B,)`` for one label column, ``(B, k)`` for several):
two views ``((v1, v2), y)`` or ``(v1, v2)``; single view ``(x, y)`` or ``x``. With
``augment_on="model"`` two-view pipelines yield raw grey ``[0, 1]`` batches ``x`` / ``(x, y)``
``(B, S, S, 1)`` and :func:`view_maker` makes the views inside the train step.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import tensorflow as tf

from kerassev.data.cache import DecodedCache
from kerassev.transforms.augment import AUGMENT_DTYPE, make_augmenter
from kerassev.transforms.geometry import RESIZE_MODES, resize_keep_aspect
from kerassev.transforms.preprocess import PREPROCESSOR_CHANNELS, get_preprocessor
from kerassev.transforms.views import ViewMaker

AUTOTUNE = tf.data.AUTOTUNE
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif"}
DICOM_SUFFIXES = {".dcm", ".dicom", ".dic"}
AUGMENT_ON = ("data", "model")


class SkippedFilesWarning(UserWarning):
    """Some files in a table could not be read and were left out (each is named)."""


@dataclass(frozen=True)
class PipelineConfig:
    """How a table becomes batches. Defaults: ImageNet ResNet-50 input, 224 px (SPEC 01/04)."""

    image_size: int = 224
    channels: int = 3
    preprocessing: str = "imagenet"  # "imagenet" | "xrv" | "unit"
    resize_mode: str = "crop"  # "crop" | "pad"
    batch_size: int = 32
    shuffle: bool = True
    seed: int = 0
    two_view_policy: str | None = None  # "mrale" | "simsiam" | "byol": ((v1, v2), ...) elements
    # Where two views are made: "data" (here, in tf.data) or "model" (raw grey batches here, the
    # views in the train step by view_maker(config); see kerassev.transforms.views).
    augment_on: str = "data"
    augment_policy: str | None = None  # single-view augmentation (supervised training)
    drop_remainder: bool = False
    cache_decoded: bool = True  # DICOM through the on-disk DecodedCache
    repeat: bool = False
    # tf.data private thread pool size (0: TensorFlow's shared default); when set, each op of one
    # element runs single-threaded, so the pipeline cannot take more than `threads` cores.
    threads: int = 0

    def __post_init__(self):
        if self.resize_mode not in RESIZE_MODES:
            raise ValueError(f"resize_mode must be one of {RESIZE_MODES}, got {self.resize_mode!r}")
        get_preprocessor(self.preprocessing)  # validates the name
        if self.channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {self.channels}")
        want = PREPROCESSOR_CHANNELS[self.preprocessing]
        if want is not None and want != self.channels:
            raise ValueError(
                f"preprocessing {self.preprocessing!r} needs channels={want}, got {self.channels}"
            )
        if self.two_view_policy and self.augment_policy:
            raise ValueError("set two_view_policy or augment_policy, not both")
        if self.augment_on not in AUGMENT_ON:
            raise ValueError(f"augment_on must be one of {AUGMENT_ON}, got {self.augment_on!r}")

    @property
    def views_in_model(self) -> bool:
        """True when batches are raw grey images and the model makes the two views."""
        return bool(self.two_view_policy) and self.augment_on == "model"

    def replace(self, **changes) -> PipelineConfig:
        return dataclasses.replace(self, **changes)


def is_dicom(path: str | Path) -> bool:
    """By suffix; files with another suffix are sniffed for the ``DICM`` preamble magic."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix in DICOM_SUFFIXES:
        return True
    if suffix in IMAGE_SUFFIXES:
        return False
    try:
        with open(p, "rb") as f:
            return f.read(132)[128:132] == b"DICM"
    except OSError:
        return False


def _labels_array(table: pd.DataFrame, label_cols) -> np.ndarray | None:
    if label_cols is None:
        return None
    cols = [label_cols] if isinstance(label_cols, str) else list(label_cols)
    missing = [c for c in cols if c not in table.columns]
    if missing:
        raise KeyError(f"label columns {missing} not in table columns {list(table.columns)}")
    y = table[cols].to_numpy(dtype=np.float32)
    return y[:, 0] if len(cols) == 1 else y


def resolve_sources(
    paths: Sequence[str], config: PipelineConfig, cache: DecodedCache | None = None
) -> tuple[list[str], list[bool], np.ndarray, dict[str, str]]:
    """Map each file to what the graph reads. Returns ``(sources, raw_dicom, kept_index,
    skipped)``: ``skipped`` maps each left-out file to the reason."""
    skipped: dict[str, str] = {}
    dicoms = []
    for p in paths:
        if not Path(p).is_file():
            skipped[p] = "file not found"
        elif is_dicom(p):
            dicoms.append(p)
    png_of: dict[str, str] = {}
    if dicoms and config.cache_decoded:
        cache = cache or DecodedCache()
        report = cache.warm(dicoms, workers=2)
        skipped.update(report.failed)
        for p in report.decoded + report.hits:
            png_of[p] = str(cache.cached_png_path(p))
    dicom_set = set(dicoms)
    sources, raw, kept = [], [], []
    for i, p in enumerate(paths):
        if p in skipped:
            continue
        if p in png_of:
            sources.append(png_of[p])
            raw.append(False)
        else:
            sources.append(p)
            raw.append(p in dicom_set)  # only when cache_decoded=False
        kept.append(i)
    return sources, raw, np.asarray(kept, dtype=np.int64), skipped


def _decode_raw_dicom(path: bytes) -> np.ndarray:
    from kerassev.io.dicom import read_dicom

    return read_dicom(path.decode(), frame=0).pixels.astype(np.float32)


def decode_file(path: tf.Tensor, raw_dicom: tf.Tensor | bool = False) -> tf.Tensor:
    """Graph decode of one file to float32 ``(H, W, 1)`` in ``[0, 1]``."""

    def image():
        return tf.io.decode_image(
            tf.io.read_file(path), channels=1, dtype=tf.float32, expand_animations=False
        )

    def dicom():
        x = tf.numpy_function(_decode_raw_dicom, [path], tf.float32, stateful=False)
        return tf.reshape(x, tf.concat([tf.shape(x)[:2], [1]], 0))

    if raw_dicom is False:
        out = image()
    else:
        out = tf.cond(raw_dicom, dicom, image)
    out.set_shape((None, None, 1))
    return out


def _to_model_input(image: tf.Tensor, config: PipelineConfig) -> tf.Tensor:
    return resize_keep_aspect(image, config.image_size, mode=config.resize_mode)


def _finish(
    ds: tf.data.Dataset,
    n: int,
    has_labels: bool,
    load,
    config,
    *,
    skip_errors: bool = False,
    batched: bool = False,
) -> tf.data.Dataset:
    """Shuffle (cheap items) -> repeat -> decode -> batch -> augment + preprocess -> prefetch.
    ``batched``: ``load`` takes a batch of items: shuffle -> batch -> repeat -> load, one op per
    batch, and every pass over the data is its own batches (a batch never holds one image twice
    from two passes, as one straddling a pass boundary could; SimCLR would see a false negative)."""
    if config.shuffle:
        ds = ds.shuffle(max(n, 1), seed=config.seed, reshuffle_each_iteration=True)
    if batched:
        ds = ds.batch(config.batch_size, drop_remainder=config.drop_remainder)
        ds = ds.repeat() if config.repeat else ds
        ds = ds.map(load, num_parallel_calls=AUTOTUNE)
    else:
        ds = ds.repeat() if config.repeat else ds
        ds = ds.map(load, num_parallel_calls=AUTOTUNE)
        if skip_errors:
            ds = ds.ignore_errors(log_warning=True)
        ds = ds.batch(config.batch_size, drop_remainder=config.drop_remainder)

    # Images are grey until here, so augment one channel and replicate afterwards: colour
    # saturation, hue and grayscale are no-ops on grey images, and this is ~3x less work.
    norm = get_preprocessor(config.preprocessing)

    def pre(x):
        return norm(tf.image.grayscale_to_rgb(x) if config.channels == 3 else x)

    policy = config.augment_policy
    aug = (
        make_augmenter(policy, image_size=config.image_size, seed=config.seed, channels=1)
        if policy
        else None
    )

    if config.views_in_model:
        post = None  # raw [0, 1] grey batches: view_maker(config) makes the views in the step
    elif config.two_view_policy:
        # the same layer the train step uses with augment_on="model": the same views either way
        views = view_maker(config, output_dtype=AUGMENT_DTYPE)

        def post(x):
            return views(x, training=True), views(x, training=True)
    elif aug is not None:

        def post(x):
            return pre(aug(x, training=True))
    else:
        post = pre

    if post is not None and has_labels:
        ds = ds.map(lambda x, y: (post(x), y), num_parallel_calls=AUTOTUNE)
    elif post is not None:
        ds = ds.map(post, num_parallel_calls=AUTOTUNE)
    ds = ds.prefetch(AUTOTUNE)
    if config.threads:
        options = tf.data.Options()
        options.threading.private_threadpool_size = config.threads
        options.threading.max_intra_op_parallelism = 1
        ds = ds.with_options(options)
    return ds


def view_maker(config: PipelineConfig, *, output_dtype: str | None = None) -> ViewMaker:
    """``config``'s two-view augmentation (policy, seed, channels, preprocessing) as one layer:
    for ``TwoViewSSL(..., augmenter=...)`` when ``config.augment_on == "model"``, and what the
    ``tf.data`` side maps with otherwise. ``output_dtype``: default the global compute dtype."""
    if not config.two_view_policy:
        raise ValueError("view_maker needs a two_view_policy")
    return ViewMaker(
        config.two_view_policy,
        image_size=config.image_size,
        channels=config.channels,
        preprocessing=config.preprocessing,
        seed=config.seed,
        output_dtype=output_dtype,
    )


def build_dataset(
    table: pd.DataFrame,
    config: PipelineConfig | None = None,
    *,
    label_cols: str | Sequence[str] | None = None,
    cache: DecodedCache | None = None,
) -> tf.data.Dataset:
    """``tf.data`` pipeline over a dataset table's ``path`` column (see the module docstring)."""
    config = config or PipelineConfig()
    if "path" not in table.columns:
        raise KeyError("dataset table has no 'path' column")
    paths = [str(p) for p in table["path"]]
    labels = _labels_array(table, label_cols)
    sources, raw, kept, skipped = resolve_sources(paths, config, cache)
    if skipped:
        listing = "\n".join(f"  {p}: {why}" for p, why in skipped.items())
        warnings.warn(
            SkippedFilesWarning(f"skipped {len(skipped)} of {len(paths)} files:\n{listing}"),
            stacklevel=2,
        )
    if not sources:
        raise ValueError(f"no readable files in the table ({len(paths)} rows, all skipped)")

    any_raw = any(raw)
    slices = (tf.constant(sources), tf.constant(raw, tf.bool))
    if labels is not None:
        slices = (*slices, tf.constant(labels[kept]))
    ds = tf.data.Dataset.from_tensor_slices(slices)

    def load(path, is_raw, *y):
        x = _to_model_input(decode_file(path, is_raw if any_raw else False), config)
        return (x, y[0]) if y else x

    # cache_decoded=False: a corrupt DICOM only fails in the graph; drop that element there.
    return _finish(ds, len(sources), labels is not None, load, config, skip_errors=any_raw)


def build_dataset_from_arrays(
    images: np.ndarray, config: PipelineConfig | None = None, *, labels: np.ndarray | None = None
) -> tf.data.Dataset:
    """Same pipeline over in-memory float ``[0, 1]`` images ``(N, H, W)`` (e.g. phantoms).

    The images share one shape, so they are resized once here (not per element and epoch) and
    each batch is one gather of shuffled row numbers: no per-element ``map`` on this path.
    """
    config = config or PipelineConfig()
    images = np.asarray(images, dtype=np.float32)
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    if images.ndim != 3:
        raise ValueError(f"expected images of shape (N, H, W), got {images.shape}")
    n = len(images)
    if images.shape[1:] != (config.image_size, config.image_size) and n:
        images = _resize_all(images, config)
    data = tf.constant(images[..., None])
    ys = None
    if labels is not None:
        ys = tf.constant(np.asarray(labels, dtype=np.float32))
        if ys.shape[0] != n:
            raise ValueError(f"{n} images but {ys.shape[0]} labels")

    def load(rows):
        x = tf.gather(data, rows)
        return (x, tf.gather(ys, rows)) if ys is not None else x

    ds = tf.data.Dataset.range(n)
    return _finish(ds, n, ys is not None, load, config, batched=True)


def _resize_all(images: np.ndarray, config: PipelineConfig) -> np.ndarray:
    """``(N, H, W)`` -> ``(N, S, S)`` by :func:`_to_model_input`, one image at a time."""
    ds = tf.data.Dataset.from_tensor_slices(images[..., None])
    ds = ds.map(lambda x: _to_model_input(x, config)[..., 0], num_parallel_calls=AUTOTUNE)
    return np.concatenate(list(ds.batch(256).as_numpy_iterator())).astype(np.float32)


def load_images(
    table: pd.DataFrame, image_size: int, *, batch_size: int = 64, resize_mode: str = "crop"
) -> np.ndarray:
    """Every image of ``table`` decoded once, in row order: ``(N, S, S)`` float32 in ``[0, 1]``.

    Grayscale, aspect-preserving centre crop and resize to ``image_size`` (``resize_mode="crop"``;
    any mode of :func:`kerassev.transforms.geometry.resize_keep_aspect`), no preprocessing: the in-memory form recipes keep and feed to :func:`build_dataset_from_arrays`.
    Raises :class:`ValueError` when files could not be read (each is named in the
    :class:`SkippedFilesWarning` issued before), since the array would no longer match the table.
    """
    config = PipelineConfig(
        image_size=image_size,
        channels=1,
        preprocessing="unit",
        batch_size=batch_size,
        shuffle=False,
        resize_mode=resize_mode,
    )
    batches = [np.asarray(b)[..., 0] for b in build_dataset(table, config)]
    images = np.concatenate(batches).astype(np.float32)
    if len(images) != len(table):
        raise ValueError(
            f"{len(table) - len(images)} of {len(table)} images could not be read "
            "(see the SkippedFilesWarning above); fix or drop them from the table first"
        )
    return images

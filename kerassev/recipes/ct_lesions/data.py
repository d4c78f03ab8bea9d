"""ct_lesions slices in memory, letterboxed model inputs and padded training batches.

Each slice keeps its original size for evaluation; the model sees it letterboxed: scaled so its
longer side is ``image_size`` (aspect kept) and zero-padded at the bottom / right. Ground-truth
instances (:func:`kerassev.data.instances.instances_from_label_map`) are found at the original
resolution, so the 10x10 px rule is the paper's, then resized with the image (nearest); an
instance that vanishes at a small ``image_size`` is dropped from training only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf
from PIL import Image

from kerassev.data.instances import Instances, boxes_of, class_names, instances_from_label_map
from kerassev.data.loaders import load_ct_lesions

from .config import CtLesionsConfig


class UnreadableSliceError(ValueError):
    """A slice or GT mask file that cannot be decoded (the message names it)."""


@dataclass
class Slice:
    slice_id: int
    path: str
    image: np.ndarray  # (H, W) float32 in [0, 1]
    instances: Instances


def read_gray(path: str | Path) -> np.ndarray:
    """A PNG/JPEG slice as ``(H, W)`` float32 in [0, 1]; errors name the file."""
    try:
        with Image.open(path) as im:
            arr = np.asarray(im.convert("L"), np.float32) / 255.0
    except (OSError, ValueError) as err:
        raise UnreadableSliceError(f"{path}: not a readable image ({err})") from err
    return arr


def read_label_map(path: str | Path) -> np.ndarray:
    """A GT mask PNG's palette indices ``(H, W)`` (0/1/2, see the data README); errors name it."""
    try:
        with Image.open(path) as im:
            return np.asarray(im)
    except (OSError, ValueError) as err:
        raise UnreadableSliceError(f"{path}: not a readable GT mask ({err})") from err


def load_slices(config: CtLesionsConfig) -> dict[str, list[Slice]]:
    """``{"train": [...], "test": [...]}`` slices with their instances (variant of ``config``)."""
    table = load_ct_lesions(config.data_root)
    out: dict[str, list[Slice]] = {"train": [], "test": []}
    for row in table.itertuples():
        inst = instances_from_label_map(
            read_label_map(row.mask_path), variant=config.variant,
            min_size=config.min_lesion_size, ignore_area=config.ignore_area,
        )  # fmt: skip
        out[row.split].append(Slice(int(row.slice_id), row.path, read_gray(row.path), inst))
    if config.train_limit is not None:
        out["train"] = out["train"][: config.train_limit]
    if config.test_limit is not None:
        out["test"] = out["test"][: config.test_limit]
    return out


def intensity_stats(slices: list[Slice]) -> tuple[float, float]:
    """Global mean and standard deviation of all training pixels (paper 05's only preprocessing)."""
    pixels = np.concatenate([s.image.ravel() for s in slices])
    return float(pixels.mean()), float(pixels.std())


def letterbox_scale(shape: tuple[int, int], size: int) -> float:
    return size / max(shape)


def letterbox(image: np.ndarray, size: int, *, nearest: bool = False) -> np.ndarray:
    """``(H, W[, N])`` -> ``(size, size[, N])``: aspect-preserving resize, zero pad bottom/right."""
    scale = letterbox_scale(image.shape[:2], size)
    h, w = (max(1, round(d * scale)) for d in image.shape[:2])
    x = image if image.ndim == 3 else image[..., None]
    method = "nearest" if nearest else "bilinear"
    resized = tf.image.resize(x.astype(np.float32), (h, w), method=method, antialias=not nearest)
    padded = tf.image.pad_to_bounding_box(resized, 0, 0, size, size).numpy()
    return padded if image.ndim == 3 else padded[..., 0]


def unletterbox(masks: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``(D, size, size)`` model-resolution masks back to the slice's ``(D, H, W)``."""
    size = masks.shape[-1]
    scale = letterbox_scale(shape, size)
    h, w = (max(1, round(d * scale)) for d in shape)
    if not len(masks):
        return np.zeros((0, *shape), bool)
    crop = masks[:, :h, :w].transpose(1, 2, 0).astype(np.float32)
    back = tf.image.resize(crop, shape, method="bilinear").numpy()
    return back.transpose(2, 0, 1) >= 0.5


def training_example(s: Slice, size: int, max_instances: int) -> dict[str, np.ndarray]:
    """One slice as a fixed-shape example (ground truth padded to ``max_instances``)."""
    inst = s.instances
    masks = np.zeros((max_instances, size, size), np.uint8)
    classes = np.zeros(max_instances, np.int32)
    n = min(len(inst), max_instances)  # instances are largest first: the smallest are cut
    if n:
        small = letterbox(inst.masks[:n].transpose(1, 2, 0).astype(np.float32), size, nearest=True)
        masks[:n] = small.transpose(2, 0, 1) > 0.5
        classes[:n] = inst.classes[:n]
        classes[:n][masks[:n].sum(axis=(1, 2)) == 0] = 0  # vanished at this size
    boxes = boxes_of(masks)
    return {
        "images": letterbox(s.image, size)[..., None],
        "boxes": boxes,
        "classes": classes,
        "masks": masks,
    }


def _flip(example):
    """Horizontal flip of image, masks and boxes (``flips=True`` only; not the paper's)."""
    size = tf.cast(tf.shape(example["images"])[1], tf.float32)
    b = example["boxes"]
    flipped = tf.stack([b[:, 0], size - b[:, 3], b[:, 2], size - b[:, 1]], axis=1)
    valid = example["classes"][:, None] > 0
    return {
        "images": tf.reverse(example["images"], [1]),
        "boxes": tf.where(valid, flipped, b),
        "classes": example["classes"],
        "masks": tf.reverse(example["masks"], [2]),
    }


def example_signature(size: int, max_instances: int) -> dict[str, tf.TensorSpec]:
    """The ``tf.data`` signature of :func:`training_example`'s examples."""
    m = max_instances
    return {
        "images": tf.TensorSpec((size, size, 1), tf.float32),
        "boxes": tf.TensorSpec((m, 4), tf.float32),
        "classes": tf.TensorSpec((m,), tf.int32),
        "masks": tf.TensorSpec((m, size, size), tf.uint8),
    }


def training_dataset(slices: list[Slice], config: CtLesionsConfig) -> tf.data.Dataset:
    """Shuffled, batched fixed-shape examples (built on the fly: masks are large at 512 px)."""
    size, m = config.image_size, config.max_instances
    signature = example_signature(size, m)
    rng = np.random.default_rng(config.seed)

    def gen():  # a new order each epoch, without a shuffle buffer of full-size masks
        for i in rng.permutation(len(slices)):
            yield training_example(slices[i], size, m)

    ds = tf.data.Dataset.from_generator(gen, output_signature=signature)
    if config.flips:
        coin = tf.random.Generator.from_seed(config.seed)
        ds = ds.map(lambda e: tf.cond(coin.uniform(()) < 0.5, lambda: _flip(e), lambda: e))
    return ds.batch(config.batch_size, drop_remainder=True).prefetch(2)


def describe(slices: dict[str, list[Slice]], config: CtLesionsConfig) -> str:
    n = {k: sum(len(s.instances) for s in v) for k, v in slices.items()}
    return (
        f"ct_lesions (Inf-Net / MedSeg real CT slices): {len(slices['train'])} train / "
        f"{len(slices['test'])} test slices, {n['train']} / {n['test']} lesion instances "
        f"({config.variant!r} variant: {', '.join(class_names(config.variant))}; components with a "
        f"bounding-box side under {config.min_lesion_size} px or area <= {config.ignore_area} "
        "px dropped)"
    )

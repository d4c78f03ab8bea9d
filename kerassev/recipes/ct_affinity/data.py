"""Paper 05's two data sets here: labelled CT phantoms and the real ct_lesions slices.

* **Classification + segmentation**: CT phantoms (:mod:`kerassev.data.phantoms.ct`), class-balanced
  (the paper's 1,000 slices per class), rendered at the model's size, each with its lesion masks
  (GGO and consolidation merged into one "lesion" class, SPEC §05) and its image class;
* **segmentation only**: the real ct_lesions slices (Inf-Net / MedSeg), with lesion masks but no
  COVID / CP / Normal label: they train with label -1 (no image loss, see
  :meth:`AffinityMaskRCNN.image_loss`) and are scored by segmentation AP alone;
* **classification only** (``cncb_root`` set, the paper's data): COVIDx CT-1 slices from a CNCB
  image folder (:func:`kerassev.data.loaders.covidx_ct.load_covidx_ct_cncb`: 1,000 per class,
  the full test split), cropped to their body boxes, read on the fly; they carry no lesion masks,
  so their segmentation losses are off (``segmented`` 0) and phantoms are not used.

Training phantoms are drawn on the fly (3,000 slices at 512 px with their masks would not fit in
memory); test phantoms are kept for evaluation. Seeds of the train, test and generalisation
phantoms never overlap.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import tensorflow as tf

from kerassev.config import DataNotFoundError
from kerassev.data.instances import instances_from_label_map
from kerassev.data.loaders.covidx_ct import load_covidx_ct_cncb, read_body_crop
from kerassev.data.phantoms.ct import ct_phantom
from kerassev.models.detection.affinity_model import IMAGE_CLASSES
from kerassev.recipes.ct_lesions.config import CtLesionsConfig
from kerassev.recipes.ct_lesions.data import (
    Slice,
    example_signature,
    intensity_stats,
    load_slices,
    training_example,
)

from .config import CLASS_NAMES, CtAffinityConfig

NO_LABEL = -1  # a segmentation-only slice
_SPLIT_CODE = {"train": 0, "test": 1, "generalise_train": 2, "generalise_test": 3}


@dataclass(frozen=True)
class PhantomSpec:
    kind: str
    seed: int

    @property
    def label(self) -> int:
        return IMAGE_CLASSES.index(self.kind)


def phantom_specs(config: CtAffinityConfig, split: str, n_per_class: int, kinds=IMAGE_CLASSES):
    """Class-balanced phantom specs of ``split``, kinds interleaved (deterministic by seed)."""
    base = (config.seed * 7 + _SPLIT_CODE[split]) * 100003
    return [PhantomSpec(kind, base + i) for i in range(n_per_class) for kind in kinds]


def phantom_slice(spec: PhantomSpec, config: CtAffinityConfig, slice_id: int = 0) -> Slice:
    p = ct_phantom(spec.kind, spec.seed, config.image_size)
    inst = instances_from_label_map(
        p.label_map, variant="lesion", min_size=config.phantom_min_lesion_size
    )
    return Slice(slice_id, f"phantom_{spec.kind}_{spec.seed}.png", p.image, inst)


@dataclass(frozen=True)
class CovidxSlice:
    """A COVIDx CT-1 slice in a CNCB folder: class label, body box, no lesion masks."""

    path: str
    filename: str
    box: tuple[int, int, int, int]  # xmin, ymin, xmax, ymax
    label: int  # index into IMAGE_CLASSES

    def image(self) -> np.ndarray:
        xmin, ymin, xmax, ymax = self.box
        row = {"path": self.path, "xmin": xmin, "ymin": ymin, "xmax": xmax, "ymax": ymax}
        return read_body_crop(row)

    def slice(self) -> Slice:
        image = self.image()
        empty = instances_from_label_map(np.zeros(image.shape, np.uint8), variant="lesion")
        return Slice(0, self.path, image, empty)


#: COVIDx label_index (0 Normal, 1 Pneumonia, 2 COVID-19) -> IMAGE_CLASSES (covid, cp, normal).
COVIDX_TO_IMAGE_CLASS = {0: 2, 1: 1, 2: 0}


def covidx_slices(table) -> list[CovidxSlice]:
    return [
        CovidxSlice(r.path, r.filename, (int(r.xmin), int(r.ymin), int(r.xmax), int(r.ymax)),
                    COVIDX_TO_IMAGE_CLASS[int(r.label_index)])
        for r in table.itertuples()
    ]  # fmt: skip


@dataclass
class AffinityData:
    train: list[PhantomSpec]
    test: list[Slice]  # phantoms, in the order of test_labels
    test_labels: np.ndarray
    lesion_train: list[Slice] = field(default_factory=list)
    lesion_test: list[Slice] = field(default_factory=list)
    lesion_note: str = ""  # why the real slices are missing, when they are
    covidx_train: list[CovidxSlice] = field(default_factory=list)
    covidx_test: list[CovidxSlice] = field(default_factory=list)
    covidx_missing: list[str] = field(default_factory=list)
    mean: float = 0.0
    std: float = 1.0

    @property
    def covidx(self) -> bool:
        return bool(self.covidx_test)

    def describe(self) -> str:
        counts = ", ".join(
            f"{n} {int((self.test_labels == i).sum())}" for i, n in enumerate(CLASS_NAMES)
        )
        if self.covidx:
            text = (
                f"COVIDx CT-1 slices from a CNCB folder, cropped to their body boxes: "
                f"{len(self.covidx_train)} training ({len(self.covidx_train) // 3} per class, "
                f"seeded), {len(self.covidx_test)} test ({counts})"
                + (f", {len(self.covidx_missing)} listed slices missing and skipped"
                   if self.covidx_missing else "")
            )  # fmt: skip
        else:
            text = (
                f"CT phantoms (seeded, lesion masks; COVID-like bilateral GGO, CP-like lobar "
                f"consolidation, normal): {len(self.train)} training slices "
                f"({len(self.train) // 3} per class), {len(self.test)} test ({counts})"
            )
        if self.lesion_train or self.lesion_test:
            n_train = sum(len(s.instances) for s in self.lesion_train)
            n_test = sum(len(s.instances) for s in self.lesion_test)
            text += (
                f"; real ct_lesions CT slices (Inf-Net / MedSeg, no image class: segmentation "
                f"only): {len(self.lesion_train)} train / {len(self.lesion_test)} test slices, "
                f"{n_train} / {n_test} lesions"
            )
        else:
            text += f"; real ct_lesions slices not used ({self.lesion_note})"
        return text


def load_data(config: CtAffinityConfig) -> AffinityData:
    """Phantom specs and test slices, the real lesion slices (when present) and the global
    intensity mean / std of a sample of training slices."""
    if config.cncb_root is not None:
        data = _covidx_data(config)
    else:
        train = phantom_specs(config, "train", config.train_per_class)
        test_specs = phantom_specs(config, "test", config.test_per_class)
        test = [phantom_slice(s, config, i + 1) for i, s in enumerate(test_specs)]
        data = AffinityData(train, test, np.array([s.label for s in test_specs], np.int64))
    if config.lesion_slices:
        lesion_config = CtLesionsConfig(
            data_root=config.data_root,
            variant="lesion",
            min_lesion_size=config.min_lesion_size,
            ignore_area=0,  # the side rule only: the affinity repo's dataset code is not at hand
            train_limit=config.lesion_train_limit,
            test_limit=config.lesion_test_limit,
        )
        try:
            real = load_slices(lesion_config)
            data.lesion_train, data.lesion_test = real["train"], real["test"]
        except DataNotFoundError as err:
            if config.data_root is not None:  # asked for by name: an error, not a skip
                raise
            data.lesion_note = f"not found: {err}"  # the phantom part runs on: skip and report
    else:
        data.lesion_note = "lesion_slices=False"
    n_more = max(1, config.stats_sample - len(data.lesion_train))
    if data.covidx:
        sample = [c.slice() for c in data.covidx_train[:n_more]] + data.lesion_train
    else:
        sample = [phantom_slice(s, config) for s in data.train[:n_more]] + data.lesion_train
    data.mean, data.std = intensity_stats(sample)
    return data


def _covidx_data(config: CtAffinityConfig) -> AffinityData:
    table, missing = load_covidx_ct_cncb(
        config.cncb_root, config.covidx_root, train_per_class=config.train_per_class,
        seed=config.seed, missing=config.covidx_missing,
    )  # fmt: skip
    test = table[table["split"] == "test"]
    if config.covidx_test_limit is not None and config.covidx_test_limit < len(test):
        test = test.sample(config.covidx_test_limit, random_state=config.seed).sort_index()
    train, test = covidx_slices(table[table["split"] == "train"]), covidx_slices(test)
    labels = np.array([c.label for c in test], np.int64)
    return AffinityData(
        [], [], labels, covidx_train=train, covidx_test=test, covidx_missing=missing
    )


def training_items(data: AffinityData) -> list:
    """Every training slice: a phantom spec (drawn on the fly), a COVIDx slice (read on the fly)
    or a real lesion :class:`Slice`."""
    return [*data.train, *data.covidx_train, *data.lesion_train]


def train_labels(data: AffinityData) -> list[int]:
    return [s.label for s in (data.covidx_train if data.covidx else data.train)]


def _example(item, config: CtAffinityConfig) -> dict[str, np.ndarray]:
    segmented = 1
    if isinstance(item, PhantomSpec):
        s, label = phantom_slice(item, config), item.label
    elif isinstance(item, CovidxSlice):  # no lesion masks: the segmentation losses are off
        s, label, segmented = item.slice(), item.label, 0
    else:
        s, label = item, NO_LABEL
    ex = training_example(s, config.image_size, config.max_instances)
    ex["label"] = np.int32(label)
    ex["segmented"] = np.int32(segmented)
    return ex


def training_dataset(items: list, config: CtAffinityConfig, *, seed: int) -> tf.data.Dataset:
    """Shuffled (a new order each epoch), batched fixed-shape examples with their ``label``."""
    signature = {
        **example_signature(config.image_size, config.max_instances),
        "label": tf.TensorSpec((), tf.int32),
        "segmented": tf.TensorSpec((), tf.int32),
    }
    rng = np.random.default_rng(seed)

    def gen():
        for i in rng.permutation(len(items)):
            yield _example(items[i], config)

    ds = tf.data.Dataset.from_generator(gen, output_signature=signature)
    return ds.batch(config.batch_size, drop_remainder=True).prefetch(2)


def generalisation_sets(config: CtAffinityConfig):
    """The 2-class (Negative vs COVID-19) fine-tuning set, as the paper's iCTCF step: new
    phantoms of the covid and normal kinds. Negative takes the Normal logit (the paper changes
    nothing in the model). Returns ``(train specs, test slices, test labels (1 = COVID))``."""
    kinds = ("covid", "normal")
    train = phantom_specs(config, "generalise_train", config.generalise_train_per_class, kinds)
    specs = phantom_specs(config, "generalise_test", config.generalise_test_per_class, kinds)
    test = [phantom_slice(s, config, i + 1) for i, s in enumerate(specs)]
    labels = np.array([int(s.kind == "covid") for s in specs], np.int64)
    return train, test, labels

"""Paper 05 (Ter-Sarkisov 2021) as data: the affinity model on CT phantoms and real lesion slices.

``paper``: the paper's values (SPEC §05): Adam lr 1e-5, weight decay 1e-3, batch 1, 100 epochs,
A = 256 affinities, RoI batch B = 8, NMS 0.25, N = 3 sieve stages, a ResNet-50-FPN at 512 px,
3,000 class-balanced training slices (1,000 per class; here phantoms), the A sweep
{32, 64, 128, 256, 512} and the 20-epoch 2-class fine-tuning (iCTCF, here phantoms); where the
paper is silent, the author's COVID-Affinity-Model AffinityModel defaults (issue 19 fault 4:
``head_settings="author"``, RPN top-n 400 / 200, RPN NMS 0.75) and PyTorch's coupled Adam decay.
``cpu``: a real result on two CPU cores in about 45 minutes: 128-px phantoms (600 training,
300 test), the tiny backbone from random init, the paper's A = 256, B = 8, N = 3, no A sweep.
``smoke``: a 64-px tiny backbone, a handful of slices and 2 epochs, for CI.
Paper figures are targets in ``paper:`` columns, never our results (their data are CNCB-NCOV).
"""

from __future__ import annotations

from dataclasses import dataclass

from kerassev.recipes.ct_lesions.config import WEIGHT_DECAY_KINDS, DetectorSettings
from kerassev.recipes.settings import RunSettings

RUN_KIND = "ct_affinity"
PRESETS = ("smoke", "cpu", "paper")
CLASS_NAMES = ("COVID", "CP", "Normal")  # index order of IMAGE_CLASSES (covid, cp, normal)
NEGATIVE_CLASS = 2  # Normal: its "sensitivity" is the true-negative rate (paper 05 Table 5)

#: Paper 05 Table 5 / §4 text (CNCB-NCOV COVIDx-CT test split, 21,192 slices), in [0, 1].
#: The abstract gives F1 91.94 % for A = 256, the conclusion 91.71 %; SPEC §05 keeps 91.94 %.
PAPER_CLASSIFICATION = {
    256: {"Sens (COVID)": 0.9174, "Sens (CP)": 0.8535, "TNR (Normal)": 0.9726, "F1 (weighted)": 0.9194},
    128: {"Sens (COVID)": 0.8691, "Sens (CP)": 0.9565, "F1 (weighted)": 0.9380},
}  # fmt: skip
#: Paper 05 Table 4: segmentation mAP@[0.5:0.95] of the A = 64 model (CNCB-NCOV lesion slices).
PAPER_SEGM_AP = {64: 0.42}
PAPER_SOURCE = "Ter-Sarkisov 2021 (paper 05), Tables 4-5, CNCB-NCOV (other data): targets, not ours"


@dataclass(frozen=True)
class CtAffinityConfig(DetectorSettings, RunSettings):  # + the detector's fields
    # data: CT phantoms (three classes, lesion masks) + real ct_lesions slices (segmentation only)
    data_root: str | None = None  # the ct_lesions folder (default $KERASSEV_DATA/ct_lesions)
    lesion_slices: bool = True  # train / evaluate segmentation on the real slices when present
    train_per_class: int = 1000  # paper: 3,000 training slices, 1,000 per class
    test_per_class: int = 300
    lesion_train_limit: int | None = None  # first N real training slices (smoke)
    lesion_test_limit: int | None = None
    # COVIDx CT-1 from your CNCB image folder (<CLASS>/<patient>/<scan>/<slice>.png|jpg): when
    # set, classification trains on train_per_class body-cropped slices per class and is scored
    # on the test split (the paper's data) instead of phantoms; they carry no lesion masks.
    cncb_root: str | None = None
    covidx_root: str | None = None  # split files (default $KERASSEV_DATA/covidx_ct)
    covidx_missing: str = "error"  # or "skip": leave missing slices out and report them
    covidx_test_limit: int | None = None  # a seeded sample of the test split (None: all 21,191)
    min_lesion_size: int = 10  # px at 512 px (paper): smaller lesions go to background

    stats_sample: int = (
        300  # slices whose pixels give the global mean / std (paper's only preprocessing)
    )
    # affinity model (AffinityConfig)
    affinities: int = 256  # A
    lesion_batch: int = 8  # B: RoIs selected per image for the classifier
    roi_nms: float = 0.25
    sieve_stages: int = 3  # N
    feature_channels: int = 256  # C of the lesion-mask features (8 x 256 x 28 x 28)
    hidden: int = 128  # the two FC layers (not given in the paper; the author's code: 128)
    vectorise: str = "conv"  # the author's conv vectorisation (affinity.py); "mean" to compare
    affinity_init: str = "normal"  # W1, w2 ~ N(0, 1) as the author's; "glorot"
    # training (Algorithm 1)
    epochs: int = 100
    batch_size: int = 1
    learning_rate: float = 1e-5
    # The paper's PyTorch Adam(weight_decay=1e-3) is coupled L2 (wd * w added to the gradient
    # before Adam's moments): "coupled" (CoupledAdam, issue 19 fault 4); "decoupled" is Keras'
    # Adam(weight_decay=...), AdamW-style (w -= lr * wd * w after the Adam step).
    weight_decay: float = 1e-3
    weight_decay_kind: str = "coupled"
    copy_frequency: str = "epoch"  # DetectionWeightCopy checks the segmentation loss per epoch
    # A sweep (Table 5): every A trained the same way for sweep_epochs
    sweep: tuple[int, ...] = (32, 64, 128, 256, 512)
    sweep_epochs: int = 100
    # generalisation (§4.4, iCTCF: Negative vs COVID-19): fine-tune epochs, 0 to skip
    generalise_epochs: int = 20
    generalise_train_per_class: int = 300  # paper: 600 train+val slices
    generalise_test_per_class: int = 300
    # evaluation
    negative_rule: bool = True  # paper: a lesion-free image scores 1 without detections
    union_score_threshold: float = 0.5
    heatmap_images: int = 1  # test images per class whose X2 is drawn
    seed: int = 0

    def __post_init__(self):
        super().__post_init__()
        if self.copy_frequency not in ("epoch", "batch"):
            raise ValueError(
                f"copy_frequency must be 'epoch' or 'batch', not {self.copy_frequency!r}"
            )
        if self.covidx_missing not in ("error", "skip"):
            raise ValueError(
                f"covidx_missing must be 'error' or 'skip', not {self.covidx_missing!r}"
            )
        if self.train_per_class < 1 or self.test_per_class < 1:
            raise ValueError("train_per_class and test_per_class must be at least 1")
        if self.weight_decay_kind not in WEIGHT_DECAY_KINDS:
            raise ValueError(
                f"weight_decay_kind must be one of {WEIGHT_DECAY_KINDS}, "
                f"not {self.weight_decay_kind!r}"
            )

    @classmethod
    def paper(cls, **overrides) -> CtAffinityConfig:
        # The author's AffinityModel: head_settings "author" (the DetectorSettings default) and
        # rpn_pre/post_nms_top_n 400 / 200 at train and test (COVID-Affinity-Model).
        values = dict(rpn_pre_nms_train=400, rpn_post_nms_train=200, rpn_pre_nms_test=400,
                      rpn_post_nms_test=200)  # fmt: skip
        return cls(**{**values, **overrides})

    @classmethod
    def cpu(cls, **overrides) -> CtAffinityConfig:
        """A real result on two CPU cores in about 45 minutes (issue 19): 128-px phantoms,
        the suite's tiny backbone from random init, 600 training / 300 test phantoms + the
        50 real lesion slices, the paper's A, B, N and RPN top-n; no A sweep."""
        values = dict(
            train_per_class=CPU_TRAIN_PER_CLASS,
            test_per_class=100,  # 300 test phantoms: CIs about +-0.05 on the weighted F1
            stats_sample=300,
            image_size=128,
            backbone="tiny",
            backbone_weights=None,
            tiny_width=16,
            fpn_channels=64,
            mask_channels=64,
            feature_channels=64,
            rpn_pre_nms_train=400,
            rpn_post_nms_train=200,
            rpn_pre_nms_test=400,
            rpn_post_nms_test=200,
            # torchvision's sampler at a quarter of its RoI batch, box head at the author's 128
            # (as the ct_lesions cpu preset's sampler, which was measured there)
            head_settings="torchvision",
            representation_size=128,
            roi_batch=128,
            detections_per_image=50,
            anchors="torchvision",  # 8-128 px at 128 px: the phantom lesions are 5-60 px
            epochs=CPU_EPOCHS,
            learning_rate=CPU_LEARNING_RATE,  # 1e-5 moves a random-init model too little here
            weight_decay_kind="decoupled",
            sweep=(),  # each A would retrain the whole model: beyond 45 minutes
            generalise_epochs=2,
            generalise_train_per_class=50,
            generalise_test_per_class=50,
            heatmap_images=2,
        )
        return cls(**{**values, **overrides})

    @classmethod
    def smoke(cls, **overrides) -> CtAffinityConfig:
        values = dict(
            train_per_class=3,
            test_per_class=3,
            lesion_train_limit=3,
            lesion_test_limit=3,
            stats_sample=30,
            image_size=64,
            backbone="tiny",
            backbone_weights=None,
            tiny_width=4,
            fpn_channels=16,
            representation_size=32,
            mask_channels=16,
            rpn_pre_nms_train=100,
            rpn_post_nms_train=50,
            rpn_pre_nms_test=100,
            rpn_post_nms_test=50,
            roi_batch=32,
            max_instances=6,
            detections_per_image=10,
            affinities=32,
            feature_channels=16,
            hidden=16,
            epochs=2,
            learning_rate=1e-3,
            # the main model's A only (its row is reused, no second training): a second A's
            # training and evaluation were a third of the smoke run (issue 23); the recipe test
            # sweeps (32, 64) with --set sweep=32,64
            sweep=(32,),
            sweep_epochs=2,
            generalise_epochs=1,
            generalise_train_per_class=2,
            generalise_test_per_class=3,
            precision="float32",
            anchors="torchvision",  # 8..64 px at 64 px, as before issue 19 (CI speed)
            head_settings="torchvision",  # the smoke model as before issue 19 fault 4
            weight_decay_kind="decoupled",
        )
        return cls(**{**values, **overrides})

    @classmethod
    def from_preset(cls, name: str, **overrides) -> CtAffinityConfig:
        if name not in PRESETS:
            raise ValueError(f"unknown preset {name!r}; choose one of {PRESETS}")
        return getattr(cls, name)(**overrides)

    @property
    def phantom_min_lesion_size(self) -> int:
        """The paper's 10 px at 512 px, scaled to the phantoms' rendering size."""
        return max(2, round(self.min_lesion_size * self.image_size / 512))

    def model_config(self, *, mean: float, std: float):
        """The detector's :class:`MaskRCNNConfig`: one foreground class, "lesion" (SPEC §05).
        ``num_classes`` excludes background (``BoxPredictor`` adds it), as ct_lesions passes 1;
        issue 19 fault 6: 2 made a third, never-trained class whose detections still counted."""
        return self.detector_config(num_classes=1, mean=mean, std=std)

    def affinity_config(self, affinities: int | None = None):
        from kerassev.models.detection.affinity_model import AffinityConfig

        return AffinityConfig(
            affinities=affinities or self.affinities,
            sieve_stages=self.sieve_stages,
            roi_batch=self.lesion_batch,
            roi_nms=self.roi_nms,
            feature_channels=self.feature_channels,
            hidden=self.hidden,
            vectorise=self.vectorise,
            affinity_init=self.affinity_init,
        )

    def describe(self) -> str:
        return (
            f"affinity model: Mask R-CNN {self.backbone}-FPN at {self.image_size} px (backbone "
            f"{self.backbone_weights or 'random init'}), A={self.affinities}, B={self.lesion_batch}, "
            f"N={self.sieve_stages} sieve stages, NMS {self.roi_nms}; Adam lr {self.learning_rate:g}, "
            f"{self.weight_decay_kind} weight decay {self.weight_decay:g}, batch {self.batch_size}, "
            f"{self.epochs} epochs, seed {self.seed}"
        )


#: cpu preset sizes (docs/results/ct_affinity_cpu.md): 650 steps an epoch at ~0.1-0.2 s each on two
#: busy cores. lr 1e-4 and the author's N(0, 1) W1 / w2 were chosen on 3-epoch probes with seed 1
#: (phantoms disjoint from seed 0's test split): Glorot at 1e-3 and batch 4 did no better there.
CPU_TRAIN_PER_CLASS = 200
CPU_EPOCHS = 16
CPU_LEARNING_RATE = 1e-4

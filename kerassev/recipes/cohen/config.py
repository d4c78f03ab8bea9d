"""Paper 03 (Cohen et al. 2020) as data: the targets, the paper's Table 1 and the configuration.

``CohenConfig.paper()`` is the paper's protocol (50 patient-grouped ~50/50 splits of the 94
scored images); ``CohenConfig.smoke()`` shrinks only image size and SimSiam epochs. Sources:
SPEC.md section 03 and the paper's Table 1.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from kerassev.recipes.settings import RunSettings
from kerassev.recipes.ssl_pretraining import EncoderSpec, SSLStage

RUN_KIND = "cohen"


def method_label(method: str) -> str:
    from kerassev.models.ssl import METHOD_LABELS  # the model package is heavy; config is not

    return METHOD_LABELS.get(method, method)


BACKBONE_NAMES = {
    "resnet50": "ResNet-50",
    "resnet18": "ResNet-18",
    "tiny_cnn": "tiny CNN (test stand-in)",
}


def backbone_label(backbone: str) -> str:
    """The human name of a backbone, for row labels."""
    return BACKBONE_NAMES.get(backbone, backbone)


@dataclass(frozen=True)
class Target:
    column: str  # dataset-table label column
    short: str  # column prefix in tables
    title: str  # the paper's name for the task
    score_range: tuple[float, float]


TARGETS: tuple[Target, ...] = (
    Target("opacity_mean", "opacity", "Opacity Score", (0.0, 6.0)),
    Target("geographic_mean", "extent", "Geographic Extent", (0.0, 8.0)),
)
TARGET_BY_COLUMN = {t.column: t for t in TARGETS}

#: Column labels of the Table-1 metrics, in the paper's order.
METRIC_LABELS = {"pearson": "r", "r2": "R2", "mae": "MAE", "mse": "MSE"}

NO_DATA = "no_data"
#: Paper 03 feature sets of the XRV DenseNet (keys of ``xrv_densenet.feature_sets``) + no data.
FEATURE_SET_LABELS = {
    "lung_opacity": '"lung opacity" output',
    "4": "4 outputs (lung opacity, pneumonia, infiltration, consolidation)",
    "18": "18 outputs",
    "1024": "intermediate network features (1024-d)",
    "pooled": "pooled backbone features",
    NO_DATA: "no data (intercept only)",
}

#: Paper 03 Table 1: {target column: {feature set: {metric: (mean, std)}}}, TorchXRayVision
#: DenseNet features, 94 images, 50 splits. Targets for comparison, never our results.
PAPER_TABLE1: dict[str, dict[str, dict[str, tuple[float, float]]]] = {
    "opacity_mean": {
        "lung_opacity": {
            "pearson": (0.78, 0.04),
            "r2": (0.58, 0.09),
            "mae": (0.78, 0.05),
            "mse": (0.86, 0.11),
        },
        "4": {
            "pearson": (0.78, 0.04),
            "r2": (0.58, 0.09),
            "mae": (0.76, 0.05),
            "mse": (0.87, 0.12),
        },
        "18": {
            "pearson": (0.73, 0.09),
            "r2": (0.44, 0.16),
            "mae": (0.86, 0.11),
            "mse": (1.15, 0.33),
        },
        "1024": {
            "pearson": (0.66, 0.08),
            "r2": (0.25, 0.21),
            "mae": (1.01, 0.09),
            "mse": (1.54, 0.28),
        },
        NO_DATA: {
            "pearson": (-0.00, 0.00),
            "r2": (-0.08, 0.10),
            "mae": (1.24, 0.10),
            "mse": (2.26, 0.36),
        },
    },
    "geographic_mean": {
        "lung_opacity": {
            "pearson": (0.80, 0.05),
            "r2": (0.60, 0.09),
            "mae": (1.14, 0.11),
            "mse": (2.06, 0.34),
        },
        "4": {
            "pearson": (0.79, 0.05),
            "r2": (0.57, 0.10),
            "mae": (1.19, 0.11),
            "mse": (2.17, 0.37),
        },
        "18": {
            "pearson": (0.76, 0.08),
            "r2": (0.47, 0.16),
            "mae": (1.32, 0.17),
            "mse": (2.73, 0.89),
        },
        "1024": {
            "pearson": (0.74, 0.08),
            "r2": (0.43, 0.16),
            "mae": (1.36, 0.13),
            "mse": (2.88, 0.58),
        },
        NO_DATA: {
            "pearson": (0.00, 0.00),
            "r2": (-0.08, 0.10),
            "mae": (2.00, 0.17),
            "mse": (5.60, 0.95),
        },
    },
}
PAPER_SOURCE = (
    "Cohen et al. 2020 (Cureus 12(7): e9448), Table 1: XRV DenseNet-121, 94 images, 50 splits"
)
#: The "# parameters" column of the paper's Table 1 (features + intercept).
PAPER_PARAMS = {"lung_opacity": "1+1", "4": "4+1", "18": "18+1", "1024": "1024+1", NO_DATA: "0+1"}


@dataclass(frozen=True)
class SSLConfig:
    """Self-supervised pretraining of the substitute encoder (not part of paper 03).

    Defaults reuse SPEC 01's SimSiam recipe where it applies (cosine-decayed SGD, lr 0.02,
    momentum 0.6, "mrale" augmentation without random crop, 2048-d projector, 512 bottleneck
    predictor); the whole random-init backbone is trained (a cold start has nothing to freeze).
    ``method`` picks any of :data:`kerassev.models.ssl.METHODS` instead of SimSiam.
    """

    image_size: int = 224
    epochs: int = 35
    batch_size: int = 32
    learning_rate: float = 0.02
    momentum: float = 0.6
    augmentation: str = "mrale"
    projection_dim: int = 2048
    predictor_hidden: int = 512
    method: str = "simsiam"

    def stage(self) -> SSLStage:
        """The single stage: the whole backbone trains (``train="all"``)."""
        return SSLStage(
            epochs=self.epochs, lr=self.learning_rate, momentum=self.momentum, train="all"
        )

    def encoder_spec(self, backbone: str) -> EncoderSpec:
        return EncoderSpec(
            method=self.method,
            backbone=backbone,
            image_size=self.image_size,
            projection_dim=self.projection_dim,
            predictor_hidden=self.predictor_hidden,
        )


@dataclass(frozen=True)
class CohenConfig(RunSettings):  # + precision, distribution
    """Everything that decides a paper-03 reproduction. ``paper()`` / ``smoke()`` presets."""

    preset: str = "paper"
    data_root: str | None = None  # covid_chestxray folder; None: $KERASSEV_DATA/covid_chestxray
    n_splits: int = 50
    test_fraction: float = 0.5
    seed: int = 0
    targets: tuple[str, ...] = ("opacity_mean", "geographic_mean")
    xrv_checkpoint: str | None = None
    imagenet_weights: str | None = None
    backbone: str = "resnet50"
    resnet_image_size: int = 224  # input size of the ResNet-50 encoders (SimSiam, random, ImageNet)
    random_control: bool = True
    ssl: SSLConfig | None = field(default_factory=SSLConfig)
    batch_size: int = 16  # feature extraction
    figure_split: int = 0  # the split whose held-out half the scatter and saliency figures show
    figure_row: str = "auto"  # "<encoder>/<feature set>", or auto (see choose_figure_row)
    saliency_examples: int = 2  # well- and badly-predicted held-out images each
    tsne_perplexity: float = 30.0

    @classmethod
    def paper(cls, **overrides) -> CohenConfig:
        return dataclasses.replace(cls(), **overrides)

    @classmethod
    def smoke(cls, **overrides) -> CohenConfig:
        """Small images, ResNet-18 with a 512-d projector and a 2-epoch SimSiam; the 50 splits
        stay (OLS is cheap). The backbone is the wall time's bulk on two CPU cores: ResNet-18
        has half ResNet-50's FLOPs and a quarter of its weights to checkpoint every epoch."""
        base = cls(
            preset="smoke",
            precision="float32",
            backbone="resnet18",
            resnet_image_size=64,
            ssl=SSLConfig(
                image_size=64, epochs=2, batch_size=32, projection_dim=512, predictor_hidden=128
            ),
        )
        return dataclasses.replace(base, **overrides)

    @classmethod
    def from_preset(cls, preset: str, **overrides) -> CohenConfig:
        if preset not in ("paper", "smoke"):
            raise ValueError(f"unknown preset {preset!r}; choose 'paper' or 'smoke'")
        return getattr(cls, preset)(**overrides)

    def describe(self) -> str:
        """One line naming the data and configuration, for captions."""
        parts = [
            f"preset={self.preset}",
            f"{self.n_splits} patient-grouped splits (test fraction {self.test_fraction}, seed {self.seed})",
        ]
        if self.ssl is not None:
            s = self.ssl
            parts.append(f"{method_label(s.method)} {s.image_size}px x {s.epochs} epochs")
        return "; ".join(parts)

"""Paper 01 (Liang et al. 2023) as data: every number the paper fixes is a default here.

``MraleConfig.paper()`` is the paper's recipe; ``MraleConfig.smoke()`` shrinks image size, data
and epochs (and gives the head more epochs, see there) so CI and the notebook run it on two CPU
cores in minutes.
Sources: SPEC.md section 01 and the paper's §2.1-3.2.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from kerassev.recipes.settings import RunSettings

# One SSL stage; defined with the shared pre-training, re-exported here for run.json configs.
from kerassev.recipes.ssl_pretraining import EncoderSpec, SSLStage

COMPARATORS = ("ssl_imagenet", "ssl_scratch", "resnet50_scratch")
#: Human-readable comparator names, as in the paper's Table 1.
COMPARATOR_LABELS = {
    "ssl_imagenet": "Self-supervised contrastive regressor (pretrain, ImageNet start)",
    "ssl_scratch": "Self-supervised contrastive regressor (scratch start)",
    "resnet50_scratch": "ResNet-50 regressor (from scratch, no SSL)",
    "ssl_subscores": "SSL encoder + sub-score head, mRALE derived (beyond the paper)",
    "mean": "Mean predictor (baseline)",
    "median": "Median predictor (baseline)",
}
#: Paper Table 1, with the MSE/MAE header swap corrected (SPEC 01). Targets, never our results.
PAPER_TABLE1 = {
    "ssl_imagenet": {
        "MAE": "5.05 (5.03-5.08)",
        "MSE": "66.67 (66.29-67.06)",
        "Spearman": "0.77 (0.75-0.79)",
    },
    "ssl_scratch": {
        "MAE": "5.71 (5.68-5.76)",
        "MSE": "71.25 (70.66-71.84)",
        "Spearman": "0.52 (0.45-0.59)",
    },
    "resnet50_scratch": {
        "MAE": "5.49 (5.39-5.58)",
        "MSE": "70.09 (69.00-71.18)",
        "Spearman": "0.57 (0.51-0.65)",
    },
}


@dataclass(frozen=True)
class MraleConfig(RunSettings):  # + precision, distribution
    # data (§2.3): 224x224, 3 channels, ImageNet preprocessing
    image_size: int = 224
    # §2.3 says only "resized to 224x224". Default "crop": square centre crop, then resize, so
    # lungs keep their proportions whatever a radiograph's aspect ratio (portable APs vary);
    # "stretch" is the literal reading, a plain resize that distorts non-square images.
    # (Phantoms are square: both give the same pixels.)
    resize_mode: str = "crop"
    batch_size: int = 32  # not stated in the paper; 32 fits a 16 GB T4 at 224 px
    n_folds: int = 5
    seed: int = 0
    # phantoms stand in when no MIDRC images are given (the MIDRC images need credentials)
    phantom_patients: int = 900
    phantom_timepoints: tuple[int, int] = (1, 5)
    # self-supervised stage (§2.1, §3.1; SPEC 01). It runs once on every image of the data set,
    # test folds included but never their labels, as the paper's single SSL encoder implies.
    augment_policy: str = "mrale"  # flip, colour jitter, colour drop; no crop
    # SimSiam is the paper's; any of kerassev.models.ssl.METHODS trains the same encoder instead
    ssl_method: str = "simsiam"
    # §2.1's ResNet-50; any name in kerassev.models.backbones.BACKBONES trains instead (the smoke
    # preset's smaller one has no ImageNet weights, so its ssl_imagenet row is skipped)
    backbone: str = "resnet50"
    projection_dim: int = 2048
    predictor_hidden: int = 512
    l2: float = 1e-3
    ssl_stage_a: SSLStage = field(default_factory=lambda: SSLStage(epochs=15, train="head"))
    ssl_stage_b: SSLStage = field(default_factory=lambda: SSLStage(epochs=20, train=20))
    # regression stage (§3.2): Dense(256)+BN, Dense(256)+BN, Dense(1)
    head_units: tuple[int, ...] = (256, 256)
    # "two dense layers with 256 neurons followed by batch normalization" names no activation;
    # default "relu" after each BN (a purely linear stack would collapse to one linear map);
    # "none" is the literal reading.
    head_activation: str = "relu"
    # Output bias starts at the training fold's mean mRALE (our choice, not the paper's: the
    # head then learns deviations and converges in far fewer epochs); False: Keras' zero init.
    head_bias_at_mean: bool = True
    head_epochs: int = 20
    head_lr: float = 1e-3  # paper names no optimiser: Adam 1e-3 (SPEC 01)
    finetune_epochs: int = 15
    finetune_lr: float = 1e-5
    finetune_unfreeze_top: int = 20
    # ResNet-50 from scratch (comparator c) trains end to end; the paper gives no schedule, so
    # by default it gets the SSL regressors' budget: ``scratch_epochs`` at head_lr, then fine-tune.
    scratch_epochs: int = 20
    # comparators (§3.2) and the beyond-the-paper sub-score head
    comparators: tuple[str, ...] = COMPARATORS
    subscore_head: bool = True
    # REPORT.md calls an SSL encoder "collapsed" when its collapse monitor (z_std_ratio, ~1
    # healthy, 0 collapsed) ends below this at the last SSL epoch
    collapse_threshold: float = 0.1
    # explainability: Grad-CAM on held-out images of these comparators
    gradcam_max_images: int = 64
    # A fold's stage checkpoints (weights + optimiser, ~375 MB each for ResNet-50 with Adam) are
    # deleted once its out-of-fold predictions are saved; fold 0's final weights are kept in
    # models/ for the export. True keeps every checkpoint (about 7 GB for the smoke preset).
    keep_fold_checkpoints: bool = False
    preset: str = "paper"

    @classmethod
    def paper(cls, **overrides) -> MraleConfig:
        return dataclasses.replace(cls(), **overrides)

    @classmethod
    def smoke(cls, **overrides) -> MraleConfig:
        """Shrinks image size, data, network and SSL/fine-tune/scratch epochs; the schedule's
        shape (stages, folds, comparators, head) is kept. The network is the suite's tiny CNN
        with a 256-d projector: ResNet-50 at 64 px, its per-epoch checkpoints (weights + Adam,
        ~280 MB each) and its export made up most of the smoke run's 14 minutes on two CPU
        cores (issue 23), and the smoke run shows the story and checks the wiring, not
        ResNet-50's numbers (no ImageNet weights for it, so ssl_imagenet is skipped).
        One epoch count grows: ``head_epochs`` 20 -> 30, because ~100 phantom
        images give a fold only ~5 head steps per epoch of batch 16 (the paper's 2,599 images
        at batch 32: ~65), and the head trains on precomputed embeddings, so the extra epochs
        cost little. Precision is pinned to float32 (see ``precision``)."""
        smoke = dataclasses.replace(
            cls(),
            backbone="tiny_cnn",
            projection_dim=256,
            predictor_hidden=64,
            image_size=64,
            batch_size=16,
            phantom_patients=48,
            phantom_timepoints=(1, 3),
            ssl_stage_a=SSLStage(epochs=2, train="head"),
            ssl_stage_b=SSLStage(epochs=2, train=20),
            head_epochs=30,
            finetune_epochs=1,
            scratch_epochs=3,
            gradcam_max_images=16,
            precision="float32",
            preset="smoke",
        )
        return dataclasses.replace(smoke, **overrides)

    def __post_init__(self):
        if self.resize_mode not in ("crop", "stretch"):
            raise ValueError(f"resize_mode must be 'crop' or 'stretch', got {self.resize_mode!r}")
        if self.head_activation not in ("relu", "none"):
            raise ValueError(
                f"head_activation must be 'relu' or 'none', got {self.head_activation!r}"
            )

    @property
    def head_activation_fn(self) -> str | None:
        """The Keras activation after each head BN (None for the linear reading)."""
        return None if self.head_activation == "none" else self.head_activation

    @classmethod
    def from_preset(cls, preset: str, **overrides) -> MraleConfig:
        if preset not in ("paper", "smoke"):
            raise ValueError(f"unknown preset {preset!r}; choose 'paper' or 'smoke'")
        return getattr(cls, preset)(**overrides)

    def encoder_spec(self) -> EncoderSpec:
        """ResNet-50 (no top, average-pooled) + 2048-d projector (+ predictor) of §2.1."""
        return EncoderSpec(
            method=self.ssl_method,
            backbone=self.backbone,
            image_size=self.image_size,
            projection_dim=self.projection_dim,
            predictor_hidden=self.predictor_hidden,
            l2=self.l2,
        )

    def describe(self) -> str:
        return (
            f"preset={self.preset}, {self.backbone}, {self.image_size}px, batch {self.batch_size}, "
            f"{self.n_folds}-fold CV, SSL {self.ssl_stage_a.epochs}+{self.ssl_stage_b.epochs} epochs, "
            f"head {self.head_epochs} + fine-tune {self.finetune_epochs} epochs, seed {self.seed}"
            + ("" if self.resize_mode == "crop" else f", resize {self.resize_mode}")
        )

"""Paper 02 (LEARNER) as data: every number the paper fixes is a default here (SPEC 02).

``LearnerConfig.paper()`` is the paper's recipe on data shaped like its LUS cohort (189 patients,
~718 clips); ``smoke()`` shrinks clips, network width, data and epochs so CI and the notebook run
on two CPU cores in minutes (the architecture's shape and the losses are unchanged).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from kerassev.recipes.settings import RunSettings

#: Comparator rows: id -> (label, encoder kind, pre-training loss, similarity).
ROWS = {
    "tsm_mse": ("MSE (TSM)", "tsm", "mse", "cos"),
    "tsm_cl": ("MSE+CL (TSM)", "tsm", "mse+cl", "cos"),
    "tsm_wcl": ("MSE+wCL (TSM)", "tsm", "mse+wcl", "cos"),
    "2d_cl": ("MSE+CL (2D ResNet-18, frames concatenated)", "2d", "mse+cl", "cos"),
    "tsm_wcl_l2": ("MSE+wCL l2Sim (TSM)", "tsm", "mse+wcl", "l2"),
    "tsm_cl_literal": (
        "MSE+CL literal eq. 3 (TSM; not in the paper)",
        "tsm",
        "mse+cl_literal",
        "cos",
    ),
}
#: Paper Tables 3-4 (LUS, TSM unless named). Targets, never our results.
PAPER_LUS = {
    "tsm_mse": {"accuracy %": "55.48", "macro F1": "0.460"},
    "tsm_cl": {"accuracy %": "68.25", "macro F1": "0.736"},
    "tsm_wcl": {"accuracy %": "62.80", "macro F1": "0.620"},
    "2d_cl": {"accuracy %": "65.70", "macro F1": "0.65"},
    "tsm_wcl_l2": {"accuracy %": "67.90", "macro F1": "0.59"},
}
PAPER_ADNI = {
    "tsm_mse": {"accuracy %": "31.25", "macro F1": "0.250"},
    "tsm_cl": {"accuracy %": "31.99", "macro F1": "0.121"},
    "tsm_wcl": {"accuracy %": "37.51", "macro F1": "0.347"},
}


@dataclass(frozen=True)
class LearnerConfig(RunSettings):  # + precision, distribution
    # clips (§3.1): TSM's 8 frames; the paper gives no frame size, 112 keeps CPU runs feasible
    n_frames: int = 8
    frame_size: int = 112
    # One clip a video, frames uniform over it (TSM's test-time sampling); sliding windows are
    # available in kerassev.io.video (ClipReader(mode="sliding")) but not used by this recipe.
    width: int = 64  # ResNet-18 base channels (64 = the standard network)
    # pre-training (Algorithm 1, Table 2): batch 8, Adam 1e-3, cosine annealing, 100 epochs
    batch_size: int = 8
    lr: float = 1e-3
    epochs: int = 100
    head_hidden: int = 128
    monitor_val: bool = True  # validation loss per epoch on the val patients (logs only)
    # Tracing the TSM train step costs ~18 s on 2 CPUs, more than a smoke stage's dozen steps
    # take eagerly; the smoke preset therefore runs eagerly (same maths, no graph).
    run_eagerly: bool = False
    cl_weight: float = 1.0  # the paper adds the two losses unweighted
    eps: float = 1e-6
    # downstream 3-way MLP (§3.3); the paper gives no schedule
    pair_hidden: int = 64
    pair_epochs: int = 100
    pair_lr: float = 1e-3
    label_mode: str = "bins"  # S/F bin change, or "threshold" on the score change
    label_threshold: float = 0.0
    n_boot: int = 1000
    # longitudinal phantoms shaped like the paper's LUS cohort (189 patients, 718 videos)
    phantom_rows: tuple[str, ...] = ("tsm_mse", "tsm_cl", "tsm_wcl", "2d_cl", "tsm_wcl_l2")
    phantom_patients: int = 189
    phantom_visits: tuple[int, int] = (2, 6)
    phantom_step_sd: float = 60.0
    # Table 1: 413 / 188 / 160 datapoints; the pair MLP is fitted on the val patients only
    val_fraction: float = 0.25
    test_fraction: float = 0.2
    # real POCUS proxy run (no longitudinal POCUS data exists)
    pocus: bool = True
    pocus_rows: tuple[str, ...] = ("tsm_mse", "tsm_cl")
    pocus_test_fraction: float = 0.3
    # patients whose embeddings fit the proxy MLP and the probe; the encoder never sees them
    pocus_fit_fraction: float = 0.25
    # severity on the scored POCUS videos (issue 20): patient-grouped K-fold CV of the encoder +
    # score head per row, controls, and the best row's fold-0 model exported for `kerassev predict`
    severity: bool = True
    severity_rows: tuple[str, ...] = ("tsm_mse", "tsm_cl", "tsm_wcl")
    severity_folds: int = 5
    export: bool = True
    # the exported model: "fold0" (trained on folds 1..K-1; fold 0's patients stay held out for a
    # check on unseen videos) or "all" (one more pre-training on every scored video)
    severity_export_fit: str = "fold0"
    seed: int = 0
    preset: str = "paper"

    @classmethod
    def paper(cls, **overrides) -> LearnerConfig:
        return dataclasses.replace(cls(), **overrides)

    @classmethod
    def smoke(cls, **overrides) -> LearnerConfig:
        smoke = dataclasses.replace(
            cls(),
            n_frames=4,
            frame_size=32,
            width=8,
            # batch 32 and one epoch: 2 eager steps a pre-training instead of the paper batch 8's
            # 14 over 2 epochs; at this size a step's cost is per-op overhead, nearly independent
            # of the batch (issue 23: 3.9 -> 1.9 CPU-s for batch 32 over 2 epochs)
            batch_size=32,
            epochs=1,
            head_hidden=32,
            monitor_val=False,
            run_eagerly=True,
            pair_epochs=30,
            n_boot=200,
            phantom_rows=("tsm_mse", "tsm_cl", "tsm_wcl", "2d_cl"),
            phantom_patients=24,
            phantom_visits=(3, 4),
            severity_rows=("tsm_mse",),
            severity_folds=2,  # each fold is one more pre-training
            precision="float32",
            preset="smoke",
        )
        return dataclasses.replace(smoke, **overrides)

    @classmethod
    def cpu(cls, **overrides) -> LearnerConfig:
        """A real phantom result on 2 cores in about an hour: 64 px, width 16, 30 epochs."""
        cpu = dataclasses.replace(
            cls(),
            frame_size=48,
            width=16,
            epochs=30,
            n_boot=1000,
            phantom_rows=("tsm_mse", "tsm_cl", "tsm_wcl", "2d_cl"),
            preset="cpu",
        )
        return dataclasses.replace(cpu, **overrides)

    @classmethod
    def from_preset(cls, preset: str, **overrides) -> LearnerConfig:
        if preset not in ("paper", "smoke", "cpu"):
            raise ValueError(f"unknown preset {preset!r}; choose 'paper', 'smoke' or 'cpu'")
        return getattr(cls, preset)(**overrides)

    def describe(self) -> str:
        return (
            f"preset={self.preset}, {self.n_frames} frames x {self.frame_size}px (uniform), "
            f"ResNet-18 width {self.width}, batch {self.batch_size}, Adam {self.lr} cosine, "
            f"{self.epochs} pre-training epochs, pair MLP {self.pair_epochs} epochs, "
            f"labels by {self.label_mode}, seed {self.seed}"
        )

"""Paper 03 (Cohen et al. 2020): COVID-19 severity from frozen chest X-ray features + OLS.

The paper's protocol (SPEC 03): a frozen, pretrained network turns every image into a feature
vector; ordinary least squares maps the features to the raters' mean geographic-extent (0-8) and
opacity (0-6) scores; 50 random ~50/50 patient-grouped train/test splits of the 94 scored images
give mean +- std of Pearson r, R^2, MAE and MSE on the held-out half (Table 1). The generic part
(OLS over splits) is :mod:`kerassev.evaluation.linear_probe`; this module adds the encoders, the
paper's feature sets, the Table-1-shaped output with the paper's figures in labelled columns, the
figures, and :func:`reproduce`.

Encoders (each becomes rows of the table, labelled with its data and configuration):

* ``xrv`` -- TorchXRayVision DenseNet-121 ("all"), the paper's extractor, when a converted
  checkpoint is given (``xrv_checkpoint``; convert with ``kerassev convert xrv``). Feature sets:
  1024-d intermediate features, 18 outputs, 4 outputs, the "lung opacity" output (pre-sigmoid).
* ``simsiam`` -- **not in the paper**: our offline substitute when the XRV checkpoint cannot be
  downloaded. A ResNet-50 (random init) pretrained with SimSiam on the unlabelled frontal images
  of the same collection (labels are never used, but the 94 scored images and their patients are
  among them). Feature set: the 2048-d pooled backbone output.
* ``random`` -- the same ResNet-50 with random weights: a control for what architecture alone
  gives.
* ``imagenet`` -- ResNet-50 with ImageNet weights from a local file (``imagenet_weights``).
* ``no data`` -- the intercept-only model (training-half mean), independent of any encoder.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from kerassev.evaluation.linear_probe import TABLE1_METRICS, ProbeResult, fit_ols, linear_probe

log = logging.getLogger(__name__)

RUN_KIND = "cohen"
BACKBONE_NAMES = {"resnet50": "ResNet-50", "tiny_cnn": "tiny CNN (test stand-in)"}


# ============================================================================ targets and paper
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
_PAPER_PARAMS = {"lung_opacity": "1+1", "4": "4+1", "18": "18+1", "1024": "1024+1", NO_DATA: "0+1"}


def paper_table1() -> pd.DataFrame:
    """The paper's Table 1 as printed (rows = task x feature set), every value column 'paper'."""
    rows = []
    for column, by_set in PAPER_TABLE1.items():
        target = TARGET_BY_COLUMN[column]
        for key, metrics in by_set.items():
            row = {
                "task": target.title,
                "features": FEATURE_SET_LABELS[key],
                "# parameters": _PAPER_PARAMS[key],
            }
            for m in TABLE1_METRICS:
                row[f"paper: {METRIC_LABELS[m]}"] = _pm(*metrics[m])
            rows.append(row)
    return pd.DataFrame(rows)


# ============================================================================ configuration
@dataclass(frozen=True)
class SSLConfig:
    """SimSiam pretraining of the substitute encoder (not part of paper 03).

    Defaults reuse SPEC 01's SimSiam recipe where it applies (cosine-decayed SGD, lr 0.02,
    momentum 0.6, "mrale" augmentation without random crop, 2048-d projector, 512 bottleneck
    predictor); the whole random-init backbone is trained (a cold start has nothing to freeze).
    """

    image_size: int = 224
    epochs: int = 35
    batch_size: int = 32
    learning_rate: float = 0.02
    momentum: float = 0.6
    augmentation: str = "mrale"
    projection_dim: int = 2048
    predictor_hidden: int = 512


@dataclass(frozen=True)
class CohenConfig:
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
        """Small images and a 2-epoch SimSiam; the 50 splits stay (OLS is cheap)."""
        base = cls(
            preset="smoke",
            resnet_image_size=64,
            ssl=SSLConfig(image_size=64, epochs=2, batch_size=32),
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
            parts.append(f"SimSiam {s.image_size}px x {s.epochs} epochs")
        return "; ".join(parts)


# ============================================================================ data
def load_tables(config: CohenConfig) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    """``(frontal, scored, scored_pos)``: all distinct frontal images, the 94 scored images,
    and the position of each scored image in ``frontal``.

    The collection lists 4 files under two patient ids each (README); ``frontal`` keeps one row
    per file (the first), which is what SSL and t-SNE need. ``scored`` (the rows with severity
    scores, as the loader's ``scored_only=True``) is the table the splits are drawn from.
    """
    from kerassev.data.loaders.covid_chestxray import load_covid_chestxray

    everything = load_covid_chestxray(config.data_root)
    frontal = everything.drop_duplicates("path", keep="first").reset_index(drop=True)
    # the rows of load_covid_chestxray(root, scored_only=True), without reading metadata twice
    scored_pos = np.flatnonzero(frontal["geographic_mean"].notna().to_numpy())
    scored = frontal.iloc[scored_pos].reset_index(drop=True)
    return frontal, scored, scored_pos


def make_splits(scored: pd.DataFrame, config: CohenConfig) -> list[tuple[np.ndarray, np.ndarray]]:
    """The ``n_splits`` patient-grouped ~50/50 splits of the scored images (SPEC 03)."""
    from kerassev.data.splits import repeated_grouped_splits

    return repeated_grouped_splits(
        scored,
        n_repeats=config.n_splits,
        test_fraction=config.test_fraction,
        group_col="patient_id",
        seed=config.seed,
    )


# ============================================================================ features
def load_images(table: pd.DataFrame, image_size: int, *, batch_size: int = 32) -> np.ndarray:
    """Every image of ``table`` decoded once: ``(N, S, S)`` float32 in ``[0, 1]``, grayscale,
    centre-cropped to a square and resized (the pipeline's ``resize_mode="crop"``), row order."""
    from kerassev.data.pipeline import PipelineConfig, build_dataset

    cfg = PipelineConfig(
        image_size=image_size,
        channels=1,
        preprocessing="unit",
        batch_size=batch_size,
        shuffle=False,
    )
    images = np.concatenate([np.asarray(b)[..., 0] for b in build_dataset(table, cfg)])
    if len(images) != len(table):
        raise RuntimeError(f"decoded {len(images)} images for {len(table)} table rows")
    return images


def _image_batches(images_or_table, *, image_size, channels, preprocess, batch_size):
    from kerassev.data.pipeline import PipelineConfig, build_dataset, build_dataset_from_arrays

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
) -> np.ndarray | dict[str, np.ndarray]:
    """Run a frozen encoder over every image, in order.

    ``images_or_table``: a dataset table (files are decoded by the pipeline) or ``[0, 1]`` images
    ``(N, H, W)`` already in memory (see :func:`load_images`); either way they are centre-cropped,
    resized to ``image_size``, given ``channels`` and normalised with ``preprocess`` (a name of
    :func:`kerassev.transforms.preprocess.get_preprocessor`: "imagenet", "xrv", "unit").
    ``encoder_fn``: a Keras model or any callable mapping a preprocessed batch ``(B, S, S, C)`` to
    an array ``(B, d)`` or a dict of such arrays. Returns ``(N, d)`` float64, or a dict of them.
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

    def extract(self, images_or_table, batch_size: int = 16) -> dict[str, np.ndarray]:
        """Feature sets (name -> (N, d)) of images (``[0, 1]`` arrays) or a table's files."""
        out = extract_features(
            self.model,
            images_or_table,
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


# ============================================================================ SimSiam substitute
def pretrain_simsiam(
    images: np.ndarray, config: CohenConfig, *, run=None, verbose: int = 0
) -> tuple[Encoder, dict]:
    """SimSiam-pretrain a random-init ResNet-50 on unlabelled ``[0, 1]`` images ``(N, S, S)``.

    Returns the frozen backbone as an :class:`Encoder` and the per-epoch history (``loss``,
    ``z_std_ratio`` collapse monitor: about 1 healthy, 0 collapsed). With ``run`` (a
    :class:`kerassev.runs.RunFolder`) training is checkpointed and resumable through
    :func:`kerassev.training.fit_stage`.
    """
    from kerassev.data.pipeline import PipelineConfig, build_dataset_from_arrays
    from kerassev.models.backbones import build_backbone
    from kerassev.models.heads import build_encoder, build_predictor
    from kerassev.models.simsiam import SimSiam
    from kerassev.training import cosine_sgd

    ssl = config.ssl
    if ssl is None:
        raise ValueError("config.ssl is None: SimSiam pretraining disabled")
    keras.utils.set_random_seed(config.seed)
    size = ssl.image_size
    backbone = build_backbone(
        config.backbone, weights=None, input_shape=(size, size, 3), pooling="avg"
    )
    encoder = build_encoder(backbone, projection_dim=ssl.projection_dim)
    predictor = build_predictor(ssl.projection_dim, hidden=ssl.predictor_hidden)
    model = SimSiam(encoder, predictor)

    cfg = PipelineConfig(
        image_size=size,
        channels=3,
        preprocessing="imagenet",
        batch_size=ssl.batch_size,
        shuffle=True,
        seed=config.seed,
        two_view_policy=ssl.augmentation,
        drop_remainder=len(images) > ssl.batch_size,  # BN needs > 1 image per batch
    )
    ds = build_dataset_from_arrays(images, cfg)
    steps = max(1, len(images) // ssl.batch_size) * max(1, ssl.epochs)

    def compile_fn(m):
        m.compile(optimizer=cosine_sgd(ssl.learning_rate, momentum=ssl.momentum, steps=steps))

    if run is not None:
        from kerassev.training import fit_stage

        log_df = fit_stage(
            model,
            ds,
            run=run,
            stage="simsiam",
            epochs=ssl.epochs,
            compile_fn=compile_fn,
            verbose=verbose,
        )
        history = {k: log_df[k].tolist() for k in log_df.columns if k != "epoch"}
    else:
        compile_fn(model)
        history = model.fit(ds, epochs=ssl.epochs, verbose=verbose).history

    backbone.trainable = False
    label = (
        f"SimSiam {BACKBONE_NAMES.get(config.backbone, config.backbone)} (random init; SSL on {len(images)} unlabelled frontal CXRs, "
        f"{size}px, {ssl.epochs} epochs)"
    )
    history = {k: [float(v) for v in vals] for k, vals in history.items()}
    return Encoder("simsiam", label, backbone, size, 3, "imagenet"), history


# ============================================================================ protocol
@dataclass
class FeatureRow:
    """One row of Table 1: an encoder's feature set (features of all frontal images)."""

    encoder: str  # Encoder.key, or "-" for no data
    encoder_label: str
    feature_set: str
    features: np.ndarray  # (n_frontal, d)

    @property
    def name(self) -> str:
        return f"{self.encoder}/{self.feature_set}"


@dataclass
class CohenResults:
    table: pd.DataFrame  # Table-1-shaped, with paper columns
    numeric: pd.DataFrame  # one row per (row, target): mean/std of every metric
    probes: dict[str, ProbeResult]  # row name -> probe result
    rows: list[FeatureRow]


def no_data_row(n_images: int) -> FeatureRow:
    return FeatureRow("-", "none (intercept only)", NO_DATA, np.empty((n_images, 0)))


def evaluate_rows(
    rows: Sequence[FeatureRow],
    scored: pd.DataFrame,
    scored_pos: np.ndarray,
    splits: Sequence[tuple[np.ndarray, np.ndarray]],
    *,
    targets: Sequence[str] = ("opacity_mean", "geographic_mean"),
) -> CohenResults:
    """Linear probe of every row on the scored images; Table 1 with paper columns."""
    y = {t: scored[t].to_numpy(dtype=np.float64) for t in targets}
    ranges = {t: TARGET_BY_COLUMN[t].score_range for t in targets}
    probes = {}
    numeric = []
    for row in rows:
        feats = row.features[scored_pos]
        probe = linear_probe(feats, y, splits, score_ranges=ranges)
        probes[row.name] = probe
        summary = probe.summary()
        for t in targets:
            numeric.append(
                {
                    "encoder": row.encoder_label,
                    "features": feature_label(row.feature_set, feats.shape[1]),
                    "row": row.name,
                    "target": t,
                    "n_params": f"{feats.shape[1]}+1",
                    **summary.loc[t].to_dict(),
                }
            )
    numeric_df = pd.DataFrame(numeric)
    return CohenResults(table1(numeric_df, rows, targets), numeric_df, probes, list(rows))


def table1(
    numeric: pd.DataFrame, rows: Sequence[FeatureRow], targets: Sequence[str]
) -> pd.DataFrame:
    """Table 1 shape: rows = encoder x feature set; per target ``<t> r``, ``<t> R2``,
    ``<t> MAE``, ``<t> MSE`` as "mean ± std" over splits; then ``paper <t> <metric>`` columns,
    filled only where the row is the paper's configuration (XRV feature sets, no data)."""
    out = []
    for row in rows:
        sub = numeric[numeric["row"] == row.name].set_index("target")
        rec = {
            "encoder": row.encoder_label,
            "features": sub["features"].iloc[0],
            "# parameters": sub["n_params"].iloc[0],
        }
        for t in targets:
            short = TARGET_BY_COLUMN[t].short
            for m in TABLE1_METRICS:
                rec[f"{short} {METRIC_LABELS[m]}"] = _pm(
                    sub.loc[t, f"{m}_mean"], sub.loc[t, f"{m}_std"]
                )
        paper_key = row.feature_set if row.encoder in ("xrv", "-") else None
        for t in targets:
            short = TARGET_BY_COLUMN[t].short
            paper = PAPER_TABLE1.get(t, {}).get(paper_key) if paper_key else None
            for m in TABLE1_METRICS:
                rec[f"paper: {short} {METRIC_LABELS[m]}"] = _pm(*paper[m]) if paper else ""
        out.append(rec)
    return pd.DataFrame(out)


def feature_label(key: str, dim: int) -> str:
    """Table label of a feature set; the encoder-agnostic "pooled" set names its width."""
    label = FEATURE_SET_LABELS.get(key, key)
    return f"{label} ({dim}-d)" if key == "pooled" else label


def _pm(mean: float, std: float) -> str:
    if mean is None or not np.isfinite(mean):
        return "undefined"
    return f"{mean:.2f} ± {std:.2f}"


def choose_figure_row(results: CohenResults, preference: str = "auto") -> FeatureRow:
    """The row the figures show: ``preference`` ("<encoder>/<feature set>") if given, else the
    paper's choice (XRV "lung opacity" output) when present, else SimSiam, ImageNet, random."""
    by_name = {r.name: r for r in results.rows}
    if preference != "auto":
        if preference not in by_name:
            raise ValueError(f"figure_row {preference!r} not among {sorted(by_name)}")
        return by_name[preference]
    for key in ("xrv/lung_opacity", "simsiam/pooled", "imagenet/pooled", "random/pooled"):
        if key in by_name:
            return by_name[key]
    return results.rows[0]


def fit_on_all_scored(row: FeatureRow, scored: pd.DataFrame, scored_pos: np.ndarray, target: str):
    """OLS on all scored images (used only to colour the t-SNE by predicted extent)."""
    return fit_ols(row.features[scored_pos], scored[target].to_numpy(dtype=np.float64))


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


# ============================================================================ reproduction
class ImageBank:
    """Decoded ``[0, 1]`` images of one table, cached per size (each file decoded once per size)."""

    def __init__(self, table: pd.DataFrame):
        self.table = table
        self._by_size: dict[int, np.ndarray] = {}

    def at(self, size: int) -> np.ndarray:
        if size not in self._by_size:
            self._by_size[size] = load_images(self.table, size)
        return self._by_size[size]


def build_encoders(
    config: CohenConfig, bank: ImageBank, *, run=None, verbose: int = 0
) -> tuple[list[Encoder], dict]:
    """The encoders this configuration asks for, in table order; and an info dict (SSL history).

    ``bank`` holds the unlabelled frontal images SimSiam pretrains on.
    """
    encoders: list[Encoder] = []
    info: dict = {}
    if config.xrv_checkpoint:
        encoders.append(xrv_encoder(config.xrv_checkpoint))
    if config.ssl is not None:
        enc, history = pretrain_simsiam(
            bank.at(config.ssl.image_size), config, run=run, verbose=verbose
        )
        encoders.append(enc)
        info["simsiam_history"] = history
    if config.imagenet_weights:
        encoders.append(
            resnet_encoder(
                "imagenet",
                f"{BACKBONE_NAMES.get(config.backbone, config.backbone)} ImageNet "
                f"({Path(config.imagenet_weights).name}, no training), "
                f"{config.resnet_image_size}px",
                weights=config.imagenet_weights,
                image_size=config.resnet_image_size,
                backbone=config.backbone,
            )
        )
    if config.random_control:
        keras.utils.set_random_seed(config.seed + 1)
        size = config.ssl.image_size if config.ssl is not None else config.resnet_image_size
        encoders.append(
            resnet_encoder(
                "random",
                f"{BACKBONE_NAMES.get(config.backbone, config.backbone)} random init "
                f"(control, no training), {size}px",
                image_size=size,
                backbone=config.backbone,
            )
        )
    return encoders, info


def feature_rows(
    encoders: Sequence[Encoder], bank: ImageBank, *, batch_size: int = 16, run=None
) -> list[FeatureRow]:
    """Every encoder's feature sets over the bank's images, then the "no data" row.

    With ``run`` the features are saved as ``features_<encoder>.npz`` (with the image paths).
    """
    rows: list[FeatureRow] = []
    for enc in encoders:
        stage = f"features_{enc.key}"
        if run is not None and run.stage_done(stage):  # resumed run: reuse saved features
            with np.load(run.path / f"{stage}.npz") as saved:
                sets = {k: saved[k] for k in saved.files if k != "paths"}
        else:
            sets = enc.extract(bank.at(enc.image_size), batch_size)
            if run is not None:
                np.savez_compressed(
                    run.new_file(f"{stage}.npz"), paths=bank.table["path"].to_numpy(str), **sets
                )
                run.mark_stage_done(stage)
        order = [k for k in ("lung_opacity", "4", "18", "1024") if k in sets] or list(sets)
        rows.extend(FeatureRow(enc.key, enc.label, k, sets[k]) for k in order)
    rows.append(no_data_row(len(bank.table)))
    return rows


def data_description(scored: pd.DataFrame, frontal: pd.DataFrame) -> str:
    return (
        f"covid-chestxray snapshot (README): {len(scored)} severity-scored frontal CXRs of "
        f"{scored.patient_id.nunique()} patients; {len(frontal)} frontal images in all"
    )


def reproduce(
    config: CohenConfig, out: str | Path, *, resume: bool = False, verbose: int = 0
) -> dict:
    """End-to-end paper-03 reproduction into a fresh run folder under ``out``.

    Writes ``table1.csv``/``.md`` (ours + "paper:" columns), ``table1_numeric.csv`` (means and
    stds as numbers), ``table1_paper.md``, ``per_split.csv``, ``features_<encoder>.npz`` and the
    three figures (PNG + caption). Returns ``{"run", "results", "figures", "caption", "info"}``.
    ``resume=True`` reopens the latest unfinished cohen run in ``out`` (same config): finished
    SimSiam epochs, feature files and tables are reused.
    """
    from kerassev import plots_cohen
    from kerassev.runs import RunFolder

    if resume:
        run = RunFolder.resume(out, RUN_KIND, config=config)
    else:
        run = RunFolder.create(out, RUN_KIND, config=config, seed=config.seed)
    frontal, scored, scored_pos = load_tables(config)
    splits = make_splits(scored, config)
    bank = ImageBank(frontal)
    encoders, info = build_encoders(config, bank, run=run, verbose=verbose)
    rows = feature_rows(encoders, bank, batch_size=config.batch_size, run=run)
    results = evaluate_rows(rows, scored, scored_pos, splits, targets=config.targets)

    caption = (
        f"Paper 03 Table 1 protocol on {data_description(scored, frontal)}. OLS on frozen "
        f"features; {config.describe()}; mean ± std over splits on the held-out half (Pearson r "
        f"of the constant no-data prediction is undefined). 'paper:' columns are "
        f"{PAPER_SOURCE}, filled only on rows with the paper's configuration. {run.describe()}."
    )
    if not run.stage_done("tables"):
        _write_tables(run, results, caption)
        run.mark_stage_done("tables")
    figures = plots_cohen.cohen_figures(
        run=run,
        results=results,
        encoders={e.key: e for e in encoders},
        bank=bank,
        scored=scored,
        scored_pos=scored_pos,
        splits=splits,
        config=config,
        data=data_description(scored, frontal),
    )
    run.mark_complete(rows=[r.name for r in rows], figures=sorted(figures))
    return {"run": run, "results": results, "figures": figures, "caption": caption, "info": info}


def _write_tables(run, results: CohenResults, caption: str) -> None:
    from kerassev.stats.tables import to_markdown

    results.table.to_csv(run.new_file("table1.csv"), index=False)
    results.numeric.to_csv(run.new_file("table1_numeric.csv"), index=False)
    run.new_file("table1.md").write_text(f"{caption}\n\n{to_markdown(results.table)}")
    run.new_file("table1_paper.md").write_text(f"{PAPER_SOURCE}\n\n{to_markdown(paper_table1())}")
    per_split = pd.concat(
        [p.per_split.assign(row=name) for name, p in results.probes.items()], ignore_index=True
    )
    per_split.to_csv(run.new_file("per_split.csv"), index=False)

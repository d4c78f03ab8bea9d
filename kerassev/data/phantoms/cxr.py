"""Synthetic frontal chest X-ray (CXR) phantoms with known mRALE / Cohen severity labels.

The package's built-in data: every notebook and test can run end to end without MIDRC credentials.

**Anatomy** (drawn once per synthetic patient from ``anatomy_seed``; all shapes are analytic in
normalised coordinates ``x, y`` in [-1, 1], so one phantom renders alike at any size). Radiological
convention: the patient's **right lung is on the image left**; the image is MONOCHROME2 (bright =
attenuating).

* body: a super-ellipse of soft tissue, slightly denser towards the abdomen; air outside;
* lungs: two tapered ellipses, darkest where they are thickest, cut medially by the mediastinum,
  below by the diaphragm and (left lung) by the heart; ``lung_mask`` is this visible lung field;
* diaphragm: one parabolic dome per side, the right one higher; below it, abdominal soft tissue;
* heart: a bright ellipse left of the midline in the patient (image right), low in the chest;
* mediastinum and spine: a bright vertical band with vertebral bodies; dark trachea above;
* ribs: curved bright bands (posterior ribs) repeating down both hemithoraces; clavicles on top.

**Labels -> pixels.** Per lung, a smooth random field (half per patient, so lesions persist across
timepoints, half per study) plus a lower-zone and peripheral bias is thresholded at the quantile
that covers a target fraction of that lung's pixels, drawn inside the extent bin
(1: 8-22 %, 2: 29-47 %, 3: 54-72 %, 4: 80-96 %; margins keep clear of the bin edges). That set is
``opacity_mask``. It is blurred and fills in a share of the lung's darkness set by density
(hazy 0.45, moderate 0.68, dense 0.90): dense consolidation approaches soft-tissue brightness.
``mrale = extent_r * density_r + extent_l * density_l`` (0-24), ``geographic_mean =
extent_r + extent_l`` (0-8), ``opacity_mean = density_r + density_l`` (0-6); extent 0 <=> density 0.

**Acquisition.** Per study: small rotation / translation / scale around the patient's own
positioning style, random gamma and contrast, a heel-effect gradient, Gaussian noise, and an
automatic-exposure-control step that sets the image mean to a random target independent of the
labels, so global brightness cannot predict the score (|Spearman| ~ 0).

**Sub-scores** are sampled from the real MIDRC label file when it is present (rows resampled, so the
joint right/left distribution is kept) and otherwise from a built-in frequency table derived from
that file (``MIDRC mRALE Mastermind Training Annotations_2079_20230428.csv``, MIDRC/COVID19_Challenges
@ fc43c7b): the joint right x left extent counts and, per lung, density-given-extent counts, with
the lungs' densities coupled through a shared uniform. The 4 file rows whose extent and density
disagree on "none" are coded as "no opacity" in that lung (their mRALE is unchanged).

**Limitations.** Not a radiograph simulator: no scatter, no projection physics, no lines or tubes,
no effusions, atelectasis, nodules or pneumothorax; opacities never cross the lung border; the
opacity area is measured in the visible (projected) lung field; a patient's later timepoints
follow a simple random walk on the sub-scores, so their distribution drifts from MIDRC's.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import ndimage

from kerassev import config

SUBSCORE_COLUMNS = ("extent_right", "density_right", "extent_left", "density_left")
LABEL_COLUMNS = (*SUBSCORE_COLUMNS, "mrale", "geographic_mean", "opacity_mean")

# Target share of a lung's pixels covered by opacity, per extent score (uniform within).
EXTENT_FRACTION = {1: (0.08, 0.22), 2: (0.29, 0.47), 3: (0.54, 0.72), 4: (0.80, 0.96)}
# Share of the lung's air darkness that the opacity fills, per density score.
DENSITY_FILL = {1: 0.45, 2: 0.68, 3: 0.90}

MIDRC_LABEL_FILE = "MIDRC mRALE Mastermind Training Annotations_2079_20230428.csv"
# MIDRC text labels (the real file writes "None" where the README says "blank").
EXTENT_TEXT = {0: "None", 1: "<=25%", 2: "25-50%", 3: "51-75%", 4: ">75%"}
DENSITY_TEXT = {0: "None", 1: "Hazy", 2: "Moderate", 3: "Dense"}
MIDRC_COLUMNS = (
    "StudyInstanceUID",
    "extent_right",
    "density_right",
    "extent_left",
    "density_left",
    "quality_issue",
    "extent_right_numerical",
    "density_right_numerical",
    "extent_left_numerical",
    "density_left_numerical",
    "mRALE Score",
)

# Fallback sub-score distribution, counted from the 2,079 rows of MIDRC_LABEL_FILE after coding
# the 4 inconsistent lungs as "none". Rows: extent_right 0-4; columns: extent_left 0-4.
_FALLBACK_EXTENT_JOINT = np.array(
    [
        [413, 76, 35, 2, 0],
        [54, 207, 67, 12, 4],
        [26, 62, 193, 60, 11],
        [9, 7, 78, 203, 56],
        [5, 6, 18, 94, 381],
    ],
    dtype=np.float64,
)
# Per lung: rows extent 0-4, columns density 0-3 (same file, same coding).
_FALLBACK_DENSITY_GIVEN_EXTENT = {
    "right": np.array(
        [
            [526, 0, 0, 0],
            [0, 285, 43, 16],
            [0, 167, 149, 36],
            [0, 109, 132, 112],
            [0, 51, 142, 311],
        ],
        dtype=np.float64,
    ),
    "left": np.array(
        [[507, 0, 0, 0], [0, 290, 58, 10], [0, 170, 171, 50], [0, 87, 127, 157], [0, 45, 98, 309]],
        dtype=np.float64,
    ),
}
# Probability that both lungs' densities share one uniform draw; chosen so the right/left density
# correlation (lungs both involved) is ~0.75 as in the file.
_FALLBACK_DENSITY_COUPLING = 0.8

# Lattice of the smooth opacity field over [-1.35, 1.35]^2 in normalised coordinates; its
# correlation length (~0.14) is fixed in anatomy units, so lesions look alike at any image size.
_FIELD_N = 64
_FIELD_EXTENT = 1.35
_FIELD_SIGMA = 3.3


# --------------------------------------------------------------------------------------------
# Labels
# --------------------------------------------------------------------------------------------
def _with_derived(df: pd.DataFrame) -> pd.DataFrame:
    """Add mrale, geographic_mean and opacity_mean to a frame of the four sub-scores."""
    out = df.loc[:, list(SUBSCORE_COLUMNS)].astype(np.int64).reset_index(drop=True)
    out["mrale"] = (
        out.extent_right * out.density_right + out.extent_left * out.density_left
    ).astype(np.int64)
    out["geographic_mean"] = (out.extent_right + out.extent_left).astype(np.float64)
    out["opacity_mean"] = (out.density_right + out.density_left).astype(np.float64)
    return out


def _make_consistent(df: pd.DataFrame) -> pd.DataFrame:
    """Code a lung with extent xor density equal to 0 as no opacity (its product was 0 anyway)."""
    df = df.copy()
    for side in ("right", "left"):
        e, d = f"extent_{side}", f"density_{side}"
        bad = (df[e] == 0) != (df[d] == 0)
        df.loc[bad, [e, d]] = 0
    return df


def labels_from_subscores(subscores: Mapping[str, int]) -> dict[str, Any]:
    """Validated sub-scores plus mrale, geographic_mean and opacity_mean."""
    missing = [k for k in SUBSCORE_COLUMNS if k not in subscores]
    if missing:
        raise ValueError(f"subscores lack {missing}; need {list(SUBSCORE_COLUMNS)}")
    s = {k: int(subscores[k]) for k in SUBSCORE_COLUMNS}
    for side in ("right", "left"):
        e, d = s[f"extent_{side}"], s[f"density_{side}"]
        if not 0 <= e <= 4 or not 0 <= d <= 3:
            raise ValueError(f"{side} lung: extent must be 0-4 and density 0-3, got {e}, {d}")
        if (e == 0) != (d == 0):
            raise ValueError(f"{side} lung: extent 0 <=> density 0 required, got {e}, {d}")
    er, dr, el, dl = (s[k] for k in SUBSCORE_COLUMNS)
    return s | {
        "mrale": er * dr + el * dl,
        "geographic_mean": float(er + el),
        "opacity_mean": float(dr + dl),
    }


@functools.lru_cache(maxsize=4)
def _read_midrc_subscores(path: str) -> pd.DataFrame:
    raw = pd.read_csv(path)
    df = pd.DataFrame({c: raw[f"{c}_numerical"].astype(np.int64) for c in SUBSCORE_COLUMNS})
    return _make_consistent(df)


def midrc_label_path() -> Path:
    """Where the real MIDRC mRALE label file is expected (it may be absent)."""
    return config.dataset_dir("midrc_mrale", must_exist=False) / MIDRC_LABEL_FILE


def _inverse_cdf(counts: np.ndarray, rows: np.ndarray, u: np.ndarray) -> np.ndarray:
    cdf = np.cumsum(counts, axis=1) / counts.sum(axis=1, keepdims=True)
    return (u[:, None] >= cdf[rows]).sum(axis=1).clip(0, counts.shape[1] - 1)


def sample_subscores(
    n: int, *, seed: int = 0, source: Literal["midrc", "uniform"] = "midrc"
) -> pd.DataFrame:
    """``n`` consistent sub-score rows with mrale, geographic_mean and opacity_mean.

    ``"midrc"`` resamples rows of the real label file when present, else the built-in table;
    ``df.attrs["source"]`` says which. ``"uniform"``: extent 0-4 and density 1-3 uniform per lung.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 101]))
    if source == "uniform":
        ext = rng.integers(0, 5, size=(n, 2))
        den = rng.integers(1, 4, size=(n, 2)) * (ext > 0)
        used = "uniform"
    elif source == "midrc":
        path = midrc_label_path()
        if path.is_file():
            table = _read_midrc_subscores(str(path))
            rows = table.iloc[rng.integers(0, len(table), size=n)]
            ext = rows[["extent_right", "extent_left"]].to_numpy()
            den = rows[["density_right", "density_left"]].to_numpy()
            used = "midrc-file"
        else:
            joint = _FALLBACK_EXTENT_JOINT.ravel()
            k = rng.choice(joint.size, size=n, p=joint / joint.sum())
            ext = np.stack(np.divmod(k, 5), axis=1)
            u_r = rng.random(n)
            u_l = np.where(rng.random(n) < _FALLBACK_DENSITY_COUPLING, u_r, rng.random(n))
            den = np.stack(
                [
                    _inverse_cdf(_FALLBACK_DENSITY_GIVEN_EXTENT["right"], ext[:, 0], u_r),
                    _inverse_cdf(_FALLBACK_DENSITY_GIVEN_EXTENT["left"], ext[:, 1], u_l),
                ],
                axis=1,
            )
            used = "midrc-fallback"
    else:
        raise ValueError(f"source must be 'midrc' or 'uniform', got {source!r}")
    df = pd.DataFrame(
        {
            "extent_right": ext[:, 0],
            "density_right": den[:, 0],
            "extent_left": ext[:, 1],
            "density_left": den[:, 1],
        }
    )
    out = _with_derived(_make_consistent(df))
    out.attrs["source"] = used
    return out


# --------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Phantom:
    """One rendered phantom: image in [0, 1], masks, and its labels."""

    image: np.ndarray  # float32 (H, W) in [0, 1], MONOCHROME2
    opacity_mask: np.ndarray  # bool (H, W), inside lung_mask
    lung_mask: np.ndarray  # bool (H, W), both visible lung fields
    labels: dict  # extent_right, density_right, extent_left, density_left, mrale, ...
    right_lung_mask: np.ndarray | None = None  # bool (H, W): patient's right lung (image left)
    info: dict = field(default_factory=dict)  # render parameters and measured opacity fractions


def _uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(rng.uniform(lo, hi))


def _smooth_lattice(rng: np.random.Generator) -> np.ndarray:
    """A unit-variance smooth random field on the low-resolution lattice."""
    f = rng.standard_normal((_FIELD_N, _FIELD_N), dtype=np.float32)
    f = ndimage.gaussian_filter(f, _FIELD_SIGMA, mode="wrap")
    return (f - f.mean()) / (f.std() + 1e-12)


@functools.lru_cache(maxsize=256)
def _anatomy(anatomy_seed: int) -> dict[str, Any]:
    """Cached per patient: a cohort renders each patient's anatomy once."""
    a = _draw_anatomy(np.random.default_rng(np.random.SeedSequence([anatomy_seed, 7])))
    a["field"].setflags(write=False)
    return a


def _draw_anatomy(rng: np.random.Generator) -> dict[str, Any]:
    """Per-patient anatomy, positioning style and persistent part of the opacity field."""
    dome_r = _uniform(rng, 0.40, 0.52)
    dome_l = dome_r + _uniform(rng, 0.03, 0.08)
    return {
        "body_w": _uniform(rng, 0.86, 0.97),
        "lung_cx": (_uniform(rng, 0.36, 0.42), _uniform(rng, 0.36, 0.42)),  # right, left
        "lung_ax": (_uniform(rng, 0.27, 0.32), _uniform(rng, 0.26, 0.31)),
        "lung_top": (_uniform(rng, -0.80, -0.72), _uniform(rng, -0.80, -0.72)),
        "dome": (dome_r, dome_l),
        "dome_k": _uniform(rng, 1.0, 1.6),
        "med_w": _uniform(rng, 0.08, 0.11),
        "heart": (
            _uniform(rng, 0.12, 0.18),  # centre x (patient's left = +x)
            dome_l - _uniform(rng, 0.10, 0.15),  # centre y: sits on the diaphragm
            _uniform(rng, 0.29, 0.35),  # half-width
            _uniform(rng, 0.22, 0.27),  # half-height
        ),
        "darkness": _uniform(rng, 0.30, 0.40),
        "rib_spacing": _uniform(rng, 0.13, 0.15),
        "rib_start": _uniform(rng, -0.95, -0.85),
        "clavicle_y": _uniform(rng, -0.74, -0.66),
        "pose": (
            float(rng.normal(0.0, math.radians(2.0))),  # rotation
            _uniform(rng, -0.04, 0.04),  # translation x
            _uniform(rng, -0.04, 0.04),  # translation y
            _uniform(rng, 0.93, 1.04),  # scale
        ),
        "field": _smooth_lattice(rng),
    }


def _draw_study(rng: np.random.Generator) -> dict[str, Any]:
    """Per-image positioning jitter, exposure, noise and the study part of the opacity field."""
    return {
        "pose_jitter": (
            float(rng.normal(0.0, math.radians(1.5))),
            float(rng.normal(0.0, 0.015)),
            float(rng.normal(0.0, 0.015)),
            _uniform(rng, 0.98, 1.02),
        ),
        "gamma": float(np.exp(rng.uniform(np.log(0.8), np.log(1.25)))),
        "contrast": _uniform(rng, 0.85, 1.15),
        "target_mean": _uniform(rng, 0.32, 0.62),
        "heel": (_uniform(rng, -0.05, 0.05), _uniform(rng, 0.0, 2 * math.pi)),
        "noise": _uniform(rng, 0.008, 0.025),
        "field": _smooth_lattice(rng),
        "fraction_u": (float(rng.random()), float(rng.random())),
        "seed": int(rng.integers(0, 2**31 - 1)),
    }


def _coordinates(size: int, rot: float, tx: float, ty: float, scale: float):
    """Anatomical (x, y) of every pixel, after the inverse of the positioning transform."""
    c = (np.arange(size, dtype=np.float32) + 0.5) / size * 2.0 - 1.0
    du = c[None, :] - np.float32(tx)
    dv = c[:, None] - np.float32(ty)
    cos, sin = np.float32(math.cos(rot)), np.float32(math.sin(rot))
    x = (cos * du + sin * dv) / np.float32(scale)
    y = (-sin * du + cos * dv) / np.float32(scale)
    return x, y


def _sample_field(lattice: np.ndarray, size: int, pose: tuple[float, float, float, float]):
    """The lattice field at every pixel's anatomical position (bilinear; one affine resample)."""
    rot, tx, ty, scale = pose
    k = (_FIELD_N - 1) / (2 * _FIELD_EXTENT)  # lattice cells per normalised unit
    cos, sin = math.cos(rot), math.sin(rot)
    # pixel (i, j) -> (v, u) = (2 (i + .5) / size - 1, ...) -> (y, x) anatomy -> lattice (r, c)
    a = 2.0 / size
    matrix = np.array([[cos * a, -sin * a], [sin * a, cos * a]]) * (k / scale)
    v0, u0 = a * 0.5 - 1.0 - ty, a * 0.5 - 1.0 - tx
    offset = np.array([cos * v0 - sin * u0, sin * v0 + cos * u0]) * (k / scale) + k * _FIELD_EXTENT
    return ndimage.affine_transform(
        lattice, matrix, offset=offset, output_shape=(size, size), order=1, mode="nearest"
    )


def render_phantom(
    subscores: Mapping[str, int],
    *,
    size: int = 256,
    seed: int = 0,
    anatomy_seed: int | None = None,
) -> Phantom:
    """Render one phantom with the given sub-scores.

    ``anatomy_seed`` fixes the patient (anatomy, positioning style, where lesions tend to be;
    defaults to ``seed``); ``seed`` fixes this study's lesions, positioning jitter and exposure.
    """
    labels = labels_from_subscores(subscores)
    if size < 32:
        raise ValueError(f"size must be >= 32 pixels, got {size}")
    anatomy_seed = seed if anatomy_seed is None else anatomy_seed
    a = _anatomy(int(anatomy_seed))
    s = _draw_study(np.random.default_rng(np.random.SeedSequence([int(seed), 11])))
    pix_rng = np.random.default_rng(s["seed"])

    (rot0, tx0, ty0, sc0), (drot, dtx, dty, dsc) = a["pose"], s["pose_jitter"]
    rot, tx, ty, sc = rot0 + drot, tx0 + dtx, ty0 + dty, sc0 * dsc
    x, y = _coordinates(size, rot, tx, ty, sc)
    ax_abs = np.abs(x)
    f32 = np.float32

    # Body and diaphragm.
    bx, by = (ax_abs / a["body_w"]) ** 2, ((y - 0.15) / 1.3) ** 2
    body = bx * bx * bx + by * by * by < 1.0
    right_side = x < 0  # patient's right = image left
    k = a["dome_k"]
    cx_r, cx_l = a["lung_cx"]
    dome_y = np.where(
        right_side, a["dome"][0] + k * (x + cx_r) ** 2, a["dome"][1] + k * (x - cx_l) ** 2
    )
    abdomen = body & (y > dome_y)

    # Heart, mediastinum, trachea, spine.
    hcx, hcy, hrx, hry = a["heart"]
    heart = (((x - hcx) / hrx) ** 2 + ((y - hcy) / hry) ** 2 < 1.0) & (y < dome_y + 0.03)
    med = (np.abs(x - 0.01) < a["med_w"]) & (y < hcy)
    trachea = (ax_abs < 0.028) & (y < -0.32) & body
    spine = ax_abs < 0.055
    vert = 0.5 + 0.5 * np.cos(2 * np.pi * y / 0.095)

    # Lungs: tapered ellipses, darkest where thickest; cut by mediastinum, diaphragm and heart.
    lungs, depth = [], np.zeros_like(x)
    for i, sign in enumerate((-1.0, 1.0)):
        top, dome = a["lung_top"][i], a["dome"][i]
        cy, ay = (top + dome + 0.15) / 2, (dome + 0.15 - top) / 2
        t = np.clip((y - top) / (dome - top), 0.0, 1.0)
        wf = a["lung_ax"][i] * (0.55 + 0.55 * t)
        xr = sign * x - a["lung_cx"][i]
        r2 = (xr / wf) ** 2 + ((y - cy) / ay) ** 2
        lung = (r2 < 1.0) & (y < dome_y) & (sign * x > a["med_w"]) & ~heart
        lungs.append(lung)
        depth[lung] += (1.0 - r2[lung]) ** 0.35
    lung_right, lung_left = lungs
    lung_mask = lung_right | lung_left

    # Ribs (posterior, curved) and clavicles.
    sr = y - (-0.12 * ax_abs + 0.75 * ax_abs**2)
    phase = (sr - a["rib_start"]) / a["rib_spacing"]
    rib_zone = (phase > 0) & (phase < 10) & (y < dome_y + 0.04) & body
    rib_weight = np.clip((ax_abs - 0.05) / 0.15, 0.0, 1.0)  # fade into the spine
    ribs = np.where(rib_zone, rib_weight * np.exp(-((((phase % 1.0) - 0.3) / 0.12) ** 2)), 0.0)
    clav_y = a["clavicle_y"] - 0.12 * (ax_abs - 0.1)
    clavicle = (np.abs(y - clav_y) < 0.026) & (ax_abs > 0.06) & (ax_abs < 0.52)

    # Opacities: threshold a smooth, lower-zone-biased field per lung at the target fraction.
    lattice = (0.6 * a["field"] + 0.4 * s["field"]) / math.sqrt(0.52)
    field_xy = _sample_field(lattice.astype(f32), size, (rot, tx, ty, sc))
    opacity_mask = np.zeros_like(lung_mask)
    amplitude = np.zeros_like(x)
    fractions = {}
    texture = ndimage.gaussian_filter(pix_rng.standard_normal((size, size)).astype(f32), size / 90)
    texture /= texture.std() + 1e-6
    blur = max(0.8, 0.012 * size)
    for i, (side, lung) in enumerate((("right", lung_right), ("left", lung_left))):
        extent, density = labels[f"extent_{side}"], labels[f"density_{side}"]
        n_lung = int(lung.sum())
        if extent == 0 or n_lung == 0:
            fractions[side] = 0.0
            continue
        lo, hi = EXTENT_FRACTION[extent]
        target = lo + (hi - lo) * s["fraction_u"][i]
        top, dome = a["lung_top"][i], a["dome"][i]
        zone = np.clip((y - top) / (dome - top), 0.0, 1.2)  # 0 apex .. 1 base
        periph = np.clip(
            (abs(x) - a["med_w"]) / (a["lung_cx"][i] + a["lung_ax"][i] - a["med_w"]), 0, 1.2
        )
        score = field_xy + 1.6 * zone + 0.6 * periph
        vals = score[lung]
        n_op = max(1, round(target * n_lung))
        thr = np.partition(vals, n_lung - n_op)[n_lung - n_op]
        mask = lung & (score >= thr)
        opacity_mask |= mask
        fractions[side] = float(mask.sum() / n_lung)
        amplitude[mask] = DENSITY_FILL[density]
    # Blurring is linear, so one filter serves both lungs.
    fill = np.clip(ndimage.gaussian_filter(amplitude, blur) * (1.0 + 0.12 * texture), 0.0, 1.0)

    # Compose attenuation (MONOCHROME2: bright = attenuating).
    img = np.full_like(x, 0.04)
    img += body * (0.50 + 0.05 * np.clip(y + 0.5, 0.0, 1.5)) + abdomen * 0.05
    img += heart * 0.10 + med * 0.07 + spine * (0.07 + 0.06 * vert) - trachea * 0.10
    lung_soft = ndimage.gaussian_filter(depth, max(0.6, 0.006 * size))
    markings = 0.015 * texture * np.clip(1.2 - np.abs(np.abs(x) - 0.15) * 2.5, 0, 1)
    img -= a["darkness"] * lung_soft * (1.0 - fill) - markings * lung_soft
    img += 0.11 * ribs + 0.13 * clavicle
    img = ndimage.gaussian_filter(img, max(0.4, 0.003 * size))  # anti-aliasing

    # Acquisition: gamma, contrast, AEC to a label-independent mean, heel effect, noise.
    img = np.clip(img, 0.0, 1.0) ** f32(s["gamma"])
    mean = img.mean()
    img = mean + f32(s["contrast"]) * (img - mean)
    img += f32(s["target_mean"]) - img.mean()
    g, phi = s["heel"]
    c = (np.arange(size, dtype=f32) + 0.5) / size * 2.0 - 1.0
    img += f32(g) * (f32(math.cos(phi)) * c[None, :] + f32(math.sin(phi)) * c[:, None])
    img += pix_rng.standard_normal((size, size), dtype=f32) * f32(s["noise"])
    img = np.clip(img, 0.0, 1.0).astype(np.float32)

    info = {
        "opacity_fraction_right": fractions.get("right", 0.0),
        "opacity_fraction_left": fractions.get("left", 0.0),
        "pose": (float(rot), float(tx), float(ty), float(sc)),
        **{k: s[k] for k in ("gamma", "contrast", "target_mean", "noise")},
    }
    return Phantom(
        image=img,
        opacity_mask=opacity_mask,
        lung_mask=lung_mask,
        labels=labels,
        right_lung_mask=lung_right,
        info=info,
    )


# --------------------------------------------------------------------------------------------
# Cohorts (several timepoints per synthetic patient)
# --------------------------------------------------------------------------------------------
@dataclass
class PhantomCohort:
    """Stacked phantoms of several patients and timepoints; ``table`` has one row per image."""

    images: np.ndarray  # (N, H, W) float32 in [0, 1]
    opacity_masks: np.ndarray  # (N, H, W) bool
    lung_masks: np.ndarray  # (N, H, W) bool
    table: pd.DataFrame  # patient_id, study_id, timepoint, offset, labels ... (same order)


def _uid(*parts: object) -> str:
    from pydicom.uid import generate_uid  # pydicom is a core dependency; imported lazily

    return str(generate_uid(entropy_srcs=["kerassev-phantom", *map(str, parts)]))


def _evolve(sub: dict[str, int], trend: int, rng: np.random.Generator) -> dict[str, int]:
    """Next timepoint: extent drifts with the patient's trend, density follows; stays consistent."""
    out = {}
    for side in ("right", "left"):
        e, d = sub[f"extent_{side}"], sub[f"density_{side}"]
        step = trend if rng.random() < 0.6 else int(rng.integers(-1, 2))
        e_new = int(np.clip(e + step, 0, 4))
        if e_new == 0:
            d_new = 0
        elif d == 0:
            d_new = int(rng.integers(1, 3))
        else:
            d_new = int(np.clip(d + (trend if rng.random() < 0.4 else 0), 1, 3))
        out[f"extent_{side}"], out[f"density_{side}"] = e_new, d_new
    return out


def make_phantom_cohort(
    n_patients: int,
    *,
    timepoints: tuple[int, int] = (1, 3),
    size: int = 256,
    seed: int = 0,
    source: Literal["midrc", "uniform"] = "midrc",
) -> PhantomCohort:
    """``n_patients`` synthetic patients with ``timepoints[0]..timepoints[1]`` studies each.

    A patient keeps anatomy, positioning style and lesion sites; the first study's sub-scores come
    from :func:`sample_subscores`, later ones follow a per-patient improving/stable/worsening
    random walk. ``study_id`` is a deterministic DICOM UID; ``offset`` is days since the first study.
    """
    lo, hi = int(timepoints[0]), int(timepoints[1])
    if n_patients < 1 or lo < 1 or hi < lo:
        raise ValueError(f"need n_patients >= 1 and 1 <= lo <= hi, got {n_patients}, {timepoints}")
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 202]))
    first = sample_subscores(n_patients, seed=seed, source=source)
    images, opacity, lungs, rows = [], [], [], []
    for p in range(n_patients):
        pid = f"PH{seed:04d}-{p:05d}"
        anatomy_seed = int(rng.integers(0, 2**31 - 1))
        n_t = int(rng.integers(lo, hi + 1))
        trend = int(rng.choice([-1, 0, 1]))
        sub = {k: int(first.at[p, k]) for k in SUBSCORE_COLUMNS}
        offset = int(rng.integers(0, 8))
        for t in range(n_t):
            if t:
                sub = _evolve(sub, trend, rng)
                offset += int(rng.integers(1, 6))
            ph = render_phantom(
                sub, size=size, seed=int(rng.integers(0, 2**31 - 1)), anatomy_seed=anatomy_seed
            )
            images.append(ph.image)
            opacity.append(ph.opacity_mask)
            lungs.append(ph.lung_mask)
            rows.append(
                {
                    "patient_id": pid,
                    "study_id": _uid(seed, pid, t),
                    "timepoint": t,
                    "offset": offset,
                    **ph.labels,
                    "opacity_fraction_right": ph.info["opacity_fraction_right"],
                    "opacity_fraction_left": ph.info["opacity_fraction_left"],
                }
            )
    return PhantomCohort(
        images=np.stack(images),
        opacity_masks=np.stack(opacity),
        lung_masks=np.stack(lungs),
        table=pd.DataFrame(rows),
    )


# --------------------------------------------------------------------------------------------
# On-disk data sets in the real formats (MIDRC labels + DICOM, Cohen CSVs + PNG)
# --------------------------------------------------------------------------------------------
_COHEN_HEADER = (
    "## Synthetic kerassev phantoms: exact scores (no raters) in the layout of covid-severity-scores.csv,,\n"
    "## License: generated data; no restrictions,,\n"
    "## Citation: layout after Joseph Paul Cohen et al. Predicting COVID-19 Pneumonia Severity on Chest X-Ray with Deep Learning. May 2020 http://arxiv.org/abs/2005.11856.,,\n"
    "## geographic_extent_mean: The extent of lung involvement by ground glass opacity or consolidation for each lung. The total extent score ranged from 0 to 8.,,\n"
    "## opacity_mean: The degree of opacity. The total opacity score ranged from 0 to 6.,,\n"
)
# Column order of the upstream metadata.csv (covid-chestxray-dataset).
COHEN_METADATA_COLUMNS = (
    "patientid", "offset", "sex", "age", "finding", "survival", "intubated", "intubation_present",
    "went_icu", "in_icu", "needed_supplemental_O2", "extubated", "temperature", "pO2_saturation",
    "leukocyte_count", "neutrophil_count", "lymphocyte_count", "view", "modality", "date",
    "location", "folder", "filename", "doi", "url", "license", "clinical_notes", "other_notes",
)  # fmt: skip


def _midrc_rows(table: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame({"StudyInstanceUID": table["study_id"]})
    for side in ("right", "left"):
        out[f"extent_{side}"] = table[f"extent_{side}"].map(EXTENT_TEXT)
        out[f"density_{side}"] = table[f"density_{side}"].map(DENSITY_TEXT)
    out["quality_issue"] = ""
    for col in SUBSCORE_COLUMNS:
        out[f"{col}_numerical"] = table[col].astype(int)
    out["mRALE Score"] = table["mrale"].astype(int)
    return out.loc[:, list(MIDRC_COLUMNS)]


def write_phantom_dataset(
    out_dir: str | Path,
    n_patients: int,
    *,
    fmt: Literal["png", "dicom"] = "png",
    size: int = 256,
    seed: int = 0,
    photometric: Literal["MONOCHROME2", "MONOCHROME1", "mixed"] = "MONOCHROME2",
    bits_stored: Literal[8, 12, 16] = 12,
    timepoints: tuple[int, int] = (1, 3),
    source: Literal["midrc", "uniform"] = "midrc",
) -> pd.DataFrame:
    """Write a phantom cohort as files plus labels in the real data sets' formats.

    Writes ``labels.csv`` (MIDRC columns and strings), ``annotations/covid-severity-scores.csv``
    and ``metadata.csv`` (Cohen layout), and the images: 8-bit PNG in ``images/`` (``fmt="png"``)
    or DICOM at ``<StudyInstanceUID>/<SOPInstanceUID>.dcm`` (``fmt="dicom"``; ``photometric`` and
    ``bits_stored`` apply, ``"mixed"`` draws MONOCHROME1/2 per image; a full-range window is
    written so VOI-applying readers recover the phantom exactly). For DICOM the Cohen CSVs name
    ``<SOPInstanceUID>.dcm`` with ``folder`` = the study UID, so Cohen loaders that look in
    ``images/`` need ``fmt="png"``. Refuses a non-empty ``out_dir`` (FileExistsError).
    Returns the dataset table (path, patient_id, study_id, view, timepoint, offset, labels ...).
    """
    from PIL import Image

    from kerassev.io.dicom_write import full_range_window, write_dicom

    out_dir = Path(out_dir)
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise FileExistsError(f"{out_dir} exists and is not empty; refusing to overwrite it")
    if fmt not in ("png", "dicom"):
        raise ValueError(f"fmt must be 'png' or 'dicom', got {fmt!r}")
    if photometric not in ("MONOCHROME2", "MONOCHROME1", "mixed"):
        raise ValueError(
            f"photometric must be MONOCHROME1, MONOCHROME2 or mixed, got {photometric!r}"
        )
    if bits_stored not in (8, 12, 16):
        raise ValueError(f"bits_stored must be 8, 12 or 16, got {bits_stored!r}")

    cohort = make_phantom_cohort(
        n_patients, timepoints=timepoints, size=size, seed=seed, source=source
    )
    table = cohort.table.copy()
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 303]))
    out_dir.mkdir(parents=True, exist_ok=True)
    paths, folders, filenames, photometrics = [], [], [], []
    for i, row in table.iterrows():
        img = cohort.images[i]
        if fmt == "png":
            name = f"{row.patient_id}_t{row.timepoint}.png"
            path = out_dir / "images" / name
            path.parent.mkdir(exist_ok=True)
            Image.fromarray(np.rint(img * 255).astype(np.uint8), mode="L").save(path)
            folders.append("images")
            phot = "MONOCHROME2"
        else:
            phot = photometric
            if phot == "mixed":
                phot = ("MONOCHROME1", "MONOCHROME2")[int(rng.integers(0, 2))]
            sop = _uid(seed, row.study_id, "sop")
            name = f"{sop}.dcm"
            path = write_dicom(
                out_dir / row.study_id / name,
                img,
                photometric=phot,
                bits_stored=bits_stored,
                patient_id=row.patient_id,
                study_uid=row.study_id,
                series_uid=_uid(seed, row.study_id, "series"),
                sop_uid=sop,
                view_position="AP",
                window=full_range_window(bits_stored),  # readers recover the phantom exactly
                pixel_spacing=(430.0 / size, 430.0 / size),  # a 43 cm detector
                extra={
                    "StudyDate": (
                        pd.Timestamp("2020-04-01") + pd.Timedelta(days=int(row.offset))
                    ).strftime("%Y%m%d"),
                    "SeriesDescription": "kerassev phantom",
                },
            )
            folders.append(row.study_id)
        paths.append(str(path.resolve()))
        filenames.append(name)
        photometrics.append(phot)

    # MIDRC: one row per study (one image per study here).
    _midrc_rows(table).to_csv(out_dir / "labels.csv", index=False)

    # Cohen: severity scores with the upstream '##' header, and metadata.csv.
    (out_dir / "annotations").mkdir()
    scores = pd.DataFrame(
        {
            "filename": filenames,
            "geographic_mean": table["geographic_mean"],
            "opacity_mean": table["opacity_mean"],
        }
    )
    with open(out_dir / "annotations" / "covid-severity-scores.csv", "w", newline="") as fh:
        fh.write(_COHEN_HEADER)
        scores.to_csv(fh, index=False)
    worst = table.groupby("patient_id")["mrale"].transform("max")
    meta = pd.DataFrame({c: [""] * len(table) for c in COHEN_METADATA_COLUMNS})
    meta["patientid"] = table["patient_id"]
    meta["offset"] = table["offset"]
    meta["finding"] = np.where(table["mrale"] > 0, "COVID-19", "No Finding")
    meta["survival"] = np.where(worst >= 20, "N", "Y")  # synthetic: worst score decides
    meta["view"] = "PA"
    meta["modality"] = "X-ray"
    meta["folder"] = folders
    meta["filename"] = filenames
    meta["license"] = "synthetic"
    meta.to_csv(out_dir / "metadata.csv", index=False)

    table.insert(0, "path", paths)
    table.insert(3, "view", "PA" if fmt == "png" else "AP")
    table["filename"] = filenames
    if fmt == "dicom":
        table["photometric"] = photometrics
    return table

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

**Sub-scores** come from :mod:`.cxr_labels` (the MIDRC joint distribution, shipped with the
package); :mod:`.cxr_files` writes cohorts in the real data sets' file formats, and
:mod:`.drawing` holds the helpers other modalities share.

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
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import ndimage

from kerassev.data.phantoms.cxr_labels import (
    SUBSCORE_COLUMNS,
    labels_from_subscores,
    sample_subscores,
)
from kerassev.data.phantoms.drawing import (
    phantom_uid,
    pose_coordinates,
    sample_lattice,
    smooth_lattice,
    uniform,
)

# Target share of a lung's pixels covered by opacity, per extent score (uniform within).
EXTENT_FRACTION = {1: (0.08, 0.22), 2: (0.29, 0.47), 3: (0.54, 0.72), 4: (0.80, 0.96)}
# Share of the lung's air darkness that the opacity fills, per density score.
DENSITY_FILL = {1: 0.45, 2: 0.68, 3: 0.90}

# Lattice of the smooth opacity field over [-1.35, 1.35]^2 in normalised coordinates; its
# correlation length (~0.14) is fixed in anatomy units, so lesions look alike at any image size.
_FIELD_N = 64
_FIELD_EXTENT = 1.35
_FIELD_SIGMA = 3.3


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


@functools.lru_cache(maxsize=256)
def _anatomy(anatomy_seed: int) -> dict[str, Any]:
    """Cached per patient: a cohort renders each patient's anatomy once."""
    a = _draw_anatomy(np.random.default_rng(np.random.SeedSequence([anatomy_seed, 7])))
    a["field"].setflags(write=False)
    return a


def _draw_anatomy(rng: np.random.Generator) -> dict[str, Any]:
    """Per-patient anatomy, positioning style and persistent part of the opacity field."""
    dome_r = uniform(rng, 0.40, 0.52)
    dome_l = dome_r + uniform(rng, 0.03, 0.08)
    return {
        "body_w": uniform(rng, 0.86, 0.97),
        "lung_cx": (uniform(rng, 0.36, 0.42), uniform(rng, 0.36, 0.42)),  # right, left
        "lung_ax": (uniform(rng, 0.27, 0.32), uniform(rng, 0.26, 0.31)),
        "lung_top": (uniform(rng, -0.80, -0.72), uniform(rng, -0.80, -0.72)),
        "dome": (dome_r, dome_l),
        "dome_k": uniform(rng, 1.0, 1.6),
        "med_w": uniform(rng, 0.08, 0.11),
        "heart": (
            uniform(rng, 0.12, 0.18),  # centre x (patient's left = +x)
            dome_l - uniform(rng, 0.10, 0.15),  # centre y: sits on the diaphragm
            uniform(rng, 0.29, 0.35),  # half-width
            uniform(rng, 0.22, 0.27),  # half-height
        ),
        "darkness": uniform(rng, 0.30, 0.40),
        "rib_spacing": uniform(rng, 0.13, 0.15),
        "rib_start": uniform(rng, -0.95, -0.85),
        "clavicle_y": uniform(rng, -0.74, -0.66),
        "pose": (
            float(rng.normal(0.0, math.radians(2.0))),  # rotation
            uniform(rng, -0.04, 0.04),  # translation x
            uniform(rng, -0.04, 0.04),  # translation y
            uniform(rng, 0.93, 1.04),  # scale
        ),
        "field": smooth_lattice(rng, _FIELD_N, _FIELD_SIGMA),
    }


def _draw_study(rng: np.random.Generator) -> dict[str, Any]:
    """Per-image positioning jitter, exposure, noise and the study part of the opacity field."""
    return {
        "pose_jitter": (
            float(rng.normal(0.0, math.radians(1.5))),
            float(rng.normal(0.0, 0.015)),
            float(rng.normal(0.0, 0.015)),
            uniform(rng, 0.98, 1.02),
        ),
        "gamma": float(np.exp(rng.uniform(np.log(0.8), np.log(1.25)))),
        "contrast": uniform(rng, 0.85, 1.15),
        "target_mean": uniform(rng, 0.32, 0.62),
        "heel": (uniform(rng, -0.05, 0.05), uniform(rng, 0.0, 2 * math.pi)),
        "noise": uniform(rng, 0.008, 0.025),
        "field": smooth_lattice(rng, _FIELD_N, _FIELD_SIGMA),
        "fraction_u": (float(rng.random()), float(rng.random())),
        "seed": int(rng.integers(0, 2**31 - 1)),
    }


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
    x, y = pose_coordinates(size, rot, tx, ty, sc)
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
    field_xy = sample_lattice(lattice.astype(f32), size, (rot, tx, ty, sc), _FIELD_EXTENT)
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
                    "study_id": phantom_uid(seed, pid, t),
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

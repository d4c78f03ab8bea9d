"""Longitudinal lung-ultrasound phantoms (paper 02), deterministic by seed.

Each patient has a hidden S/F-like health trajectory: a baseline drawn from a wide range (large
between-patient spread) and small visit-to-visit steps. A visit's severity
``sev = clip((SF_HEALTHY - sf) / (SF_HEALTHY - SF_SICK), 0, 1)`` sets what a B-mode clip shows:

* a bright pleural line at a depth that depends on the clip's probe depth, more irregular as
  ``sev`` grows;
* A-lines (horizontal reverberations at multiples of the pleural depth), fading with ``sev``;
* B-lines (vertical comet tails from the pleura down), about ``8 * sev`` of them, sliding a
  little from frame to frame (lung sliding); they wipe out the A-lines they cross;
* a hypoechoic, tissue-like consolidation under the pleura when ``sev > 0.5``, wider with ``sev``;
* an anechoic effusion at the bottom when ``sev > 0.7``;
* multiplicative speckle (part fixed per clip, part new each frame), depth attenuation, and a
  per-clip gain.

The S/F bins of SPEC 02 (>430, 275-430, 180-275, <180) turn two visits into an
improved / same / deteriorated label (:mod:`kerassev.recipes.learner.pairs`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

SF_HEALTHY, SF_SICK = 480.0, 100.0  # severity 0 and 1
SF_RANGE = (80.0, 500.0)
LUS_PHANTOM_COLUMNS = ("patient_id", "visit", "visit_date", "sf_ratio", "severity")


def severity_from_sf(sf) -> np.ndarray:
    """Hidden severity in [0, 1] of an S/F ratio (480 -> 0, 100 -> 1)."""
    return np.clip((SF_HEALTHY - np.asarray(sf, float)) / (SF_HEALTHY - SF_SICK), 0.0, 1.0)


def sample_trajectories(
    n_patients: int,
    *,
    visits: tuple[int, int] = (2, 5),
    step_sd: float = 60.0,
    seed: int = 0,
) -> pd.DataFrame:
    """One row per visit: patient_id, visit (0..), visit_date, sf_ratio, severity.

    Baselines are uniform over 110-490 (between-patient spread ~380); steps are N(0, step_sd).
    """
    lo, hi = visits
    if not 2 <= lo <= hi:
        raise ValueError(f"visits must satisfy 2 <= min <= max, got {visits}")
    rows = []
    for p in range(n_patients):
        rng = np.random.default_rng([seed, p, 1])
        n = int(rng.integers(lo, hi + 1))
        sf = float(rng.uniform(110.0, 490.0))
        day = pd.Timestamp("2021-01-04") + pd.Timedelta(days=int(rng.integers(0, 300)))
        for v in range(n):
            if v:
                sf = float(np.clip(sf + rng.normal(0.0, step_sd), *SF_RANGE))
                day += pd.Timedelta(days=int(rng.integers(1, 4)))
            rows.append((f"LUS{p:04d}", v, day.date().isoformat(), round(sf, 1)))
    table = pd.DataFrame(rows, columns=list(LUS_PHANTOM_COLUMNS[:4]))
    table["severity"] = severity_from_sf(table["sf_ratio"])
    return table


def _speckle(rng, shape) -> np.ndarray:
    """Rayleigh speckle with mean 1."""
    return rng.rayleigh(1.0, shape) / np.sqrt(np.pi / 2)


def render_lus_clip(
    severity: float,
    *,
    n_frames: int = 8,
    size: int = 64,
    seed: int | np.random.SeedSequence = 0,
) -> np.ndarray:
    """A B-mode-like clip, float32 ``(n_frames, size, size)`` in ``[0, 1]``."""
    rng = np.random.default_rng(seed)
    sev = float(np.clip(severity, 0.0, 1.0))
    depth_cm = rng.uniform(4.0, 6.0)  # probe depth per clip (paper §2.1: 4-6 cm)
    gain = rng.uniform(0.75, 1.25)
    t, s = n_frames, size
    y = np.arange(s, dtype=np.float32)[None, :, None]  # (1, S, 1) rows
    x = np.arange(s, dtype=np.float32)[None, None, :]  # columns
    y_pleura = s * rng.uniform(1.0, 1.4) / depth_cm
    # irregular pleura with severity, smooth along x
    bumps = np.convolve(rng.normal(0, 1, s + 8), np.ones(9) / 9, mode="valid")[:s]
    pleura = y_pleura + sev * 2.5 * bumps * s / 64
    width = max(0.8, s / 64)
    img = np.zeros((t, s, s), np.float32)
    above = y < pleura[None, None, :]
    img += np.where(above, 0.35 + 0.08 * np.sin(y * 0.9 + rng.uniform(0, 6)), 0.06)
    img += np.exp(-0.5 * ((y - pleura[None, None, :]) / width) ** 2)
    # A-lines: reverberations at multiples of the pleural depth, fading with severity
    a_lines = sum(
        (0.55 * (1 - sev) ** 1.5 * 0.7 ** (k - 2))
        * np.exp(-0.5 * ((y - k * y_pleura) / width) ** 2)
        for k in range(2, 6)
    )
    # B-lines: vertical comet tails from the pleura down, sliding a little each frame
    n_b = int(rng.poisson(8.0 * sev))
    centres = rng.uniform(0.05 * s, 0.95 * s, n_b)
    slide = rng.normal(0.0, 0.4 * s / 64, (t, 1)).cumsum(axis=0)  # (T, 1) lung sliding
    b_mask = np.zeros((t, 1, s), np.float32)
    for c in centres:
        half = rng.uniform(0.8, 1.6) * s / 64
        b_mask = np.maximum(b_mask, np.exp(-0.5 * ((x - (c + slide[:, :, None])) / half) ** 2))
    below = ~above
    img += below * a_lines * (1 - b_mask)
    img += below * 0.75 * b_mask * np.exp(-(y - pleura[None, None, :]).clip(0) / (2.5 * s))
    # consolidation: tissue-like hypoechoic region with a ragged lower (shred) border
    if sev > 0.5:
        half_w = (sev - 0.5) * 0.8 * s
        cx = rng.uniform(0.3 * s, 0.7 * s)
        bottom = pleura + (0.15 + 0.5 * (sev - 0.5)) * s + 2 * bumps * s / 64
        inside = below & (np.abs(x - cx) < half_w) & (y < bottom[None, None, :])
        img = np.where(inside, 0.3 + 0.1 * rng.random((1, s, s)), img)
        edge = np.exp(-0.5 * ((y - bottom[None, None, :]) / width) ** 2) * (np.abs(x - cx) < half_w)
        img += 0.5 * edge
    # effusion: anechoic band at the bottom
    if sev > 0.7:
        top = s * (1.0 - 0.9 * (sev - 0.7))
        img = np.where(below & (y > top), 0.02, img)
    attenuation = np.exp(-1.2 * y / s)
    fixed = _speckle(rng, (1, s, s))
    speckle = 0.7 * fixed + 0.3 * _speckle(rng, (t, s, s))
    out = img * attenuation * speckle * gain
    return np.clip(out, 0.0, 1.0).astype(np.float32)


@dataclass
class LusPhantomCohort:
    """Clips ``(N, T, S, S)`` and their table (one row per clip; LUS_PHANTOM_COLUMNS)."""

    clips: np.ndarray
    table: pd.DataFrame


def make_lus_cohort(
    n_patients: int = 40,
    *,
    visits: tuple[int, int] = (2, 5),
    n_frames: int = 8,
    size: int = 64,
    step_sd: float = 60.0,
    seed: int = 0,
) -> LusPhantomCohort:
    """Patients with several visits, one clip a visit, deterministic by ``seed``."""
    table = sample_trajectories(n_patients, visits=visits, step_sd=step_sd, seed=seed)
    clips = np.stack(
        [
            render_lus_clip(sev, n_frames=n_frames, size=size, seed=[seed, i, 2])
            for i, sev in enumerate(table["severity"])
        ]
    )
    return LusPhantomCohort(clips, table)


def write_lus_inhouse_layout(root, cohort: LusPhantomCohort, *, fps: int = 20) -> pd.DataFrame:
    """Write ``cohort`` in the in-house layout (``data_manifests/lus_inhouse.template.yaml``):
    ``scans.csv`` and ``videos/<patient>/<date>_v<visit>.mp4``. Returns the CSV's table."""
    from pathlib import Path

    from kerassev.io.video import write_video

    root = Path(root)
    rows = []
    for clip, row in zip(cohort.clips, cohort.table.itertuples(index=False), strict=True):
        video = f"{row.patient_id}/{row.visit_date}_v{row.visit}.mp4"
        write_video(root / "videos" / video, clip, fps=fps)
        rows.append((row.patient_id, row.visit_date, video, row.sf_ratio))
    table = pd.DataFrame(rows, columns=["patient_id", "visit_date", "video", "sf_ratio"])
    table.to_csv(root / "scans.csv", index=False)
    return table


__all__ = [
    "LUS_PHANTOM_COLUMNS",
    "SF_HEALTHY",
    "SF_SICK",
    "LusPhantomCohort",
    "make_lus_cohort",
    "render_lus_clip",
    "sample_trajectories",
    "severity_from_sf",
    "write_lus_inhouse_layout",
]

"""CXR phantom labels: the MIDRC mRALE sub-scores, their consistency rules, and sampling them.

mRALE = extent_r * density_r + extent_l * density_l (0-24), extent 0-4 and density 0-3 per lung,
extent 0 <=> density 0; Cohen's ``geographic_mean = extent_r + extent_l`` (0-8) and
``opacity_mean = density_r + density_l`` (0-6).

**Where the label distribution comes from.** ``midrc_subscores.csv`` beside this module is the
joint distribution of the four sub-scores, counted once from the 2,079 rows of the MIDRC label
file (see its header for provenance) by :func:`derive_subscore_table`; the 4 file rows whose
extent and density disagree on "none" are coded as "no opacity" in that lung (their mRALE is
unchanged). It ships with the package, so phantoms are identical on every machine for a seed,
whether or not ``../shared/data`` is present. Sampling rows of it by their counts is sampling
the real file's rows with replacement.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

SUBSCORE_COLUMNS = ("extent_right", "density_right", "extent_left", "density_left")
LABEL_COLUMNS = (*SUBSCORE_COLUMNS, "mrale", "geographic_mean", "opacity_mean")
MIDRC_LABEL_FILE = "MIDRC mRALE Mastermind Training Annotations_2079_20230428.csv"
#: The shipped sub-score table (package data of ``kerassev.data.phantoms``).
SUBSCORE_TABLE_FILE = "midrc_subscores.csv"


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


def derive_subscore_table(label_csv: str | Path) -> pd.DataFrame:
    """The shipped table from a MIDRC label file: one row per sub-score combination that occurs,
    with ``studies`` = how many rows have it (inconsistent lungs coded as none), sorted."""
    raw = pd.read_csv(label_csv)
    df = pd.DataFrame({c: raw[f"{c}_numerical"].astype(np.int64) for c in SUBSCORE_COLUMNS})
    counts = _make_consistent(df).value_counts().rename("studies").reset_index()
    return counts.sort_values(list(SUBSCORE_COLUMNS)).reset_index(drop=True)


@functools.cache
def subscore_table() -> pd.DataFrame:
    """The shipped joint sub-score distribution (``midrc_subscores.csv``; see module docstring)."""
    path = resources.files("kerassev.data.phantoms") / SUBSCORE_TABLE_FILE
    with path.open() as fh:
        table = pd.read_csv(fh, comment="#")
    return table.astype(np.int64)


def sample_subscores(
    n: int, *, seed: int = 0, source: Literal["midrc", "uniform"] = "midrc"
) -> pd.DataFrame:
    """``n`` consistent sub-score rows with mrale, geographic_mean and opacity_mean.

    ``"midrc"`` draws rows of the shipped MIDRC table with their frequencies (the same on every
    machine); ``"uniform"``: extent 0-4 and density 1-3 uniform per lung. ``df.attrs["source"]``
    says which.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 101]))
    if source == "uniform":
        ext = rng.integers(0, 5, size=(n, 2))
        den = rng.integers(1, 4, size=(n, 2)) * (ext > 0)
        df = pd.DataFrame(
            {
                "extent_right": ext[:, 0],
                "density_right": den[:, 0],
                "extent_left": ext[:, 1],
                "density_left": den[:, 1],
            }
        )
        used = "uniform"
    elif source == "midrc":
        table = subscore_table()
        p = table["studies"].to_numpy(np.float64)
        rows = rng.choice(len(table), size=n, p=p / p.sum())
        df = table.iloc[rows][list(SUBSCORE_COLUMNS)]
        used = "midrc-table"
    else:
        raise ValueError(f"source must be 'midrc' or 'uniform', got {source!r}")
    out = _with_derived(_make_consistent(df))
    out.attrs["source"] = used
    return out

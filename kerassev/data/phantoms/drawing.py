"""Drawing helpers every phantom modality shares: seeded draws, smooth random fields, the
pixel grid in normalised anatomy coordinates under a positioning transform, and phantom UIDs.

Shapes are analytic in normalised coordinates ``x, y`` in [-1, 1] (x to the image right, y down),
so a phantom renders alike at any size; a pose ``(rotation, tx, ty, scale)`` moves the patient.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

__all__ = ["phantom_uid", "pose_coordinates", "sample_lattice", "smooth_lattice", "uniform"]


def uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    """One uniform draw in ``[lo, hi)`` as a Python float."""
    return float(rng.uniform(lo, hi))


def smooth_lattice(rng: np.random.Generator, n: int, sigma: float) -> np.ndarray:
    """A unit-variance smooth random field on an ``n x n`` lattice (Gaussian-filtered white
    noise, ``sigma`` in lattice cells, wrapped so it has no edge)."""
    f = rng.standard_normal((n, n), dtype=np.float32)
    f = ndimage.gaussian_filter(f, sigma, mode="wrap")
    return (f - f.mean()) / (f.std() + 1e-12)


def pose_coordinates(size: int, rot: float, tx: float, ty: float, scale: float):
    """Anatomical ``(x, y)`` of every pixel of a ``size x size`` image, after the inverse of the
    positioning transform (rotation ``rot`` radians, translation, scale)."""
    c = (np.arange(size, dtype=np.float32) + 0.5) / size * 2.0 - 1.0
    du = c[None, :] - np.float32(tx)
    dv = c[:, None] - np.float32(ty)
    cos, sin = np.float32(math.cos(rot)), np.float32(math.sin(rot))
    x = (cos * du + sin * dv) / np.float32(scale)
    y = (-sin * du + cos * dv) / np.float32(scale)
    return x, y


def sample_lattice(
    lattice: np.ndarray, size: int, pose: tuple[float, float, float, float], extent: float
) -> np.ndarray:
    """A lattice field covering ``[-extent, extent]^2`` of anatomy, at every pixel's anatomical
    position (bilinear; one affine resample, so it moves with the patient)."""
    rot, tx, ty, scale = pose
    n = lattice.shape[0]
    k = (n - 1) / (2 * extent)  # lattice cells per normalised unit
    cos, sin = math.cos(rot), math.sin(rot)
    # pixel (i, j) -> (v, u) = (2 (i + .5) / size - 1, ...) -> (y, x) anatomy -> lattice (r, c)
    a = 2.0 / size
    matrix = np.array([[cos * a, -sin * a], [sin * a, cos * a]]) * (k / scale)
    v0, u0 = a * 0.5 - 1.0 - ty, a * 0.5 - 1.0 - tx
    offset = np.array([cos * v0 - sin * u0, sin * v0 + cos * u0]) * (k / scale) + k * extent
    return ndimage.affine_transform(
        lattice, matrix, offset=offset, output_shape=(size, size), order=1, mode="nearest"
    )


def phantom_uid(*parts: object) -> str:
    """A deterministic DICOM UID for a phantom object named by ``parts``."""
    from pydicom.uid import generate_uid  # pydicom is a core dependency; imported lazily

    return str(generate_uid(entropy_srcs=["kerassev-phantom", *map(str, parts)]))

"""Synthetic axial chest CT slices with lesion label maps: COVID-like, common-pneumonia-like, normal.

Deterministic by seed. A slice is drawn in normalised coordinates ``x, y`` in [-1, 1] (image
left = patient right, as radiologists view CT) and rendered at any ``size``:

* body: an ellipse of soft tissue in air, with a brighter spine and a mediastinum between the
  lungs; lungs: two jittered ellipses of dark parenchyma with bright vessel dots;
* ``"covid"``: bilateral, peripheral ground-glass opacities (SPEC §05; paper 05 §1: GGO "tends to
  be bilateral in COVID-19"): 1-3 hazy patches per lung centred near the lateral / posterior lung
  border, vessels still visible through them, some with a small consolidated core;
* ``"cp"``: lobar consolidation in one lung: the lung below a tilted line is dense (near soft
  tissue), with a ground-glass rim;
* ``"normal"``: no lesion.

``label_map`` uses the ct_lesions coding: 0 background, 1 GGO, 2 consolidation, so
:func:`kerassev.data.instances.instances_from_label_map` and the Mask R-CNN recipe take phantoms
and real slices alike. Limitations: one slice, no 3-D anatomy, airways, fissures or pleural
effusion; intensities are a display window in [0, 1], not Hounsfield units.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

CT_KINDS = ("covid", "cp", "normal")
AIR, LUNG, TISSUE, BONE = 0.02, 0.12, 0.52, 0.9
GGO_GAIN, CONSOLIDATION = 0.2, 0.5


@dataclass(frozen=True)
class CtPhantom:
    image: np.ndarray  # (S, S) float32 in [0, 1]
    label_map: np.ndarray  # (S, S) uint8: 0 background, 1 GGO, 2 consolidation
    lung_mask: np.ndarray  # (S, S) bool
    kind: str
    seed: int


def _blob(x, y, cx, cy, r, rng, size):
    """A random smooth blob of radius ~``r`` at (cx, cy): thresholded blurred noise in a disc."""
    noise = ndimage.gaussian_filter(rng.standard_normal((size, size)), sigma=max(1.0, size * r / 4))
    noise /= noise.std() + 1e-8
    d = np.hypot(x - cx, y - cy) / r
    return (1.0 - d**2) + 0.35 * noise > 0.3


def ct_phantom(kind: str, seed: int, size: int = 256) -> CtPhantom:
    """One slice of ``kind`` (``"covid"``, ``"cp"`` or ``"normal"``), identical for equal seeds."""
    if kind not in CT_KINDS:
        raise ValueError(f"unknown CT phantom kind {kind!r}; choose one of {CT_KINDS}")
    rng = np.random.default_rng([seed, CT_KINDS.index(kind)])
    y, x = np.mgrid[-1 : 1 : size * 1j, -1 : 1 : size * 1j]
    image = np.full((size, size), AIR)
    body = (x / rng.uniform(0.85, 0.95)) ** 2 + ((y - 0.02) / rng.uniform(0.66, 0.76)) ** 2 <= 1
    image[body] = TISSUE
    lungs = []
    for side in (-1, 1):
        cx, cy = side * rng.uniform(0.38, 0.46), rng.uniform(-0.12, -0.02)
        rx, ry = rng.uniform(0.26, 0.32), rng.uniform(0.42, 0.5)
        lung = ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 <= 1
        lung &= ~(((x - side * 0.08) / 0.16) ** 2 + ((y - 0.1) / 0.3) ** 2 <= 1)  # mediastinum
        lungs.append((lung & body, cx, cy, rx, ry, side))
    lung_mask = lungs[0][0] | lungs[1][0]
    image[lung_mask] = LUNG
    image[np.hypot(x, (y - 0.56) / 0.9) < 0.09] = BONE  # vertebral body
    # Vessels: small bright dots inside the lungs.
    vessels = np.zeros((size, size))
    for _ in range(60):
        i, j = rng.integers(0, size, 2)
        if lung_mask[i, j]:
            vessels[i, j] = 1.0
    vessels = ndimage.gaussian_filter(vessels, sigma=max(0.6, size / 256)) * (size / 64) ** 2
    image += 0.35 * np.clip(vessels, 0, 1) * lung_mask

    ggo = np.zeros((size, size), bool)
    cons = np.zeros((size, size), bool)
    if kind == "covid":
        for lung, cx, cy, rx, ry, side in lungs:  # bilateral
            for _ in range(rng.integers(1, 4)):
                angle = rng.uniform(-0.6, 1.4)  # lateral to posterior (image down = posterior)
                px = cx + side * 0.8 * rx * np.cos(angle)
                py = cy + 0.8 * ry * np.sin(angle)
                patch = _blob(x, y, px, py, rng.uniform(0.07, 0.14), rng, size) & lung
                ggo |= patch
                if rng.uniform() < 0.3:
                    cons |= _blob(x, y, px, py, rng.uniform(0.025, 0.045), rng, size) & patch
    elif kind == "cp":
        lung, cx, cy, rx, ry, side = lungs[rng.integers(2)]
        tilt = rng.uniform(-0.4, 0.4)
        below = y - cy > rng.uniform(-0.1, 0.15) * ry + tilt * (x - cx)
        cons = lung & below
        rim = ndimage.binary_dilation(cons, iterations=max(2, size // 64)) & lung & ~cons
        ggo = rim
    image = np.where(ggo, image + GGO_GAIN, image)
    image = np.where(cons, np.maximum(image, CONSOLIDATION + 0.05 * rng.standard_normal()), image)
    image = ndimage.gaussian_filter(image, sigma=max(0.5, size / 384))
    image += 0.015 * rng.standard_normal((size, size))
    label_map = np.zeros((size, size), np.uint8)
    label_map[ggo] = 1
    label_map[cons] = 2
    return CtPhantom(np.clip(image, 0, 1).astype(np.float32), label_map, lung_mask, kind, seed)


def ct_phantom_set(n_per_kind: int, *, seed: int = 0, size: int = 256, kinds=CT_KINDS):
    """``n_per_kind`` phantoms of each kind, seeds ``seed * 100003 + i``, kinds interleaved."""
    return [ct_phantom(kind, seed * 100003 + i, size) for i in range(n_per_kind) for kind in kinds]

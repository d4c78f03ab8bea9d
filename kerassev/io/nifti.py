"""NIfTI volumes as clips of slices (paper 02's ADNI layout), via nibabel."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

from kerassev.io.video import sample_indices


class NiftiReadError(ValueError):
    """A NIfTI file cannot be read; the message names the file and the problem."""


def read_nifti_clip(path: str | os.PathLike, t: int = 8, *, size: int = 112) -> np.ndarray:
    """``t`` axial slices spread uniformly over the central 80% of the volume, each scaled by the
    volume's 1st-99th percentiles to ``[0, 1]`` and resized to ``(size, size)``:
    float32 ``(1, t, size, size)``, the shape :meth:`kerassev.io.video.ClipReader.read` returns."""
    import nibabel as nib

    path = Path(path)
    try:
        volume = np.asarray(nib.load(str(path)).get_fdata(dtype=np.float32))
    except Exception as err:  # nibabel raises several types for bad files
        raise NiftiReadError(
            f"{path}: not a readable NIfTI volume ({type(err).__name__}: {err})"
        ) from err
    if volume.ndim == 4:
        volume = volume[..., 0]
    if volume.ndim != 3 or min(volume.shape) < 2:
        raise NiftiReadError(f"{path}: expected a 3D volume, got shape {volume.shape}")
    lo, hi = np.percentile(volume, [1, 99])
    volume = np.clip((volume - lo) / max(hi - lo, 1e-6), 0, 1)
    n = volume.shape[2]
    first, last = int(0.1 * n), max(int(0.1 * n) + 1, int(np.ceil(0.9 * n)))
    idx = first + sample_indices(last - first, t)[0]
    slices = [
        np.asarray(Image.fromarray(volume[:, :, i]).resize((size, size), Image.BILINEAR))
        for i in idx
    ]
    return np.stack(slices)[None].astype(np.float32)

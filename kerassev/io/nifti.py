"""NIfTI volumes as clips of slices (paper 02's ADNI layout), via nibabel.

Every volume is first reoriented to RAS+ (``nibabel.as_closest_canonical``), so axis 2 runs
inferior -> superior whatever the file's affine says (LPS, permuted axes, ...). Axial slices are
then shown the radiological way, anterior at the top and the patient's right on the image's
left, and resized keeping the physical aspect ratio of the voxels (padding, not stretching).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from kerassev.io.video import sample_indices


class NiftiReadError(ValueError):
    """A NIfTI file cannot be read; the message names the file and the problem."""


def read_canonical(path: str | os.PathLike) -> tuple[np.ndarray, tuple[float, float, float]]:
    """The volume as float32 ``(R, A, S)`` (RAS+ axes; the first frame of a 4D file) and its
    voxel size in mm along those axes."""
    import nibabel as nib

    path = Path(path)
    try:
        image = nib.as_closest_canonical(nib.load(str(path)))
        volume = np.asarray(image.get_fdata(dtype=np.float32))
    except Exception as err:  # nibabel raises several types for bad files
        raise NiftiReadError(
            f"{path}: not a readable NIfTI volume ({type(err).__name__}: {err})"
        ) from err
    if volume.ndim == 4:
        volume = volume[..., 0]
    if volume.ndim != 3 or min(volume.shape) < 2:
        raise NiftiReadError(f"{path}: expected a 3D volume, got shape {volume.shape}")
    zooms = tuple(float(z) for z in image.header.get_zooms()[:3])
    return volume, zooms


def axial_slice(volume: np.ndarray, k: int) -> np.ndarray:
    """Axial slice ``k`` of an RAS+ volume, radiological view: rows run anterior -> posterior,
    columns the patient's right -> left. ``(A, R)`` pixels."""
    return volume[::-1, ::-1, k].T


def read_nifti_clip(path: str | os.PathLike, t: int = 8, *, size: int = 112) -> np.ndarray:
    """``t`` axial slices spread uniformly over the central 80% of the volume, each scaled by the
    volume's 1st-99th percentiles to ``[0, 1]`` and fitted into ``(size, size)`` with the voxels'
    aspect ratio kept (zero padding): float32 ``(1, t, size, size)``, the shape
    :meth:`kerassev.io.video.ClipReader.read` returns."""
    from kerassev.transforms.geometry import resize_keep_aspect

    volume, (dx, dy, _) = read_canonical(path)
    lo, hi = np.percentile(volume, [1, 99])
    volume = np.clip((volume - lo) / max(hi - lo, 1e-6), 0, 1)
    n = volume.shape[2]
    first, last = int(0.1 * n), max(int(0.1 * n) + 1, int(np.ceil(0.9 * n)))
    idx = first + sample_indices(last - first, t)[0]
    slices = [
        resize_keep_aspect(
            np.ascontiguousarray(axial_slice(volume, i))[..., None],
            size,
            mode="pad",
            spacing=(dy, dx),  # rows step along A, columns along R
        ).numpy()[..., 0]
        for i in idx
    ]
    return np.stack(slices)[None].astype(np.float32)

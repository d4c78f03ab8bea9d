"""NIfTI clips: a fixed (RAS+, radiological) orientation whatever the affine, aspect ratio kept."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from nibabel.orientations import apply_orientation, axcodes2ornt, inv_ornt_aff, ornt_transform

from kerassev.io.nifti import NiftiReadError, axial_slice, read_canonical, read_nifti_clip

ZOOMS = (1.0, 1.5, 2.0)


def _canonical_volume(shape=(24, 20, 30)) -> np.ndarray:
    """An asymmetric volume: a ramp along each axis plus a bright block in one corner, so any
    flip or permutation of the axes changes the slices."""
    x, y, z = np.meshgrid(*(np.linspace(0, 1, n) for n in shape), indexing="ij")
    volume = x + 2 * y + 3 * z
    volume[:6, -5:, :] += 4  # patient's left (low x), anterior (high y)
    return volume.astype(np.float32)


def _save(path, data, affine):
    nib.save(nib.Nifti1Image(data, affine), path)
    return path


def _reoriented(volume, axcodes):
    """The same scan stored with axes ``axcodes`` (e.g. LPS, or permuted), affine to match."""
    canonical_affine = np.diag([*ZOOMS, 1.0])
    transform = ornt_transform(axcodes2ornt("RAS"), axcodes2ornt(axcodes))
    data = apply_orientation(volume, transform)
    affine = canonical_affine @ inv_ornt_aff(transform, volume.shape)
    assert nib.aff2axcodes(affine) == tuple(axcodes)
    return data, affine


@pytest.mark.parametrize("axcodes", ["LPS", "SAR", "PIL"])
def test_a_non_canonical_affine_gives_the_canonical_slices(tmp_path, axcodes):
    volume = _canonical_volume()
    ras = _save(tmp_path / "ras.nii.gz", volume, np.diag([*ZOOMS, 1.0]))
    stored, affine = _reoriented(volume, axcodes)
    assert stored.shape != volume.shape or not np.array_equal(stored, volume)
    other = _save(tmp_path / f"{axcodes}.nii.gz", stored, affine)
    expected = read_nifti_clip(ras, 4, size=16)
    got = read_nifti_clip(other, 4, size=16)
    np.testing.assert_allclose(got, expected, atol=1e-6)
    data, zooms = read_canonical(other)
    np.testing.assert_array_equal(data, volume)
    assert zooms == ZOOMS


def test_axial_slices_are_radiological():
    volume = _canonical_volume()
    image = axial_slice(volume, 0)
    assert image.shape == (20, 24)  # (A, R) pixels
    # the bright block is anterior (top rows) and on the patient's left (image right)
    assert image[:5, -6:].mean() > image[-5:, :6].mean() + 3


def test_aspect_ratio_follows_the_voxel_size(tmp_path):
    rng = np.random.default_rng(0)
    volume = rng.uniform(0.5, 1.0, (40, 20, 10)).astype(np.float32)
    volume[0, 0, :] = 0  # a dark corner gives the 1st percentile 0: no real pixel maps to 0
    square_voxels = _save(tmp_path / "iso.nii.gz", volume, np.diag([1.0, 1.0, 1.0, 1.0]))
    tall_voxels = _save(tmp_path / "aniso.nii.gz", volume, np.diag([1.0, 2.0, 1.0, 1.0]))
    # 40 x 20 mm slices fill half the 16 px frame (rows padded), 40 x 40 mm fill all of it
    iso = read_nifti_clip(square_voxels, 2, size=16)[0, 0]
    aniso = read_nifti_clip(tall_voxels, 2, size=16)[0, 0]
    assert (iso.max(axis=1) == 0).sum() == 8
    assert (aniso.max(axis=1) == 0).sum() == 0 and aniso.shape == (16, 16)


def test_a_2d_image_is_refused_naming_the_file(tmp_path):
    flat = _save(tmp_path / "flat.nii", np.zeros((8, 8, 1), np.float32), np.eye(4))
    with pytest.raises(NiftiReadError, match=r"flat\.nii: expected a 3D volume"):
        read_nifti_clip(flat)

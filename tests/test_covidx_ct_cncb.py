"""COVIDx CT-1 sets from a CNCB image folder (`<CLASS>/<patient>/<scan>/<slice>.png|jpg`), on
small folders written here: a mini split root (real split lines) and the real split files."""

import shutil

import numpy as np
import pytest
from PIL import Image

from kerassev.data.loaders.covidx_ct import (
    MissingImagesError,
    cncb_candidates,
    load_covidx_ct_cncb,
    read_body_crop,
)

SPLITS = "splits/v1/{}_COVIDx_CT-1.txt"


def _write_slice(cncb, filename, *, ext=".png", size=512):
    cls, patient, scan, number = filename.removesuffix(".png").split("_")
    path = cncb / cls / patient / scan / f"{number}{ext}"
    path.parent.mkdir(parents=True, exist_ok=True)
    x = np.arange(size)
    pattern = ((x[None, :] + 2 * x[:, None]) % 256).astype(np.uint8)  # value = (col + 2 row) % 256
    Image.fromarray(pattern).save(path)
    return path


def _mini_split_root(tmp_path, real_root, per_class=3):
    """A split root with ``per_class`` real lines per class and split (first ones listed)."""
    root = tmp_path / "covidx_ct"
    lines = {}
    for split in ("train", "val", "test"):
        text = (real_root / SPLITS.format(split)).read_text().splitlines()
        chosen = []
        for label in ("0", "1", "2"):
            chosen += [line for line in text if line.split()[1] == label][:per_class]
        (root / SPLITS.format(split)).parent.mkdir(parents=True, exist_ok=True)
        (root / SPLITS.format(split)).write_text("\n".join(chosen) + "\n")
        lines[split] = chosen
    return root, lines


def test_names_map_to_the_cncb_layout(tmp_path):
    got = cncb_candidates(tmp_path, "NCP_96_1328_0032.png")
    assert got[0] == tmp_path / "NCP" / "96" / "1328" / "0032.png"
    assert got[1].name == "0032.jpg"
    with pytest.raises(ValueError, match="CNCB name"):
        cncb_candidates(tmp_path, "NCP_96_0032.png")


def test_balanced_train_full_val_test_and_body_crop(shared_data, tmp_path):
    root, lines = _mini_split_root(tmp_path, shared_data("covidx_ct"))
    cncb = tmp_path / "CNCB"
    for chosen in lines.values():
        for i, line in enumerate(chosen):
            _write_slice(cncb, line.split()[0], ext=".jpg" if i == 0 else ".png")
    table, missing = load_covidx_ct_cncb(cncb, root, train_per_class=2, seed=0)
    assert missing == []
    counts = table.groupby(["split", "label"]).size()
    assert counts["train"].tolist() == [2, 2, 2]  # class-balanced, seeded sample
    assert counts["val"].tolist() == counts["test"].tolist() == [3, 3, 3]  # in full
    assert (table["patient_id"] == table["filename"].str.rsplit("_", n=2).str[0]).all()
    assert table["path"].str.endswith(".jpg").sum() == 3  # the raw slice's own extension
    again, _ = load_covidx_ct_cncb(cncb, root, train_per_class=2, seed=0)
    assert again["filename"].tolist() == table["filename"].tolist()
    with pytest.raises(ValueError, match="only 3 slices"):
        load_covidx_ct_cncb(cncb, root, train_per_class=4)

    row = table.iloc[0]
    crop = read_body_crop(row)
    assert crop.shape == (row.ymax - row.ymin, row.xmax - row.xmin)
    if not row.path.endswith(".jpg"):  # lossless: the crop starts at (ymin, xmin)
        assert round(crop[0, 0] * 255) == (row.xmin + 2 * row.ymin) % 256
    assert read_body_crop(row, size=64).shape == (64, 64)


def test_missing_images_are_named_or_skipped(shared_data, tmp_path):
    root, lines = _mini_split_root(tmp_path, shared_data("covidx_ct"), per_class=1)
    cncb = tmp_path / "CNCB"
    for chosen in lines.values():
        for line in chosen:
            _write_slice(cncb, line.split()[0], size=520)
    gone = lines["test"][0].split()[0]
    shutil.rmtree(cncb / gone.split("_")[0] / gone.split("_")[1])
    with pytest.raises(MissingImagesError, match=gone):
        load_covidx_ct_cncb(cncb, root, train_per_class=1)
    table, missing = load_covidx_ct_cncb(cncb, root, train_per_class=1, missing="skip")
    assert missing == [gone] and gone not in table["filename"].tolist()
    assert len(table) == 8
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_covidx_ct_cncb(tmp_path / "nowhere", root)
    bad = table.iloc[0].copy()
    Image.fromarray(np.zeros((100, 100), np.uint8)).save(bad["path"])
    with pytest.raises(ValueError, match="exceeds"):
        read_body_crop(bad)


def test_real_split_files_with_a_partial_folder(shared_data, tmp_path):
    real = shared_data("covidx_ct")
    first = {s: (real / SPLITS.format(s)).read_text().split("\n", 1)[0].split()[0]
             for s in ("train", "val", "test")}  # fmt: skip
    cncb = tmp_path / "CNCB"
    for name in first.values():
        _write_slice(cncb, name, size=520)
    table, missing = load_covidx_ct_cncb(cncb, real, train_per_class=None, missing="skip")
    assert sorted(table["filename"]) == sorted(first.values())
    assert len(missing) == 104_009 - 3

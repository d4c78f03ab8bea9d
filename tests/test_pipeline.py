"""Dataset table / arrays -> tf.data."""

from __future__ import annotations

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from PIL import Image

from kerassev.data.cache import DecodedCache
from kerassev.data.pipeline import (
    PipelineConfig,
    SkippedFilesWarning,
    build_dataset,
    build_dataset_from_arrays,
    load_images,
)
from kerassev.io.dicom_write import write_dicom

UNIT = PipelineConfig(image_size=32, batch_size=4, preprocessing="unit", shuffle=False)


def _img(h, w, seed):
    return np.random.default_rng(seed).random((h, w)).astype(np.float32)


def _table(paths, **labels):
    return pd.DataFrame(
        {"path": [str(p) for p in paths], "patient_id": [f"p{i}" for i in range(len(paths))]}
        | labels
    )


@pytest.fixture
def files(tmp_path):
    """One file of every supported kind, with known grey content."""
    out = {}
    g = (_img(40, 60, 0) * 255).astype(np.uint8)
    Image.fromarray(g).save(out.setdefault("png8", tmp_path / "g8.png"))
    Image.fromarray((_img(50, 30, 1) * 65535).astype(np.uint16)).save(
        out.setdefault("png16", tmp_path / "g16.png")
    )
    Image.fromarray(np.stack([g] * 3, -1)).save(out.setdefault("rgb", tmp_path / "rgb.png"))
    rgba = np.dstack([g, g, g, np.full_like(g, 255)])
    Image.fromarray(rgba, "RGBA").save(out.setdefault("rgba", tmp_path / "rgba.png"))
    Image.fromarray(g).save(out.setdefault("jpeg", tmp_path / "g.jpg"), quality=95)
    pix = np.random.default_rng(2).random((48, 36)).astype(np.float32)
    out["dicom"] = write_dicom(tmp_path / "d.dcm", pix, bits_stored=12, patient_id="p")
    return out


@pytest.mark.parametrize("kind", ["png8", "png16", "rgb", "rgba", "jpeg", "dicom"])
@pytest.mark.parametrize("channels,pre", [(3, "unit"), (1, "unit")])
def test_each_format_shapes_dtype_range(files, kind, channels, pre, tmp_path):
    cfg = UNIT.replace(channels=channels, preprocessing=pre)
    ds = build_dataset(_table([files[kind]] * 2), cfg, cache=DecodedCache(tmp_path / "c"))
    (x,) = list(ds)
    assert x.shape == (2, 32, 32, channels) and x.dtype == tf.float32
    assert float(tf.reduce_min(x)) >= 0.0 and float(tf.reduce_max(x)) <= 1.0
    assert float(tf.math.reduce_std(x)) > 0.05  # real content, not a blank image


def test_rgb_and_rgba_decode_to_the_grey_image(files):
    grey, rgb, rgba = (
        next(iter(build_dataset(_table([files[k]]), UNIT.replace(channels=1))))
        for k in ("png8", "rgb", "rgba")
    )
    np.testing.assert_allclose(rgb, grey, atol=2 / 255)
    np.testing.assert_allclose(rgba, grey, atol=2 / 255)


def test_imagenet_values_match_keras_preprocess_input(files):
    cfg = UNIT.replace(preprocessing="imagenet")
    x = next(iter(build_dataset(_table([files["png8"]]), cfg)))
    raw = next(iter(build_dataset(_table([files["png8"]]), UNIT)))
    ref = keras.applications.resnet50.preprocess_input(raw.numpy() * 255.0)
    np.testing.assert_allclose(x, ref, atol=1e-3)


def test_xrv_range(files):
    cfg = UNIT.replace(channels=1, preprocessing="xrv")
    x = next(iter(build_dataset(_table([files["png16"]]), cfg)))
    assert x.shape == (1, 32, 32, 1)
    assert -1024 <= float(tf.reduce_min(x)) < -500 and 500 < float(tf.reduce_max(x)) <= 1024


def test_two_views_differ_same_shape_with_labels(files):
    t = _table([files["png8"]] * 5, mrale=np.arange(5.0))
    cfg = UNIT.replace(two_view_policy="mrale", preprocessing="imagenet")
    (v1, v2), y = next(iter(build_dataset(t, cfg, label_cols="mrale")))
    assert v1.shape == v2.shape == (4, 32, 32, 3) and y.shape == (4,) and y.dtype == tf.float32
    assert float(tf.reduce_mean(tf.abs(v1 - v2))) > 1.0
    cfg = UNIT.replace(two_view_policy="simsiam")
    v1, v2 = next(iter(build_dataset(t, cfg)))
    assert v1.shape == v2.shape == (4, 32, 32, 3)


def test_views_in_model_yields_raw_grey_batches_from_files(files):
    """augment_on="model": the pipeline stops before the views (the model makes them)."""
    t = _table([files["png8"]] * 5, mrale=np.arange(5.0))
    cfg = UNIT.replace(two_view_policy="simsiam", preprocessing="imagenet", augment_on="model")
    x, y = next(iter(build_dataset(t, cfg, label_cols="mrale")))
    plain = next(iter(build_dataset(t, UNIT.replace(channels=1))))
    assert x.shape == (4, 32, 32, 1) and y.shape == (4,)
    np.testing.assert_allclose(x, plain)  # decoded, resized, [0, 1]: nothing else yet
    assert not UNIT.replace(augment_on="model").views_in_model  # single-view pipelines unchanged


def test_multi_label_columns_and_single_view_augment(files):
    t = _table([files["png8"]] * 3, a=[1, 2, 3], b=[4, 5, 6])
    x, y = next(iter(build_dataset(t, UNIT.replace(augment_policy="byol"), label_cols=["a", "b"])))
    assert x.shape == (3, 32, 32, 3) and y.shape == (3, 2)
    np.testing.assert_array_equal(y, [[1, 4], [2, 5], [3, 6]])


def test_seeded_shuffle_is_deterministic(files):
    t = _table([files["png8"]] * 12, idx=np.arange(12))
    cfg = UNIT.replace(shuffle=True, seed=7, batch_size=12)

    def order(c):
        return [list(y.numpy()) for _, y in build_dataset(t, c, label_cols="idx").repeat(2)]

    a, b = order(cfg), order(cfg)
    assert a == b
    assert a[0] != a[1]  # reshuffled each epoch
    assert sorted(a[0]) == list(range(12)) and a[0] != list(range(12))
    assert order(cfg.replace(seed=8)) != a


def test_corrupt_dicom_skipped_and_reported(files, tmp_path):
    bad = tmp_path / "broken_scan.dcm"
    bad.write_bytes(b"\0" * 128 + b"DICM" + b"\x01" * 40)
    t = _table([files["dicom"], bad, tmp_path / "missing.png", files["png8"]], y=[0, 1, 2, 3])
    with pytest.warns(SkippedFilesWarning, match="broken_scan.dcm") as rec:
        ds = build_dataset(t, UNIT, label_cols="y", cache=DecodedCache(tmp_path / "c"))
    assert "missing.png" in str(rec[0].message)
    x, y = next(iter(ds))
    assert x.shape[0] == 2 and list(y.numpy()) == [0, 3]


def test_uncached_dicom_decodes_in_graph(files, tmp_path):
    cfg = UNIT.replace(cache_decoded=False, channels=1)
    cache = DecodedCache(tmp_path / "c")
    raw = next(iter(build_dataset(_table([files["dicom"], files["png8"]]), cfg)))
    cached = next(
        iter(build_dataset(_table([files["dicom"]]), cfg.replace(cache_decoded=True), cache=cache))
    )
    assert raw.shape == (2, 32, 32, 1)
    np.testing.assert_allclose(raw[0], cached[0], atol=1e-4)


def test_pad_mode_and_config_validation(files):
    x = next(iter(build_dataset(_table([files["png8"]]), UNIT.replace(resize_mode="pad"))))
    assert float(tf.reduce_max(x[0, :4])) == 0.0  # 40x60 image padded top and bottom
    with pytest.raises(ValueError, match="channels=1"):
        PipelineConfig(preprocessing="xrv", channels=3)
    with pytest.raises(ValueError, match="resize_mode"):
        PipelineConfig(resize_mode="squash")
    with pytest.raises(ValueError, match="not both"):
        PipelineConfig(two_view_policy="mrale", augment_policy="mrale")


def test_from_arrays_with_labels_and_repeat():
    imgs = np.random.default_rng(0).random((5, 40, 50)).astype(np.float32)
    cfg = UNIT.replace(batch_size=2, drop_remainder=True, repeat=True, preprocessing="imagenet")
    x, y = next(iter(build_dataset_from_arrays(imgs, cfg, labels=np.arange(5))))
    assert x.shape == (2, 32, 32, 3) and y.shape == (2,)
    views = next(iter(build_dataset_from_arrays(imgs, UNIT.replace(two_view_policy="mrale"))))
    assert views[0].shape == views[1].shape == (4, 32, 32, 3)


def test_load_images_decodes_a_table_in_row_order(files, tmp_path):
    t = _table([files["png8"], files["dicom"], files["png16"]])
    cache = DecodedCache(tmp_path / "c")
    images = load_images(t, 32, batch_size=2)
    assert images.shape == (3, 32, 32) and images.dtype == np.float32
    assert images.min() >= 0.0 and images.max() <= 1.0
    ref = np.concatenate(list(build_dataset(t, UNIT.replace(channels=1), cache=cache)))[..., 0]
    np.testing.assert_allclose(images, ref, atol=1e-6)  # same pixels, same order, any batch size


def test_load_images_refuses_a_table_with_unreadable_files(files, tmp_path):
    t = _table([files["png8"], tmp_path / "missing.png", files["png16"]])
    with (
        pytest.warns(SkippedFilesWarning, match="missing.png"),
        pytest.raises(ValueError, match="1 of 3 images could not be read.*SkippedFilesWarning"),
    ):
        load_images(t, 32)


def test_real_covid_radiography_pngs(shared_data):
    root = shared_data("covid_radiography")
    paths = sorted(root.glob("*/images/*.png"))[:8]
    assert paths
    t = _table(paths, label_index=[0] * len(paths))
    cfg = PipelineConfig(batch_size=8, two_view_policy="mrale", seed=0)
    (v1, v2), y = next(iter(build_dataset(t, cfg, label_cols="label_index")))
    assert v1.shape == v2.shape == (len(paths), 224, 224, 3) and y.shape == (len(paths),)
    assert float(tf.reduce_min(v1)) > -124 and float(tf.reduce_max(v1)) < 152  # caffe range

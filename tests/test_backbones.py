"""Backbone factory: shapes, offline fail-fast for ImageNet, local weights files. Never downloads."""

from __future__ import annotations

import time

import numpy as np
import pytest

from kerassev.models import backbones
from kerassev.models.backbones import BackboneWeightsError, build_backbone


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """Empty Keras cache and a probe that reports 'offline'; any download attempt fails the test."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    monkeypatch.setattr(backbones, "keras_weights_cache", lambda: [tmp_path / "keras_home/models"])
    calls = []
    monkeypatch.setattr(backbones, "_can_reach", lambda *a, **k: calls.append(a) or False)

    def no_download(*args, **kwargs):
        raise AssertionError("tests must never download")

    monkeypatch.setattr("keras.src.utils.file_utils.get_file", no_download)
    return calls


@pytest.fixture(scope="module")
def reference():
    """One random ResNet-50 (32 px) shared by the weights tests."""
    return build_backbone("resnet50", input_shape=(32, 32, 3))


def test_resnet50_shapes_and_names(reference):
    model = reference
    assert model.name == "resnet50" and model.output_shape == (None, 2048)
    assert model.get_layer("conv5_block3_out").output.shape[1:] == (1, 1, 2048)
    spatial = build_backbone("resnet50", input_shape=(64, 64, 3), pooling=None)
    assert spatial.output_shape == (None, 2, 2, 2048)


def test_resnet18_is_a_pooled_random_init_backbone(offline):
    model = build_backbone("resnet18", input_shape=(32, 32, 3))
    assert model.output_shape == (None, 512) and model.count_params() < 12_000_000
    with pytest.raises(BackboneWeightsError, match="resnet18 has no ImageNet weights"):
        build_backbone("resnet18", weights="imagenet", input_shape=(32, 32, 3))
    assert offline == []  # no probe: there is nothing to download


def test_imagenet_offline_fails_fast_with_instructions(offline):
    start = time.monotonic()
    with pytest.raises(BackboneWeightsError) as err:
        build_backbone("resnet50", weights="imagenet", input_shape=(32, 32, 3))
    assert time.monotonic() - start < 30  # generous: no hanging download
    msg = str(err.value)
    assert backbones.RESNET50_NOTOP_FILE in msg and "weights=PATH" in msg and "--weights" in msg
    assert "keras_home" in msg  # says where to place the file
    assert len(offline) == 1  # the probe was consulted


def test_imagenet_uses_cached_file_without_probe(offline, tmp_path, reference, legacy_h5_writer):
    cache = tmp_path / "keras_home/models"
    legacy_h5_writer(reference, cache / backbones.RESNET50_NOTOP_FILE)
    assert backbones.cached_weights_file() == cache / backbones.RESNET50_NOTOP_FILE
    model = build_backbone("resnet50", weights="imagenet", input_shape=(32, 32, 3))
    assert offline == []  # cache hit: no connectivity probe, no download
    _assert_same_weights(model, reference)


def _assert_same_weights(a, b):
    wa, wb = a.get_weights(), b.get_weights()
    assert len(wa) == len(wb)
    for x, y in zip(wa, wb, strict=True):
        np.testing.assert_array_equal(x, y)


def test_local_weights_file_round_trip(tmp_path, reference):
    path = tmp_path / "random.weights.h5"
    reference.save_weights(str(path))
    loaded = build_backbone("resnet50", weights=path, input_shape=(32, 32, 3))
    _assert_same_weights(loaded, reference)


@pytest.mark.filterwarnings("ignore:Skipping nested container:UserWarning")
def test_missing_or_wrong_local_file_names_it(tmp_path):
    missing = tmp_path / "nope.h5"
    with pytest.raises(BackboneWeightsError, match="nope.h5"):
        build_backbone("tiny_cnn", weights=missing, input_shape=(32, 32, 3))
    wrong = tmp_path / "other.weights.h5"
    build_backbone("tiny_cnn", input_shape=(32, 32, 3), pooling=None).save_weights(str(wrong))
    with pytest.raises(BackboneWeightsError, match="other.weights.h5"):
        build_backbone("resnet50", weights=wrong, input_shape=(32, 32, 3))
    junk = tmp_path / "junk.h5"
    junk.write_text("not an HDF5 file")
    with pytest.raises(BackboneWeightsError, match="junk.h5"):
        build_backbone("tiny_cnn", weights=junk, input_shape=(32, 32, 3))
    with pytest.raises(ValueError, match="unknown backbone"):
        build_backbone("vgg99")

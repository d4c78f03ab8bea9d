"""kerassev.models.xrv_densenet: topology, naming, head wiring and paper-03 feature sets."""

from __future__ import annotations

import h5py
import keras
import numpy as np
import pytest

from kerassev.models.xrv_densenet import (
    BN_EPSILON,
    OP_THRESHS_ATTR,
    XRV_PATHOLOGIES,
    build_xrv_densenet,
    feature_sets,
    read_op_threshs,
)


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(0)
    return build_xrv_densenet()


def _xrv_input(batch: int = 2, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.uniform(-1024, 1024, size=(batch, 224, 224, 1)).astype(np.float32)


def test_pathologies_are_torchxrayvision_all_order():
    assert len(XRV_PATHOLOGIES) == 18
    assert len(set(XRV_PATHOLOGIES)) == 18
    assert XRV_PATHOLOGIES[:3] == ("Atelectasis", "Consolidation", "Infiltration")
    assert XRV_PATHOLOGIES.index("Pneumonia") == 8
    assert XRV_PATHOLOGIES.index("Lung Opacity") == 16
    assert XRV_PATHOLOGIES[-1] == "Enlarged Cardiomediastinum"


def test_outputs_and_shapes(model):
    out = model(_xrv_input(2), training=False)
    assert set(out) == {"logits", "features"}
    assert tuple(out["logits"].shape) == (2, 18)
    assert tuple(out["features"].shape) == (2, 1024)
    assert model.input_shape == (None, 224, 224, 1)
    assert model.op_threshs is None


def test_densenet121_topology(model):
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    bns = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    # conv0 + 2 per dense layer (6+12+24+16 = 58) + 3 transitions; BN adds norm5.
    assert len(convs) == 1 + 2 * 58 + 3
    assert len(bns) == 1 + 2 * 58 + 3 + 1
    # Parameter count of torchvision densenet121 with 1 input channel and 18 classes.
    assert sum(int(np.prod(w.shape)) for w in model.trainable_weights) == 6_966_034
    assert all(not c.use_bias for c in convs)
    assert all(bn.epsilon == BN_EPSILON == 1e-5 and bn.momentum == 0.9 for bn in bns)
    conv0 = model.get_layer("features.conv0")
    assert conv0.kernel.shape == (7, 7, 1, 64) and conv0.strides == (2, 2)
    assert conv0.padding == "valid"
    assert model.get_layer("features.denseblock4.denselayer16.conv2").kernel.shape == (
        3,
        3,
        128,
        32,
    )
    assert model.get_layer("features.transition3.conv").kernel.shape == (1, 1, 1024, 512)
    assert model.get_layer("classifier").kernel.shape == (1024, 18)


@pytest.mark.parametrize(
    ("name", "spatial", "channels"),
    [
        ("features.conv0", 112, 64),
        ("features.pool0", 56, 64),
        ("features.denseblock1.denselayer6.cat", 56, 256),
        ("features.transition1.pool", 28, 128),
        ("features.transition2.pool", 14, 256),
        ("features.transition3.pool", 7, 512),
        ("features.norm5", 7, 1024),
    ],
)
def test_feature_map_sizes_match_pytorch(model, name, spatial, channels):
    assert model.get_layer(name).output.shape[1:] == (spatial, spatial, channels)


def test_head_is_relu_avgpool_linear(model):
    x = _xrv_input(1, seed=3)
    out = model(x, training=False)
    norm5 = keras.Model(model.input, model.get_layer("features.norm5").output)(x, training=False)
    expected_features = np.maximum(np.asarray(norm5), 0).mean(axis=(1, 2))
    np.testing.assert_allclose(out["features"], expected_features, rtol=1e-5, atol=1e-5)
    dense = model.get_layer("classifier")
    expected_logits = expected_features @ np.asarray(dense.kernel) + np.asarray(dense.bias)
    np.testing.assert_allclose(out["logits"], expected_logits, rtol=1e-5, atol=1e-5)


def test_feature_sets_pick_the_papers_outputs():
    logits = np.tile(np.arange(18, dtype=np.float32), (3, 1)) + np.arange(3)[:, None] * 100
    features = np.ones((3, 1024), np.float32)
    sets = feature_sets({"logits": logits, "features": features})
    assert set(sets) == {"1024", "18", "4", "lung_opacity"}
    assert sets["1024"].shape == (3, 1024)
    np.testing.assert_array_equal(sets["18"], logits)
    # lung opacity (16), pneumonia (8), infiltration (2), consolidation (1)
    np.testing.assert_array_equal(sets["4"][0], [16, 8, 2, 1])
    np.testing.assert_array_equal(sets["lung_opacity"], [[16], [116], [216]])


def test_weights_round_trip_and_op_threshs(model, tmp_path):
    path = tmp_path / "xrv.weights.h5"
    model.save_weights(path)
    thr = np.linspace(0.01, 0.2, 18).astype(np.float32)
    with h5py.File(path, "a") as f:
        f.attrs[OP_THRESHS_ATTR] = thr
    np.testing.assert_array_equal(read_op_threshs(path), thr)
    loaded = build_xrv_densenet(weights=path)
    np.testing.assert_array_equal(loaded.op_threshs, thr)
    x = _xrv_input(1, seed=5)
    a, b = model(x, training=False), loaded(x, training=False)
    np.testing.assert_array_equal(a["logits"], b["logits"])  # op_threshs are not applied


def test_missing_weights_file_fails_fast(tmp_path):
    with pytest.raises(FileNotFoundError, match="kerassev convert xrv"):
        build_xrv_densenet(weights=tmp_path / "absent.weights.h5")


def test_saliency_of_lung_opacity_logit(model):
    from kerassev.explain.saliency import saliency

    opacity = XRV_PATHOLOGIES.index("Lung Opacity")
    maps = saliency(lambda x: model(x, training=False)["logits"][:, opacity], _xrv_input(1))
    assert maps.shape == (1, 224, 224)
    assert np.isfinite(maps).all() and maps.max() == pytest.approx(1.0)


def test_accepts_xrv_preprocess_output(model):
    from kerassev.recipes.cohen.encoders import Encoder
    from kerassev.transforms.preprocess import xrv_preprocess

    image01 = np.random.default_rng(0).random((300, 250), dtype=np.float32)
    x = np.asarray(xrv_preprocess(image01))
    assert x.shape == (224, 224, 1)
    out = model(x[None], training=False)
    assert np.isfinite(np.asarray(out["logits"])).all()

    # paper 03's feature sets come from the one extractor, Encoder.extract (as xrv_encoder builds)
    encoder = Encoder("xrv", "test", model, 224, 1, "xrv", feature_sets=feature_sets)
    images = np.stack([image01, np.random.default_rng(1).random((300, 250), dtype=np.float32)])
    sets = encoder.extract(images[[0, 1, 0]], batch_size=2)
    assert sets["1024"].shape == (3, 1024) and sets["4"].shape == (3, 4)
    np.testing.assert_allclose(sets["18"][0], np.asarray(out["logits"])[0], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(sets["lung_opacity"][2], sets["lung_opacity"][0], rtol=1e-5)

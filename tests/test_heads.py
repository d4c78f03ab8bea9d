"""Projector / predictor / encoder / regressor / sub-score heads."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from kerassev.models.backbones import build_backbone
from kerassev.models.heads import (
    SUBSCORE_COLUMNS,
    build_encoder,
    build_predictor,
    build_projector,
    build_regressor,
    build_subscore_regressor,
)


def _encoder(dim=16):
    keras.utils.set_random_seed(0)
    return build_encoder(build_backbone("tiny_cnn", input_shape=(32, 32, 3)), projection_dim=dim)


def _types(model):
    return [type(layer).__name__ for layer in model.layers[1:]]


def test_projector_layout_and_l2():
    proj = build_projector(32, dim=64, hidden=48, n_layers=3, l2=1e-3)
    assert _types(proj) == ["Dense", "BatchNormalization", "ReLU"] * 2 + [
        "Dense",
        "BatchNormalization",
    ]
    dense = [lay for lay in proj.layers if isinstance(lay, keras.layers.Dense)]
    assert [d.units for d in dense] == [48, 48, 64]
    assert all(d.kernel_regularizer.l2 == pytest.approx(1e-3) for d in dense)
    assert proj.output_shape == (None, 64)
    proj(np.ones((2, 32), "float32"))
    assert len(proj.losses) == 3  # one L2 term per kernel


def test_predictor_is_bottleneck_without_output_bn():
    pred = build_predictor(2048, hidden=512)
    assert _types(pred) == ["Dense", "BatchNormalization", "ReLU", "Dense"]
    assert pred.get_layer("predictor_fc1").units == 512 and pred.output_shape == (None, 2048)


def test_resnet50_encoder_outputs_2048_embedding():
    backbone = build_backbone("resnet50", input_shape=(32, 32, 3))
    encoder = build_encoder(backbone, n_layers=2)
    assert encoder.output_shape == (None, 2048)
    assert encoder.get_layer("resnet50") is backbone and encoder.get_layer("projector")
    spatial = build_backbone("tiny_cnn", input_shape=(32, 32, 3), pooling=None)
    assert build_encoder(spatial, projection_dim=8).get_layer("backbone_pool")


def test_regressor_head_and_frozen_encoder():
    encoder = _encoder()
    build_regressor(encoder)
    assert encoder.trainable  # by default the encoder given is left as it was
    reg = build_regressor(encoder, freeze_encoder_in_place=True)
    assert reg.output_shape == (None, 1) and not encoder.trainable
    assert _types(reg)[1:] == ["Dense", "BatchNormalization", "Activation"] * 2 + ["Dense"]
    assert [reg.get_layer(f"head_fc{i}").units for i in (1, 2)] == [256, 256]
    trainable_layers = {v.path.split("/")[0] for v in reg.trainable_weights}
    assert trainable_layers == {"head_fc1", "head_bn1", "head_fc2", "head_bn2", "mrale"}
    x = np.random.default_rng(0).random((4, 32, 32, 3), dtype=np.float32)
    reg.compile(optimizer="adam", loss="mse")
    enc_before = [w.copy() for w in encoder.get_weights()]
    reg.fit(x, np.arange(4, dtype="float32")[:, None], verbose=0)
    for a, b in zip(enc_before, encoder.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)  # §3.2: encoder frozen in stage 1
    linear = build_regressor(_encoder(), activation=None)
    assert "Activation" not in _types(linear) and linear.get_layer("encoder").trainable


def test_subscore_regressor_bounds_and_mrale_identity(tmp_path):
    reg = build_subscore_regressor(_encoder())
    rng = np.random.default_rng(0)
    x = rng.normal(size=(6, 32, 32, 3)).astype("float32") * 50  # push the sigmoids to the bounds
    out = reg(x, training=False)
    assert set(out) == {"subscores", "mrale"}
    s, m = np.asarray(out["subscores"]), np.asarray(out["mrale"])
    assert s.shape == (6, len(SUBSCORE_COLUMNS)) and m.shape == (6, 1)
    assert (s >= 0).all() and (s[:, :2] <= 4).all() and (s[:, 2:] <= 3).all()
    np.testing.assert_allclose(m[:, 0], s[:, 0] * s[:, 2] + s[:, 1] * s[:, 3], rtol=1e-5)
    assert ((m >= 0) & (m <= 24)).all()

    reg.compile(optimizer="adam", loss={"subscores": "mse", "mrale": "mse"})
    hist = reg.fit(x, {"subscores": s * 0 + 1, "mrale": m * 0 + 2}, verbose=0)
    assert {"loss", "subscores_loss", "mrale_loss"} <= set(hist.history)
    path = tmp_path / "sub.keras"
    reg.save(path)
    again = keras.models.load_model(path)
    np.testing.assert_allclose(again(x)["mrale"], reg(x)["mrale"], rtol=1e-5)

"""SimSiam loss (eq. 3), collapse monitor and the SimSiam train_step model."""

from __future__ import annotations

import math

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from kerassev.losses.simsiam import negative_cosine, simsiam_loss
from kerassev.models.backbones import build_backbone
from kerassev.models.heads import build_encoder, build_predictor
from kerassev.models.ssl import SimSiam, collapse_std, unpack_views

SIZE, DIM = 32, 32


def _model(seed=0):
    keras.utils.set_random_seed(seed)
    encoder = build_encoder(
        build_backbone("tiny_cnn", input_shape=(SIZE, SIZE, 3)), projection_dim=DIM, n_layers=2
    )
    return SimSiam(encoder, build_predictor(DIM, hidden=8), name="simsiam")


def _views(n=16, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((n, SIZE, SIZE, 3), dtype=np.float32)
    return x, np.flip(x, axis=2).copy()


def test_negative_cosine_values_and_minimum():
    p = np.array([[1.0, 0.0], [0.0, 2.0]], np.float32)
    assert float(negative_cosine(p, 3.0 * p)) == pytest.approx(-1.0, abs=1e-6)  # minimum
    assert float(negative_cosine(p, -p)) == pytest.approx(1.0, abs=1e-6)
    assert float(negative_cosine(p, p[:, ::-1])) == pytest.approx(0.0, abs=1e-6)  # orthogonal


def test_simsiam_loss_is_symmetric_mean_and_stops_gradient_through_z():
    rng = np.random.default_rng(1)
    p1, p2, z1, z2 = (tf.constant(rng.normal(size=(4, 6)), tf.float32) for _ in range(4))
    expected = 0.5 * float(negative_cosine(p1, z2)) + 0.5 * float(negative_cosine(p2, z1))
    assert float(simsiam_loss(p1, p2, z1, z2)) == pytest.approx(expected, rel=1e-6)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([p1, z2])
        loss = negative_cosine(p1, z2)
    assert tape.gradient(loss, z2) is None  # stop-gradient on the target branch
    assert float(tf.reduce_sum(tf.abs(tape.gradient(loss, p1)))) > 0
    # float16 inputs (mixed precision) give a float32 loss
    assert simsiam_loss(*(tf.cast(t, tf.float16) for t in (p1, p2, z1, z2))).dtype == tf.float32


def test_collapse_std_healthy_vs_collapsed():
    d = 256
    z = np.random.default_rng(0).normal(size=(512, d)).astype(np.float32)
    assert float(collapse_std(z)) * math.sqrt(d) == pytest.approx(1.0, abs=0.05)
    collapsed = np.tile(z[:1], (64, 1)) * np.linspace(1, 3, 64, dtype=np.float32)[:, None]
    assert float(collapse_std(collapsed)) == pytest.approx(0.0, abs=1e-6)


def test_unpack_views_accepts_common_structures():
    a, b = tf.zeros((2, 3)), tf.ones((2, 3))
    for data in [(a, b), ((a, b),), ((a, b), tf.zeros(2)), {"view1": a, "view2": b}]:
        v1, v2 = unpack_views(data)
        assert v1 is a and v2 is b
    with pytest.raises(ValueError, match="two views"):
        unpack_views((a, b, a))


def test_fit_logs_metrics_per_epoch_and_checkpoints(tmp_path):
    model = _model()
    v1, v2 = _views()
    ds = tf.data.Dataset.from_tensor_slices((v1, v2)).batch(8)
    model.compile(optimizer=keras.optimizers.SGD(0.02, momentum=0.6))
    before = [w.copy() for w in model.predictor.get_weights()]
    csv = tmp_path / "log.csv"
    history = model.fit(
        ds.map(lambda a, b: ((a, b),)),  # the ((view1, view2),) structure works too
        epochs=2,
        verbose=0,
        shuffle=False,
        validation_data=ds,
        callbacks=[
            keras.callbacks.CSVLogger(str(csv)),
            keras.callbacks.ModelCheckpoint(
                str(tmp_path / "ep{epoch}.weights.h5"), save_weights_only=True
            ),
        ],
    )
    for key in ["loss", "reg_loss", "z_std", "z_std_ratio", "val_loss", "val_z_std"]:
        assert len(history.history[key]) == 2, key
    assert all(-1.0 <= v <= 1.0 for v in history.history["loss"])
    assert history.history["reg_loss"][0] > 0  # L2 1e-3 on projector/predictor kernels
    ratio = np.array(history.history["z_std"]) * math.sqrt(DIM)
    np.testing.assert_allclose(ratio, history.history["z_std_ratio"], rtol=1e-5)
    log = pd.read_csv(csv)
    assert {"epoch", "loss", "z_std", "z_std_ratio"} <= set(log.columns) and len(log) == 2
    assert (tmp_path / "ep1.weights.h5").is_file() and (tmp_path / "ep2.weights.h5").is_file()
    changed = [
        not np.array_equal(a, b) for a, b in zip(before, model.predictor.get_weights(), strict=True)
    ]
    assert any(changed)

    # .weights.h5 round trip into a freshly built model
    path = tmp_path / "final.weights.h5"
    model.save_weights(str(path))
    other = _model(seed=1)
    x = v1[:4]
    assert not np.allclose(other.predict(x, verbose=0), model.predict(x, verbose=0))
    other.load_weights(str(path))
    np.testing.assert_allclose(other.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)
    other.compile(optimizer="sgd")
    ev = other.evaluate(ds, verbose=0, return_dict=True)
    assert set(ev) >= {"loss", "z_std", "z_std_ratio"}


@pytest.mark.slow
def test_train_step_with_xla_and_explicit_loss_scale_optimizer():
    model = _model()
    v1, v2 = _views(8)
    ds = tf.data.Dataset.from_tensor_slices((v1, v2)).batch(4)
    opt = keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD(0.02))
    model.compile(optimizer=opt, jit_compile=True)
    hist = model.fit(ds, epochs=1, verbose=0, shuffle=False)
    assert np.isfinite(hist.history["loss"][0])
    assert int(opt.iterations.numpy()) == 2


def test_mixed_float16_policy_trains():
    keras.config.set_dtype_policy("mixed_float16")
    try:
        model = _model()
        v1, v2 = _views(8)
        model.compile(optimizer=keras.optimizers.SGD(0.02))
        assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
        hist = model.fit(
            tf.data.Dataset.from_tensor_slices((v1, v2)).batch(4), verbose=0, shuffle=False
        )
        assert np.isfinite(hist.history["loss"][0])
        assert model.encoder.get_layer("projector").compute_dtype == "float16"
    finally:
        keras.config.set_dtype_policy("float32")

"""In-graph two-view augmentation (``ViewMaker``, ``augment_on="model"``): the pipeline's views,
made in the train step."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerassev.data.pipeline import PipelineConfig, build_dataset_from_arrays, view_maker
from kerassev.models.backbones import build_backbone
from kerassev.models.heads import build_encoder, build_predictor
from kerassev.models.ssl import SimSiam
from kerassev.recipes.ssl_pretraining import SSLStage, pretrain_ssl
from kerassev.runs import RunFolder
from kerassev.transforms.augment import POLICIES
from kerassev.transforms.views import ViewMaker

SIZE = 32


def _images(n=64, size=40, seed=0):
    """Smooth grey images with structure (a ramp, a blob) and noise, in [0, 1]."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    out = []
    for _ in range(n):
        cy, cx, a = rng.uniform(0.2, 0.8, 3)
        img = a * xx + (1 - a) * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 0.05)
        out.append(np.clip(img + rng.normal(0, 0.05, img.shape), 0, 1))
    return np.asarray(out, np.float32)


@pytest.mark.parametrize("policy", POLICIES)
def test_in_graph_views_have_the_pipelines_shape_range_and_statistics(policy):
    images = _images()
    cfg = PipelineConfig(image_size=SIZE, batch_size=64, two_view_policy=policy, seed=1)
    data_views = next(iter(build_dataset_from_arrays(images, cfg)))
    raw = next(iter(build_dataset_from_arrays(images, cfg.replace(augment_on="model"))))
    assert raw.shape == (64, SIZE, SIZE, 1) and float(tf.reduce_min(raw)) >= 0
    assert float(tf.reduce_max(raw)) <= 1  # raw grey batches: no views, no preprocessing
    maker = view_maker(cfg)
    make = tf.function(lambda x: (maker(x, training=True), maker(x, training=True)))
    model_views = make(raw)
    for d, m in zip(data_views, model_views, strict=True):
        assert d.shape == m.shape == (64, SIZE, SIZE, 3) and m.dtype == tf.float32
        d, m = d.numpy(), m.numpy()
        assert m.min() >= -124 and m.max() <= 152  # ImageNet caffe range of [0, 1] inputs
        np.testing.assert_allclose(m[..., 0], m[..., 2] + (123.68 - 103.939), atol=1e-3)
        assert abs(m.mean() - d.mean()) < 0.1 * d.std()  # same distribution of views
        assert abs(m.std() - d.std()) < 0.15 * d.std()
        # per-image spread (how much each view varies across the batch) is alike too
        assert abs(m.mean(axis=(1, 2, 3)).std() / d.mean(axis=(1, 2, 3)).std() - 1) < 0.5
    assert float(np.abs(model_views[0] - model_views[1]).mean()) > 1.0  # two different draws


def test_same_seed_reproduces_the_views_and_another_differs():
    raw = tf.constant(_images(8)[..., None])
    cfg = PipelineConfig(image_size=SIZE, batch_size=8, two_view_policy="simsiam", seed=3)
    a, b = view_maker(cfg)(raw), view_maker(cfg)(raw)
    c = view_maker(cfg.replace(seed=4))(raw)
    np.testing.assert_allclose(a, b)
    assert not np.allclose(a, c)


def test_views_compute_in_float32_and_come_out_in_the_compute_dtype():
    from kerassev.precision import precision_scope

    raw = tf.constant(_images(4)[..., None])
    with precision_scope("bfloat16"):
        maker = ViewMaker("simsiam", image_size=SIZE, seed=0)
        view = maker(raw)
    assert view.dtype == tf.bfloat16 and maker.augment.layers[0].compute_dtype == "float32"
    ref = ViewMaker("simsiam", image_size=SIZE, seed=0)(raw)
    np.testing.assert_allclose(tf.cast(view, tf.float32), ref, rtol=1e-2, atol=1.0)


def test_config_round_trip_and_channels():
    maker = ViewMaker("mrale", image_size=SIZE, channels=1, preprocessing="unit", seed=2)
    clone = ViewMaker.from_config(maker.get_config())
    assert (clone.policy, clone.channels, clone.seed) == ("mrale", 1, 2)
    out = clone(tf.constant(_images(2, size=SIZE)))  # (B, H, W) is accepted too
    assert out.shape == (2, SIZE, SIZE, 1) and float(tf.reduce_min(out)) >= 0
    with pytest.raises(ValueError, match="augment_on"):
        PipelineConfig(augment_on="gpu")
    with pytest.raises(ValueError, match="two_view_policy"):
        view_maker(PipelineConfig())


def _simsiam():
    keras.utils.set_random_seed(0)
    backbone = build_backbone("tiny_cnn", weights=None, input_shape=(SIZE, SIZE, 3))
    encoder = build_encoder(backbone, projection_dim=16)
    return SimSiam(encoder, build_predictor(16, hidden=8))


PIPE = PipelineConfig(
    image_size=SIZE, batch_size=8, two_view_policy="simsiam", drop_remainder=True
).replace(augment_on="model")


def test_training_with_views_in_the_model_lowers_the_loss():
    model = _simsiam()
    log = pretrain_ssl(
        model,
        _images(32, size=SIZE),
        stages=[("all", SSLStage(epochs=6, lr=0.05, momentum=0.9, train="all"))],
        pipeline=PIPE,
        run=None,
        backbone_name="tiny_cnn",
    )
    assert isinstance(model.augmenter, ViewMaker)
    losses = log["loss"].to_numpy()
    assert np.isfinite(losses).all() and losses[-2:].mean() < losses[:2].mean(), losses


def test_checkpointed_run_with_views_in_the_model_resumes(tmp_path):
    run = RunFolder.create(tmp_path, "t", config={}, seed=0)
    kwargs = dict(
        stages=[("a", SSLStage(epochs=1)), ("b", SSLStage(epochs=1, train=2))],
        pipeline=PIPE,
        run=run,
        backbone_name="tiny_cnn",
        stage_prefix="ssl_x/",
    )
    model = _simsiam()
    log = pretrain_ssl(model, _images(16, size=SIZE), **kwargs)
    again = _simsiam()  # loads the finished stages (augmenter state included) instead of training
    log2 = pretrain_ssl(again, _images(16, size=SIZE), **kwargs)
    for a, b in zip(model.get_weights(), again.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert log2.equals(log)


def test_saved_model_with_a_view_maker_reloads(tmp_path):
    model = _simsiam()
    model.augmenter = view_maker(PIPE)
    model.compile(optimizer="sgd")
    model.fit(_images(8, size=SIZE)[..., None], batch_size=8, epochs=1, verbose=0)
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded.augmenter, ViewMaker) and loaded.augmenter.policy == "simsiam"
    x = np.random.default_rng(1).random((4, SIZE, SIZE, 3)).astype(np.float32)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-5)

"""Issue 18: the SSL family's protocol (precise BN before frozen features, EMA schedule, lr and
weight-decay semantics, the probe's regularisation and its paired test)."""

from __future__ import annotations

from types import SimpleNamespace

import keras
import numpy as np
import pandas as pd

from kerassev.models.batch_norm import precise_batch_norm
from kerassev.recipes.ssl_pretraining import EncoderSpec, build_ssl_encoder, encoder_file


def _bn_net(seed=0):
    keras.utils.set_random_seed(seed)
    inp = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(6, 3, padding="same")(inp)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.Conv2D(5, 3, padding="same")(x)
    x = keras.layers.BatchNormalization()(x)
    out = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inp, out)


def _images(n=32, seed=0):
    return np.random.default_rng(seed).normal(2.0, 3.0, (n, 8, 8, 3)).astype(np.float32)


def _training_mode_features(model, x):
    """Features with every BN on the batch statistics of all of ``x`` (one batch)."""
    flags = [layer.trainable for layer in model._flatten_layers()]
    model.trainable = True
    out = np.asarray(model(x, training=True))
    for layer, flag in zip(model._flatten_layers(), flags, strict=True):
        layer.trainable = flag
    return out


def _stale(model):
    """Moving statistics halfway between the (0, 1) start and nothing like the data's."""
    for layer in model._flatten_layers():
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.moving_mean.assign(np.full(layer.moving_mean.shape, 0.5, np.float32))
            layer.moving_variance.assign(np.full(layer.moving_variance.shape, 0.7, np.float32))


def test_precise_bn_on_a_frozen_encoder_gives_training_mode_statistics():
    model = _bn_net()
    x = _images()
    _stale(model)
    model.trainable = False  # a frozen probe encoder: plain recompute would skip every layer
    before = model.predict(x, verbose=0)
    assert precise_batch_norm(model, x, batch_size=len(x)) == 1
    after = model.predict(x, verbose=0)
    assert np.abs(after - before).max() > 0.1  # stale statistics changed the features
    np.testing.assert_allclose(after, _training_mode_features(model, x), atol=1e-4)
    assert not model.trainable and not any(v.trainable for v in model.weights)  # flags restored


def test_covid_probe_features_use_precise_bn_on_the_training_images():
    from kerassev.recipes.covid_ssl.probe import frozen_features

    x_train, x_test = _images(32, 0), _images(8, 1)
    model = _bn_net()
    _stale(model)
    stale = frozen_features(model, x_test, bn_images=None)
    feats = frozen_features(model, x_test, bn_images=x_train, batch_size=32)
    assert np.abs(feats - stale).max() > 0.1
    reference = _bn_net()  # same weights, statistics of the training images (one batch of 32)
    precise_batch_norm(reference, x_train, batch_size=32)
    np.testing.assert_allclose(feats, reference.predict(x_test, verbose=0), atol=1e-5)


def _spec():
    return EncoderSpec(
        method="simsiam", backbone="tiny_cnn", image_size=16, projection_dim=8, l2=None
    )


def test_cohen_random_and_ssl_encoders_get_precise_bn_but_distributed_weights_do_not():
    from kerassev.recipes.cohen.encoders import Encoder
    from kerassev.recipes.cohen.features import feature_rows

    images = np.random.default_rng(0).random((12, 16, 16)).astype(np.float32)
    bank = SimpleNamespace(at=lambda size: images, table=pd.DataFrame({"path": ["p"] * 12}))
    backbones = {}
    for key in ("random", "imagenet"):
        keras.utils.set_random_seed(0)
        backbones[key] = build_ssl_encoder(_spec()).layers[1]
        backbones[key].trainable = False
        _stale(backbones[key])
    encoders = [Encoder(k, k, m, 16, 3, "imagenet") for k, m in backbones.items()]
    rows = {r.encoder: r.features for r in feature_rows(encoders, bank, batch_size=12)}
    assert np.abs(rows["random"] - rows["imagenet"]).max() > 1e-3
    bn = [
        layer
        for layer in backbones["imagenet"]._flatten_layers()
        if isinstance(layer, keras.layers.BatchNormalization)
    ]
    assert bn and all(np.allclose(layer.moving_mean, 0.5) for layer in bn)  # kept as given


def test_mrale_frozen_stage_reads_a_projector_with_precise_bn(tmp_path):
    from kerassev.recipes.mrale.regression import MraleFolds
    from kerassev.runs import RunFolder

    spec = _spec()
    run = RunFolder.create(tmp_path, "mrale", config={}, seed=0)
    keras.utils.set_random_seed(0)
    trained = build_ssl_encoder(spec)
    _stale(trained.get_layer("projector"))
    trained.save_weights(encoder_file(run, "scratch"))
    x = np.random.default_rng(1).random((16, 16, 16, 3)).astype(np.float32)
    folds = MraleFolds(
        data=None, inputs=x, config=SimpleNamespace(encoder_spec=lambda: spec, batch_size=16),
        run=run,
    )  # fmt: skip
    encoder = folds.encoder("scratch")
    projector = encoder.get_layer("projector")
    feats = encoder.layers[1].predict(x, verbose=0)
    np.testing.assert_allclose(
        encoder.predict(x, verbose=0), _training_mode_features(projector, feats), atol=1e-4
    )
    assert np.abs(folds.embeddings("scratch") - trained.predict(x, verbose=0)).max() > 1e-3

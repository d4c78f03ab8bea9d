"""Issue 18: the SSL family's protocol (precise BN before frozen features, EMA schedule, lr and
weight-decay semantics, the probe's regularisation and its paired test)."""

from __future__ import annotations

from types import SimpleNamespace

import keras
import numpy as np
import pandas as pd
import pytest

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


# --- fault 2: BYOL's cosine tau schedule, wired from the run's steps ---------------------------


def _pipe(batch=8):
    from kerassev.data.pipeline import PipelineConfig

    return PipelineConfig(image_size=16, batch_size=batch, two_view_policy="mrale")


def test_tau_base_by_run_length():
    from kerassev.recipes.covid_ssl.config import CovidSSLConfig
    from kerassev.recipes.ssl_pretraining import ema_tau_base

    assert ema_tau_base(70) == 0.99  # the cpu preset's 5 epochs of ~14 steps
    assert ema_tau_base(40 * 66) == 0.996  # the paper's 40 epochs of ~66 steps at batch 256
    assert CovidSSLConfig.paper().tau == 0.996 and CovidSSLConfig.cpu().tau is None


def test_tau_follows_the_cosine_schedule_step_by_step_through_fit(tmp_path):
    from kerassev.recipes.ssl_pretraining import SSLStage, pretrain_encoder
    from kerassev.runs import RunFolder

    images = np.random.default_rng(0).random((8, 16, 16)).astype(np.float32)
    spec = EncoderSpec(
        method="byol", backbone="tiny_cnn", image_size=16, projection_dim=8, l2=None,
        predictor_hidden=8,
    )  # fmt: skip
    run = RunFolder.create(tmp_path, "t", config={}, seed=0)
    epochs = 5  # one step per epoch: each epoch's logged tau is that step's
    _, log = pretrain_encoder(
        spec, images, stages=[("all", SSLStage(epochs, lr=0.01, train="all"))],
        pipeline=_pipe(), run=run,
    )  # fmt: skip
    k = np.arange(epochs)
    want = 1 - (1 - 0.99) * (np.cos(np.pi * k / epochs) + 1) / 2  # BYOL §3.2, tau_base 0.99
    np.testing.assert_allclose(log["tau"], want, rtol=1e-6)
    info = RunFolder.resume(run.path, "t", config={}).info["ssl_protocol"]["all"]
    assert info["tau_base"] == 0.99 and info["tau_schedule"] == "cosine" and info["steps"] == 5


# --- fault 5: lr scaled with the batch, PyTorch's coupled weight decay ------------------------


def test_coupled_sgd_is_torch_sgd_with_weight_decay():
    import torch

    from kerassev.models.ssl.optim import CoupledSGD

    rng = np.random.default_rng(0)
    w0, grads = rng.normal(size=5), rng.normal(size=(4, 5))
    ref = torch.nn.Parameter(torch.tensor(w0))
    opt = torch.optim.SGD([ref], lr=0.1, momentum=0.9, weight_decay=0.05)
    var = keras.Variable(w0.astype(np.float64), dtype="float64")
    ours = CoupledSGD(0.1, momentum=0.9, coupled_weight_decay=0.05)
    for g in grads:
        ref.grad = torch.tensor(g)
        opt.step()
        ours.apply([keras.ops.convert_to_tensor(g)], [var])
    np.testing.assert_allclose(var.numpy(), ref.detach().numpy(), rtol=1e-6)  # lr is float32
    # Keras' own weight_decay is decoupled: a different (weaker) decay at the same number
    plain = keras.Variable(w0.astype(np.float64), dtype="float64")
    keras_sgd = keras.optimizers.SGD(0.1, momentum=0.9, weight_decay=0.05)
    for g in grads:
        keras_sgd.apply([keras.ops.convert_to_tensor(g)], [plain])
    assert np.abs(plain.numpy() - ref.detach().numpy()).max() > 1e-3


def test_covid_ssl_lr_is_scaled_linearly_from_batch_256(tmp_path):
    from kerassev.models.ssl.optim import linear_scaled_lr
    from kerassev.recipes.covid_ssl.config import CovidSSLConfig

    for config in (CovidSSLConfig.paper(), CovidSSLConfig.cpu()):
        stage = config.ssl_stage()
        lr = linear_scaled_lr(stage.lr, config.ssl_batch_size, stage.lr_batch)
        assert lr == pytest.approx(0.03 * config.ssl_batch_size / 256)
        assert stage.weight_decay == 4e-4
    assert "lr 0.0075" in CovidSSLConfig.cpu().describe()


def test_stage_optimizer_gets_the_scaled_lr_and_coupled_decay(tmp_path):
    from kerassev.models.ssl.optim import CoupledSGD
    from kerassev.recipes.ssl_pretraining import SSLStage, build_ssl, pretrain_ssl

    images = np.random.default_rng(0).random((8, 16, 16)).astype(np.float32)
    model = build_ssl(_spec(), n_images=8)
    stage = SSLStage(1, lr=0.04, momentum=0.9, train="all", weight_decay=1e-3, lr_batch=32)
    pretrain_ssl(
        model, images, stages=[("all", stage)], pipeline=_pipe(8), run=None,
        backbone_name=model.encoder.layers[1].name,
    )  # fmt: skip
    assert isinstance(model.optimizer, CoupledSGD)
    assert model.optimizer.coupled_weight_decay == 1e-3 and not model.optimizer.weight_decay
    assert model.optimizer._learning_rate.initial_learning_rate == pytest.approx(0.04 * 8 / 32)


# --- online k-NN monitor -------------------------------------------------------------------


def test_knn_accuracy_on_planted_clusters_and_noise():
    from kerassev.models.ssl.monitor import knn_accuracy

    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], 40)
    centres = rng.normal(size=(3, 16)) * 3
    assert knn_accuracy(centres[y] + rng.normal(size=(120, 16)), y) == 1.0
    noise = [knn_accuracy(rng.normal(size=(120, 16)), y) for _ in range(5)]
    assert 0.15 < np.mean(noise) < 0.5  # chance is 1/3


def test_knn_monitor_logs_every_epoch_into_history_csv_and_leaves_bn_alone(tmp_path):
    from kerassev.recipes.ssl_pretraining import SSLStage, build_ssl, pretrain_ssl
    from kerassev.runs import RunFolder

    rng = np.random.default_rng(0)
    images = rng.random((8, 16, 16)).astype(np.float32)
    x_knn, y_knn = rng.random((24, 16, 16, 3)).astype(np.float32), np.repeat([0, 1], 12)
    model = build_ssl(_spec(), n_images=8)
    backbone = model.encoder.layers[1]
    run = RunFolder.create(tmp_path, "t", config={}, seed=0)
    log = pretrain_ssl(
        model, images, stages=[("all", SSLStage(2, lr=0.01, train="all"))], pipeline=_pipe(),
        run=run, backbone_name=backbone.name, knn=(x_knn, y_knn),
    )  # fmt: skip
    assert log["knn_acc"].notna().all() and len(log) == 2  # read back from the CSV log
    assert log["knn_acc"].between(0, 1).all()
    # the monitor's precise BN is undone: the moving statistics are training's own
    from kerassev.models.ssl.monitor import KNNMonitor

    monitor = KNNMonitor(backbone, x_knn, y_knn)
    bn = [
        lay
        for lay in backbone._flatten_layers()
        if isinstance(lay, keras.layers.BatchNormalization)
    ]
    before = [lay.moving_mean.numpy().copy() for lay in bn]
    logs = {}
    monitor.on_epoch_end(0, logs)
    assert 0 <= logs["knn_acc"] <= 1
    for lay, b in zip(bn, before, strict=True):
        np.testing.assert_array_equal(lay.moving_mean.numpy(), b)


# --- fault 6: the probe's C by CV on the training split, paired test against the control ---


def _probe_data(n=160, d=200, signal=1.0, seed=0):
    rng = np.random.default_rng(seed)
    y = np.repeat([0, 1], n // 2)
    x = rng.normal(size=(n, d))
    x[:, 0] += signal * (2 * y - 1)
    return x, y


def test_probe_chooses_c_by_cross_validation_on_training_rows():
    import warnings

    from kerassev.recipes.covid_ssl.probe import PROBE_CS, linear_probe

    x, y = _probe_data(signal=1.0)  # one informative feature among 200: strong L2 wins
    test = np.random.default_rng(1).normal(size=(10, 200))
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)  # no deprecated sklearn arguments
        probs, c_noisy = linear_probe(x, y, test)
    assert probs.shape == (10, 2) and np.allclose(probs.sum(1), 1)
    x_clean, y_clean = _probe_data(d=3, signal=4.0)  # separable, few features: weak L2 wins
    _, c_clean = linear_probe(x_clean, y_clean, test[:, :3])
    assert c_noisy in PROBE_CS and c_clean in PROBE_CS and c_noisy < c_clean
    # patients that repeat are kept within one fold (GroupKFold): it runs and chooses a C
    groups = np.repeat(np.arange(40), 4)
    _, c_grouped = linear_probe(x, y, test, groups=groups)
    assert c_grouped in PROBE_CS
    # the choice depends on training rows only: other test rows, same C and same model
    again, c_again = linear_probe(x, y, test[::-1])
    assert c_again == c_noisy
    np.testing.assert_allclose(again, probs[::-1])


def test_probe_vs_control_is_a_paired_bootstrap_on_the_same_images():
    from kerassev.recipes.covid_ssl.probe import probe_vs_control

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 300)
    good = np.clip(0.5 + 0.3 * (2 * labels - 1) + 0.3 * rng.normal(size=300), 0, 1)
    weak = np.clip(0.5 + 0.05 * (2 * labels - 1) + 0.3 * rng.normal(size=300), 0, 1)

    def probs(p1):
        return np.stack([1 - p1, p1], axis=1)

    same = probe_vs_control(labels, probs(good), probs(good), positive=1, n_resamples=200, seed=0)
    assert same["auc_diff"] == 0 and same["p_value"] == 1.0
    t = probe_vs_control(labels, probs(good), probs(weak), positive=1, n_resamples=500, seed=0)
    assert t["auc_diff"] > 0.2 and t["diff_lo"] > 0 and t["p_value"] < 0.05


def test_covid_finetuning_uses_the_papers_coupled_weight_decay(tmp_path):
    from kerassev.models.ssl.optim import CoupledSGD
    from kerassev.recipes.covid_ssl.config import CovidSSLConfig
    from kerassev.recipes.covid_ssl.finetune import build_classifier, fine_tune
    from kerassev.runs import RunFolder

    for schedule in ("constant", "cosine"):
        config = CovidSSLConfig.smoke(finetune_schedule=schedule, finetune_epochs=1, last_epochs=1)
        model = build_classifier(config, 2, name=f"clf_{schedule}")
        x = np.random.default_rng(0).random((8, 32, 32, 3)).astype(np.float32)
        run = RunFolder.create(tmp_path / schedule, "t", config={}, seed=0)
        fine_tune(model, x, np.arange(8) % 2, x[:2], config, run=run, stage="ft")
        assert isinstance(model.optimizer, CoupledSGD)
        assert model.optimizer.coupled_weight_decay == 4e-4 and not model.optimizer.weight_decay

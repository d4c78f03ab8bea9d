"""One test harness every self-supervised method runs through (as keras-hub's ``run_task_test``).

:func:`run_ssl_method_test` checks, on a tiny encoder and a fixed batch: a few optimiser steps
lower the loss; no gradient reaches a target network or a memory bank; an EMA target follows
eq. 5 exactly; ``.keras`` and ``.weights.h5`` round trips give the same embeddings.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from kerassev.models.backbones import build_backbone
from kerassev.models.heads import build_encoder
from kerassev.models.ssl import EMATargetSSL, build_ssl_model

SIZE, DIM, N = 32, 16, 16


def tiny_encoder(size=SIZE, dim=DIM, *, flexible=False):
    shape = (None, None, 3) if flexible else (size, size, 3)
    backbone = build_backbone("tiny_cnn", weights=None, input_shape=shape)
    return build_encoder(backbone, projection_dim=dim, hidden=32, n_layers=2, l2=None)


def fixed_batch(n=N, size=SIZE, seed=0):
    """Two views of ``n`` random images (the second flipped and brightened) and their indices."""
    rng = np.random.default_rng(seed)
    x = rng.random((n, size, size, 3), dtype=np.float32)
    return x, np.clip(np.flip(x, axis=2) * 1.1, 0, 1), np.arange(n, dtype=np.float32)


def make_model(method, *, seed=0, flexible=False, **kwargs):
    keras.utils.set_random_seed(seed)
    kwargs.setdefault("predictor_hidden", 32)
    return build_ssl_model(
        method, tiny_encoder(flexible=flexible), bank_size=N, seed=seed, **kwargs
    )


def _step_losses(model, batch, steps):
    v1, v2, idx = batch
    return [
        float(model.train_on_batch((v1, v2), idx, return_dict=True)["loss"]) for _ in range(steps)
    ]


def check_loss_decreases(model, batch, steps=8, lr=0.05):
    model.compile(optimizer=keras.optimizers.SGD(lr, momentum=0.9))
    losses = _step_losses(model, batch, steps)
    assert all(np.isfinite(losses)), losses
    first, last = np.mean(losses[:2]), np.mean(losses[-2:])
    assert last < first, f"{model.name}: loss did not fall over {steps} steps: {losses}"
    return losses


def check_no_gradient_to_targets(model, batch):
    v1, v2, idx = (tf.constant(a) for a in batch)
    online = model.ssl_trainable_variables()
    frozen = []
    if isinstance(model, EMATargetSSL):
        frozen += list(model.target.weights)
    if hasattr(model, "bank"):
        frozen.append(model.bank)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([v.value for v in frozen])
        loss, _, _ = model.compute_ssl_loss(v1, v2, training=True, index=idx)
    on = tape.gradient(loss, online)
    assert sum(float(tf.reduce_sum(tf.abs(g))) for g in on if g is not None) > 0
    target_ids = {id(v) for v in frozen}
    assert not any(id(v) in target_ids for v in online), "a target variable is optimised"
    for v in frozen:
        g = tape.gradient(loss, v.value)
        assert g is None or float(tf.reduce_max(tf.abs(g))) == 0.0, f"gradient reached {v.path}"


def check_ema_update(model, batch):
    """After one step, every target kernel is ``tau * before + (1 - tau) * online_after``."""
    v1, v2, idx = batch
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    pairs = [
        (t, o)
        for t, o in zip(model.target.weights, model.encoder.weights, strict=True)
        if o.trainable
    ]
    for t, _ in pairs:  # make the target differ from the online network
        t.assign(t + 0.5)
    before = [t.numpy().copy() for t, _ in pairs]
    model.train_on_batch((v1, v2), idx)
    for (t, o), b in zip(pairs, before, strict=True):
        expected = model.tau * b + (1 - model.tau) * o.numpy()
        np.testing.assert_allclose(t.numpy(), expected, rtol=1e-5, atol=1e-6)


def check_save_load(model, batch, tmp_path):
    x = batch[0][:4]
    reference = model.predict(x, verbose=0)
    path = tmp_path / f"{model.name}.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert type(loaded) is type(model)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), reference, atol=1e-5)
    weights = tmp_path / f"{model.name}.weights.h5"
    model.save_weights(weights)
    fresh = type(model).from_config(model.get_config())
    fresh.load_weights(weights)
    np.testing.assert_allclose(fresh.predict(x, verbose=0), reference, atol=1e-5)
    for a, b in zip(model.weights, fresh.weights, strict=True):  # targets and banks too
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-6, err_msg=a.path)


def run_ssl_method_test(method, tmp_path, **kwargs):
    batch = fixed_batch()
    check_no_gradient_to_targets(make_model(method, **kwargs), batch)
    model = make_model(method, **kwargs)
    check_loss_decreases(model, batch)
    check_save_load(model, batch, tmp_path)
    if isinstance(model, EMATargetSSL):
        check_ema_update(make_model(method, **kwargs), batch)

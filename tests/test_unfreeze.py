"""Staged unfreezing on nested models: top-n weighted non-BN layers, BN frozen in inference mode."""

from __future__ import annotations

import logging

import keras
import numpy as np
import pytest
from keras import layers

from kerassev.models.unfreeze import flatten_layers, freeze_all, trainable_summary, unfreeze_top


def _nested_model():
    """outer(inner(stem) -> head): inner is nested twice, weighted/BN/weightless layers mixed."""
    keras.utils.set_random_seed(0)
    x_in = keras.Input((8, 8, 2))
    x = layers.Conv2D(4, 3, padding="same", name="c1")(x_in)
    x = layers.BatchNormalization(name="bn1")(x)
    x = layers.ReLU(name="r1")(x)
    x = layers.Conv2D(4, 3, padding="same", name="c2")(x)
    x = layers.BatchNormalization(name="bn2")(x)
    x = layers.Conv2D(4, 3, padding="same", name="c3")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    stem = keras.Model(x_in, x, name="stem")

    e_in = keras.Input((8, 8, 2))
    z = layers.Dense(6, name="proj")(stem(e_in))
    z = layers.BatchNormalization(name="proj_bn")(z)
    encoder = keras.Model(e_in, z, name="encoder")

    r_in = keras.Input((8, 8, 2))
    h = layers.Dense(5, name="head1")(encoder(r_in))
    h = layers.BatchNormalization(name="head_bn")(h)
    h = layers.Activation("relu", name="head_act")(h)
    out = layers.Dense(1, name="out")(h)
    return keras.Model(r_in, out, name="regressor")


def _weights_by_layer(model):
    return {
        path: [np.array(v.numpy()) for v in lay.weights]
        for path, lay in flatten_layers(model)
        if lay.weights
    }


def test_flatten_layers_is_depth_first_in_definition_order():
    paths = [p for p, _ in flatten_layers(_nested_model())]
    weighted = [p for p in paths if p.split("/")[-1][0] in "cph" and "act" not in p]
    assert weighted[:4] == ["encoder/stem/c1", "encoder/stem/c2", "encoder/stem/c3", "encoder/proj"]
    assert paths.index("encoder/proj_bn") < paths.index("head1") < paths.index("out")


def test_unfreeze_top_5_trains_exactly_those_layers(caplog):
    model = _nested_model()
    freeze_all(model)
    assert model.trainable_weights == []
    with caplog.at_level(logging.INFO, logger="kerassev.models.unfreeze"):
        names = unfreeze_top(model, n=5)
    expected = ["encoder/stem/c2", "encoder/stem/c3", "encoder/proj", "head1", "out"]
    assert names == expected
    assert "encoder/stem/c2" in caplog.text

    summary = trainable_summary(model)
    assert sorted(summary.loc[summary.trainable, "path"]) == sorted(expected)
    assert not summary.loc[summary.type == "BatchNormalization", "trainable"].any()
    owners = {id(v): p for p, lay in flatten_layers(model) for v in lay.weights}
    assert {owners[id(v)] for v in model.trainable_weights} == set(expected)

    before = _weights_by_layer(model)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 8, 8, 2)).astype("float32") * 3 + 1  # far from BN moving stats
    y = rng.normal(size=(8, 1)).astype("float32")
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    after = _weights_by_layer(model)
    changed = {
        p
        for p in before
        if any(not np.array_equal(a, b) for a, b in zip(before[p], after[p], strict=True))
    }
    assert changed == set(expected)  # BN gammas/betas and moving stats untouched everywhere


def test_unfreeze_within_scope_keeps_head_and_counts_only_scope():
    model = _nested_model()
    freeze_all(model)
    for name in ["head1", "head_bn", "out"]:
        model.get_layer(name).trainable = True  # head trained in stage 1
    names = unfreeze_top(model, n=2, within="encoder")
    assert names == ["encoder/stem/c3", "encoder/proj"]
    summary = trainable_summary(model).set_index("path")
    assert summary.loc[["head1", "head_bn", "out"], "trainable"].all()  # outside scope: unchanged
    assert not summary.loc[
        ["encoder/stem/c1", "encoder/stem/c2", "encoder/proj_bn"], "trainable"
    ].any()
    assert unfreeze_top(model, n=0, within="encoder") == []
    with pytest.raises(ValueError, match="no nested model"):
        unfreeze_top(model, n=1, within="nope")


def test_resnet50_top20_are_convolutions():
    from kerassev.models.backbones import build_backbone

    backbone = build_backbone("resnet50", input_shape=(32, 32, 3))
    names = unfreeze_top(backbone, n=20)
    assert len(names) == 20 and all(n.endswith("_conv") for n in names)
    assert names[-1] == "conv5_block3_3_conv" and names[0].startswith("conv4_block")
    assert all(not lay.trainable for lay in backbone.layers if "_bn" in lay.name)

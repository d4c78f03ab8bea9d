"""Shared SSL pre-training: stage semantics, the end-to-end log, resumable runs, every method."""

from __future__ import annotations

import numpy as np
import pytest

from kerassev.data.pipeline import PipelineConfig, build_dataset_from_arrays
from kerassev.models.backbones import build_backbone
from kerassev.models.heads import build_encoder, build_predictor
from kerassev.models.ssl import SimSiam
from kerassev.models.unfreeze import trainable_summary
from kerassev.recipes.ssl_pretraining import (
    EncoderSpec,
    SSLStage,
    pretrain_encoder,
    pretrain_ssl,
    set_backbone_trainable,
)
from kerassev.runs import RunFolder

SIZE = 32
PIPE = PipelineConfig(image_size=SIZE, batch_size=8, two_view_policy="mrale", drop_remainder=True)


def _simsiam():
    backbone = build_backbone("tiny_cnn", weights=None, input_shape=(SIZE, SIZE, 3))
    encoder = build_encoder(backbone, projection_dim=16)
    return SimSiam(encoder, build_predictor(16, hidden=8)), backbone


def _images(n=16):
    return np.random.default_rng(0).uniform(size=(n, SIZE, SIZE)).astype(np.float32)


def _trainable_backbone_layers(model):
    s = trainable_summary(model.encoder)
    return set(s.loc[s["trainable"] & s["path"].str.startswith("tiny_cnn/"), "path"])


def test_train_all_head_and_top_n():
    model, _ = _simsiam()
    set_backbone_trainable(model, "tiny_cnn", "all")  # whole backbone, BN included
    assert _trainable_backbone_layers(model) == {
        f"tiny_cnn/{k}{i}" for k in ("conv", "bn") for i in (1, 2, 3)
    }
    set_backbone_trainable(model, "tiny_cnn", "head")  # frozen; the projector still trains
    assert _trainable_backbone_layers(model) == set()
    assert len(model.encoder.trainable_weights) > 0
    set_backbone_trainable(model, "tiny_cnn", 2)  # top-2 weight-bearing non-BN layers
    assert _trainable_backbone_layers(model) == {"tiny_cnn/conv2", "tiny_cnn/conv3"}


def test_stages_run_in_order_and_log_end_to_end_without_run():
    model, backbone = _simsiam()
    before = [w.numpy().copy() for w in backbone.weights]
    log = pretrain_ssl(
        model,
        _images(),
        stages=[("a", SSLStage(epochs=2)), ("b", SSLStage(epochs=1, train="all"))],
        pipeline=PIPE,
        run=None,
        backbone_name="tiny_cnn",
    )
    assert list(log["stage"]) == ["a", "a", "b"]
    assert list(log["global_epoch"]) == [1, 2, 3] and list(log["epoch"]) == [0, 1, 0]
    assert {"loss", "z_std_ratio"} <= set(log.columns) and np.isfinite(log["loss"]).all()
    after = [w.numpy() for w in backbone.weights]
    changed = [not np.array_equal(a, b) for a, b in zip(before, after, strict=True)]
    assert any(changed)  # stage b trained the backbone


def test_epochs_of_an_endless_feed_have_full_batches_only():
    """Views come from one endless iterator, epochs of floor(n / batch) full batches as the
    finite feed gave; each pass over the images is its own batches (no image twice in one)."""
    model, _ = _simsiam()
    pretrain_ssl(
        model, _images(20), stages=[("a", SSLStage(epochs=3))], pipeline=PIPE, run=None,
        backbone_name="tiny_cnn",
    )  # fmt: skip
    assert int(model.optimizer.iterations) == 3 * (20 // 8)
    pipe = PIPE.replace(two_view_policy=None, augment_policy=None, repeat=True, channels=1,
                        preprocessing="unit")  # fmt: skip
    rows = np.arange(20, dtype=np.float32)
    ds = build_dataset_from_arrays(_images(20), pipe, labels=rows)
    batches = [y.numpy().astype(int) for _, y in ds.take(3 * 2)]
    for i in range(0, 6, 2):  # each pass: 2 batches of 8 distinct images
        seen = np.concatenate(batches[i : i + 2])
        assert len(seen) == 16 and len(set(seen)) == 16
    assert not all(np.array_equal(a, b) for a, b in zip(batches[:2], batches[2:4], strict=True))


def _two_stages(run, **extra):
    """pretrain_ssl arguments: stages ssl_x/stage_a (frozen) and ssl_x/stage_b (top 2)."""
    return dict(
        stages=[("stage_a", SSLStage(epochs=1)), ("stage_b", SSLStage(epochs=1, train=2))],
        pipeline=PIPE,
        run=run,
        backbone_name="tiny_cnn",
        stage_prefix="ssl_x/",
        **extra,
    )


def test_with_run_stages_are_named_logged_and_reloaded(tmp_path):
    run = RunFolder.create(tmp_path, "t", config={}, seed=0)
    kwargs = _two_stages(run)
    model, _ = _simsiam()
    log = pretrain_ssl(model, _images(), **kwargs)
    assert run.stage_done("ssl_x/stage_a") and run.stage_done("ssl_x/stage_b")
    assert list(log["stage"]) == ["stage_a", "stage_b"] and list(log["global_epoch"]) == [1, 2]

    again, _ = _simsiam()  # a resumed run loads the finished stages instead of training them
    log2 = pretrain_ssl(again, _images(), **kwargs)
    for a, b in zip(model.get_weights(), again.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert log2.equals(log)


def test_needs_two_views():
    model, _ = _simsiam()
    with pytest.raises(ValueError, match="two views"):
        pretrain_ssl(
            model,
            _images(),
            stages=[("a", SSLStage(epochs=1))],
            pipeline=PIPE.replace(two_view_policy=None),
            run=None,
            backbone_name="tiny_cnn",
        )


def test_encoder_file_replaces_the_stage_checkpoints_and_a_rerun_loads_it(tmp_path):
    run = RunFolder.create(tmp_path, "t", config={}, seed=0)
    encoder_file = run.subdir("models") / "encoder.weights.h5"
    kwargs = _two_stages(run, encoder_file=encoder_file)
    model, _ = _simsiam()
    log = pretrain_ssl(model, _images(), **kwargs)
    assert encoder_file.is_file()
    assert list((run.path / "checkpoints").glob("*.weights.h5")) == []
    assert run.info["checkpoints_discarded"] == ["ssl_x/stage_a", "ssl_x/stage_b"]

    again, _ = _simsiam()  # the rerun finds the encoder: nothing trains, nothing is missing
    log2 = pretrain_ssl(again, _images(), **kwargs)
    for a, b in zip(model.encoder.get_weights(), again.encoder.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert log2.equals(log)


def test_stage_train_values_are_checked():
    for bad in (0, None, True, "top"):
        with pytest.raises(ValueError, match="train"):
            SSLStage(epochs=1, train=bad)


@pytest.mark.parametrize("method", ["byol", "pirl_rotation"])
def test_pretrain_encoder_builds_and_trains_any_method(method, tmp_path):
    """EMA and memory-bank methods through the same recipe (PIRL gets row indices)."""
    run = RunFolder.create(tmp_path, "t", config={}, seed=0)
    spec = EncoderSpec(
        method=method,
        backbone="tiny_cnn",
        image_size=SIZE,
        projection_dim=16,
        projection_layers=2,
        predictor_hidden=16,
        l2=None,
    )
    encoder, log = pretrain_encoder(
        spec,
        _images(),
        stages=[("all", SSLStage(epochs=2, lr=0.03, momentum=0.9, train="all", weight_decay=4e-4))],
        pipeline=PIPE,
        run=run,
        stage_prefix=f"{method}/",
        encoder_file=tmp_path / "enc.weights.h5",
    )
    assert encoder.output_shape == (None, 16) and len(log) == 2
    assert np.isfinite(log["loss"]).all() and (tmp_path / "enc.weights.h5").is_file()

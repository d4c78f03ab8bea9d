"""Paper-01 building blocks that need no full run: config presets, overrides, head sharing."""

import keras
import numpy as np
import pandas as pd
import pytest

from kerassev.models import backbones
from kerassev.models.backbones import build_backbone
from kerassev.models.heads import build_encoder, build_regressor
from kerassev.recipes.mrale import MraleConfig, SSLStage
from kerassev.recipes.mrale import reproduce as mrale_reproduce
from kerassev.recipes.mrale.regression import head_model
from kerassev.recipes.overrides import apply_overrides


def test_paper_preset_holds_the_papers_numbers():
    cfg = MraleConfig.paper()
    assert cfg.image_size == 224 and cfg.n_folds == 5 and cfg.projection_dim == 2048
    assert cfg.ssl_stage_a == SSLStage(epochs=15, lr=0.02, momentum=0.6, train="head")
    assert cfg.ssl_stage_b == SSLStage(epochs=20, lr=0.02, momentum=0.6, train=20)
    assert cfg.head_units == (256, 256) and cfg.head_epochs == 20
    assert (cfg.finetune_epochs, cfg.finetune_lr, cfg.finetune_unfreeze_top) == (15, 1e-5, 20)
    assert cfg.augment_policy == "mrale" and cfg.l2 == 1e-3 and cfg.predictor_hidden == 512


def test_smoke_preset_shrinks_size_data_and_epochs_and_gives_the_head_more():
    paper, smoke = MraleConfig.paper(), MraleConfig.smoke()
    same = (
        "l2",
        "head_units",
        "head_lr",
        "head_activation",
        "head_bias_at_mean",
        "resize_mode",
        "collapse_threshold",
        "finetune_lr",
        "finetune_unfreeze_top",
        "augment_policy",
        "n_folds",
        "comparators",
    )
    for name in same:
        assert getattr(paper, name) == getattr(smoke, name), name
    assert smoke.ssl_stage_b.train == paper.ssl_stage_b.train
    # a smaller network at smoke (issue 23): tiny CNN, 256-d projector, 64-unit predictor
    assert (paper.backbone, smoke.backbone) == ("resnet50", "tiny_cnn")
    assert smoke.projection_dim < paper.projection_dim
    assert smoke.predictor_hidden < paper.predictor_hidden
    assert smoke.image_size < paper.image_size and smoke.phantom_patients < paper.phantom_patients
    assert smoke.ssl_stage_a.epochs < paper.ssl_stage_a.epochs
    assert smoke.finetune_epochs < paper.finetune_epochs
    # the one epoch count smoke raises (few head steps per epoch on ~100 phantoms; see smoke())
    assert (paper.head_epochs, smoke.head_epochs) == (20, 30)


def test_overrides_parse_to_field_types_and_reject_unknown_keys():
    cfg = apply_overrides(
        MraleConfig.smoke(),
        ["image_size=32", "ssl_stage_b.epochs=3", "comparators=ssl_scratch", "subscore_head=false"],
    )
    assert cfg.image_size == 32 and cfg.ssl_stage_b.epochs == 3
    assert cfg.comparators == ("ssl_scratch",) and cfg.subscore_head is False
    with pytest.raises(ValueError, match="unknown setting 'imagesize'"):
        apply_overrides(cfg, ["imagesize=32"])
    with pytest.raises(ValueError, match="expected int"):
        apply_overrides(cfg, ["image_size=big"])


def test_head_model_shares_weights_with_the_regressor():
    backbone = build_backbone("tiny_cnn", input_shape=(32, 32, 3))
    encoder = build_encoder(backbone, projection_dim=16)
    regressor = build_regressor(encoder, units=(8, 8))
    head = head_model(regressor)
    x = np.random.default_rng(0).random((4, 32, 32, 3), dtype=np.float32)
    emb = encoder.predict(x, verbose=0)
    np.testing.assert_allclose(
        head.predict(emb, verbose=0), regressor.predict(x, verbose=0), atol=1e-5
    )
    # training the head on embeddings moves the regressor's own head weights
    head.compile(keras.optimizers.SGD(0.1), loss="mse")
    before = regressor.get_layer("mrale").get_weights()[0].copy()
    head.fit(emb, np.ones(4), epochs=1, verbose=0)
    assert not np.allclose(before, regressor.get_layer("mrale").get_weights()[0])


def test_imagenet_row_is_skipped_offline_with_how_to_fix(monkeypatch, tmp_path):
    monkeypatch.setattr(backbones, "keras_weights_cache", lambda: [tmp_path / "keras_home/models"])
    monkeypatch.setattr(mrale_reproduce, "can_download_weights", lambda: False)
    weights, reason = mrale_reproduce.resolve_imagenet_weights(None)
    assert weights is None and "--weights" in reason and "notop" in reason
    weights, reason = mrale_reproduce.resolve_imagenet_weights(str(tmp_path / "missing.h5"))
    assert weights is None and "missing.h5" in reason
    local = tmp_path / "resnet50_notop.h5"
    local.write_bytes(b"")
    assert mrale_reproduce.resolve_imagenet_weights(str(local)) == (str(local), None)
    # a backbone with no ImageNet weights (the smoke preset's) skips the row even with a file
    weights, reason = mrale_reproduce.resolve_imagenet_weights(str(local), "tiny_cnn")
    assert weights is None and "tiny_cnn has no ImageNet weights" in reason


def test_smoke_preset_trains_its_backbone_and_names_it():
    smoke, paper = MraleConfig.smoke(), MraleConfig.paper()
    assert paper.encoder_spec().backbone == "resnet50" and paper.projection_dim == 2048
    assert smoke.encoder_spec().backbone == smoke.backbone == "tiny_cnn"
    assert "tiny_cnn" in smoke.describe()
    table = pd.DataFrame({"comparator": ["resnet50_scratch", "mean baseline"]})
    labelled = mrale_reproduce._label_rows(table, "tiny_cnn")
    assert labelled.loc[0, "model"] == "tiny_cnn regressor (from scratch, no SSL)"
    assert mrale_reproduce._label_rows(table).loc[0, "model"].startswith("ResNet-50 regressor")


def test_report_says_collapsed_when_the_monitor_ends_below_threshold():
    import pandas as pd

    logs = {
        "scratch": pd.DataFrame({"z_std_ratio": [0.9, 0.4, 0.02]}),
        "imagenet": pd.DataFrame({"z_std_ratio": [0.8, 0.85]}),
    }
    health = mrale_reproduce.ssl_health(logs, threshold=0.1).set_index("init")
    assert health.loc["scratch", "verdict"] == "collapsed"
    assert health.loc["imagenet", "verdict"] == "not collapsed"
    assert health.loc["scratch", "z_std_ratio"] == pytest.approx(0.02)
    nan = mrale_reproduce.ssl_health({"x": pd.DataFrame({"z_std_ratio": [float("nan")]})}, 0.1)
    assert nan["verdict"].tolist() == ["collapsed"]  # a NaN monitor is no sign of health


def test_paper01_options_validate_and_default_as_documented():
    cfg = MraleConfig.paper()
    assert (cfg.resize_mode, cfg.head_activation, cfg.head_bias_at_mean) == ("crop", "relu", True)
    assert cfg.head_activation_fn == "relu"
    assert MraleConfig.paper(head_activation="none").head_activation_fn is None
    with pytest.raises(ValueError, match="resize_mode"):
        MraleConfig.paper(resize_mode="squash")
    literal = apply_overrides(cfg, ["resize_mode=stretch", "head_bias_at_mean=false"])
    assert literal.resize_mode == "stretch" and literal.head_bias_at_mean is False
    assert "resize stretch" in literal.describe()

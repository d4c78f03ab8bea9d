"""Paper 01's ImageNet row from the Keras cache, end to end: a ResNet-50 notop weights file in
``$KERAS_HOME/models/`` (random-init here, the official file's format) makes the row run."""

import numpy as np

from kerassev.models import backbones
from kerassev.models.backbones import RESNET50_NOTOP_FILE, build_backbone
from kerassev.recipes.mrale import MraleConfig, SSLStage, reproduce_mrale
from kerassev.recipes.mrale import reproduce as mrale_reproduce


def test_imagenet_row_runs_from_weights_in_keras_home(tmp_path, monkeypatch, legacy_h5_writer):
    home = tmp_path / "keras_home"
    reference = build_backbone("resnet50", input_shape=(32, 32, 3))
    legacy_h5_writer(reference, home / "models" / RESNET50_NOTOP_FILE)
    monkeypatch.setenv("KERAS_HOME", str(home))
    # never the network: only the file in KERAS_HOME may satisfy the ImageNet row
    monkeypatch.setattr(mrale_reproduce, "can_download_weights", lambda: False)
    monkeypatch.setattr(backbones, "_can_reach", lambda *a, **k: False)
    assert mrale_reproduce.resolve_imagenet_weights(None) == ("imagenet", None)

    # the smoke recipe, shrunk to the one comparator and the fewest steps that exercise it
    config = MraleConfig.smoke(
        comparators=("ssl_imagenet",),
        subscore_head=False,
        image_size=32,
        phantom_patients=12,
        phantom_timepoints=(1, 2),
        n_folds=2,
        batch_size=8,
        ssl_stage_a=SSLStage(epochs=1),
        ssl_stage_b=SSLStage(epochs=1, unfreeze_top=20),
        head_epochs=1,
        finetune_epochs=1,
        gradcam_max_images=2,
    )
    result = reproduce_mrale(config, tmp_path / "runs", export=False)
    assert "ssl_imagenet" not in result.skipped, result.skipped
    table = result.table.set_index("comparator")
    mae = [c for c in table.columns if c.startswith("MAE mean")][0]
    assert "to" in str(table.loc["ssl_imagenet", mae])  # our estimate with its CI
    oof = result.oof[result.oof["comparator"] == "ssl_imagenet"]
    assert len(oof) == len(result.oof[result.oof["comparator"] == "mean baseline"])
    assert np.isfinite(oof["y_pred"]).all()
    # the SSL encoder started from the cached file: its backbone was loaded from it
    assert (result.run.path / "models" / "encoder_imagenet.weights.h5").is_file()

"""SageMaker training jobs: the job's channels, output folders and hyper-parameters drive
``kerassev reproduce``; a paper-01 run on a temporary job layout lands where SageMaker expects,
with its ImageNet row started from the weights file in the Keras cache (issue 7, items 1, 10)."""

import json
import os

import numpy as np
import pandas as pd
import pytest

from kerassev import sagemaker
from kerassev.cli import main
from kerassev.data.phantoms import write_phantom_dataset
from kerassev.models import backbones
from kerassev.models.backbones import RESNET50_NOTOP_FILE, build_backbone
from kerassev.recipes.mrale import MraleConfig
from kerassev.recipes.mrale import reproduce as mrale_reproduce
from kerassev.recipes.ssl_pretraining import build_ssl_encoder


def _job(tmp_path, monkeypatch, hps: dict):
    """A /opt/ml-like layout under tmp_path, with the training job's variables set."""
    ml = tmp_path / "opt_ml"
    env = {
        "SM_MODEL_DIR": ml / "model",
        "SM_OUTPUT_DATA_DIR": ml / "output" / "data",
        "SM_CHANNEL_TRAINING": ml / "input" / "data" / "training",
        "SM_CHANNEL_LABELS": ml / "input" / "data" / "labels",
        "SM_CHANNEL_WEIGHTS": ml / "input" / "data" / "weights",
    }
    for name, path in env.items():
        monkeypatch.setenv(name, str(path))
    monkeypatch.setenv("SM_HPS", json.dumps(hps))
    return env


def test_job_variables_become_options_and_set_values(tmp_path, monkeypatch):
    env = _job(tmp_path, monkeypatch, {"paper": "mrale", "preset": "paper", "seed": 3,
                                       "image_size": 128, "subscore_head": False,
                                       "comparators": ["ssl_scratch"]})  # fmt: skip
    for folder in ("SM_CHANNEL_LABELS", "SM_CHANNEL_WEIGHTS"):
        env[folder].mkdir(parents=True)
    (env["SM_CHANNEL_LABELS"] / "labels.csv").write_text("x\n")
    (env["SM_CHANNEL_WEIGHTS"] / RESNET50_NOTOP_FILE).write_bytes(b"")
    assert sagemaker.in_training_job()
    argv = sagemaker.reproduce_argv("mrale", ["--seed", "7"])
    assert argv[argv.index("--data") + 1] == str(env["SM_CHANNEL_TRAINING"])
    assert argv[argv.index("--labels") + 1] == str(env["SM_CHANNEL_LABELS"] / "labels.csv")
    assert argv[argv.index("--weights") + 1].endswith(RESNET50_NOTOP_FILE)
    assert argv[argv.index("--out") + 1] == str(env["SM_OUTPUT_DATA_DIR"])
    assert argv.count("--seed") == 1 and argv[argv.index("--seed") + 1] == "7"  # given wins
    assert argv[argv.index("--preset") + 1] == "paper"
    sets = argv[argv.index("--set") + 1 :]
    assert sets == ["image_size=128", "subscore_head=false", "comparators=ssl_scratch"]
    (env["SM_CHANNEL_LABELS"] / "other.csv").write_text("x\n")
    with pytest.raises(sagemaker.TrainingJobError, match="exactly one .csv"):
        sagemaker.reproduce_argv("mrale", [])


@pytest.mark.slow
def test_paper01_job_with_imagenet_weights_in_keras_home_lands_where_sagemaker_expects(
    tmp_path, monkeypatch, legacy_h5_writer
):
    """One cheap end-to-end run for two promises: the ImageNet row runs from a ResNet-50 notop
    file in $KERAS_HOME/models/ (random-init weights in the official file's format; no network),
    and a training job's data channel, output folders and hyper-parameters are honoured."""
    env = _job(
        tmp_path,
        monkeypatch,
        {
            "paper": "mrale",
            "preset": "smoke",
            "comparators": "ssl_imagenet",
            "backbone": "resnet50",  # the smoke preset's tiny CNN has no ImageNet weights
            "subscore_head": False,
            "image_size": 32,
            "n_folds": 2,
            "batch_size": 8,
            "ssl_stage_a.epochs": 0,  # the start is under test, not SimSiam: no SSL steps
            "ssl_stage_b.epochs": 0,
            "head_epochs": 1,
            "finetune_epochs": 0,
            "gradcam_max_images": 2,
        },
    )
    monkeypatch.delenv("SM_CHANNEL_WEIGHTS")  # the weights come from the Keras cache here
    home = tmp_path / "keras_home"
    reference = build_backbone("resnet50", input_shape=(32, 32, 3))
    legacy_h5_writer(reference, home / "models" / RESNET50_NOTOP_FILE)
    monkeypatch.setenv("KERAS_HOME", str(home))
    monkeypatch.setattr(mrale_reproduce, "can_download_weights", lambda: False)
    monkeypatch.setattr(backbones, "_can_reach", lambda *a, **k: False)
    assert mrale_reproduce.resolve_imagenet_weights(None) == ("imagenet", None)
    # the training channel: MIDRC-format DICOMs (phantoms), their label CSV in its own channel
    write_phantom_dataset(env["SM_CHANNEL_TRAINING"], 10, fmt="dicom", size=48, seed=1)
    env["SM_CHANNEL_LABELS"].mkdir(parents=True)
    (env["SM_CHANNEL_TRAINING"] / "labels.csv").rename(env["SM_CHANNEL_LABELS"] / "labels.csv")

    assert main(["reproduce", "mrale"]) == 0

    (run,) = env["SM_OUTPUT_DATA_DIR"].glob("*_mrale-smoke")
    report = (run / "REPORT.md").read_text()
    assert "MIDRC mRALE" in report and str(env["SM_CHANNEL_TRAINING"]) in report
    assert "skipped ssl_imagenet" not in report
    stored = json.loads((run / "run.json").read_text())["config"]
    assert stored["image_size"] == 32 and stored["comparators"] == ["ssl_imagenet"]
    # the ImageNet row has numbers of ours, from every held-out image
    oof = pd.read_csv(run / "oof_predictions.csv")
    ours = oof[oof["comparator"] == "ssl_imagenet"]
    assert len(ours) == (oof["comparator"] == "mean baseline").sum() > 0
    assert np.isfinite(ours["y_pred"]).all()
    table = pd.read_csv(run / "tables" / "table1.csv").set_index("comparator")
    mae = next(c for c in table.columns if c.startswith("MAE mean"))
    assert "to" in str(table.loc["ssl_imagenet", mae])  # an estimate with its CI
    # with no SSL steps the encoder's backbone is exactly the cached file's weights
    encoder = build_ssl_encoder(
        MraleConfig.smoke(image_size=32, backbone="resnet50").encoder_spec()
    )
    encoder.load_weights(run / "models" / "encoder_imagenet.weights.h5")
    for a, b in zip(
        encoder.get_layer("resnet50").get_weights(), reference.get_weights(), strict=True
    ):
        np.testing.assert_array_equal(a, b)
    # the exported model and the report land in SM_MODEL_DIR
    model = env["SM_MODEL_DIR"]
    assert (model / "ssl_imagenet_fold0.keras").is_file()
    assert (model / "ssl_imagenet_fold0_savedmodel" / "saved_model.pb").is_file()
    assert (model / "ssl_imagenet_fold0.tflite").is_file()
    assert (model / "REPORT.md").read_text() == report


def test_paper05_channels_become_its_folders(tmp_path, monkeypatch):
    env = _job(tmp_path, monkeypatch, {"paper": "affinity", "preset": "paper", "epochs": 5})
    for name in ("CNCB", "COVIDX"):
        monkeypatch.setenv(f"SM_CHANNEL_{name}", str(tmp_path / name.lower()))
    argv = sagemaker.reproduce_argv("affinity", [])
    assert argv[argv.index("--data") + 1] == str(env["SM_CHANNEL_TRAINING"])
    assert argv[argv.index("--cncb") + 1] == str(tmp_path / "cncb")
    assert argv[argv.index("--covidx") + 1] == str(tmp_path / "covidx")
    assert argv[argv.index("--set") + 1 :] == ["epochs=5"]


def test_tf_config_is_built_from_the_job_hosts_when_the_container_sets_none(monkeypatch):
    """Issue 22 item 5: a two-instance job with the variables SageMaker sets on each host."""
    from kerassev.distribute import resolve_distribution
    from kerassev.distributed_io import is_chief

    monkeypatch.delenv("TF_CONFIG", raising=False)
    hosts = '["algo-1", "algo-2"]'
    configs = []
    for host in ("algo-1", "algo-2"):
        env = {"SM_HOSTS": hosts, "SM_CURRENT_HOST": host, "SM_MODEL_DIR": "/opt/ml/model"}
        configs.append(json.loads(sagemaker.ensure_tf_config(env)))
        assert json.loads(env["TF_CONFIG"]) == configs[-1]  # set in the job's environment
    port = sagemaker.WORKER_PORT
    for index, config in enumerate(configs):
        assert config["cluster"] == {"worker": [f"algo-1:{port}", f"algo-2:{port}"]}
        assert config["task"] == {"type": "worker", "index": index}
    first, second = (json.dumps(c) for c in configs)
    assert is_chief(first) and not is_chief(second)  # algo-1 writes the run folder
    assert resolve_distribution("auto", tf_config=second, gpus=0).strategy == "multi_worker"

    # a TF_CONFIG the container set is kept; one instance, or no SM_HOSTS, builds none
    own = {"TF_CONFIG": first, "SM_HOSTS": hosts, "SM_CURRENT_HOST": "algo-2"}
    assert sagemaker.ensure_tf_config(own) == first
    assert (
        sagemaker.ensure_tf_config({"SM_HOSTS": '["algo-1"]', "SM_CURRENT_HOST": "algo-1"}) is None
    )
    assert sagemaker.ensure_tf_config({}) is None
    with pytest.raises(sagemaker.TrainingJobError, match="SM_CURRENT_HOST 'algo-9'"):
        sagemaker.tf_config_from_hosts({"SM_HOSTS": hosts, "SM_CURRENT_HOST": "algo-9"})
    with pytest.raises(sagemaker.TrainingJobError, match="SM_HOSTS is not a JSON list"):
        sagemaker.tf_config_from_hosts({"SM_HOSTS": "algo-1,algo-2"})


def test_main_sets_tf_config_and_the_launchers_hyperparameters_are_not_settings(
    tmp_path, monkeypatch
):
    hps = {"paper": "covid-ssl", "preset": "smoke", "ssl_epochs": 2,
           "sagemaker_multi_worker_mirrored_strategy_enabled": True}  # fmt: skip
    _job(tmp_path, monkeypatch, hps)
    monkeypatch.setenv("TF_CONFIG", "")  # unset in the job; restored after the test
    monkeypatch.setenv("SM_HOSTS", '["algo-1", "algo-2"]')
    monkeypatch.setenv("SM_CURRENT_HOST", "algo-2")
    argv = sagemaker.reproduce_argv("covid-ssl", [])
    assert argv[argv.index("--set") + 1 :] == ["ssl_epochs=2"]
    seen = {}

    def fake_cli(args):
        seen["args"], seen["tf_config"] = args, os.environ.get("TF_CONFIG")
        return 0

    monkeypatch.setattr("kerassev.cli.main", fake_cli)
    assert sagemaker.main() == 0
    assert seen["args"] == ["reproduce", "covid-ssl"]
    assert json.loads(seen["tf_config"])["task"] == {"type": "worker", "index": 1}
    # a non-chief worker's run folder is temporary: it delivers nothing to SM_MODEL_DIR
    assert sagemaker.deliver_model(tmp_path) is None

"""The ``distribution`` setting: how ``auto`` resolves, the CLI flag, and a recipe under it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from kerassev.distribute import DISTRIBUTIONS, resolve_distribution

TWO_WORKERS = json.dumps(
    {"cluster": {"worker": ["a:2222", "b:2222"]}, "task": {"type": "worker", "index": 0}}
)


def test_auto_resolves_from_tf_config_and_the_gpu_count():
    assert resolve_distribution("auto", tf_config=TWO_WORKERS, gpus=0).strategy == "multi_worker"
    assert resolve_distribution("auto", tf_config=None, gpus=4).strategy == "mirrored"
    one = resolve_distribution("auto", tf_config=None, gpus=1)
    assert one.strategy == "none" and "1 GPU" in one.reason
    single = json.dumps({"cluster": {"worker": ["a:2222"]}, "task": {"type": "worker"}})
    assert resolve_distribution("auto", tf_config=single, gpus=0).strategy == "none"


def test_explicit_settings_and_bad_values():
    for setting in DISTRIBUTIONS[1:]:
        assert resolve_distribution(setting).strategy == setting
    with pytest.raises(ValueError, match="mirrored"):
        resolve_distribution("horovod")
    with pytest.raises(ValueError, match="TF_CONFIG"):
        resolve_distribution("auto", tf_config="{not json", gpus=0)


def test_cli_flag_reaches_the_config_and_set_is_checked():
    from kerassev.cli import UserError, build_parser
    from kerassev.cli.reproduce import preset_config
    from kerassev.recipes.mrale import MraleConfig

    parser = build_parser()
    args = parser.parse_args(
        ["reproduce", "mrale", "--preset", "smoke", "--out", "x", "--distribution", "mirrored"]
    )
    assert preset_config(args, MraleConfig).distribution == "mirrored"
    bad = parser.parse_args(
        ["reproduce", "mrale", "--preset", "smoke", "--out", "x", "--set", "distribution=ps"]
    )
    with pytest.raises(UserError, match="distribution must be one of"):
        preset_config(bad, MraleConfig)


# Two logical CPUs must be configured before TensorFlow starts: a fresh process.
SCRIPT = r"""
import json, os
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras, numpy as np
from dataclasses import dataclass
from kerassev.distribute import runs_under_configured_distribution
from kerassev.runs import RunFolder
from kerassev.data.pipeline import PipelineConfig
from kerassev.models.backbones import build_backbone
from kerassev.models.heads import build_encoder, build_predictor
from kerassev.models.ssl import SimSiam
from kerassev.recipes.ssl_pretraining import SSLStage, pretrain_ssl

@dataclass
class Config:
    distribution: str = "mirrored"

@runs_under_configured_distribution
def recipe(config, out):
    run = RunFolder.create(out, kind="dist", seed=0, config=config)
    keras.utils.set_random_seed(0)
    model = SimSiam(
        build_encoder(build_backbone("tiny_cnn", input_shape=(32, 32, 3)), projection_dim=32),
        build_predictor(32, hidden=8),
    )
    images = np.random.default_rng(0).random((16, 32, 32)).astype("float32")
    pipeline = PipelineConfig(image_size=32, batch_size=8, two_view_policy="mrale",
                              drop_remainder=True)
    # with a run folder: the resumable fit_stage path, checkpoints included
    log = pretrain_ssl(model, images, stages=[("all", SSLStage(epochs=2, train="all"))],
                       pipeline=pipeline, run=run, backbone_name="tiny_cnn")
    return run, log, tf.distribute.get_strategy().num_replicas_in_sync

import sys
run, log, replicas = recipe(Config(), sys.argv[1])
info = json.loads((run.path / "run.json").read_text())
print(json.dumps({"replicas": replicas, "loss": log["loss"].tolist(),
                  "recorded": info["distribution"][0]}))
"""


@pytest.mark.slow
def test_a_recipe_trains_under_mirrored_strategy_and_records_it(tmp_path):
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path)], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-3000:]
    r = json.loads(out.stdout.strip().splitlines()[-1])
    assert r["replicas"] == 2
    assert r["recorded"]["strategy"] == "mirrored" and r["recorded"]["replicas"] == 2
    assert len(r["loss"]) == 2 and all(abs(v) < 10 for v in r["loss"])


def test_who_is_chief_in_a_tf_config():
    from kerassev.distributed_io import cluster_workers, is_chief, task_of

    def config(cluster, kind, index):
        return json.dumps({"cluster": cluster, "task": {"type": kind, "index": index}})

    workers = {"worker": ["a:1", "b:1"]}
    assert is_chief(config(workers, "worker", 0)) and not is_chief(config(workers, "worker", 1))
    with_chief = {"chief": ["c:1"], "worker": ["a:1"]}
    assert is_chief(config(with_chief, "chief", 0))
    assert not is_chief(config(with_chief, "worker", 0))  # worker 0 is not the chief here
    assert cluster_workers(config(with_chief, "worker", 0)) == ["c:1", "a:1"]
    assert task_of(config(workers, "worker", 1)) == ("worker", 1)
    assert is_chief(None) and task_of(None) == ("worker", 0)  # no cluster: this process writes


def test_under_multi_worker_only_the_chief_writes_and_a_restart_continues(tmp_path, monkeypatch):
    """RunFolder's cluster rules without a cluster (the strategy's choice is faked; the real
    two-process cluster is tests/test_multi_worker.py)."""
    from kerassev import distribute
    from kerassev.runs import RunFolder

    cluster = {"worker": ["127.0.0.1:1", "127.0.0.1:2"]}
    monkeypatch.setattr(
        distribute, "_active", distribute.DistributionChoice("auto", "multi_worker", "test")
    )
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
    out, config = tmp_path / "out", {"a": 1}

    def as_worker(index):
        tf_config = {"cluster": cluster, "task": {"type": "worker", "index": index}}
        monkeypatch.setenv("TF_CONFIG", json.dumps(tf_config))

    as_worker(0)
    chief = RunFolder.create(out, "k", config=config, seed=0)
    assert chief.path.parent == out and not chief.scratch
    assert chief.info["distribution"][0]["cluster"] == cluster["worker"]
    chief.mark_stage_done("s1")
    as_worker(1)
    other = RunFolder.create(out, "k", config=config, seed=0)  # the chief's run, copied
    assert other.scratch and other.path.parent.parent == tmp_path / "tmp"
    assert other.path.name == chief.path.name and other.stage_done("s1")
    as_worker(0)
    again = RunFolder.create(out, "k", config=config, seed=0)  # a restart continues the run
    assert again.path == chief.path and len(again.info["resumed"]) == 1
    assert RunFolder.create(out, "k", config={"a": 2}, seed=0).path != chief.path
    as_worker(1)
    other.mark_complete()  # the worker's temporary folder goes
    assert (
        not list((tmp_path / "tmp").iterdir())
        and [p.name for p in out.iterdir()].count(chief.path.name) == 1
    )

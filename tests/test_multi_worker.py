"""A real two-worker ``MultiWorkerMirroredStrategy`` cluster on 127.0.0.1 (issue 22, items 1-4).

As in TensorFlow's multi-worker tutorial, each worker is a local process with its own
``TF_CONFIG`` and a free loopback port, bounded in time and killed on timeout. The cluster runs
paper 04's CLI at a smaller-than-smoke size (``--distribution auto``, which must pick
``multi_worker`` from ``TF_CONFIG``); worker 1 is SIGKILLed mid-epoch of the SSL stage and both
workers are restarted with the same command. The reference is one process over the same global
batch split the same way: ``MirroredStrategy`` on two logical CPUs (so each replica's batch norm
sees the same half batch as each worker's; a one-device run differs by that, not by an error).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest

from kerassev import config as kconfig

pytestmark = pytest.mark.slow
TIMEOUT = 300  # per process; the work itself takes well under a minute
ROOT = Path(__file__).resolve().parents[1]
# Paper 04 at below smoke size: SimSiam only, 3 SSL epochs of 29 steps (batch 32), one fine-tuning
# epoch at 100 % shot, no baselines, no probe, no export.
SETS = [
    "methods=simsiam", "baselines=", "linear_probe=false", "low_shot=1.0", "low_shot_methods=",
    "last_epochs=1", "finetune_epochs=1", "finetune_warmup_epochs=0", "ssl_epochs=3",
    "ssl_batch_size=32", "bootstrap_resamples=10",
]  # fmt: skip
SSL_LOG = Path("logs") / "ssl_simsiam__all.csv"
SSL_STAGE = "ssl_simsiam/all"
# One process with two replicas: logical CPUs must be configured before TensorFlow starts.
REFERENCE = r"""
import sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from kerassev.cli import main
sys.exit(main(sys.argv[1:]))
"""


def free_ports(n: int) -> list[int]:
    """``n`` loopback ports free right now (bound to port 0 together, then released)."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def tf_config(ports: list[int], index: int) -> str:
    workers = [f"127.0.0.1:{p}" for p in ports]
    return json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}})


def start(argv: list[str], log: Path, **env: str) -> subprocess.Popen:
    base = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    return subprocess.Popen(
        argv,
        cwd=ROOT,
        env={**base, "TF_CPP_MIN_LOG_LEVEL": "2", **env},
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )


def wait_all(procs: list[subprocess.Popen], timeout: float = TIMEOUT) -> list[int]:
    """Exit codes; a process still running at the deadline is killed (and its code is -9)."""
    deadline = time.monotonic() + timeout
    codes = []
    for p in procs:
        try:
            codes.append(p.wait(timeout=max(1.0, deadline - time.monotonic())))
        except subprocess.TimeoutExpired:
            p.kill()
            codes.append(p.wait())
    return codes


def start_cluster(out: Path, logs: Path, ports: list[int], attempt: int, cache: Path):
    """Both workers of the cluster on ``ports``, running the same CLI command."""
    argv = [sys.executable, "-m", "kerassev.cli", "reproduce", "covid-ssl", "--preset", "smoke"]
    argv += ["--out", str(out), "--no-export", "--distribution", "auto", "--set", *SETS]
    return [
        start(
            argv,
            logs / f"worker{i}_attempt{attempt}.log",
            TF_CONFIG=tf_config(ports, i),
            TMPDIR=str(logs / f"tmp{i}"),  # where worker 1 keeps its temporary run folder
            **{kconfig.CACHE_ENV: str(cache)},
        )
        for i in range(2)
    ]


def tail(path: Path, n: int = 3000) -> str:
    return path.read_text()[-n:]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The reference run, and the cluster run killed once and restarted (module-wide: each
    costs about a minute)."""
    from conftest import require_dataset

    require_dataset("covid_radiography")
    require_dataset("covid_chestxray")
    tmp = tmp_path_factory.mktemp("multi_worker")
    cache, logs = tmp / "cache", tmp / "logs"
    for i in range(2):
        (logs / f"tmp{i}").mkdir(parents=True)

    ref_log = logs / "reference.log"
    ref = start(
        [sys.executable, "-c", REFERENCE, "reproduce", "covid-ssl", "--preset", "smoke",
         "--out", str(tmp / "reference"), "--no-export", "--distribution", "mirrored",
         "--set", *SETS],
        ref_log, **{kconfig.CACHE_ENV: str(cache)},
    )  # fmt: skip
    assert wait_all([ref]) == [0], tail(ref_log)

    out, ports = tmp / "cluster", free_ports(2)
    first = start_cluster(out, logs, ports, 1, cache)
    deadline = time.monotonic() + TIMEOUT
    while _logged_epochs(out) < 1:
        assert time.monotonic() < deadline and all(p.poll() is None for p in first), tail(
            logs / "worker0_attempt1.log"
        )
        time.sleep(0.2)
    time.sleep(0.3)  # into the second of three ~1 s epochs
    first[1].send_signal(signal.SIGKILL)
    (chief_dir,) = out.glob("*_covid_ssl*")
    at_kill = json.loads((chief_dir / "run.json").read_text())
    try:  # the chief cannot finish a step without worker 1; it fails or waits: stop it too
        first[0].wait(timeout=10)
    except subprocess.TimeoutExpired:
        first[0].kill()
    wait_all(first)

    second = start_cluster(out, logs, ports, 2, cache)
    codes = wait_all(second)
    return {
        "reference": next((tmp / "reference").glob("*_covid_ssl*")),
        "cluster_out": out,
        "codes": codes,
        "at_kill": at_kill,
        "logs": logs,
    }


def _logged_epochs(out: Path) -> int:
    """Epochs of the SSL stage the chief has logged so far (the CSV's rows)."""
    found = list(out.glob(f"*/{SSL_LOG}"))
    return max(0, len(found[0].read_text().splitlines()) - 1) if found else 0


def _ssl_loss(run: Path) -> np.ndarray:
    return pd.read_csv(run / SSL_LOG)["loss"].to_numpy()


def test_two_workers_train_like_one_process_over_the_same_global_batch(runs):
    logs = runs["logs"]
    assert runs["codes"] == [0, 0], tail(logs / "worker0_attempt2.log") + tail(
        logs / "worker1_attempt2.log"
    )
    (chief,) = runs["cluster_out"].iterdir()
    info = json.loads((chief / "run.json").read_text())
    for record in info["distribution"]:  # the first attempt and the restart
        assert record["strategy"] == "multi_worker" and "TF_CONFIG lists 2" in record["reason"]
        assert record["tf_strategy"] == "MultiWorkerMirroredStrategy"
        assert record["workers"] == 2 and record["replicas"] == 2 and record["task"] == "worker 0"
    # Same global batches, same split per replica: the per-epoch SSL loss agrees to float32
    # round-off of the all-reduce (measured: bit-identical on this machine).
    ours, ref = _ssl_loss(chief), _ssl_loss(runs["reference"])
    assert len(ours) == len(ref) == 3
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-5)
    assert ref[-1] < ref[0]  # it trained: agreeing means something


def test_only_the_chief_writes_a_run_folder(runs):
    assert runs["codes"] == [0, 0]
    (chief,) = runs["cluster_out"].iterdir()  # one run folder, no second half-written one
    assert (chief / "tables" / "table2.csv").is_file() and (chief / "figures").is_dir()
    # worker 1 kept its run folder (checkpoints, logs, tables) in a temporary folder, removed at
    # the end; the copy the killed attempt left behind is removed by the restart
    for i in range(2):  # (TensorFlow's own autograph files of the killed attempt may remain)
        assert not list((runs["logs"] / f"tmp{i}").glob("kerassev-*"))


def test_a_killed_worker_resumes_at_the_last_finished_epoch_with_the_same_result(runs):
    assert runs["codes"] == [0, 0]
    at_kill = runs["at_kill"]
    assert SSL_STAGE not in at_kill["stages_done"], "the kill came after the SSL stage"
    (chief,) = runs["cluster_out"].iterdir()
    info = json.loads((chief / "run.json").read_text())
    assert len(info["resumed"]) == 1 and SSL_STAGE in info["stages_done"]
    # every epoch logged once: the restart continued after the last finished epoch
    assert pd.read_csv(chief / SSL_LOG)["epoch"].tolist() == [0, 1, 2]
    # the same encoder, test predictions and table as the uninterrupted reference
    ref = runs["reference"]
    name = "models/encoder_simsiam.weights.h5"
    with h5py.File(chief / name) as a, h5py.File(ref / name) as b:
        keys = []
        a.visit(lambda k: keys.append(k) if isinstance(a[k], h5py.Dataset) else None)
        assert keys
        for key in keys:
            np.testing.assert_allclose(a[key][()], b[key][()], rtol=0, atol=1e-4, err_msg=key)
    preds = "predictions/finetune/simsiam/100pct/epoch001.npy"
    np.testing.assert_allclose(np.load(chief / preds), np.load(ref / preds), atol=1e-4)
    table = "tables/table2.csv"
    pd.testing.assert_frame_equal(pd.read_csv(chief / table), pd.read_csv(ref / table))


# Each worker iterates the SSL feed as pretrain_ssl builds it (in-memory images with their row
# numbers, DATA auto-shard) through the strategy, as fit does, and records the rows it was given;
# worker 0 also records the global batches of the same feed read by one process.
SHARDS = r"""
import json, sys
import numpy as np
from kerassev.data.pipeline import PipelineConfig, build_dataset_from_arrays
from kerassev.distribute import distribution_scope, shard_by_data

images = np.random.default_rng(0).random((40, 8, 8)).astype("float32")
pipe = PipelineConfig(image_size=8, batch_size=8, seed=3, two_view_policy="simsiam",
                      drop_remainder=True, repeat=True)
steps = 2 * 40 // 8  # two epochs
with distribution_scope("auto") as choice:  # first: the strategy must precede any TF op
    import tensorflow as tf
    strategy = tf.distribute.get_strategy()
    def make_feed():
        return shard_by_data(build_dataset_from_arrays(images, pipe, labels=np.arange(40.0)))

    feed = make_feed()
    batches = iter(strategy.experimental_distribute_dataset(feed))
    seen = []
    for _ in range(steps):
        rows = strategy.experimental_local_results(next(batches)[-1])
        seen.append([int(r) for part in rows for r in np.asarray(part)])
whole = [[int(r) for r in np.asarray(b[-1])] for b in make_feed().take(steps)]
print(json.dumps({"strategy": choice.strategy, "replicas": strategy.num_replicas_in_sync,
                  "seen": seen, "whole": whole}))
"""


def test_each_worker_reads_its_own_shard_of_every_epoch(tmp_path):
    ports = free_ports(2)
    procs = [
        start([sys.executable, "-c", SHARDS], tmp_path / f"w{i}.log", TF_CONFIG=tf_config(ports, i))
        for i in range(2)
    ]
    codes = wait_all(procs)
    assert codes == [0, 0], tail(tmp_path / "w0.log") + tail(tmp_path / "w1.log")
    results = [json.loads((tmp_path / f"w{i}.log").read_text().splitlines()[-1]) for i in range(2)]
    assert all(r["strategy"] == "multi_worker" and r["replicas"] == 2 for r in results)
    whole = results[0]["whole"]
    assert whole == results[1]["whole"]  # both read the same seeded feed
    for epoch in range(2):
        steps = range(5 * epoch, 5 * epoch + 5)
        mine = [{r for s in steps for r in results[w]["seen"][s]} for w in range(2)]
        assert not mine[0] & mine[1]  # distinct shards
        assert mine[0] | mine[1] == set(range(40))  # together: the whole epoch, once
    for step, batch in enumerate(whole):  # worker i: the i-th half of each global batch
        assert results[0]["seen"][step] == batch[:4] and results[1]["seen"][step] == batch[4:]

"""`kerassev reproduce mrale` killed mid-stage resumes from its last checkpoint with --resume."""

import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from kerassev.cli import main

STAGE_B_EPOCHS = 30
TINY = [
    "image_size=32",
    "batch_size=8",
    "phantom_patients=10",
    "phantom_timepoints=1,2",
    "n_folds=2",
    "ssl_stage_a.epochs=1",
    # the smoke preset's tiny CNN runs an epoch in well under a second: enough of them that
    # the kill lands inside stage B
    f"ssl_stage_b.epochs={STAGE_B_EPOCHS}",
    "head_epochs=2",
    "finetune_epochs=1",
    "comparators=ssl_scratch",
    "subscore_head=false",
    "gradcam_max_images=2",
]


def _cli(out, *extra):
    return [
        sys.executable,
        "-m",
        "kerassev.cli",
        "reproduce",
        "mrale",
        "--preset",
        "smoke",
        "--out",
        str(out),
        "--no-export",
        *extra,
        "--set",
        *TINY,
    ]


def _wait_for(path, timeout):
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        # header + at least one epoch row (CSVLogger writes after the epoch's backup)
        if path.is_file() and len(path.read_text().splitlines()) >= 2:
            return True
        time.sleep(0.2)
    return False


@pytest.mark.slow
def test_killed_run_resumes_mid_stage_and_does_not_retrain(tmp_path):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.Popen(
        _cli(tmp_path), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        # Kill as soon as SSL stage B has logged (and so checkpointed) its first epoch.
        (run,) = _await_run(tmp_path, proc)
        stage_b_log = run / "logs" / "ssl_scratch__stage_b.csv"
        assert _wait_for(stage_b_log, timeout=240), proc.stderr.read().decode()[-2000:]
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    info = json.loads((run / "run.json").read_text())
    assert info["completed"] is None and "ssl_scratch/stage_a" in info["stages_done"]
    epochs_before_kill = len(pd.read_csv(stage_b_log))
    assert epochs_before_kill < STAGE_B_EPOCHS

    done = subprocess.run(_cli(tmp_path, "--resume"), env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"run folder: {run}" in done.stdout
    info = json.loads((run / "run.json").read_text())
    assert info["completed"] and info["resumed"]
    # Stage B went on from the checkpoint: every epoch logged once, none trained twice;
    # stage A, finished before the kill, was loaded rather than trained again.
    stage_b = pd.read_csv(stage_b_log)
    assert sorted(stage_b["epoch"]) == list(range(STAGE_B_EPOCHS))
    assert len(pd.read_csv(run / "logs" / "ssl_scratch__stage_a.csv")) == 1
    assert len(list(tmp_path.iterdir())) == 1  # resumed in place, no second run folder


def _await_run(parent, proc, timeout=120):
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        runs = [p for p in parent.iterdir() if (p / "run.json").is_file()]
        if runs:
            return runs
        if proc.poll() is not None:
            raise AssertionError(proc.stderr.read().decode()[-2000:])
        time.sleep(0.2)
    raise AssertionError("no run folder appeared")


def test_cli_rejects_half_given_data_and_bad_settings(tmp_path, capsys):
    assert main(["reproduce", "mrale", "--data", str(tmp_path), "--out", str(tmp_path)]) == 2
    assert "--data and --labels go together" in capsys.readouterr().err
    assert main(["reproduce", "mrale", "--out", str(tmp_path), "--set", "imagesize=3"]) == 2
    assert "unknown setting 'imagesize'" in capsys.readouterr().err
    assert main(["reproduce", "mrale", "--out", str(tmp_path), "--resume"]) == 2
    assert "no unfinished 'mrale-smoke' run" in capsys.readouterr().err

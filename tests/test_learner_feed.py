"""LEARNER pre-training feed: one endless tf.data iterator, epochs of steps_per_epoch batches."""

from __future__ import annotations

import numpy as np
import pandas as pd

from kerassev.recipes.learner import LearnerConfig
from kerassev.recipes.learner.data import ClipData
from kerassev.recipes.learner.pretrain import clip_feed, pretrain_model
from kerassev.runs import RunFolder


def test_each_pass_holds_every_clip_once_and_reshuffles():
    n, batch = 10, 4
    clips = np.arange(n, dtype=np.float32)[:, None, None, None, None] * np.ones((1, 2, 3, 3, 1))
    feed, steps = clip_feed(clips, np.arange(n), batch, seed=0)
    assert steps == 3  # ceil(10 / 4)
    batches = [(x.numpy(), y.numpy()) for x, y in feed.take(3 * steps)]
    assert [len(y) for _, y in batches] == [4, 4, 2] * 3  # each pass batched on its own
    passes = [np.concatenate([y for _, y in batches[k : k + steps]]) for k in (0, 3, 6)]
    for p in passes:
        assert sorted(p.tolist()) == list(range(n))
    assert any(not np.array_equal(passes[0], p) for p in passes[1:])  # reshuffled each pass
    for x, y in batches:  # clips travel with their targets
        np.testing.assert_array_equal(x[:, 0, 0, 0, 0], y)


def test_pretraining_runs_epochs_of_steps_per_epoch_steps(tmp_path):
    rng = np.random.default_rng(0)
    n = 11
    table = pd.DataFrame({"patient_id": [f"p{i}" for i in range(n)], "hs": rng.random(n)})
    data = ClipData(rng.random((n, 2, 16, 16)).astype(np.float32), table, "test", "hs")
    config = LearnerConfig.smoke(n_frames=2, frame_size=16, width=4, epochs=3, batch_size=4)
    run = RunFolder.create(tmp_path, "learner-test", config=config, seed=0)
    trained = pretrain_model("tsm_cl", data, np.arange(n), config, run, stage_prefix="t")
    assert int(trained.model.optimizer.iterations.numpy()) == 3 * 3  # epochs * ceil(11 / 4)
    log = pd.read_csv(next((run.path / "logs").glob("*.csv")))
    assert len(log) == 3 and np.isfinite(log["loss"]).all()
    # the scoring model undoes the z-score: its output is on the health score's own scale
    direct = trained.predict_hs(data.inputs())
    scored = trained.scoring_model().predict(data.inputs(), verbose=0)[:, 0]
    np.testing.assert_allclose(direct, scored, rtol=1e-4, atol=1e-5)

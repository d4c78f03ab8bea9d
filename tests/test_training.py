import keras
import numpy as np
import pytest

from kerassev.runs import RunError, RunFolder
from kerassev.training import (
    discard_stage_checkpoints,
    fit_stage,
    read_stage_log,
    save_model_weights,
    stage_backup_dir,
    stage_weights_path,
)


class _Killed(Exception):
    pass


class _KillAtEpoch(keras.callbacks.Callback):
    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            raise _Killed(f"simulated kill at epoch {epoch}")


class _CountEpochs(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.seen = []

    def on_epoch_begin(self, epoch, logs=None):
        self.seen.append(epoch)


def _model():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    return model


def _compile(model):
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")


def _data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 3)).astype("float32")
    return x, x @ np.array([1.0, -2.0, 0.5], dtype="float32")


def test_killed_stage_resumes_from_last_epoch(tmp_path):
    x, y = _data()
    run = RunFolder.create(tmp_path, "t", config={}, seed=0)
    with pytest.raises(_Killed):
        fit_stage(
            _model(),
            (x, y),
            run=run,
            stage="head/fold0",
            epochs=5,
            compile_fn=_compile,
            extra_callbacks=[_KillAtEpoch(3)],
        )
    assert not run.stage_done("head/fold0")

    resumed = RunFolder.resume(tmp_path, "t", config={})
    counter = _CountEpochs()
    logs = fit_stage(
        _model(),
        (x, y),
        run=resumed,
        stage="head/fold0",
        epochs=5,
        compile_fn=_compile,
        extra_callbacks=[counter],
    )
    assert counter.seen == [3, 4]  # epochs 0-2 were not trained again
    assert list(logs["epoch"]) == [0, 1, 2, 3, 4]
    assert resumed.stage_done("head/fold0") and stage_weights_path(resumed, "head/fold0").is_file()


def test_a_backup_left_half_written_by_a_kill_falls_back_to_the_previous_epoch(tmp_path):
    x, y = _data()
    run = RunFolder.create(tmp_path, "t", config={}, seed=0)
    kw = dict(run=run, stage="a", epochs=4, compile_fn=_compile)
    with pytest.raises(_Killed):
        fit_stage(_model(), (x, y), extra_callbacks=[_KillAtEpoch(3)], **kw)
    (newest,) = stage_backup_dir(run, "a").glob("*.weights.h5")
    newest.write_bytes(b"killed mid-write")
    counter = _CountEpochs()
    fit_stage(_model(), (x, y), extra_callbacks=[counter], **kw)
    assert counter.seen == [2, 3]  # the epoch before the torn one, then on


def test_a_stage_without_backup_starts_over_after_a_kill(tmp_path):
    x, y = _data()
    run = RunFolder.create(tmp_path, "t", config={}, seed=0)
    kw = dict(run=run, stage="head", epochs=3, compile_fn=_compile, backup=False)
    with pytest.raises(_Killed):
        fit_stage(_model(), (x, y), extra_callbacks=[_KillAtEpoch(2)], **kw)
    counter = _CountEpochs()
    fit_stage(_model(), (x, y), extra_callbacks=[counter], **kw)
    assert counter.seen == [0, 1, 2]  # no checkpoint to resume from: every epoch again
    assert run.stage_done("head") and stage_weights_path(run, "head").is_file()


def test_finished_stage_is_loaded_not_retrained(tmp_path):
    x, y = _data()
    run = RunFolder.create(tmp_path, "t", config={}, seed=0)
    trained = _model()
    fit_stage(trained, (x, y), run=run, stage="a", epochs=2, compile_fn=_compile)
    counter = _CountEpochs()
    fresh = _model()
    fit_stage(
        fresh, (x, y), run=run, stage="a", epochs=2, compile_fn=_compile, extra_callbacks=[counter]
    )
    assert counter.seen == []
    np.testing.assert_allclose(fresh.predict(x, verbose=0), trained.predict(x, verbose=0))
    assert len(read_stage_log(run, "a")) == 2


def test_nan_loss_is_an_error_and_saves_nothing(tmp_path):
    x, y = _data()
    y[0] = np.nan
    run = RunFolder.create(tmp_path, "t", config={}, seed=0)
    with pytest.raises(FloatingPointError, match="stage bad"):
        fit_stage(_model(), (x, y), run=run, stage="bad", epochs=2, compile_fn=_compile)
    assert not run.stage_done("bad")


def test_discarded_checkpoints_are_gone_and_a_reload_says_why(tmp_path):
    x, y = _data()
    run = RunFolder.create(tmp_path, "t", config={}, seed=0)
    for stage in ("cmp/fold0/head", "cmp/fold0/finetune", "cmp/fold1/head"):
        fit_stage(_model(), (x, y), run=run, stage=stage, epochs=1, compile_fn=_compile)

    assert discard_stage_checkpoints(run, "cmp/fold0/") == ["cmp/fold0/head", "cmp/fold0/finetune"]
    assert not stage_weights_path(run, "cmp/fold0/head").exists()
    assert stage_weights_path(run, "cmp/fold1/head").is_file()  # other folds untouched
    assert discard_stage_checkpoints(run, "cmp/fold0/") == []  # idempotent
    resumed = RunFolder.resume(tmp_path, "t", config={})
    assert resumed.info["checkpoints_discarded"] == ["cmp/fold0/head", "cmp/fold0/finetune"]
    with pytest.raises(RunError, match="discarded"):
        fit_stage(_model(), (x, y), run=resumed, stage="cmp/fold0/head", epochs=1, compile_fn=None)


def test_model_weights_leave_the_optimiser_out_and_reload_exactly(tmp_path):
    x, y = _data()
    model = _model()
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    model.fit(x, y, epochs=2, verbose=0)
    with_optimiser = tmp_path / "full.weights.h5"
    model.save_weights(with_optimiser)
    path = save_model_weights(model, tmp_path / "model.weights.h5")
    assert path.stat().st_size < with_optimiser.stat().st_size
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("partial-")] == []
    fresh = _model()
    fresh.load_weights(path)
    np.testing.assert_array_equal(fresh.predict(x, verbose=0), model.predict(x, verbose=0))
    with pytest.raises(ValueError, match="weights.h5"):
        save_model_weights(model, tmp_path / "model.h5")


def test_a_stage_shows_one_progress_bar_and_no_shuffle_warning(tmp_path, capsys):
    import warnings

    import tensorflow as tf

    run = RunFolder.create(tmp_path, "t", config={}, seed=0)
    model = _model()
    model.compile("sgd", "mse")
    rng = np.random.default_rng(0)
    data = tf.data.Dataset.from_tensor_slices(
        (rng.random((8, 3), dtype=np.float32), rng.random((8, 1), dtype=np.float32))
    ).batch(4)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit_stage(model, data, run=run, stage="s", epochs=3, compile_fn=None, verbose=1)
    assert not [w for w in caught if "shuffle" in str(w.message)]
    shown = capsys.readouterr()
    assert "3/3" in shown.err and "s: 100%" in shown.err  # one tqdm bar for the stage
    assert "Epoch 1/3" not in shown.out + shown.err  # not Keras' per-epoch bars


def test_quiet_tensorflow_hides_the_native_start_up_banners():
    import os
    import subprocess
    import sys

    code = "from kerassev.quiet import quiet_tensorflow; quiet_tensorflow(); print('ok')"
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr
    for noise in ("absl::InitializeLog", "oneDNN", "cpu_feature_guard"):
        assert noise not in out.stderr, out.stderr


def test_warmup_cosine_rises_linearly_then_decays_to_zero():
    from kerassev.training import warmup_cosine

    schedule = warmup_cosine(0.03, steps=100, warmup_steps=10)
    lr = [float(schedule(step)) for step in (0, 5, 10, 55, 100)]
    np.testing.assert_allclose(lr, [0.0, 0.015, 0.03, 0.015, 0.0], atol=1e-6)
    plain = warmup_cosine(0.03, steps=100)
    np.testing.assert_allclose([float(plain(0)), float(plain(50))], [0.03, 0.015], atol=1e-6)

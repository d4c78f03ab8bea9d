"""A SimSiam train step under MirroredStrategy over two logical CPUs equals one device.

Logical devices must be configured before TensorFlow starts, so the check runs in a fresh
process. The network has no batch norm: with it, each replica normalises by its own half batch
(standard data parallelism, as in ``torch.nn.parallel``), which is a different model, not an error.
"""

from __future__ import annotations

import json
import subprocess
import sys

SCRIPT = r"""
import json, os
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import numpy as np
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras
from kerassev.models.ssl import SimSiam


def build():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, activation="relu")(inputs)
    z = keras.layers.Dense(16)(keras.layers.GlobalAveragePooling2D()(x))
    p_in = keras.Input((16,))
    p = keras.layers.Dense(16)(keras.layers.Dense(8, activation="relu")(p_in))
    model = SimSiam(keras.Model(inputs, z), keras.Model(p_in, p))
    model.compile(optimizer=keras.optimizers.SGD(0.5, momentum=0.6))
    return model


rng = np.random.default_rng(0)
views = tuple(rng.normal(size=(16, 8, 8, 3)).astype("float32") for _ in range(2))


def run(strategy):
    with strategy.scope():
        model = build()
        data = tf.data.Dataset.from_tensor_slices(views).batch(8)  # 2 global batches of 8
        history = model.fit(data, epochs=3, verbose=0).history
    return history["loss"], [np.asarray(w) for w in model.trainable_weights]


one_loss, one_w = run(tf.distribute.OneDeviceStrategy("/cpu:0"))
two = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
two_loss, two_w = run(two)
print(json.dumps({
    "replicas": two.num_replicas_in_sync,
    "one": one_loss,
    "two": two_loss,
    "weight_diff": max(float(np.abs(a - b).max()) for a, b in zip(one_w, two_w)),
    "weight_change": max(float(np.abs(a).max()) for a in one_w),
}))
"""


def _run_on_two_replicas(script: str) -> dict:
    """Run ``script`` in a fresh process; its last stdout line is JSON with ``replicas``."""
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-3000:]
    r = json.loads(out.stdout.strip().splitlines()[-1])
    assert r["replicas"] == 2
    return r


def test_mirrored_strategy_matches_one_device():
    r = _run_on_two_replicas(SCRIPT)
    # Same loss per epoch (the first epoch before any update differs only by round-off) and the
    # same weights after 6 SGD steps: the per-replica loss is scaled by 1/replicas before the
    # gradients are summed across replicas.
    for a, b in zip(r["one"], r["two"], strict=True):
        assert abs(a - b) < 1e-4, (r["one"], r["two"])
    assert r["one"][-1] < r["one"][0]  # it trained
    assert r["weight_diff"] < 1e-4, r


VIEWS_IN_STEP = r"""
import json, os
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import numpy as np
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras
from kerassev.models.ssl import SimSiam
from kerassev.transforms.views import ViewMaker

strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
with strategy.scope():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, activation="relu")(inputs)
    z = keras.layers.Dense(16)(keras.layers.GlobalAveragePooling2D()(x))
    p_in = keras.Input((16,))
    p = keras.layers.Dense(16)(keras.layers.Dense(8, activation="relu")(p_in))
    model = SimSiam(
        keras.Model(inputs, z), keras.Model(p_in, p),
        augmenter=ViewMaker("simsiam", image_size=8, seed=0),
    )
    model.compile(optimizer=keras.optimizers.SGD(0.5, momentum=0.6))
    raw = np.random.default_rng(0).random((16, 12, 12, 1)).astype("float32")
    history = model.fit(tf.data.Dataset.from_tensor_slices(raw).batch(8), epochs=3, verbose=0)
print(json.dumps({"replicas": strategy.num_replicas_in_sync, "loss": history.history["loss"]}))
"""


def test_views_made_in_the_step_under_mirrored_strategy():
    """augment_on="model": raw 12 px grey images in, 8 px views made in each replica's step."""
    r = _run_on_two_replicas(VIEWS_IN_STEP)
    assert all(v == v for v in r["loss"]) and r["loss"][-1] < r["loss"][0], r

"""Ad hoc check behind docs/results/covid_ssl_cpu.md: fine-tune the cpu preset classifier from
random init (the Scratch row) with a given BN momentum, lr and precision; print the loss curve and
test AUC in inference mode and with batch statistics. Run: .venv/bin/python <this file>."""

import os
import time

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
import keras
from sklearn.metrics import roc_auc_score

from kerassev.precision import precision_scope
from kerassev.recipes.covid_ssl import CovidSSLConfig
from kerassev.recipes.covid_ssl.data import load_data
from kerassev.recipes.covid_ssl.finetune import build_classifier
from kerassev.recipes.covid_ssl.reproduce import network_inputs

cfg = CovidSSLConfig.cpu()
data = load_data(cfg)
x = network_inputs(data.bank.at(64), 64)
tr, te = data.train_idx, data.test_idx
y = data.labels
for mom, lr, prec in [
    (0.99, 0.03, "bfloat16"),
    (0.9, 0.03, "bfloat16"),
    (0.99, 0.03, "float32"),
    (0.9, 0.03, "float32"),
]:
    with precision_scope(prec):
        keras.utils.set_random_seed(0)
        m = build_classifier(cfg, 2)
        for layer in m._flatten_layers():
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.momentum = mom
        m.compile(
            optimizer=keras.optimizers.SGD(lr, momentum=0.9, weight_decay=4e-4),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
        t = time.time()
        h = m.fit(x[tr], y[tr], batch_size=64, epochs=5, shuffle=True, verbose=0)
        p = m.predict(x[te], verbose=0)
        ptrain = m(x[te][:64], training=True).numpy()
        print(
            mom,
            lr,
            prec,
            "loss",
            [round(v, 2) for v in h.history["loss"]],
            "AUC eval",
            round(roc_auc_score(y[te], p[:, 1]), 3),
            "p std",
            p[:, 1].std().round(3),
            "AUC train-mode",
            round(roc_auc_score(y[te][:64], ptrain[:, 1]), 3),
            f"{time.time() - t:.0f}s",
            flush=True,
        )
    keras.backend.clear_session()

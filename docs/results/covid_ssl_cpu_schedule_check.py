"""Ad hoc check behind docs/results/covid_ssl_cpu.md ("Choosing the fine-tuning schedule"):
fine-tune the cpu preset's classifier from random init (scratch) or from a cpu run's SSL encoder
(e.g. cross) with one schedule per argument, and print the loss per epoch and the test AUC after
each of the last 3 epochs, in inference mode before / after precise BN, and the output spread.

    RUN=runs/<cpu run>/models .venv/bin/python docs/results/covid_ssl_cpu_schedule_check.py \
        scratch:bfloat16:32:10:1:glorot:0.01 cross:bfloat16:32:10:1:glorot:0.01

Argument: row:precision:batch:epochs:warm-up epochs (-1: constant lr):head init (glorot|zero):lr.
It reads the test split, so a schedule picked with it is picked on the test set.
"""

import os
import sys
import time

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
import keras
import numpy as np
from sklearn.metrics import roc_auc_score

from kerassev.models.batch_norm import recompute_batch_norm_statistics
from kerassev.models.ssl import backbone_of
from kerassev.precision import precision_scope
from kerassev.recipes.covid_ssl import CovidSSLConfig
from kerassev.recipes.covid_ssl.data import load_data
from kerassev.recipes.covid_ssl.finetune import build_classifier
from kerassev.recipes.ssl_pretraining import build_ssl_encoder, network_inputs

RUN = os.environ.get("RUN", "runs/models")
cfg = CovidSSLConfig.cpu()
data = load_data(cfg)
x = network_inputs(data.bank.at(64), 64)
tr, te = data.train_idx, data.test_idx
y = data.labels


def source(row):
    if row == "scratch":
        return None
    enc = build_ssl_encoder(cfg.encoder_spec(row))
    enc.load_weights(f"{RUN}/encoder_{row}.weights.h5")
    return backbone_of(enc)


todo = [a.split(":") for a in sys.argv[1:]]  # row:prec:batch:epochs:warmup:headinit
for row, prec, batch, epochs, warm, head, LR in todo:
    LR = float(LR)
    batch, epochs, warm = int(batch), int(epochs), int(warm)
    with precision_scope(prec):
        keras.utils.set_random_seed(0)
        m = build_classifier(cfg, 2, source=source(row))
        if head == "zero":
            d = m.get_layer("probs")
            d.kernel.assign(np.zeros(d.kernel.shape, "float32"))
        steps = epochs * int(np.ceil(len(tr) / batch))
        wsteps = warm * int(np.ceil(len(tr) / batch))
        lr = (
            keras.optimizers.schedules.CosineDecay(
                0.0 if wsteps else LR,
                steps - wsteps,
                warmup_target=LR if wsteps else None,
                warmup_steps=wsteps,
            )
            if warm >= 0
            else LR
        )
        m.compile(
            optimizer=keras.optimizers.SGD(lr, momentum=0.9, weight_decay=4e-4),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
        t = time.time()
        aucs = []

        class CB(keras.callbacks.Callback):
            def on_epoch_end(self, ep, logs=None, m=m, epochs=epochs, aucs=aucs):
                if ep >= epochs - 3:
                    p = m.predict(x[te], verbose=0)[:, 1]
                    recompute_batch_norm_statistics(m, x[tr], batch_size=32)
                    q = m.predict(x[te], verbose=0)[:, 1]
                    aucs.append(
                        (
                            round(roc_auc_score(y[te], p), 3),
                            round(roc_auc_score(y[te], q), 3),
                            round(float(q.std()), 3),
                        )
                    )

        h = m.fit(
            x[tr], y[tr], batch_size=batch, epochs=epochs, shuffle=True, verbose=0, callbacks=[CB()]
        )
        print(
            row,
            prec,
            LR,
            batch,
            epochs,
            warm,
            head,
            "loss",
            [round(v, 2) for v in h.history["loss"]],
            "AUC plain/preciseBN/std",
            aucs,
            f"{time.time() - t:.0f}s",
            flush=True,
        )
    keras.backend.clear_session()

"""Ad hoc check behind docs/results/covid_ssl_cpu.md ("A learning rate per row, chosen on a
validation split"): for From Scratch and Cross (the cpu run's encoder), pick the fine-tuning lr
on a stratified 80/20 split of the 400 training images (never the test split), refit on all 400
at that lr, and report test AUC with a bootstrap CI and the paired difference.

    RUN=runs/<cpu run> .venv/bin/python docs/results/covid_ssl_cpu_lr_by_validation.py

Same schedule as the cpu preset otherwise: batch 32, 10 epochs, 1 warm-up epoch + cosine, SGD
momentum 0.9 / weight decay 4e-4, precise BN before predicting, the run's precision (auto).
"""

import os
import time

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
import keras
import numpy as np
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

from kerassev.models.batch_norm import recompute_batch_norm_statistics
from kerassev.models.ssl import backbone_of
from kerassev.precision import precision_scope
from kerassev.recipes.covid_ssl import CovidSSLConfig
from kerassev.recipes.covid_ssl.data import load_data
from kerassev.recipes.covid_ssl.finetune import build_classifier
from kerassev.recipes.ssl_pretraining import build_ssl_encoder, network_inputs
from kerassev.training import cosine_sgd

RUN = os.environ.get("RUN", "runs")
LRS = (0.03, 0.01, 0.003)
cfg = CovidSSLConfig.cpu()
data = load_data(cfg)
x = network_inputs(data.bank.at(cfg.image_size), cfg.image_size)
y, test = data.labels, data.test_idx
inner, val = train_test_split(
    data.train_idx, test_size=0.2, stratify=y[data.train_idx], random_state=0
)


def fit_predict(row, lr, train, target):
    keras.utils.set_random_seed(cfg.seed)
    source = None
    if row != "scratch":
        encoder = build_ssl_encoder(cfg.encoder_spec(row))
        encoder.load_weights(f"{RUN}/models/encoder_{row}.weights.h5")
        source = backbone_of(encoder)
    model = build_classifier(cfg, len(data.classes), source=source)
    per_epoch = -(-len(train) // cfg.finetune_batch_size)
    model.compile(
        optimizer=cosine_sgd(
            lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay,
            steps=cfg.finetune_epochs * per_epoch, warmup_steps=per_epoch,
        ),
        loss="sparse_categorical_crossentropy",
    )  # fmt: skip
    model.fit(x[train], y[train], batch_size=cfg.finetune_batch_size,
              epochs=cfg.finetune_epochs, shuffle=True, verbose=0)  # fmt: skip
    recompute_batch_norm_statistics(model, x[train], batch_size=cfg.finetune_batch_size)
    probs = model.predict(x[target], verbose=0)[:, data.positive]
    keras.backend.clear_session()
    return probs


def bootstrap(fn, *arrays, n=1000, seed=0):
    rng = np.random.default_rng(seed)
    k = len(arrays[0])
    stats = []
    for _ in range(n):
        i = rng.integers(0, k, k)
        if len(set(arrays[0][i])) == 2:
            stats.append(fn(*(a[i] for a in arrays)))
    return np.percentile(stats, [2.5, 97.5])


positive = (y == data.positive).astype(int)
with precision_scope(cfg.precision):
    final = {}
    for row in ("scratch", "cross"):
        t = time.time()
        val_auc = {lr: roc_auc_score(positive[val], fit_predict(row, lr, inner, val)) for lr in LRS}
        best = max(val_auc, key=val_auc.get)
        final[row] = fit_predict(row, best, data.train_idx, test)
        auc = roc_auc_score(positive[test], final[row])
        lo, hi = bootstrap(roc_auc_score, positive[test], final[row])
        print(row, "val AUC by lr", {k: round(v, 3) for k, v in val_auc.items()}, "chosen", best,
              f"test AUC {auc:.3f} [{lo:.3f}, {hi:.3f}]", f"{time.time() - t:.0f}s", flush=True)  # fmt: skip
    diff = roc_auc_score(positive[test], final["cross"]) - roc_auc_score(
        positive[test], final["scratch"]
    )
    lo, hi = bootstrap(
        lambda t, a, b: roc_auc_score(t, a) - roc_auc_score(t, b),
        positive[test], final["cross"], final["scratch"],
    )  # fmt: skip
    print(f"Cross - Scratch test AUC {diff:+.3f}, paired bootstrap 95% CI [{lo:+.3f}, {hi:+.3f}]")

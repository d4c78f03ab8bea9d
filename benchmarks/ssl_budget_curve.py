"""SSL budget curve (issue 18, "watch it learn"): does more self-supervised compute help here?

For each method (default Cross, BYOL, SimSiam) and each budget of SSL epochs (default 5, 20, 60)
a fresh encoder is pre-trained with paper 04's recipe at that preset (``covid_ssl``: the pool,
views, optimiser, EMA schedule, precise BN; the cosine lr schedule spans each budget, so each
point is a complete run, not a snapshot of a longer one). Each encoder is then read frozen:

* linear-probe AUC (COVID vs rest) on the test split, C chosen by CV on the training split,
  with the paired bootstrap against a random-init backbone of the same architecture;
* online k-NN accuracy (cosine, k = 20) on the labelled training subset (``knn_images``), the
  last SSL epoch's value.

The random-init control is drawn as a horizontal line. Results go to ``<out>/budget_curve.csv``
(one row per run, appended as each finishes, so an interrupted curve resumes where it stopped)
and ``<out>/budget_curve.png``.

    .venv/bin/python benchmarks/ssl_budget_curve.py --preset cpu --epochs 5,20,60 \\
        --methods cross,byol,simsiam --out docs/results/ssl_budget
    # a tiny check (tiny CNN, 32 px): --preset smoke --epochs 1,2 --methods byol,simsiam
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from kerassev.models.ssl import METHOD_LABELS, backbone_of  # noqa: E402
from kerassev.models.ssl.monitor import KNNMonitor  # noqa: E402
from kerassev.plots import save_figure  # noqa: E402
from kerassev.recipes.covid_ssl.config import CovidSSLConfig  # noqa: E402
from kerassev.recipes.covid_ssl.data import load_data  # noqa: E402
from kerassev.recipes.covid_ssl.probe import (  # noqa: E402
    frozen_features,
    linear_probe,
    probe_vs_control,
)
from kerassev.recipes.covid_ssl.reproduce import knn_split  # noqa: E402
from kerassev.recipes.ssl_pretraining import (  # noqa: E402
    build_ssl_encoder,
    network_inputs,
    pretrain_in_run,
)
from kerassev.stats.classification import detection_metrics  # noqa: E402

CONTROL = "random init (control)"


def _probe(backbone, x, data, config, control_probs=None) -> tuple[dict, np.ndarray]:
    train, test, labels = data.train_idx, data.test_idx, data.labels
    feats = frozen_features(backbone, x, bn_images=x[train])
    probs, c = linear_probe(feats[train], labels[train], feats[test], seed=config.seed)
    row = {"probe_auc": detection_metrics(labels[test], probs, positive=data.positive)["AUC"]}
    row["probe_C"] = c
    if control_probs is not None:
        t = probe_vs_control(
            labels[test], probs, control_probs, positive=data.positive,
            n_resamples=config.bootstrap_resamples, seed=config.seed,
        )  # fmt: skip
        row.update(
            auc_diff_vs_control=t["auc_diff"], diff_lo=t["diff_lo"], diff_hi=t["diff_hi"],
            p_paired=t["p_value"],
        )  # fmt: skip
    return row, probs


def budget_curve(config: CovidSSLConfig, budgets, methods, out: Path) -> pd.DataFrame:
    out.mkdir(parents=True, exist_ok=True)
    csv = out / "budget_curve.csv"
    done = pd.read_csv(csv) if csv.is_file() else pd.DataFrame(columns=["method", "epochs"])
    data = load_data(config)
    x = network_inputs(data.bank.at(config.view_size), config.view_size)
    knn_x, knn_y = knn_split(config, data)
    keras.utils.set_random_seed(config.seed + 1)  # the covid recipe's control
    control = backbone_of(build_ssl_encoder(config.encoder_spec("simsiam")))
    control_row, control_probs = _probe(control, x, data, config)
    control_row["knn_acc"] = KNNMonitor(control, knn_x, knn_y).accuracy()
    rows = [{"method": CONTROL, "epochs": 0, **control_row}]
    for method in methods:
        for epochs in budgets:
            if ((done["method"] == method) & (done["epochs"] == epochs)).any():
                continue
            cfg = dataclasses.replace(config, ssl_epochs=epochs)
            started = time.perf_counter()
            encoder, log = pretrain_in_run(
                cfg.encoder_spec(method), data.pool.at(cfg.view_size), [("all", cfg.ssl_stage())],
                run=None, key=method, policy=cfg.augmentation, batch_size=cfg.ssl_batch_size,
                seed=cfg.seed, knn=(knn_x, knn_y),
            )  # fmt: skip
            seconds = time.perf_counter() - started
            row, _ = _probe(backbone_of(encoder), x, data, cfg, control_probs)
            row.update(
                method=method, epochs=epochs, knn_acc=float(log["knn_acc"].iloc[-1]),
                ssl_loss=float(log["loss"].iloc[-1]), ssl_seconds=round(seconds, 1),
            )  # fmt: skip
            done = pd.concat([done, pd.DataFrame([row])], ignore_index=True)
            done.to_csv(csv, index=False)
            print(f"{method} {epochs} epochs: {row}", flush=True)
    table = pd.concat([pd.DataFrame(rows), done], ignore_index=True)
    fig = plot(table)
    for old in (out / "budget_curve.png", out / "budget_curve.txt"):  # redrawn from the CSV
        old.unlink(missing_ok=True)
    save_figure(
        fig, out / "budget_curve.png",
        f"SSL budget curve: linear-probe test AUC and online k-NN accuracy (training images) "
        f"against SSL epochs; dashed: random init. Configuration: {config.describe()}; "
        f"data: {data.describe()}.",
    )  # fmt: skip
    plt.close(fig)
    return table


def plot(table: pd.DataFrame):
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    control = table[table["method"] == CONTROL].iloc[0]
    for ax, col, title in zip(
        axes, ("probe_auc", "knn_acc"), ("linear probe AUC (test)", "k-NN accuracy (train subset)"),
        strict=True,
    ):  # fmt: skip
        for method, part in table[table["method"] != CONTROL].groupby("method", sort=False):
            part = part.sort_values("epochs")
            ax.plot(part["epochs"], part[col], marker="o", label=METHOD_LABELS.get(method, method))
        ax.axhline(control[col], color="grey", linestyle="--", label=CONTROL)
        ax.set(xlabel="SSL epochs", ylabel=col, title=title)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="cpu", choices=("smoke", "cpu", "paper"))
    parser.add_argument("--epochs", default="5,20,60", help="SSL budgets, comma-separated")
    parser.add_argument("--methods", default="cross,byol,simsiam")
    parser.add_argument("--out", default="docs/results/ssl_budget")
    args = parser.parse_args(argv)
    config = CovidSSLConfig.from_preset(args.preset)
    budgets = [int(e) for e in args.epochs.split(",")]
    table = budget_curve(config, budgets, args.methods.split(","), Path(args.out))
    print(table.to_string(index=False))


if __name__ == "__main__":
    main()

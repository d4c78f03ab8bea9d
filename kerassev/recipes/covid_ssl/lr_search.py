"""A fine-tuning learning rate per Table 2 row, chosen on a validation split (issue 18).

The paper gives one optimiser for both stages; a row that fine-tunes a pre-trained encoder and
a row that trains from scratch need not share a best lr, and choosing it on the test split would
leak. So each row fine-tunes at every lr of ``finetune_lr_grid`` on a stratified
``1 - lr_validation_fraction`` of the training images, is scored by AUC on the rest (mean
prediction of the last epochs, as Table 2), and the best lr is then used on all training images.
The test split is never read here.
"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from kerassev.stats.classification import detection_metrics

from .config import CovidSSLConfig
from .finetune import build_classifier, fine_tune


def validation_split(labels: np.ndarray, train_idx: np.ndarray, fraction: float, seed: int):
    """``(fit_idx, val_idx)``: a class-stratified split of ``train_idx`` (no test image)."""
    fit, val = train_test_split(
        np.asarray(train_idx), test_size=fraction, stratify=labels[train_idx], random_state=seed
    )
    return np.sort(fit), np.sort(val)


def choose_finetune_lr(
    config: CovidSSLConfig, data, run, row: str, source: str, weights, x, verbose: int = 0
) -> tuple[float, pd.DataFrame]:
    """``(best lr, one row per lr with its validation AUC)`` for Table 2 row ``row``."""
    fit, val = validation_split(
        data.labels, data.train_idx, config.lr_validation_fraction, config.seed
    )
    rows = []
    for lr in config.finetune_lr_grid:
        keras.utils.set_random_seed(config.seed)
        model = build_classifier(
            config, len(data.classes), source=source, weights=weights, name=f"clf_{row}"
        )
        probs = fine_tune(
            model, x[fit], data.labels[fit], x[val], dataclasses.replace(config, finetune_lr=lr),
            run=run, stage=f"lr_search/{row}/{lr:g}", verbose=verbose,
        )  # fmt: skip
        auc = detection_metrics(data.labels[val], probs.mean(axis=0), positive=data.positive)
        rows.append({"row": row, "lr": lr, "validation_auc": float(auc["AUC"])})
    table = pd.DataFrame(rows)
    # ties go to the smaller lr (the first in an ascending grid): the less aggressive update
    ordered = table.sort_values("lr")
    best = float(ordered.lr.iloc[int(np.argmax(ordered.validation_auc.to_numpy()))])
    table["chosen"] = table.lr == best
    return best, table

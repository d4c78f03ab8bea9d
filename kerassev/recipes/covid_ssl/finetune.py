"""Paper 04's third stage: an encoder's backbone + a classifier, fully fine-tuned.

SGD (lr 0.03, momentum 0.9, weight decay 4e-4 as PyTorch's coupled L2: the paper's optimiser,
:class:`~kerassev.models.ssl.optim.CoupledSGD`; the lr is not batch-scaled here, the paper gives
no fine-tuning batch), at a constant rate as the paper gives no schedule
(``finetune_schedule="cosine"`` adds a linear warm-up and cosine decay for short runs),
``finetune_epochs`` epochs; the test split is predicted after each of the last ``last_epochs``
epochs (the paper reports their mean and variance) and the final model is kept.
With ``precise_bn`` the BN statistics are re-estimated on the training images before each of
those predictions (:func:`~kerassev.models.batch_norm.recompute_batch_norm_statistics`): a short
run at lr 0.03 moves the weights faster than the moving averages follow, and the inference-mode
classifier then outputs one class (docs/results/covid_ssl_cpu.md).
No augmentation while fine-tuning (the paper names none). Each fine-tuning run is a resumable
:func:`kerassev.training.fit_stage` stage; per-epoch test predictions are saved as they are made,
so a resumed stage keeps the epochs it already predicted.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
from keras import layers

from kerassev.models.backbones import build_backbone
from kerassev.models.batch_norm import FusedBatchNormalization, recompute_batch_norm_statistics
from kerassev.models.ssl.optim import CoupledSGD
from kerassev.runs import RunFolder
from kerassev.training import (
    discard_stage_checkpoints,
    fit_stage,
    save_model_weights,
    warmup_cosine,
)

from .config import CovidSSLConfig


def build_classifier(
    config: CovidSSLConfig,
    n_classes: int,
    *,
    source: keras.Model | None = None,
    weights=None,
    name: str = "classifier",
) -> keras.Model:
    """Backbone at the fine-tuning size (weights copied from ``source``, a pre-trained backbone of
    the same architecture at any input size, or loaded from ``weights``) + the head."""
    size = config.image_size
    backbone = build_backbone(
        config.backbone, weights=weights, input_shape=(size, size, 3), pooling="avg"
    )
    if source is not None:
        backbone.set_weights(source.get_weights())
    inputs = keras.Input((size, size, 3), name="image")
    x = backbone(inputs)
    if config.head == "mlp":
        x = layers.Dense(512, name="head_fc1")(x)
        x = FusedBatchNormalization(name="head_bn1")(x)
        x = layers.ReLU(name="head_relu1")(x)
    elif config.head != "linear":
        raise ValueError(f"head must be 'linear' or 'mlp', got {config.head!r}")
    out = layers.Dense(n_classes, activation="softmax", dtype="float32", name="probs")(x)
    return keras.Model(inputs, out, name=name)


class _PredictLastEpochs(keras.callbacks.Callback):
    """Save test-set probabilities after each of the last ``k`` epochs to ``folder``; with
    ``x_bn`` the BN statistics are first re-estimated on those (training) images."""

    def __init__(self, x_test, folder: Path, epochs: int, k: int, batch_size: int, x_bn=None):
        super().__init__()
        self.x_test, self.folder, self.first = x_test, folder, epochs - k
        self.batch_size, self.x_bn = batch_size, x_bn

    def on_epoch_end(self, epoch, logs=None):
        if epoch >= self.first:
            if self.x_bn is not None:
                recompute_batch_norm_statistics(self.model, self.x_bn, batch_size=self.batch_size)
            probs = self.model.predict(self.x_test, batch_size=self.batch_size, verbose=0)
            path = self.folder / f"epoch{epoch + 1:03d}.npy"
            partial = path.with_name(f"partial-{path.name}")
            np.save(partial, probs.astype(np.float32))
            partial.replace(path)


def fine_tune(
    model: keras.Model,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    config: CovidSSLConfig,
    *,
    run: RunFolder,
    stage: str,
    keep_weights: Path | None = None,
    verbose: int = 0,
) -> np.ndarray:
    """Fine-tune ``model`` as one resumable stage; returns test probabilities ``(K, N, C)`` of
    the last ``K`` epochs. ``keep_weights`` saves the final model there (for the export)."""
    folder = run.subdir("predictions", *stage.split("/"))
    epochs = config.finetune_epochs
    batch = min(config.finetune_batch_size, len(x_train))
    lr = config.lr if config.finetune_lr is None else config.finetune_lr

    def compile_fn(m):
        # the paper's optimiser (PyTorch SGD): weight decay is coupled L2, as in pre-training
        schedule = lr
        if config.finetune_schedule == "cosine":
            per_epoch = -(-len(x_train) // batch)
            schedule = warmup_cosine(
                lr,
                steps=epochs * per_epoch,
                warmup_steps=config.finetune_warmup_epochs * per_epoch,
            )
        optimizer = CoupledSGD(
            schedule, momentum=config.momentum, coupled_weight_decay=config.weight_decay
        )
        m.compile(
            optimizer=optimizer,
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )

    if not run.stage_done(stage) or not (keep_weights is None or Path(keep_weights).is_file()):
        fit_stage(
            model,
            (x_train, y_train),
            run=run,
            stage=stage,
            epochs=epochs,
            compile_fn=compile_fn,
            extra_callbacks=[
                _PredictLastEpochs(
                    x_test,
                    folder,
                    epochs,
                    config.last_epochs,
                    batch,
                    x_bn=x_train if config.precise_bn else None,
                )
            ],
            verbose=verbose,
            batch_size=batch,
            shuffle=True,
        )
        if keep_weights is not None:
            save_model_weights(model, keep_weights)
        discard_stage_checkpoints(run, stage)
    files = sorted(folder.glob("epoch*.npy"))[-config.last_epochs :]
    if len(files) < config.last_epochs:
        raise RuntimeError(
            f"{folder}: {len(files)} of the last {config.last_epochs} epochs' predictions"
        )
    return np.stack([np.load(f) for f in files])

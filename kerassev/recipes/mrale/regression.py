"""Paper 01's regressors, one cross-validation comparator each (§3.2, SPEC 01).

- SSL regressor: frozen SSL encoder -> Dense(256)+BN, Dense(256)+BN, Dense(1), trained
  ``head_epochs`` (Adam 1e-3); then the top-most 20 encoder layers (BN excluded) are unfrozen and
  the whole model is fine-tuned at lr 1e-5 for ``finetune_epochs``.
- ResNet-50 from scratch with the identical head, trained end to end.
- Beyond the paper: the same SSL encoder with a sub-score head whose mRALE is derived.

While the encoder is frozen its embeddings cannot change, so the head's first stage trains on
embeddings computed once (exactly the same optimisation as feeding images, many times faster).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import keras
import numpy as np
import pandas as pd

from kerassev.explain.gradcam import gradcam, mass_inside_mask
from kerassev.models.backbones import build_backbone
from kerassev.models.batch_norm import precise_batch_norm
from kerassev.models.heads import build_regressor, build_subscore_regressor
from kerassev.models.ssl import backbone_of
from kerassev.models.unfreeze import unfreeze_top
from kerassev.recipes.ssl_pretraining import build_ssl_encoder, encoder_file
from kerassev.runs import RunFolder
from kerassev.training import ModelState, discard_stage_checkpoints, fit_stage, save_model_weights

from .config import MraleConfig
from .data import MraleData


def fold_model_path(run: RunFolder, comparator: str, fold: int):
    """Where a comparator's final weights for ``fold`` are kept (fold 0 only: the export)."""
    return run.subdir("models") / f"{comparator}_fold{fold}.weights.h5"


def head_model(regressor: keras.Model, encoder_name: str = "encoder") -> keras.Model:
    """The layers after the encoder as a model on embeddings, sharing the regressor's weights."""
    encoder = regressor.get_layer(encoder_name)
    x = inputs = keras.Input(encoder.output.shape[1:], name="embedding")
    produced = {}
    after = False
    for layer in regressor.layers:
        if layer is encoder:
            after = True
            continue
        if after and not isinstance(layer, keras.layers.InputLayer):
            x = produced[layer.name] = layer(x)
    outputs = regressor.output
    if isinstance(outputs, dict):
        return keras.Model(inputs, {k: produced[k] for k in outputs}, name="head")
    return keras.Model(inputs, x, name="head")


def _compile_adam(model: keras.Model, lr: float) -> None:
    if isinstance(model.output, dict):
        # Sub-score head: MSE on the sub-scores plus MSE on the derived total (heads.py).
        model.compile(
            keras.optimizers.Adam(lr),
            loss={"subscores": "mse", "mrale": "mse"},
            loss_weights={"subscores": 1.0, "mrale": 1.0 / 24},
        )
    else:
        model.compile(keras.optimizers.Adam(lr), loss="mse")


def _init_output_bias(regressor: keras.Model, y_train: np.ndarray, at_mean: bool) -> None:
    """Start the linear output at the training mean (``head_bias_at_mean``): the head then learns
    deviations, which converges in far fewer epochs on a 0-24 target than starting from 0.
    Otherwise leave Keras' zero init (the models are reset to it every fold)."""
    if not at_mean:
        return
    layer = regressor.get_layer("mrale")
    if isinstance(layer, keras.layers.Dense):
        layer.bias.assign(np.full(layer.bias.shape, float(np.mean(y_train)), np.float32))


def _predict_mrale(model: keras.Model, x: np.ndarray, batch_size: int) -> np.ndarray:
    out = model.predict(x, batch_size=batch_size, verbose=0)
    out = out["mrale"] if isinstance(out, dict) else out
    return np.asarray(out, np.float64).reshape(-1)


@dataclass
class _Compiled:
    """One comparator's models, compiled once and reset to their initial state every fold."""

    regressor: keras.Model
    stages: dict[str, tuple[keras.Model, ModelState]]

    def reset(self) -> None:
        for model, state in self.stages.values():
            state.restore(model)


@dataclass
class MraleFolds:
    """Everything the comparators share across folds (built once per run)."""

    data: MraleData
    inputs: np.ndarray  # preprocessed network inputs (N, S, S, 3)
    config: MraleConfig
    run: RunFolder
    verbose: int = 0
    gradcam_for: tuple[str, ...] = ()
    _embeddings: dict[str, np.ndarray] = field(default_factory=dict)
    _compiled: dict[str, _Compiled] = field(default_factory=dict)
    _control: keras.Model | None = None

    # -------------------------------------------------------------- shared pieces
    def encoder(self, init: str) -> keras.Model:
        """The pre-trained encoder ``init`` with precise BN statistics in its projector.

        §3.1's stages keep the backbone's BN frozen, but the projector's BN layers train with
        momentum 0.99, so after a short SSL run their moving statistics are stale (issue 18
        fault 1). They are re-estimated on the backbone's features of every image (the images
        SSL saw; no labels), identically for the frozen stage's embeddings and the fine-tuned
        regressor.
        """
        encoder = build_ssl_encoder(self.config.encoder_spec())
        encoder.load_weights(encoder_file(self.run, init))
        batch = self.config.batch_size
        backbone = backbone_of(encoder)
        feats = backbone.predict(self.inputs, batch_size=batch, verbose=0)
        precise_batch_norm(encoder.get_layer("projector"), feats, batch_size=batch)
        return encoder

    def embeddings(self, init: str) -> np.ndarray:
        if init not in self._embeddings:
            self._embeddings[init] = self.encoder(init).predict(
                self.inputs, batch_size=self.config.batch_size, verbose=0
            )
        return self._embeddings[init]

    def _targets(self, rows, subscores: bool):
        y = self.data.targets[rows]
        if subscores:
            return {"subscores": self.data.subscores[rows], "mrale": y[:, None]}
        return y

    def _fit(self, model, x, y, stage: str, epochs: int, backup: bool = True) -> None:
        fit_stage(
            model,
            (x, y),
            run=self.run,
            stage=stage,
            epochs=epochs,
            compile_fn=None,  # compiled once per comparator; state reset per fold
            batch_size=self.config.batch_size,
            verbose=self.verbose,
            progress_leave=False,  # a fold's stages clear; its one-line summary stays
            backup=backup,
        )

    def _ssl_models(self, name: str, init: str, subscores: bool) -> _Compiled:
        if name not in self._compiled:
            cfg = self.config
            build = build_subscore_regressor if subscores else build_regressor
            regressor = build(
                self.encoder(init),
                units=cfg.head_units,
                activation=cfg.head_activation_fn,
                freeze_encoder_in_place=True,
            )
            head = head_model(regressor)
            _compile_adam(head, cfg.head_lr)
            head_state = ModelState(head)
            # §3.2: fine-tune with the top-most 20 encoder layers unfrozen (BN excluded)
            unfreeze_top(regressor, cfg.finetune_unfreeze_top, within="encoder")
            _compile_adam(regressor, cfg.finetune_lr)
            stages = {"head": (head, head_state), "finetune": (regressor, ModelState(regressor))}
            self._compiled[name] = _Compiled(regressor, stages)
        return self._compiled[name]

    # -------------------------------------------------------------- comparators
    def ssl_regressor(self, init: str, *, name: str, subscores: bool = False):
        """Comparator: SSL encoder (``init`` start) + head, two-stage training (§3.2)."""
        cfg = self.config

        def fit_predict(train: pd.DataFrame, test: pd.DataFrame, fold: int) -> np.ndarray:
            tr, te = train.index.to_numpy(), test.index.to_numpy()
            models = self._ssl_models(name, init, subscores)
            models.reset()
            head, _ = models.stages["head"]
            regressor = models.regressor
            y = self._targets(tr, subscores)
            _init_output_bias(regressor, self.data.targets[tr], cfg.head_bias_at_mean)
            # Stage 1: encoder frozen, so the head trains on the fixed embeddings.
            # No per-epoch checkpoint: a head epoch on embeddings takes milliseconds, its
            # checkpoint longer (a third of the smoke run's wall time, issue 23).
            self._fit(
                head,
                self.embeddings(init)[tr],
                y,
                f"{name}/fold{fold}/head",
                cfg.head_epochs,
                backup=False,
            )
            self._fit(
                regressor, self.inputs[tr], y, f"{name}/fold{fold}/finetune", cfg.finetune_epochs
            )
            self._keep(regressor, name, fold)
            self._explain(regressor, name, fold, te)
            return _predict_mrale(regressor, self.inputs[te], cfg.batch_size)

        return fit_predict

    def resnet50_scratch(self, *, name: str = "resnet50_scratch"):
        """Comparator (c): ResNet-50 from random weights with the identical head, end to end:
        ``scratch_epochs`` at ``head_lr``, then ``finetune_epochs`` at ``finetune_lr``."""
        cfg = self.config

        def fit_predict(train: pd.DataFrame, test: pd.DataFrame, fold: int) -> np.ndarray:
            tr, te = train.index.to_numpy(), test.index.to_numpy()
            if name not in self._compiled:
                regressor = build_scratch_regressor(cfg)
                _compile_adam(regressor, cfg.head_lr)
                self._compiled[name] = _Compiled(
                    regressor, {"train": (regressor, ModelState(regressor))}
                )
            models = self._compiled[name]
            models.reset()
            regressor = models.regressor
            _init_output_bias(regressor, self.data.targets[tr], cfg.head_bias_at_mean)
            x, y = self.inputs[tr], self.data.targets[tr]
            self._fit(regressor, x, y, f"{name}/fold{fold}/train", cfg.scratch_epochs)
            # Same compiled step, lower rate: assigning the rate variable avoids a re-trace.
            regressor.optimizer.learning_rate.assign(cfg.finetune_lr)
            self._fit(regressor, x, y, f"{name}/fold{fold}/finetune", cfg.finetune_epochs)
            self._keep(regressor, name, fold)
            self._explain(regressor, name, fold, te)
            return _predict_mrale(regressor, self.inputs[te], cfg.batch_size)

        return fit_predict

    def _keep(self, regressor: keras.Model, name: str, fold: int) -> None:
        """Fold 0's trained regressor is the one exported; keep its weights (no optimiser)."""
        if fold == 0:
            save_model_weights(regressor, fold_model_path(self.run, name, fold))

    def fold_done(self, name: str, fold: int) -> None:
        """``run_cv``'s ``on_fold_done``: the fold's predictions are saved, so a resume no longer
        needs its stage checkpoints."""
        if not self.config.keep_fold_checkpoints:
            discard_stage_checkpoints(self.run, f"{name}/fold{fold}/")

    # -------------------------------------------------------------- explainability
    def _explain(self, regressor: keras.Model, name: str, fold: int, rows: np.ndarray) -> None:
        """Grad-CAM on held-out images; with phantom masks, the share of CAM mass inside the
        opacity, for this regressor and for a random-init control of the same architecture."""
        if name not in self.gradcam_for:
            return
        rows = rows[: self.config.gradcam_max_images]
        out = self.run.subdir("gradcam") / f"{name}_fold{fold}.npz"
        if out.exists():
            return
        heat = gradcam(regressor, self.inputs[rows], output="mrale")
        if self._control is None:  # one random-init regressor of the same architecture
            self._control = build_mrale_regressor(self.config)
        heat_control = gradcam(self._control, self.inputs[rows], output="mrale")
        arrays = {"rows": rows, "heatmaps": heat.astype(np.float16)}
        if self.data.opacity_masks is not None:
            masks = self.data.opacity_masks[rows]
            arrays["mass"] = _mass_or_nan(heat, masks)
            arrays["mass_control"] = _mass_or_nan(heat_control, masks)
            arrays["mask_area"] = masks.reshape(len(rows), -1).mean(axis=1)
        np.savez_compressed(out, **arrays)


def build_mrale_regressor(config: MraleConfig) -> keras.Model:
    """A random-init SSL regressor of the configured architecture (encoder + head)."""
    return build_regressor(
        build_ssl_encoder(config.encoder_spec()),
        units=config.head_units,
        activation=config.head_activation_fn,
    )


def build_scratch_regressor(config: MraleConfig) -> keras.Model:
    size = config.image_size
    backbone = build_backbone(
        config.encoder_spec().backbone, weights=None, input_shape=(size, size, 3)
    )
    return build_regressor(backbone, units=config.head_units, activation=config.head_activation_fn)


def _mass_or_nan(heatmaps: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Mass inside the mask; NaN where the mask is empty (score 0) or the map is all zero."""
    mass = mass_inside_mask(heatmaps, masks).astype(np.float64)
    empty = masks.reshape(len(masks), -1).sum(axis=1) == 0
    flat = heatmaps.reshape(len(heatmaps), -1).sum(axis=1) == 0
    mass[empty | flat] = np.nan
    return mass

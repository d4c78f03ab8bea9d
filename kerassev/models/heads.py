"""Projector, predictor, encoder, regressor and sub-score heads (Liang et al. 2023, §2.1-3.2).

Layout (names are stable; ``unfreeze`` and ``gradcam`` rely on the nesting):

    regressor ─ encoder ─ backbone (e.g. "resnet50")
                        └ projector  (MLP, layer-wise BN, L2 1e-3; 2048-d output, §3.1)
              └ Dense(256)-BN-ReLU, Dense(256)-BN-ReLU, Dense(1)   (§2.2, SPEC 01)

Activation placement in the regressor is not given by the paper ("two fully connected dense layers
with 256 neurons followed by batch normalization"); we use Dense -> BN -> ReLU, the usual order,
and a linear Dense(1) output. ``activation=None`` reproduces a literal, purely linear reading.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import layers, ops

from kerassev.models.batch_norm import FusedBatchNormalization

__all__ = [
    "SUBSCORE_COLUMNS",
    "SUBSCORE_MAXIMA",
    "BoundedScores",
    "MraleFromSubscores",
    "build_encoder",
    "build_predictor",
    "build_projector",
    "build_regressor",
    "build_subscore_regressor",
]

#: Column order of the ``subscores`` output (dataset-table label names).
SUBSCORE_COLUMNS = ("extent_right", "extent_left", "density_right", "density_left")
#: Upper bound of each sub-score (extent 0-4, density 0-3; mRALE = sum over lungs of extent x density).
SUBSCORE_MAXIMA = (4.0, 4.0, 3.0, 3.0)


def _reg(l2: float | None):
    return keras.regularizers.L2(l2) if l2 else None


def build_projector(
    input_dim: int,
    *,
    dim: int = 2048,
    hidden: int = 2048,
    n_layers: int = 3,
    l2: float | None = 1e-3,
    output_bn: bool = True,
    name: str = "projector",
) -> keras.Model:
    """SimSiam projection MLP: ``(Dense-BN-ReLU) x (n_layers-1)``, then ``Dense-BN`` (§3.1).

    Dense layers carry L2 weight decay ``l2`` (1e-3 in the paper) and no bias (BN follows).
    ``output_bn=False`` ends in a plain ``Dense`` with bias (BYOL's and paper 04's projector).
    """
    if n_layers < 1:
        raise ValueError("n_layers must be >= 1")
    inputs = keras.Input((input_dim,), name=f"{name}_in")
    x = inputs
    for i in range(1, n_layers):
        x = layers.Dense(hidden, use_bias=False, kernel_regularizer=_reg(l2), name=f"{name}_fc{i}")(
            x
        )
        x = FusedBatchNormalization(name=f"{name}_bn{i}")(x)
        x = layers.ReLU(name=f"{name}_relu{i}")(x)
    x = layers.Dense(
        dim, use_bias=not output_bn, kernel_regularizer=_reg(l2), name=f"{name}_fc{n_layers}"
    )(x)
    if output_bn:
        x = FusedBatchNormalization(name=f"{name}_bn{n_layers}")(x)
    return keras.Model(inputs, x, name=name)


def build_predictor(
    dim: int = 2048,
    *,
    hidden: int = 512,
    out_dim: int | None = None,
    l2: float | None = 1e-3,
    name: str = "predictor",
) -> keras.Model:
    """Predictor ``dim -> hidden -> out_dim`` (default ``dim``): Dense-BN-ReLU, Dense (no BN on
    the output); SimSiam's bottleneck (hidden 512) or BYOL's / paper 04's (hidden 4096)."""
    inputs = keras.Input((dim,), name=f"{name}_in")
    x = layers.Dense(hidden, use_bias=False, kernel_regularizer=_reg(l2), name=f"{name}_fc1")(
        inputs
    )
    x = FusedBatchNormalization(name=f"{name}_bn1")(x)
    x = layers.ReLU(name=f"{name}_relu1")(x)
    x = layers.Dense(out_dim or dim, kernel_regularizer=_reg(l2), name=f"{name}_fc2")(x)
    return keras.Model(inputs, x, name=name)


def build_encoder(
    backbone: keras.Model,
    *,
    projection_dim: int = 2048,
    hidden: int | None = None,
    n_layers: int = 3,
    l2: float | None = 1e-3,
    output_bn: bool = True,
    name: str = "encoder",
) -> keras.Model:
    """Backbone (nested, pooled to a vector) + projector -> ``projection_dim`` embedding (§2.1).

    The 2048-d output is the embedding the paper's regressor consumes. A backbone without
    pooling gets a ``GlobalAveragePooling2D`` named ``backbone_pool``.
    """
    inputs = keras.Input(backbone.input_shape[1:], name="image")
    feats = backbone(inputs)
    if len(feats.shape) == 4:
        feats = layers.GlobalAveragePooling2D(name="backbone_pool")(feats)
    projector = build_projector(
        int(feats.shape[-1]),
        dim=projection_dim,
        hidden=hidden or projection_dim,
        n_layers=n_layers,
        l2=l2,
        output_bn=output_bn,
    )
    return keras.Model(inputs, projector(feats), name=name)


def _mlp_trunk(encoder, units, activation, freeze_encoder_in_place):
    if freeze_encoder_in_place:
        encoder.trainable = False  # §3.2: the SSL encoder is frozen for the first regression stage
    inputs = keras.Input(encoder.input_shape[1:], name="image")
    # training=False is not forced: a frozen encoder's BN already runs in inference mode.
    x = encoder(inputs)
    for i, n in enumerate(units, start=1):
        x = layers.Dense(n, name=f"head_fc{i}")(x)
        x = FusedBatchNormalization(name=f"head_bn{i}")(x)  # §2.2: "followed by batch norm"
        if activation:
            x = layers.Activation(activation, name=f"head_act{i}")(x)  # placement: our choice
    return inputs, x


def build_regressor(
    encoder: keras.Model,
    *,
    units: Sequence[int] = (256, 256),
    activation: str | None = "relu",
    freeze_encoder_in_place: bool = False,
    name: str = "regressor",
) -> keras.Model:
    """encoder -> [Dense(u) -> BN -> activation] per ``units`` -> Dense(1) mRALE (§2.2, §3.2).

    The regressor shares ``encoder`` (its layers and weights). By default the encoder's
    ``trainable`` flag is left as given; ``freeze_encoder_in_place=True`` sets
    ``encoder.trainable = False`` on the object passed in (stage 1 of §3.2), which every other
    model holding that encoder sees too. Use ``kerassev.models.unfreeze.unfreeze_top`` for the
    fine-tuning stage. The output layer is float32 under mixed precision.
    """
    inputs, x = _mlp_trunk(encoder, units, activation, freeze_encoder_in_place)
    out = layers.Dense(1, dtype="float32", name="mrale")(x)
    return keras.Model(inputs, out, name=name)


@keras.saving.register_keras_serializable(package="kerassev")
class BoundedScores(layers.Layer):
    """``maxima * sigmoid(x)``: each unit bounded to ``[0, maxima[i]]``."""

    def __init__(self, maxima: Sequence[float] = SUBSCORE_MAXIMA, **kwargs):
        super().__init__(**kwargs)
        self.maxima = tuple(float(m) for m in maxima)

    def call(self, x):
        return ops.sigmoid(x) * ops.convert_to_tensor(self.maxima, dtype=x.dtype)

    def get_config(self):
        return {**super().get_config(), "maxima": list(self.maxima)}


@keras.saving.register_keras_serializable(package="kerassev")
class MraleFromSubscores(layers.Layer):
    """mRALE = extent_r * density_r + extent_l * density_l from ``SUBSCORE_COLUMNS`` order."""

    def call(self, s):
        return s[:, 0:1] * s[:, 2:3] + s[:, 1:2] * s[:, 3:4]


def build_subscore_regressor(
    encoder: keras.Model,
    *,
    units: Sequence[int] = (256, 256),
    activation: str | None = "relu",
    freeze_encoder_in_place: bool = False,
    name: str = "subscore_regressor",
) -> keras.Model:
    """Beyond the paper: predict the four sub-scores and derive mRALE from them.

    Outputs ``{"subscores": (B, 4), "mrale": (B, 1)}``; sub-scores in ``SUBSCORE_COLUMNS`` order,
    bounded by ``SUBSCORE_MAXIMA`` (sigmoid x max), and ``mrale`` = e_r*d_r + e_l*d_l in [0, 24],
    so it can be scored exactly like the direct regressor. Suggested loss::

        model.compile(optimizer, loss={"subscores": "mse", "mrale": "mse"},
                      loss_weights={"subscores": 1.0, "mrale": 1.0 / 24})

    (MSE on the sub-scores plus MSE on the derived total; the weight puts the 0-24 total on the
    scale of the 0-4 sub-scores.) ``freeze_encoder_in_place`` as in :func:`build_regressor`.
    """
    inputs, x = _mlp_trunk(encoder, units, activation, freeze_encoder_in_place)
    logits = layers.Dense(len(SUBSCORE_COLUMNS), dtype="float32", name="subscore_logits")(x)
    subscores = BoundedScores(SUBSCORE_MAXIMA, dtype="float32", name="subscores")(logits)
    mrale = MraleFromSubscores(dtype="float32", name="mrale")(subscores)
    return keras.Model(inputs, {"subscores": subscores, "mrale": mrale}, name=name)

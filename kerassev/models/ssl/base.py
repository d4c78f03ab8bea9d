"""``TwoViewSSL``: the base every self-supervised method of the suite subclasses.

A method is a ``keras.Model`` whose ``train_step`` is this class's: two augmented views (and, for
methods with a memory bank, the images' row indices) -> :meth:`TwoViewSSL.compute_ssl_loss` ->
one optimiser step on :meth:`TwoViewSSL.ssl_trainable_variables` -> :meth:`after_train_step`
(EMA update of a target network, memory-bank update). The step is pure graph code: no
Python-side per-step work, so ``jit_compile``, mixed precision (``LossScaleOptimizer``) and
distribution strategies work unchanged. An optional ``augmenter`` (a Keras layer/model) makes
the two views inside the step from a batch of raw images.

Shared plumbing: the online ``encoder`` (backbone + projector, see
:func:`kerassev.models.heads.build_encoder`), an optional ``predictor``, an EMA ``target`` copy
of the encoder (:func:`make_target`, :func:`ema_update`, :func:`ema_momentum`) and the collapse
monitor. Metrics, reset every epoch and logged by History / CSVLogger: ``loss`` (the method's
objective), ``reg_loss`` (L2 terms, added to what is optimised), ``z_std`` (:func:`collapse_std`)
and ``z_std_ratio`` = ``z_std * sqrt(d)`` (about 1 when healthy, 0 when collapsed).
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf
from keras import ops

from kerassev.distribute import scale_for_replicas

__all__ = [
    "TwoViewSSL",
    "backbone_of",
    "collapse_std",
    "ema_momentum",
    "ema_update",
    "make_target",
    "unpack_views",
]


def collapse_std(z):
    """Mean over dimensions of the per-dimension batch std of L2-normalised ``z`` (SimSiam §4.1).

    About ``1/sqrt(d)`` for a healthy embedding, 0 when every image maps to the same vector.
    """
    z = ops.normalize(ops.cast(z, "float32"), axis=-1, order=2)
    return ops.mean(ops.std(z, axis=0))


def _split_views(data):
    """``(view1, view2, rest)`` where ``rest`` is the element after the views (labels) or None."""
    if isinstance(data, dict):
        return data["view1"], data["view2"], data.get("index")
    while isinstance(data, (tuple, list)) and len(data) == 1:
        data = data[0]
    if isinstance(data, dict):
        return data["view1"], data["view2"], data.get("index")
    if isinstance(data, (tuple, list)) and data:
        first = data[0]
        rest = data[1] if len(data) > 1 else None
        if isinstance(first, (tuple, list)) and len(first) == 2:
            return first[0], first[1], rest
        if isinstance(first, dict):
            return first["view1"], first["view2"], rest
        if len(data) == 2:
            return data[0], data[1], None
    raise ValueError(
        "expected two views: (view1, view2), ((view1, view2),), ((view1, view2), index) or "
        f"{{'view1', 'view2'}}; got {type(data).__name__} of length "
        f"{len(data) if hasattr(data, '__len__') else '?'}"
    )


def unpack_views(data):
    """``(view1, view2)`` from ``(v1, v2)``, ``((v1, v2),)``, ``((v1, v2), y[, w])`` or a dict
    with keys ``view1``/``view2``. Labels, if any, are ignored."""
    v1, v2, _ = _split_views(data)
    return v1, v2


def backbone_of(encoder: keras.Model) -> keras.Model:
    """The nested backbone of an encoder built by :func:`kerassev.models.heads.build_encoder`."""
    nested = [
        layer
        for layer in encoder.layers
        if isinstance(layer, keras.Model) and layer.name != "projector"
    ]
    if len(nested) != 1:
        raise ValueError(
            f"cannot find one backbone inside {encoder.name!r}: {[m.name for m in nested]}"
        )
    return nested[0]


def make_target(model: keras.Model, *, name: str | None = None) -> keras.Model:
    """A copy of ``model`` (same architecture and weights, no weight regularisers) for an EMA
    target network; rebuilt from the serialised config so any Keras model works."""
    config = keras.saving.serialize_keras_object(model)
    config["config"]["name"] = name or f"target_{model.name}"
    target = keras.saving.deserialize_keras_object(config)
    for variable in target.weights:  # the target is never optimised: no L2 terms
        variable.regularizer = None
    target.set_weights(model.get_weights())
    return target


def ema_update(target: keras.Model, online: keras.Model, tau) -> None:
    """``theta_2 <- tau theta_2 + (1 - tau) theta_1`` for every weight, BN statistics included
    (paper 04 eq. 5; BYOL §3.1)."""
    for t, o in zip(target.weights, online.weights, strict=True):
        t.assign(tau * t + (1.0 - tau) * ops.cast(o, t.dtype))


def ema_momentum(step, tau: float, total_steps: int | None):
    """EMA momentum at ``step`` (0-based): constant ``tau`` (paper 04) or, with ``total_steps``
    ``K``, BYOL's cosine increase ``1 - (1 - tau) (cos(pi k / K) + 1) / 2`` from ``tau`` to 1
    (Grill et al. 2020, §3.2)."""
    if not total_steps:
        return ops.convert_to_tensor(tau, "float32")
    k = ops.minimum(ops.cast(step, "float32") / float(total_steps), 1.0)
    return 1.0 - (1.0 - tau) * (ops.cos(math.pi * k) + 1.0) / 2.0


class TwoViewSSL(keras.Model):
    """Base class: two augmented views -> loss; tracks ``loss``, ``reg_loss``, ``z_std``,
    ``z_std_ratio``. ``call(x)`` returns ``encoder(x)``, so ``predict`` gives embeddings.

    Subclasses implement :meth:`compute_ssl_loss` and, where they need it,
    :meth:`ssl_trainable_variables` and :meth:`after_train_step`.
    """

    def __init__(
        self,
        encoder: keras.Model,
        predictor: keras.Model | None = None,
        *,
        augmenter: keras.Layer | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.encoder = encoder
        self.predictor = predictor
        self.augmenter = augmenter
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.reg_loss_tracker = keras.metrics.Mean(name="reg_loss")
        self.z_std_tracker = keras.metrics.Mean(name="z_std")
        self.z_std_ratio_tracker = keras.metrics.Mean(name="z_std_ratio")
        if getattr(encoder, "built", False) and getattr(predictor, "built", True):
            self.built = True

    @property
    def metrics(self):
        # Listed here so fit/evaluate reset them at each epoch (Keras 3 pattern).
        return [
            self.loss_tracker,
            self.reg_loss_tracker,
            self.z_std_tracker,
            self.z_std_ratio_tracker,
        ]

    def call(self, inputs, training=None):
        return self.encoder(inputs, training=training)

    # --- hooks for subclasses -------------------------------------------------------------
    def compute_ssl_loss(self, view1, view2, training, index=None):
        """Return ``(loss, z1, z2)``: scalar float32 loss and the two online projections.
        ``index`` is the images' row numbers when the data carries them (memory banks)."""
        raise NotImplementedError

    def ssl_trainable_variables(self):
        """Variables the optimiser updates (default: every trainable variable)."""
        return self.trainable_variables

    def after_train_step(self):
        """Called after each optimiser step (EMA update of a target network, ...)."""

    # --- shared machinery ----------------------------------------------------------------
    def views(self, data):
        """``(view1, view2, index)`` from a batch; with an ``augmenter``, a batch of raw
        images ``x`` (or ``(x, index)``) becomes two views inside the graph."""
        if self.augmenter is not None:
            if not isinstance(data, (tuple, list)):
                data = (data,)
            x, index = data[0], (data[1] if len(data) > 1 else None)
            return self.augmenter(x, training=True), self.augmenter(x, training=True), index
        return _split_views(data)

    def regularization_loss(self):
        losses = [ops.cast(x, "float32") for x in self.losses]
        return ops.sum(ops.stack(losses)) if losses else ops.convert_to_tensor(0.0, "float32")

    def _update_metrics(self, loss, reg, z1, z2):
        z_std = 0.5 * (collapse_std(z1) + collapse_std(z2))
        d = int(z1.shape[-1])
        self.loss_tracker.update_state(loss)
        self.reg_loss_tracker.update_state(reg)
        self.z_std_tracker.update_state(z_std)
        self.z_std_ratio_tracker.update_state(z_std * math.sqrt(d))
        return {m.name: m.result() for m in self.metrics}

    def train_step(self, data):
        view1, view2, index = self.views(data)
        variables = self.ssl_trainable_variables()
        with tf.GradientTape() as tape:
            loss, z1, z2 = self.compute_ssl_loss(view1, view2, training=True, index=index)
            reg = self.regularization_loss()
            total = scale_for_replicas(loss + reg)
            # LossScaleOptimizer (mixed_float16) scales here and unscales in apply().
            scaled = self.optimizer.scale_loss(total)
        grads = tape.gradient(scaled, variables)
        self.optimizer.apply(grads, variables)
        self.after_train_step()
        return self._update_metrics(loss, reg, z1, z2)

    def test_step(self, data):
        view1, view2, index = _split_views(data)
        loss, z1, z2 = self.compute_ssl_loss(view1, view2, training=False, index=index)
        return self._update_metrics(loss, self.regularization_loss(), z1, z2)

    def get_config(self):
        config = {
            **super().get_config(),
            "encoder": keras.saving.serialize_keras_object(self.encoder),
            "predictor": keras.saving.serialize_keras_object(self.predictor),
        }
        if self.augmenter is not None:
            config["augmenter"] = keras.saving.serialize_keras_object(self.augmenter)
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("encoder", "predictor", "augmenter"):
            if config.get(key) is not None:
                config[key] = keras.saving.deserialize_keras_object(config[key])
        encoder = config.pop("encoder")
        return cls(encoder, **config)


class EMATargetSSL(TwoViewSSL):
    """A :class:`TwoViewSSL` with a target encoder that is an EMA of the online one (BYOL, Cross).

    ``tau`` is the EMA momentum (paper 04: 0.996, updated every iteration, eq. 5);
    ``tau_total_steps`` switches on BYOL's cosine increase of ``tau`` to 1 over that many steps
    (:func:`kerassev.recipes.ssl_pretraining.pretrain_ssl` sets it to each stage's step count
    before compiling it). The momentum used at each step is logged as the ``tau`` metric (its
    epoch mean). The target takes no gradient: its outputs go through ``stop_gradient`` and its
    variables are not among :meth:`ssl_trainable_variables`. Its BatchNorm runs on batch
    statistics, as the online network's.
    """

    def __init__(self, encoder, predictor, *, tau: float = 0.996, tau_total_steps=None, **kwargs):
        super().__init__(encoder, predictor, **kwargs)
        if predictor is None:
            raise ValueError(f"{type(self).__name__} needs a predictor")
        self.tau = float(tau)
        self.tau_total_steps = tau_total_steps
        self.target = make_target(encoder)
        self.tau_tracker = keras.metrics.Mean(name="tau")

    @property
    def metrics(self):
        return [*super().metrics, self.tau_tracker]

    def target_embedding(self, x, training):
        return ops.stop_gradient(self.target(x, training=training))

    def ssl_trainable_variables(self):
        target_ids = {id(v) for v in self.target.weights}
        return [v for v in self.trainable_variables if id(v) not in target_ids]

    def after_train_step(self):
        # the optimiser has applied this step's update: iterations - 1 is its 0-based index
        step = self.optimizer.iterations - 1
        tau = ema_momentum(step, self.tau, self.tau_total_steps)
        ema_update(self.target, self.encoder, tau)
        self.tau_tracker.update_state(tau)

    def get_config(self):
        return {**super().get_config(), "tau": self.tau, "tau_total_steps": self.tau_total_steps}

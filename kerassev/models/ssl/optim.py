"""The SSL optimiser with PyTorch's semantics: SGD with momentum and *coupled* L2 weight decay.

The papers' code (SimSiam, BYOL, MoCo, paper 04) uses ``torch.optim.SGD(weight_decay=wd)``,
which adds ``wd * w`` to the gradient before the momentum buffer: with momentum 0.9 a weight
decays by about ``lr * wd / (1 - 0.9)`` = 10x ``lr * wd`` per step. Keras' ``SGD(weight_decay=)``
is decoupled (``w -= lr * wd * w`` outside the momentum), 10x weaker at the same number (issue
18 fault 5). :class:`CoupledSGD` is the PyTorch update, for every trainable variable (the
papers' optimisers decay all parameters, BN and biases included).
"""

from __future__ import annotations

import keras
from keras import ops

__all__ = ["CoupledSGD", "linear_scaled_lr", "ssl_sgd"]


@keras.saving.register_keras_serializable(package="kerassev")
class CoupledSGD(keras.optimizers.SGD):
    """``torch.optim.SGD(lr, momentum, weight_decay=coupled_weight_decay)``:
    ``g <- g + wd * w``, then Keras' (= PyTorch's, dampening 0) momentum update."""

    def __init__(self, learning_rate=0.01, *, coupled_weight_decay: float = 0.0, **kwargs):
        if kwargs.get("weight_decay"):
            raise ValueError("CoupledSGD: pass coupled_weight_decay, not Keras' weight_decay")
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.coupled_weight_decay = float(coupled_weight_decay)

    def update_step(self, gradient, variable, learning_rate):
        if self.coupled_weight_decay:
            wd = ops.cast(self.coupled_weight_decay, variable.dtype)
            gradient = ops.add(ops.cast(gradient, variable.dtype), ops.multiply(wd, variable))
        super().update_step(gradient, variable, learning_rate)

    def get_config(self):
        return {**super().get_config(), "coupled_weight_decay": self.coupled_weight_decay}


def linear_scaled_lr(lr: float, batch_size: int, lr_batch: int | None) -> float:
    """Goyal et al. 2017's linear rule as SimSiam/BYOL/MoCo apply it: ``lr * batch / lr_batch``
    (``lr`` is given at batch ``lr_batch``; None: ``lr`` as it is)."""
    return float(lr) if not lr_batch else float(lr) * batch_size / lr_batch


def ssl_sgd(lr: float, *, momentum: float, steps: int, weight_decay: float | None = None):
    """:class:`CoupledSGD` on a cosine decay from ``lr`` to 0 over ``steps`` (no warm-up)."""
    from kerassev.training import warmup_cosine

    return CoupledSGD(
        warmup_cosine(lr, steps=steps),
        momentum=momentum,
        coupled_weight_decay=weight_decay or 0.0,
    )

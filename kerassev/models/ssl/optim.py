"""The SSL optimiser with PyTorch's semantics: SGD with momentum and *coupled* L2 weight decay.

The papers' code (SimSiam, BYOL, MoCo, paper 04) uses ``torch.optim.SGD(weight_decay=wd)``,
which adds ``wd * w`` to the gradient before the momentum buffer: with momentum 0.9 a weight
decays by about ``lr * wd / (1 - 0.9)`` = 10x ``lr * wd`` per step. Keras' ``SGD(weight_decay=)``
is decoupled (``w -= lr * wd * w`` outside the momentum), 10x weaker at the same number (issue
18 fault 5). :class:`CoupledSGD` is the PyTorch update, for every trainable variable (the
papers' optimisers decay all parameters, BN and biases included). :class:`CoupledAdam` is
``torch.optim.Adam(weight_decay=wd)`` the same way (paper 05's author, issue 19 fault 4).
"""

from __future__ import annotations

import keras
from keras import ops

__all__ = ["CoupledAdam", "CoupledSGD", "linear_scaled_lr", "ssl_sgd"]


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


@keras.saving.register_keras_serializable(package="kerassev")
class CoupledAdam(keras.optimizers.Adam):
    """``torch.optim.Adam(lr, betas, eps, weight_decay=coupled_weight_decay)``: ``g <- g + wd * w``
    before the moments, and PyTorch's epsilon outside the bias-corrected root (Keras adds it to
    the uncorrected one); torch's default eps 1e-8."""

    def __init__(self, learning_rate=0.001, *, coupled_weight_decay: float = 0.0, epsilon=1e-8,
                 **kwargs):  # fmt: skip
        if kwargs.get("weight_decay"):
            raise ValueError("CoupledAdam: pass coupled_weight_decay, not Keras' weight_decay")
        if kwargs.get("amsgrad"):
            raise ValueError("CoupledAdam: amsgrad is not implemented")
        super().__init__(learning_rate=learning_rate, epsilon=epsilon, **kwargs)
        self.coupled_weight_decay = float(coupled_weight_decay)

    def update_step(self, gradient, variable, learning_rate):
        dtype = variable.dtype
        lr = ops.cast(learning_rate, dtype)
        g = ops.cast(gradient, dtype)
        if self.coupled_weight_decay:
            g = ops.add(g, ops.multiply(ops.cast(self.coupled_weight_decay, dtype), variable))
        step = ops.cast(self.iterations + 1, dtype)
        b1, b2 = ops.cast(self.beta_1, dtype), ops.cast(self.beta_2, dtype)
        m = self._momentums[self._get_variable_index(variable)]
        v = self._velocities[self._get_variable_index(variable)]
        self.assign_add(m, ops.multiply(ops.subtract(g, m), 1 - b1))
        self.assign_add(v, ops.multiply(ops.subtract(ops.square(g), v), 1 - b2))
        denom = ops.add(ops.sqrt(ops.divide(v, 1 - ops.power(b2, step))), self.epsilon)
        step_size = ops.divide(lr, 1 - ops.power(b1, step))
        self.assign_sub(variable, ops.multiply(step_size, ops.divide(m, denom)))

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

"""Staged unfreezing on nested models (Liang et al. 2023, §3.1 stage B and §3.2 fine-tuning).

The paper unfreezes "the topmost 20 layers ... except for the batch normalization layers".
**What counts as a layer here:** only layers that own trainable weights (Conv2D, Dense, ...),
BatchNormalization excluded; weightless layers (Activation, Add, pooling, padding) are neither
counted nor changed. For ResNet-50, n=20 therefore reaches the 20 top convolutions (all of
conv5_x and the top of conv4_x), not merely the last 20 entries of ``model.layers``.

Layers are visited depth-first through nested models (regressor -> encoder -> backbone ...) in
each model's topological ``layers`` order, so "top-most" means "last in that order". BN layers in
the unfrozen scope stay ``trainable=False``, which in Keras 3 also makes them run in inference mode
(moving statistics frozen). Recompile after changing trainable flags.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator

import keras

__all__ = ["flatten_layers", "freeze_all", "trainable_summary", "unfreeze_top"]

log = logging.getLogger(__name__)


def _is_container(layer) -> bool:
    return isinstance(layer, keras.Model) or (
        hasattr(layer, "layers") and isinstance(getattr(layer, "layers", None), list)
    )


def flatten_layers(model, *, prefix: str = "") -> Iterator[tuple[str, keras.Layer]]:
    """Yield ``(path, layer)`` for every leaf layer, depth-first, in definition order.

    ``path`` is slash-separated through the nesting, e.g. ``"encoder/resnet50/conv5_block3_3_conv"``.
    """
    for layer in model.layers:
        path = f"{prefix}{layer.name}"
        if _is_container(layer):
            yield from flatten_layers(layer, prefix=path + "/")
        else:
            yield path, layer


def _has_trainable_weights(layer) -> bool:
    # `_trainable_variables` lists weights created trainable, even while the layer is frozen.
    created = getattr(layer, "_trainable_variables", None)
    if created is not None:
        return len(created) > 0
    return len(layer.weights) > 0


def _find(model, within):
    if within is None:
        return model
    if not isinstance(within, str):
        return within
    for layer in [model, *(lay for _, lay in _flatten_containers(model))]:
        if layer.name == within:
            return layer
    raise ValueError(f"no nested model named {within!r} inside {model.name!r}")


def _flatten_containers(model) -> Iterator[tuple[str, keras.Layer]]:
    for layer in model.layers:
        if _is_container(layer):
            yield layer.name, layer
            yield from _flatten_containers(layer)


def freeze_all(model) -> None:
    """``model.trainable = False`` (recursively freezes every nested layer)."""
    model.trainable = False


def unfreeze_top(
    model,
    n: int = 20,
    *,
    skip: tuple[type, ...] = (keras.layers.BatchNormalization,),
    within: str | keras.Model | None = None,
) -> list[str]:
    """Make exactly the top-most ``n`` weight-bearing, non-``skip`` layers of ``within`` trainable.

    ``within`` (a nested model or its name, default the whole ``model``) is the scope that gets
    frozen and partially unfrozen; layers of ``model`` outside it keep their current flags (e.g.
    the regressor head stays trainable with ``within="encoder"``; stage B of SSL uses
    ``unfreeze_top(simsiam.encoder, 20, within="resnet50")``). Every enclosing model is set
    trainable so the flags take effect. Returns (and logs) the paths of the unfrozen layers.
    """
    if n < 0:
        raise ValueError("n must be >= 0")
    scope = _find(model, within)
    scope_ids = {id(lay) for _, lay in flatten_layers(scope)}
    outside = [(lay, lay.trainable) for _, lay in flatten_layers(model) if id(lay) not in scope_ids]

    # Setting a container trainable propagates to all its sublayers, so: open every container,
    # restore the layers outside the scope, then freeze the scope's leaves and open the top n.
    model.trainable = True
    for lay, flag in outside:
        lay.trainable = flag
    prefix = "" if scope is model else _path_of(model, scope)
    leaves = list(flatten_layers(scope, prefix=prefix))
    for _, lay in leaves:
        lay.trainable = False
    candidates = [
        (p, lay) for p, lay in leaves if _has_trainable_weights(lay) and not isinstance(lay, skip)
    ]
    chosen = candidates[len(candidates) - n :] if n else []
    for _, lay in chosen:
        lay.trainable = True
    names = [p for p, _ in chosen]
    log.info(
        "unfreeze_top(%s, n=%d, within=%s): %d layer(s) trainable, %s kept frozen: %s",
        model.name,
        n,
        getattr(scope, "name", scope),
        len(names),
        ", ".join(t.__name__ for t in skip) or "nothing",
        names,
    )
    if len(chosen) < n:
        log.warning("only %d eligible layers in %s (asked for %d)", len(chosen), scope.name, n)
    return names


def _path_of(model, target, prefix: str = "") -> str:
    for layer in model.layers:
        if layer is target:
            return f"{prefix}{layer.name}/"
        if _is_container(layer):
            found = _path_of(layer, target, f"{prefix}{layer.name}/")
            if found:
                return found
    return ""


def trainable_summary(model, *, only_weighted: bool = True):
    """One row per leaf layer: ``path``, ``type``, ``trainable``, ``n_trainable``, ``n_frozen``.

    Counts are effective: a layer inside a frozen enclosing model counts as frozen.

    Returns a ``pandas.DataFrame`` (a list of dicts if pandas is unavailable).
    """
    effective = {id(v) for v in model.trainable_weights}  # honours frozen enclosing models
    rows = []
    for path, lay in flatten_layers(model):
        if only_weighted and not lay.weights:
            continue
        n_tr = sum(math.prod(v.shape) for v in lay.weights if id(v) in effective)
        n_all = sum(math.prod(v.shape) for v in lay.weights)
        rows.append(
            {
                "path": path,
                "type": type(lay).__name__,
                "trainable": n_tr > 0,
                "n_trainable": n_tr,
                "n_frozen": n_all - n_tr,
            }
        )
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover
        return rows
    return pd.DataFrame(rows, columns=["path", "type", "trainable", "n_trainable", "n_frozen"])

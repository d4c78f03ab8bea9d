"""Grad-CAM for models whose conv layers sit inside nested models (Liang et al. 2023, §3.2, Fig. 4).

The usual recipe, ``keras.Model(model.inputs, [nested_layer.output, model.output])``, fails with
"Graph disconnected" when the layer lives in a nested model (regressor -> encoder -> ResNet-50),
because the nested layer's symbolic output belongs to the inner model's graph. Here the outer model
is instead run eagerly as is, inside a ``GradientTape``, while the target layer's output is captured
as it is produced (its ``call`` is wrapped for the duration). This works at any nesting depth, for
Functional, Sequential and subclassed models, and with dict outputs, and never rebuilds a graph.

Grad-CAM (Selvaraju et al. 2017): ``alpha_k = mean_ij d y / d A_k[i, j]``;
``cam = ReLU(sum_k alpha_k A_k)``, bilinearly upsampled to the input size and divided by its
per-image maximum. For a regressor, ``y`` is the scalar prediction.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from kerassev.models.unfreeze import flatten_layers

__all__ = ["find_layer", "gradcam", "last_conv_layer", "mass_inside_mask", "overlay_grid"]


def _iter_leaves(model):
    """Leaf layers through the nesting, depth-first (one walk: ``unfreeze.flatten_layers``)."""
    return (layer for _, layer in flatten_layers(model))


def find_layer(model, name: str) -> keras.Layer:
    """Find a layer by name anywhere in the nesting (depth-first, definition order)."""
    for layer in _iter_leaves(model):
        if layer.name == name:
            return layer
    for layer in getattr(model, "layers", []):  # nested models can be targets too
        if layer.name == name:
            return layer
    raise ValueError(f"no layer named {name!r} in {model.name!r} or its nested models")


def last_conv_layer(model) -> keras.Layer:
    """The last leaf layer with a 4-D output (ResNet-50: ``conv5_block3_out``)."""
    found = None
    for layer in _iter_leaves(model):
        if isinstance(layer, keras.layers.InputLayer):
            continue
        try:
            shape = layer.output.shape
        except (AttributeError, ValueError):
            continue
        if len(shape) == 4:
            found = layer
    if found is None:
        raise ValueError(f"{model.name!r} has no layer with a 4-D output; pass layer=...")
    return found


@contextlib.contextmanager
def _capture(layer):
    """Temporarily wrap ``layer.call`` so each call's output is recorded (last call wins)."""
    captured = []
    original = layer.call

    def call(*args, **kwargs):
        out = original(*args, **kwargs)
        captured.append(out)
        return out

    object.__setattr__(layer, "call", call)
    try:
        yield captured
    finally:
        object.__delattr__(layer, "call")


def _select(outputs, output):
    """Pick the scalar-per-image target from the model's outputs."""
    index = None
    if isinstance(output, tuple):
        output, index = output
    elif isinstance(output, int):
        output, index = None, output
    if isinstance(outputs, dict):
        if output is None:
            if "mrale" in outputs:
                output = "mrale"
            elif len(outputs) == 1:
                output = next(iter(outputs))
            else:
                raise ValueError(f"model has outputs {sorted(outputs)}; pass output=NAME")
        y = outputs[output]
    elif isinstance(outputs, (list, tuple)):
        if isinstance(output, str) or (output is None and len(outputs) > 1):
            raise ValueError("model has several unnamed outputs; pass output=(position, index)")
        y = outputs[0]
    else:
        y = outputs
    y = tf.cast(tf.reshape(y, (tf.shape(y)[0], -1)), tf.float32)
    if index is None:
        if y.shape[-1] == 1:
            index = 0
        else:  # classifier: the predicted class of each image
            return tf.reduce_sum(y * tf.one_hot(tf.argmax(y, axis=-1), tf.shape(y)[-1]), axis=-1)
    return y[:, index]


def gradcam(
    model,
    images,
    *,
    layer: str | keras.Layer | None = None,
    output: str | int | tuple | None = "mrale",
    batch_size: int = 16,
) -> np.ndarray:
    """Grad-CAM heatmaps ``(N, H, W)`` in ``[0, 1]`` at the input resolution.

    ``layer``: name or layer anywhere in the nesting; default the last 4-D output
    (:func:`last_conv_layer`). ``output``: a dict key such as ``"mrale"`` (falls back to the single
    output when the model has one), an int unit index along the last axis, ``(name, index)``, or
    ``None`` (the single output, or the arg-max class). Images must be preprocessed as the model
    expects. BN runs in inference mode (``training=False``).
    """
    target = last_conv_layer(model) if layer is None else layer
    if isinstance(target, str):
        target = find_layer(model, target)
    images = np.asarray(images, dtype=np.float32)
    if images.ndim == 3:
        images = images[..., None]
    height, width = images.shape[1:3]
    maps = []
    for start in range(0, len(images), batch_size):
        x = tf.convert_to_tensor(images[start : start + batch_size])
        with _capture(target) as captured, tf.GradientTape() as tape:
            outputs = model(x, training=False)
            if not captured:
                raise ValueError(f"layer {target.name!r} was not called by {model.name!r}")
            acts = captured[-1]
            if isinstance(outputs, dict) and isinstance(output, str) and output not in outputs:
                raise ValueError(f"unknown output {output!r}; model has {sorted(outputs)}")
            sel = output if (isinstance(outputs, dict) or not isinstance(output, str)) else None
            score = tf.reduce_sum(_select(outputs, sel))
        grads = tape.gradient(score, acts)
        if grads is None:
            raise ValueError(f"output does not depend on layer {target.name!r}")
        acts = tf.cast(acts, tf.float32)
        grads = tf.cast(grads, tf.float32)
        alpha = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)  # alpha_k, GAP of gradients
        cam = tf.nn.relu(tf.reduce_sum(alpha * acts, axis=-1, keepdims=True))
        cam = tf.image.resize(cam, (height, width), method="bilinear")[..., 0]
        cam = tf.nn.relu(cam)
        peak = tf.reduce_max(cam, axis=(1, 2), keepdims=True)
        cam = tf.math.divide_no_nan(cam, peak)
        maps.append(cam.numpy())
    return np.concatenate(maps, axis=0) if maps else np.zeros((0, height, width), np.float32)


def mass_inside_mask(heatmaps, masks) -> np.ndarray:
    """Per image ``sum(heat * mask) / sum(heat)`` (NaN where the heatmap is all zero).

    ``masks``: ``(N, h, w)`` or one ``(h, w)`` mask for all; resized bilinearly to the heatmap
    size when it differs (a soft mask; values stay in [0, 1] for binary input).
    """
    heat = np.asarray(heatmaps, dtype=np.float64)
    if heat.ndim == 2:
        heat = heat[None]
    mask = np.asarray(masks, dtype=np.float32)
    if mask.ndim == 2:
        mask = np.broadcast_to(mask, (heat.shape[0], *mask.shape))
    if mask.shape[1:] != heat.shape[1:]:
        mask = tf.image.resize(mask[..., None], heat.shape[1:], method="bilinear")[..., 0].numpy()
    mask = np.clip(mask.astype(np.float64), 0.0, 1.0)
    total = heat.sum(axis=(1, 2))
    inside = (heat * mask).sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, inside / total, np.nan)


def _display(img):
    img = np.asarray(img, dtype=np.float32)
    if img.ndim == 3 and img.shape[-1] == 1:
        img = img[..., 0]
    lo, hi = float(np.min(img)), float(np.max(img))
    return (img - lo) / (hi - lo) if hi > lo else np.zeros_like(img)


def overlay_grid(
    images,
    heatmaps,
    titles: Sequence[str] | None = None,
    ncols: int = 4,
    *,
    alpha: float = 0.4,
    cmap: str = "jet",
    size: float = 3.0,
):
    """Grid of images with heatmaps overlaid -> ``matplotlib.figure.Figure`` (no pyplot state)."""
    from matplotlib.figure import Figure

    n = len(images)
    ncols = max(1, min(ncols, n))
    nrows = max(1, -(-n // ncols))
    fig = Figure(figsize=(size * ncols, size * nrows))
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for i, ax in enumerate(axes.ravel()):
        ax.axis("off")
        if i >= n:
            continue
        img = _display(images[i])
        ax.imshow(img, cmap="gray" if img.ndim == 2 else None)
        ax.imshow(np.asarray(heatmaps[i]), cmap=cmap, alpha=alpha, vmin=0.0, vmax=1.0)
        if titles is not None:
            ax.set_title(str(titles[i]), fontsize=9)
    fig.tight_layout()
    return fig

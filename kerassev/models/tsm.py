"""Temporal Shift Module video encoders on ResNet-18 (Lin et al. 2019; paper 02 §3.1).

Input clips are ``(B, T, H, W, C)``. Frames are folded into the batch, ``(B*T, H, W, C)``, for the
2D convolutions. :class:`TemporalShift` sits on the residual branch of every basic block, before
its first conv (TSM's residual shift, ``shift_place='blockres'``): of the C channels, the first
C/8 take the next frame's values and the next C/8 the previous frame's, zero-padded at the clip
ends, the rest stay (``fold_div=8``, TSM's ``shift``). The clip embedding is the mean over frames
(TSM's average consensus).

The paper's 2D comparator, :func:`build_frame_concat_encoder`, runs the same ResNet-18 on each
frame with no shift and concatenates the T frame embeddings.
"""

from __future__ import annotations

import keras
from keras import layers, ops

from kerassev.models.resnet18 import resnet18_features


@keras.saving.register_keras_serializable(package="kerassev")
class FoldTime(layers.Layer):
    """``(B, T, H, W, C)`` -> ``(B*T, H, W, C)``."""

    def call(self, x):
        return ops.reshape(x, (-1, *x.shape[2:]))

    def compute_output_shape(self, shape):
        return (None, *shape[2:])


@keras.saving.register_keras_serializable(package="kerassev")
class UnfoldTime(layers.Layer):
    """``(B*T, ...)`` -> ``(B, T, ...)``."""

    def __init__(self, n_segment: int, **kwargs):
        super().__init__(**kwargs)
        self.n_segment = n_segment

    def call(self, x):
        return ops.reshape(x, (-1, self.n_segment, *x.shape[1:]))

    def compute_output_shape(self, shape):
        return (None, self.n_segment, *shape[1:])

    def get_config(self):
        return {**super().get_config(), "n_segment": self.n_segment}


@keras.saving.register_keras_serializable(package="kerassev")
class TemporalShift(layers.Layer):
    """Shift ``C // fold_div`` channels one frame back and as many one frame forward.

    Input ``(B*T, H, W, C)`` with ``T = n_segment``; output the same shape. For frame t:
    channels ``[0, f)`` hold frame t+1's (zero at the last frame), ``[f, 2f)`` frame t-1's (zero
    at the first), ``[2f, C)`` frame t's own, with ``f = C // fold_div``.
    """

    def __init__(self, n_segment: int, fold_div: int = 8, **kwargs):
        super().__init__(**kwargs)
        if n_segment < 1 or fold_div < 2:
            raise ValueError(f"need n_segment >= 1 and fold_div >= 2, got {n_segment}, {fold_div}")
        self.n_segment, self.fold_div = n_segment, fold_div

    def call(self, x):
        c = x.shape[-1]
        f = c // self.fold_div
        x = ops.reshape(x, (-1, self.n_segment, *x.shape[1:]))
        zero = ops.zeros_like(x[:, :1, ..., :f])
        from_next = ops.concatenate([x[:, 1:, ..., :f], zero], axis=1)
        from_prev = ops.concatenate([zero, x[:, :-1, ..., f : 2 * f]], axis=1)
        out = ops.concatenate([from_next, from_prev, x[..., 2 * f :]], axis=-1)
        return ops.reshape(out, (-1, *out.shape[2:]))

    def get_config(self):
        return {**super().get_config(), "n_segment": self.n_segment, "fold_div": self.fold_div}


def build_tsm_encoder(
    n_frames: int = 8,
    frame_shape: tuple[int, int, int] = (112, 112, 1),
    *,
    width: int = 64,
    fold_div: int = 8,
    name: str = "tsm_resnet18",
) -> keras.Model:
    """TSM ResNet-18: clip ``(T, H, W, C)`` -> embedding ``(8 * width,)``, mean over frames."""
    clips = keras.Input((n_frames, *frame_shape), name="clip")

    def shift(x, block):
        return TemporalShift(n_frames, fold_div, name=f"{block}_shift")(x)

    per_frame = resnet18_features(
        FoldTime(name="fold_time")(clips), width=width, residual_hook=shift
    )
    frames = UnfoldTime(n_frames, name="unfold_time")(per_frame)
    return keras.Model(clips, ops.mean(frames, axis=1), name=name)


def build_frame_concat_encoder(
    n_frames: int = 8,
    frame_shape: tuple[int, int, int] = (112, 112, 1),
    *,
    width: int = 64,
    name: str = "resnet18_2d_concat",
) -> keras.Model:
    """The paper's 2D comparator: per-frame ResNet-18 embeddings, concatenated ``(T * 8 * width,)``."""
    clips = keras.Input((n_frames, *frame_shape), name="clip")
    per_frame = resnet18_features(FoldTime(name="fold_time")(clips), width=width)
    frames = UnfoldTime(n_frames, name="unfold_time")(per_frame)
    return keras.Model(clips, layers.Flatten(name="concat_frames")(frames), name=name)


def build_video_encoder(kind: str, n_frames: int, frame_shape, *, width: int = 64) -> keras.Model:
    """``"tsm"`` or ``"2d"`` (frame-concatenating comparator)."""
    if kind == "tsm":
        return build_tsm_encoder(n_frames, frame_shape, width=width)
    if kind == "2d":
        return build_frame_concat_encoder(n_frames, frame_shape, width=width)
    raise ValueError(f"encoder must be 'tsm' or '2d', got {kind!r}")

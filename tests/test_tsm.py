"""Temporal shift, TSM ResNet-18 and the 2D frame-concatenating comparator."""

from __future__ import annotations

import keras
import numpy as np

from kerassev.models.resnet18 import build_resnet18
from kerassev.models.tsm import TemporalShift, build_frame_concat_encoder, build_tsm_encoder


def test_shift_moves_exactly_one_eighth_each_way():
    t, c = 4, 16  # fold = 2 channels each way
    x = np.arange(2 * t * 1 * 1 * c, dtype=np.float32).reshape(2 * t, 1, 1, c)
    y = keras.ops.convert_to_numpy(TemporalShift(t)(x)).reshape(2, t, c)
    x = x.reshape(2, t, c)
    np.testing.assert_array_equal(y[:, :-1, :2], x[:, 1:, :2])  # from the next frame
    np.testing.assert_array_equal(y[:, -1, :2], 0)  # zero-padded at the clip end
    np.testing.assert_array_equal(y[:, 1:, 2:4], x[:, :-1, 2:4])  # from the previous frame
    np.testing.assert_array_equal(y[:, 0, 2:4], 0)
    np.testing.assert_array_equal(y[:, :, 4:], x[:, :, 4:])  # 3/4 untouched


def test_tsm_shares_resnet18_weights_and_mixes_frames():
    shape = (32, 32, 1)
    tsm = build_tsm_encoder(4, shape, width=8)
    r2d = build_resnet18(shape, width=8)
    assert len(tsm.get_weights()) == len(r2d.get_weights())
    tsm.set_weights(r2d.get_weights())  # ImageNet-style 2D weights load unchanged
    clip = np.random.default_rng(0).random((2, 4, *shape)).astype(np.float32)
    u = keras.ops.convert_to_numpy(tsm(clip))
    assert u.shape == (2, 64)
    changed = clip.copy()
    changed[:, 0] = 0.0  # only frame 0 differs: frame 1's features must change through the shift
    per_frame = keras.Model(tsm.input, tsm.get_layer("unfold_time").output)
    a = keras.ops.convert_to_numpy(per_frame(clip))
    b = keras.ops.convert_to_numpy(per_frame(changed))
    assert not np.allclose(a[:, 1], b[:, 1])
    # without the shift (the 2D comparator) frame 1 does not see frame 0
    flat = build_frame_concat_encoder(4, shape, width=8)
    flat.set_weights(r2d.get_weights())
    fa = keras.ops.convert_to_numpy(flat(clip))[:, 64:128]
    fb = keras.ops.convert_to_numpy(flat(changed))[:, 64:128]
    np.testing.assert_allclose(fa, fb, atol=1e-5)


def test_t1_equals_2d_network_with_shifted_channels_zeroed():
    """With T=1 nothing crosses frames: TSM is the 2D ResNet-18 whose residual branches see the
    shifted 1/4 of channels as zeros (the zero padding); with those channels kept it is not."""
    from kerassev.models.resnet18 import resnet18_features

    shape = (32, 32, 1)
    tsm = build_tsm_encoder(1, shape, width=8)

    def zero_quarter(x, block):
        f = x.shape[-1] // 8
        return keras.layers.Lambda(
            lambda v: keras.ops.concatenate(
                [keras.ops.zeros_like(v[..., : 2 * f]), v[..., 2 * f :]], -1
            ),
            name=f"{block}_zero",
        )(x)

    inputs = keras.Input(shape)
    zeroed = keras.Model(inputs, resnet18_features(inputs, width=8, residual_hook=zero_quarter))
    plain = build_resnet18(shape, width=8)
    zeroed.set_weights(tsm.get_weights())
    plain.set_weights(tsm.get_weights())
    frames = np.random.default_rng(1).random((3, *shape)).astype(np.float32)
    u_tsm = keras.ops.convert_to_numpy(tsm(frames[:, None]))
    np.testing.assert_allclose(u_tsm, keras.ops.convert_to_numpy(zeroed(frames)), atol=1e-5)
    assert not np.allclose(u_tsm, keras.ops.convert_to_numpy(plain(frames)), atol=1e-5)


def test_frame_concat_comparator_is_per_frame_resnet():
    shape = (32, 32, 1)
    enc = build_frame_concat_encoder(3, shape, width=8)
    r2d = build_resnet18(shape, width=8)
    r2d.set_weights(enc.get_weights())
    clip = np.random.default_rng(2).random((2, 3, *shape)).astype(np.float32)
    u = keras.ops.convert_to_numpy(enc(clip))
    assert u.shape == (2, 3 * 64)
    frame1 = keras.ops.convert_to_numpy(r2d(clip[:, 1]))
    np.testing.assert_allclose(u[:, 64:128], frame1, atol=1e-5)

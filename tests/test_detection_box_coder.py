import numpy as np

from kerassev.models.detection.box_coder import BBOX_XFORM_CLIP, BoxCoder, clip_boxes


def _boxes(rng, n):
    yx = rng.uniform(0, 200, (n, 2))
    hw = rng.uniform(2, 120, (n, 2))
    return np.concatenate([yx, yx + hw], axis=1).astype(np.float32)


def test_encode_decode_round_trip_with_weights():
    rng = np.random.default_rng(0)
    boxes, ref = _boxes(rng, 500), _boxes(rng, 500)
    for weights in ((1.0, 1.0, 1.0, 1.0), (10.0, 10.0, 5.0, 5.0)):
        coder = BoxCoder(weights)
        back = coder.decode(coder.encode(boxes, ref), ref).numpy()
        np.testing.assert_allclose(back, boxes, atol=1e-3)


def test_encode_matches_the_formula():
    ref = np.array([[10, 20, 30, 60]], np.float32)  # h 20, w 40, centre (20, 40)
    box = np.array([[12, 30, 52, 70]], np.float32)  # h 40, w 40, centre (32, 50)
    d = BoxCoder((10.0, 10.0, 5.0, 5.0)).encode(box, ref).numpy()[0]
    np.testing.assert_allclose(d, [10 * 12 / 20, 10 * 10 / 40, 5 * np.log(2), 0.0], rtol=1e-6)


def test_decode_clips_the_log_scale():
    ref = np.array([[0, 0, 10, 10]], np.float32)
    box = BoxCoder().decode(np.array([[0, 0, 50.0, 50.0]], np.float32), ref).numpy()[0]
    side = 10 * np.exp(BBOX_XFORM_CLIP)
    np.testing.assert_allclose(box[2] - box[0], side, rtol=1e-5)
    assert np.all(np.isfinite(box))


def test_clip_boxes_to_image():
    out = clip_boxes(np.array([[-5, 3, 70, 200]], np.float32), (64, 128)).numpy()
    np.testing.assert_array_equal(out, [[0, 3, 64, 128]])

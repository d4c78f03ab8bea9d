"""Issue 19 fault 4: the author's sampler / head settings (COVID-CT-Mask-Net train_segmentation.py),
PyTorch's coupled Adam weight decay and the author's small-lesion rule, in the paper presets."""

import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf
from detection_harness import tiny_config

from kerassev.data.instances import instances_from_label_map
from kerassev.models.detection.mask_rcnn import MaskRCNN
from kerassev.models.detection.matcher import IGNORE, NEGATIVE, POSITIVE, Matcher
from kerassev.models.ssl.optim import CoupledAdam
from kerassev.recipes.ct_affinity.config import CtAffinityConfig
from kerassev.recipes.ct_lesions.config import HEAD_SETTINGS, CtLesionsConfig, adam

AUTHOR = dict(representation_size=128, roi_batch=256, roi_positive_fraction=0.75, roi_fg_iou=0.75,
              roi_bg_iou=0.5, rpn_positive_fraction=0.75, rpn_nms=0.75)  # fmt: skip


def _fields(m):
    return {k: getattr(m, k) for k in AUTHOR}


def test_coupled_adam_is_torch_adam_with_weight_decay():
    import torch

    rng = np.random.default_rng(0)
    w0, grads = rng.normal(size=(3, 4)), rng.normal(size=(5, 3, 4))
    ref = torch.nn.Parameter(torch.tensor(w0))
    opt = torch.optim.Adam([ref], lr=1e-2, weight_decay=1e-3)
    var = keras.Variable(w0, dtype="float64")
    ours = CoupledAdam(1e-2, coupled_weight_decay=1e-3)
    for g in grads:
        ref.grad = torch.tensor(g)
        opt.step()
        ours.apply([keras.ops.convert_to_tensor(g)], [var])
        np.testing.assert_allclose(var.numpy(), ref.detach().numpy(), rtol=1e-6, atol=1e-9)
    # the decay is in the gradient: with a zero gradient torch and ours still move the weights
    ref.grad = torch.zeros_like(ref)
    opt.step()
    ours.apply([keras.ops.zeros((3, 4), "float64")], [var])
    np.testing.assert_allclose(var.numpy(), ref.detach().numpy(), rtol=1e-6, atol=1e-9)
    # Keras' weight_decay is decoupled (AdamW-style): not the same update at the same number
    plain = keras.Variable(w0, dtype="float64")
    keras_adam = keras.optimizers.Adam(1e-2, weight_decay=1e-3, epsilon=1e-8)
    for g in grads:
        keras_adam.apply([keras.ops.convert_to_tensor(g)], [plain])
    assert not np.allclose(plain.numpy(), var.numpy(), rtol=1e-6, atol=1e-9)
    assert CoupledAdam.from_config(ours.get_config()).coupled_weight_decay == 1e-3
    with pytest.raises(ValueError, match="coupled_weight_decay"):
        CoupledAdam(1e-3, weight_decay=1e-3)


def test_coupled_adam_refuses_keras_decay_and_amsgrad_by_name():
    with pytest.raises(ValueError, match="pass coupled_weight_decay, not Keras' weight_decay"):
        CoupledAdam(1e-3, weight_decay=1e-3)
    with pytest.raises(ValueError, match="amsgrad is not implemented"):
        CoupledAdam(1e-3, amsgrad=True)
    restored = CoupledAdam.from_config(CoupledAdam(1e-3, coupled_weight_decay=1e-3).get_config())
    assert restored.coupled_weight_decay == 1e-3


def test_paper_presets_use_the_authors_settings_and_cpu_keeps_torchvision():
    paper = CtLesionsConfig.paper().model_config(num_classes=1, mean=0.4, std=0.2)
    assert _fields(paper) == AUTHOR == HEAD_SETTINGS["author"]
    boxes = np.array([[0, 0, 8, 8], [10, 10, 70, 70]], float)
    cpu = CtLesionsConfig.cpu().model_config(num_classes=1, mean=0.4, std=0.2, lesion_boxes=boxes)
    tv = dict(HEAD_SETTINGS["torchvision"], roi_batch=256)  # the cpu preset's own roi_batch
    assert _fields(cpu) == tv and tv["representation_size"] == 1024 and tv["rpn_nms"] == 0.7
    smoke = CtLesionsConfig.smoke().model_config(num_classes=1, mean=0.4, std=0.2)
    assert (smoke.roi_positive_fraction, smoke.roi_fg_iou, smoke.representation_size) == (
        0.25, 0.5, 128,
    )  # fmt: skip
    # a field given explicitly wins over its head_settings value
    wide = CtLesionsConfig.paper(representation_size=256).model_config(num_classes=1, mean=0, std=1)
    assert wide.representation_size == 256 and wide.roi_fg_iou == 0.75
    named = CtLesionsConfig.paper(head_settings="torchvision").model_config(
        num_classes=1, mean=0, std=1
    )
    assert _fields(named) == HEAD_SETTINGS["torchvision"]
    with pytest.raises(ValueError, match="head_settings"):
        CtLesionsConfig(head_settings="detectron")
    # the affinity paper preset: the same author's AffinityModel defaults, + its RPN top-n
    affinity = CtAffinityConfig.paper()
    assert _fields(affinity.model_config(mean=0, std=1)) == AUTHOR
    assert (affinity.rpn_pre_nms_train, affinity.rpn_post_nms_test) == (400, 200)
    assert CtAffinityConfig.smoke().model_config(mean=0, std=1).roi_fg_iou == 0.5


def test_paper_presets_train_with_coupled_decay_and_the_authors_area_rule():
    paper, cpu = CtLesionsConfig.paper(), CtLesionsConfig.cpu()
    assert (paper.weight_decay_kind, paper.ignore_area, paper.min_lesion_size) == (
        "coupled",
        100,
        0,
    )
    assert (cpu.weight_decay_kind, cpu.ignore_area, cpu.min_lesion_size) == ("decoupled", 0, 10)
    assert CtAffinityConfig.paper().weight_decay_kind == "coupled"
    opt = adam(paper.learning_rate, paper.weight_decay, paper.weight_decay_kind)
    assert isinstance(opt, CoupledAdam) and opt.coupled_weight_decay == 1e-3
    assert not opt.weight_decay
    keras_opt = adam(cpu.learning_rate, cpu.weight_decay, cpu.weight_decay_kind)
    assert not isinstance(keras_opt, CoupledAdam) and keras_opt.weight_decay == 1e-3
    with pytest.raises(ValueError, match="weight_decay_kind"):
        CtLesionsConfig(weight_decay_kind="adamw")
    # ignore_small: components of <= 100 px go to background, 101 px stay (10x10 and 10x10 + 1)
    lm = np.zeros((64, 64), np.uint8)
    lm[2:12, 2:12] = 1  # 100 px
    lm[30:40, 30:40] = 2
    lm[40, 30] = 2  # 101 px
    lm[50:52, 2:60] = 1  # 116 px, 2 px tall: the side rule drops it, the area rule keeps it
    kept = instances_from_label_map(lm, min_size=0, ignore_area=100)
    assert sorted(kept.masks.sum(axis=(1, 2)).tolist()) == [101, 116]
    assert len(instances_from_label_map(lm, min_size=0)) == 3  # default: no area rule
    assert len(instances_from_label_map(lm, min_size=10)) == 2


def test_model_matches_and_heads_follow_the_config():
    m = MaskRCNN(tiny_config(**{**AUTHOR, "roi_batch": 64}))
    assert (m.roi_matcher.high, m.roi_matcher.low) == (0.75, 0.5)
    assert m.train_proposals.nms_threshold == m.test_proposals.nms_threshold == 0.75
    assert m.box_head.fc6.units == 128
    # between the author's thresholds a proposal is ignored, not background as at 0.5 / 0.5
    gt = tf.constant([[[0.0, 0.0, 10.0, 10.0]]])
    boxes = tf.constant([[[0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 10.0, 6.0], [0.0, 0.0, 10.0, 4.0]]])
    _, labels = m.roi_matcher.match(boxes, gt, tf.constant([[True]]))  # IoU 1, 0.6, 0.4
    assert labels.numpy()[0].tolist() == [POSITIVE, IGNORE, NEGATIVE]
    _, labels = Matcher(0.5, 0.5, False).match(boxes, gt, tf.constant([[True]]))
    assert labels.numpy()[0].tolist() == [POSITIVE, POSITIVE, NEGATIVE]
    cfg = dataclasses.asdict(m.config)
    assert MaskRCNN(cfg).roi_matcher.high == 0.75  # kept through get_config / from dict


@pytest.mark.slow
def test_authors_settings_and_coupled_adam_overfit_two_lesions():
    from detection_harness import two_lesion_batch, union_iou

    keras.utils.set_random_seed(0)
    model = MaskRCNN(tiny_config(**{**AUTHOR, "roi_batch": 64}))
    batch = two_lesion_batch()
    model.compile(optimizer=adam(2e-3, 1e-3, "coupled"))
    model.fit(tf.data.Dataset.from_tensors(batch).repeat(120), epochs=1, verbose=0, shuffle=False)
    out = model(batch["images"])
    confident = out["scores"][0].numpy() >= 0.5
    pred = out["masks"][0].numpy()[confident].any(0)
    assert union_iou(pred, batch["masks"][0].any(0)) > 0.8

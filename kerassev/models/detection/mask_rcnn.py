"""Mask R-CNN (He et al. 2017) with a ResNet-50-FPN backbone as a Keras 3 model with ``train_step``.

``model(images)`` gives detections (:func:`postprocess.detect`) and full-size masks;
``model.fit(dataset)`` trains on batches ``{"images" (B, S, S, 1) in [0, 1], "boxes" (B, M, 4),
"classes" (B, M) int32 with 0 for padding, "masks" (B, M, S, S) uint8}``. Every shape is static
(ground truth padded to ``max_instances``, proposals and samples of fixed count), so the train
step traces once. Inputs are raw grayscale slices; the global mean/std normalisation (paper 05)
happens inside, so exports carry their preprocessing.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import keras
import tensorflow as tf

from kerassev.distribute import scale_for_replicas
from kerassev.models.detection.anchors import AnchorGenerator
from kerassev.models.detection.box_coder import BoxCoder
from kerassev.models.detection.fpn import build_fpn_backbone
from kerassev.models.detection.heads import BoxHead, BoxPredictor, MaskHead, MaskPredictor
from kerassev.models.detection.losses import mask_loss, mask_targets, rcnn_loss, rpn_loss
from kerassev.models.detection.matcher import Matcher, sample
from kerassev.models.detection.postprocess import (
    RCNN_BOX_WEIGHTS,
    DetectionConfig,
    detect,
    paste_masks,
)
from kerassev.models.detection.roi_align import MultiLevelRoIAlign
from kerassev.models.detection.rpn import ProposalConfig, RPNHead, propose

LOSS_NAMES = ("rpn_objectness", "rpn_box", "rcnn_class", "rcnn_box", "mask")


@dataclass(frozen=True)
class MaskRCNNConfig:
    """Architecture and sampling settings; defaults are torchvision's ``maskrcnn_resnet50_fpn``."""

    image_size: int = 512
    num_classes: int = 1
    backbone: str = "resnet50"  # or "tiny" (tests, smoke)
    backbone_weights: str | None = None  # None | "imagenet" | path to a .h5 file
    fpn_channels: int = 256
    tiny_width: int = 16
    anchor_sizes: tuple[int, ...] = (32, 64, 128, 256, 512)  # one per level P2..P6
    aspect_ratios: tuple[float, ...] = (0.5, 1.0, 2.0)
    # True: every size on every level (the author's COVID-CT-Mask-Net anchors), not one per level
    anchors_every_level: bool = False
    # n > 1: each level's size s also gets s * 2^(k/n), k < n (RetinaNet, Lin et al. 2017b, §4)
    scales_per_octave: int = 1
    rpn_pre_nms_train: int = 2000
    rpn_post_nms_train: int = 2000
    rpn_pre_nms_test: int = 1000
    rpn_post_nms_test: int = 1000
    rpn_nms: float = 0.7
    rpn_batch: int = 256
    rpn_positive_fraction: float = 0.5
    roi_batch: int = 512
    roi_positive_fraction: float = 0.25
    # R-CNN sampling: a proposal is foreground at IoU >= roi_fg_iou, background below roi_bg_iou,
    # ignored in between (torchvision 0.5 / 0.5; COVID-CT-Mask-Net 0.75 / 0.5, issue 19 fault 4)
    roi_fg_iou: float = 0.5
    roi_bg_iou: float = 0.5
    # Mask-branch slots per image: None = every possible positive (roi_batch * fraction), exact
    # torchvision; fewer = a uniform random subset of the positives (the mask head dominates the
    # FLOPs of a step: 128 slots of four 3x3 convs at 14x14 are ~120 GFLOP forward).
    mask_roi_batch: int | None = None
    representation_size: int = 1024
    mask_channels: int = 256
    max_instances: int = 32
    score_threshold: float = 0.05
    nms_threshold: float = 0.5
    detections_per_image: int = 100
    mask_threshold: float = 0.5
    # Sample RoIs with gathers instead of CropAndResize, which has no XLA kernel: needed for
    # compile(jit_compile=True); the default is the faster crop_and_resize on a CPU.
    xla_friendly: bool = False
    mean: float = 0.0  # global intensity mean / std of the training slices (in [0, 1] units)
    std: float = 1.0
    # Issue 19 fault 2: "group" | "frozen_bn" | "bn" (fpn.py); "auto": frozen_bn with pretrained
    # weights, group from scratch (Detectron2 / He et al. 2019). Resolved when the model is built.
    norm: str = "auto"
    # Issue 19 fault 3: what the backbone's first layer sees. "zscore": (x - mean) / std on three
    # equal channels (paper 05's global normalisation); "caffe": the grey slice as BGR 0-255
    # minus the ImageNet means, the input Keras' ResNet-50 weights were trained on. "auto":
    # caffe with pretrained weights, zscore from scratch. Resolved when the model is built.
    input_scale: str = "auto"


#: Keras ResNet-50 "caffe" preprocessing: BGR channel means of ImageNet (0-255 scale).
CAFFE_BGR_MEANS = (103.939, 116.779, 123.68)
INPUT_SCALES = ("zscore", "caffe")


def resolve(config: MaskRCNNConfig) -> MaskRCNNConfig:
    """``config`` with "auto" ``norm`` / ``input_scale`` fixed from its weight source, so a
    reloaded model (whose config drops the weights) keeps them."""
    pretrained = config.backbone_weights is not None
    norm = config.norm if config.norm != "auto" else ("frozen_bn" if pretrained else "group")
    scale = config.input_scale
    if scale == "auto":
        scale = "caffe" if pretrained else "zscore"
    if scale not in INPUT_SCALES:
        raise ValueError(f"input_scale must be 'auto' or one of {INPUT_SCALES}, not {scale!r}")
    return dataclasses.replace(config, norm=norm, input_scale=scale)


def level_sizes(sizes, every_level: bool = False, scales_per_octave: int = 1) -> tuple:
    """Anchor sizes per FPN level: one size (times its octave scales) per level, or all sizes on
    every level (``every_level``, the author's generator)."""
    per = [tuple(s * 2 ** (k / scales_per_octave) for k in range(scales_per_octave)) for s in sizes]
    if every_level:
        return (tuple(a for p in per for a in p),) * len(sizes)
    return tuple(per)


@keras.saving.register_keras_serializable(package="kerassev")
class MaskRCNN(keras.Model):
    def __init__(self, config: MaskRCNNConfig | dict | None = None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(config, dict):
            config = MaskRCNNConfig(
                **{k: tuple(v) if isinstance(v, list) else v for k, v in config.items()}
            )
        self.config = c = resolve(config or MaskRCNNConfig())
        size = (c.image_size, c.image_size)
        self.anchor_generator = AnchorGenerator(
            sizes=level_sizes(c.anchor_sizes, c.anchors_every_level, c.scales_per_octave),
            aspect_ratios=c.aspect_ratios,
        )
        self.level_anchors = self.anchor_generator.level_anchors(size)
        self.backbone = build_fpn_backbone(
            c.image_size,
            backbone=c.backbone,
            weights=c.backbone_weights,
            channels=c.fpn_channels,
            tiny_width=c.tiny_width,
            norm=c.norm,
        )
        self.rpn_head = RPNHead(self.anchor_generator.num_anchors_per_location, c.fpn_channels)
        xla = c.xla_friendly
        self.box_roi_align = MultiLevelRoIAlign(7, 2, xla_friendly=xla, name="box_roi_align")
        self.mask_roi_align = MultiLevelRoIAlign(14, 2, xla_friendly=xla, name="mask_roi_align")
        self.box_head = BoxHead(c.representation_size, name="box_head")
        self.box_predictor = BoxPredictor(c.num_classes, name="box_predictor")
        self.mask_head = MaskHead(c.mask_channels, group_norm=c.norm == "group", name="mask_head")
        self.mask_predictor = MaskPredictor(c.num_classes, c.mask_channels, name="mask_predictor")
        self.rpn_matcher = Matcher(0.7, 0.3, allow_low_quality_matches=True)
        self.roi_matcher = Matcher(c.roi_fg_iou, c.roi_bg_iou, allow_low_quality_matches=False)
        self.rpn_coder = BoxCoder()
        self.rcnn_coder = BoxCoder(RCNN_BOX_WEIGHTS)
        self.train_proposals = ProposalConfig(c.rpn_pre_nms_train, c.rpn_post_nms_train, c.rpn_nms)
        self.test_proposals = ProposalConfig(c.rpn_pre_nms_test, c.rpn_post_nms_test, c.rpn_nms)
        self.detection = DetectionConfig(
            c.score_threshold, c.nms_threshold, c.detections_per_image, c.mask_threshold
        )
        self.trackers = {n: keras.metrics.Mean(name=n) for n in ("loss", *LOSS_NAMES)}
        self._build_heads()

    def _build_heads(self):
        """Create every variable now (so weights load and ``fit`` needs no symbolic build)."""
        feats = self.backbone(tf.zeros((1, self.config.image_size, self.config.image_size, 3)))
        self.rpn_head(feats)
        c = self.config.fpn_channels
        self.box_predictor(self.box_head(tf.zeros((1, 1, 7, 7, c))))
        self.mask_predictor(self.mask_head(tf.zeros((1, 1, 14, 14, c))))
        self.built = True

    def get_config(self):
        # A reloaded model gets its weights from the file: never fetch backbone weights again.
        config = dataclasses.replace(self.config, backbone_weights=None)
        return {**super().get_config(), "config": dataclasses.asdict(config)}

    @property
    def metrics(self):
        return list(self.trackers.values())

    # ---------------------------------------------------------------- shared pieces
    def backbone_inputs(self, images):
        """Raw ``(B, S, S, 1)`` slices in [0, 1] -> the backbone's ``(B, S, S, 3)`` input scale."""
        x = tf.cast(images, tf.float32)
        if self.config.input_scale == "caffe":
            return tf.repeat(x * 255.0, 3, axis=-1) - tf.constant(CAFFE_BGR_MEANS)
        return tf.repeat((x - self.config.mean) / self.config.std, 3, axis=-1)

    def features(self, images, training=False):
        """FPN levels P2-P6 of raw ``(B, S, S, 1)`` slices (normalised inside)."""
        return self.backbone(self.backbone_inputs(images), training=training)

    @property
    def trains_batch_norm(self) -> bool:
        """Whether the backbone has batch norm layers that training updates (``norm="bn"``)."""
        return any(
            isinstance(x, keras.layers.BatchNormalization) and x.trainable
            for x in self.backbone._flatten_layers(include_self=False)
        )

    def precise_batch_norm(self, images, batch_size: int = 8) -> int:
        """Precise BN (``norm="bn"`` only): moving statistics of the backbone recomputed on raw
        ``images (N, S, S, 1)`` under the current weights before evaluation; returns batches."""
        if not self.trains_batch_norm:
            return 0
        from kerassev.models.batch_norm import recompute_batch_norm_statistics

        x = self.backbone_inputs(tf.constant(images)).numpy()
        return recompute_batch_norm_statistics(self.backbone, x, batch_size=batch_size)

    def box_branch(self, feats, rois):
        """Class logits and per-class deltas of ``rois (B, R, 4)``."""
        return self.box_predictor(self.box_head(self.box_roi_align(feats[:4], rois)))

    def mask_branch(self, feats, rois):
        """28x28 mask logits per class, ``(B, R, 28, 28, K + 1)``."""
        return self.mask_predictor(self.mask_head(self.mask_roi_align(feats[:4], rois)))

    # ---------------------------------------------------------------- inference
    def call(self, images, training=False):
        size = (self.config.image_size, self.config.image_size)
        feats = self.features(images, training=False)
        logits, deltas = self.rpn_head(feats)
        proposals, _, valid = propose(
            logits, deltas, self.level_anchors, size, self.test_proposals, self.rpn_coder
        )
        class_logits, box_deltas = self.box_branch(feats, proposals)
        boxes, scores, labels, num = detect(
            class_logits, box_deltas, proposals, valid, size, self.detection
        )
        mask_logits = self.mask_branch(feats, boxes)
        own = tf.gather(tf.transpose(mask_logits, (0, 1, 4, 2, 3)), labels, batch_dims=2)
        roi_masks = tf.sigmoid(own)
        full = paste_masks(roi_masks, boxes, size)
        present = tf.range(self.config.detections_per_image)[None, :] < num[:, None]
        masks = tf.cast((full >= self.config.mask_threshold) & present[:, :, None, None], tf.uint8)
        return {
            "boxes": boxes,
            "scores": scores,
            "labels": labels,
            "num_detections": num,
            "roi_masks": roi_masks,
            "masks": masks,
        }

    # ---------------------------------------------------------------- training
    def compute_losses(self, batch, training=True):
        """The five Mask R-CNN losses of a batch, as a dict (see :mod:`.losses`)."""
        c = self.config
        size = (c.image_size, c.image_size)
        gt_boxes = tf.cast(batch["boxes"], tf.float32)
        gt_classes = tf.cast(batch["classes"], tf.int32)
        gt_valid = gt_classes > 0
        feats = self.features(batch["images"], training=training)
        logits, deltas = self.rpn_head(feats)

        # RPN: match every anchor, sample rpn_batch of them (Ren et al. 2015, §3.1.2).
        anchors = tf.constant(self.anchor_generator.anchors(size))
        matched, labels = self.rpn_matcher.match(anchors[None], gt_boxes, gt_valid)
        idx, ok = sample(labels, c.rpn_batch, c.rpn_positive_fraction)
        rpn_targets = self.rpn_coder.encode(
            tf.gather(gt_boxes, tf.gather(matched, idx, batch_dims=1), batch_dims=1),
            tf.gather(anchors, idx),
        )
        rpn_obj, rpn_box = rpn_loss(
            tf.gather(tf.concat(logits, 1), idx, batch_dims=1),
            tf.gather(tf.concat(deltas, 1), idx, batch_dims=1),
            tf.gather(labels, idx, batch_dims=1),
            rpn_targets,
            ok,
        )

        # R-CNN: proposals plus the ground-truth boxes, matched (roi_fg_iou / roi_bg_iou), sampled.
        proposals, _, valid = propose(
            logits, deltas, self.level_anchors, size, self.train_proposals, self.rpn_coder
        )
        proposals = tf.concat([proposals, gt_boxes], axis=1)
        valid = tf.concat([valid, gt_valid], axis=1)
        matched, labels = self.roi_matcher.match(proposals, gt_boxes, gt_valid, valid)
        idx, ok = sample(labels, c.roi_batch, c.roi_positive_fraction)
        rois = tf.stop_gradient(tf.gather(proposals, idx, batch_dims=1))
        roi_gt = tf.gather(matched, idx, batch_dims=1)
        is_fg = tf.gather(labels, idx, batch_dims=1) == 1
        roi_classes = tf.where(is_fg, tf.gather(gt_classes, roi_gt, batch_dims=1), 0)
        box_targets = self.rcnn_coder.encode(tf.gather(gt_boxes, roi_gt, batch_dims=1), rois)
        class_logits, box_deltas = self.box_branch(feats, rois)
        rcnn_cls, rcnn_box = rcnn_loss(class_logits, box_deltas, roi_classes, box_targets, ok)

        # Mask: the sampler puts positives first, so the first k_pos RoIs hold all of them.
        k_pos = int(c.roi_batch * c.roi_positive_fraction)
        if c.mask_roi_batch is not None:
            k_pos = min(k_pos, c.mask_roi_batch)  # positives are in random order: a fair subset
        mask_rois = rois[:, :k_pos]
        targets = mask_targets(
            batch["masks"], roi_gt[:, :k_pos], mask_rois, xla_friendly=c.xla_friendly
        )
        loss_mask = mask_loss(
            self.mask_branch(feats, mask_rois), roi_classes[:, :k_pos], targets, ok[:, :k_pos]
        )
        return dict(zip(LOSS_NAMES, (rpn_obj, rpn_box, rcnn_cls, rcnn_box, loss_mask), strict=True))

    def _record(self, losses):
        total = tf.add_n(list(losses.values()))
        self.trackers["loss"].update_state(total)
        for name, value in losses.items():
            self.trackers[name].update_state(value)
        return {name: t.result() for name, t in self.trackers.items()}

    def compile(self, *args, **kwargs):
        super().compile(*args, **kwargs)
        # Optimiser variables made now, not inside the first step: a tf.function that creates
        # variables is traced twice, and one trace of this step costs ~15 s on a CPU.
        if self.optimizer is not None and not self.optimizer.built:
            self.optimizer.build(self.trainable_variables)

    def train_step(self, data):
        with tf.GradientTape() as tape:
            losses = self.compute_losses(data, training=True)
            total = tf.add_n(list(losses.values()))
            # LossScaleOptimizer (mixed_float16: compile wraps the optimiser) scales here and
            # unscales in apply(); any other optimiser returns the loss unchanged.
            scaled = self.optimizer.scale_loss(scale_for_replicas(total))
        grads = tape.gradient(scaled, self.trainable_variables)
        self.optimizer.apply(grads, self.trainable_variables)
        return self._record(losses)

    def test_step(self, data):
        return self._record(self.compute_losses(data, training=False))

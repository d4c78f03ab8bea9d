"""Paper 05's affinity model: Mask R-CNN plus an image classifier on ranked lesion-mask features.

Fig. 1 of Ter-Sarkisov 2021: backbone -> RPN -> (detection, segmentation) branches trained as in
Mask R-CNN, and an image path: proposals -> the non-trainable classification branch (§3, weights
copied by :class:`~.affinity_branches.DetectionWeightCopy`) -> RoI batch selection (B = 8,
:mod:`.roi_selection`) -> the mask-features branch (B x 28 x 28 x C) -> the affinity layer ->
3 logits (COVID, CP, Normal). Loss (eq. 6): Mask R-CNN's segmentation losses + per-class binary
cross-entropy on the 3 logits (eq. 7, summed over classes).

Batches are those of :class:`MaskRCNN` plus ``"label" (N,)`` int32 image class (-1: none, a
segmentation-only slice) and optionally ``"segmented" (N,)`` (0: no lesion masks, the segmentation
losses are switched off, as for the paper's COVIDx-CT classification slices). The paper trains
segmentation on 750 lesion slices and classification on 3,000 other slices; here one batch
carries both targets where it can (phantoms have both; real lesion slices come with label -1),
and a lesion-free slice with ``segmented`` 1 (or absent) trains the detector on negatives only.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import keras
import tensorflow as tf

from kerassev.distribute import scale_for_replicas
from kerassev.models.detection.affinity import AffinityLayer
from kerassev.models.detection.affinity_branches import (
    ClassificationBranch,
    MaskFeatures,
    copy_branch_weights,
)
from kerassev.models.detection.mask_rcnn import MaskRCNN
from kerassev.models.detection.roi_selection import RoISelectionConfig, classification_rois
from kerassev.models.detection.rpn import propose

IMAGE_CLASSES = ("covid", "cp", "normal")  # the CT phantom kinds, in their order


@dataclass(frozen=True)
class AffinityConfig:
    affinities: int = 256  # A; the paper tests 32, 64, 128, 256, 512
    sieve_stages: int = 3
    roi_batch: int = 8  # B
    roi_nms: float = 0.25
    roi_min_size: float = 1e-2
    feature_channels: int = 256  # C of the lesion-mask features
    hidden: int = 128  # width of the two FC layers (not in the paper; the author's code: 128)
    vectorise: str = "conv"  # the author's conv vectorisation; "mean": a spatial mean
    affinity_init: str = "normal"  # W1, w2 ~ N(0, 1) as the author's torch.randn; or "glorot"
    num_image_classes: int = len(IMAGE_CLASSES)


@keras.saving.register_keras_serializable(package="kerassev")
class AffinityMaskRCNN(MaskRCNN):
    def __init__(self, config=None, affinity: AffinityConfig | dict | None = None, **kwargs):
        super().__init__(config, **kwargs)
        if isinstance(affinity, dict):
            affinity = AffinityConfig(**affinity)
        self.affinity_config = a = affinity or AffinityConfig()
        self.roi_selection = RoISelectionConfig(a.roi_batch, a.roi_nms, a.roi_min_size)
        c = self.config
        self.classification_branch = ClassificationBranch(
            c.num_classes, c.representation_size, name="classification_branch"
        )
        self.mask_features = MaskFeatures(a.feature_channels, name="mask_features")
        self.affinity = AffinityLayer(
            a.affinities, a.sieve_stages, a.hidden, a.num_image_classes,
            vectorise=a.vectorise, affinity_init=a.affinity_init, name="affinity",
        )  # fmt: skip
        self.image_loss_fn = keras.losses.BinaryCrossentropy(from_logits=True, reduction=None)
        for name in ("segmentation_loss", "image_class"):
            self.trackers[name] = keras.metrics.Mean(name=name)
        self._last_features = None
        rois = tf.zeros((1, a.roi_batch, 7, 7, c.fpn_channels))
        self.classification_branch(rois)
        # the author's model starts the classification branch as a copy of the detector's box
        # branch; without this, the first epoch selects RoIs with random weights (fault 7)
        copy_branch_weights([self.box_head, self.box_predictor], [self.classification_branch])
        feats = self.mask_features(tf.zeros((1, a.roi_batch, 14, 14, c.fpn_channels)))
        self.affinity(feats)

    def get_config(self):
        return {**super().get_config(), "affinity": dataclasses.asdict(self.affinity_config)}

    def features(self, images, training=False):
        # Kept for the image path of the same step, so the backbone runs once per batch.
        self._last_features = super().features(images, training=training)
        return self._last_features

    def image_logits(self, feats, training=False):
        """``(logits (N, 3), X2 (N, A, C), selected boxes (N, B, 4))`` from FPN levels."""
        size = (self.config.image_size, self.config.image_size)
        rpn_logits, rpn_deltas = self.rpn_head(feats)
        proposals, _, valid = propose(
            rpn_logits, rpn_deltas, self.level_anchors, size, self.test_proposals, self.rpn_coder
        )
        cls_logits, cls_deltas = self.classification_branch(
            self.box_roi_align(feats[:4], proposals)
        )
        boxes, _, _, _ = classification_rois(
            cls_logits, cls_deltas, proposals, valid, size, self.roi_selection
        )
        boxes = tf.stop_gradient(boxes)
        lesion_features = self.mask_features(self.mask_roi_align(feats[:4], boxes))
        logits, x2 = self.affinity(lesion_features, training=training)
        return logits, x2, boxes

    def image_loss(self, labels, logits):
        """Eq. 7: one binary cross-entropy per class on its logit, summed, mean over images.

        A label < 0 marks a slice without an image class (a segmentation-only slice, as the
        paper's 750 lesion slices): it adds nothing to this loss; a batch of only such slices
        gives 0.
        """
        labels = tf.cast(labels, tf.int32)
        onehot = tf.one_hot(tf.maximum(labels, 0), self.affinity_config.num_image_classes)
        per_class = self.image_loss_fn(onehot[..., None], logits[..., None])  # (N, classes)
        labelled = tf.cast(labels >= 0, per_class.dtype)
        total = tf.reduce_sum(tf.reduce_sum(per_class, axis=-1) * labelled)
        return total / tf.maximum(tf.reduce_sum(labelled), 1.0)

    def call(self, images, training=False):
        out = super().call(images, training=False)
        logits, x2, boxes = self.image_logits(self._last_features, training=False)
        return {
            **out,
            "class_logits": logits,
            "class_probs": tf.sigmoid(logits),
            "affinity_x2": x2,
            "selected_boxes": boxes,
        }

    def _step_losses(self, data, training):
        losses = self.compute_losses(data, training=training)
        logits, _, _ = self.image_logits(self._last_features, training=training)
        segmentation = tf.add_n(list(losses.values()))
        if "segmented" in data:  # 0: a slice without lesion masks (a classification-only slice)
            # Exact at the paper's batch size 1; a batch mean weight otherwise.
            segmentation *= tf.reduce_mean(tf.cast(data["segmented"], segmentation.dtype))
        image = self.image_loss(data["label"], logits)
        return losses, segmentation, image

    def _record_all(self, losses, segmentation, image):
        self.trackers["loss"].update_state(segmentation + image)
        self.trackers["segmentation_loss"].update_state(segmentation)
        self.trackers["image_class"].update_state(image)
        for name, value in losses.items():
            self.trackers[name].update_state(value)
        return {name: t.result() for name, t in self.trackers.items()}

    def train_step(self, data):
        with tf.GradientTape() as tape:
            losses, segmentation, image = self._step_losses(data, training=True)
            total = segmentation + image  # eq. 6
            # per-replica share, then loss scaling under mixed_float16
            scaled = self.optimizer.scale_loss(scale_for_replicas(total))
        grads = tape.gradient(scaled, self.trainable_variables)
        self.optimizer.apply(grads, self.trainable_variables)
        return self._record_all(losses, segmentation, image)

    def test_step(self, data):
        return self._record_all(*self._step_losses(data, training=False))

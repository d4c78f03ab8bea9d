"""Mask R-CNN with a ResNet-50-FPN backbone, split by role as torchvision's detection package.

anchors (AnchorGenerator) -> fpn (backbone P2-P6) -> rpn (head, proposals) -> matcher (IoU
matching, balanced sampling) -> roi_align (multi-level RoIAlign) -> heads (box, mask) -> losses
-> postprocess (detections, pasted masks); mask_rcnn assembles them into a trainable keras.Model.
"""

from kerassev.models.detection.mask_rcnn import LOSS_NAMES, MaskRCNN, MaskRCNNConfig

__all__ = ["LOSS_NAMES", "MaskRCNN", "MaskRCNNConfig"]

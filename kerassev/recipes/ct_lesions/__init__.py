"""Issue 9: Mask R-CNN lesion segmentation on the real ct_lesions CT slices (paper 05's detector).

config (presets) -> data (slices, instances, letterbox, padded batches) -> reproduce (train,
evaluate, figure, export) with evaluate (COCO AP, Dice / IoU), figures and export.
"""

from .config import PRESETS, RUN_KIND, CtLesionsConfig
from .reproduce import reproduce

__all__ = ["PRESETS", "RUN_KIND", "CtLesionsConfig", "reproduce"]

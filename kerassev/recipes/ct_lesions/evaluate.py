"""Test-set evaluation of a trained detector: predictions at slice resolution, COCO AP, Dice/IoU.

Predictions are made on letterboxed slices and mapped back to each slice's own size, so AP is
measured against the original masks: each detection's 28x28 mask *probabilities* are pasted into
its box at the slice's resolution and thresholded there (torchvision's paste_masks_in_image;
issue 19 fault 5: binarising at model resolution, then upsampling, loses thin structures and
puts edges on the model's grid). Tables: segmentation and box AP (pooled COCO; per-image mean
with paper 05's negative-image rule), and the union-mask Dice / IoU per slice.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import tensorflow as tf

from kerassev.evaluation.coco import (
    coco_ap,
    coco_detections,
    coco_ground_truth,
    per_image_ap,
    union_overlap,
)
from kerassev.models.detection.postprocess import paste_masks

from .config import PAPER_SEGM_AP, CtLesionsConfig
from .data import Slice, letterbox, letterbox_scale


@dataclass
class Prediction:
    masks: np.ndarray  # (D, H, W) bool at the slice's resolution
    boxes: np.ndarray  # (D, 4) [y1, x1, y2, x2] slice pixels
    scores: np.ndarray
    labels: np.ndarray


def predictor(call, image_size: int, mask_threshold: float = 0.5):
    """``fn(image (H, W) in [0, 1]) -> Prediction`` from ``call`` (a traced MaskRCNN call or an
    exported ``serve`` endpoint) taking letterboxed ``(1, S, S, 1)`` batches."""
    return lambda image: _predict(call, image, image_size, mask_threshold)


def slice_masks(roi_masks, boxes, shape, threshold: float = 0.5, chunk: int = 16) -> np.ndarray:
    """``(D, H, W)`` bool: ``roi_masks (D, M, M)`` probabilities pasted into ``boxes (D, 4)``
    (slice pixels) at the slice's ``shape`` and thresholded there, ``chunk`` at a time."""
    roi_masks = np.asarray(roi_masks, np.float32)
    boxes = np.asarray(boxes, np.float32)
    out = np.zeros((len(boxes), *shape), bool)
    for i in range(0, len(boxes), chunk):
        probs = paste_masks(roi_masks[None, i : i + chunk], boxes[None, i : i + chunk], shape)
        out[i : i + chunk] = probs[0].numpy() >= threshold
    return out


def _predict(call, image: np.ndarray, size: int, threshold: float) -> Prediction:
    out = call(tf.constant(letterbox(image, size)[None, ..., None]))
    n = int(out["num_detections"][0])
    boxes = np.asarray(out["boxes"][0, :n]) / letterbox_scale(image.shape, size)
    return Prediction(
        masks=slice_masks(np.asarray(out["roi_masks"][0, :n]), boxes, image.shape, threshold),
        boxes=boxes,
        scores=np.asarray(out["scores"][0, :n]),
        labels=np.asarray(out["labels"][0, :n]),
    )


def ground_truth(slices: list[Slice], class_names) -> dict:
    return coco_ground_truth(
        [
            (s.slice_id, Path(s.path).name, s.instances.masks, s.instances.classes,
             s.instances.boxes)
            for s in slices
        ],
        class_names,
    )  # fmt: skip


def detections(slices: list[Slice], preds: list[Prediction]) -> list[dict]:
    out = []
    for s, p in zip(slices, preds, strict=True):
        out += coco_detections(s.slice_id, p.masks, p.boxes, p.scores, p.labels)
    return out


def evaluate(slices, preds, config: CtLesionsConfig, class_names):
    """``(ap_table, per_slice, results)``: the AP table, a per-slice frame and the COCO results."""
    gt = ground_truth(slices, class_names)
    results = detections(slices, preds)
    segm = coco_ap(gt, results, "segm")
    bbox = coco_ap(gt, results, "bbox")
    per_mean, per = per_image_ap(gt, results, "segm", negative_rule=config.negative_rule)
    rule = "paper's negative-image rule" if config.negative_rule else "images with lesions only"
    rows = [
        ("segm, pooled COCO", segm, PAPER_SEGM_AP["AP"]),
        (f"segm, mean per slice ({rule})", per_mean, PAPER_SEGM_AP["AP"]),
        ("bbox, pooled COCO", bbox, None),
    ]
    table = pd.DataFrame(
        [
            {
                "evaluation": name,
                "AP@[.5:.95]": round(v["AP"], 3),
                "AP50": round(v["AP50"], 3),
                "AP75": round(v["AP75"], 3),
                "paper: AP@[.5:.95]": paper,
            }
            for name, v, paper in rows
        ]
    )
    keeps = [p.scores >= config.union_score_threshold for p in preds]
    unions = [
        p.masks[keep].any(0) if keep.any() else np.zeros(s.image.shape, bool)
        for s, p, keep in zip(slices, preds, keeps, strict=True)
    ]
    frame = slice_overlaps(slices, unions)
    frame.insert(3, "detections", [len(p.scores) for p in preds])
    frame.insert(4, "confident", [int(k.sum()) for k in keeps])
    frame["segm_AP"] = [per.get(s.slice_id, {}).get("AP", np.nan) for s in slices]
    return table, frame, results


def slice_overlaps(slices: list[Slice], unions: list[np.ndarray]) -> pd.DataFrame:
    """Per slice, the Dice / IoU of a predicted lesion mask (at the slice's resolution) with the
    union of its true lesions: the union Dice, whose mean over slices is Inf-Net's mean Dice.
    Shared by the detector and the U-Net comparator (``unet_stage``)."""
    records = []
    for s, union in zip(slices, unions, strict=True):
        dice, iou = union_overlap(union, s.instances.union)
        records.append(
            {"slice_id": s.slice_id, "file": Path(s.path).name, "lesions": len(s.instances),
             "dice": dice, "iou": iou}
        )  # fmt: skip
    return pd.DataFrame(records)


def overlap_table(per_slice: pd.DataFrame, threshold: float) -> pd.DataFrame:
    """Mean, sd and median union-mask Dice and IoU over slices."""
    rows = []
    for metric in ("dice", "iou"):
        v = per_slice[metric]
        rows.append(
            {
                "metric": f"union-mask {metric} (detections with score >= {threshold})",
                "mean": round(float(v.mean()), 3),
                "sd": round(float(v.std(ddof=1)), 3) if len(v) > 1 else np.nan,
                "median": round(float(v.median()), 3),
                "slices": len(v),
            }
        )
    return pd.DataFrame(rows)

"""COCO-style evaluation of instance segmentation with pycocotools (Lin et al. 2014).

- :func:`coco_ground_truth` / :func:`coco_detections`: instances and detections as COCO dicts,
  masks run-length encoded, boxes ``[x, y, w, h]``;
- :func:`coco_ap`: pooled AP at IoU 0.5, 0.75 and 0.5:0.95 for ``"segm"`` or ``"bbox"``
  (``COCOeval`` with its defaults: 101-point interpolation, up to 100 detections an image);
- :func:`per_image_ap`: the same AP per image and its mean, with paper 05's rule for images
  without lesions as an option (precision 0 with any detection, 1 with none; §4.2);
- :func:`union_overlap`: Dice and IoU of the union of predicted vs true masks, per image.
"""

from __future__ import annotations

import contextlib
import copy
import io

import numpy as np
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

AP_KEYS = ("AP", "AP50", "AP75")  # COCOeval.stats[0:3]


def _rle(mask: np.ndarray) -> dict:
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    rle["counts"] = rle["counts"].decode("ascii")  # JSON-serialisable
    return rle


def _xywh(box) -> list[float]:
    y1, x1, y2, x2 = (float(v) for v in box)
    return [x1, y1, x2 - x1, y2 - y1]


def coco_ground_truth(images, class_names) -> dict:
    """``images``: ``(image_id, file_name, masks (N, H, W), classes (N,), boxes (N, 4) yxyx)``."""
    out = {
        "images": [],
        "annotations": [],
        "categories": [{"id": i + 1, "name": n} for i, n in enumerate(class_names)],
    }
    for image_id, file_name, masks, classes, boxes in images:
        h, w = masks.shape[1:] if masks.ndim == 3 else (0, 0)
        out["images"].append({"id": int(image_id), "file_name": file_name, "height": int(h),
                              "width": int(w)})  # fmt: skip
        for m, c, b in zip(masks, classes, boxes, strict=True):
            out["annotations"].append(
                {
                    "id": len(out["annotations"]) + 1,
                    "image_id": int(image_id),
                    "category_id": int(c),
                    "segmentation": _rle(m),
                    "area": float(m.sum()),
                    "bbox": _xywh(b),
                    "iscrowd": 0,
                }
            )
    return out


def coco_detections(image_id: int, masks, boxes, scores, labels) -> list[dict]:
    """COCO results entries of one image's detections (masks binary ``(D, H, W)``)."""
    return [
        {
            "image_id": int(image_id),
            "category_id": int(c),
            "segmentation": _rle(m),
            "bbox": _xywh(b),
            "score": float(s),
        }
        for m, b, s, c in zip(masks, boxes, scores, labels, strict=True)
    ]


def _evaluate(gt: dict, results: list[dict], iou_type: str, image_ids=None) -> np.ndarray:
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress
        coco_gt = COCO()
        coco_gt.dataset = copy.deepcopy(gt)
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(copy.deepcopy(results)) if results else COCO()
        if not results:
            coco_dt.dataset = {"images": gt["images"], "annotations": [], "categories":
                               gt["categories"]}  # fmt: skip
            coco_dt.createIndex()
        ev = COCOeval(coco_gt, coco_dt, iou_type)
        if image_ids is not None:
            ev.params.imgIds = list(image_ids)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    # COCOeval reports -1 where nothing is defined (no ground truth): none here count as 0.
    return np.maximum(ev.stats[:3], 0.0)


def coco_ap(gt: dict, results: list[dict], iou_type: str = "segm") -> dict[str, float]:
    """Pooled COCO AP, AP50, AP75 over every image of ``gt``."""
    if not any(True for _ in gt["annotations"]):
        raise ValueError("ground truth has no instances: COCO AP is undefined")
    return dict(zip(AP_KEYS, map(float, _evaluate(gt, results, iou_type)), strict=True))


def per_image_ap(
    gt: dict, results: list[dict], iou_type: str = "segm", *, negative_rule: bool = True
) -> tuple[dict[str, float], dict[int, dict[str, float]]]:
    """Mean over images of each image's AP; with ``negative_rule`` an image without ground truth
    scores 1 when it has no detection and 0 otherwise (paper 05), else it is left out."""
    with_gt = {a["image_id"] for a in gt["annotations"]}
    dets: dict[int, list[dict]] = {}
    for r in results:
        dets.setdefault(r["image_id"], []).append(r)
    per: dict[int, dict[str, float]] = {}
    for img in gt["images"]:
        i = img["id"]
        if i in with_gt:
            ap = _evaluate(gt, dets.get(i, []), iou_type, image_ids=[i])
            per[i] = dict(zip(AP_KEYS, map(float, ap), strict=True))
        elif negative_rule:
            per[i] = dict.fromkeys(AP_KEYS, 0.0 if dets.get(i) else 1.0)
    mean = {k: float(np.mean([v[k] for v in per.values()])) if per else float("nan")
            for k in AP_KEYS}  # fmt: skip
    return mean, per


def union_overlap(pred: np.ndarray, true: np.ndarray) -> tuple[float, float]:
    """``(dice, iou)`` of two binary masks; both empty counts as a perfect 1."""
    pred, true = pred.astype(bool), true.astype(bool)
    inter = np.logical_and(pred, true).sum()
    total = pred.sum() + true.sum()
    union = np.logical_or(pred, true).sum()
    if total == 0:
        return 1.0, 1.0
    return float(2 * inter / total), float(inter / union)

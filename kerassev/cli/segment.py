"""``kerassev segment MODEL FILES... --out DIR``: lesion masks from an exported segmenter.

MODEL is the ``export`` folder (or its ``segmenter_savedmodel``) of ``kerassev reproduce
ct-lesions``; FILES are PNG/JPEG slices or folders of them. For each slice it writes
``<stem>_mask.png`` (pixel value = class index of the best-scoring confident detection, 0
background) and, for all slices, ``results.json`` (COCO results: RLE masks, xywh boxes, scores)
with ``images.json`` naming the image ids. Unreadable files are skipped and listed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from kerassev.cli import UserError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def register(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "segment",
        help="segment lesions in CT slices with an exported Mask R-CNN",
        description=__doc__.splitlines()[0],
    )
    p.add_argument("model", help="export folder written by `kerassev reproduce ct-lesions`")
    p.add_argument("files", nargs="+", help="PNG/JPEG slices or folders of them")
    p.add_argument("--out", required=True, help="output folder (must not hold earlier results)")
    p.add_argument(
        "--score-threshold",
        type=float,
        default=0.5,
        help="detections drawn into the mask PNGs (all detections go to results.json)",
    )
    p.set_defaults(func=run_segment)
    return p


def _collect(items: list[str]) -> list[Path]:
    files = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            files += sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        elif path.is_file():
            files.append(path)
        else:
            raise UserError(f"{item}: no such file or folder")
    if not files:
        raise UserError("no PNG/JPEG slices found in " + ", ".join(items))
    return files


def run_segment(args: argparse.Namespace) -> int:
    import numpy as np
    from PIL import Image

    from kerassev.evaluation.coco import coco_detections
    from kerassev.recipes.ct_lesions.data import read_gray
    from kerassev.recipes.ct_lesions.evaluate import predictor
    from kerassev.recipes.ct_lesions.export import load_segmenter

    files = _collect(args.files)
    out = Path(args.out)
    if (out / "results.json").exists():
        raise UserError(f"{out / 'results.json'} exists; refusing to overwrite results")
    try:
        serve, meta = load_segmenter(args.model)
    except (FileNotFoundError, OSError) as err:
        raise UserError(str(err)) from err
    predict = predictor(serve, int(meta["input"]["image_size"]))
    out.mkdir(parents=True, exist_ok=True)
    results, images, skipped = [], [], []
    for image_id, path in enumerate(files, start=1):
        try:
            image = read_gray(path)
        except ValueError as err:
            skipped.append(str(err))
            continue
        p = predict(image)
        label = np.zeros(image.shape, np.uint8)
        for i in np.argsort(p.scores)[::-1]:  # best first; a pixel keeps its best detection
            if p.scores[i] >= args.score_threshold:
                label[(label == 0) & p.masks[i]] = p.labels[i]
        Image.fromarray(label).save(out / f"{path.stem}_mask.png")
        results += coco_detections(image_id, p.masks, p.boxes, p.scores, p.labels)
        h, w = image.shape
        images.append({"id": image_id, "file_name": str(path), "height": h, "width": w})
        print(f"{path.name}: {int((p.scores >= args.score_threshold).sum())} lesion(s)")
    (out / "results.json").write_text(json.dumps(results))
    (out / "images.json").write_text(
        json.dumps({"images": images, "class_names": meta["class_names"]}, indent=1)
    )
    for message in skipped:
        print(f"skipped: {message}", file=sys.stderr)
    print(f"{len(images)} slice(s) segmented into {out}")
    return 1 if skipped and not images else 0

"""``kerassev segment EXPORT FILES... --out DIR``: lesion masks from an exported segmenter.

EXPORT is any form of a segmentation export (the ``export`` folder of ``kerassev reproduce
ct-lesions``, its ``segmenter.keras`` or ``segmenter_savedmodel``, or paper 05's affinity model);
FILES are PNG/JPEG slices or folders of them. For each slice it writes ``<stem>_mask.png`` (pixel
value = class index of the best-scoring confident detection, 0 background); for all slices
``slices.csv`` and ``slices.json`` (one row a slice: lesions found, lesion area in pixels, per
class too, and the image-class probabilities of an affinity model), ``results.json`` (COCO
results: RLE masks, xywh boxes, scores) and ``images.json`` naming the image ids. Unreadable
files are skipped and listed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from kerassev.cli import UserError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg"}
OUTPUT_FILES = ("results.json", "images.json", "slices.csv", "slices.json")


def register(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "segment",
        help="segment lesions in CT slices with an exported Mask R-CNN",
        description=__doc__.splitlines()[0],
    )
    p.add_argument("model", help="a segmentation export: folder, .keras or SavedModel folder")
    p.add_argument("files", nargs="+", help="PNG/JPEG slices or folders of them")
    p.add_argument("--out", required=True, help="output folder (must not hold earlier results)")
    p.add_argument(
        "--score-threshold",
        type=float,
        default=0.5,
        help="detections drawn into the masks and counted in slices.csv (all go to results.json)",
    )
    p.set_defaults(func=run_segment)
    return p


def _collect(items: list[str]) -> tuple[list[Path], list[str]]:
    from kerassev.inference import collect_files

    files, bad = collect_files(items, IMAGE_SUFFIXES, "PNG/JPEG")
    for item, why in bad.items():
        if why.startswith("no such"):
            raise UserError(f"{item}: {why}")
    if not files:
        raise UserError("no PNG/JPEG slices found in " + ", ".join(items))
    return files, [f"{item}: {why}" for item, why in bad.items()]


def slice_row(path, label, lesions, class_names, probs, image_class_names) -> dict:
    """One ``slices.csv`` row: lesions drawn, lesion area (pixels) in all and per class."""
    row = {"path": str(path), "lesions": int(lesions)}
    row["lesion_area_px"] = int((label > 0).sum())
    for k, name in enumerate(class_names[1:], start=1):
        row[f"area_px_{name}"] = int((label == k).sum())
    if probs is not None:
        row.update({f"p_{n}": float(v) for n, v in zip(image_class_names, probs, strict=True)})
        row["predicted_class"] = image_class_names[int(probs.argmax())]
    return row


def run_segment(args: argparse.Namespace) -> int:
    import numpy as np
    import pandas as pd
    from PIL import Image

    from kerassev.evaluation.coco import coco_detections
    from kerassev.inference import load_export
    from kerassev.recipes.ct_lesions.data import read_gray
    from kerassev.recipes.ct_lesions.evaluate import predictor

    if not 0 <= args.score_threshold <= 1:
        raise UserError(f"--score-threshold must be in [0, 1], got {args.score_threshold}")
    files, skipped = _collect(args.files)
    out = Path(args.out)
    for name in OUTPUT_FILES:
        if (out / name).exists():
            raise UserError(f"{out / name} exists; refusing to overwrite results")
    try:
        export = load_export(args.model, command="segment")
    except (ValueError, OSError) as err:
        raise UserError(str(err).splitlines()[0]) from err
    meta = export.metadata
    last: dict = {}

    def call(x):  # keeps the whole output: an affinity model's class_probs too
        last.update(export.predict(x))
        return last

    # soft masks pasted at each slice's own resolution, thresholded there (issue 19 fault 5)
    cut = 0.5 if meta.mask_threshold is None else meta.mask_threshold
    predict = predictor(call, meta.input_size, cut)
    out.mkdir(parents=True, exist_ok=True)
    results, images, rows = [], [], []
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
        n = int((p.scores >= args.score_threshold).sum())
        probs = np.asarray(last["class_probs"])[0] if "class_probs" in last else None
        rows.append(slice_row(path, label, n, meta.class_names, probs, meta.image_class_names))
        print(f"{path.name}: {n} lesion(s)")
    (out / "results.json").write_text(json.dumps(results))
    (out / "images.json").write_text(
        json.dumps({"images": images, "class_names": list(meta.class_names)}, indent=1)
    )
    table = pd.DataFrame(rows)
    table.to_csv(out / "slices.csv", index=False)
    (out / "slices.json").write_text(table.to_json(orient="records", indent=1))
    for message in skipped:
        print(f"skipped: {message}", file=sys.stderr)
    if not images:
        raise UserError(f"no slice could be read ({len(skipped)} skipped)")
    print(f"{len(images)} slice(s) segmented into {out}")
    return 0

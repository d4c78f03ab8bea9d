"""Issue 19's U-Net comparator alone at the ``cpu`` preset on the real ct_lesions split.

Trains and scores the U-Net stage (``kerassev.recipes.ct_lesions.unet_stage.run_unet``) in a
fresh run folder, without retraining the detector; ``--detector-run`` (a finished
``kerassev reproduce ct-lesions --preset cpu`` run) adds its Mask R-CNN per-slice Dice, so the
table has both rows and their paired difference on the same 48 test slices.

    KERASSEV_DATA=/work/shared/data nice -n 5 .venv/bin/python docs/results/ct_lesions_unet_cpu.py \
        --out /tmp/unet_cpu --detector-run /tmp/ctruns/20261204-011716_ct_lesions
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pandas as pd  # noqa: E402

from kerassev.precision import runs_in_configured_precision  # noqa: E402
from kerassev.recipes.ct_lesions import CtLesionsConfig  # noqa: E402
from kerassev.recipes.ct_lesions.data import intensity_stats, load_slices  # noqa: E402
from kerassev.recipes.ct_lesions.reproduce import _compile  # noqa: E402
from kerassev.recipes.ct_lesions.unet_stage import UNET_ROW, run_unet  # noqa: E402
from kerassev.runs import RunFolder  # noqa: E402
from kerassev.stats.tables import to_markdown  # noqa: E402


@runs_in_configured_precision
def main(config: CtLesionsConfig, args) -> dict:
    started = time.perf_counter()
    slices = load_slices(config)
    mean, std = intensity_stats(slices["train"])  # the detector's statistics
    if args.resume:
        run = RunFolder.resume(args.out, "ct_lesions_unet", config=config)
    else:
        run = RunFolder.create(args.out, "ct_lesions_unet", config=config, seed=config.seed)
    detector = None
    if args.detector_run:
        detector = pd.read_csv(Path(args.detector_run) / "per_slice.csv")
    out = run_unet(
        config, slices, run, mean=mean, std=std, detector_compile=_compile(config),
        detector_per_slice=detector, verbose=2,
    )  # fmt: skip
    seconds = time.perf_counter() - started
    unet_row = out["dice_table"].set_index("model").loc[UNET_ROW]
    run.mark_complete(
        union_dice=float(unet_row["union Dice (mean over slices)"]),
        wall_seconds=round(seconds, 1),
        detector_run=args.detector_run,
    )
    print(to_markdown(out["dice_table"]))
    print(json.dumps({"run": str(run.path), "wall_s": round(seconds, 1),
                      "stage_seconds": run.info.get("stage_seconds")}))  # fmt: skip
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="/tmp/unet_cpu")
    parser.add_argument("--detector-run", help="a finished cpu-preset ct-lesions run folder")
    parser.add_argument("--epochs", type=int, help="unet_epochs (default: the detector's)")
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args()
    overrides = {} if args.epochs is None else {"unet_epochs": args.epochs}
    main(CtLesionsConfig.cpu(**overrides), args)

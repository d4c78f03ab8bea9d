"""Two-view input-pipeline throughput at 224 px (mRALE policy, batch 32, ImageNet preprocessing).

Sources: raw DICOM decoded on every pass (cold, ``cache_decoded=False``), the decoded cache (warm
16-bit PNGs), and 8-bit PNG. The DICOMs are real-sized 1024x1024 12-bit uncompressed files written
with pydicom from a real RSNA radiograph (../shared/data/dicom) when present, else a synthetic one,
with a per-file marker row so every file has its own content hash. Besides wall-clock images/s it
prints images per CPU-second of this process, which is less sensitive to other load on the machine.

    .venv/bin/python benchmarks/pipeline.py --n 64 --batches 8
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import tensorflow as tf  # noqa: E402
from PIL import Image  # noqa: E402
from pydicom import dcmread  # noqa: E402
from pydicom.uid import JPEG2000Lossless  # noqa: E402

from kerassev import config  # noqa: E402
from kerassev.data.cache import DecodedCache  # noqa: E402
from kerassev.data.pipeline import PipelineConfig, build_dataset  # noqa: E402
from kerassev.io.dicom_write import write_dicom  # noqa: E402

RSNA = "1.2.276.0.7230010.3.1.4.8323329.6904.1517875201.850819.dcm"


def base_image(size: int = 1024) -> np.ndarray:
    src = config.data_root() / "dicom" / RSNA
    if src.is_file():
        from kerassev.io.dicom import read_dicom

        return read_dicom(src).pixels
    yy, xx = np.mgrid[0:size, 0:size] / size
    return (0.5 + 0.4 * np.sin(6 * xx) * np.cos(4 * yy)).astype(np.float32)


def make_files(root: Path, n: int) -> tuple[list[str], list[str], list[str]]:
    """``n`` distinct images as uncompressed DICOM, JPEG 2000 lossless DICOM and 8-bit PNG."""
    base = base_image()
    dcms, j2ks, pngs = [], [], []
    for i in range(n):
        img = base.copy()
        img[0, : i + 1] = 1.0  # distinct bytes per file
        d, p = root / f"img{i:04d}.dcm", root / f"img{i:04d}.png"
        write_dicom(d, img, bits_stored=12, patient_id=d.stem)
        ds = dcmread(d)
        ds.compress(JPEG2000Lossless)  # pylibjpeg-openjpeg encodes; decoding is ~20x slower
        ds.save_as(j2k := root / f"img{i:04d}_j2k.dcm")
        Image.fromarray(np.rint(img * 255).astype(np.uint8)).save(p, compress_level=1)
        dcms.append(str(d))
        j2ks.append(str(j2k))
        pngs.append(str(p))
    return dcms, j2ks, pngs


def throughput(table: pd.DataFrame, cfg: PipelineConfig, batches: int, cache=None) -> str:
    """'<wall> images/s (<cpu> images/CPU-s)' over ``batches`` batches after one warm-up batch."""
    ds = build_dataset(table, cfg, cache=cache)
    it = iter(ds)
    next(it)  # warm-up: tracing, thread pools
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(batches):
        (v1, _v2) = next(it)
        v1.numpy()
    n = batches * cfg.batch_size
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return f"{n / wall:7.1f} images/s  ({n / cpu:6.1f} images/CPU-s)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=64, help="distinct files per format")
    ap.add_argument("--batches", type=int, default=8, help="timed batches per source")
    ap.add_argument("--batch-size", type=int, default=32)
    args = ap.parse_args()

    cfg = PipelineConfig(
        image_size=224, batch_size=args.batch_size, two_view_policy="mrale", repeat=True, seed=0
    )
    print(f"os.cpu_count()={os.cpu_count()}  tensorflow={tf.__version__}")
    print(f"policy=mrale two views, 224 px, batch {cfg.batch_size}, {args.batches} timed batches")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        dcms, j2ks, pngs = make_files(root, args.n)
        print(
            f"wrote {args.n} DICOM (1024x1024, 12-bit; uncompressed and JPEG 2000) + {args.n} PNG "
            f"in {time.perf_counter() - t0:.1f} s"
        )
        dtab = pd.DataFrame({"path": dcms, "patient_id": "p"})
        jtab = pd.DataFrame({"path": j2ks, "patient_id": "p"})
        ptab = pd.DataFrame({"path": pngs, "patient_id": "p"})

        cold = throughput(dtab, cfg.replace(cache_decoded=False), args.batches)
        print(f"raw DICOM, decoded every pass : {cold}  [two views each]")
        cold_j2k = throughput(jtab, cfg.replace(cache_decoded=False), args.batches)
        print(f"raw JPEG 2000 DICOM, each pass: {cold_j2k}")

        cache = DecodedCache(root / "cache")
        t0 = time.perf_counter()
        report = cache.warm(dcms, workers=2)
        dt = time.perf_counter() - t0
        print(
            f"cache warm (decode + 16-bit PNG write, 2 threads): {args.n / dt:8.1f} files/s ({report.summary()})"
        )
        warm = throughput(dtab, cfg, args.batches, cache=cache)
        print(f"decoded cache (16-bit PNG)    : {warm}")
        png = throughput(ptab, cfg, args.batches)
        print(f"8-bit PNG (1024 px)           : {png}")


if __name__ == "__main__":
    main()

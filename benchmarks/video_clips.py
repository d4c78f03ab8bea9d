"""Clip decoding throughput on the real POCUS videos: full decode vs sampled-frame decode
(``read_clip`` converts only the sampled frames and stops after the last) vs the decoded-clip
cache (warm). Prints videos/s and CPU-seconds, which are less sensitive to other load.

    .venv/bin/python benchmarks/video_clips.py --t 8 --size 112
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from kerassev import config
from kerassev.io.video import ClipReader, read_clip, read_video


def _timed(label: str, fn, paths) -> None:
    wall, cpu = time.perf_counter(), time.process_time()
    for p in paths:
        fn(p)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"{label:<34} {len(paths) / wall:7.1f} videos/s   {cpu:6.1f} CPU-s for {len(paths)}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--t", type=int, default=8)
    ap.add_argument("--size", type=int, default=112)
    ap.add_argument("--limit", type=int, default=None, help="first N videos only")
    args = ap.parse_args()
    root = config.data_root() / "lus_pocus" / "pocus_videos"
    paths = sorted(p for p in root.rglob("*") if p.is_file())[: args.limit]
    if not paths:
        raise SystemExit(f"no videos under {root}")
    _timed("read_video (every frame resized)", lambda p: read_video(p, size=args.size), paths)
    _timed("read_clip (sampled frames only)", lambda p: read_clip(p, args.t, size=args.size), paths)
    with tempfile.TemporaryDirectory() as cache:
        reader = ClipReader(args.t, size=args.size, cache_root=Path(cache))
        _timed("ClipReader cold (decode + cache)", reader.read, paths)
        _timed("ClipReader warm (cached PNG)", reader.read, paths)


if __name__ == "__main__":
    main()

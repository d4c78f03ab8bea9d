"""On-disk cache of decoded DICOM images, keyed by file content.

Each DICOM is decoded once (``kerassev.io.dicom.read_dicom``, frame 0) and stored as a 16-bit
grayscale PNG (``round(x * 65535)``, error < 1e-5) under ``<root>/<key[:2]>/<key>.png``, where
``key = sha256(DECODER_VERSION + file bytes)``. So a changed file is decoded again, a renamed or
copied identical file hits the cache, and bumping :data:`DECODER_VERSION` invalidates everything.
The PNGs are read inside ``tf.data`` graphs with ``tf.io.decode_png`` (parallel, no Python).
Writes go to a temp file in the same folder and ``os.replace`` into place, so concurrent writers
(threads or processes) never expose a partial file.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from kerassev import config

# Bump when decoding changes (windowing, MONOCHROME1 handling, frame choice ...).
DECODER_VERSION = "kerassev-dicom-v1"
_CHUNK = 1 << 20


def _default_decoder(path: Path) -> np.ndarray:
    from kerassev.io.dicom import read_dicom  # imported lazily: optional at import time

    return read_dicom(path, frame=0).pixels


def to_png16(image: np.ndarray) -> bytes:
    """Encode a ``[0, 1]`` float ``(H, W)`` image as 16-bit grayscale PNG bytes."""
    arr = np.asarray(image, dtype=np.float32)
    if arr.ndim != 2:
        raise ValueError(f"expected a (H, W) image, got shape {arr.shape}")
    u16 = np.rint(np.clip(np.nan_to_num(arr), 0.0, 1.0) * 65535.0).astype(np.uint16)
    buf = io.BytesIO()
    Image.fromarray(u16).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def read_png16(path: str | os.PathLike) -> np.ndarray:
    """Read a cached 16-bit PNG back to float32 ``(H, W)`` in ``[0, 1]``."""
    with Image.open(path) as im:
        return np.asarray(im, dtype=np.uint16).astype(np.float32) / 65535.0


@dataclass
class WarmReport:
    """Result of :meth:`DecodedCache.warm`: files decoded now, already cached, and failed."""

    decoded: list[str] = field(default_factory=list)
    hits: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # path -> reason

    @property
    def ok(self) -> bool:
        return not self.failed

    def summary(self) -> str:
        lines = [f"{len(self.decoded)} decoded, {len(self.hits)} cached, {len(self.failed)} failed"]
        lines += [f"  {p}: {why}" for p, why in self.failed.items()]
        return "\n".join(lines)


class DecodedCache:
    """Content-addressed decoded-DICOM cache (default root ``cache_root() / "decoded"``).

    ``decoder(path) -> float32 (H, W) in [0, 1]`` defaults to ``read_dicom(path).pixels``; pass
    another for non-DICOM sources (its identity should be reflected in ``version``).
    """

    def __init__(
        self,
        root: str | os.PathLike | None = None,
        *,
        decoder: Callable[[Path], np.ndarray] | None = None,
        version: str = DECODER_VERSION,
    ):
        self.root = Path(root) if root is not None else config.cache_root() / "decoded"
        self.root.mkdir(parents=True, exist_ok=True)
        self.decoder = decoder or _default_decoder
        self.version = version
        self.hits = 0  # counters for reports and tests
        self.misses = 0
        self._lock = threading.Lock()

    def key(self, path: str | os.PathLike) -> str:
        """sha256 of the decoder version and the file's bytes."""
        h = hashlib.sha256(self.version.encode() + b"\0")
        with open(path, "rb") as f:
            while chunk := f.read(_CHUNK):
                h.update(chunk)
        return h.hexdigest()

    def _entry(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.png"

    def cached_png_path(self, path: str | os.PathLike) -> Path:
        """Path of the 16-bit PNG holding ``path``'s decoded pixels, decoding it first if needed.

        Raises whatever the decoder raises (``DicomReadError`` for a bad DICOM).
        """
        return self._ensure(path)[0]

    def _ensure(self, path: str | os.PathLike) -> tuple[Path, bool]:
        entry = self._entry(self.key(path))
        if entry.exists():
            with self._lock:
                self.hits += 1
            return entry, True
        with self._lock:
            self.misses += 1
        data = to_png16(self.decoder(Path(path)))
        entry.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=entry.parent, prefix=".tmp-", suffix=".png")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, entry)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return entry, False

    def load(self, path: str | os.PathLike) -> np.ndarray:
        """Decoded image of ``path``: float32 ``(H, W)`` in ``[0, 1]`` (via the cache)."""
        return read_png16(self.cached_png_path(path))

    def warm(self, paths: Iterable[str | os.PathLike], workers: int = 2) -> WarmReport:
        """Pre-decode ``paths`` with ``workers`` threads. Never raises for a bad file: failures
        are returned in ``report.failed`` (path -> ``"ExceptionType: message"``)."""
        report = WarmReport()
        paths = [str(p) for p in paths]

        def one(p: str) -> tuple[str, str, str]:
            try:
                _, hit = self._ensure(p)
                return p, "hit" if hit else "decoded", ""
            except Exception as exc:  # skip-and-report: one corrupt file must not stop a run
                return p, "failed", f"{type(exc).__name__}: {exc}"

        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            for p, status, why in pool.map(one, paths):
                if status == "failed":
                    report.failed[p] = why
                elif status == "hit":
                    report.hits.append(p)
                else:
                    report.decoded.append(p)
        return report

"""Video input: decode clips to grayscale frames, sample T frames a clip, cache decoded clips.

Decoding uses PyAV (FFmpeg), which reads every container in ``../shared/data/lus_pocus``
(.mp4, .avi, .mpeg, .mov, .gif, .MP4). Frames come out as float32 ``(N, H, W)`` in ``[0, 1]``;
:func:`read_clip` samples ``T`` of them (8 by default, TSM's clip length, paper 02 §3.1) either
uniformly over the whole video or as sliding windows, and resizes each frame to a square
(shorter side scaled to ``size``, longer side centre-cropped; the scaling runs in FFmpeg's
swscale, so a 1080p video costs no full-resolution NumPy work).

Decoded clips are cached with :class:`kerassev.data.cache.DecodedCache` (keyed by file content
and the sampling settings): the frames of a clip are stacked vertically into one 16-bit PNG.

A corrupt, truncated, empty or unsupported file raises :class:`VideoReadError` naming the file
and the problem; :meth:`ClipReader.read_many` skips such files and reports them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

VIDEO_SUFFIXES = (".mp4", ".avi", ".mpeg", ".mpg", ".mov", ".gif", ".mkv", ".webm")
SAMPLING_MODES = ("uniform", "sliding")
# Bump when decoding or sampling changes, so cached clips are decoded again.
VIDEO_DECODER_VERSION = "kerassev-video-v1"


class VideoReadError(ValueError):
    """A video cannot be decoded; the message names the file and the problem."""

    def __init__(self, path, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}")


def _check_file(path: Path) -> None:
    if not path.is_file():
        raise VideoReadError(path, "no such file")
    if path.suffix.lower() not in VIDEO_SUFFIXES:
        raise VideoReadError(
            path, f"unsupported video format {path.suffix!r} (expected one of {VIDEO_SUFFIXES})"
        )
    if path.stat().st_size == 0:
        raise VideoReadError(path, "empty file (0 bytes)")


def _target_shape(width: int, height: int, size: int | None) -> tuple[int, int]:
    """(w, h) that scales the shorter side to ``size`` keeping the aspect ratio."""
    if size is None:
        return width, height
    scale = size / min(width, height)
    return max(size, round(width * scale)), max(size, round(height * scale))


def _crop_square(frame: np.ndarray, size: int) -> np.ndarray:
    h, w = frame.shape
    top, left = (h - size) // 2, (w - size) // 2
    return frame[top : top + size, left : left + size]


def _decode(path: Path, size: int | None, wanted: np.ndarray | None = None) -> list[np.ndarray]:
    """Grayscale frames of ``path`` (only indices in ``wanted`` are converted, decoding stops after
    the last of them); raises :class:`VideoReadError`."""
    import av  # imported lazily: video is optional for the image-only papers

    _check_file(path)
    want = None if wanted is None else set(np.asarray(wanted).tolist())
    last = None if want is None else max(want)
    frames: list[np.ndarray] = []
    n = 0
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise VideoReadError(path, "no video stream in the file")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            try:
                for frame in container.decode(stream):
                    if want is None or n in want:
                        w, h = _target_shape(frame.width, frame.height, size)
                        gray = frame.reformat(width=w, height=h, format="gray").to_ndarray()
                        frames.append(_crop_square(gray, size) if size else gray)
                    n += 1
                    if last is not None and n > last:
                        break
            except av.FFmpegError as err:
                if not n:
                    raise
                raise VideoReadError(
                    path, f"truncated or corrupt: decoding stopped after {n} frames ({err})"
                ) from err
    except VideoReadError:
        raise
    except (av.FFmpegError, UnicodeDecodeError) as err:
        raise VideoReadError(path, f"corrupt or not a video ({type(err).__name__}: {err})") from err
    if not n:
        raise VideoReadError(path, "no decodable frames (empty or truncated video stream)")
    return frames


def read_video(path: str | os.PathLike, *, size: int | None = None) -> np.ndarray:
    """Every frame of ``path`` as float32 ``(N, H, W)`` in ``[0, 1]`` (grayscale, luma).

    With ``size`` each frame is scaled (shorter side to ``size``) and centre-cropped to
    ``(size, size)``. Raises :class:`VideoReadError` for a file that cannot be decoded.
    """
    return np.stack(_decode(Path(path), size)).astype(np.float32) / 255.0


def count_frames(path: str | os.PathLike) -> int:
    """Frames in the container, counted from its packets without decoding (fast).

    A damaged stream can decode to fewer frames than it has packets; :func:`read_clip` copes.
    """
    import av

    path = Path(path)
    _check_file(path)
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise VideoReadError(path, "no video stream in the file")
            stream = container.streams.video[0]
            n = sum(1 for packet in container.demux(stream) if packet.size > 0)
    except av.FFmpegError as err:
        raise VideoReadError(path, f"corrupt or not a video ({type(err).__name__}: {err})") from err
    if not n:
        raise VideoReadError(path, "no video frames (empty or truncated video stream)")
    return n


def sample_indices(
    n_frames: int, t: int = 8, *, mode: str = "uniform", stride: int | None = None
) -> np.ndarray:
    """Frame indices of the clips of a video: ``(n_clips, t)`` ints.

    ``uniform``: one clip, the centres of ``t`` equal segments of the whole video (TSM's test-time
    sampling); ``sliding``: consecutive windows of ``t`` frames every ``stride`` frames (default
    ``t``: non-overlapping). Videos shorter than ``t`` repeat frames (indices stay in order).
    """
    if mode not in SAMPLING_MODES:
        raise ValueError(f"sampling mode must be one of {SAMPLING_MODES}, got {mode!r}")
    if n_frames < 1 or t < 1:
        raise ValueError(f"need n_frames >= 1 and t >= 1, got {n_frames}, {t}")
    if mode == "uniform" or n_frames <= t:
        centres = (np.arange(t) + 0.5) * n_frames / t
        return np.minimum(centres.astype(int), n_frames - 1)[None, :]
    stride = stride or t
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    starts = np.arange(0, n_frames - t + 1, stride)
    return starts[:, None] + np.arange(t)[None, :]


def read_clip(
    path: str | os.PathLike,
    t: int = 8,
    *,
    size: int = 112,
    mode: str = "uniform",
    stride: int | None = None,
) -> np.ndarray:
    """Clips of ``path``: float32 ``(n_clips, t, size, size)`` in ``[0, 1]`` (uncached).

    Only the sampled frames are converted, and decoding stops after the last one. When a damaged
    stream decodes to fewer frames than its packets promise, the whole video is decoded and the
    sampling redone on the frames that exist.
    """
    path = Path(path)
    idx = sample_indices(count_frames(path), t, mode=mode, stride=stride)
    wanted = np.unique(idx)
    frames = _decode(path, size, wanted)
    if len(frames) == len(wanted):
        lookup = {int(i): k for k, i in enumerate(wanted)}
        stack = np.stack(frames).astype(np.float32) / 255.0
        return stack[np.vectorize(lookup.get)(idx)]
    every = read_video(path, size=size)
    return every[sample_indices(len(every), t, mode=mode, stride=stride)]


@dataclass
class ClipReport:
    """Result of :meth:`ClipReader.read_many`: clips per readable file, failures by path."""

    clips: dict[str, np.ndarray] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)

    def summary(self) -> str:
        lines = [f"{len(self.clips)} videos read, {len(self.failed)} skipped"]
        return "\n".join(lines + [f"  skipped {p}: {why}" for p, why in self.failed.items()])


class ClipReader:
    """Sampled, resized clips through the content-keyed decoded cache.

    ``ClipReader(t=8, size=112).read(path)`` -> ``(n_clips, t, size, size)``; a second read of the
    same bytes (any file name) comes from ``<cache>/decoded`` without decoding.
    """

    def __init__(
        self,
        t: int = 8,
        *,
        size: int = 112,
        mode: str = "uniform",
        stride: int | None = None,
        cache_root: str | os.PathLike | None = None,
    ):
        from kerassev.data.cache import DecodedCache

        if mode not in SAMPLING_MODES:
            raise ValueError(f"sampling mode must be one of {SAMPLING_MODES}, got {mode!r}")
        self.t, self.size, self.mode, self.stride = t, size, mode, stride
        version = f"{VIDEO_DECODER_VERSION}-t{t}-s{size}-{mode}-{stride}"
        self.cache = DecodedCache(cache_root, decoder=self._decode_tiled, version=version)

    def _decode_tiled(self, path: Path) -> np.ndarray:
        clips = read_clip(path, self.t, size=self.size, mode=self.mode, stride=self.stride)
        return clips.reshape(-1, self.size)  # (n_clips * t * size, size): one PNG

    def read(self, path: str | os.PathLike) -> np.ndarray:
        _check_file(Path(path))  # named error before hashing a missing or empty file
        tiled = self.cache.load(path)
        return tiled.reshape(-1, self.t, self.size, self.size)

    def read_many(self, paths) -> ClipReport:
        """Read every path; a file that fails is skipped and reported, never fatal."""
        report = ClipReport()
        for p in map(str, paths):
            try:
                report.clips[p] = self.read(p)
            except VideoReadError as err:
                report.failed[p] = err.problem
        return report


def write_video(path: str | os.PathLike, frames: np.ndarray, *, fps: int = 20) -> Path:
    """Write grayscale ``(N, H, W)`` frames in ``[0, 1]`` as a video (MPEG-4 Part 2 in .mp4/.avi,
    palette GIF in .gif); used to lay phantoms out like real data. H and W must be even."""
    import av

    path = Path(path)
    frames = np.rint(np.clip(np.asarray(frames, np.float32), 0, 1) * 255).astype(np.uint8)
    if frames.ndim != 3:
        raise ValueError(f"expected (N, H, W) frames, got shape {frames.shape}")
    gif = path.suffix.lower() == ".gif"
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("gif" if gif else "mpeg4", rate=fps)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "rgb8" if gif else "yuv420p"
        if not gif:
            stream.bit_rate = 2_000_000
        for image in frames:
            frame = av.VideoFrame.from_ndarray(image, format="gray")
            container.mux(stream.encode(frame.reformat(format=stream.pix_fmt)))
        container.mux(stream.encode())
    return path

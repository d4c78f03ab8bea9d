"""Video decoding, clip sampling, the decoded-clip cache and named errors for bad files."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kerassev.io.video import (
    ClipReader,
    VideoReadError,
    count_frames,
    read_clip,
    read_video,
    sample_indices,
    write_video,
)


@pytest.fixture(scope="module")
def ramp_video(tmp_path_factory):
    """12 frames whose brightness encodes the frame index."""
    frames = np.stack([np.full((32, 48), i / 12, np.float32) for i in range(12)])
    return write_video(tmp_path_factory.mktemp("video") / "ramp.mp4", frames)


def test_sample_indices_uniform_and_sliding():
    assert sample_indices(16, 4).tolist() == [[2, 6, 10, 14]]
    assert sample_indices(3, 4).tolist() == [[0, 1, 1, 2]]  # short video repeats in order
    assert sample_indices(10, 4, mode="sliding", stride=3).tolist() == [
        [0, 1, 2, 3],
        [3, 4, 5, 6],
        [6, 7, 8, 9],
    ]
    with pytest.raises(ValueError, match="sampling mode"):
        sample_indices(10, 4, mode="random")


def test_decode_resize_and_sample(ramp_video):
    frames = read_video(ramp_video, size=16)
    assert frames.shape == (12, 16, 16) and frames.dtype == np.float32
    assert count_frames(ramp_video) == 12
    clip = read_clip(ramp_video, 4, size=16)
    assert clip.shape == (1, 4, 16, 16)
    # frames 1, 4, 7, 10 were sampled: brightness rises with the index
    means = clip[0].mean(axis=(1, 2))
    np.testing.assert_allclose(means, [1 / 12, 4 / 12, 7 / 12, 10 / 12], atol=0.03)


def test_gif_round_trip(tmp_path):
    frames = np.stack([np.full((16, 16), v, np.float32) for v in (0.0, 1.0, 0.0)])
    path = write_video(tmp_path / "blink.gif", frames)
    assert read_video(path).shape[0] == 3


def test_clip_cache_is_keyed_by_content(ramp_video, tmp_path):
    reader = ClipReader(4, size=16, cache_root=tmp_path / "cache")
    first = reader.read(ramp_video)
    copy = tmp_path / "renamed.mp4"
    copy.write_bytes(ramp_video.read_bytes())
    again = reader.read(copy)
    assert reader.cache.misses == 1 and reader.cache.hits == 1
    np.testing.assert_allclose(first, again, atol=1e-4)


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        ("empty.mp4", b"", "empty file"),
        ("noise.mp4", bytes(range(256)) * 40, "corrupt or not a video"),
        ("clip.txt", b"hello", "unsupported video format"),
    ],
)
def test_bad_files_get_named_errors(tmp_path, name, content, problem):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(VideoReadError, match=problem) as info:
        read_clip(path, 4, size=16)
    assert str(path) in str(info.value)


def test_truncated_file_is_named_and_skipped(ramp_video, tmp_path):
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(ramp_video.read_bytes()[: ramp_video.stat().st_size // 3])
    with pytest.raises(VideoReadError, match="cut.mp4"):
        read_clip(cut, 4, size=16)
    report = ClipReader(4, size=16, cache_root=tmp_path / "c").read_many([ramp_video, cut])
    assert list(report.clips) == [str(ramp_video)] and list(report.failed) == [str(cut)]
    assert "skipped" in report.summary()


@pytest.mark.slow
@pytest.mark.shared_data
def test_every_real_video_decodes(shared_data):
    """Every POCUS video decodes to a clip; packet counts match dataset_metadata.csv."""
    root = shared_data("lus_pocus")
    meta = pd.read_csv(root / "dataset_metadata.csv").drop_duplicates("Filename")
    listed = pd.to_numeric(meta.set_index("Filename")["Length (frames)"], errors="coerce")
    videos = sorted(p for p in (root / "pocus_videos").rglob("*") if p.is_file())
    assert len(videos) == 131
    compared, off = 0, []
    for path in videos:
        clip = read_clip(path, 4, size=16)  # decodes up to the last sampled frame
        assert clip.shape == (1, 4, 16, 16) and np.isfinite(clip).all(), path
        n = count_frames(path)
        expected = listed.get(path.stem, np.nan)
        if np.isfinite(expected):
            compared += 1
            # the CSV's counts were made by other tools: a frame or two differs on MPEG-PS files
            if abs(n - expected) > 2:
                off.append((path.name, n, expected))
    assert compared >= 100 and not off, off

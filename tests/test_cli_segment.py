"""``kerassev segment`` on tiny exported Mask R-CNNs (the ct-lesions segmenter and paper 05's
affinity model): every export form, per-slice CSV/JSON, and the wrong command said."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from detection_harness import tiny_config
from PIL import Image

from kerassev.cli import main
from kerassev.exports import read_metadata
from kerassev.models.detection.affinity_model import AffinityConfig, AffinityMaskRCNN
from kerassev.models.detection.mask_rcnn import MaskRCNN
from kerassev.recipes.ct_lesions.export import export_segmenter

SIZE = 64
SMALL = dict(
    image_size=SIZE, tiny_width=4, fpn_channels=16, representation_size=32, mask_channels=16,
    anchor_sizes=(8, 16, 32, 64, 128), rpn_pre_nms_test=50, rpn_post_nms_test=20, roi_batch=16,
    score_threshold=0.0,  # an untrained model: keep its detections so areas are non-zero
)  # fmt: skip


def _slices(folder):
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name, shape in (("a.png", (48, 64)), ("b.jpg", (64, 64))):
        Image.fromarray(rng.integers(0, 255, shape, dtype=np.uint8)).save(folder / name)
    (folder / "c.png").write_text("broken")
    return folder


@pytest.fixture(scope="module")
def segmenter(tmp_path_factory):
    out = tmp_path_factory.mktemp("seg") / "export"
    export_segmenter(MaskRCNN(tiny_config(**SMALL)), out, class_names=["lesion"], description="t")
    return out


def test_segment_reads_every_form_and_writes_per_slice_tables(segmenter, tmp_path, capsys):
    meta = read_metadata(segmenter / "segmenter.keras")
    assert meta.task == "segmentation" and meta.resize_mode == "letterbox"
    assert meta.class_names == ("background", "lesion") and meta.input_size == SIZE
    assert not list(segmenter.rglob("kerassev_metadata.json"))  # the second schema is gone
    folder = _slices(tmp_path / "slices")
    tables = {}
    for form in (segmenter, segmenter / "segmenter.keras", segmenter / "segmenter_savedmodel"):
        out = tmp_path / f"out_{form.name}"
        argv = ["segment", str(form), str(folder), "--out", str(out), "--score-threshold", "0"]
        assert main(argv) == 0
        tables[form.name] = table = pd.read_csv(out / "slices.csv")
        assert list(table["path"].str.split("/").str[-1]) == ["a.png", "b.jpg"]
        mask = np.asarray(Image.open(out / "a_mask.png"))
        assert mask.shape == (48, 64)
        assert table["lesion_area_px"].iloc[0] == (mask > 0).sum() == table["area_px_lesion"][0]
        assert json.loads((out / "slices.json").read_text())[0]["path"].endswith("a.png")
    assert "skipped" in capsys.readouterr().err
    np.testing.assert_array_equal(tables["export"]["lesions"], tables["segmenter.keras"]["lesions"])
    assert (tables["export"]["lesion_area_px"] > 0).any()  # the test can see a wrong area
    assert main(["segment", str(segmenter), str(folder), "--out", str(out)]) == 2  # no overwrite


def test_a_segmenter_given_to_predict_and_a_classifier_to_segment_say_which(
    segmenter, tmp_path, capsys
):
    from test_inference import _regressor

    from kerassev.exports import ExportMetadata, export_model

    folder = _slices(tmp_path / "slices")
    assert main(["predict", str(segmenter), str(folder)]) == 2
    assert "use `kerassev segment`" in capsys.readouterr().err
    meta = ExportMetadata(task="regression", input_size=16, target_name="mrale")
    paths = export_model(_regressor(), tmp_path / "reg", name="reg", tflite=False, metadata=meta)
    assert main(["segment", str(paths.keras_file), str(folder), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "use `kerassev predict`" in err[0]


def test_affinity_export_gives_class_probabilities_per_slice(tmp_path):
    model = AffinityMaskRCNN(
        tiny_config(**SMALL, max_instances=4),
        AffinityConfig(affinities=8, feature_channels=16, hidden=16),
    )
    names = ("COVID", "CP", "Normal")
    out = tmp_path / "export"
    export_segmenter(model, out, class_names=["lesion"], description="t", name="affinity",
                     image_class_names=names)  # fmt: skip
    folder = _slices(tmp_path / "slices")
    assert main(["segment", str(out), str(folder), "--out", str(tmp_path / "seg")]) == 0
    table = pd.read_csv(tmp_path / "seg" / "slices.csv")
    probs = table[[f"p_{n}" for n in names]].to_numpy()
    assert probs.shape == (2, 3) and ((probs >= 0) & (probs <= 1)).all()
    assert list(table["predicted_class"]) == [names[i] for i in probs.argmax(1)]

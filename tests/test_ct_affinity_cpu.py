"""The ct_affinity ``cpu`` preset (issue 19): it validates, builds, and its sizes allow a CI."""

import numpy as np
import tensorflow as tf

from kerassev.cli import build_parser
from kerassev.cli.reproduce.affinity import config_from_args
from kerassev.models.detection.affinity_model import AffinityMaskRCNN
from kerassev.recipes.ct_affinity import CtAffinityConfig


def test_cpu_preset_sizes_and_the_others_unchanged():
    cpu = CtAffinityConfig.from_preset("cpu")
    assert cpu.image_size == 128 and cpu.backbone == "tiny" and cpu.backbone_weights is None
    assert 3 * cpu.test_per_class >= 100  # enough test phantoms for an interval
    assert 3 * cpu.train_per_class >= 300 and cpu.epochs >= 3
    # the paper's A, B and N; no A sweep (each A retrains the model)
    assert (cpu.affinities, cpu.lesion_batch, cpu.sieve_stages) == (256, 8, 3)
    assert cpu.sweep == () and cpu.generalise_epochs > 0
    assert CtAffinityConfig.cpu(epochs=1).epochs == 1  # overrides win
    assert CtAffinityConfig.from_preset("paper").image_size == 512
    assert CtAffinityConfig.from_preset("smoke").image_size == 64


def test_cli_takes_the_cpu_preset(tmp_path):
    args = build_parser().parse_args(
        ["reproduce", "affinity", "--preset", "cpu", "--out", str(tmp_path), "--set", "epochs=2"]
    )
    config = config_from_args(args)
    assert config.image_size == 128 and config.epochs == 2 and config.train_per_class == 200


def test_cpu_model_builds_and_gives_three_class_probabilities():
    cpu = CtAffinityConfig.cpu()
    model = AffinityMaskRCNN(cpu.model_config(mean=0.3, std=0.2), cpu.affinity_config())
    out = model(tf.zeros((1, cpu.image_size, cpu.image_size, 1)))
    probs = out["class_probs"].numpy()
    assert probs.shape == (1, 3) and np.all((probs >= 0) & (probs <= 1))
    assert out["affinity_x2"].shape == (1, cpu.affinities, cpu.feature_channels)


def test_cpu_anchors_cover_the_phantom_lesions():
    # torchvision's anchors scaled to 128 px (8-128 px) reach most phantom lesions (short sides
    # about 7-33 px); the author's sizes scaled to 128 px (1-8 px) would miss most of them.
    from kerassev.models.detection.anchors import AnchorGenerator, anchor_recall
    from kerassev.models.detection.mask_rcnn import level_sizes
    from kerassev.recipes.ct_affinity.data import phantom_slice, phantom_specs
    from kerassev.recipes.ct_lesions.anchors import model_boxes

    def recall(config):
        m = config.model_config(mean=0, std=1)
        sizes = level_sizes(m.anchor_sizes, m.anchors_every_level, m.scales_per_octave)
        anchors = AnchorGenerator(sizes, m.aspect_ratios).anchors((128, 128))
        slices = [phantom_slice(s, config) for s in phantom_specs(config, "train", 10)]
        return anchor_recall(model_boxes(slices, 128), anchors)

    assert recall(CtAffinityConfig.cpu()) >= 0.85
    assert recall(CtAffinityConfig.cpu(anchors="author")) < 0.6

"""kerassev: Keras reproductions of lung-imaging severity and COVID-19 papers.

Layout (one concept per module; see docs/architecture.md):

- ``kerassev.io``          DICOM reading and the decoded-image cache
- ``kerassev.data``        dataset tables, manifests, loaders, phantoms, splits, tf.data pipelines
- ``kerassev.transforms``  resizing, per-backbone preprocessing, augmentation policies
- ``kerassev.models``      backbones, heads, self-supervised models, staged unfreezing
- ``kerassev.losses``      self-supervised losses
- ``kerassev.stats``       metrics, confidence intervals, significance tests, result tables
- ``kerassev.evaluation``  cross-validation and evaluation protocols
- ``kerassev.explain``     Grad-CAM and saliency
- ``kerassev.recipes``     each paper's configuration and end-to-end reproduction
- ``kerassev.convert``     weight converters (TorchXRayVision -> Keras)
- ``kerassev.cli``         the ``kerassev`` command
"""

from importlib import metadata as _metadata

try:  # one version, in pyproject.toml; the installed distribution's metadata carries it
    __version__ = _metadata.version("kerassev")
except _metadata.PackageNotFoundError:  # a bare checkout on sys.path, never installed
    __version__ = "0+unknown"

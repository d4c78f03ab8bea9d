"""Paper 03: COVID-19 severity from frozen chest X-ray features + OLS (Cohen et al. 2020).

The paper's protocol (SPEC 03): a frozen, pretrained network turns every image into a feature
vector; ordinary least squares maps the features to the raters' mean geographic-extent (0-8) and
opacity (0-6) scores; 50 random ~50/50 patient-grouped train/test splits of the 94 scored images
give mean +- std of Pearson r, R^2, MAE and MSE on the held-out half (Table 1). The generic part
(OLS over splits) is :mod:`kerassev.evaluation.linear_probe`.

- ``config``     targets, the paper's Table 1 and ``CohenConfig`` with ``paper``/``smoke`` presets
- ``data``       covid-chestxray frontal and scored tables, the splits, decoded images in memory
- ``encoders``   frozen feature extractors (XRV DenseNet, ResNet-50) and feature extraction
- ``ssl``        the SimSiam-pretrained substitute encoder (not in the paper)
- ``features``   the encoders a configuration asks for and their feature rows
- ``table``      linear probe of every row and the Table-1-shaped output with "paper:" columns
- ``figures``    Fig. 2 (predicted vs true), Fig. 3 (t-SNE), Fig. 4 (saliency)
- ``reproduce``  the whole reproduction into a run folder
"""

from .config import (
    BACKBONE_NAMES,
    FEATURE_SET_LABELS,
    METRIC_LABELS,
    NO_DATA,
    PAPER_SOURCE,
    PAPER_TABLE1,
    RUN_KIND,
    TARGET_BY_COLUMN,
    TARGETS,
    CohenConfig,
    SSLConfig,
    Target,
)
from .data import ImageBank, data_description, load_tables, make_splits
from .encoders import Encoder, composed_model, extract_features, resnet_encoder, xrv_encoder
from .features import build_encoders, feature_rows, ssl_encoder
from .reproduce import reproduce, write_figures
from .table import (
    CohenResults,
    FeatureRow,
    choose_figure_row,
    evaluate_rows,
    feature_label,
    fit_on_all_scored,
    no_data_row,
    paper_table1,
    table1,
)

__all__ = [
    "BACKBONE_NAMES",
    "FEATURE_SET_LABELS",
    "METRIC_LABELS",
    "NO_DATA",
    "PAPER_SOURCE",
    "PAPER_TABLE1",
    "RUN_KIND",
    "TARGETS",
    "TARGET_BY_COLUMN",
    "CohenConfig",
    "CohenResults",
    "Encoder",
    "FeatureRow",
    "ImageBank",
    "SSLConfig",
    "Target",
    "build_encoders",
    "choose_figure_row",
    "composed_model",
    "data_description",
    "evaluate_rows",
    "extract_features",
    "feature_label",
    "feature_rows",
    "fit_on_all_scored",
    "load_tables",
    "make_splits",
    "no_data_row",
    "paper_table1",
    "reproduce",
    "resnet_encoder",
    "ssl_encoder",
    "table1",
    "write_figures",
    "xrv_encoder",
]

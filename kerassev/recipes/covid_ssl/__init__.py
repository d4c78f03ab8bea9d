"""Paper 04: self-supervised transfer learning for COVID-19 detection (Li et al.).

- ``config``     the paper's numbers (paper / cpu / smoke presets), Table 2 targets
- ``data``       radiography 80/20 split, unlabelled pool without test look-alikes
- ``finetune``   backbone + classifier fine-tuning with last-K-epoch test predictions
- ``probe``      frozen-encoder linear probe against a random-init encoder
- ``table``      Table 2, paired AUC tests, low-shot table
- ``figures``    views, SSL curves, low-shot curve, confusion matrix
- ``reproduce``  the whole run into a run folder
"""

from .config import LABELS, PAPER_SOURCE, PAPER_TABLE2, PRESETS, ROW_ORDER, CovidSSLConfig
from .data import CovidData, load_data
from .reproduce import CovidSSLResult, reproduce_covid_ssl

__all__ = [
    "LABELS",
    "PAPER_SOURCE",
    "PAPER_TABLE2",
    "PRESETS",
    "ROW_ORDER",
    "CovidData",
    "CovidSSLConfig",
    "CovidSSLResult",
    "load_data",
    "reproduce_covid_ssl",
]

"""One loader per public data set, each returning a dataset table (see kerassev.data.table)."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from kerassev.data.loaders.covid_chestxray import load_covid_chestxray
from kerassev.data.loaders.covid_radiography import load_covid_radiography
from kerassev.data.loaders.covidx_ct import load_covidx_ct
from kerassev.data.loaders.ct_lesions import load_ct_lesions
from kerassev.data.loaders.cxr_lesion_masks import (
    assemble_mask,
    load_cxr_lesion_masks,
    load_cxr_mask_boxes,
)
from kerassev.data.loaders.lus_pocus import load_lus_pocus
from kerassev.data.loaders.midrc_mrale import load_midrc_labels, load_midrc_mrale

# Manifest/data-set name -> loader. Every loader takes the data-set folder as its first argument.
LOADERS: dict[str, Callable[..., pd.DataFrame]] = {
    "covid_chestxray": load_covid_chestxray,
    "midrc_mrale": load_midrc_mrale,
    "covid_radiography": load_covid_radiography,
    "covidx_ct": load_covidx_ct,
    "ct_lesions": load_ct_lesions,
    "lus_pocus": load_lus_pocus,
    "cxr_lesion_masks": load_cxr_lesion_masks,
}

__all__ = [
    "LOADERS",
    "assemble_mask",
    "load_covid_chestxray",
    "load_covid_radiography",
    "load_covidx_ct",
    "load_ct_lesions",
    "load_cxr_lesion_masks",
    "load_cxr_mask_boxes",
    "load_lus_pocus",
    "load_midrc_labels",
    "load_midrc_mrale",
]

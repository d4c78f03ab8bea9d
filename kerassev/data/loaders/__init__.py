"""One loader per public data set, each returning a dataset table (see kerassev.data.table)."""

from __future__ import annotations

import warnings
from collections.abc import Callable

import pandas as pd

from kerassev import config
from kerassev.data.loaders.adni import load_adni
from kerassev.data.loaders.covid_chestxray import load_covid_chestxray
from kerassev.data.loaders.covid_radiography import load_covid_radiography
from kerassev.data.loaders.covidx_ct import load_covidx_ct, load_covidx_ct_cncb
from kerassev.data.loaders.ct_lesions import load_ct_lesions
from kerassev.data.loaders.cxr_lesion_masks import (
    assemble_mask,
    load_cxr_lesion_masks,
    load_cxr_mask_boxes,
)
from kerassev.data.loaders.lus_inhouse import load_lus_inhouse
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
    "lus_inhouse.template": load_lus_inhouse,  # paper 02 layout
    "adni.template": load_adni,  # paper 02 layout
}


def load_or_skip(name: str, **kwargs) -> pd.DataFrame | None:
    """Load a real data set by manifest name, printing its loader's notices; when its folder is
    absent, print why and return None (notebooks skip that section visibly instead of failing).
    Under CI (``CI=true``) an absent data set raises :class:`~kerassev.config.DataNotFoundError`
    instead, as the ``shared_data`` tests fail there."""
    from kerassev.data.manifest import load_manifest

    folder = config.data_root() / load_manifest(name).folder
    if not folder.is_dir():
        reason = f"{name}: {folder} is absent (set {config.DATA_ENV})"
        if config.in_ci():
            raise config.DataNotFoundError(f"CI=true but real data {reason}")
        print(f"SKIPPED {reason}")
        return None
    with warnings.catch_warnings(record=True) as notices:
        warnings.simplefilter("always")
        table = LOADERS[name](**kwargs)
    for notice in notices:
        print("notice:", str(notice.message)[:200])
    print(f"{name}: {len(table)} rows, {table['patient_id'].nunique()} patient groups")
    return table


__all__ = [
    "LOADERS",
    "load_adni",
    "load_lus_inhouse",
    "load_or_skip",
    "assemble_mask",
    "load_covid_chestxray",
    "load_covid_radiography",
    "load_covidx_ct",
    "load_covidx_ct_cncb",
    "load_ct_lesions",
    "load_cxr_lesion_masks",
    "load_cxr_mask_boxes",
    "load_lus_pocus",
    "load_midrc_labels",
    "load_midrc_mrale",
]

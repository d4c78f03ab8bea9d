"""Synthetic phantoms, one module per modality, deterministic by seed.

* :mod:`.cxr` -- frontal chest X-rays with known mRALE / Cohen labels and opacity masks (papers 01,
  03); their labels in :mod:`.cxr_labels` (sampled from ``midrc_subscores.csv``, package data),
  written as MIDRC / Cohen data sets by :mod:`.cxr_files`.
* :mod:`.lus` -- longitudinal lung-ultrasound clips following hidden S/F trajectories (paper 02).
* :mod:`.ct` -- axial CT slices: COVID-like, common-pneumonia-like and normal, with lesion maps
  (paper 05).
* :mod:`.drawing` -- seeded draws, smooth fields and pose coordinates every modality shares.
"""

from kerassev.data.phantoms.ct import CT_KINDS, CtPhantom, ct_phantom, ct_phantom_set
from kerassev.data.phantoms.cxr import (
    DENSITY_FILL,
    EXTENT_FRACTION,
    Phantom,
    PhantomCohort,
    make_phantom_cohort,
    render_phantom,
)
from kerassev.data.phantoms.cxr_files import (
    COHEN_METADATA_COLUMNS,
    DENSITY_TEXT,
    EXTENT_TEXT,
    MIDRC_COLUMNS,
    write_phantom_dataset,
)
from kerassev.data.phantoms.cxr_labels import (
    LABEL_COLUMNS,
    MIDRC_LABEL_FILE,
    SUBSCORE_COLUMNS,
    derive_subscore_table,
    labels_from_subscores,
    sample_subscores,
    subscore_table,
)
from kerassev.data.phantoms.lus import (
    LusPhantomCohort,
    make_lus_cohort,
    render_lus_clip,
    sample_trajectories,
    severity_from_sf,
    write_lus_inhouse_layout,
)

__all__ = [
    "SUBSCORE_COLUMNS",
    "LABEL_COLUMNS",
    "EXTENT_FRACTION",
    "DENSITY_FILL",
    "MIDRC_LABEL_FILE",
    "EXTENT_TEXT",
    "DENSITY_TEXT",
    "MIDRC_COLUMNS",
    "labels_from_subscores",
    "sample_subscores",
    "subscore_table",
    "derive_subscore_table",
    "Phantom",
    "render_phantom",
    "PhantomCohort",
    "make_phantom_cohort",
    "COHEN_METADATA_COLUMNS",
    "write_phantom_dataset",
    "LusPhantomCohort",
    "make_lus_cohort",
    "render_lus_clip",
    "sample_trajectories",
    "severity_from_sf",
    "write_lus_inhouse_layout",
    "CT_KINDS",
    "CtPhantom",
    "ct_phantom",
    "ct_phantom_set",
]

"""Synthetic phantoms, one module per modality, deterministic by seed.

* :mod:`.cxr` -- frontal chest X-rays with known mRALE / Cohen labels and opacity masks (papers 01, 03).
* :mod:`.lus` -- longitudinal lung-ultrasound clips following hidden S/F trajectories (paper 02).

CT (paper 05) phantoms get a module beside them.
"""

from kerassev.data.phantoms.cxr import (
    COHEN_METADATA_COLUMNS,
    DENSITY_FILL,
    DENSITY_TEXT,
    EXTENT_FRACTION,
    EXTENT_TEXT,
    LABEL_COLUMNS,
    MIDRC_COLUMNS,
    MIDRC_LABEL_FILE,
    SUBSCORE_COLUMNS,
    Phantom,
    PhantomCohort,
    labels_from_subscores,
    make_phantom_cohort,
    midrc_label_path,
    render_phantom,
    sample_subscores,
    write_phantom_dataset,
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
    "midrc_label_path",
    "sample_subscores",
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
]

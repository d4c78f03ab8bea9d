"""Paper 01: mRALE severity regression on a SimSiam ResNet-50 encoder (Liang et al. 2023).

- ``config``     the paper's numbers as a dataclass, with ``paper`` and ``smoke`` presets
- ``data``       MIDRC DICOMs or phantoms -> images in memory + dataset table
- SSL pre-training (§3.1): the shared ``kerassev.recipes.ssl_pretraining``, two stages
- ``regression`` the comparators: SSL regressors, ResNet-50 from scratch, sub-score head
- ``reproduce``  5-fold grouped CV, Table 1, tests, Grad-CAM, figures, exports
"""

from .config import COMPARATOR_LABELS, PAPER_TABLE1, MraleConfig, SSLStage
from .reproduce import MraleResult, reproduce_mrale

__all__ = [
    "COMPARATOR_LABELS",
    "PAPER_TABLE1",
    "MraleConfig",
    "MraleResult",
    "SSLStage",
    "reproduce_mrale",
]

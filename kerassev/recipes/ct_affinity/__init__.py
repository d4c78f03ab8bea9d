"""Paper 05 (Ter-Sarkisov 2021): the affinity model, COVID / CP / Normal from lesion-mask features.

config (presets, paper figures) -> data (CT phantoms + real ct_lesions slices) -> reproduce (train
with the weight-copy callback, evaluate, X2 heat maps, generalisation step, A sweep) with
evaluate (classification and AP tables) and figures (X2 heat maps).
"""

from .config import PRESETS, RUN_KIND, CtAffinityConfig
from .reproduce import reproduce, result_of

__all__ = ["PRESETS", "RUN_KIND", "CtAffinityConfig", "reproduce", "result_of"]

"""Paper 02 (LEARNER): fine changes from coarse labels with a TSM encoder and (weighted)
contrastive pre-training, on longitudinal LUS phantoms (or the in-house / ADNI layouts) and the
real POCUS videos (a cross-video proxy task). See :func:`reproduce_learner`."""

from .config import PAPER_ADNI, PAPER_LUS, ROWS, LearnerConfig
from .reproduce import LearnerResult, reproduce_learner

__all__ = ["PAPER_ADNI", "PAPER_LUS", "ROWS", "LearnerConfig", "LearnerResult", "reproduce_learner"]

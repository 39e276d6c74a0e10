"""Training: pairs with known truth, the loss terms and the three-phase loop."""

from .loop import PHASES, train
from .losses import LOSS_WEIGHTS
from .pairs import make_training_pairs

__all__ = ["LOSS_WEIGHTS", "PHASES", "make_training_pairs", "train"]

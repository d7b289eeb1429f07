"""Black-box attacks: the target answers actions only. An oracle counts its answers, a substitute
learns to imitate it (imitation and Jacobian augmentation), and transfer matrices show attacks
crafted on one policy to another."""

from rlattack.blackbox.data import noise_stability, unseen
from rlattack.blackbox.oracle import Oracle, QueryBudgetExceeded
from rlattack.blackbox.substitute import Substitute, augment, train_substitute
from rlattack.blackbox.transfer import TransferSetting, transfer_matrix
from rlattack.rollout.watch import Dataset, watch

__all__ = [
    "Dataset",
    "Oracle",
    "QueryBudgetExceeded",
    "Substitute",
    "TransferSetting",
    "augment",
    "noise_stability",
    "train_substitute",
    "transfer_matrix",
    "unseen",
    "watch",
]

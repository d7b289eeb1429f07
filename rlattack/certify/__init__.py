"""Certificates: which actions provably cannot change under a perturbation of the observation.

`ibp`: interval bounds of the action margin over an L-inf ball (exact arithmetic, no sampling);
`smoothing`: randomized smoothing of the action over an L2 ball (holds with probability 1 - alpha).
"""

from rlattack.certify.ibp import certified, certified_radius, margin_lower_bounds, propagate
from rlattack.certify.layers import network_layers
from rlattack.certify.smoothing import SmoothedPolicy, SmoothingCertificate, certified_share, certify

__all__ = [
    "SmoothedPolicy",
    "SmoothingCertificate",
    "certified",
    "certified_radius",
    "certified_share",
    "certify",
    "margin_lower_bounds",
    "network_layers",
    "propagate",
]

"""rlattack: adversarial attacks on deep reinforcement-learning policies for Atari."""

from rlattack.errors import UserInputError

__all__ = ["UserInputError"]
__version__ = "0.1.0"

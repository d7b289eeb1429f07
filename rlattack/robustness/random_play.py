"""The return of uniformly random play: the floor of a robustness curve and of its area."""

from __future__ import annotations

import torch

from rlattack import zoo
from rlattack.policies import Policy
from rlattack.rollout.evaluate import evaluate


def random_return(game: str, episodes: int, envs: int, seed: int) -> float:
    """Mean score of uniformly random actions: the zoo's table where it has the game, else played."""
    if game in zoo.RANDOM_PLAY:
        return zoo.RANDOM_PLAY[game]
    from rlattack.envs import make_vector_env

    env = make_vector_env(game, 1)
    n_actions = int(env.single_action_space.n)
    env.close()
    policy = Policy(_Uniform(n_actions, seed), n_actions, name="random", input_scale=1.0)
    return evaluate(policy, game, None, None, episodes, envs, seed, progress=False).summary["return_mean"]


class _Uniform(torch.nn.Module):
    """Logits drawn uniformly at random (seeded): greedy play of them is uniform random play."""

    def __init__(self, n_actions: int, seed: int) -> None:
        super().__init__()
        self.n_actions = n_actions
        self.generator = torch.Generator().manual_seed(seed)
        self.anchor = torch.nn.Parameter(torch.zeros(1))  # a Policy finds its device here

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.rand(len(x), self.n_actions, generator=self.generator).to(x.device)

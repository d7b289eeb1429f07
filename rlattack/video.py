"""One game as a video, three panels side by side, so a perturbation can be seen at work.

Left: the screen the game showed (RGB). Middle: the newest 84x84 frame the agent saw, after the
attack. Right: that frame's perturbation, amplified so its largest change is fully red
(brighter) or blue (darker), with the factor printed. Below: the step, the score so far, and
the greedy actions on the clean and on the attacked observation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import imageio.v2 as imageio
import numpy as np
from matplotlib import colormaps

from rlattack.attacks.base import Attack
from rlattack.envs import make_env
from rlattack.errors import UserInputError
from rlattack.files import atomic_write
from rlattack.policies import Policy
from rlattack.rollout.attacker import Attacker, Step
from rlattack.schedules import Schedule

PANEL = 336  # 4 x 84; every size is a multiple of 16, which mp4 encoders want
CAPTION = 48
WHITE = (255, 255, 255)
RED = (255, 80, 80)


def record_episode(
    policy: Policy,
    game: str,
    attack: Attack | None,
    schedule: Schedule | None,
    out: Path,
    seed: int = 0,
    max_steps: int | None = None,
    fps: int = 30,
) -> dict[str, Any]:
    """Play one game (or `max_steps` steps) under attack and write it to `out` (.mp4 or .gif)."""
    if out.suffix not in (".mp4", ".gif"):
        raise UserInputError(f"video {out} must end in .mp4 or .gif")
    if max_steps is not None and max_steps < 1:
        raise UserInputError(f"--max-steps must be >= 1, got {max_steps}")
    env = make_env(game, render_mode="rgb_array")
    try:
        policy.check_fits(int(env.action_space.n), env.observation_space.shape, game)
        names = env.unwrapped.get_action_meanings()
        attacker = Attacker(policy, attack, schedule, num_envs=1)
        tally = {"steps": 0, "score": 0.0, "attacked": 0, "changed": 0}

        def write(path: Path) -> None:
            options = {"duration": 1000 / fps, "loop": 0} if out.suffix == ".gif" else {"fps": fps}
            with imageio.get_writer(path, **options) as writer:
                obs, _ = env.reset(seed=seed)
                done = False
                while not done and tally["steps"] != max_steps:
                    screen = env.render()
                    step = attacker.observe(
                        np.asarray(obs)[None],
                        np.array([tally["steps"] == 0]),
                        np.array([tally["steps"]]),
                        np.zeros(1, int),
                    )
                    seen = step.seen[0, -1].cpu().numpy()
                    delta = seen - np.asarray(obs)[-1] / 255.0
                    writer.append_data(_frame(screen, seen, delta, step, names, tally))
                    obs, reward, terminated, truncated, _ = env.step(int(step.action[0]))
                    done = terminated or truncated
                    tally["steps"] += 1
                    tally["score"] += float(reward)
                    tally["attacked"] += int(step.attacked[0])
                    tally["changed"] += int(step.action[0] != step.clean_action[0])

        atomic_write(out, write)
    finally:
        env.close()
    return tally


def _frame(
    screen: np.ndarray,
    seen: np.ndarray,
    delta: np.ndarray,
    step: Step,
    names: list[str],
    tally: dict[str, Any],
) -> np.ndarray:
    """Compose the three panels and the caption into one RGB image."""
    height, width = screen.shape[:2]
    game_panel = cv2.resize(screen, (round(width * PANEL / height / 16) * 16, PANEL), cv2.INTER_NEAREST)
    agent = np.repeat((seen * 255).round().astype(np.uint8)[..., None], 3, axis=2)
    agent_panel = cv2.resize(agent, (PANEL, PANEL), interpolation=cv2.INTER_NEAREST)
    largest = float(np.abs(delta).max())
    factor = 0.5 / largest if largest > 0 else 1.0
    coloured = colormaps["RdBu_r"](0.5 + factor * delta)[..., :3]
    change_panel = cv2.resize(
        (coloured * 255).astype(np.uint8), (PANEL, PANEL), interpolation=cv2.INTER_NEAREST
    )
    image = np.zeros((PANEL + CAPTION, game_panel.shape[1] + 2 * PANEL, 3), dtype=np.uint8)
    image[:PANEL] = np.concatenate([game_panel, agent_panel, change_panel], axis=1)
    x_agent, x_change = game_panel.shape[1], game_panel.shape[1] + PANEL
    _text(image, "game", (6, 18))
    _text(image, "agent sees", (x_agent + 6, 18))
    _text(image, f"perturbation x{factor:.0f}" if largest > 0 else "no perturbation", (x_change + 6, 18))
    clean, adv = int(step.clean_action[0]), int(step.action[0])
    line = f"step {tally['steps']}  score {tally['score']:g}  "
    line += f"clean: {names[clean]}  adversarial: {names[adv]}"
    if not step.attacked[0]:
        line += "  (not attacked)"
    _text(image, line, (6, PANEL + 30), RED if clean != adv else WHITE)
    return image


def _text(
    image: np.ndarray, text: str, origin: tuple[int, int], colour: tuple[int, int, int] = WHITE
) -> None:
    cv2.putText(image, text, origin, cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(image, text, origin, cv2.FONT_HERSHEY_SIMPLEX, 0.55, colour, 1, cv2.LINE_AA)

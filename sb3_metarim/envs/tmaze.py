"""The T-maze of Bakker (2001), a standard test of long-term memory in reinforcement learning."""

from typing import Any

import numpy as np
from gymnasium import spaces

from sb3_metarim.envs.rendering import AGENT, FLOOR, GOAL, WALL, CellsRenderedEnv

# Observations as in Bakker (2001), "Reinforcement Learning with Long Short-Term Memory", NIPS 14.
CUE_NORTH = (0.0, 1.0, 1.0)
CUE_SOUTH = (1.0, 1.0, 0.0)
CORRIDOR = (1.0, 0.0, 1.0)
JUNCTION = (0.0, 1.0, 0.0)
NORTH, EAST, SOUTH, WEST = range(4)
GOAL_REWARD = 4.0
PENALTY = -0.1


class TMazeEnv(CellsRenderedEnv):
    """
    A corridor of ``length`` cells ends in a T junction. At the start cell only, the observation says which
    arm (north or south) holds the goal; corridor cells and the junction look the same whatever the cue. At the
    junction, moving north or south ends the episode: +4 in the cued arm (success), -0.1 in the other. Moving
    into a wall costs -0.1 (Bakker's penalty for standing still). Actions: north, east, south, west.

    Reference returns: an optimal agent earns 4.0 in ``length + 1`` steps; an agent without memory that walks
    straight to the junction and guesses earns 1.95 on average (success 0.5). Episodes are truncated after
    ``max_steps`` steps.

    :param length: Cells between the start and the junction (the memory span), >= 1.
    :param max_steps: Steps before truncation (``None``: ``4 * (length + 1)``).
    :param render_mode: ``None`` or ``"rgb_array"`` (the corridor and the two arms, the cued arm in green, the
        agent in red).
    """

    def __init__(self, length: int = 10, max_steps: int | None = None, render_mode: str | None = None) -> None:
        if isinstance(length, bool) or not isinstance(length, int) or length < 1:
            raise ValueError(f"length={length!r}: must be an integer >= 1")
        if max_steps is not None and (not isinstance(max_steps, int) or max_steps <= length):
            raise ValueError(f"max_steps={max_steps!r}: must be an integer > length={length} (or None)")
        self.length = length
        self.max_steps = max_steps or 4 * (length + 1)
        self.init_render_mode(render_mode)
        self.observation_space = spaces.Box(0.0, 1.0, shape=(3,), dtype=np.float32)
        self.action_space = spaces.Discrete(4)
        self._goal_north = True
        self._position = 0
        self._steps = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self._goal_north = bool(self.np_random.integers(2))
        self._position = 0
        self._steps = 0
        return self._observation(), {}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        self._steps += 1
        truncated = self._steps >= self.max_steps
        at_junction = self._position == self.length
        if at_junction and action in (NORTH, SOUTH):
            success = (action == NORTH) == self._goal_north
            return self._observation(), GOAL_REWARD if success else PENALTY, True, False, {"is_success": success}
        if action == EAST and not at_junction:
            self._position += 1
            reward = 0.0
        elif action == WEST and self._position > 0:
            self._position -= 1
            reward = 0.0
        else:
            reward = PENALTY
        info = {"is_success": False} if truncated else {}
        return self._observation(), reward, False, truncated, info

    def render_cells(self) -> np.ndarray:
        # Three rows: the north arm's cell, the corridor, the south arm's cell, both arms at the junction's column.
        cells = np.full((3, self.length + 1, 3), WALL, dtype=np.uint8)
        cells[1] = FLOOR
        cells[0, -1] = GOAL if self._goal_north else FLOOR
        cells[2, -1] = FLOOR if self._goal_north else GOAL
        cells[1, self._position] = AGENT
        return cells

    def _observation(self) -> np.ndarray:
        if self._position == 0:
            cell = CUE_NORTH if self._goal_north else CUE_SOUTH
        else:
            cell = JUNCTION if self._position == self.length else CORRIDOR
        return np.array(cell, dtype=np.float32)

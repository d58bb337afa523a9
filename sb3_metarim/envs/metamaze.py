"""The meta-RL maze of MetODS (Chalvidal et al. 2022, after Miconi et al. 2018): find an invisible goal, again."""

from collections import deque
from typing import Any

import numpy as np
from gymnasium import spaces

from sb3_metarim.common.validation import check_positive_int
from sb3_metarim.envs.rendering import AGENT, FLOOR, GOAL, WALL, CellsRenderedEnv

MOVES = np.array([(-1, 0), (0, 1), (1, 0), (0, -1)])  # up, right, down, left
GOAL_REWARD = 10.0


class MetaMazeEnv(CellsRenderedEnv):
    """
    A random maze (a perfect maze carved by a randomized depth-first search on a ``size`` x ``size`` grid, outer
    walls included, then ``extra_openings`` walls knocked down to make loops) and a goal cell, both drawn at each
    reset, so one episode is one task. The agent sees only the 3 x 3 window of walls around it (9 values, 1 =
    wall), never the goal; it moves up, right, down or left (into a wall: it stays). Reaching the goal pays
    ``10`` and respawns the agent at a random open cell other than the goal; the episode lasts ``episode_steps``
    steps (100) and then is truncated. An agent that remembers where the goal was returns there straight away:
    the reward per episode measures learning within the episode. At the last step ``info["is_success"]`` says
    whether the goal was found at least once (the paper's success; SB3's ``EvalCallback`` logs its rate).

    Use it with ``make_meta_env(..., episodes_per_trial=1)`` (previous action and reward as inputs). The paper's
    test of generalisation runs a trained agent on a larger maze: ``size=13`` (default 9).

    Reference values, cumulative reward per 100-step episode over 2,000 episodes (seeds 0..1999; standard errors
    0.17 and 0.10; tests/test_metods_envs.py re-estimates them on fewer): ``size=9`` (33 open cells) random walk
    4.8 (the paper: 3.8 on its maze), oracle (knows the goal, shortest paths from each respawn) 141; ``size=13``
    (73 open cells) random walk 1.8 (paper: 3.7), oracle 65. An agent must first find the goal, so the best
    achievable is below the oracle. The paper's agents on its maze: RL^2 77.7, MetODS 86.5; larger maze 28.1
    and 34.9.

    :param size: Side of the grid, outer walls included: odd, 7..31 (default 9).
    :param episode_steps: Steps per episode, >= 1 (default 100).
    :param extra_openings: Walls removed after carving, to add loops (default 2).
    :param render_mode: ``None`` or ``"rgb_array"`` (the whole maze: walls, the goal in green, the agent in red).
    """

    def __init__(
        self, size: int = 9, episode_steps: int = 100, extra_openings: int = 2, render_mode: str | None = None
    ) -> None:
        if isinstance(size, bool) or not isinstance(size, int) or size % 2 == 0 or not 7 <= size <= 31:
            raise ValueError(f"size={size!r}: must be an odd integer in 7..31")
        check_positive_int("episode_steps", episode_steps)
        if isinstance(extra_openings, bool) or not isinstance(extra_openings, int) or extra_openings < 0:
            raise ValueError(f"extra_openings={extra_openings!r}: must be an integer >= 0")
        self.size = size
        self.episode_steps = episode_steps
        self.extra_openings = extra_openings
        self.init_render_mode(render_mode)
        self.observation_space = spaces.Box(0.0, 1.0, shape=(9,), dtype=np.float32)
        self.action_space = spaces.Discrete(4)
        self.walls = np.ones((size, size), dtype=bool)
        self.goal = np.zeros(2, dtype=int)
        self.position = np.zeros(2, dtype=int)
        self._t = 0
        self._goal_found = False

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self.walls = carve_maze(self.size, self.extra_openings, self.np_random)
        open_cells = np.argwhere(~self.walls)
        self.goal = open_cells[self.np_random.integers(len(open_cells))]
        self.position = self._respawn()
        self._t = 0
        self._goal_found = False
        return self._observation(), {}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        target = self.position + MOVES[int(action)]
        if not self.walls[tuple(target)]:
            self.position = target
        reward = 0.0
        info: dict[str, Any] = {}
        if np.array_equal(self.position, self.goal):
            reward = GOAL_REWARD
            info["goal_reached"] = self._goal_found = True
            self.position = self._respawn()
        self._t += 1
        truncated = self._t >= self.episode_steps
        if truncated:
            info["is_success"] = self._goal_found
        return self._observation(), reward, False, truncated, info

    def _respawn(self) -> np.ndarray:
        open_cells = [cell for cell in np.argwhere(~self.walls) if not np.array_equal(cell, self.goal)]
        return open_cells[self.np_random.integers(len(open_cells))]

    def _observation(self) -> np.ndarray:
        row, col = self.position
        return self.walls[row - 1 : row + 2, col - 1 : col + 2].astype(np.float32).reshape(9)

    def render_cells(self) -> np.ndarray:
        cells = np.where(self.walls[..., None], np.uint8(WALL), np.uint8(FLOOR))
        cells[tuple(self.goal)] = GOAL
        cells[tuple(self.position)] = AGENT
        return cells

    def distances_to_goal(self) -> np.ndarray:
        """:return: (size, size) shortest-path lengths to the goal (-1 for walls), by breadth-first search."""
        distances = np.full(self.walls.shape, -1)
        distances[tuple(self.goal)] = 0
        queue = deque([tuple(self.goal)])
        while queue:
            cell = queue.popleft()
            for move in MOVES:
                neighbour = (cell[0] + move[0], cell[1] + move[1])
                if not self.walls[neighbour] and distances[neighbour] < 0:
                    distances[neighbour] = distances[cell] + 1
                    queue.append(neighbour)
        return distances


def carve_maze(size: int, extra_openings: int, rng: np.random.Generator) -> np.ndarray:
    """
    :param size: Odd side of the grid, outer walls included.
    :param extra_openings: Inner walls between two corridors to remove after carving (loops).
    :param rng: The generator.
    :return: (size, size) boolean walls: a perfect maze on the odd cells, plus the extra openings.
    """
    walls = np.ones((size, size), dtype=bool)
    start = (1, 1)
    walls[start] = False
    stack = [start]
    while stack:
        row, col = stack[-1]
        neighbours = [
            (row + 2 * dr, col + 2 * dc)
            for dr, dc in MOVES
            if 0 < row + 2 * dr < size - 1 and 0 < col + 2 * dc < size - 1 and walls[row + 2 * dr, col + 2 * dc]
        ]
        if not neighbours:
            stack.pop()
            continue
        nxt = neighbours[rng.integers(len(neighbours))]
        walls[(row + nxt[0]) // 2, (col + nxt[1]) // 2] = False
        walls[nxt] = False
        stack.append(nxt)
    # Inner walls separating two open cells in a line (horizontally or vertically): knocking one down makes a loop.
    candidates = [
        (row, col)
        for row in range(1, size - 1)
        for col in range(1, size - 1)
        if walls[row, col]
        and ((not walls[row - 1, col] and not walls[row + 1, col]) or (not walls[row, col - 1] and not walls[row, col + 1]))
    ]
    for index in rng.permutation(len(candidates))[:extra_openings]:
        walls[candidates[index]] = False
    return walls

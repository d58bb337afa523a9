"""A minimal task that needs memory: recall a cue shown at the first step."""

from typing import Any

import numpy as np
from gymnasium import spaces

from sb3_metarim.envs.rendering import CellsRenderedEnv, grey_cells


class CueMemoryEnv(CellsRenderedEnv):
    """
    One of ``n_cues`` cues is shown at the first step, then ``delay`` blank steps follow, then a query
    step asks for the cue: the action equal to the cue pays 1 and ends the episode with success,
    any other action pays 0. Actions before the query are ignored. A memoryless policy succeeds
    with probability ``1 / n_cues``.

    Observation: ``n_cues + 1`` values: the cue's one-hot (first step only) and a query flag
    (last step only).

    :param n_cues: Number of cues (and actions), >= 2.
    :param delay: Blank steps between the cue and the query, >= 0.
    :param render_mode: ``None`` or ``"rgb_array"`` (the observation as a strip of grey cells).
    """

    def __init__(self, n_cues: int = 2, delay: int = 4, render_mode: str | None = None) -> None:
        if n_cues < 2:
            raise ValueError(f"n_cues={n_cues!r}: must be >= 2")
        if delay < 0:
            raise ValueError(f"delay={delay!r}: must be >= 0")
        self.n_cues = n_cues
        self.delay = delay
        self.init_render_mode(render_mode)
        self.observation_space = spaces.Box(0.0, 1.0, shape=(n_cues + 1,), dtype=np.float32)
        self.action_space = spaces.Discrete(n_cues)
        self._cue = 0
        self._t = 0
        self._obs = np.zeros(n_cues + 1, dtype=np.float32)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self._cue = int(self.np_random.integers(self.n_cues))
        self._t = 0
        obs = np.zeros(self.n_cues + 1, dtype=np.float32)
        obs[self._cue] = 1.0
        self._obs = obs
        return obs, {}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        self._t += 1
        obs = self._obs = np.zeros(self.n_cues + 1, dtype=np.float32)
        if self._t <= self.delay:
            return obs, 0.0, False, False, {}
        if self._t == self.delay + 1:
            obs[-1] = 1.0
            return obs, 0.0, False, False, {}
        success = int(action) == self._cue
        return obs, float(success), True, False, {"is_success": success}

    def render_cells(self) -> np.ndarray:
        return grey_cells(self._obs)

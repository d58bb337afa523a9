"""The Harlow task (Harlow 1949) as MetODS (Chalvidal et al. 2022) and Wang et al. (2018) use it."""

from typing import Any

import numpy as np
from gymnasium import spaces

from sb3_metarim.common.validation import check_positive_int
from sb3_metarim.envs.rendering import CellsRenderedEnv, grey_cells

FIXATE, LEFT, RIGHT = 0, 1, 2
MIN_VALUE_GAP = 0.1


class HarlowEnv(CellsRenderedEnv):
    """
    Two objects, each a random value in [0.1, 1] (at least 0.1 apart), are drawn at each reset; one of them, at
    random, is the rewarded one for the whole episode. The episode is ``n_presentations`` presentations, each
    preceded by ``fixation_steps`` fixation steps. At a presentation the two objects lie on a 1-D line of two
    positions, in an order drawn afresh each time: picking the rewarded object's position pays +1, the other -1
    (action ``FIXATE`` picks nothing and pays 0). Every presentation takes one step; every episode lasts exactly
    ``n_presentations * (fixation_steps + 1)`` steps. Optimal play guesses at the first presentation, then picks
    the rewarded object every time: it learns the rule in one shot (the "learning set" Harlow found in monkeys).

    Observation (3 values): ``[fixation cross, value at the left position, value at the right position]``: the
    cross alone during fixation, the two values (cross off) at a presentation. Actions: ``0`` fixate, ``1`` pick
    left, ``2`` pick right. A fixation step pays ``fixation_reward`` for action ``FIXATE`` (0 by default, as in
    MetODS; Wang et al.'s variant: ``fixation_reward=0.2`` and more presentations, e.g. 6) and 0 otherwise.
    ``info["is_success"]`` at the last step: every presentation after the first was answered correctly.

    One episode is one task (a new pair of objects): use it with ``make_meta_env(..., episodes_per_trial=1)`` (the
    previous action and reward are what the agent learns from); more episodes per trial would replay the same
    objects and orders, since ``TrialWrapper`` resets every inner episode with the trial's seed.

    Reference values (defaults, 5 presentations, fixation reward 0): chance (a random pick, or uniformly random
    actions) earns 0 per episode; the oracle (a guess, then always right) earns 4 (expected; 5 at best), that is
    ``n_presentations - 1``, plus ``n_presentations * fixation_steps * fixation_reward`` when it fixates (Wang's
    variant with 6 presentations: chance 0 plus what it fixates, oracle 5 + 1.2 = 6.2).

    :param n_presentations: Presentations per episode, >= 1 (default 5).
    :param fixation_steps: Fixation steps before each presentation, >= 0 (default 1).
    :param fixation_reward: Reward of fixating during a fixation step (default 0; Wang et al.: 0.2).
    :param render_mode: ``None`` or ``"rgb_array"`` (the observation as three grey cells: the cross, the left and
        the right object's value).
    """

    def __init__(
        self,
        n_presentations: int = 5,
        fixation_steps: int = 1,
        fixation_reward: float = 0.0,
        render_mode: str | None = None,
    ) -> None:
        check_positive_int("n_presentations", n_presentations)
        if isinstance(fixation_steps, bool) or not isinstance(fixation_steps, int) or fixation_steps < 0:
            raise ValueError(f"fixation_steps={fixation_steps!r}: must be an integer >= 0")
        if not isinstance(fixation_reward, (int, float)) or not np.isfinite(fixation_reward):
            raise ValueError(f"fixation_reward={fixation_reward!r}: must be a finite number")
        self.n_presentations = n_presentations
        self.fixation_steps = fixation_steps
        self.fixation_reward = float(fixation_reward)
        self.init_render_mode(render_mode)
        self.observation_space = spaces.Box(0.0, 1.0, shape=(3,), dtype=np.float32)
        self.action_space = spaces.Discrete(3)
        self.values = np.zeros(2)
        self.rewarded = 0
        self._order = np.arange(2)
        self._t = 0
        self._presentation = 0
        self._correct_after_first = 0
        self._shown = np.zeros(3, dtype=np.float32)

    @property
    def episode_length(self) -> int:
        """Steps per episode: ``n_presentations * (fixation_steps + 1)``."""
        return self.n_presentations * (self.fixation_steps + 1)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        while True:
            self.values = self.np_random.uniform(0.1, 1.0, size=2)
            if abs(self.values[0] - self.values[1]) >= MIN_VALUE_GAP:
                break
        self.rewarded = int(self.np_random.integers(2))
        self._t = 0
        self._presentation = 0
        self._correct_after_first = 0
        return self._observation(), {}

    def _in_fixation(self) -> bool:
        return self._t % (self.fixation_steps + 1) < self.fixation_steps

    def _observation(self) -> np.ndarray:
        if self._t >= self.episode_length:
            self._shown = np.zeros(3, dtype=np.float32)
        elif self._in_fixation():
            self._shown = np.array([1.0, 0.0, 0.0], dtype=np.float32)
        else:
            self._order = self.np_random.permutation(2)  # object at the left, object at the right
            self._shown = np.array([0.0, *self.values[self._order]], dtype=np.float32)
        return self._shown.copy()

    def render_cells(self) -> np.ndarray:
        return grey_cells(self._shown)

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        action = int(action)
        info: dict[str, Any] = {}
        if self._in_fixation():
            reward = self.fixation_reward if action == FIXATE else 0.0
        else:
            reward = 0.0
            if action in (LEFT, RIGHT):
                reward = 1.0 if self._order[action - LEFT] == self.rewarded else -1.0
            if self._presentation > 0 and reward > 0:
                self._correct_after_first += 1
            info["presentation"] = self._presentation
            self._presentation += 1
        self._t += 1
        terminated = self._t >= self.episode_length
        if terminated:
            info["is_success"] = self._correct_after_first == self.n_presentations - 1
        return self._observation(), float(reward), terminated, False, info

"""Bernoulli multi-armed bandits whose arm probabilities are drawn per task (Wang et al. 2016): independent and dependent."""

from collections.abc import Sequence
from typing import Any

import numpy as np
from gymnasium import spaces

from sb3_metarim.common.validation import check_positive_int
from sb3_metarim.envs.rendering import AGENT, WALL, CellsRenderedEnv, grey_cells

ARM_PROBABILITIES_OPTION = "arm_probabilities"


class BernoulliBanditEnv(CellsRenderedEnv):
    """
    Each pull of arm ``i`` pays 1 with probability ``p_i``, else 0; an episode is ``pulls_per_episode`` pulls.
    The observation is a constant zero: what an agent learns about the arms comes from its previous actions and
    rewards (see :class:`~sb3_metarim.common.wrappers.PrevActionRewardWrapper`), as in Wang et al. 2016,
    "Learning to reinforcement learn".

    A task is the vector ``p``. A reset with ``options={"arm_probabilities": p}`` plays the task ``p``; any other
    reset draws a new task: each ``p_i`` uniform in [0, 1] (Wang et al.'s independent bandit), or, with
    ``probability_set``, those probabilities in a random order over the arms (``(0.1, 0.9)`` is their "easy"
    two-armed bandit, ``(0.25, 0.75)`` the "medium" one). :meth:`sample_task` draws a task for
    :class:`~sb3_metarim.common.wrappers.TrialWrapper`, which then keeps it for a whole trial, while the rewards stay
    random from pull to pull.

    :param n_arms: Number of arms, >= 2.
    :param pulls_per_episode: Pulls per episode, >= 1.
    :param probability_set: ``None``, or ``n_arms`` probabilities in [0, 1] that each task shuffles over the arms.
    :param render_mode: ``None`` or ``"rgb_array"`` (a cell per arm, its probability as a shade of grey, and below
        it the arm pulled last in red).
    """

    def __init__(
        self,
        n_arms: int = 2,
        pulls_per_episode: int = 1,
        probability_set: Sequence[float] | None = None,
        render_mode: str | None = None,
    ) -> None:
        if isinstance(n_arms, bool) or not isinstance(n_arms, int) or n_arms < 2:
            raise ValueError(f"n_arms={n_arms!r}: must be an integer >= 2")
        check_positive_int("pulls_per_episode", pulls_per_episode)
        self.n_arms = n_arms
        self.pulls_per_episode = pulls_per_episode
        self.init_render_mode(render_mode)
        self.probability_set = None
        if probability_set is not None:
            self.probability_set = self._checked_probabilities("probability_set", probability_set)
        self.observation_space = spaces.Box(0.0, 1.0, shape=(1,), dtype=np.float32)
        self.action_space = spaces.Discrete(n_arms)
        self.arm_probabilities = np.full(n_arms, 0.5)
        self._pulls = 0
        self._last_arm: int | None = None

    def sample_task(self, rng: np.random.Generator) -> dict[str, Any]:
        """
        :param rng: The generator to draw from.
        :return: the reset keyword arguments that play a new task.
        """
        return {"options": {ARM_PROBABILITIES_OPTION: self._draw_probabilities(rng)}}

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        given = (options or {}).get(ARM_PROBABILITIES_OPTION)
        if given is None:
            self.arm_probabilities = self._draw_probabilities(self.np_random)
        else:
            self.arm_probabilities = self._checked_probabilities(f"options[{ARM_PROBABILITIES_OPTION!r}]", given)
        self._pulls = 0
        self._last_arm = None
        return np.zeros(1, dtype=np.float32), {}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        self._pulls += 1
        self._last_arm = int(action)
        reward = float(self.np_random.random() < self.arm_probabilities[int(action)])
        return np.zeros(1, dtype=np.float32), reward, self._pulls >= self.pulls_per_episode, False, {}

    def render_cells(self) -> np.ndarray:
        pulled = np.full((1, self.n_arms, 3), WALL, dtype=np.uint8)
        if self._last_arm is not None:
            pulled[0, self._last_arm] = AGENT
        return np.concatenate((grey_cells(self.arm_probabilities), pulled))

    def _draw_probabilities(self, rng: np.random.Generator) -> np.ndarray:
        if self.probability_set is None:
            return rng.random(self.n_arms)
        return rng.permutation(self.probability_set)

    def _checked_probabilities(self, name: str, probabilities: Sequence[float]) -> np.ndarray:
        values = np.asarray(probabilities, dtype=np.float64)
        if values.shape != (self.n_arms,) or not np.all((values >= 0) & (values <= 1)):
            raise ValueError(f"{name}={probabilities!r}: must be {self.n_arms} probabilities (n_arms), each in [0, 1]")
        return values


DEPENDENT_DIFFICULTIES = {"easy": (0.1, 0.9), "medium": (0.25, 0.75), "hard": (0.4, 0.6), "uniform": None}


class DependentBanditEnv(BernoulliBanditEnv):
    """
    Wang et al.'s (2016) two-armed dependent bandit: ``p_2 = 1 - p_1``, so a pull of either arm tells about both.
    ``difficulty`` draws ``p_1`` per task: ``"easy"`` from {0.1, 0.9}, ``"medium"`` {0.25, 0.75}, ``"hard"``
    {0.4, 0.6}, ``"uniform"`` uniform in [0, 1]. An episode is ``pulls_per_episode`` pulls (100) of one task, so it
    is a whole trial: use ``make_meta_env(..., episodes_per_trial=1)``, which adds the previous action and reward.
    The observation is the pull index as a fraction of the episode, ``t / pulls_per_episode`` (Wang et al.'s
    "trial index" input; 0 at the first pull). Everything else is :class:`BernoulliBanditEnv`'s (tasks by
    ``options={"arm_probabilities": p}`` or :meth:`sample_task`).

    Reference values per 100-pull episode: chance (random arms) 50 at every difficulty (the mean of ``p_1`` and
    ``1 - p_1``); oracle (always the better arm) easy 90, medium 75, hard 60, uniform 75 (the mean of
    ``max(p, 1 - p)``). ``scripts/bandit_regret.py`` compares an agent's cumulative regret with Thompson sampling
    and UCB1 on these tasks.

    :param difficulty: ``"easy"``, ``"medium"``, ``"hard"`` or ``"uniform"``.
    :param pulls_per_episode: Pulls per episode, >= 1 (default 100).
    :param render_mode: ``None`` or ``"rgb_array"`` (as :class:`BernoulliBanditEnv`).
    """

    def __init__(self, difficulty: str = "easy", pulls_per_episode: int = 100, render_mode: str | None = None) -> None:
        if difficulty not in DEPENDENT_DIFFICULTIES:
            raise ValueError(f"difficulty={difficulty!r}: must be one of {tuple(DEPENDENT_DIFFICULTIES)}")
        super().__init__(n_arms=2, pulls_per_episode=pulls_per_episode, render_mode=render_mode)
        self.difficulty = difficulty

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed, options=options)
        given = self.arm_probabilities
        if not np.isclose(given[0] + given[1], 1.0):
            raise ValueError(f"options[{ARM_PROBABILITIES_OPTION!r}]={given.tolist()!r}: a dependent bandit's sum to 1")
        return self._observation(), {}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        _, reward, terminated, truncated, info = super().step(action)
        info = info | {"regret": float(self.arm_probabilities.max() - self.arm_probabilities[int(action)])}
        return self._observation(), reward, terminated, truncated, info

    def _observation(self) -> np.ndarray:
        return np.array([min(self._pulls / self.pulls_per_episode, 1.0)], dtype=np.float32)

    def _draw_probabilities(self, rng: np.random.Generator) -> np.ndarray:
        values = DEPENDENT_DIFFICULTIES[self.difficulty]
        p1 = rng.random() if values is None else values[int(rng.integers(2))]
        return np.array([p1, 1.0 - p1])

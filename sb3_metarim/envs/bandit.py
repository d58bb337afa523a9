"""A Bernoulli multi-armed bandit whose arm probabilities are drawn per task (Wang et al. 2016)."""

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from sb3_metarim.validation import check_positive_int

ARM_PROBABILITIES_OPTION = "arm_probabilities"


class BernoulliBanditEnv(gym.Env):
    """
    Each pull of arm ``i`` pays 1 with probability ``p_i``, else 0; an episode is ``pulls_per_episode`` pulls.
    The observation is a constant zero: what an agent learns about the arms comes from its previous actions and
    rewards (see :class:`~sb3_metarim.wrappers.PrevActionRewardWrapper`), as in Wang et al. 2016,
    "Learning to reinforcement learn".

    A task is the vector ``p``. A reset with ``options={"arm_probabilities": p}`` plays the task ``p``; any other
    reset draws a new task: each ``p_i`` uniform in [0, 1] (Wang et al.'s independent bandit), or, with
    ``probability_set``, those probabilities in a random order over the arms (``(0.1, 0.9)`` is their "easy"
    two-armed bandit, ``(0.25, 0.75)`` the "medium" one). :meth:`sample_task` draws a task for
    :class:`~sb3_metarim.wrappers.TrialWrapper`, which then keeps it for a whole trial, while the rewards stay
    random from pull to pull.

    :param n_arms: Number of arms, >= 2.
    :param pulls_per_episode: Pulls per episode, >= 1.
    :param probability_set: ``None``, or ``n_arms`` probabilities in [0, 1] that each task shuffles over the arms.
    """

    def __init__(self, n_arms: int = 2, pulls_per_episode: int = 1, probability_set: Sequence[float] | None = None) -> None:
        if isinstance(n_arms, bool) or not isinstance(n_arms, int) or n_arms < 2:
            raise ValueError(f"n_arms={n_arms!r}: must be an integer >= 2")
        check_positive_int("pulls_per_episode", pulls_per_episode)
        self.n_arms = n_arms
        self.pulls_per_episode = pulls_per_episode
        self.probability_set = None
        if probability_set is not None:
            self.probability_set = self._checked_probabilities("probability_set", probability_set)
        self.observation_space = spaces.Box(0.0, 1.0, shape=(1,), dtype=np.float32)
        self.action_space = spaces.Discrete(n_arms)
        self.arm_probabilities = np.full(n_arms, 0.5)
        self._pulls = 0

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
        return np.zeros(1, dtype=np.float32), {}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        self._pulls += 1
        reward = float(self.np_random.random() < self.arm_probabilities[int(action)])
        return np.zeros(1, dtype=np.float32), reward, self._pulls >= self.pulls_per_episode, False, {}

    def _draw_probabilities(self, rng: np.random.Generator) -> np.ndarray:
        if self.probability_set is None:
            return rng.random(self.n_arms)
        return rng.permutation(self.probability_set)

    def _checked_probabilities(self, name: str, probabilities: Sequence[float]) -> np.ndarray:
        values = np.asarray(probabilities, dtype=np.float64)
        if values.shape != (self.n_arms,) or not np.all((values >= 0) & (values <= 1)):
            raise ValueError(f"{name}={probabilities!r}: must be {self.n_arms} probabilities (n_arms), each in [0, 1]")
        return values

"""The two-step task (Daw et al. 2011) as Wang et al. (2018, "Prefrontal cortex as a meta-RL system") run it."""

from typing import Any

import numpy as np
from gymnasium import spaces

from sb3_metarim.common.validation import check_positive_int
from sb3_metarim.envs.rendering import AGENT, FLOOR, CellsRenderedEnv, grey_cells

FIRST_STAGE, SECOND_STAGE_A, SECOND_STAGE_B = 0, 1, 2


class TwoStepEnv(CellsRenderedEnv):
    """
    Each trial has two steps. At the first stage (state 0) action 0 leads to second-stage state 1 with probability
    ``common_probability`` (0.8, a "common" transition) and to state 2 otherwise (a "rare" one); action 1 the
    other way round. At the second stage (state 1 or 2) any action ends the trial with a reward of 1 with that
    state's probability, else 0, and the next trial starts at state 0. One second-stage state pays with
    probability ``high_probability`` (0.9), the other ``1 - high_probability``; after each trial they swap with
    probability ``switch_probability`` (0.025). An episode is ``n_trials`` trials (100), ``2 * n_trials`` steps.
    A model-based learner repeats its first-stage choice after a rewarded common trial and switches after a
    rewarded rare one; a model-free one repeats after any reward (the stay probabilities Daw et al. analyse):
    ``info`` of each second-stage step has ``"transition"`` (``"common"`` or ``"rare"``), ``"first_action"`` and
    ``"rewarded_state"``.

    Observation: the state's one-hot (3 values). Actions: 2. Use it with ``make_meta_env(...,
    episodes_per_trial=1)``: the previous action and reward are what the agent learns from.

    Reference values per episode of 100 trials (defaults): chance (a random first-stage choice) 50 (0.5 a trial);
    oracle (knows which state pays more now and takes the common transition to it) 74 (0.8 x 0.9 + 0.2 x 0.1 =
    0.74 a trial).

    :param n_trials: Trials per episode, >= 1 (default 100).
    :param common_probability: Probability of the common transition, in [0.5, 1] (default 0.8).
    :param high_probability: Reward probability of the better second-stage state, in [0.5, 1] (default 0.9).
    :param switch_probability: Probability that the two second-stage states swap after a trial, in [0, 1]
        (default 0.025).
    :param render_mode: ``None`` or ``"rgb_array"`` (the three states in a row: the first stage, then the two
        second-stage states shaded by their reward probability; below, the agent's state in red).
    """

    def __init__(
        self,
        n_trials: int = 100,
        common_probability: float = 0.8,
        high_probability: float = 0.9,
        switch_probability: float = 0.025,
        render_mode: str | None = None,
    ) -> None:
        check_positive_int("n_trials", n_trials)
        for name, value, low in (
            ("common_probability", common_probability, 0.5),
            ("high_probability", high_probability, 0.5),
            ("switch_probability", switch_probability, 0.0),
        ):
            if not isinstance(value, (int, float)) or not low <= value <= 1.0:
                raise ValueError(f"{name}={value!r}: must be a number in [{low}, 1]")
        self.n_trials = n_trials
        self.common_probability = float(common_probability)
        self.high_probability = float(high_probability)
        self.switch_probability = float(switch_probability)
        self.init_render_mode(render_mode)
        self.observation_space = spaces.Box(0.0, 1.0, shape=(3,), dtype=np.float32)
        self.action_space = spaces.Discrete(2)
        self.rewarded_state = SECOND_STAGE_A
        self.state = FIRST_STAGE
        self._trial = 0
        self._first_action = 0
        self._common = True

    @property
    def reward_probabilities(self) -> dict[int, float]:
        """The second-stage states' reward probabilities now."""
        other = SECOND_STAGE_B if self.rewarded_state == SECOND_STAGE_A else SECOND_STAGE_A
        return {self.rewarded_state: self.high_probability, other: 1.0 - self.high_probability}

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self.rewarded_state = SECOND_STAGE_A if self.np_random.random() < 0.5 else SECOND_STAGE_B
        self.state = FIRST_STAGE
        self._trial = 0
        return self._observation(), {}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        action = int(action)
        if self.state == FIRST_STAGE:
            self._first_action = action
            self._common = bool(self.np_random.random() < self.common_probability)
            common_state = SECOND_STAGE_A if action == 0 else SECOND_STAGE_B
            rare_state = SECOND_STAGE_B if action == 0 else SECOND_STAGE_A
            self.state = common_state if self._common else rare_state
            return self._observation(), 0.0, False, False, {}
        info = {
            "transition": "common" if self._common else "rare",
            "first_action": self._first_action,
            "rewarded_state": self.rewarded_state,
        }
        reward = float(self.np_random.random() < self.reward_probabilities[self.state])
        if self.np_random.random() < self.switch_probability:
            self.rewarded_state = SECOND_STAGE_B if self.rewarded_state == SECOND_STAGE_A else SECOND_STAGE_A
        self.state = FIRST_STAGE
        self._trial += 1
        return self._observation(), reward, self._trial >= self.n_trials, False, info

    def render_cells(self) -> np.ndarray:
        probabilities = self.reward_probabilities
        states = grey_cells(np.array([1.0, probabilities[SECOND_STAGE_A], probabilities[SECOND_STAGE_B]]))
        agent = np.full((1, 3, 3), FLOOR, dtype=np.uint8)
        agent[0, self.state] = AGENT
        return np.concatenate((states, agent))

    def _observation(self) -> np.ndarray:
        obs = np.zeros(3, dtype=np.float32)
        obs[self.state] = 1.0
        return obs

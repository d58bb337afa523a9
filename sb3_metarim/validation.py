"""Argument checks shared by the package: a bad value gets a ``ValueError`` naming the argument and what is allowed."""

from typing import Any

import numpy as np
from gymnasium import spaces
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper
from stable_baselines3.common.vec_env.base_vec_env import VecEnvObs, VecEnvStepReturn


def check_positive_int(name: str, value: object) -> None:
    """
    Raise a ``ValueError`` unless ``value`` is an integer >= 1.

    :param name: The argument's name, for the message.
    :param value: The value to check.
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name}={value!r}: must be a positive integer")


def require_key(observation_space: spaces.Space, key: str, user: str) -> spaces.Space:
    """:return: ``observation_space[key]``, or raise a ``ValueError`` saying that ``user`` needs it."""
    if not isinstance(observation_space, spaces.Dict) or key not in observation_space.spaces:
        raise ValueError(f"observation_space={observation_space}: {user} needs a Dict observation with a {key!r} key")
    return observation_space[key]


class VecCheckFinite(VecEnvWrapper):
    """
    Raise a ``ValueError`` as soon as an env returns a NaN or an infinity in an observation (at reset, after a
    step, or the terminal observation of an episode that ended) or a reward, naming the env index, the step of its
    episode, the vec-env step and the observation key. Like SB3's ``VecCheckNan(raise_exception=True)``, which
    names neither the env nor the step; a check with ``np.isfinite`` per step costs microseconds.

    :param venv: The vectorized env to check.
    """

    def __init__(self, venv: VecEnv) -> None:
        super().__init__(venv)
        self.vec_steps = 0
        self.episode_steps = np.zeros(self.num_envs, dtype=np.int64)
        self._actions: np.ndarray | None = None

    def reset(self) -> VecEnvObs:
        obs = self.venv.reset()
        self.episode_steps[:] = 0
        self._check_obs(obs, "observation at reset", range(self.num_envs))
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = actions
        self.venv.step_async(actions)

    def step_wait(self) -> VecEnvStepReturn:
        obs, rewards, dones, infos = self.venv.step_wait()
        self.vec_steps += 1
        self.episode_steps += 1
        self._check(rewards, "reward", range(self.num_envs))
        self._check_obs(obs, "observation", range(self.num_envs))
        for index in np.flatnonzero(dones):
            if "terminal_observation" in infos[index]:
                self._check_obs(infos[index]["terminal_observation"], "terminal observation", [index], batched=False)
        self.episode_steps[dones] = 0
        return obs, rewards, dones, infos

    def _check_obs(self, obs: Any, what: str, envs: Any, batched: bool = True) -> None:
        if isinstance(obs, dict):
            for key, value in obs.items():
                self._check(value, f"{what}[{key!r}]", envs, batched)
        else:
            self._check(obs, what, envs, batched)

    def _check(self, values: Any, what: str, envs: Any, batched: bool = True) -> None:
        array = np.asarray(values)
        if not np.issubdtype(array.dtype, np.floating) or np.isfinite(array).all():
            return
        for position, index in enumerate(envs):
            row = array[position] if batched else array
            bad = ~np.isfinite(row)
            if bad.any():
                kind = "NaN" if np.isnan(row[bad]).any() else "an infinity"
                action = "" if self._actions is None else f", after action {self._actions[index]!r}"
                where = f" at {np.argwhere(bad)[0].tolist()}" if np.ndim(row) else ""
                raise ValueError(
                    f"env {index} returned {kind} in its {what}{where} at step {self.episode_steps[index]} of its episode "
                    f"(vec-env step {self.vec_steps}{action}): fix the env, or wrap it (VecNormalize does not remove "
                    "NaN); MetaRIMPPO(check_nan=False) skips this check"
                )

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


class FiniteCheck:
    """
    Raise a ``ValueError`` as soon as an env returns a NaN or an infinity in an observation (at reset, after a
    step, or the terminal observation of an episode that ended) or a reward, naming the env index, the step of its
    episode, the vec-env step and the observation key. Like SB3's ``VecCheckNan(raise_exception=True)``, which
    names neither the env nor the step; ``np.isfinite`` per step costs microseconds.

    :param num_envs: The vec env's number of envs.
    """

    def __init__(self, num_envs: int) -> None:
        self.num_envs = num_envs
        self.vec_steps = 0
        self.episode_steps = np.zeros(num_envs, dtype=np.int64)
        self.actions: np.ndarray | None = None

    def after_reset(self, obs: VecEnvObs) -> None:
        self.episode_steps[:] = 0
        self._check_obs(obs, "observation at reset", range(self.num_envs))

    def after_step(self, obs: VecEnvObs, rewards: np.ndarray, dones: np.ndarray, infos: list[dict]) -> None:
        self.vec_steps += 1
        self.episode_steps += 1
        self._check(rewards, "reward", range(self.num_envs))
        self._check_obs(obs, "observation", range(self.num_envs))
        for index in np.flatnonzero(dones):
            if "terminal_observation" in infos[index]:
                self._check_obs(infos[index]["terminal_observation"], "terminal observation", [index], batched=False)
        self.episode_steps[dones] = 0

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
                action = "" if self.actions is None else f", after action {self.actions[index]!r}"
                where = f" at {np.argwhere(bad)[0].tolist()}" if np.ndim(row) else ""
                raise ValueError(
                    f"env {index} returned {kind} in its {what}{where} at step {self.episode_steps[index]} of its episode "
                    f"(vec-env step {self.vec_steps}{action}): fix the env, or wrap it (VecNormalize does not remove "
                    "NaN); MetaRIMPPO(check_nan=False) skips this check"
                )


class VecCheckFinite(VecEnvWrapper):
    """
    A ``VecEnvWrapper`` running :class:`FiniteCheck` on what ``venv`` returns. (``MetaRIMPPO(check_nan=True)``
    installs the check in the innermost vec env instead, :func:`install_finite_check`, so that the env keeps its
    type: ``isinstance(model.get_env(), VecNormalize)`` and SB3's eval-env type check stay true.)

    :param venv: The vectorized env to check.
    """

    def __init__(self, venv: VecEnv) -> None:
        super().__init__(venv)
        self.check = FiniteCheck(self.num_envs)

    def reset(self) -> VecEnvObs:
        obs = self.venv.reset()
        self.check.after_reset(obs)
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        self.check.actions = actions
        self.venv.step_async(actions)

    def step_wait(self) -> VecEnvStepReturn:
        result = self.venv.step_wait()
        self.check.after_step(*result)
        return result


FINITE_CHECK_ATTR = "_sb3_metarim_finite_check"


def innermost_vec_env(venv: VecEnv) -> VecEnv:
    """:return: the vec env under every ``VecEnvWrapper`` of ``venv``."""
    while isinstance(venv, VecEnvWrapper):
        venv = venv.venv
    return venv


def install_finite_check(venv: VecEnv) -> FiniteCheck:
    """
    Run :class:`FiniteCheck` on what the innermost vec env of ``venv`` returns (the env's own values, before
    ``VecNormalize``), by wrapping that instance's ``reset``, ``step_async`` and ``step_wait``; idempotent.

    :return: the check (its ``vec_steps`` and ``episode_steps`` count the steps).
    """
    base = innermost_vec_env(venv)
    installed = getattr(base, FINITE_CHECK_ATTR, None)
    if installed is not None:
        return installed[0]
    check = FiniteCheck(base.num_envs)
    reset, step_async, step_wait = base.reset, base.step_async, base.step_wait

    def checked_reset() -> VecEnvObs:
        obs = reset()
        check.after_reset(obs)
        return obs

    def checked_step_async(actions: np.ndarray) -> None:
        check.actions = actions
        step_async(actions)

    def checked_step_wait() -> VecEnvStepReturn:
        result = step_wait()
        check.after_step(*result)
        return result

    base.reset, base.step_async, base.step_wait = checked_reset, checked_step_async, checked_step_wait
    setattr(base, FINITE_CHECK_ATTR, (check, (reset, step_async, step_wait)))
    return check


def remove_finite_check(venv: VecEnv) -> None:
    """Undo :func:`install_finite_check` (nothing if it is not installed)."""
    base = innermost_vec_env(venv)
    installed = getattr(base, FINITE_CHECK_ATTR, None)
    if installed is not None:
        base.reset, base.step_async, base.step_wait = installed[1]
        delattr(base, FINITE_CHECK_ATTR)

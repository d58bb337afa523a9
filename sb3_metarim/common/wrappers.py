"""
Meta-RL (RL^2) wrappers: show the agent its previous action and reward, and chain episodes of one task into a trial;
and :class:`ScaleReward`, a training-time reward scale.

Recommended order, innermost first: the env, ``TrialWrapper``, SB3's ``Monitor``, ``PrevActionRewardWrapper``
(what :func:`sb3_metarim.envs.make_meta_env` builds):

- ``PrevActionRewardWrapper`` goes outside ``TrialWrapper`` so the previous action and reward carry across the
  inner episodes of a trial: the reward of an inner episode's last step is shown at the first step of the next
  one (inside, every inner reset would zero them, and a one-step episode would never show its reward). Its
  ``"first_step"`` flag then comes from ``info[INNER_EPISODE_START]``, which ``TrialWrapper`` sets.
- ``Monitor`` goes outside ``TrialWrapper`` so it reports a whole trial as one episode (inside, SB3 would log
  every inner episode as an episode).
"""

from collections.abc import Callable
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from sb3_metarim.common.validation import check_positive_int

PREV_ACTION_KEY = "prev_action"
PREV_REWARD_KEY = "prev_reward"
FIRST_STEP_KEY = "first_step"
ORIGINAL_OBS_KEY = "obs"
# info keys set by TrialWrapper
INNER_EPISODE_START = "inner_episode_start"
INNER_EPISODE = "inner_episode"

TaskSampler = Callable[[np.random.Generator], dict[str, Any]]
TASK_KEYS = ("seed", "options")


class ActionEncoder:
    """
    Encodes an action as a flat float vector: one-hot for ``Discrete``, one one-hot per component for
    ``MultiDiscrete``, the raw values for ``Box`` and ``MultiBinary``.

    :param action_space: The env's action space.
    """

    def __init__(self, action_space: spaces.Space) -> None:
        self.one_hot = isinstance(action_space, (spaces.Discrete, spaces.MultiDiscrete))
        if self.one_hot:
            choices = np.asarray(action_space.n if isinstance(action_space, spaces.Discrete) else action_space.nvec)
            self.first_index = np.concatenate([[0], np.cumsum(choices.ravel())[:-1]]).astype(np.int64)
            self.start = np.asarray(action_space.start).ravel()
            self.space = spaces.Box(0.0, 1.0, shape=(int(choices.sum()),), dtype=np.float32)
        elif isinstance(action_space, spaces.Box):
            # Widen the bounds to hold the zeros shown after a reset.
            low, high = np.minimum(action_space.low, 0.0), np.maximum(action_space.high, 0.0)
            self.space = spaces.Box(low.astype(np.float32), high.astype(np.float32), dtype=np.float32)
        elif isinstance(action_space, spaces.MultiBinary):
            self.space = spaces.Box(0.0, 1.0, shape=action_space.shape, dtype=np.float32)
        else:
            raise ValueError(
                f"action_space={action_space}: PrevActionRewardWrapper supports Discrete, MultiDiscrete, Box and "
                "MultiBinary action spaces"
            )

    def encode(self, action: Any) -> np.ndarray:
        """:return: ``action`` as an element of ``self.space``."""
        if not self.one_hot:
            return np.asarray(action, dtype=np.float32).reshape(self.space.shape)
        encoded = np.zeros(self.space.shape, dtype=np.float32)
        encoded[self.first_index + np.asarray(action).ravel() - self.start] = 1.0
        return encoded

    def no_action(self) -> np.ndarray:
        """:return: the zeros shown before the first action."""
        return np.zeros(self.space.shape, dtype=np.float32)


class PrevActionRewardWrapper(gym.Wrapper):
    """
    Adds the previous action and reward to the observation, which becomes a ``Dict``: the original observation
    (its keys kept if it was a ``Dict``, else under ``"obs"``), ``"prev_action"`` (see :class:`ActionEncoder`)
    and ``"prev_reward"`` (shape ``(1,)``), both zeros after a reset. With ``first_step=True``, a ``"first_step"``
    flag (shape ``(1,)``) is 1 at the first step of an episode: after a reset, and after a step whose ``info``
    has ``INNER_EPISODE_START`` (set by :class:`TrialWrapper` when it restarts the inner env). See the module's
    docstring for the recommended order with ``TrialWrapper``.

    :param env: The env to wrap; its action space must be Discrete, MultiDiscrete, Box or MultiBinary.
    :param first_step: Whether to add the ``"first_step"`` flag.
    """

    def __init__(self, env: gym.Env, first_step: bool = False) -> None:
        super().__init__(env)
        self.encoder = ActionEncoder(env.action_space)
        self.first_step = first_step
        self.observation_space = spaces.Dict(self._original_spaces() | self._added_spaces())

    def _original_spaces(self) -> dict[str, spaces.Space]:
        original = self.env.observation_space
        if not isinstance(original, spaces.Dict):
            return {ORIGINAL_OBS_KEY: original}
        taken = sorted(set(original.spaces) & set(self._added_spaces()))
        if taken:
            raise ValueError(f"observation_space={original}: already has the key(s) {taken} that PrevActionRewardWrapper adds")
        return dict(original.spaces)

    def _added_spaces(self) -> dict[str, spaces.Space]:
        added = {
            PREV_ACTION_KEY: self.encoder.space,
            PREV_REWARD_KEY: spaces.Box(-np.inf, np.inf, shape=(1,), dtype=np.float32),
        }
        if self.first_step:
            added[FIRST_STEP_KEY] = spaces.Box(0.0, 1.0, shape=(1,), dtype=np.float32)
        return added

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[dict, dict[str, Any]]:
        obs, info = self.env.reset(seed=seed, options=options)
        return self._observation(obs, self.encoder.no_action(), 0.0, first=True), info

    def step(self, action: Any) -> tuple[dict[str, Any], SupportsFloat, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        first = bool(info.get(INNER_EPISODE_START, False))
        return self._observation(obs, self.encoder.encode(action), reward, first), reward, terminated, truncated, info

    def _observation(self, obs: Any, prev_action: np.ndarray, prev_reward: SupportsFloat, first: bool) -> dict[str, Any]:
        observation = dict(obs) if isinstance(obs, dict) else {ORIGINAL_OBS_KEY: obs}
        observation[PREV_ACTION_KEY] = prev_action
        observation[PREV_REWARD_KEY] = np.array([prev_reward], dtype=np.float32)
        if self.first_step:
            observation[FIRST_STEP_KEY] = np.array([float(first)], dtype=np.float32)
        return observation


def seed_task(rng: np.random.Generator) -> dict[str, Any]:
    """
    The default task: a reset seed. Every inner episode of a trial resets the env with it, so e.g. a MiniGrid
    layout and mission stay the same within a trial and change between trials.

    :param rng: The trial wrapper's task generator.
    :return: the inner resets' keyword arguments.
    """
    return {"seed": int(rng.integers(2**31))}


class TrialWrapper(gym.Wrapper):
    """
    One outer episode (a trial) = ``episodes_per_trial`` inner episodes of the same task.

    At each outer reset the wrapper samples a task: the keyword arguments (``seed`` and/or ``options``) of every
    inner reset of the trial. The sampler is ``task_sampler`` if given, else the env's own
    ``env.unwrapped.sample_task(rng)`` if it defines one (as :class:`~sb3_metarim.envs.BernoulliBanditEnv`
    does), else :func:`seed_task`. It draws from the wrapper's own generator, seeded by the outer reset's
    ``seed``, so seeds reproduce. When the task has no ``seed``, the outer seed (if any) seeds the first inner
    reset; the outer ``options`` reach every inner reset unless the task sets its own.

    When an inner episode ends (terminated or truncated) before the trial's last, the wrapper resets the inner
    env itself and returns the new episode's first observation, so SB3 sees one episode and the recurrent state
    carries over. That step's ``info`` has ``INNER_EPISODE_START`` set (the inner reset's own ``info`` is not
    reported). The step that ends an inner episode reports it in ``info[INNER_EPISODE]``:
    ``{"index", "return", "length", "success"}`` (``index`` counts from 0; ``success`` is the inner
    ``info["is_success"]`` if present, else whether it terminated with a positive reward, as MiniGrid pays
    only for reaching the goal). The trial terminates after its last inner episode, however that ended, since
    nothing follows it; ``max_trial_steps`` truncates a trial that takes longer (its unfinished inner episode
    is not reported).

    :param env: The inner env.
    :param episodes_per_trial: Inner episodes per trial, >= 1.
    :param task_sampler: ``rng -> dict`` with keys among ``"seed"`` and ``"options"``; ``None`` picks the
        default described above.
    :param max_trial_steps: Steps after which a trial is truncated, ``None`` for no cap.
    """

    def __init__(
        self,
        env: gym.Env,
        episodes_per_trial: int,
        task_sampler: TaskSampler | None = None,
        max_trial_steps: int | None = None,
    ) -> None:
        check_positive_int("episodes_per_trial", episodes_per_trial)
        if max_trial_steps is not None:
            check_positive_int("max_trial_steps", max_trial_steps)
        super().__init__(env)
        self.episodes_per_trial = episodes_per_trial
        self.max_trial_steps = max_trial_steps
        self.task_sampler = task_sampler or getattr(env.unwrapped, "sample_task", seed_task)
        self.task: dict[str, Any] = {}
        self._task_rng = np.random.default_rng()
        self._episode_index = 0
        self._episode_return = 0.0
        self._episode_length = 0
        self._trial_length = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        if seed is not None:
            self._task_rng = np.random.default_rng(seed)
        self.task = {"options": options} | check_task(self.task_sampler(self._task_rng))
        self._episode_index = 0
        self._trial_length = 0
        return self._reset_inner(seed)

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._episode_return += float(reward)
        self._episode_length += 1
        self._trial_length += 1
        capped = self.max_trial_steps is not None and self._trial_length >= self.max_trial_steps
        if not (terminated or truncated):
            return obs, reward, False, capped, info

        info = info | {INNER_EPISODE: self._summary(terminated, reward, info)}
        self._episode_index += 1
        if self._episode_index == self.episodes_per_trial:
            return obs, reward, True, False, info
        if capped:
            return obs, reward, False, True, info
        obs, _ = self._reset_inner()
        return obs, reward, False, False, info | {INNER_EPISODE_START: True}

    def _reset_inner(self, seed: int | None = None) -> tuple[Any, dict[str, Any]]:
        self._episode_return = 0.0
        self._episode_length = 0
        obs, info = self.env.reset(**({"seed": seed} | self.task))
        return obs, info | {INNER_EPISODE_START: True}

    def _summary(self, terminated: bool, reward: SupportsFloat, info: dict[str, Any]) -> dict[str, Any]:
        success = info.get("is_success", terminated and float(reward) > 0)
        return {
            "index": self._episode_index,
            "return": self._episode_return,
            "length": self._episode_length,
            "success": bool(success),
        }


def check_task(task: Any) -> dict[str, Any]:
    """:return: ``task`` if it is a dict of inner-reset keyword arguments, else raise a ``ValueError``."""
    if not isinstance(task, dict) or not set(task) <= set(TASK_KEYS):
        raise ValueError(f"task={task!r}: a task sampler must return a dict with keys among {TASK_KEYS}")
    return task


class ScaleReward(gym.wrappers.TransformReward):
    """
    Multiplies every reward by ``scale``: BabyAI's ``--reward-scale`` (Chevalier-Boisvert et al. 2019 train with 20,
    so that MiniGrid's rewards below 1 give value targets and advantages of a useful size). Put it outside SB3's
    ``Monitor`` (the harness's ``env_wrapper`` key does) and the logged and evaluated returns stay unscaled.

    :param env: The env.
    :param scale: The factor, a positive number.
    """

    def __init__(self, env: gym.Env, scale: float) -> None:
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not scale > 0 or not np.isfinite(scale):
            raise ValueError(f"scale={scale!r}: must be a positive finite number")
        super().__init__(env, lambda reward: scale * reward)
        self.scale = float(scale)

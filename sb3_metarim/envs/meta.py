"""
:func:`make_meta_env`: the whole meta-RL stack (trials, previous action and reward, Monitor) as a VecEnv, for any
gymnasium env; MiniGrid/BabyAI envs also get their mission as tokens and their grid as ids.

.. code-block:: python

    env = make_meta_env("sb3_metarim/BernoulliBandit-v0", n_envs=8, episodes_per_trial=10, seed=0)
    env = make_meta_env("BabyAI-GoToLocalS6N2-v0", n_envs=8, episodes_per_trial=2, seed=0)
    model = MetaRIMPPO("MultiInputPolicy", env, policy_kwargs=dict(features_extractor_class=MiniGridFeaturesExtractor))
"""

import sys
from functools import partial
from typing import Any

import gymnasium as gym
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv

from sb3_metarim.common.validation import check_positive_int
from sb3_metarim.common.wrappers import PrevActionRewardWrapper, TaskSampler, TrialWrapper


def make_meta_env(
    env_id: str,
    n_envs: int = 1,
    episodes_per_trial: int = 1,
    seed: int | None = None,
    *,
    env_kwargs: dict[str, Any] | None = None,
    task_sampler: TaskSampler | None = None,
    max_trial_steps: int | None = None,
    strict_mission: bool = False,
    monitor_dir: str | None = None,
    vec_env_cls: type[DummyVecEnv | SubprocVecEnv] | None = None,
    vec_env_kwargs: dict[str, Any] | None = None,
) -> VecEnv:
    """
    A VecEnv of meta-RL trials ready for ``MetaRIMPPO("MultiInputPolicy", env)``. Each env is, innermost first:
    ``gym.make(env_id, **env_kwargs)``; for MiniGrid/BabyAI :class:`MissionTokenWrapper` and
    :class:`GridIdsWrapper`; :class:`~sb3_metarim.common.wrappers.TrialWrapper`;
    SB3's ``Monitor``; :class:`~sb3_metarim.common.wrappers.PrevActionRewardWrapper` with its ``"first_step"`` flag.

    This order matters: ``Monitor`` outside ``TrialWrapper`` reports each trial as one episode (inside, SB3 would
    log every inner episode), and ``PrevActionRewardWrapper`` outside it carries the previous action and reward
    across the inner episodes of a trial, marking each inner episode's first step from the
    ``INNER_EPISODE_START`` flag that ``TrialWrapper`` sets in ``info``.

    SB3's default ``CombinedExtractor`` works on the result (it flattens the grid and the token ids); for
    MiniGrid/BabyAI pass ``policy_kwargs=dict(features_extractor_class=MiniGridFeaturesExtractor)``, which embeds
    them. Log the adaptation within trials with :class:`~sb3_metarim.common.callbacks.TrialLogger`.

    :param env_id: A registered gymnasium id (MiniGrid/BabyAI, ``"sb3_metarim/BernoulliBandit-v0"``, any other).
    :param n_envs: Number of envs.
    :param episodes_per_trial: Inner episodes per trial (episodes of one task, e.g. one MiniGrid layout).
    :param seed: Seed of env ``i`` is ``seed + i`` (it seeds its trial wrapper's task draws); ``None``: random.
    :param env_kwargs: Keyword arguments of ``gym.make``.
    :param task_sampler: See :class:`~sb3_metarim.common.wrappers.TrialWrapper` (``None``: the env's ``sample_task``
        if it has one, else a reset seed per trial).
    :param max_trial_steps: Steps after which a trial is truncated, ``None`` for no cap.
    :param strict_mission: Raise a ``ValueError`` on a mission word outside the vocabulary instead of
        mapping it to ``UNK_ID``.
    :param monitor_dir: Folder of the ``Monitor`` files (one line per trial), ``None`` for none.
    :param vec_env_cls: ``DummyVecEnv`` (default) or ``SubprocVecEnv``.
    :param vec_env_kwargs: Keyword arguments of ``vec_env_cls``.
    :return: The VecEnv.
    """
    check_positive_int("n_envs", n_envs)
    check_positive_int("episodes_per_trial", episodes_per_trial)
    if max_trial_steps is not None:
        check_positive_int("max_trial_steps", max_trial_steps)
    make_trial_env = partial(
        _make_trial_env,
        env_id,
        env_kwargs or {},
        episodes_per_trial=episodes_per_trial,
        task_sampler=task_sampler,
        max_trial_steps=max_trial_steps,
        strict_mission=strict_mission,
    )
    return make_vec_env(
        make_trial_env,
        n_envs=n_envs,
        seed=seed,
        monitor_dir=monitor_dir,
        wrapper_class=PrevActionRewardWrapper,
        wrapper_kwargs=dict(first_step=True),
        vec_env_cls=vec_env_cls,
        vec_env_kwargs=vec_env_kwargs,
    )


def _make_trial_env(
    env_id: str,
    env_kwargs: dict[str, Any],
    episodes_per_trial: int,
    task_sampler: TaskSampler | None,
    max_trial_steps: int | None,
    strict_mission: bool,
) -> TrialWrapper:
    env = gym.make(env_id, **env_kwargs)
    if is_minigrid(env):
        from sb3_metarim.envs.minigrid import GridIdsWrapper, MissionTokenWrapper  # needs the minigrid package

        env = GridIdsWrapper(MissionTokenWrapper(env, strict=strict_mission))
    return TrialWrapper(env, episodes_per_trial, task_sampler=task_sampler, max_trial_steps=max_trial_steps)


def is_minigrid(env: gym.Env) -> bool:
    """:return: whether ``env`` is a MiniGrid/BabyAI env (without importing minigrid: such an env has imported it)."""
    minigrid_env = sys.modules.get("minigrid.minigrid_env")
    return minigrid_env is not None and isinstance(env.unwrapped, minigrid_env.MiniGridEnv)

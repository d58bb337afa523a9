"""Rules of the T-maze (Bakker 2001)."""

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3.common.env_checker import check_env

from sb3_metarim.envs.tmaze import CORRIDOR, CUE_NORTH, CUE_SOUTH, EAST, JUNCTION, NORTH, SOUTH, WEST, TMazeEnv


def walk_to_junction(env: TMazeEnv) -> None:
    for _ in range(env.length):
        _, reward, terminated, truncated, _ = env.step(EAST)
        assert reward == 0.0 and not terminated and not truncated


@pytest.mark.parametrize("seed", range(6))
def test_the_cue_names_the_rewarded_arm(seed):
    env = TMazeEnv(length=3)
    obs, _ = env.reset(seed=seed)
    goal_north = tuple(obs) == CUE_NORTH
    assert tuple(obs) in (CUE_NORTH, CUE_SOUTH)
    walk_to_junction(env)
    _, reward, terminated, _, info = env.step(NORTH if goal_north else SOUTH)
    assert (reward, terminated, info["is_success"]) == (4.0, True, True)
    env.reset(seed=seed)
    walk_to_junction(env)
    _, reward, terminated, _, info = env.step(SOUTH if goal_north else NORTH)
    assert (reward, terminated, info["is_success"]) == (-0.1, True, False)


def test_corridor_and_junction_hide_the_cue_and_walls_cost():
    env = TMazeEnv(length=2)
    env.reset(seed=0)
    assert env.step(WEST)[1] == -0.1  # wall behind the start
    assert env.step(NORTH)[1] == -0.1  # corridor wall
    assert tuple(env.step(EAST)[0]) == CORRIDOR
    assert tuple(env.step(EAST)[0]) == JUNCTION
    assert env.step(EAST)[1] == -0.1  # end of the T
    assert tuple(env.step(WEST)[0]) == CORRIDOR


def test_truncates_after_max_steps_and_is_deterministic():
    env = TMazeEnv(length=2, max_steps=5)
    env.reset(seed=1)
    results = [env.step(NORTH) for _ in range(5)]
    assert [r[3] for r in results] == [False] * 4 + [True]
    assert results[-1][4]["is_success"] is False
    first = [TMazeEnv(length=4).reset(seed=s)[0] for s in range(10)]
    again = [TMazeEnv(length=4).reset(seed=s)[0] for s in range(10)]
    assert np.array_equal(first, again)


def test_passes_check_env_and_is_registered():
    check_env(TMazeEnv(length=3))
    assert gym.make("sb3_metarim/TMaze-v0", length=5).unwrapped.length == 5


@pytest.mark.parametrize("kwargs, message", [(dict(length=0), "length=0"), (dict(length=3, max_steps=3), "max_steps=3")])
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TMazeEnv(**kwargs)

"""``render_mode="rgb_array"`` on every env the package registers: frames, their content, and SB3's make_vec_env."""

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from stable_baselines3.common.env_util import make_vec_env

import sb3_metarim.envs  # noqa: F401  (registers the envs)
from sb3_metarim.envs import BernoulliBanditEnv, MetaMazeEnv, TMazeEnv, TwoStepEnv
from sb3_metarim.envs.rendering import AGENT, CELL_PIXELS, GOAL, WALL

ENV_IDS = sorted(env_id for env_id in gym.registry if env_id.startswith("sb3_metarim/"))


def cell(frame: np.ndarray, row: int, col: int) -> tuple[int, ...]:
    """The colour at the centre of cell (row, col) of a frame."""
    return tuple(frame[row * CELL_PIXELS + CELL_PIXELS // 2, col * CELL_PIXELS + CELL_PIXELS // 2])


def test_every_env_is_listed() -> None:
    assert len(ENV_IDS) == 7


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_frames_and_env_checker(env_id: str) -> None:
    env = gym.make(env_id, render_mode="rgb_array")
    check_env(env.unwrapped)  # gymnasium's checker, its render checks included
    env.reset(seed=0)
    for _ in range(5):
        frame = env.render()
        assert frame.dtype == np.uint8 and frame.ndim == 3 and frame.shape[2] == 3
        assert frame.shape[0] % CELL_PIXELS == 0 and frame.shape[1] % CELL_PIXELS == 0
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            env.reset()


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_make_vec_env_asks_for_frames_without_a_warning(env_id: str) -> None:
    # SB3's make_vec_env passes render_mode="rgb_array"; an env without that mode makes gymnasium warn.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        vec_env = make_vec_env(env_id, n_envs=1)
    assert not [str(w.message) for w in caught if "render" in str(w.message)]
    vec_env.reset()
    assert vec_env.render(mode="rgb_array").dtype == np.uint8


def test_no_frames_without_the_mode() -> None:
    env = MetaMazeEnv()
    env.reset(seed=0)
    assert env.render() is None


def test_unknown_render_mode_is_refused() -> None:
    with pytest.raises(ValueError, match=r"render_mode='human'.*rgb_array"):
        MetaMazeEnv(render_mode="human")


def test_maze_frame_shows_walls_goal_and_agent() -> None:
    env = MetaMazeEnv(render_mode="rgb_array")
    env.reset(seed=3)
    frame = env.render()
    assert frame.shape == (9 * CELL_PIXELS, 9 * CELL_PIXELS, 3)
    assert cell(frame, *env.goal) == GOAL
    assert cell(frame, *env.position) == AGENT
    walls = np.array([[cell(frame, row, col) for col in range(9)] for row in range(9)])
    assert np.array_equal((walls == WALL).all(axis=-1), env.walls)


def test_tmaze_frame_shows_the_cued_arm_and_the_agent() -> None:
    env = TMazeEnv(length=4, render_mode="rgb_array")
    for seed in range(4):
        env.reset(seed=seed)
        env.step(1)  # east
        frame = env.render()
        assert frame.shape == (3 * CELL_PIXELS, 5 * CELL_PIXELS, 3)
        assert cell(frame, 1, 1) == AGENT
        assert (cell(frame, 0, 4) == GOAL) == env._goal_north
        assert (cell(frame, 2, 4) == GOAL) != env._goal_north


def test_bandit_frame_shows_the_probabilities_and_the_last_pull() -> None:
    env = BernoulliBanditEnv(n_arms=3, pulls_per_episode=5, render_mode="rgb_array")
    env.reset(seed=0, options={"arm_probabilities": [0.0, 0.5, 1.0]})
    env.step(2)
    frame = env.render()
    assert [cell(frame, 0, arm) for arm in range(3)] == [(0, 0, 0), (128, 128, 128), (255, 255, 255)]
    assert [cell(frame, 1, arm) == AGENT for arm in range(3)] == [False, False, True]


def test_two_step_frame_follows_the_state() -> None:
    env = TwoStepEnv(render_mode="rgb_array")
    env.reset(seed=0)
    assert cell(env.render(), 1, 0) == AGENT
    env.step(0)
    assert cell(env.render(), 1, env.state) == AGENT

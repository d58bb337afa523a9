"""PrevActionRewardWrapper, TrialWrapper, ScaleReward and the Bernoulli bandit, on real environments."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces
from stable_baselines3.common.envs import IdentityEnvBox, IdentityEnvMultiBinary, IdentityEnvMultiDiscrete
from stable_baselines3.common.monitor import Monitor

from sb3_metarim.common.wrappers import (
    INNER_EPISODE,
    INNER_EPISODE_START,
    PrevActionRewardWrapper,
    ScaleReward,
    TrialWrapper,
)
from sb3_metarim.envs import BernoulliBanditEnv, make_meta_env

CUE_EPISODE_LENGTH = 6  # CueMemory with delay=4: cue, 4 blanks, query, answer
MAX_TRIAL_STEPS = 100  # more than any trial below takes: a wrapper that never ends a trial fails instead of hanging


def cue_env(**kwargs) -> gym.Env:
    return gym.make("sb3_metarim/CueMemory-v0", n_cues=3, delay=4, **kwargs)


def run_trial(env: gym.Env, action=0, seed: int | None = None) -> tuple[list, list[dict], bool, bool]:
    """Steps ``env`` with a fixed action until the outer episode ends. :return: observations, infos, terminated, truncated."""
    obs, info = env.reset(seed=seed)
    observations, infos = [obs], [info]
    terminated = truncated = False
    while not (terminated or truncated):
        assert len(observations) <= MAX_TRIAL_STEPS, "the trial does not end"
        obs, _, terminated, truncated, info = env.step(action)
        observations.append(obs)
        infos.append(info)
    return observations, infos, terminated, truncated


def inner_episodes(infos: list[dict]) -> list[dict]:
    return [info[INNER_EPISODE] for info in infos if INNER_EPISODE in info]


# PrevActionRewardWrapper


def test_prev_action_reward_after_reset_and_each_step():
    bare, wrapped = cue_env(), PrevActionRewardWrapper(cue_env())
    bare_obs, _ = bare.reset(seed=3)
    obs, _ = wrapped.reset(seed=3)
    assert set(obs) == {"obs", "prev_action", "prev_reward"}
    np.testing.assert_array_equal(obs["obs"], bare_obs)
    np.testing.assert_array_equal(obs["prev_action"], np.zeros(3))
    np.testing.assert_array_equal(obs["prev_reward"], [0.0])
    for action in [2, 0, 1, 1, 2, int(np.argmax(bare_obs[:3]))]:
        bare_obs, bare_reward, *_ = bare.step(action)
        obs, reward, *_ = wrapped.step(action)
        assert wrapped.observation_space.contains(obs)
        np.testing.assert_array_equal(obs["obs"], bare_obs)
        np.testing.assert_array_equal(obs["prev_action"], np.eye(3)[action])
        np.testing.assert_array_equal(obs["prev_reward"], [bare_reward])
        assert reward == bare_reward
    assert reward == 1.0, "the last action answered the cue"


def test_dict_observation_keeps_its_keys():
    env = PrevActionRewardWrapper(gym.make("MiniGrid-Empty-5x5-v0"), first_step=True)
    assert set(env.observation_space.spaces) == {"image", "direction", "mission", "prev_action", "prev_reward", "first_step"}
    obs, _ = env.reset(seed=0)
    assert obs["mission"] == "get to the green goal square"
    assert obs["image"].shape == (7, 7, 3) and obs["first_step"][0] == 1.0
    obs, *_ = env.step(2)
    np.testing.assert_array_equal(obs["prev_action"], np.eye(7)[2])
    assert obs["first_step"][0] == 0.0


@pytest.mark.parametrize(
    "inner, action, expected",
    [
        (IdentityEnvMultiDiscrete(dim=3), np.array([2, 0]), [0, 0, 1, 1, 0, 0]),
        (IdentityEnvBox(low=-1.0, high=1.0), np.array([0.25]), [0.25]),
        (IdentityEnvMultiBinary(dim=3), np.array([1, 0, 1]), [1, 0, 1]),
    ],
    ids=["MultiDiscrete", "Box", "MultiBinary"],
)
def test_prev_action_encoding(inner, action, expected):
    env = PrevActionRewardWrapper(inner)
    obs, _ = env.reset(seed=0)
    np.testing.assert_array_equal(obs["prev_action"], np.zeros(len(expected)))
    obs, *_ = env.step(action)
    np.testing.assert_allclose(obs["prev_action"], expected)
    assert env.observation_space.contains(obs)


def test_box_action_bounds_hold_the_zero_shown_after_reset():
    env = PrevActionRewardWrapper(IdentityEnvBox(low=0.5, high=2.0))
    obs, _ = env.reset(seed=0)
    assert env.observation_space["prev_action"].low[0] == 0.0
    assert env.observation_space.contains(obs)


def test_unsupported_action_space_and_taken_keys_are_refused():
    env = gym.Wrapper(gym.make("CartPole-v1"))
    env.action_space = spaces.Tuple([spaces.Discrete(2), spaces.Discrete(3)])
    with pytest.raises(ValueError, match=r"action_space=Tuple.*supports Discrete, MultiDiscrete, Box and MultiBinary"):
        PrevActionRewardWrapper(env)
    with pytest.raises(ValueError, match=r"already has the key\(s\) \['prev_action', 'prev_reward'\]"):
        PrevActionRewardWrapper(PrevActionRewardWrapper(cue_env()))


# TrialWrapper


def test_a_trial_is_k_inner_episodes():
    env = TrialWrapper(cue_env(), episodes_per_trial=3)
    observations, infos, terminated, truncated = run_trial(env, seed=0)
    assert (terminated, truncated) == (True, False)
    assert len(observations) == 1 + 3 * CUE_EPISODE_LENGTH
    episodes = inner_episodes(infos)
    assert [episode["index"] for episode in episodes] == [0, 1, 2]
    assert [episode["length"] for episode in episodes] == [CUE_EPISODE_LENGTH] * 3
    starts = [step for step, info in enumerate(infos) if info.get(INNER_EPISODE_START)]
    assert starts == [0, CUE_EPISODE_LENGTH, 2 * CUE_EPISODE_LENGTH], "reset and the two restarts"
    # Each inner episode starts by showing its cue: the wrapper returned the restarted env's first observation.
    for start in starts:
        assert observations[start][:3].sum() == 1.0


def test_info_fields_match_the_inner_episodes():
    env = TrialWrapper(cue_env(), episodes_per_trial=4)
    obs, _ = env.reset(seed=1)
    answer_offsets = [0, 1, 2, 0]  # the right answer in episodes 0 and 3 only
    rewards, episodes = [], []
    for _ in range(4 * CUE_EPISODE_LENGTH):
        if obs[:3].sum() == 1.0:  # a cue: the first observation of an inner episode
            answer = (int(np.argmax(obs[:3])) + answer_offsets[len(episodes)]) % 3
        obs, reward, *_, info = env.step(answer)
        rewards.append(reward)
        if INNER_EPISODE in info:
            episodes.append(info[INNER_EPISODE])
            assert info[INNER_EPISODE]["return"] == sum(rewards[-CUE_EPISODE_LENGTH:])
    assert [episode["success"] for episode in episodes] == [True, False, False, True]
    assert [episode["return"] for episode in episodes] == [1.0, 0.0, 0.0, 1.0]
    assert [episode["index"] for episode in episodes] == [0, 1, 2, 3]
    assert set(episodes[0]) == {"index", "return", "length", "success"}


def grid_state(env: gym.Env) -> tuple:
    inner = env.unwrapped
    return inner.grid.encode().tobytes(), tuple(inner.agent_pos), inner.agent_dir, inner.mission


def inner_start_states(env: gym.Env, n_trials: int, seed: int) -> list[list[tuple]]:
    """The MiniGrid state at the start of each inner episode, per trial, turning left until timeouts."""
    trials = []
    for trial in range(n_trials):
        env.reset(seed=seed if trial == 0 else None)
        states, terminated = [grid_state(env)], False
        for _ in range(MAX_TRIAL_STEPS):
            _, _, terminated, _, info = env.step(0)
            if info.get(INNER_EPISODE_START):
                states.append(grid_state(env))
            if terminated:
                break
        assert terminated, "the trial does not end"
        trials.append(states)
    return trials


def test_same_minigrid_layout_within_a_trial_and_a_new_one_across_trials():
    env = TrialWrapper(gym.make("BabyAI-GoToLocalS6N2-v0", max_steps=5), episodes_per_trial=3)
    trials = inner_start_states(env, n_trials=4, seed=0)
    for states in trials:
        assert len(states) == 3 and states[0] == states[1] == states[2]
    assert len({states[0] for states in trials}) == 4, "every trial draws a new layout"
    assert trials == inner_start_states(env, n_trials=4, seed=0), "the outer seed reproduces the trials"
    assert trials != inner_start_states(env, n_trials=4, seed=1)


def test_inner_truncation_restarts_the_inner_env():
    env = TrialWrapper(gym.make("MiniGrid-Empty-8x8-v0", max_steps=5), episodes_per_trial=3)
    observations, infos, terminated, truncated = run_trial(env, action=0, seed=0)
    assert len(observations) == 1 + 15
    assert (terminated, truncated) == (True, False), "a completed trial terminates, however its last episode ended"
    assert [(e["length"], e["success"], e["return"]) for e in inner_episodes(infos)] == [(5, False, 0.0)] * 3


@pytest.mark.parametrize("extra_steps", [2, 0], ids=["within an inner episode", "at an inner episode's end"])
def test_max_trial_steps_truncates_the_trial(extra_steps):
    env = TrialWrapper(cue_env(), episodes_per_trial=3, max_trial_steps=2 * CUE_EPISODE_LENGTH + extra_steps)
    observations, infos, terminated, truncated = run_trial(env, seed=0)
    assert (terminated, truncated) == (False, True)
    assert len(observations) == 1 + 2 * CUE_EPISODE_LENGTH + extra_steps
    assert len(inner_episodes(infos)) == 2, "an unfinished third episode is not reported"
    assert not infos[-1].get(INNER_EPISODE_START), "a truncated trial does not restart the inner env"


@pytest.mark.parametrize("name, value", [("episodes_per_trial", 0), ("episodes_per_trial", 1.5), ("max_trial_steps", 0)])
def test_bad_trial_arguments_are_refused(name, value):
    kwargs = dict(episodes_per_trial=2) | {name: value}
    with pytest.raises(ValueError, match=rf"{name}={value!r}: must be a positive integer"):
        TrialWrapper(cue_env(), **kwargs)


def test_task_sampler_must_return_reset_arguments():
    env = TrialWrapper(cue_env(), episodes_per_trial=2, task_sampler=lambda rng: {"level": 3})
    with pytest.raises(ValueError, match=r"task=\{'level': 3\}: a task sampler must return a dict with keys among"):
        env.reset(seed=0)


def test_prev_action_reward_outside_the_trial_carries_across_inner_episodes():
    env = PrevActionRewardWrapper(TrialWrapper(cue_env(), episodes_per_trial=2), first_step=True)
    obs, _ = env.reset(seed=0)
    cue = int(np.argmax(obs["obs"][:3]))
    for _ in range(CUE_EPISODE_LENGTH - 1):
        obs, *_ = env.step(cue)
        assert obs["first_step"][0] == 0.0
    obs, reward, *_ = env.step(cue)
    assert reward == 1.0 and obs["first_step"][0] == 1.0 and obs["obs"][:3].sum() == 1.0
    np.testing.assert_array_equal(obs["prev_reward"], [1.0])
    np.testing.assert_array_equal(obs["prev_action"], np.eye(3)[cue])


def test_prev_action_reward_inside_the_trial_restarts_with_each_inner_episode():
    env = TrialWrapper(PrevActionRewardWrapper(cue_env(), first_step=True), episodes_per_trial=2)
    observations, _, terminated, _ = run_trial(env, action=1, seed=0)
    assert terminated and len(observations) == 1 + 2 * CUE_EPISODE_LENGTH
    restart = observations[CUE_EPISODE_LENGTH]
    assert restart["first_step"][0] == 1.0
    np.testing.assert_array_equal(restart["prev_action"], np.zeros(3))
    assert [obs["first_step"][0] for obs in observations] == [1.0] + [0.0] * 5 + [1.0] + [0.0] * 6


def test_vec_env_and_monitor_report_the_trial_as_one_episode():
    env = make_meta_env("sb3_metarim/CueMemory-v0", n_envs=2, episodes_per_trial=3, seed=0, env_kwargs=dict(n_cues=3))
    env.reset()
    monitor_episodes, inner_returns = [], []
    for _ in range(3 * CUE_EPISODE_LENGTH):
        _, _, dones, infos = env.step(np.array([0, 1]))
        inner_returns.append([info[INNER_EPISODE]["return"] for info in infos if INNER_EPISODE in info])
        monitor_episodes.append([info["episode"] for info in infos if "episode" in info])
    assert dones.all() and not any(monitor_episodes[:-1]), "one episode per trial, at its end"
    assert [episode["l"] for episode in monitor_episodes[-1]] == [3 * CUE_EPISODE_LENGTH] * 2
    returns_per_env = np.array([returns for returns in inner_returns if returns]).sum(axis=0)
    np.testing.assert_array_equal([episode["r"] for episode in monitor_episodes[-1]], returns_per_env)
    assert all(env.env_is_wrapped(Monitor)) and all(env.env_is_wrapped(TrialWrapper))


def test_seeds_reproduce_the_vec_env():
    def observations(seed: int) -> list[np.ndarray]:
        env = make_meta_env("BabyAI-GoToLocalS6N2-v0", n_envs=2, episodes_per_trial=2, seed=seed, env_kwargs=dict(max_steps=4))
        out = [env.reset()]
        for step in range(20):
            out.append(env.step(np.array([step % 3, 2]))[0])
        return [np.concatenate([obs["image"].ravel(), obs["mission"].ravel()]) for obs in out]

    first, again, other = observations(7), observations(7), observations(8)
    np.testing.assert_array_equal(np.stack(first), np.stack(again))
    assert not np.array_equal(np.stack(first), np.stack(other))


# The Bernoulli bandit


def test_bandit_keeps_its_task_within_a_trial_and_changes_it_across_trials():
    env = TrialWrapper(gym.make("sb3_metarim/BernoulliBandit-v0", probability_set=(0.1, 0.9)), episodes_per_trial=200)
    tasks = []
    for trial in range(6):
        env.reset(seed=0 if trial == 0 else None)
        probabilities = env.unwrapped.arm_probabilities.copy()
        rewards = [env.step(0)[1] for _ in range(200)]
        np.testing.assert_array_equal(env.unwrapped.arm_probabilities, probabilities)
        assert abs(np.mean(rewards) - probabilities[0]) < 0.1, "fresh rewards at every pull, at the arm's rate"
        tasks.append(tuple(probabilities))
    assert set(tasks) == {(0.1, 0.9), (0.9, 0.1)}


def test_bandit_draws_uniform_probabilities_and_takes_a_given_task():
    env = BernoulliBanditEnv(n_arms=3, pulls_per_episode=4)
    env.reset(seed=0)
    first = env.arm_probabilities.copy()
    assert first.shape == (3,) and np.all((first >= 0) & (first <= 1))
    env.reset()
    assert not np.array_equal(env.arm_probabilities, first), "a reset without a task draws a new one"
    env.reset(options={"arm_probabilities": [0.0, 1.0, 0.0]})
    steps = [env.step(1) for _ in range(4)]
    assert [step[1] for step in steps] == [1.0] * 4
    assert [step[2] for step in steps] == [False, False, False, True]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(n_arms=1), r"n_arms=1: must be an integer >= 2"),
        (dict(pulls_per_episode=0), r"pulls_per_episode=0: must be a positive integer"),
        (dict(probability_set=(0.1, 1.5)), r"probability_set=\(0.1, 1.5\): must be 2 probabilities \(n_arms\), each in"),
        (dict(n_arms=3, probability_set=(0.1, 0.9)), r"must be 3 probabilities"),
    ],
)
def test_bad_bandit_arguments_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        BernoulliBanditEnv(**kwargs)


def test_scale_reward_outside_the_monitor_trains_on_scaled_rewards_and_logs_raw_returns():
    def episode(env: gym.Env) -> tuple[list[float], dict]:
        env.reset(seed=3)
        rewards, done, info = [], False, {}
        while not done:
            _, reward, terminated, truncated, info = env.step(0)
            rewards.append(reward)
            done = terminated or truncated
        return rewards, info

    raw, _ = episode(Monitor(gym.make("CartPole-v1")))
    scaled, info = episode(ScaleReward(Monitor(gym.make("CartPole-v1")), scale=20))
    assert any(raw) and scaled == [20 * reward for reward in raw]
    assert info["episode"]["r"] == pytest.approx(sum(raw))


@pytest.mark.parametrize("scale", [0, -1.0, float("nan"), "20", True])
def test_bad_reward_scale_is_refused(scale):
    with pytest.raises(ValueError, match=rf"scale={scale!r}: must be a positive finite number"):
        ScaleReward(cue_env(), scale=scale)

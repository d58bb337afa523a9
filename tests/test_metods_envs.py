"""The meta-RL tasks of MetODS and Wang et al.: Harlow, MetaMaze, DependentBandit, TwoStep (rules, seeds, references)."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from sb3_metarim.envs import DependentBanditEnv, HarlowEnv, MetaMazeEnv, TwoStepEnv, make_meta_env
from sb3_metarim.envs.harlow import FIXATE, LEFT, RIGHT
from sb3_metarim.envs.metamaze import GOAL_REWARD, MOVES

IDS = ("Harlow-v0", "MetaMaze-v0", "DependentBandit-v0", "TwoStep-v0")


def rollout(env: gym.Env, seed: int, actions_seed: int = 0) -> list:
    rng = np.random.default_rng(actions_seed)
    obs, _ = env.reset(seed=seed)
    trace = [obs.tolist()]
    done = False
    while not done:
        obs, reward, terminated, truncated, _ = env.step(int(rng.integers(env.action_space.n)))
        trace.append((obs.tolist(), reward))
        done = terminated or truncated
    return trace


@pytest.mark.parametrize("env_id", IDS)
def test_registered_checked_seeded_and_usable_in_meta_trials(env_id):
    env = gym.make(f"sb3_metarim/{env_id}")
    check_env(env.unwrapped)
    assert rollout(env, 3) == rollout(env, 3) and rollout(env, 3) != rollout(env, 4)
    vec = make_meta_env(f"sb3_metarim/{env_id}", n_envs=2, episodes_per_trial=1, seed=0)
    obs = vec.reset()
    assert {"prev_action", "prev_reward", "first_step"} <= set(obs)
    vec.step(np.zeros(2, dtype=int))


def test_harlow_rules():
    env = HarlowEnv(n_presentations=5, fixation_steps=1)
    obs, _ = env.reset(seed=0)
    assert env.episode_length == 10 and obs.tolist() == [1, 0, 0]
    orders, rewards = set(), []
    for step in range(10):
        if step % 2 == 0:  # fixation
            obs, reward, terminated, _, _ = env.step(FIXATE)
            assert reward == 0 and obs[0] == 0 and sorted(obs[1:]) == pytest.approx(sorted(env.values))
            # The oracle: the rewarded object's position.
            position = LEFT if obs[1] == pytest.approx(env.values[env.rewarded]) else RIGHT
            orders.add(position)
        else:
            obs, reward, terminated, _, info = env.step(position)
            rewards.append(reward)
    assert terminated and info["is_success"] and rewards == [1.0] * 5 and orders == {LEFT, RIGHT}
    # The wrong object pays -1, no choice 0; Wang's variant pays fixation.
    env = HarlowEnv(n_presentations=6, fixation_reward=0.2)
    obs, _ = env.reset(seed=1)
    assert env.step(FIXATE)[1] == pytest.approx(0.2)
    wrong = RIGHT if env._order[0] == env.rewarded else LEFT
    assert env.step(wrong)[1] == -1.0 and env.step(LEFT)[1] == 0.0 and env.step(FIXATE)[1] == 0.0
    with pytest.raises(ValueError, match="n_presentations=0: must be a positive integer"):
        HarlowEnv(n_presentations=0)


def test_harlow_chance_is_zero_and_the_oracle_four():
    env, rng, chance, oracle = HarlowEnv(), np.random.default_rng(0), [], []
    for seed in range(400):
        env.reset(seed=seed)
        chance.append(sum(env.step(int(rng.integers(3)))[1] for _ in range(env.episode_length)))
        obs, _ = env.reset(seed=seed)
        total, known = 0.0, None
        for _ in range(env.episode_length):
            if obs[0] == 1:
                obs, reward, *_ = env.step(FIXATE)
            else:
                if known is None:
                    action = LEFT if rng.random() < 0.5 else RIGHT
                else:
                    action = LEFT if obs[1] == pytest.approx(known) else RIGHT
                obs_before = obs
                obs, reward, *_ = env.step(action)
                picked = obs_before[1] if action == LEFT else obs_before[2]
                other = obs_before[2] if action == LEFT else obs_before[1]
                known = picked if reward > 0 else other
            total += reward
        oracle.append(total)
    assert abs(np.mean(chance)) < 0.2 and np.mean(oracle) == pytest.approx(4.0, abs=0.15)


def test_metamaze_rules_and_reference_values():
    env = MetaMazeEnv()
    obs, _ = env.reset(seed=0)
    walls = env.walls
    assert walls[0].all() and walls[-1].all() and walls[:, 0].all() and walls[:, -1].all()
    row, col = env.position
    assert obs.reshape(3, 3).tolist() == walls[row - 1 : row + 2, col - 1 : col + 2].astype(float).tolist()
    # Every open cell reaches the goal (a connected maze); a wall stops the agent.
    distances = env.distances_to_goal()
    assert (distances[~walls] >= 0).all()
    blocked = next(a for a in range(4) if walls[tuple(env.position + MOVES[a])])
    before = env.position.copy()
    env.step(blocked)
    assert np.array_equal(env.position, before) or np.array_equal(before + MOVES[blocked], env.goal)
    # Reaching the goal pays 10 and respawns elsewhere; 100 steps then truncation.
    random_walk, oracle = [], []
    rng = np.random.default_rng(0)
    for seed in range(150):
        env.reset(seed=seed)
        total, truncated = 0.0, False
        while not truncated:
            _, reward, terminated, truncated, info = env.step(int(rng.integers(4)))
            assert not terminated and reward in (0.0, GOAL_REWARD)
            assert ("is_success" in info) == truncated
            total += reward
        # Success: the goal found at least once in the episode.
        assert info["is_success"] == (total > 0)
        random_walk.append(total)
        env.reset(seed=seed)
        distances, total = env.distances_to_goal(), 0.0
        for _ in range(100):
            reachable = [(distances[tuple(env.position + m)], a) for a, m in enumerate(MOVES)]
            options = [option for option in reachable if option[0] >= 0]
            _, reward, _, truncated, info = env.step(min(options)[1])
            total += reward
            if reward:
                assert info["goal_reached"] and not np.array_equal(env.position, env.goal)
        oracle.append(total)
    assert truncated
    # The docstring's references (2,000 episodes): random walk 4.8, oracle 141.
    assert 3.0 < np.mean(random_walk) < 6.6 and 125 < np.mean(oracle) < 157
    large = MetaMazeEnv(size=13)
    large.reset(seed=0)
    assert large.walls.shape == (13, 13)
    with pytest.raises(ValueError, match=r"size=10: must be an odd integer in 7\.\.31"):
        MetaMazeEnv(size=10)


@pytest.mark.parametrize("difficulty, pair", [("easy", (0.1, 0.9)), ("medium", (0.25, 0.75)), ("hard", (0.4, 0.6))])
def test_dependent_bandit_tasks(difficulty, pair):
    env = DependentBanditEnv(difficulty)
    seen = set()
    for seed in range(20):
        obs, _ = env.reset(seed=seed)
        p = env.arm_probabilities
        assert obs.tolist() == [0.0] and p.sum() == pytest.approx(1.0) and tuple(sorted(p)) == pytest.approx(pair)
        seen.add(round(p[0], 2))
    assert len(seen) == 2
    obs, _ = env.reset(seed=0, options={"arm_probabilities": [0.1, 0.9]})
    rewards, regrets = [], []
    for _ in range(100):
        obs, reward, terminated, _, info = env.step(1)
        rewards.append(reward)
        regrets.append(info["regret"])
    assert terminated and obs.tolist() == [1.0] and regrets == [0.0] * 100 and 80 <= sum(rewards) <= 98
    assert env.step(0)[4]["regret"] == pytest.approx(0.8)
    with pytest.raises(ValueError, match="sum to 1"):
        env.reset(options={"arm_probabilities": [0.2, 0.2]})
    with pytest.raises(ValueError, match=r"difficulty='trivial': must be one of \('easy', 'medium', 'hard', 'uniform'\)"):
        DependentBanditEnv("trivial")


def test_dependent_bandit_uniform_draws_any_probability():
    env = DependentBanditEnv("uniform")
    draws = [env.reset(seed=seed)[1] or env.arm_probabilities[0] for seed in range(200)]
    assert 0.4 < np.mean(draws) < 0.6 and len(set(draws)) == 200


def test_two_step_transitions_rewards_and_references():
    env = TwoStepEnv(switch_probability=0.0)
    obs, _ = env.reset(seed=0)
    assert obs.tolist() == [1, 0, 0]
    common, total, chance = 0, 0.0, 0.0
    rng = np.random.default_rng(0)
    for trial in range(2000):
        good = env.rewarded_state
        action = 0 if good == 1 else 1  # the oracle: the common transition to the better state
        obs, reward, *_ = env.step(action)
        assert reward == 0 and obs[0] == 0
        common += obs[good] == 1
        second_state = int(np.argmax(obs))
        obs, reward, terminated, _, info = env.step(0)
        total += reward
        assert info["transition"] == ("common" if second_state == action + 1 else "rare") and info["first_action"] == action
        if terminated:
            env.reset(seed=trial)
    assert common / 2000 == pytest.approx(0.8, abs=0.03) and total / 2000 == pytest.approx(0.74, abs=0.03)
    env = TwoStepEnv()
    env.reset(seed=1)
    for _ in range(2000):
        env.step(int(rng.integers(2)))
        chance += env.step(0)[1]
        if env._trial >= env.n_trials:
            env.reset()
    assert chance / 2000 == pytest.approx(0.5, abs=0.04)
    with pytest.raises(ValueError, match=r"common_probability=0.3: must be a number in \[0.5, 1\]"):
        TwoStepEnv(common_probability=0.3)

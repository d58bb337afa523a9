"""
sb3-contrib's performance test of ``RecurrentPPO`` (the last test of its ``tests/test_lstm.py``), run as it runs and
judged as it judges, for any algorithm that takes ``RecurrentPPO``'s arguments: CartPole without its velocities
(the cart's and the pole's positions only, 500 steps at most; a memoryless policy gets about 50), 8 envs under
``VecNormalize``, 50,000 steps with its PPO settings and policy arguments, then ``evaluate_policy`` on the training
env (10 deterministic episodes) must reach a mean return of 450. Its ``EvalCallback`` during training only reports,
so it is left out here (it changes nothing in the training run and costs as many steps again).
``scripts/recurrent_ppo_performance.py`` runs it over seeds and writes the table.
"""

import time
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from sb3_contrib import RecurrentPPO
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.vec_env import VecNormalize

THRESHOLD = 450.0
TIMESTEPS = 50_000
SETTINGS: dict[str, Any] = dict(n_steps=128, learning_rate=7e-4, batch_size=256, n_epochs=10, max_grad_norm=1, gae_lambda=0.98)
POLICY_KWARGS: dict[str, Any] = dict(
    net_arch=dict(vf=[64], pi=[]), lstm_hidden_size=64, ortho_init=False, enable_critic_lstm=True
)
POSITIONS = [0, 2]  # CartPole's observation: cart position, cart velocity, pole angle, pole angular velocity


def position_only_cartpole() -> gym.Env:
    """:return: ``CartPole-v1`` (500 steps at most) observing only the cart's position and the pole's angle."""
    env = gym.make("CartPole-v1")
    box = env.observation_space
    space = spaces.Box(box.low[POSITIONS], box.high[POSITIONS], dtype=np.float32)
    return gym.wrappers.TransformObservation(env, lambda observation: observation[POSITIONS], space)


def performance_run(
    algorithm: type[RecurrentPPO],
    seed: int,
    lstm_hidden_size: int | None = 64,
    timesteps: int = TIMESTEPS,
    algorithm_kwargs: dict[str, Any] | None = None,
) -> dict[str, float]:
    """
    :param algorithm: ``RecurrentPPO`` or a class that takes its arguments (``MetaRIMPPO``, ...); policy
        ``"MlpLstmPolicy"`` for ``RecurrentPPO``, ``"MlpPolicy"`` for the others.
    :param seed: The model's seed (sb3-contrib's test uses 1).
    :param lstm_hidden_size: The test's 64, or ``None``: the algorithm's own default width.
    :param timesteps: Training steps (the test's 50,000).
    :param algorithm_kwargs: Arguments of the algorithm's own beside the test's (e.g. ``fast_span``); none: its defaults.
    :return: ``mean_return`` and ``std_return`` of the 10 evaluation episodes, ``passed`` (1.0 or 0.0) and
        ``train_s``, the training time in seconds.
    """
    env = VecNormalize(make_vec_env(position_only_cartpole, n_envs=8))
    policy_kwargs = dict(POLICY_KWARGS)
    if lstm_hidden_size is None:
        del policy_kwargs["lstm_hidden_size"]
    else:
        policy_kwargs["lstm_hidden_size"] = lstm_hidden_size
    policy = "MlpLstmPolicy" if algorithm is RecurrentPPO else "MlpPolicy"
    model = algorithm(policy, env, seed=seed, policy_kwargs=policy_kwargs, **SETTINGS, **(algorithm_kwargs or {}))
    start = time.perf_counter()
    model.learn(total_timesteps=timesteps)
    train_s = time.perf_counter() - start
    mean_return, std_return = evaluate_policy(model, env, n_eval_episodes=10)
    return {
        "mean_return": float(mean_return),
        "std_return": float(std_return),
        "passed": float(mean_return >= THRESHOLD),
        "train_s": train_s,
    }

"""
Cumulative regret on Wang et al.'s dependent two-armed bandits (:class:`~sb3_metarim.envs.bandit.DependentBanditEnv`):
a MetODSPPO agent against Thompson sampling (Beta(1, 1) priors) and UCB1 on the same tasks (the same arm
probabilities per episode). The regret of a pull is ``max(p) - p[arm]``, the expected one, so the curves are not
noisy from the rewards. ``scripts/bandit_regret.py`` writes the curves and the table.

.. code-block:: python

    probabilities = tasks("easy", episodes=300, seed=10_000)
    rng = np.random.default_rng(0)
    thompson = np.stack([thompson_regret(p, 100, rng) for p in probabilities])   # (episodes, pulls)
    mean, sem = cumulative_mean_sem(thompson)
"""

from functools import partial

import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.vec_env import DummyVecEnv

from sb3_metarim.common.wrappers import PrevActionRewardWrapper, TrialWrapper
from sb3_metarim.envs.bandit import ARM_PROBABILITIES_OPTION, DependentBanditEnv
from sb3_metarim.envs.meta import make_meta_env
from sb3_metarim.meta_rim_ppo.variants import MetODSPPO

DEPENDENT_BANDIT = "sb3_metarim/DependentBandit-v0"


def tasks(difficulty: str, episodes: int, seed: int) -> np.ndarray:
    """
    :param difficulty: The bandit's difficulty (a key of :data:`~sb3_metarim.envs.bandit.DEPENDENT_DIFFICULTIES`).
    :param episodes: Tasks to draw.
    :param seed: Seed of the draws.
    :return: (episodes, 2) arm probabilities, drawn as the env draws them.
    """
    env = DependentBanditEnv(difficulty)
    rng = np.random.default_rng(seed)
    return np.stack([env.sample_task(rng)["options"][ARM_PROBABILITIES_OPTION] for _ in range(episodes)])


def thompson_regret(probabilities: np.ndarray, pulls: int, rng: np.random.Generator) -> np.ndarray:
    """
    :param probabilities: (2,) the task's arm probabilities.
    :param pulls: Pulls in the episode.
    :param rng: Source of the posterior samples and the rewards.
    :return: (pulls,) per-pull regret of Thompson sampling with Beta(1, 1) priors on the task.
    """
    wins, losses, regret = np.ones(2), np.ones(2), np.zeros(pulls)
    for t in range(pulls):
        arm = int(np.argmax(rng.beta(wins, losses)))
        reward = rng.random() < probabilities[arm]
        wins[arm] += reward
        losses[arm] += 1 - reward
        regret[t] = probabilities.max() - probabilities[arm]
    return regret


def ucb1_regret(probabilities: np.ndarray, pulls: int, rng: np.random.Generator) -> np.ndarray:
    """
    :param probabilities: (2,) the task's arm probabilities.
    :param pulls: Pulls in the episode.
    :param rng: Source of the rewards.
    :return: (pulls,) per-pull regret of UCB1 (each arm once, then the largest ``mean + sqrt(2 ln t / n)``) on the
        task.
    """
    counts, sums, regret = np.zeros(2), np.zeros(2), np.zeros(pulls)
    for t in range(pulls):
        if t < 2:
            arm = t
        else:
            arm = int(np.argmax(sums / counts + np.sqrt(2 * np.log(t) / counts)))
        reward = rng.random() < probabilities[arm]
        counts[arm] += 1
        sums[arm] += reward
        regret[t] = probabilities.max() - probabilities[arm]
    return regret


def agent_regret(model: BaseAlgorithm, all_probabilities: np.ndarray, pulls: int, seed: int) -> np.ndarray:
    """
    :param model: A recurrent agent trained on the dependent bandit through ``make_meta_env`` (it sees the previous
        action and reward); it acts deterministically.
    :param all_probabilities: (episodes, 2) the tasks, as :func:`tasks` returns them.
    :param pulls: Pulls per episode.
    :param seed: Seed of the envs (their rewards).
    :return: (episodes, pulls) per-pull regret of the agent, one env per task, all played in parallel.
    """
    episodes = len(all_probabilities)

    def make(probabilities: np.ndarray) -> PrevActionRewardWrapper:
        # make_meta_env's stack (trial, then previous action and reward) with the task fixed.
        task = {"options": {ARM_PROBABILITIES_OPTION: probabilities}}
        trial = TrialWrapper(DependentBanditEnv(pulls_per_episode=pulls), 1, task_sampler=lambda _rng: task)
        return PrevActionRewardWrapper(trial, first_step=True)

    env = DummyVecEnv([partial(make, probabilities) for probabilities in all_probabilities])
    env.seed(seed)
    obs = env.reset()
    regret, state, starts = np.zeros((episodes, pulls)), None, np.ones(episodes, dtype=bool)
    for t in range(pulls):
        actions, state = model.predict(obs, state=state, episode_start=starts, deterministic=True)
        regret[:, t] = all_probabilities.max(axis=1) - all_probabilities[np.arange(episodes), actions]
        obs, _, starts, _ = env.step(actions)
    return regret


def train_agent(difficulty: str, pulls: int, timesteps: int, seed: int) -> MetODSPPO:
    """
    :param difficulty: The bandit's difficulty.
    :param pulls: Pulls per episode (one episode is one trial, one task).
    :param timesteps: Training steps.
    :param seed: Seed of the model and its 8 envs.
    :return: a small MetODSPPO (16 neurons) trained on the dependent bandit.
    """
    env = make_meta_env(DEPENDENT_BANDIT, n_envs=8, seed=seed, env_kwargs=dict(difficulty=difficulty, pulls_per_episode=pulls))
    model = MetODSPPO(
        "MultiInputPolicy",
        env,
        n_steps=max(pulls, 16),
        batch_size=2 * max(pulls, 16),
        n_epochs=4,
        learning_rate=3e-3,
        gamma=0.9,
        ent_coef=0.01,
        seed=seed,
        policy_kwargs=dict(num_neurons=16, net_arch=[32]),
    )
    return model.learn(timesteps)


def cumulative_mean_sem(regret: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """
    :param regret: (episodes, pulls) per-pull regret.
    :return: (pulls,) the mean cumulative regret over the episodes and its standard error.
    """
    cumulative = regret.cumsum(axis=1)
    return cumulative.mean(axis=0), cumulative.std(axis=0, ddof=1) / np.sqrt(len(cumulative))

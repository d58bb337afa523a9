"""
Cumulative regret on Wang et al.'s dependent two-armed bandits (``sb3_metarim/DependentBandit-v0``): a
MetODSPPO agent (trained here, or loaded with ``--model``) against Thompson sampling (Beta(1, 1) priors) and UCB1,
both computed here, on the same tasks (the same arm probabilities per episode). The regret of a pull is
``max(p) - p[arm]`` (expected, so the curves are not noisy from the rewards); each curve is its mean over the
evaluation episodes, with a 95% normal band.

Writes, under ``--out``: ``regret.csv`` (pull, and per method the mean cumulative regret and its standard error),
``regret.png`` and ``regret.md`` (the final cumulative regret of each method, and the command that made them).
Run (the tiny budget takes seconds; the real one is ``--train-steps 500000`` or a model trained by the zoo):
``python scripts/bandit_regret.py --difficulty easy --train-steps 200000 --out results/bandit_regret``.
"""

import argparse
import csv
import shlex
import sys
from functools import partial
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from stable_baselines3.common.vec_env import DummyVecEnv

from sb3_metarim import MetODSPPO, PrevActionRewardWrapper, TrialWrapper, make_meta_env
from sb3_metarim.envs.bandit import ARM_PROBABILITIES_OPTION, DEPENDENT_DIFFICULTIES, DependentBanditEnv

METHODS = ("metods_ppo", "thompson", "ucb1")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--difficulty", choices=tuple(DEPENDENT_DIFFICULTIES), default="easy")
    parser.add_argument("--pulls", type=int, default=100, help="pulls per episode (a trial, one task)")
    parser.add_argument("--episodes", type=int, default=300, help="evaluation episodes (tasks)")
    parser.add_argument("--train-steps", type=int, default=200_000, help="training steps of the agent (unless --model)")
    parser.add_argument("--model", type=Path, help="a saved MetODSPPO (.zip) to evaluate instead of training one")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("results/bandit_regret"))
    parser.add_argument("--tiny", action="store_true", help="a smoke-test budget: 20 pulls, 8 episodes, 1,000 steps")
    args = parser.parse_args(argv)
    if args.tiny:
        args.pulls, args.episodes, args.train_steps = 20, 8, 1000
    return args


def tasks(difficulty: str, episodes: int, seed: int) -> np.ndarray:
    """:return: (episodes, 2) arm probabilities, as the env draws them."""
    env = DependentBanditEnv(difficulty)
    rng = np.random.default_rng(seed)
    return np.stack([env.sample_task(rng)["options"]["arm_probabilities"] for _ in range(episodes)])


def thompson_regret(probabilities: np.ndarray, pulls: int, rng: np.random.Generator) -> np.ndarray:
    """:return: (pulls,) per-pull regret of Thompson sampling with Beta(1, 1) priors on one task."""
    wins, losses, regret = np.ones(2), np.ones(2), np.zeros(pulls)
    for t in range(pulls):
        arm = int(np.argmax(rng.beta(wins, losses)))
        reward = rng.random() < probabilities[arm]
        wins[arm] += reward
        losses[arm] += 1 - reward
        regret[t] = probabilities.max() - probabilities[arm]
    return regret


def ucb1_regret(probabilities: np.ndarray, pulls: int, rng: np.random.Generator) -> np.ndarray:
    """:return: (pulls,) per-pull regret of UCB1 (each arm once, then mean + sqrt(2 ln t / n)) on one task."""
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


def agent_regret(model: MetODSPPO, all_probabilities: np.ndarray, pulls: int, seed: int) -> np.ndarray:
    """:return: (episodes, pulls) per-pull regret of the deterministic agent, one env per task, all in parallel."""
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


def train(args: argparse.Namespace) -> MetODSPPO:
    env = make_meta_env(
        "sb3_metarim/DependentBandit-v0",
        n_envs=8,
        seed=args.seed,
        env_kwargs=dict(difficulty=args.difficulty, pulls_per_episode=args.pulls),
    )
    model = MetODSPPO(
        "MultiInputPolicy",
        env,
        n_steps=max(args.pulls, 16),
        batch_size=2 * max(args.pulls, 16),
        n_epochs=4,
        learning_rate=3e-3,
        gamma=0.9,
        ent_coef=0.01,
        seed=args.seed,
        policy_kwargs=dict(num_neurons=16, net_arch=[32]),
    )
    return model.learn(args.train_steps)


def main(argv: list[str] | None = None) -> Path:
    args = parse_args(argv)
    command = shlex.join([sys.executable, *sys.argv] if argv is None else ["python", "scripts/bandit_regret.py", *argv])
    print(f"Command: {command}")
    model = MetODSPPO.load(args.model, device="cpu") if args.model else train(args)
    probabilities = tasks(args.difficulty, args.episodes, args.seed + 10_000)
    rng = np.random.default_rng(args.seed)
    regrets = {
        "metods_ppo": agent_regret(model, probabilities, args.pulls, args.seed + 10_000),
        "thompson": np.stack([thompson_regret(p, args.pulls, rng) for p in probabilities]),
        "ucb1": np.stack([ucb1_regret(p, args.pulls, rng) for p in probabilities]),
    }
    cumulative = {method: regret.cumsum(axis=1) for method, regret in regrets.items()}
    mean = {method: values.mean(axis=0) for method, values in cumulative.items()}
    sem = {method: values.std(axis=0, ddof=1) / np.sqrt(len(values)) for method, values in cumulative.items()}

    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / "regret.csv", "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["pull", *(f"{m}_{stat}" for m in METHODS for stat in ("mean", "sem"))])
        for t in range(args.pulls):
            writer.writerow([t + 1, *(f"{values[t]:.4f}" for m in METHODS for values in (mean[m], sem[m]))])
    figure, axes = plt.subplots(figsize=(6, 4))
    pulls = np.arange(1, args.pulls + 1)
    for method in METHODS:
        axes.plot(pulls, mean[method], label=method)
        axes.fill_between(pulls, mean[method] - 1.96 * sem[method], mean[method] + 1.96 * sem[method], alpha=0.2)
    axes.set(xlabel="pull", ylabel="cumulative regret", title=f"Dependent bandit ({args.difficulty}), {args.episodes} tasks")
    axes.legend()
    figure.tight_layout()
    figure.savefig(args.out / "regret.png", dpi=120)
    plt.close(figure)
    budget = f"loaded from {args.model}" if args.model else f"trained {args.train_steps} steps (seed {args.seed})"
    lines = [
        f"# Cumulative regret, dependent bandit ({args.difficulty}), {args.pulls} pulls, {args.episodes} tasks",
        "",
        f"MetODSPPO {budget}, deterministic. Regret per pull is max(p) - p[arm]; mean +- 95% CI over tasks.",
        "",
        "| method | cumulative regret at the last pull |",
        "|---|---|",
        *(f"| {m} | {mean[m][-1]:.2f} +- {1.96 * sem[m][-1]:.2f} |" for m in METHODS),
        "",
        f"Made by: `{command}`",
        "",
    ]
    (args.out / "regret.md").write_text("\n".join(lines))
    print("\n".join(lines))
    return args.out


if __name__ == "__main__":
    main()

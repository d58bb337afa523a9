"""
Cumulative regret on Wang et al.'s dependent two-armed bandits (``sb3_metarim/DependentBandit-v0``): a
MetODSPPO agent (trained here, or loaded with ``--model``) against Thompson sampling (Beta(1, 1) priors) and UCB1
on the same tasks, as :mod:`sb3_metarim.benchmark.regret` computes them. The regret of a pull is
``max(p) - p[arm]``; each curve is its mean over the evaluation episodes, with a 95% normal band.

Writes, under ``--out`` (default ``benchmarks/bandit_regret/<difficulty>``): ``regret.csv`` (pull, and per method
the mean cumulative regret and its standard error), ``regret.png`` and ``regret.md`` (the final cumulative regret of
each method, and the command that made them).
Run (``--tiny`` takes seconds; the real budget is ``--train-steps 500000`` or a model trained by the zoo):
``python scripts/bandit_regret.py --difficulty easy --train-steps 200000``.
"""

import argparse
import csv
import shlex
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from sb3_metarim import MetODSPPO
from sb3_metarim.benchmark.regret import agent_regret, cumulative_mean_sem, tasks, thompson_regret, train_agent, ucb1_regret
from sb3_metarim.envs.bandit import DEPENDENT_DIFFICULTIES

METHODS = ("metods_ppo", "thompson", "ucb1")

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--difficulty", choices=tuple(DEPENDENT_DIFFICULTIES), default="easy")
parser.add_argument("--pulls", type=int, default=100, help="pulls per episode (a trial, one task)")
parser.add_argument("--episodes", type=int, default=300, help="evaluation episodes (tasks)")
parser.add_argument("--train-steps", type=int, default=200_000, help="training steps of the agent (unless --model)")
parser.add_argument("--model", type=Path, help="a saved MetODSPPO (.zip) to evaluate instead of training one")
parser.add_argument("--seed", type=int, default=0)
parser.add_argument("--out", type=Path, help="output folder (default benchmarks/bandit_regret/<difficulty>)")
parser.add_argument("--tiny", action="store_true", help="a smoke-test budget: 20 pulls, 8 episodes, 1,000 steps")
args = parser.parse_args()
if args.tiny:
    args.pulls, args.episodes, args.train_steps = 20, 8, 1000
command = shlex.join(["python", *sys.argv])
print(f"Command: {command}")

if args.model:
    model = MetODSPPO.load(args.model, device="cpu")
else:
    model = train_agent(args.difficulty, args.pulls, args.train_steps, args.seed)
probabilities = tasks(args.difficulty, args.episodes, args.seed + 10_000)
rng = np.random.default_rng(args.seed)
regrets = {
    "metods_ppo": agent_regret(model, probabilities, args.pulls, args.seed + 10_000),
    "thompson": np.stack([thompson_regret(p, args.pulls, rng) for p in probabilities]),
    "ucb1": np.stack([ucb1_regret(p, args.pulls, rng) for p in probabilities]),
}
mean, sem = {}, {}
for method, regret in regrets.items():
    mean[method], sem[method] = cumulative_mean_sem(regret)

args.out = args.out or Path("benchmarks/bandit_regret") / args.difficulty
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

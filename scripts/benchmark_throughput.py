"""
Training throughput of MetaRIMPPO against its baselines: steps per second, split into collection and training.

Algorithms: ``metarim`` (MetaRIMPPO, default fast/slow settings), ``modular`` (MetaRIMPPO, ``meta=False``), ``lstm``
(RecurrentPPO with an LSTM as wide as the RIM, ``num_units * unit_size``) and ``ppo`` (feed-forward PPO, the ceiling),
on MiniGrid-Empty-5x5-v0 (``ImgObsWrapper``: a 7x7x3 Box) and CartPole-v1, with the same PPO settings and one torch
thread. Per env, each algorithm is built and warmed up (one rollout), then the repeats alternate the algorithms
(A B C D A B C D ...) in this one process, each a ``learn`` of ``--rollouts`` rollouts. A callback times collection
(rollout start to rollout end, returns/advantages included) and training (rollout end to the next rollout start or
the end of ``learn``: ``train()`` and logging). Ratios to lstm are medians of per-round ratios. Keep ``--rollouts``
even (metarim's slow_interval is 2) so that every metarim repeat holds as many slow phases. The scaling section
compares metarim and lstm on MiniGrid while varying n_envs, n_steps (the sequence length) and num_units.

Writes throughput.csv and scaling.csv (raw, one row per run), throughput.md and throughput.png under ``--out``.
Run: ``python scripts/benchmark_throughput.py`` (full: long) or ``python scripts/benchmark_throughput.py --quick
--out /tmp/bench_quick`` (smoke test).
"""

import argparse
import os
import shlex
import sys
import time
from collections.abc import Callable
from datetime import datetime
from functools import partial
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import minigrid  # noqa: F401  (registers the MiniGrid environments)
import numpy as np
import pandas as pd
import torch as th
from minigrid.wrappers import ImgObsWrapper
from sb3_contrib import RecurrentPPO
from stable_baselines3 import PPO
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env

from sb3_metarim import MetaRIMPPO

try:
    import psutil
except ImportError:  # memory is then reported as NaN
    psutil = None

ALGOS = ("metarim", "modular", "lstm", "ppo")
ENVS = ("MiniGrid-Empty-5x5-v0", "CartPole-v1")
UNIT_SIZE = 32


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--n-envs", type=int, default=8)
    parser.add_argument("--n-steps", type=int, default=128, help="rollout length per env (the sequence length)")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--n-epochs", type=int, default=4)
    parser.add_argument("--learning-rate", type=float, default=3e-4)
    parser.add_argument("--num-units", type=int, default=6, help="RIM modules; the LSTM gets num_units * 32 units")
    parser.add_argument("--rollouts", type=int, default=4, help="rollouts per timed learn() call")
    parser.add_argument("--repeats", type=int, default=5, help="alternation rounds per env")
    parser.add_argument("--scaling", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--scaling-repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="smoke test: 1 rollout, 2 repeats, smaller scaling grid")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("benchmarks"))
    args = parser.parse_args()
    if args.quick:
        args.rollouts, args.repeats, args.scaling_repeats = 1, 2, 1
    return args


def make_model(args: argparse.Namespace, algo: str, env_id: str, n_envs: int, n_steps: int, num_units: int) -> BaseAlgorithm:
    """One of ALGOS on its own vectorized env, with the PPO settings shared by all algorithms."""
    wrapper = ImgObsWrapper if env_id.startswith("MiniGrid") else None
    env = make_vec_env(env_id, n_envs=n_envs, seed=args.seed, wrapper_class=wrapper)
    common = dict(
        n_steps=n_steps,
        batch_size=args.batch_size,
        n_epochs=args.n_epochs,
        learning_rate=args.learning_rate,
        seed=args.seed,
        device="cpu",
    )
    if algo == "ppo":
        return PPO("MlpPolicy", env, **common)
    if algo == "lstm":
        return RecurrentPPO("MlpLstmPolicy", env, policy_kwargs=dict(lstm_hidden_size=num_units * UNIT_SIZE), **common)
    rim = dict(num_units=num_units, unit_size=UNIT_SIZE, top_k=min(4, num_units - 1))  # the default 4, sparse for N=4 too
    return MetaRIMPPO("MlpPolicy", env, meta=algo == "metarim", policy_kwargs=rim, **common)


class RolloutTimer(BaseCallback):
    """Collection = rollout start to rollout end; training = rollout end to the next rollout start (or learn's end)."""

    def __init__(self) -> None:
        super().__init__()
        self.collect_s = self.train_s = self.started = 0.0
        self.ended: float | None = None

    def _on_rollout_start(self) -> None:
        self.started = time.perf_counter()
        if self.ended is not None:
            self.train_s += self.started - self.ended

    def _on_rollout_end(self) -> None:
        self.ended = time.perf_counter()
        self.collect_s += self.ended - self.started

    def _on_training_end(self) -> None:
        self.train_s += time.perf_counter() - self.ended

    def _on_step(self) -> bool:
        return True


def timed_learn(model: BaseAlgorithm, rollouts: int) -> dict[str, float]:
    """Continue training for ``rollouts`` rollouts; return the throughput numbers of this call."""
    steps = rollouts * model.n_envs * model.n_steps
    timer = RolloutTimer()
    start = time.perf_counter()
    model.learn(steps, callback=timer, reset_num_timesteps=False)
    total_s = time.perf_counter() - start
    return dict(
        steps=steps,
        total_s=total_s,
        collect_s=timer.collect_s,
        train_s=timer.train_s,
        steps_per_s=steps / total_s,
        collect_steps_per_s=steps / timer.collect_s,
        train_s_per_rollout=timer.train_s / rollouts,
    )


def rss_mb() -> float:
    return psutil.Process().memory_info().rss / 2**20 if psutil else float("nan")


def measure(builders: dict[str, Callable[[], BaseAlgorithm]], rollouts: int, repeats: int, **labels: object) -> list[dict]:
    """Build and warm up each model (one rollout), then time ``repeats`` rounds alternating the models."""
    models, memory = {}, {}
    for algo, build in builders.items():
        before = rss_mb()
        models[algo] = build()
        models[algo].learn(models[algo].n_envs * models[algo].n_steps)
        memory[algo] = rss_mb() - before
    rows = []
    for round_ in range(repeats):
        for algo, model in models.items():
            rows.append(dict(labels, algo=algo, round=round_, memory_mb=memory[algo], **timed_learn(model, rollouts)))
            print(f"{labels} {algo:8s} round {round_}: {rows[-1]['steps_per_s']:8.0f} steps/s", flush=True)
    return rows


def summarize(runs: pd.DataFrame, key: str) -> pd.DataFrame:
    """Medians and spread per (key, algo), and the median over rounds of each run's ratio to lstm's run."""
    summary = runs.groupby([key, "algo"], sort=False).agg(
        steps_per_s=("steps_per_s", "median"),
        min=("steps_per_s", "min"),
        max=("steps_per_s", "max"),
        collect_steps_per_s=("collect_steps_per_s", "median"),
        train_s_per_rollout=("train_s_per_rollout", "median"),
        memory_mb=("memory_mb", "median"),
    )
    per_round = runs.pivot_table(index=[key, "round"], columns="algo", values="steps_per_s")
    ratios = per_round.div(per_round["lstm"], axis=0).groupby(level=key).median()
    summary["ratio_to_lstm"] = ratios.stack().reindex(summary.index)
    return summary.reset_index()


def cell(value: object) -> str:
    if not isinstance(value, float):
        return str(value)
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.3g}"


def to_markdown(table: pd.DataFrame) -> str:
    """A markdown table (pandas' ``to_markdown`` needs tabulate, which the project does not install)."""
    lines = [list(table.columns), ["---"] * table.shape[1], *([cell(v) for v in row] for row in table.itertuples(index=False))]
    return "\n".join("| " + " | ".join(line) + " |" for line in lines)


def bar_panel(ax: plt.Axes, summary: pd.DataFrame, key: str, title: str) -> None:
    """Grouped bars of median steps/s per algorithm within each ``key`` group, min-max error bars."""
    groups, algos = list(dict.fromkeys(summary[key])), list(dict.fromkeys(summary["algo"]))
    width = 0.8 / len(algos)
    for i, algo in enumerate(algos):
        rows = summary[summary["algo"] == algo].set_index(key).loc[groups]
        errors = [rows["steps_per_s"] - rows["min"], rows["max"] - rows["steps_per_s"]]
        ax.bar(np.arange(len(groups)) + i * width, rows["steps_per_s"], width, yerr=errors, capsize=3, label=algo)
    ax.set_xticks(np.arange(len(groups)) + width * (len(algos) - 1) / 2, groups)
    ax.set(title=title, ylabel="training steps/s (median, min-max)", yscale="log")
    ax.legend()


def run_throughput(args: argparse.Namespace) -> pd.DataFrame:
    """All ALGOS on each env, alternating, with the settings from the command line."""
    rows = []
    for env_id in ENVS:
        builders = {algo: partial(make_model, args, algo, env_id, args.n_envs, args.n_steps, args.num_units) for algo in ALGOS}
        rows += measure(builders, args.rollouts, args.repeats, env=env_id)
    return pd.DataFrame(rows)


def run_scaling(args: argparse.Namespace) -> pd.DataFrame:
    """metarim against lstm on MiniGrid, varying one of n_envs, n_steps, num_units at a time."""
    sweeps = {"n_envs": (1, 8, 32), "n_steps": (32, 128, 512), "num_units": (4, 8, 16)}
    rows = []
    for name, values in sweeps.items():
        for value in values[:2] if args.quick else values:
            setting = dict(n_envs=args.n_envs, n_steps=args.n_steps, num_units=args.num_units) | {name: value}
            builders = {algo: partial(make_model, args, algo, ENVS[0], **setting) for algo in ("metarim", "lstm")}
            rows += measure(builders, args.rollouts, args.scaling_repeats, setting=f"{name}={value}", **setting)
    return pd.DataFrame(rows)


def main() -> None:
    args = parse_args()
    th.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    command = "python " + shlex.join(sys.argv)

    runs = run_throughput(args)
    runs.to_csv(args.out / "throughput.csv", index=False)
    summary = summarize(runs, "env")
    columns = dict(
        steps_per_s="steps/s (median)",
        collect_steps_per_s="collection steps/s",
        train_s_per_rollout="training s/rollout",
        memory_mb=f"memory MB ({'RSS growth: build + warm-up' if psutil else 'needs psutil'})",
        ratio_to_lstm="x lstm (median of per-round ratios)",
    )
    tables = [
        f"# Training throughput ({args.n_envs} envs x {args.n_steps} steps, batch {args.batch_size}, "
        f"{args.n_epochs} epochs, {args.rollouts} rollouts x {args.repeats} alternating repeats, 1 torch thread)",
        to_markdown(summary.rename(columns=columns)),
        "Memory is the process RSS growth while building the model and running its warm-up: the first model built "
        "also pays torch's one-time allocations, and later ones may reuse memory freed earlier.",
    ]
    fig, axes = plt.subplots(2 if args.scaling else 1, 1, figsize=(10, 10 if args.scaling else 5), squeeze=False)
    bar_panel(axes[0, 0], summary, "env", "Throughput per env")

    if args.scaling:
        scaling = run_scaling(args)
        scaling.to_csv(args.out / "scaling.csv", index=False)
        scaled = summarize(scaling, "setting")
        wide = scaled.pivot(index="setting", columns="algo", values="steps_per_s").reindex(scaled["setting"].unique())
        wide["metarim / lstm"] = scaled[scaled["algo"] == "metarim"].set_index("setting")["ratio_to_lstm"]
        tables += [
            f"## Scaling on {ENVS[0]}: median steps/s ({args.scaling_repeats} alternating repeats; lstm width = "
            f"num_units x {UNIT_SIZE}; top_k = min(4, num_units - 1); "
            f"a buffer of <= {args.batch_size} steps is one minibatch)",
            to_markdown(wide.reset_index()),
        ]
        bar_panel(axes[1, 0], scaled, "setting", f"Scaling on {ENVS[0]}")
    fig.tight_layout()
    fig.savefig(args.out / "throughput.png", dpi=120)

    tables.append(
        f"Command: `{command}` · {datetime.now().isoformat(timespec='seconds')} · "
        f"torch {th.__version__} · {os.cpu_count()} CPUs"
    )
    markdown = "\n\n".join(tables) + "\n"
    (args.out / "throughput.md").write_text(markdown)
    print(markdown)
    print(command)


if __name__ == "__main__":
    main()

"""
``make demo``'s training (``scripts/quickstart.py``: CueMemory with 3 cues and a delay of 4, 8 envs, lr 1e-3, 64
steps, batch 128, 4 epochs, 30k steps) over several seeds, for MetaRIMPPO with its defaults and for RecurrentPPO with
an LSTM of 192 (the RIM's width): how soon each reaches a training success of 0.95 and whether it falls after it.

Success is the training episodes' (Monitor), as a mean over a window of 200 episodes. Per run: the step at which the
window first reaches 0.95, its lowest value after that, and its last value. Runs already in the CSV are skipped, so
an interrupted call resumes. Writes ``demo_seeds.csv`` (one row per run) and ``demo_seeds.md`` under ``--out``.

Run: ``python scripts/demo_seeds.py --seeds 0 1 2 3 4 5 --out benchmarks/demo``
"""

import argparse
import shlex
import sys
import tempfile
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import torch as th
from sb3_contrib import RecurrentPPO
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.monitor import load_results

from sb3_metarim import MetaRIMPPO

ALGOS = ("metarim", "lstm")
ENV_KWARGS = dict(n_cues=3, delay=4)
PPO_SETTINGS = dict(learning_rate=1e-3, n_steps=64, batch_size=128, n_epochs=4)  # scripts/quickstart.py's
WINDOW = 200
THRESHOLD = 0.95


def train(algo: str, seed: int, timesteps: int, monitor_dir: Path) -> None:
    """Train one run; its Monitor files go to ``monitor_dir``."""
    env = make_vec_env("sb3_metarim/CueMemory-v0", n_envs=8, seed=seed, env_kwargs=ENV_KWARGS, monitor_dir=str(monitor_dir))
    if algo == "lstm":
        model = RecurrentPPO("MlpLstmPolicy", env, policy_kwargs=dict(lstm_hidden_size=192), seed=seed, **PPO_SETTINGS)
    else:
        model = MetaRIMPPO("MlpPolicy", env, seed=seed, **PPO_SETTINGS)
    model.learn(timesteps)
    env.close()


def curve_summary(monitor_dir: Path) -> dict[str, float]:
    """Steps to a windowed training success of THRESHOLD, the lowest window after it and the last one."""
    episodes = load_results(str(monitor_dir)).sort_values("t")
    success = (episodes["r"].to_numpy() > 0).astype(float)
    steps = np.cumsum(episodes["l"].to_numpy())[WINDOW - 1 :]
    window = np.convolve(success, np.ones(WINDOW) / WINDOW, mode="valid")
    reached = np.flatnonzero(window >= THRESHOLD)
    if not len(reached):
        return dict(steps_to_threshold=np.nan, lowest_after=np.nan, final=window[-1])
    first = reached[0]
    return dict(steps_to_threshold=int(steps[first]), lowest_after=window[first:].min(), final=window[-1])


def to_markdown(runs: pd.DataFrame, command: str) -> str:
    """Per run, then per algorithm (median and range) as a markdown page."""
    lines = ["| algo | seed | steps to 0.95 | lowest after | final |", "|---|---|---|---|---|"]
    for row in runs.itertuples():
        lines.append(f"| {row.algo} | {row.seed} | {row.steps_to_threshold:.0f} | {row.lowest_after:.3f} | {row.final:.3f} |")
    summary = ["| algo | runs | steps to 0.95: median (min-max) | lowest after: min | final: min |", "|---|---|---|---|---|"]
    for algo, group in runs.groupby("algo", sort=False):
        steps = group["steps_to_threshold"]
        summary.append(
            f"| {algo} | {len(group)} | {steps.median():.0f} ({steps.min():.0f}-{steps.max():.0f}) | "
            f"{group['lowest_after'].min():.3f} | {group['final'].min():.3f} |"
        )
    return (
        "# `make demo`'s training over seeds: MetaRIMPPO (defaults) against RecurrentPPO (LSTM of 192)\n\n"
        f"Training success (mean over a window of {WINDOW} episodes) on CueMemory (3 cues, delay 4), quickstart's "
        f"settings. NaN: never reached.\n\n" + "\n".join(summary) + "\n\n" + "\n".join(lines) + "\n\n"
        f"Command: `{command}` · {datetime.now().isoformat(timespec='seconds')} · torch {th.__version__}\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4, 5])
    parser.add_argument("--algos", nargs="+", choices=ALGOS, default=list(ALGOS))
    parser.add_argument("--timesteps", type=int, default=30_000)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/demo"))
    args = parser.parse_args()
    th.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "demo_seeds.csv"
    runs = pd.read_csv(path) if path.exists() else pd.DataFrame(columns=["algo", "seed"])
    for algo in args.algos:
        for seed in args.seeds:
            if ((runs["algo"] == algo) & (runs["seed"] == seed)).any():
                continue
            with tempfile.TemporaryDirectory() as monitor_dir:
                train(algo, seed, args.timesteps, Path(monitor_dir))
                row = dict(algo=algo, seed=seed, timesteps=args.timesteps, **curve_summary(Path(monitor_dir)))
            runs = pd.concat([runs, pd.DataFrame([row])], ignore_index=True)
            runs.to_csv(path, index=False)
            print(row, flush=True)
    command = "python " + shlex.join(sys.argv)
    (args.out / "demo_seeds.md").write_text(to_markdown(runs, command))
    print((args.out / "demo_seeds.md").read_text())


if __name__ == "__main__":
    main()

"""
What a suite's grid costs, measured from the first frames of its runs, and how those runs stand there.

Start some of the grid's runs for a short budget (``run SUITE --until STEPS``: they stay resumable), then this
script reads their folders: each run's frames per second over its first ``--frames`` steps (wall time of training
and evaluation, from its ``eval.csv``, up to its first evaluation at or past that step, or its last one), its
deterministic evaluation return there and its training return (SB3's ``rollout/ep_rew_mean``) averaged over the
evaluation interval before it. Per variant, the mean
frames/s gives the hours one run takes to the suite's budget; times seeds (and envs), the grid's total, in core-
hours when the runs had one torch thread each. It writes ``cost.csv`` (one row per run), ``cost.md`` (the tables and
the command) and ``curves.png`` (training returns over the first frames) into ``--out``.

.. code-block:: bash

    python -m sb3_metarim.benchmark run paper_full --seeds 0 --until 500000 --workers 2
    python scripts/grid_cost.py paper_full --frames 500000
"""

import argparse
import os
import platform
import shlex
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
import torch as th

from sb3_metarim.benchmark.report import markdown_table
from sb3_metarim.benchmark.spec import load_suite
from sb3_metarim.benchmark.training_log import training_curve

parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
parser.add_argument("suite", help="a suite yaml file, or the name of a shipped suite")
parser.add_argument("--runs", type=Path, default=Path("runs"), help="working directory of the runs (default: runs)")
parser.add_argument("--frames", type=int, required=True, help="read each run up to this many steps")
parser.add_argument("--out", type=Path, help="where the tables go (default: benchmarks/<suite>/cost)")
args = parser.parse_args()
suite = load_suite(args.suite)
out = args.out or Path("benchmarks") / suite.name / "cost"
command = " ".join(["python", *map(shlex.quote, sys.argv)])

rows, curves = [], {}
for spec in suite.runs():
    folder = spec.folder(args.runs)
    if not (folder / "eval.csv").exists():
        continue
    evaluations = pd.read_csv(folder / "eval.csv")
    past = evaluations[evaluations["timesteps"] >= args.frames]
    last = past.iloc[0] if len(past) else evaluations.iloc[-1]
    if last["timesteps"] == 0:
        continue
    curve = training_curve(folder)
    curve = curve[curve["timesteps"] <= last["timesteps"]]
    recent = curve[curve["timesteps"] > last["timesteps"] - spec.env.eval_freq]  # SB3's 100-episode mean is noisy
    rows.append(
        {
            "env_id": spec.env.env_id,
            "variant": spec.variant.name,
            "seed": spec.seed,
            "frames": int(last["timesteps"]),
            "wall_s": float(last["time_s"]),
            "frames_per_s": last["timesteps"] / last["time_s"],
            "eval_return": float(last["return_mean"]),
            "eval_success": float(last["success_rate"]),
            "train_return": float(recent["train_return"].mean()),
            "budget": spec.env.n_timesteps,
        }
    )
    curves[(spec.env.env_id, spec.variant.name, spec.seed)] = curve
if not rows:
    sys.exit(f"no run of {suite.name} under {args.runs} has an evaluation after step 0: start some with --until")
runs = pd.DataFrame(rows)
out.mkdir(parents=True, exist_ok=True)
runs.to_csv(out / "cost.csv", index=False)

variants = runs.groupby(["env_id", "variant"], sort=False).agg(
    runs=("seed", "size"),
    frames=("frames", "min"),
    frames_per_s=("frames_per_s", "mean"),
    eval_return=("eval_return", "mean"),
    train_return=("train_return", "mean"),
    budget=("budget", "first"),
)
variants["hours_per_run"] = variants["budget"] / variants["frames_per_s"] / 3600
variants["grid_hours"] = variants["hours_per_run"] * len(suite.seeds)
measured = set(variants.index.get_level_values("variant"))
missing = [variant.name for variant in suite.variants if variant.name not in measured]

figure, axes = plt.subplots(1, len(suite.envs), figsize=(6 * len(suite.envs), 4), squeeze=False)
for axis, env in zip(axes[0], suite.envs, strict=True):
    for (env_id, variant, seed), curve in curves.items():
        if env_id == env.env_id:
            axis.plot(curve["timesteps"], curve["train_return"], label=f"{variant} seed {seed}")
    axis.set(title=env.env_id, xlabel="frames", ylabel="training return (rollout/ep_rew_mean)")
    axis.legend(fontsize=7)
figure.tight_layout()
figure.savefig(out / "curves.png", dpi=120)

lines = [
    f"# Cost of the `{suite.name}` grid, from the first {args.frames:,} frames of its runs",
    "",
    f"Per variant: the mean over its measured runs of frames/s (training and evaluation, one torch thread per run), "
    f"the hours one run takes to the budget at that rate, and the {len(suite.seeds)} seeds' hours "
    "(core-hours with one thread per run); the evaluation (deterministic) return at the first evaluation at or past "
    "that frame (`frames`: where it was) and the "
    "training (stochastic, last 100 episodes) return averaged over the evaluation interval before it.",
    "",
    markdown_table(variants.reset_index()),
    "",
    f"**Grid: {variants['grid_hours'].sum():,.0f} core-hours** for the variants measured"
    + (f" (not measured: {', '.join(missing)})." if missing else "."),
    "",
    "![training returns over the first frames](curves.png)",
    "",
    f"Command: `{command}` · {os.cpu_count()} CPUs ({platform.machine()}) · torch {th.__version__}",
]
(out / "cost.md").write_text("\n".join(lines) + "\n")
print("\n".join(lines))
print(f"written: {out}")

"""
sb3-contrib's RecurrentPPO performance test (:mod:`sb3_metarim.benchmark.contrib_performance`) over seeds, for
RecurrentPPO and our algorithms, with the test's ``lstm_hidden_size=64`` and with each algorithm's own default width.
Each finished run is appended to ``--out``/returns.csv at once (a rerun skips the rows there, so an interrupted
sweep resumes); ``returns.md`` is the table: per algorithm and width, every seed's mean return and how many reached
450, with the command.

.. code-block:: bash

    python scripts/recurrent_ppo_performance.py --seeds 1 2 3 4 5 --workers 2
"""

import argparse
import os
import shlex
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import pandas as pd
import torch as th
import yaml
from sb3_contrib import RecurrentPPO

from sb3_metarim.benchmark.contrib_performance import THRESHOLD, TIMESTEPS, performance_run
from sb3_metarim.meta_rim_ppo.variants import ALGORITHMS

CLASSES = {"ppo_lstm": RecurrentPPO, **ALGORITHMS}
DEFAULT_WIDTH = "default"

parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
parser.add_argument("--algos", nargs="+", default=["metarim_ppo", "ppo_lstm"], choices=sorted(CLASSES))
parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3, 4, 5])
parser.add_argument("--widths", nargs="+", default=["64", DEFAULT_WIDTH], help="lstm_hidden_size values, or 'default'")
parser.add_argument("--workers", type=int, default=1, help="runs at a time, one process and one torch thread each")
parser.add_argument("--out", type=Path, default=Path("benchmarks/contrib_performance"))
parser.add_argument("--timesteps", type=int, default=TIMESTEPS, help=f"training steps (the test's {TIMESTEPS})")
parser.add_argument(
    "--algo-kwargs", nargs="*", default=[], metavar="KEY=VALUE", help="arguments of the algorithms' own (yaml values)"
)
args = parser.parse_args()
ALGO_KWARGS = {key: yaml.safe_load(value) for key, value in (item.split("=", 1) for item in args.algo_kwargs)}


def one_run(algo: str, width: str, seed: int) -> dict:
    os.environ["OMP_NUM_THREADS"] = "1"
    th.set_num_threads(1)
    lstm_hidden_size = None if width == DEFAULT_WIDTH else int(width)
    run = performance_run(CLASSES[algo], seed, lstm_hidden_size, args.timesteps, ALGO_KWARGS)
    return {"algo": algo, "width": width, "seed": seed, **run}


args.out.mkdir(parents=True, exist_ok=True)
csv_path = args.out / "returns.csv"
done = pd.read_csv(csv_path, dtype={"width": str}) if csv_path.exists() else pd.DataFrame(columns=["algo", "width", "seed"])
finished = set(zip(done["algo"], done["width"].astype(str), done["seed"].astype(int), strict=True))
todo = [(a, w, s) for a in args.algos for w in args.widths for s in args.seeds if (a, w, s) not in finished]
with ProcessPoolExecutor(args.workers) as pool:
    futures = [pool.submit(one_run, *run) for run in todo]
    for future in as_completed(futures):
        row = future.result()
        pd.DataFrame([row]).to_csv(csv_path, mode="a", header=not csv_path.exists(), index=False)
        print(f"{row['algo']} width {row['width']} seed {row['seed']}: {row['mean_return']:.1f}", flush=True)

table = pd.read_csv(csv_path, dtype={"width": str}).sort_values(["algo", "width", "seed"])
command = " ".join(["python scripts/recurrent_ppo_performance.py", *map(shlex.quote, sys.argv[1:])])
lines = [
    "# sb3-contrib's RecurrentPPO performance test",
    "",
    f"CartPole with positions only, {args.timesteps:,} steps, the test's PPO settings; mean return of 10 deterministic "
    f"episodes on the training env, passing at {THRESHOLD:.0f}. Width: `lstm_hidden_size` (`default`: the algorithm's "
    "own)." + (f" The algorithms' arguments: `{ALGO_KWARGS}`." if ALGO_KWARGS else ""),
    "",
    "| algo | width | returns by seed | passed | mean training time (s) |",
    "|---|---|---|---|---|",
]
for (algo, width), group in table.groupby(["algo", "width"], sort=False):
    returns = ", ".join(f"{seed}: {value:.0f}" for seed, value in zip(group["seed"], group["mean_return"], strict=True))
    lines.append(
        f"| {algo} | {width} | {returns} | {int(group['passed'].sum())}/{len(group)} | {group['train_s'].mean():.0f} |"
    )
lines += ["", f"Command: `{command}`", ""]
(args.out / "returns.md").write_text("\n".join(lines))
print(f"wrote {csv_path} and {args.out / 'returns.md'}")

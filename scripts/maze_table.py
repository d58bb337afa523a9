"""
The MetaMaze table of MetODS (Chalvidal et al. 2022) from the `metods` suite's trained models, beside the paper's
numbers and a random walk: reward, success and steps to the first reward on the trained 9 x 9 maze and the larger
13 x 13 one, IQM over seeds with 95% bootstrap CIs, as :mod:`sb3_metarim.benchmark.maze` measures them.

.. code-block:: bash

    python -m sb3_metarim.benchmark run metods --env sb3_metarim/MetaMaze-v0   # the models (see the README)
    python scripts/maze_table.py          # benchmarks/metods/maze/{runs.csv, summary.csv, maze.md}
"""

import argparse
import shlex
import sys
from pathlib import Path

from sb3_metarim.benchmark.maze import MAZE, finished_runs, maze_markdown, maze_runs, summarize
from sb3_metarim.benchmark.spec import load_suite

parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
parser.add_argument("--runs", type=Path, default=Path("runs"), help="the harness's --runs, with the models (default runs)")
parser.add_argument("--results", type=Path, default=Path("benchmarks"), help="the harness's --results (default benchmarks)")
parser.add_argument("--suite", default="metods", help="a suite yaml file or a shipped suite's name (default metods)")
parser.add_argument("--episodes", type=int, default=100, help="episodes per run and maze (default 100)")
args = parser.parse_args()
command = " ".join(["python scripts/maze_table.py", *map(shlex.quote, sys.argv[1:])])

suite = load_suite(args.suite)
specs = finished_runs(suite, args.runs)
if not specs:
    raise SystemExit(f"no finished {MAZE} run of suite {args.suite!r} under {args.runs}")
runs = maze_runs(specs, args.runs, args.episodes, log=print)
summary = summarize(runs)

out = args.results / suite.name / "maze"
out.mkdir(parents=True, exist_ok=True)
runs.to_csv(out / "runs.csv", index=False)
summary.to_csv(out / "summary.csv", index=False)
(out / "maze.md").write_text("\n".join(maze_markdown(summary, command, args.episodes)) + "\n")
print(f"wrote {out}/runs.csv, summary.csv, maze.md")
print(command)

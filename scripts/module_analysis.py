"""
What a trained RIM's modules do on MiniGrid/BabyAI: play a harness run's ``model.zip`` and write, to ``--out``
(default ``benchmarks/<suite>/analysis/<env>/<variant>/seed<k>/`` for the run ``runs/<suite>/<env>/<variant>/seed<k>``),
``activity.csv`` (one row per step: active modules, objects, colours, the task's state and mission words in view),
the heatmaps of :func:`sb3_metarim.benchmark.analysis.plot_activity_heatmaps`
and ``analysis.md`` (the command, the activation tables and :func:`sb3_metarim.benchmark.analysis.reading`).

.. code-block:: bash

    python scripts/module_analysis.py runs/paper/BabyAI-GoToLocal-v0/metarim_ppo/seed0 --episodes 100
    python scripts/module_analysis.py <run> --env-id BabyAI-GoToLocalS8N7-v0    # another env of the same family

The env is the run's (``config.json``: env id, env kwargs, ``env_wrapper``) unless ``--env-id`` names another.
"""

import argparse
import json
import shlex
import sys
from pathlib import Path

import gymnasium as gym
import pandas as pd

import sb3_metarim  # noqa: F401  (registers the environments)
from sb3_metarim.benchmark.analysis import (
    PREFIXES,
    UNIT_PREFIX,
    activation_rates,
    module_activity,
    plot_activity_heatmaps,
    rates_markdown,
    rates_within_time,
    reading,
    unit_columns,
)
from sb3_metarim.benchmark.runner import ALGORITHMS, env_wrappers, wrap


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("run", type=Path, help="a harness run's folder (model.zip, config.json)")
    parser.add_argument("--episodes", type=int, default=50, help="episodes to play (default 50)")
    parser.add_argument("--seed", type=int, default=100_000, help="episode i resets with seed + i (default 100000)")
    parser.add_argument("--env-id", help="play this env instead of the run's (same wrappers)")
    parser.add_argument("--stochastic", action="store_true", help="sample actions (default: the most likely)")
    parser.add_argument("--min-steps", type=int, default=5, help="leave out features seen at fewer steps (default 5)")
    parser.add_argument("--out", type=Path, help="output folder (default benchmarks/<suite>/analysis/<env>/<variant>/seed<k>)")
    parser.add_argument(
        "--within-time",
        nargs="+",
        default=[],
        metavar="FEATURE",
        help="also compare, within each time bucket, the steps with and without these features (e.g. state_door_open)",
    )
    args = parser.parse_args()

    config = json.loads((args.run / "config.json").read_text())
    env_id = args.env_id or config["env_id"]
    env_kwargs = config["env_kwargs"] if args.env_id is None else {}
    env = wrap(gym.make(env_id, **env_kwargs), env_wrappers(config["hyperparams"].get("env_wrapper")))
    model = ALGORITHMS[config["algo"]].load(args.run / "model.zip", device="cpu")
    frame = module_activity(model, env, n_episodes=args.episodes, deterministic=not args.stochastic, seed=args.seed)

    out = args.out or Path("benchmarks", args.run.parts[-4], "analysis", *args.run.parts[-3:])
    out.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out / "activity.csv", index=False)
    images = plot_activity_heatmaps(frame, out, min_steps=args.min_steps)
    command = " ".join(["python scripts/module_analysis.py", *map(shlex.quote, sys.argv[1:])])
    lines = [
        f"# Module activity: {config['variant']} seed {config['seed']} on {env_id}",
        "",
        f"Model `{args.run / 'model.zip'}` ({config['algo']}, trained on {config['env_id']}), {args.episodes} episodes, "
        f"{'sampled' if args.stochastic else 'deterministic'} actions. A module's rate for a feature: the fraction of "
        "the steps with that feature in view (objects: cells of that type; colours: cells of objects other than walls; "
        "states: what the agent carries, doors locked, closed or open; words: in the mission) at which the module was "
        "active. In brackets: the rate and its difference from the "
        "module's rate over all steps. The mission is fixed over an episode: with few episodes per word, a word's rate "
        "mixes the word with those episodes' layouts.",
        "",
        "## Reading",
        "",
        reading(frame, min_steps=args.min_steps),
    ]
    for kind in PREFIXES:
        table = activation_rates(frame, kind, args.min_steps)
        lines += ["", f"## By {kind}", "", rates_markdown(table), "", f"![{kind}](modules_by_{kind}.png)"]
    for feature in args.within_time:
        lines += ["", f"## Within the same steps: with / without `{feature}`", "", within_time_markdown(frame, feature)]
    lines += ["", "![an episode](modules_over_episode.png)", "", f"Command: `{command}`", ""]
    (out / "analysis.md").write_text("\n".join(lines))
    print(f"wrote {out / 'activity.csv'}, {', '.join(path.name for path in images)}, {out / 'analysis.md'}")
    print(command)


def within_time_markdown(frame: pd.DataFrame, feature: str) -> str:
    """:return: :func:`rates_within_time` as a markdown table: per time bucket, each module's rate with / without."""
    table = rates_within_time(frame, feature)
    units = unit_columns(frame)
    lines = [
        "| steps | with / without | " + " | ".join(unit.removeprefix(UNIT_PREFIX) for unit in units) + " |",
        "|---|---|" + "---|" * len(units),
    ]
    for bucket, row in table.iterrows():
        counts = f"{int(row['steps with'])} / {int(row['steps without'])}"
        cells = [f"{row[f'{unit} with']:.2f} / {row[f'{unit} without']:.2f}" for unit in units]
        lines.append(f"| {bucket} | {counts} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()

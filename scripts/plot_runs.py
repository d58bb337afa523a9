"""
Compare runs: for each algorithm, the mean learning curve over its runs (seeds) with a 95% bootstrap
confidence band, from rl-zoo3's log layout (``<folder>/<algo>/<env>_<n>/``).

Each run's curve is its evaluations (``evaluations.npz``, ``--source eval``, the default when every run has
them) or its training episodes (Monitor files, ``--source train``, a sliding mean over ``--window`` episodes),
interpolated on a common grid of steps up to the shortest run's end. Writes the figure and a markdown table of
the final values. Run:
``python scripts/plot_runs.py -f logs --env BabyAI-GoToLocal-v0 --algos metarim_ppo rim_ppo metalstm_ppo ppo_lstm``.
"""

import argparse
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from stable_baselines3.common.results_plotter import window_func

from sb3_metarim.zoo.plots import evaluation_curve, monitor_curve

ALGOS = ("metarim_ppo", "rim_ppo", "metalstm_ppo", "ppo_lstm")
SOURCES = ("auto", "eval", "train")
Curve = tuple[np.ndarray, np.ndarray]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("-f", "--folder", type=Path, default=Path("logs"), help="rl-zoo3 log folder")
    parser.add_argument("--env", required=True, help="environment id")
    parser.add_argument("--algos", nargs="+", default=list(ALGOS), help="algorithms to compare")
    parser.add_argument("--source", choices=SOURCES, default="auto", help="evaluations, training episodes, or auto")
    parser.add_argument("--window", type=int, default=100, help="training episodes per point of the sliding mean")
    parser.add_argument("--points", type=int, default=50, help="points of the common grid of steps")
    parser.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples of the confidence band")
    parser.add_argument("-o", "--output", type=Path, help="figure path (default <folder>/compare_<env>.png)")
    return parser.parse_args()


def env_folder_name(env_id: str) -> str:
    """
    :return: the name rl-zoo3 gives ``env_id``'s run folders (as huggingface_sb3's ``EnvironmentName``: ``/``
        becomes ``-``, a ``module:`` prefix is dropped).
    """
    return env_id.replace("/", "-").split(":")[-1]


def run_folders(folder: Path, algo: str, env_id: str) -> list[Path]:
    """:return: the run folders ``<folder>/<algo>/<env>_<n>`` of ``algo`` on ``env_id``, in run order."""
    name = env_folder_name(env_id)
    pattern = re.compile(rf"{re.escape(name)}_(\d+)")
    runs = [path for path in (folder / algo).glob(f"{name}_*") if path.is_dir() and pattern.fullmatch(path.name)]
    return sorted(runs, key=lambda path: int(pattern.fullmatch(path.name).group(1)))


def run_curve(run: Path, source: str, window: int) -> Curve | None:
    """
    :param run: A run folder.
    :param source: ``"eval"`` or ``"train"``.
    :param window: Episodes per point of the training curve's sliding mean.
    :return: (steps, value) of the run, or ``None`` when it has no such data.
    """
    if source == "eval":
        evaluation = evaluation_curve(run)
        return None if evaluation is None else evaluation[:2]
    training = monitor_curve(run)
    if training is None:
        return None
    x, y = training
    return window_func(x, y, max(1, min(window, len(y))), np.mean)


def bootstrap_band(values: np.ndarray, resamples: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """
    :param values: (runs, points) curves on a common grid.
    :param resamples: Bootstrap resamples of the runs.
    :param rng: Random generator.
    :return: the 2.5% and 97.5% percentiles of the mean over resampled runs, per point.
    """
    picks = rng.integers(len(values), size=(resamples, len(values)))
    means = values[picks].mean(axis=1)
    return np.percentile(means, 2.5, axis=0), np.percentile(means, 97.5, axis=0)


def choose_source(requested: str, runs: dict[str, list[Path]]) -> str:
    """:return: ``requested``, or for ``"auto"`` ``"eval"`` when every run has evaluations, else ``"train"``."""
    if requested != "auto":
        return requested
    every_run = [run for algo_runs in runs.values() for run in algo_runs]
    return "eval" if all(evaluation_curve(run) is not None for run in every_run) else "train"


def main() -> None:
    args = parse_args()
    runs = {algo: run_folders(args.folder, algo, args.env) for algo in args.algos}
    source = choose_source(args.source, runs)
    curves = {
        algo: [c for c in (run_curve(run, source, args.window) for run in algo_runs) if c is not None]
        for algo, algo_runs in runs.items()
    }
    curves = {algo: algo_curves for algo, algo_curves in curves.items() if algo_curves}
    if not curves:
        raise SystemExit(f"no {source} data for {args.algos} on {args.env} under {args.folder}")
    end = min(curve[0][-1] for algo_curves in curves.values() for curve in algo_curves)
    start = max(curve[0][0] for algo_curves in curves.values() for curve in algo_curves)
    grid = np.linspace(start, end, args.points) if end > start else np.array([end])
    rng = np.random.default_rng(0)

    figure, ax = plt.subplots(figsize=(8, 5))
    rows = []
    for algo, algo_curves in curves.items():
        values = np.stack([np.interp(grid, x, y) for x, y in algo_curves])
        mean = values.mean(axis=0)
        low, high = bootstrap_band(values, args.resamples, rng)
        (line,) = ax.plot(grid, mean, label=f"{algo} ({len(values)} runs)")
        ax.fill_between(grid, low, high, color=line.get_color(), alpha=0.2)
        rows.append(f"| {algo} | {len(values)} | {mean[-1]:.3f} | [{low[-1]:.3f}, {high[-1]:.3f}] |")
    label = "evaluation return" if source == "eval" else f"training return (mean of {args.window} episodes)"
    ax.set(xlabel="environment steps", ylabel=label, title=f"{args.env}: mean over runs, 95% bootstrap CI")
    ax.grid(alpha=0.3)
    ax.legend(loc="best")
    figure.tight_layout()
    output = args.output or args.folder / f"compare_{env_folder_name(args.env)}.png"
    output.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(output, dpi=110)

    table = [
        f"# {args.env}: {source} curves at {grid[-1]:.0f} steps",
        "",
        f"![comparison]({output.name})",
        "",
        "| algorithm | runs | mean | 95% CI |",
        "|---|---|---|---|",
        *rows,
    ]
    output.with_suffix(".md").write_text("\n".join(table) + "\n")
    print(f"figure: {output}  table: {output.with_suffix('.md')}")


if __name__ == "__main__":
    main()

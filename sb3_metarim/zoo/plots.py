"""
What people look at after a training run: its curves (training episodes from the Monitor files, evaluations from
``evaluations.npz``) and ``learning_curve.png``, written without a display. ``scripts/plot_runs.py`` compares several
runs; an Optuna study's report is :func:`sb3_metarim.zoo.tuning.write_study_report`.
"""

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from stable_baselines3.common.monitor import LoadMonitorResultsError, load_results
from stable_baselines3.common.results_plotter import X_TIMESTEPS, ts2xy, window_func

LEARNING_CURVE = "learning_curve.png"
EVALUATIONS = "evaluations.npz"


def monitor_curve(run_folder: str | Path) -> tuple[np.ndarray, np.ndarray] | None:
    """
    :param run_folder: A folder with SB3 ``Monitor`` files (``*.monitor.csv``).
    :return: (timesteps, episode return) of the finished training episodes, in time order, or ``None``.
    """
    try:
        results = load_results(str(run_folder))
    except LoadMonitorResultsError:
        return None
    if results.empty:
        return None
    return ts2xy(results, X_TIMESTEPS)


def evaluation_curve(run_folder: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """
    :param run_folder: A folder with the ``evaluations.npz`` of SB3's ``EvalCallback``.
    :return: (timesteps, mean return, std of the returns) per evaluation, or ``None``.
    """
    path = Path(run_folder) / EVALUATIONS
    if not path.is_file():
        return None
    data = np.load(path)
    if len(data["timesteps"]) == 0:
        return None
    return data["timesteps"], data["results"].mean(axis=1), data["results"].std(axis=1)


def plot_learning_curve(run_folder: str | Path, title: str = "", window: int = 100) -> Path:
    """
    Plot a run's training episodes (return, mean over a sliding window) and evaluations (mean and std).

    :param run_folder: An rl-zoo3 run folder (``logs/<algo>/<env>_<n>``) or any folder with Monitor files
        and/or ``evaluations.npz``.
    :param title: Title of the figure.
    :param window: Training episodes per point of the sliding mean (fewer when the run has fewer).
    :return: the path of ``<run_folder>/learning_curve.png``.
    """
    figure = Figure(figsize=(7, 4.5))
    ax = figure.add_subplot()
    training = monitor_curve(run_folder)
    if training is not None:
        x, y = training
        ax.plot(x, y, ".", color="tab:blue", alpha=0.15, markersize=3)
        width = max(1, min(window, len(y) // 5))
        if len(y) >= width:
            x_mean, y_mean = window_func(x, y, width, np.mean)
            ax.plot(x_mean, y_mean, color="tab:blue", label=f"training episodes (mean of {width})")
    evaluation = evaluation_curve(run_folder)
    if evaluation is not None:
        x, mean, std = evaluation
        ax.plot(x, mean, "o-", color="tab:orange", label="evaluation (mean ± std)")
        ax.fill_between(x, mean - std, mean + std, color="tab:orange", alpha=0.2)
    if training is None and evaluation is None:
        ax.text(0.5, 0.5, "no finished episode yet", ha="center", va="center", transform=ax.transAxes)
    else:
        ax.legend(loc="best")
    ax.set(xlabel="environment steps", ylabel="episode return", title=title)
    ax.grid(alpha=0.3)
    figure.tight_layout()
    path = Path(run_folder) / LEARNING_CURVE
    figure.savefig(path, dpi=110)
    return path

"""
What people look at after a run: the learning curve of a training run and the report of an Optuna study.

Both are files (PNG, markdown) written without a display; ``scripts/plot_runs.py`` compares several runs.
"""

import warnings
from collections.abc import Callable
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import optuna
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from optuna.trial import FrozenTrial, TrialState
from stable_baselines3.common.monitor import LoadMonitorResultsError, load_results
from stable_baselines3.common.results_plotter import X_TIMESTEPS, ts2xy, window_func

from sb3_metarim.tuning import ERROR_ATTR, INTERRUPTED_ATTR, RETRY_OF_ATTR

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


def write_study_report(study: optuna.Study, folder: str | Path, storage: str = "", train_command: str = "") -> Path:
    """
    Write ``<study>_report.md`` (trials by state, best trial, parameter importances, every trial) with
    ``<study>_history.png`` (Optuna's optimization history) and ``<study>_importances.png`` (Optuna's
    parameter importances, once two trials have completed) in ``folder``.

    :param study: The study.
    :param folder: Where to write.
    :param storage: The study's storage URL, shown in the report.
    :param train_command: The command that trains with a trial's hyperparameters, without ``--trial-id``.
    :return: the markdown file's path.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    stem = study.study_name.replace("/", "-")
    trials = study.get_trials(deepcopy=False)
    complete = [trial for trial in trials if trial.state == TrialState.COMPLETE]
    lines = [f"# Study `{study.study_name}`", "", f"Storage: `{storage}`" if storage else "", ""]
    counts = {state.name: sum(trial.state == state for trial in trials) for state in TrialState}
    lines += [f"{len(trials)} trials: " + ", ".join(f"{count} {name.lower()}" for name, count in counts.items() if count), ""]

    history = _save_optuna_plot(
        optuna.visualization.matplotlib.plot_optimization_history, study, folder / f"{stem}_history.png"
    )
    lines += ["## Optimization history", "", f"![history]({history.name})" if history else "no trial to plot", ""]
    lines += _best_trial_lines(study, complete, train_command)
    lines += _importance_lines(study, complete, folder / f"{stem}_importances.png")
    lines += ["## Trials", "", "| trial | state | value | duration (s) | params | note |", "|---|---|---|---|---|---|"]
    lines += [_trial_row(trial) for trial in trials]
    path = folder / f"{stem}_report.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def _best_trial_lines(study: optuna.Study, complete: list[FrozenTrial], train_command: str) -> list[str]:
    if not complete:
        return ["## Best trial", "", "no trial has completed yet", ""]
    best = study.best_trial
    lines = ["## Best trial", "", f"Trial {best.number}: value {best.value:.4g}", "", "| parameter | value |", "|---|---|"]
    lines += [f"| {key} | {value} |" for key, value in {**best.params, **best.user_attrs}.items()]
    if train_command:
        lines += ["", "Train with these hyperparameters:", "", f"    {train_command} --trial-id {best.number}"]
    return [*lines, ""]


def _importance_lines(study: optuna.Study, complete: list[FrozenTrial], path: Path) -> list[str]:
    lines = ["## Parameter importances", ""]
    if len(complete) < 2:
        return [*lines, f"needs two completed trials ({len(complete)} so far)", ""]
    importances = optuna.importance.get_param_importances(study)
    _save_optuna_plot(optuna.visualization.matplotlib.plot_param_importances, study, path)
    lines += [f"![importances]({path.name})", "", "| parameter | importance |", "|---|---|"]
    lines += [f"| {key} | {value:.3f} |" for key, value in importances.items()]
    return [*lines, ""]


def _save_optuna_plot(plot: Callable[[optuna.Study], Axes], study: optuna.Study, path: Path) -> Path | None:
    """Save one of ``optuna.visualization.matplotlib``'s plots of ``study``; :return: its path, ``None`` if empty."""
    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        ax: Axes = plot(study)
    figure = ax.figure
    figure.set_size_inches(8, 5)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)  # Optuna draws with pyplot, which keeps its figures
    return path


def _trial_row(trial: FrozenTrial) -> str:
    value = "" if trial.value is None else f"{trial.value:.4g}"
    duration = "" if trial.duration is None else f"{trial.duration.total_seconds():.1f}"
    params = ", ".join(
        f"{key}={value:.3g}" if isinstance(value, float) else f"{key}={value}" for key, value in trial.params.items()
    )
    note = trial.user_attrs.get(ERROR_ATTR, "")
    if trial.user_attrs.get(INTERRUPTED_ATTR):
        note = "interrupted"
    if RETRY_OF_ATTR in trial.user_attrs:
        note = f"retry of trial {trial.user_attrs[RETRY_OF_ATTR]}"
    return f"| {trial.number} | {trial.state.name.lower()} | {value} | {duration} | {params} | {note} |"

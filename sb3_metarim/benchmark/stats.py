"""Point estimates with 95% bootstrap confidence intervals (rliable), shared by the aggregate and transfer tables."""

import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
import scipy.stats
from rliable import library as rly
from rliable import metrics

CONFIDENCE = 0.95
BOOTSTRAP_REPS = 2000


def iqm_interval(values: np.ndarray, seed: int = 0) -> tuple[float, float, float]:
    """:return: the IQM of ``values`` (one task's runs) and its 95% bootstrap CI."""
    return interval(values[:, None], metrics.aggregate_iqm, seed)


def mean_interval(values: np.ndarray, seed: int = 0) -> tuple[float, float, float]:
    """:return: the mean of ``values`` and its 95% bootstrap CI."""
    return interval(values[:, None], metrics.aggregate_mean, seed)


def interval(matrix: np.ndarray, aggregate: Callable[[np.ndarray], float], seed: int = 0) -> tuple[float, float, float]:
    """
    :param matrix: (runs x tasks) scores; with several tasks rliable's bootstrap is stratified by task.
    :param aggregate: e.g. ``rliable.metrics.aggregate_iqm``.
    :param seed: Seed of the bootstrap.
    :return: the point estimate and its 95% bootstrap CI.
    """
    point, low, high = _bootstrap(matrix, lambda scores: np.array([aggregate(scores)]), seed)
    return float(point[0]), float(low[0]), float(high[0])


def iqm_curve(matrix: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """
    Pointwise IQM bands of learning curves, in one bootstrap: the runs are resampled independently at each step
    (rliable's stratification, with the steps as its tasks), each step's IQM is rliable's ``aggregate_iqm``.

    :param matrix: (runs x steps) scores.
    :param seed: Seed of the bootstrap.
    :return: per step the IQM over runs and its 95% CI (low, high).
    """
    return _bootstrap(matrix, lambda scores: scipy.stats.trim_mean(scores, proportiontocut=0.25, axis=0), seed)


@contextmanager
def seeded_numpy(seed: int = 0) -> Iterator[None]:
    """
    NumPy's global random state seeded for the block, then restored: rliable's stratified bootstrap (several tasks)
    and its performance profiles draw from it, whatever ``random_state`` they are given.
    """
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)


def _bootstrap(
    matrix: np.ndarray, statistic: Callable[[np.ndarray], np.ndarray], seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    with warnings.catch_warnings(), seeded_numpy(seed):
        # rliable seeds arch's bootstrap with a RandomState, which arch 7 deprecates.
        warnings.filterwarnings("ignore", "random_state is deprecated", FutureWarning)
        point, bounds = rly.get_interval_estimates(
            {"x": matrix},
            statistic,
            reps=BOOTSTRAP_REPS,
            confidence_interval_size=CONFIDENCE,
            random_state=np.random.RandomState(seed),
        )
    return point["x"], bounds["x"][0], bounds["x"][1]


def ci_text(point: float, low: float, high: float, fmt: str = ".3f") -> str:
    """:return: ``"point [low, high]"`` for the markdown tables."""
    return f"{point:{fmt}} [{low:{fmt}}, {high:{fmt}}]"

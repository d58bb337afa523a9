"""
A run's training return, read from SB3's own log of it: ``rollout/ep_rew_mean`` in ``progress.csv`` and in the
``progress_from<steps>.csv`` of each resume, the mean return of the last 100 training episodes of the sampling
(stochastic) policy.

The harness evaluates deterministically, as SB3's ``EvalCallback`` does. BabyAI's and rl-starter-files' curves, and
so most likely those of the papers built on them, are of the training return instead; in MiniGrid the two differ a
lot (an argmax policy gets stuck turning or facing a wall where a sampling one moves on), so the aggregate reports
both.
"""

from pathlib import Path

import numpy as np
import pandas as pd

TRAINING_RETURN = "rollout/ep_rew_mean"
TOTAL_STEPS = "time/total_timesteps"
RESUME_PREFIX = "progress_from"


def training_curve(folder: Path) -> pd.DataFrame:
    """
    :param folder: A run's folder.
    :return: the run's training return against steps, columns ``timesteps`` and ``train_return``, in order. Where a
        resume restarted from an earlier step than its previous start had reached (the work after the last
        checkpoint is redone), the resumed log replaces the rows logged after its start. Empty when no log holds a
        training return (no training episode ended).
    """
    logs = {0: folder / "progress.csv"} | {
        int(path.stem.removeprefix(RESUME_PREFIX)): path for path in folder.glob(f"{RESUME_PREFIX}*.csv")
    }
    starts = sorted(logs)
    pieces = []
    for start, next_start in zip(starts, [*starts[1:], np.inf], strict=True):
        path = logs[start]
        if not path.exists() or path.stat().st_size == 0:
            continue
        frame = pd.read_csv(path)
        if TRAINING_RETURN not in frame:
            continue
        frame = frame[[TOTAL_STEPS, TRAINING_RETURN]].dropna()
        pieces.append(frame[frame[TOTAL_STEPS] <= next_start])
    if not pieces:
        return pd.DataFrame({"timesteps": [], "train_return": []})
    curve = pd.concat(pieces).rename(columns={TOTAL_STEPS: "timesteps", TRAINING_RETURN: "train_return"})
    return curve.sort_values("timesteps", kind="stable").reset_index(drop=True)


def training_return_at(folder: Path, steps: np.ndarray) -> np.ndarray:
    """
    :param folder: A run's folder.
    :param steps: Steps to read the training return at (the run's evaluation steps, so that both curves share
        their steps and their frames-to-threshold resolution).
    :return: the training return linearly interpolated at ``steps``; NaN before the first logged value and
        everywhere when the run logged none.
    """
    curve = training_curve(folder)
    if curve.empty:
        return np.full(len(steps), np.nan)
    return np.interp(steps, curve["timesteps"], curve["train_return"], left=np.nan)

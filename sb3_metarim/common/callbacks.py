"""A callback that logs how return and success change from the first to the last inner episode of a trial."""

from collections import defaultdict, deque
from functools import partial
from typing import Literal

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback

from sb3_metarim.common.validation import check_positive_int
from sb3_metarim.common.wrappers import INNER_EPISODE

METRICS = ("return", "success")


class TrialLogger(BaseCallback):
    """
    Logs the mean return and success of the last ``window`` inner episodes of each index within a trial, from the
    ``info[INNER_EPISODE]`` that :class:`~sb3_metarim.common.wrappers.TrialWrapper` reports, under
    ``trial/return_ep<index>`` and ``trial/success_ep<index>`` (index from 00) at the end of each rollout, to
    SB3's logger (stdout, TensorBoard, CSV, ... as configured). A meta-learner's curve rises with the index: later
    episodes of a trial profit from what the earlier ones revealed about the task. ``recent[metric][index]`` holds
    the values the means are taken over.

    :param window: Inner episodes per index the means are taken over (the most recent ones).
    :param verbose: Verbosity level of SB3's callbacks.
    """

    def __init__(self, window: int = 100, verbose: int = 0) -> None:
        super().__init__(verbose)
        check_positive_int("window", window)
        self.window = window
        self.recent: dict[str, dict[int, deque[float]]] = {
            metric: defaultdict(partial(deque, maxlen=window)) for metric in METRICS
        }

    def _on_step(self) -> bool:
        for info in self.locals["infos"]:
            episode = info.get(INNER_EPISODE)
            if episode is not None:
                for metric in METRICS:
                    self.recent[metric][episode["index"]].append(float(episode[metric]))
        return True

    def _on_rollout_end(self) -> None:
        for metric in METRICS:
            for index, mean in self.means(metric).items():
                self.logger.record(f"trial/{metric}_ep{index:02d}", mean)

    def means(self, metric: Literal["return", "success"]) -> dict[int, float]:
        """
        :param metric: ``"return"`` or ``"success"``.
        :return: inner-episode index -> mean of ``metric`` over the last ``window`` inner episodes of that index.
        """
        if metric not in METRICS:
            raise ValueError(f"metric={metric!r}: must be one of {METRICS}")
        return {index: float(np.mean(values)) for index, values in sorted(self.recent[metric].items())}

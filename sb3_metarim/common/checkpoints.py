"""
Training that survives interruption: checkpoints written atomically (the model zip, with both of MetaRIMPPO's
optimizers; the ``VecNormalize`` statistics; the Python, NumPy and PyTorch RNG states), the latest readable one
found again, and a run continued to its total budget.

.. code-block:: python

    from sb3_metarim import MetaRIMPPO
    from sb3_metarim.common.checkpoints import ResumableCheckpointCallback, continue_learning, latest_checkpoint

    checkpoint = latest_checkpoint("runs/cue")
    if checkpoint is None:
        model = MetaRIMPPO("MlpPolicy", env)
    else:
        model = checkpoint.load(MetaRIMPPO, env=env)  # also restores VecNormalize's statistics and the RNG states
    continue_learning(model, 100_000, callback=ResumableCheckpointCallback(5_000, "runs/cue"))

A process killed (SIGKILL, a lost machine) loses at most the steps since its last checkpoint: the env's episodes
under way and the recurrent state restart (the first step after a resume is an episode start), everything else
(parameters, both optimizers' moments, ``num_timesteps``, the learning-rate schedules' progress, the fast/slow
rollout counter, VecNormalize's statistics, the RNGs) continues. A checkpoint is complete or absent: each file is
written to a temporary name and renamed, the model zip last.
"""

import os
import pickle
import random
import re
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch as th
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import CheckpointCallback
from stable_baselines3.common.vec_env import VecNormalize

Model = TypeVar("Model", bound=BaseAlgorithm)

CHECKPOINT_PATTERN = r"{prefix}_(\d+)_steps\.zip"


def rng_state() -> dict[str, Any]:
    """:return: the Python, NumPy and PyTorch (CPU, and CUDA if available) global RNG states."""
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": th.get_rng_state()}
    if th.cuda.is_available():
        state["cuda"] = th.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` returned."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    th.set_rng_state(state["torch"])
    if "cuda" in state and th.cuda.is_available():
        th.cuda.set_rng_state_all(state["cuda"])


def _replace_atomically(path: Path, write: Any) -> None:
    """``write(temporary_path)``, then rename it to ``path`` (a kill leaves the old file or the new, never half)."""
    temporary = path.with_name(f".tmp_{os.getpid()}_{path.name}")
    try:
        write(temporary)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


class ResumableCheckpointCallback(CheckpointCallback):
    """
    SB3's ``CheckpointCallback`` (same files: ``<prefix>_<steps>_steps.zip``,
    ``<prefix>_vecnormalize_<steps>_steps.pkl``), every file written atomically, VecNormalize's statistics saved by
    default, plus ``<prefix>_rng_<steps>_steps.pkl`` (the RNG states). ``keep`` old checkpoints are kept (``None``:
    all).

    :param save_freq: Save every ``save_freq`` calls (vec-env steps: ``save_freq * n_envs`` timesteps).
    :param save_path: The folder.
    :param name_prefix: The files' prefix.
    :param save_vecnormalize: Save VecNormalize's statistics (when the env has them).
    :param save_rng: Save the RNG states.
    :param keep: How many checkpoints to keep (the newest); ``None``: all.
    :param verbose: 0 quiet, 2 a line per checkpoint.
    """

    def __init__(
        self,
        save_freq: int,
        save_path: str,
        name_prefix: str = "rl_model",
        save_vecnormalize: bool = True,
        save_rng: bool = True,
        keep: int | None = None,
        verbose: int = 0,
    ) -> None:
        super().__init__(save_freq, save_path, name_prefix, save_vecnormalize=save_vecnormalize, verbose=verbose)
        if keep is not None and (isinstance(keep, bool) or not isinstance(keep, int) or keep < 1):
            raise ValueError(f"keep={keep!r}: must be a positive integer or None")
        self.save_rng = save_rng
        self.keep = keep

    def _on_step(self) -> bool:
        if self.n_calls % self.save_freq == 0:
            self.save()
        return True

    def save(self) -> Path:
        """Write a checkpoint now. :return: the model zip's path."""
        os.makedirs(self.save_path, exist_ok=True)
        if self.save_rng:
            path = Path(self._checkpoint_path("rng_", extension="pkl"))
            _replace_atomically(path, lambda tmp: tmp.write_bytes(pickle.dumps(rng_state())))
        vec_normalize = self.model.get_vec_normalize_env()
        if self.save_vecnormalize and vec_normalize is not None:
            _replace_atomically(Path(self._checkpoint_path("vecnormalize_", extension="pkl")), vec_normalize.save)
        model_path = Path(self._checkpoint_path(extension="zip"))
        # SB3 appends .zip to a path without it: save to a .zip temporary.
        _replace_atomically(model_path, lambda tmp: self.model.save(tmp.with_suffix(".zip")))
        if self.verbose >= 2:
            print(f"Saving model checkpoint to {model_path}")
        if self.keep is not None:
            for old in checkpoints(self.save_path, self.name_prefix)[self.keep :]:
                old.remove()
        return model_path


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint's files: the model zip, and the VecNormalize statistics and RNG states when saved."""

    path: Path
    num_timesteps: int
    vecnormalize: Path | None
    rng: Path | None

    def load(self, algo: type[Model], env: Any = None, **kwargs: Any) -> Model:
        """
        :param algo: The class that saved it (``MetaRIMPPO``, ...).
        :param env: The env to continue on (wrapped in ``VecNormalize`` if it was).
        :param kwargs: Other arguments of ``algo.load``.
        :return: the model, with the VecNormalize statistics and the RNG states restored (:meth:`restore`).
        """
        model = algo.load(self.path, env=env, **kwargs)
        self.restore(model)
        return model

    def restore(self, model: BaseAlgorithm) -> None:
        """Load the saved VecNormalize statistics into ``model``'s env (if both exist) and restore the RNG states."""
        vec_normalize = model.get_vec_normalize_env()
        if self.vecnormalize is not None and vec_normalize is not None:
            saved = VecNormalize.load(str(self.vecnormalize), vec_normalize.venv)
            vec_normalize.obs_rms, vec_normalize.ret_rms = saved.obs_rms, saved.ret_rms
        if self.rng is not None:
            set_rng_state(pickle.loads(self.rng.read_bytes()))

    def remove(self) -> None:
        for path in (self.path, self.vecnormalize, self.rng):
            if path is not None:
                path.unlink(missing_ok=True)


def checkpoints(folder: str | Path, prefix: str = "rl_model") -> list[Checkpoint]:
    """:return: the checkpoints of ``folder`` written with ``prefix``, newest (most timesteps) first."""
    folder = Path(folder)
    pattern = re.compile(CHECKPOINT_PATTERN.format(prefix=re.escape(prefix)))
    found = []
    for path in folder.glob(f"{prefix}_*_steps.zip") if folder.is_dir() else ():
        match = pattern.fullmatch(path.name)
        if match:
            steps = int(match.group(1))
            vecnormalize = folder / f"{prefix}_vecnormalize_{steps}_steps.pkl"
            rng = folder / f"{prefix}_rng_{steps}_steps.pkl"
            found.append(
                Checkpoint(path, steps, vecnormalize if vecnormalize.is_file() else None, rng if rng.is_file() else None)
            )
    return sorted(found, key=lambda checkpoint: checkpoint.num_timesteps, reverse=True)


def is_readable(path: Path) -> bool:
    """:return: whether ``path`` is a complete model zip (every entry's CRC checks, SB3's ``data`` is there)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.testzip() is None and "data" in archive.namelist()
    except (OSError, zipfile.BadZipFile, zlib.error, EOFError):
        return False


def latest_checkpoint(folder: str | Path, prefix: str = "rl_model") -> Checkpoint | None:
    """
    :param folder: Where :class:`ResumableCheckpointCallback` (or SB3's ``CheckpointCallback``) saved.
    :param prefix: Their prefix.
    :return: the newest checkpoint whose zip is readable (a truncated one, from an older non-atomic writer, is
        skipped), ``None`` if there is none.
    """
    return next((checkpoint for checkpoint in checkpoints(folder, prefix) if is_readable(checkpoint.path)), None)


def continue_learning(model: Model, total_timesteps: int, **learn_kwargs: Any) -> Model:
    """
    Train ``model`` until ``model.num_timesteps`` reaches ``total_timesteps`` (the run's whole budget):
    ``model.learn(total_timesteps - model.num_timesteps, reset_num_timesteps=False, ...)``, so the logs, the
    learning-rate schedules and the checkpoints' step counts continue. Nothing is trained when the budget is spent.

    :param model: A new model, or one loaded from a checkpoint.
    :param total_timesteps: The run's total budget.
    :param learn_kwargs: Other arguments of ``learn`` (``callback``, ``log_interval``, ...).
    :return: ``model``.
    """
    remaining = total_timesteps - model.num_timesteps
    if remaining > 0:
        model.learn(remaining, reset_num_timesteps=False, **learn_kwargs)
    return model

"""
One benchmark run, resumable: train, evaluate deterministically every ``eval_freq`` steps on separate envs,
append each evaluation to ``eval.csv`` and checkpoint right after it.

A run's folder holds:

- ``config.json``: hyperparameters, versions, commit, machine, and each start of the run;
- ``eval.csv``: one row per evaluation, columns :data:`EVAL_COLUMNS`;
- ``progress.csv``: SB3's log of every training iteration (losses, KL, RIM module activity), and
  ``progress_from<steps>.csv`` for each resume;
- while running, ``checkpoint.zip`` (the model with both optimizers) and ``checkpoint_vecnormalize.pkl``;
- when finished, ``done.json`` and ``model.zip``.

Rerunning a finished run does nothing; rerunning an interrupted one loads the last checkpoint, drops the
evaluations made after it and continues to the budget, so at most one evaluation interval of training is lost.
A resumed run is not bit-identical to an uninterrupted one: the environments restart their episodes and the
random streams are re-seeded from the seed and the step count.
"""

import csv
import importlib
import json
import os
import platform
import subprocess
import time
from functools import partial
from importlib import metadata
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch as th
from gymnasium import spaces
from sb3_contrib import RecurrentPPO
from stable_baselines3 import PPO
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.logger import Logger, make_output_format
from stable_baselines3.common.vec_env import VecEnv, VecFrameStack, VecNormalize, sync_envs_normalization

from sb3_metarim.benchmark.spec import HARNESS_KEYS, RunSpec, import_modules
from sb3_metarim.meta_rim_ppo import MetaRIMPPO
from sb3_metarim.variants import RIMPPO, MetaLSTMPPO, MetODSPPO

ALGORITHMS: dict[str, type[BaseAlgorithm]] = {
    "metarim_ppo": MetaRIMPPO,
    "rim_ppo": RIMPPO,
    "metalstm_ppo": MetaLSTMPPO,
    "metods_ppo": MetODSPPO,
    "ppo_lstm": RecurrentPPO,
    "ppo": PPO,
}
EVAL_COLUMNS = ("timesteps", "return_mean", "return_std", "success_rate", "episode_length", "episodes", "time_s")
EVAL_SEED_OFFSET = 10_000
DONE_FILE = "done.json"


def run(spec: RunSpec, root: Path, device: str = "cpu", verbose: int = 0) -> str:
    """
    Train and evaluate one run to its budget, resuming from its checkpoint if it has one.

    :param spec: The run.
    :param root: The results folder (the run writes to ``spec.folder(root)``).
    :param device: Torch device.
    :param verbose: Verbosity of the algorithm.
    :return: ``"done"`` if it was finished earlier, else ``"trained"`` or ``"resumed"``.
    """
    folder = spec.folder(root)
    if (folder / DONE_FILE).exists():
        return "done"
    folder.mkdir(parents=True, exist_ok=True)
    import_modules(spec.imports)
    algo_class = _algorithm_class(spec.variant.algo)
    checkpoint = Checkpoint(folder)
    resumed = checkpoint.exists()
    env = make_env(spec, train=True, normalize_stats=checkpoint.normalize_path if resumed else None)
    eval_env = make_env(spec, train=False)
    if resumed:
        model = algo_class.load(checkpoint.model_path, env=env, device=device)
        model.set_random_seed(spec.seed + model.num_timesteps)
    else:
        model = build_model(spec, algo_class, env, device, verbose)
    # The algorithm's own log (losses, KL, module activity) as SB3 writes it, one file per start.
    suffix = f"_from{model.num_timesteps}" if resumed else ""
    model.set_logger(Logger(str(folder), [make_output_format("csv", str(folder), log_suffix=suffix)]))
    log = EvalLog(folder / "eval.csv")
    log.truncate_after(model.num_timesteps)
    _write_config(folder / "config.json", spec, model.num_timesteps)

    callback = EvalCheckpointCallback(eval_env, log, checkpoint, spec.env.eval_freq, spec.env.n_eval_episodes)
    model.learn(spec.env.n_timesteps - model.num_timesteps, callback=callback, reset_num_timesteps=False)
    model.save(folder / "model.zip")
    with open(folder / DONE_FILE, "w") as file:
        json.dump({"timesteps": model.num_timesteps, "evaluations": len(log.rows())}, file)
    checkpoint.remove()
    env.close()
    eval_env.close()
    return "resumed" if resumed else "trained"


def build_model(spec: RunSpec, algo_class: type[BaseAlgorithm], env: VecEnv, device: str, verbose: int) -> BaseAlgorithm:
    """:return: a new model of the run's algorithm with its hyperparameters (harness keys removed)."""
    kwargs = {key: value for key, value in spec.hyperparams.items() if key not in HARNESS_KEYS}
    if "policy_kwargs" in kwargs:
        kwargs["policy_kwargs"] = resolve_classes(kwargs["policy_kwargs"])
    return algo_class(spec.variant.policy, env, seed=spec.seed, device=device, verbose=verbose, **kwargs)


def make_env(spec: RunSpec, train: bool, normalize_stats: Path | None = None) -> VecEnv:
    """
    The run's vectorized env: ``n_envs`` Monitor-wrapped copies for training, ``n_eval_envs`` seeded apart for
    evaluation; frame stacking (observations flattened to a Box first) and ``VecNormalize`` when asked. The
    evaluation env's ``VecNormalize`` does not update its statistics and leaves rewards raw.

    :param spec: The run.
    :param train: Training env (else evaluation env).
    :param normalize_stats: ``VecNormalize`` statistics to load (a checkpoint's), if any.
    """
    hyperparams = spec.hyperparams
    frame_stack = hyperparams.get("frame_stack")
    wrappers = env_wrappers(hyperparams.get("env_wrapper"))
    observation_space = wrap(gym.make(spec.env.env_id, **spec.env.env_kwargs), wrappers).observation_space
    if frame_stack and not isinstance(observation_space, spaces.Box):
        wrappers = [*wrappers, (gym.wrappers.FlattenObservation, {})]
    env = make_vec_env(
        spec.env.env_id,
        n_envs=hyperparams.get("n_envs", 1) if train else spec.env.n_eval_envs,
        seed=spec.seed if train else spec.seed + EVAL_SEED_OFFSET,
        env_kwargs=spec.env.env_kwargs,
        wrapper_class=partial(wrap, wrappers=wrappers) if wrappers else None,
    )
    if frame_stack:
        env = VecFrameStack(env, frame_stack)
    if not hyperparams.get("normalize", False):
        return env
    if normalize_stats is not None:
        env = VecNormalize.load(str(normalize_stats), env)
        env.training = train
        return env
    return VecNormalize(env, gamma=hyperparams.get("gamma", 0.99), training=train, norm_reward=train)


def env_wrappers(entry: Any) -> list[tuple[type[gym.Wrapper], dict[str, Any]]]:
    """
    :param entry: The ``env_wrapper`` hyperparameter (rl-zoo3's format): ``None``, a class path, or a list of class
        paths or ``{class path: kwargs}`` mappings, innermost first.
    :return: the wrapper classes with their keyword arguments.
    """
    if entry is None:
        return []
    wrappers = []
    for item in entry if isinstance(entry, list) else [entry]:
        path, kwargs = next(iter(item.items())) if isinstance(item, dict) and len(item) == 1 else (item, {})
        if not isinstance(path, str) or "." not in path:
            raise ValueError(f"env_wrapper={entry!r}: each item must be a class path or {{class path: kwargs}}, not {item!r}")
        module, name = path.rsplit(".", 1)
        wrappers.append((getattr(importlib.import_module(module), name), dict(kwargs or {})))
    return wrappers


def wrap(env: gym.Env, wrappers: list[tuple[type[gym.Wrapper], dict[str, Any]]]) -> gym.Env:
    """:return: ``env`` inside ``wrappers`` (innermost first)."""
    for wrapper, kwargs in wrappers:
        env = wrapper(env, **kwargs)
    return env


def evaluate(model: BaseAlgorithm, eval_env: VecEnv, n_episodes: int) -> dict[str, float]:
    """
    :return: the deterministic policy's mean and std return, success rate (NaN where the env reports no
        ``is_success``), mean episode length and episode count over ``n_episodes`` episodes.
    """
    training_env = model.get_env()
    if isinstance(eval_env, VecNormalize) and isinstance(training_env, VecNormalize):
        sync_envs_normalization(training_env, eval_env)
    successes: list[float] = []

    def record_success(locals_: dict[str, Any], _globals: dict[str, Any]) -> None:
        env_index = locals_["i"]
        counted = locals_["episode_counts"][env_index] < locals_["episode_count_targets"][env_index]
        if locals_["done"] and counted and "is_success" in locals_["info"]:
            successes.append(float(locals_["info"]["is_success"]))

    returns, lengths = evaluate_policy(
        model, eval_env, n_eval_episodes=n_episodes, deterministic=True, return_episode_rewards=True, callback=record_success
    )
    return {
        "return_mean": float(np.mean(returns)),
        "return_std": float(np.std(returns)),
        "success_rate": float(np.mean(successes)) if successes else float("nan"),
        "episode_length": float(np.mean(lengths)),
        "episodes": len(returns),
    }


class EvalCheckpointCallback(BaseCallback):
    """
    Evaluates the untrained policy, then after each training phase once ``eval_freq`` more steps have passed,
    and at the end; each evaluation is appended to the log and followed by a checkpoint. Evaluating when the next
    rollout starts means every counted step has been trained on, so a checkpoint loses no collected data.

    :param eval_env: Evaluation env.
    :param log: Where rows go.
    :param checkpoint: Where checkpoints go.
    :param eval_freq: Steps between evaluations.
    :param n_eval_episodes: Episodes per evaluation.
    """

    def __init__(self, eval_env: VecEnv, log: "EvalLog", checkpoint: "Checkpoint", eval_freq: int, n_eval_episodes: int):
        super().__init__()
        self.eval_env = eval_env
        self.log = log
        self.checkpoint = checkpoint
        self.eval_freq = eval_freq
        self.n_eval_episodes = n_eval_episodes
        self.elapsed_before = 0.0
        self.started = 0.0

    def _on_training_start(self) -> None:
        self.started = time.perf_counter()
        rows = self.log.rows()
        self.elapsed_before = float(rows[-1]["time_s"]) if rows else 0.0
        if not rows:
            self._evaluate_and_checkpoint()

    def _on_rollout_start(self) -> None:
        last = self.log.last_timesteps()
        if last is None or self.model.num_timesteps >= (last // self.eval_freq + 1) * self.eval_freq:
            self._evaluate_and_checkpoint()

    def _on_step(self) -> bool:
        return True

    def _on_training_end(self) -> None:
        if self.log.last_timesteps() != self.model.num_timesteps:
            self._evaluate_and_checkpoint()

    def _evaluate_and_checkpoint(self) -> None:
        row = evaluate(self.model, self.eval_env, self.n_eval_episodes)
        elapsed = self.elapsed_before + time.perf_counter() - self.started
        self.log.append({"timesteps": self.model.num_timesteps, **row, "time_s": round(elapsed, 2)})
        self.checkpoint.save(self.model)


class EvalLog:
    """
    ``eval.csv``: one row per evaluation, appended and flushed to disk at once.

    :param path: The CSV file.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def rows(self) -> list[dict[str, str]]:
        if not self.path.exists():
            return []
        with open(self.path, newline="") as file:
            return list(csv.DictReader(file))

    def last_timesteps(self) -> int | None:
        rows = self.rows()
        return int(rows[-1]["timesteps"]) if rows else None

    def append(self, row: dict[str, Any]) -> None:
        new = not self.path.exists()
        with open(self.path, "a", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=EVAL_COLUMNS)
            if new:
                writer.writeheader()
            writer.writerow(row)
            file.flush()
            os.fsync(file.fileno())

    def truncate_after(self, timesteps: int) -> None:
        """Drop the rows of evaluations made after ``timesteps`` (after the checkpoint a run resumes from)."""
        rows = self.rows()
        kept = [row for row in rows if int(row["timesteps"]) <= timesteps]
        if len(kept) == len(rows):
            return
        temporary = self.path.with_suffix(".tmp")
        with open(temporary, "w", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=EVAL_COLUMNS)
            writer.writeheader()
            writer.writerows(kept)
        os.replace(temporary, self.path)


class Checkpoint:
    """
    A run's checkpoint: the model (both optimizers included) and, with ``VecNormalize``, its statistics. Each
    file is written aside and moved into place, the model last, so a kill leaves the previous checkpoint whole.

    :param folder: The run's folder.
    """

    def __init__(self, folder: Path) -> None:
        self.model_path = folder / "checkpoint.zip"
        self.normalize_path = folder / "checkpoint_vecnormalize.pkl"

    def exists(self) -> bool:
        return self.model_path.exists()

    def save(self, model: BaseAlgorithm) -> None:
        env = model.get_env()
        if isinstance(env, VecNormalize):
            env.save(str(self.normalize_path.with_suffix(".tmp")))
            os.replace(self.normalize_path.with_suffix(".tmp"), self.normalize_path)
        temporary = self.model_path.with_name("checkpoint.tmp.zip")
        model.save(temporary)
        os.replace(temporary, self.model_path)

    def remove(self) -> None:
        for path in (self.model_path, self.normalize_path):
            path.unlink(missing_ok=True)


def resolve_classes(policy_kwargs: dict[str, Any]) -> dict[str, Any]:
    """:return: ``policy_kwargs`` with ``*_class``/``*_fn`` values given as import paths (``torch.nn.ReLU``) imported."""
    resolved = dict(policy_kwargs)
    for key, value in policy_kwargs.items():
        if key.endswith(("_class", "_fn")) and isinstance(value, str) and "." in value:
            module, name = value.rsplit(".", 1)
            resolved[key] = getattr(importlib.import_module(module), name)
    return resolved


def _algorithm_class(algo: str) -> type[BaseAlgorithm]:
    if algo not in ALGORITHMS:
        raise ValueError(f"algo={algo!r}: unknown; allowed: {sorted(ALGORITHMS)}")
    return ALGORITHMS[algo]


def _write_config(path: Path, spec: RunSpec, start_timesteps: int) -> None:
    previous = json.loads(path.read_text()) if path.exists() else {}
    starts = [*previous.get("starts", []), {"timesteps": start_timesteps, "at": time.strftime("%Y-%m-%dT%H:%M:%S")}]
    config = {
        "env_id": spec.env.env_id,
        "env_kwargs": spec.env.env_kwargs,
        "variant": spec.variant.name,
        "algo": spec.variant.algo,
        "policy": spec.variant.policy,
        "seed": spec.seed,
        "n_timesteps": spec.env.n_timesteps,
        "eval_freq": spec.env.eval_freq,
        "n_eval_episodes": spec.env.n_eval_episodes,
        "hyperparams": spec.hyperparams,
        "starts": starts,
        **environment_facts(),
    }
    path.write_text(json.dumps(config, indent=2, default=repr))


def environment_facts() -> dict[str, Any]:
    """:return: versions of the libraries that decide results, the git commit and the machine."""
    versions = {}
    for package in ("torch", "stable-baselines3", "sb3-contrib", "gymnasium", "numpy", "sb3-metarim", "popgym", "minigrid"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return {
        "versions": versions,
        "commit": git_commit(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, torch threads {th.get_num_threads()}, {platform.platform()}",
        "python": platform.python_version(),
    }


def git_commit() -> str:
    """:return: the commit of the checkout this package runs from (``+dirty`` if modified), or ``"unknown"``."""
    here = Path(__file__).parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=here, capture_output=True, text=True, check=True
        ).stdout.strip()
        status = ["git", "status", "--porcelain", "--untracked-files=no"]
        dirty = subprocess.run(status, cwd=here, capture_output=True, text=True)
        return commit + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"

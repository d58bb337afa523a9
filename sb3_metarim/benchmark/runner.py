"""
One benchmark run, resumable: train, evaluate deterministically every ``eval_freq`` steps on separate envs,
append each evaluation to ``eval.csv`` and checkpoint right after it.

A run's folder holds:

- ``config.json``: hyperparameters, versions, commit, machine, and each start of the run;
- ``eval.csv``: one row per evaluation, columns :data:`EVAL_COLUMNS`;
- with ``transfer_envs``, ``transfer.csv``: at each evaluation one row per transfer level, columns
  :data:`TRANSFER_COLUMNS` (the model evaluated without training on that level);
- ``progress.csv``: SB3's log of every training iteration (losses, KL, RIM module activity), and
  ``progress_from<steps>.csv`` for each resume;
- while running, ``checkpoint.zip`` (the model with both optimizers) and ``checkpoint_vecnormalize.pkl``;
- when finished, ``done.json`` and ``model.zip``.

A variant with ``init_from`` starts from that finished run's ``model.zip`` (weights and both optimizers); while that
run is not finished this one waits (:func:`run` returns ``"waiting"`` and writes nothing).

Rerunning a finished run does nothing (but evaluate a missing transfer from its ``model.zip``); rerunning an
interrupted one loads the last checkpoint, drops the evaluations made after it and continues to the budget, so at
most one evaluation interval of training is lost.
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
import traceback
import zipfile
from dataclasses import replace
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
from sb3_metarim.meta_rim_ppo.variants import ALGORITHMS as PACKAGE_ALGORITHMS

# A suite's `algo`: the package's algorithms and the two baselines, by their rl-zoo3 names.
ALGORITHMS: dict[str, type[BaseAlgorithm]] = {**PACKAGE_ALGORITHMS, "ppo_lstm": RecurrentPPO, "ppo": PPO}
EVAL_COLUMNS = ("timesteps", "return_mean", "return_std", "success_rate", "episode_length", "episodes", "time_s")
TRANSFER_COLUMNS = ("timesteps", "level", "env_id", "return_mean", "return_std", "success_rate", "episode_length", "episodes")
EVAL_SEED_OFFSET = 10_000
TRANSFER_SEED_OFFSET = 20_000
DONE_FILE = "done.json"
MODEL_FILE = "model.zip"
TRANSFER_FILE = "transfer.csv"


def run(spec: RunSpec, root: Path, device: str = "cpu", verbose: int = 0, until: int | None = None) -> str:
    """
    Train and evaluate one run to its budget, resuming from its checkpoint if it has one.

    :param spec: The run.
    :param root: The results folder (the run writes to ``spec.folder(root)``).
    :param device: Torch device.
    :param verbose: Verbosity of the algorithm.
    :param until: Stop once this many steps are trained (at the end of that rollout, evaluated and checkpointed) if
        the budget is larger: the run stays started, and resumes to its budget when run without ``until``. ``None``:
        to the budget.
    :return: ``"done"`` if it was finished earlier, ``"transfer"`` if it was but its transfer evaluation was missing
        (now written), ``"waiting"`` if the run it fine-tunes (``init_from``) is not finished, ``"stopped"`` if it
        stopped at ``until`` (now or earlier), else ``"trained"``, ``"fine-tuned"`` or ``"resumed"``.
    """
    folder = spec.folder(root)
    if (folder / DONE_FILE).exists():
        if spec.env.transfer_envs and not Transfer(spec, folder).complete_at(_done_timesteps(folder)):
            import_modules(spec.imports)
            _transfer_finished_run(spec, folder, device)
            return "transfer"
        return "done"
    checkpoint = Checkpoint(folder)
    resumed = checkpoint.exists()
    target = spec.env.n_timesteps if until is None else min(until, spec.env.n_timesteps)
    if resumed and target < spec.env.n_timesteps and checkpoint.timesteps() >= target:
        return "stopped"
    init_folder = spec.init_folder(root)
    if not resumed and init_folder is not None:
        if not (init_folder / DONE_FILE).exists():
            return "waiting"
        if not (init_folder / MODEL_FILE).exists():
            # Models are not committed (git ignores *.zip): a clone has the finished run's results, not its model.
            raise FileNotFoundError(
                f"init_from={spec.variant.init_from!r}: {init_folder} is finished ({DONE_FILE}) but its {MODEL_FILE} "
                "is not here (models stay on the machine that trained them); copy it there, or retrain that run into "
                "another --out and copy its model"
            )
    if init_folder is not None and spec.hyperparams.get("normalize", False):
        raise ValueError(f"{spec.describe()}: init_from with normalize: a finished run keeps no VecNormalize statistics")
    folder.mkdir(parents=True, exist_ok=True)
    import_modules(spec.imports)
    algo_class = _algorithm_class(spec.variant.algo)
    env = make_env(spec, train=True, normalize_stats=checkpoint.normalize_path if resumed else None)
    eval_env = make_env(spec, train=False)
    if resumed:
        model = algo_class.load(checkpoint.model_path, env=env, device=device)
        model.set_random_seed(spec.seed + model.num_timesteps)
    elif init_folder is not None:
        model = load_pretrained(spec, algo_class, init_folder / MODEL_FILE, env, device, verbose)
    else:
        model = build_model(spec, algo_class, env, device, verbose)
    # The algorithm's own log (losses, KL, module activity) as SB3 writes it, one file per start.
    suffix = f"_from{model.num_timesteps}" if resumed else ""
    model.set_logger(Logger(str(folder), [make_output_format("csv", str(folder), log_suffix=suffix)]))
    log = EvalLog(folder / "eval.csv")
    log.truncate_after(model.num_timesteps)
    transfer = Transfer(spec, folder) if spec.env.transfer_envs else None
    if transfer is not None:
        transfer.log.truncate_after(model.num_timesteps)
    _write_config(folder / "config.json", spec, model.num_timesteps, init_folder)

    callback = EvalCheckpointCallback(eval_env, log, checkpoint, spec.env.eval_freq, spec.env.n_eval_episodes, transfer)
    model.learn(target - model.num_timesteps, callback=callback, reset_num_timesteps=False)
    if model.num_timesteps < spec.env.n_timesteps:
        # Stopped at `until`: the callback has evaluated and checkpointed the last step.
        _close(env, eval_env, transfer)
        return "stopped"
    model.save(folder / MODEL_FILE)
    with open(folder / DONE_FILE, "w") as file:
        json.dump({"timesteps": model.num_timesteps, "evaluations": len(log.rows())}, file)
    checkpoint.remove()
    _close(env, eval_env, transfer)
    if resumed:
        return "resumed"
    return "trained" if init_folder is None else "fine-tuned"


def _close(env: VecEnv, eval_env: VecEnv, transfer: "Transfer | None") -> None:
    env.close()
    eval_env.close()
    if transfer is not None:
        transfer.close()


def run_safely(
    spec: RunSpec, runs_root: Path, device: str, verbose: int, num_threads: int | None = None, until: int | None = None
) -> tuple[str, str]:
    """
    :func:`run`, its failure caught: the grid's runners call it (in a process of their pool, or as a Ray task).

    :param num_threads: Torch threads to set first (``None``: leave them).
    :param until: :func:`run`'s.
    :return: the run's state (:func:`run`'s, or ``"failed"``) and the traceback of its failure (kept in its folder's
        ``error.txt``), else an empty string.
    """
    if num_threads is not None:
        set_threads(num_threads)
    try:
        return run(spec, runs_root, device=device, verbose=verbose, until=until), ""
    except Exception:
        error = traceback.format_exc()
        folder = spec.folder(runs_root)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "error.txt").write_text(error)
        return "failed", error


def set_threads(num_threads: int) -> None:
    """Torch threads (and OpenMP's, for what starts later) of this process."""
    os.environ["OMP_NUM_THREADS"] = str(num_threads)
    th.set_num_threads(num_threads)


def run_state(spec: RunSpec, root: Path) -> str:
    """
    :return: ``"done"``; ``"transfer"`` (finished, its transfer evaluation missing); ``"waiting"`` (not started,
        the run it fine-tunes not finished); ``"started"`` (has a checkpoint); or ``"to do"``.
    """
    folder = spec.folder(root)
    if (folder / DONE_FILE).exists():
        if spec.env.transfer_envs and not Transfer(spec, folder).complete_at(_done_timesteps(folder)):
            return "transfer"
        return "done"
    if Checkpoint(folder).exists():
        return "started"
    init_folder = spec.init_folder(root)
    if init_folder is not None and not (init_folder / DONE_FILE).exists():
        return "waiting"
    return "to do"


def load_pretrained(
    spec: RunSpec, algo_class: type[BaseAlgorithm], path: Path, env: VecEnv, device: str, verbose: int
) -> BaseAlgorithm:
    """
    :return: the model saved at ``path`` (weights, both optimizers' states, its ``policy_kwargs``) on ``env``, with
        the run's other hyperparameters (harness keys and ``policy_kwargs`` aside) and seed, its step count reset to 0.
    """
    overrides = {key: value for key, value in spec.hyperparams.items() if key not in (*HARNESS_KEYS, "policy_kwargs")}
    model = algo_class.load(path, env=env, device=device, verbose=verbose, **overrides)
    model.num_timesteps = 0
    model.set_random_seed(spec.seed)
    return model


def build_model(spec: RunSpec, algo_class: type[BaseAlgorithm], env: VecEnv, device: str, verbose: int) -> BaseAlgorithm:
    """:return: a new model of the run's algorithm with its hyperparameters (harness keys removed)."""
    kwargs = {key: value for key, value in spec.hyperparams.items() if key not in HARNESS_KEYS}
    if "policy_kwargs" in kwargs:
        kwargs["policy_kwargs"] = resolve_classes(kwargs["policy_kwargs"])
    return algo_class(spec.variant.policy, env, seed=spec.seed, device=device, verbose=verbose, **kwargs)


def make_env(spec: RunSpec, train: bool, normalize_stats: Path | None = None, seed_offset: int = EVAL_SEED_OFFSET) -> VecEnv:
    """
    The run's vectorized env: ``n_envs`` Monitor-wrapped copies for training, ``n_eval_envs`` seeded apart for
    evaluation; frame stacking (observations flattened to a Box first) and ``VecNormalize`` when asked. The
    evaluation env's ``VecNormalize`` does not update its statistics and leaves rewards raw.

    :param spec: The run.
    :param train: Training env (else evaluation env).
    :param normalize_stats: ``VecNormalize`` statistics to load (a checkpoint's), if any.
    :param seed_offset: Added to the run's seed for an evaluation env.
    """
    hyperparams = spec.hyperparams
    frame_stack = hyperparams.get("frame_stack")
    wrappers = env_wrappers(hyperparams.get("env_wrapper"))
    probe = gym.make(spec.env.env_id, **spec.env.env_kwargs)
    wrappers = with_success_info(probe, wrappers)
    observation_space = wrap(probe, wrappers).observation_space
    if frame_stack and not isinstance(observation_space, spaces.Box):
        wrappers = [*wrappers, (gym.wrappers.FlattenObservation, {})]
    env = make_vec_env(
        spec.env.env_id,
        n_envs=hyperparams.get("n_envs", 1) if train else spec.env.n_eval_envs,
        seed=spec.seed if train else spec.seed + seed_offset,
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


Wrappers = list[tuple[type[gym.Wrapper], dict[str, Any]]]


def with_success_info(env: gym.Env, wrappers: Wrappers) -> Wrappers:
    """
    :return: ``wrappers``, with :class:`~sb3_metarim.envs.minigrid.SuccessInfoWrapper` added (outermost) when
        ``env`` is a MiniGrid/BabyAI env and it is not there: MiniGrid reports no ``is_success``, its success is a
        positive reward at termination.
    """
    if not type(env.unwrapped).__module__.startswith("minigrid."):
        return wrappers
    from sb3_metarim.envs.minigrid import SuccessInfoWrapper

    if any(issubclass(wrapper, SuccessInfoWrapper) for wrapper, _ in wrappers):
        return wrappers
    return [*wrappers, (SuccessInfoWrapper, {})]


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
    :param transfer: Zero-shot transfer levels evaluated after each evaluation, before the checkpoint.
    """

    def __init__(
        self,
        eval_env: VecEnv,
        log: "EvalLog",
        checkpoint: "Checkpoint",
        eval_freq: int,
        n_eval_episodes: int,
        transfer: "Transfer | None" = None,
    ):
        super().__init__()
        self.transfer = transfer
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
        if self.transfer is not None:
            self.transfer.evaluate(self.model)
        self.checkpoint.save(self.model)


class EvalLog:
    """
    ``eval.csv``: one row per evaluation, appended and flushed to disk at once.

    :param path: The CSV file.
    :param columns: Its columns (``timesteps`` among them).
    """

    def __init__(self, path: Path, columns: tuple[str, ...] = EVAL_COLUMNS) -> None:
        self.path = path
        self.columns = columns

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
            writer = csv.DictWriter(file, fieldnames=self.columns)
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
            writer = csv.DictWriter(file, fieldnames=self.columns)
            writer.writeheader()
            writer.writerows(kept)
        os.replace(temporary, self.path)


class Transfer:
    """
    A run's zero-shot transfer evaluation (``transfer_envs``): the model evaluated without training on each level,
    ``transfer_episodes`` deterministic episodes on ``n_eval_envs`` envs seeded apart (:data:`TRANSFER_SEED_OFFSET`),
    one ``transfer.csv`` row per level and evaluation. The envs are built when first needed.

    :param spec: The run.
    :param folder: The run's folder.
    """

    def __init__(self, spec: RunSpec, folder: Path) -> None:
        self.spec = spec
        self.log = EvalLog(folder / TRANSFER_FILE, TRANSFER_COLUMNS)
        self.envs: dict[str, VecEnv] = {}

    def level_spec(self, level: str) -> RunSpec:
        """:return: the run with its env replaced by the level's env (same hyperparameters and wrappers)."""
        entry = self.spec.env.transfer_envs[level]
        env = replace(self.spec.env, env_id=entry["env_id"], env_kwargs=entry["env_kwargs"], transfer_envs={})
        return replace(self.spec, env=env)

    def evaluate(self, model: BaseAlgorithm) -> None:
        """Evaluate ``model`` on every level and append the rows at its step count."""
        for level, entry in self.spec.env.transfer_envs.items():
            if level not in self.envs:
                self.envs[level] = make_env(self.level_spec(level), train=False, seed_offset=TRANSFER_SEED_OFFSET)
            row = evaluate(model, self.envs[level], self.spec.env.transfer_episodes)
            self.log.append({"timesteps": model.num_timesteps, "level": level, "env_id": entry["env_id"], **row})

    def complete_at(self, timesteps: int) -> bool:
        """:return: whether every level has a row at ``timesteps``."""
        done = {row["level"] for row in self.log.rows() if int(row["timesteps"]) == timesteps}
        return done >= set(self.spec.env.transfer_envs)

    def close(self) -> None:
        for env in self.envs.values():
            env.close()


def _done_timesteps(folder: Path) -> int:
    return int(json.loads((folder / DONE_FILE).read_text())["timesteps"])


def _transfer_finished_run(spec: RunSpec, folder: Path, device: str) -> None:
    """Evaluate the transfer of a run finished without it (``transfer_envs`` added later), from its ``model.zip``."""
    if spec.hyperparams.get("normalize", False):
        raise ValueError(
            f"{spec.describe()}: transfer_envs added after the run finished, with normalize: its VecNormalize "
            "statistics are gone; rerun it"
        )
    timesteps = _done_timesteps(folder)
    transfer = Transfer(spec, folder)
    transfer.log.truncate_after(timesteps - 1)  # a partial evaluation at the last step
    model = _algorithm_class(spec.variant.algo).load(folder / MODEL_FILE, device=device)
    if model.num_timesteps != timesteps:
        raise ValueError(f"{folder}: model.zip is at {model.num_timesteps} steps, done.json says {timesteps}")
    transfer.evaluate(model)
    transfer.close()


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

    def timesteps(self) -> int:
        """:return: the step count the checkpoint holds, read from its zip's ``data`` without loading the model."""
        with zipfile.ZipFile(self.model_path) as archive:
            return int(json.loads(archive.read("data"))["num_timesteps"])

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


def _write_config(path: Path, spec: RunSpec, start_timesteps: int, init_folder: Path | None = None) -> None:
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
        "transfer_envs": spec.env.transfer_envs,
        "init_from": None if init_folder is None else str(init_folder),
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

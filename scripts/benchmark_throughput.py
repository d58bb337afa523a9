"""
Training throughput of MetaRIMPPO against its baselines: steps per second, split into collection and training.

Algorithms: ``metarim`` (MetaRIMPPO, default fast/slow settings), ``modular`` (MetaRIMPPO, ``meta=False``), ``lstm``
(RecurrentPPO with an LSTM as wide as the RIM, ``num_units * unit_size``) and ``ppo`` (feed-forward PPO, the ceiling),
on MiniGrid-Empty-5x5-v0 (``ImgObsWrapper``: a 7x7x3 Box) and CartPole-v1, with the same PPO settings and one torch
thread. Per env, each algorithm is built and warmed up (one rollout), then the repeats alternate the algorithms
(A B C D A B C D ...) in this one process, each a ``learn`` of ``--rollouts`` rollouts. A callback times collection
(rollout start to rollout end, returns/advantages included) and training (rollout end to the next rollout start or
the end of ``learn``: ``train()`` and logging). Ratios to lstm are medians of per-round ratios. Keep ``--rollouts``
even (metarim's slow_interval is 2) so that every metarim repeat holds as many slow phases. The scaling section
compares metarim and lstm on MiniGrid while varying n_envs, n_steps (the sequence length) and num_units.

Writes throughput.csv and scaling.csv (raw, one row per run), throughput.md and throughput.png under ``--out``.
Run: ``python scripts/benchmark_throughput.py`` (full: long) or ``python scripts/benchmark_throughput.py --quick
--out /tmp/bench_quick`` (smoke test).

``--case gotolocal`` measures the paper's benchmark instead: BabyAI-GoToLocal-v0 with the mission (the zoo's
``MissionTokenWrapper`` and ``GridIdsWrapper``, ``MiniGridFeaturesExtractor``) and the zoo's settings (16 envs x 128
steps, batch 256, 4 epochs, lr 1e-3; MetaRIMPPO with the package's default core as the zoo config trains it, 6 modules
of 16, 4 active, beside a dense LSTM of 96, ``slow_max_kl=0.05``, ``fast_span`` 20; RecurrentPPO with an LSTM of 192,
as wide), metarim against lstm alternating as above, then the ``--sweep``s, each varying one setting:
``n_envs`` (16 / 64 / 256; the batch grows with it, 8 minibatches per epoch as at 16 envs), ``vec_env`` (DummyVecEnv
against SubprocVecEnv, one process per env), ``fast_span`` (10 / 20 / 40; lstm trains on whole rollouts whatever it
is), ``num_units`` (4 / 6 / 8; modules of 16 beside a dense LSTM as wide as they are, lstm as wide as both) and
``core`` (``paper``: the paper's core, 6 modules of 32 without a dense LSTM, no ``slow_max_kl``, which the zoo config
trained until 2026-11-28 and the README's 2026-11-27 tables measure; lstm 192 in both). ``--device cuda`` runs the
models on the GPU. Writes
gotolocal_<device>.csv (one row per timed run), gotolocal_<device>.md and gotolocal_<device>.png; ``--compare
A.csv B.csv`` writes devices.md, the steps/s of the runs of two such files side by side (e.g. GPU against CPU).

``--case defaults`` measures what a user gets: ``MetaRIMPPO("MlpPolicy", env)`` with today's defaults, the defaults
before 2026-11-28's round 21 (the paper's core, no ``slow_max_kl``) and RecurrentPPO with an LSTM of 192, alternating
as above, on two of the memory suite's tasks (position-only CartPole and RepeatFirst from POPGym) with its settings.
Writes defaults.csv, defaults.md and defaults.png. The classic case measures the paper's core (6 modules of 32), as
does gotolocal's setting ``core=paper``.

``--case budget`` says where the time of a GoToLocal rollout goes (the zoo's setting, metarim and lstm, ``--rollouts``
after a warm-up), from timers around the env's steps, the features extractor's forward and backward (the backward
timed from the moment the gradient reaches the features: autograd runs it after everything that reads them), the
recurrent cores' forward, every ``backward()``, the optimizers' steps, collection and training, and what the cores'
share would have to become for metarim to reach twice lstm's steps/s. Writes budget.csv and budget.md.
"""

import argparse
import os
import shlex
import sys
import time
from collections.abc import Callable
from datetime import datetime
from functools import partial
from pathlib import Path

import gymnasium as gym
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import minigrid  # noqa: F401  (registers the MiniGrid environments)
import numpy as np
import pandas as pd
import popgym  # noqa: F401  (registers the POPGym environments)
import torch as th
from minigrid.wrappers import ImgObsWrapper
from sb3_contrib import RecurrentPPO
from stable_baselines3 import PPO
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

from sb3_metarim import MetaRIMPPO, policies
from sb3_metarim.envs.minigrid import GridIdsWrapper, MissionTokenWrapper
from sb3_metarim.rim import RIM
from sb3_metarim.torch_layers import MiniGridFeaturesExtractor

try:
    import psutil
except ImportError:  # memory is then reported as NaN
    psutil = None

ALGOS = ("metarim", "modular", "lstm", "ppo")
ENVS = ("MiniGrid-Empty-5x5-v0", "CartPole-v1")
UNIT_SIZE = 32
# The paper's core (num_units modules of 32, no dense LSTM beside them; the package's default since 2026-11-28 is
# 16-wide modules beside a dense LSTM of 96) and its slow phases (never rejected): what issue 10's numbers measure.
PAPER_CORE = dict(unit_size=UNIT_SIZE, dense_size=0)
GOTOLOCAL = "BabyAI-GoToLocal-v0"
# The zoo's GoToLocal settings (sb3_metarim/zoo_configs/metarim_ppo.yml), shared by both algorithms.
GOTOLOCAL_PPO = dict(n_steps=128, n_epochs=4, learning_rate=1e-3, gamma=0.99, gae_lambda=0.95, ent_coef=0.01)
GOTOLOCAL_META = dict(fast_span=20, slow_interval=2, slow_n_epochs=1, slow_learning_rate=1e-4)
# The memory suite's settings (sb3_metarim/benchmark/suites/memory.yml) and two of its tasks: --case defaults.
MEMORY_ENVS = ("popgym-RepeatFirstEasy-v0", "popgym-PositionOnlyCartPoleEasy-v0")
MEMORY_N_ENVS = 8
MEMORY_PPO = dict(n_steps=128, batch_size=256, n_epochs=4, learning_rate=1e-3, ent_coef=0.01)
# The summary's columns as the markdown tables name them.
SUMMARY_COLUMNS = dict(
    steps_per_s="steps/s (median)",
    min="min",
    max="max",
    collect_steps_per_s="collection steps/s",
    train_s_per_rollout="training s/rollout",
    memory_mb="memory MB (RSS growth)",
    ratio_to_lstm="x lstm (median of per-round ratios)",
    ratio_min="x lstm min",
    ratio_max="x lstm max",
)
GOTOLOCAL_SETTING = dict(n_envs=16, vec_env="dummy", fast_span=20, num_units=6, core="defaults")
MINIBATCHES_PER_EPOCH = 8  # 16 envs x 128 steps / batch 256
SWEEPS = {
    "n_envs": (16, 64, 256),
    "vec_env": ("dummy", "subproc"),
    "fast_span": (10, 20, 40),
    "num_units": (4, 6, 8),
    "core": ("defaults", "paper"),
}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--n-envs", type=int, default=8)
    parser.add_argument("--n-steps", type=int, default=128, help="rollout length per env (the sequence length)")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--n-epochs", type=int, default=4)
    parser.add_argument("--learning-rate", type=float, default=3e-4)
    parser.add_argument("--num-units", type=int, default=6, help="RIM modules; the LSTM gets num_units * 32 units")
    parser.add_argument("--rollouts", type=int, default=4, help="rollouts per timed learn() call")
    parser.add_argument("--repeats", type=int, default=5, help="alternation rounds per env")
    parser.add_argument("--scaling", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--scaling-repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="smoke test: 1 rollout, 2 repeats, smaller scaling grid")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("benchmarks"))
    parser.add_argument(
        "--case", choices=("classic", "gotolocal", "defaults", "budget"), default="classic", help="see the module docstring"
    )
    parser.add_argument("--sweep", nargs="*", choices=tuple(SWEEPS), default=(), help="gotolocal: settings to vary")
    parser.add_argument("--n-envs-values", type=int, nargs="+", default=SWEEPS["n_envs"], help="gotolocal: n_envs sweep")
    parser.add_argument("--device", default="cpu", help="torch device of the models (gotolocal)")
    parser.add_argument("--torch-threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--compare", type=Path, nargs=2, metavar="CSV", help="write devices.md from two gotolocal CSVs")
    args = parser.parse_args()
    if args.quick:
        args.rollouts, args.repeats, args.scaling_repeats = 1, 2, 1
    if args.case in ("gotolocal", "budget") and args.rollouts % 2:
        parser.error(f"--rollouts={args.rollouts}: must be even with --case {args.case} (metarim's slow_interval is 2)")
    return args


def make_model(args: argparse.Namespace, algo: str, env_id: str, n_envs: int, n_steps: int, num_units: int) -> BaseAlgorithm:
    """One of ALGOS on its own vectorized env, with the PPO settings shared by all algorithms."""
    wrapper = ImgObsWrapper if env_id.startswith("MiniGrid") else None
    env = make_vec_env(env_id, n_envs=n_envs, seed=args.seed, wrapper_class=wrapper)
    common = dict(
        n_steps=n_steps,
        batch_size=args.batch_size,
        n_epochs=args.n_epochs,
        learning_rate=args.learning_rate,
        seed=args.seed,
        device="cpu",
    )
    if algo == "ppo":
        return PPO("MlpPolicy", env, **common)
    if algo == "lstm":
        return RecurrentPPO("MlpLstmPolicy", env, policy_kwargs=dict(lstm_hidden_size=num_units * UNIT_SIZE), **common)
    rim = dict(PAPER_CORE, num_units=num_units, top_k=min(4, num_units - 1))  # the default 4, sparse for N=4 too
    return MetaRIMPPO("MlpPolicy", env, meta=algo == "metarim", policy_kwargs=rim, slow_max_kl=None, **common)


def grid_wrappers(env: gym.Env) -> gym.Env:
    """The zoo's wrappers for MiniGrid/BabyAI as single episodes: the mission as token ids, the grid as ids."""
    return GridIdsWrapper(MissionTokenWrapper(env))


def make_gotolocal_model(
    args: argparse.Namespace, algo: str, n_envs: int, vec_env: str, fast_span: int, num_units: int, core: str
) -> BaseAlgorithm:
    """metarim (``core``: the paper's or the package's defaults) or lstm on GoToLocal with the zoo's settings; the
    batch keeps 8 minibatches per epoch."""
    vec_env_cls = SubprocVecEnv if vec_env == "subproc" else DummyVecEnv
    env = make_vec_env(GOTOLOCAL, n_envs=n_envs, seed=args.seed, wrapper_class=grid_wrappers, vec_env_cls=vec_env_cls)
    batch_size = n_envs * GOTOLOCAL_PPO["n_steps"] // MINIBATCHES_PER_EPOCH
    common = dict(GOTOLOCAL_PPO, batch_size=batch_size, seed=args.seed, device=args.device)
    policy_kwargs = dict(features_extractor_class=MiniGridFeaturesExtractor)
    if algo == "lstm":
        lstm = dict(policy_kwargs, lstm_hidden_size=num_units * UNIT_SIZE)
        return RecurrentPPO("MultiInputLstmPolicy", env, policy_kwargs=lstm, **common)
    rim = dict(policy_kwargs, num_units=num_units, top_k=min(4, num_units - 1))
    meta = GOTOLOCAL_META | dict(fast_span=fast_span)
    if core == "paper":
        rim |= PAPER_CORE
        meta |= dict(slow_max_kl=None)
    else:  # the default split of the width: half to the modules (6 of 16 at 192), half to the dense LSTM
        rim |= dict(lstm_hidden_size=num_units * UNIT_SIZE)
    return MetaRIMPPO("MultiInputPolicy", env, policy_kwargs=rim, **meta, **common)


class RolloutTimer(BaseCallback):
    """Collection = rollout start to rollout end; training = rollout end to the next rollout start (or learn's end)."""

    def __init__(self) -> None:
        super().__init__()
        self.collect_s = self.train_s = self.started = 0.0
        self.ended: float | None = None

    def _on_rollout_start(self) -> None:
        self.started = time.perf_counter()
        if self.ended is not None:
            self.train_s += self.started - self.ended

    def _on_rollout_end(self) -> None:
        self.ended = time.perf_counter()
        self.collect_s += self.ended - self.started

    def _on_training_end(self) -> None:
        self.train_s += time.perf_counter() - self.ended

    def _on_step(self) -> bool:
        return True


def timed_learn(model: BaseAlgorithm, rollouts: int) -> dict[str, float]:
    """Continue training for ``rollouts`` rollouts; return the throughput numbers of this call."""
    steps = rollouts * model.n_envs * model.n_steps
    timer = RolloutTimer()
    start = time.perf_counter()
    model.learn(steps, callback=timer, reset_num_timesteps=False)
    total_s = time.perf_counter() - start
    return dict(
        steps=steps,
        total_s=total_s,
        collect_s=timer.collect_s,
        train_s=timer.train_s,
        steps_per_s=steps / total_s,
        collect_steps_per_s=steps / timer.collect_s,
        train_s_per_rollout=timer.train_s / rollouts,
    )


def rss_mb() -> float:
    return psutil.Process().memory_info().rss / 2**20 if psutil else float("nan")


def measure(builders: dict[str, Callable[[], BaseAlgorithm]], rollouts: int, repeats: int, **labels: object) -> list[dict]:
    """Build and warm up each model (one rollout), then time ``repeats`` rounds alternating the models."""
    models, memory = {}, {}
    for algo, build in builders.items():
        before = rss_mb()
        models[algo] = build()
        models[algo].learn(models[algo].n_envs * models[algo].n_steps)
        memory[algo] = rss_mb() - before
    rows = []
    for round_ in range(repeats):
        for algo, model in models.items():
            rows.append(dict(labels, algo=algo, round=round_, memory_mb=memory[algo], **timed_learn(model, rollouts)))
            print(f"{labels} {algo:8s} round {round_}: {rows[-1]['steps_per_s']:8.0f} steps/s", flush=True)
    for model in models.values():
        model.env.close()  # SubprocVecEnv's worker processes
    return rows


def summarize(runs: pd.DataFrame, key: str) -> pd.DataFrame:
    """Medians and spread per (key, algo), and the median over rounds of each run's ratio to lstm's run."""
    summary = runs.groupby([key, "algo"], sort=False).agg(
        steps_per_s=("steps_per_s", "median"),
        min=("steps_per_s", "min"),
        max=("steps_per_s", "max"),
        collect_steps_per_s=("collect_steps_per_s", "median"),
        train_s_per_rollout=("train_s_per_rollout", "median"),
        memory_mb=("memory_mb", "median"),
    )
    per_round = runs.pivot_table(index=[key, "round"], columns="algo", values="steps_per_s")
    ratios = per_round.div(per_round["lstm"], axis=0).groupby(level=key)
    for column, statistic in (("ratio_to_lstm", "median"), ("ratio_min", "min"), ("ratio_max", "max")):
        summary[column] = ratios.agg(statistic).stack().reindex(summary.index)
    return summary.reset_index()


def cell(value: object) -> str:
    if not isinstance(value, float):
        return str(value)
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.3g}"


def to_markdown(table: pd.DataFrame) -> str:
    """A markdown table (pandas' ``to_markdown`` needs tabulate, which the project does not install)."""
    lines = [list(table.columns), ["---"] * table.shape[1], *([cell(v) for v in row] for row in table.itertuples(index=False))]
    return "\n".join("| " + " | ".join(line) + " |" for line in lines)


def bar_panel(ax: plt.Axes, summary: pd.DataFrame, key: str, title: str) -> None:
    """Grouped bars of median steps/s per algorithm within each ``key`` group, min-max error bars."""
    groups, algos = list(dict.fromkeys(summary[key])), list(dict.fromkeys(summary["algo"]))
    width = 0.8 / len(algos)
    for i, algo in enumerate(algos):
        rows = summary[summary["algo"] == algo].set_index(key).loc[groups]
        errors = [rows["steps_per_s"] - rows["min"], rows["max"] - rows["steps_per_s"]]
        ax.bar(np.arange(len(groups)) + i * width, rows["steps_per_s"], width, yerr=errors, capsize=3, label=algo)
    ax.set_xticks(np.arange(len(groups)) + width * (len(algos) - 1) / 2, groups)
    ax.set(title=title, ylabel="training steps/s (median, min-max)", yscale="log")
    ax.legend()


def run_throughput(args: argparse.Namespace) -> pd.DataFrame:
    """All ALGOS on each env, alternating, with the settings from the command line."""
    rows = []
    for env_id in ENVS:
        builders = {algo: partial(make_model, args, algo, env_id, args.n_envs, args.n_steps, args.num_units) for algo in ALGOS}
        rows += measure(builders, args.rollouts, args.repeats, env=env_id)
    return pd.DataFrame(rows)


def run_scaling(args: argparse.Namespace) -> pd.DataFrame:
    """metarim against lstm on MiniGrid, varying one of n_envs, n_steps, num_units at a time."""
    sweeps = {"n_envs": (1, 8, 32), "n_steps": (32, 128, 512), "num_units": (4, 8, 16)}
    rows = []
    for name, values in sweeps.items():
        for value in values[:2] if args.quick else values:
            setting = dict(n_envs=args.n_envs, n_steps=args.n_steps, num_units=args.num_units) | {name: value}
            builders = {algo: partial(make_model, args, algo, ENVS[0], **setting) for algo in ("metarim", "lstm")}
            rows += measure(builders, args.rollouts, args.scaling_repeats, setting=f"{name}={value}", **setting)
    return pd.DataFrame(rows)


def gotolocal_settings(args: argparse.Namespace) -> list[tuple[str, dict[str, object]]]:
    """The zoo's setting, then each ``--sweep``'s other values, as (label, setting) pairs."""
    settings = [("zoo", GOTOLOCAL_SETTING)]
    for name in args.sweep:
        values = args.n_envs_values if name == "n_envs" else SWEEPS[name]
        settings += [
            (f"{name}={value}", GOTOLOCAL_SETTING | {name: value}) for value in values if value != GOTOLOCAL_SETTING[name]
        ]
    return settings


def machine(device: str) -> str:
    """The device's name and the CPU count, for the tables."""
    gpu = f"{th.cuda.get_device_name(th.device(device))} · " if device.startswith("cuda") else ""
    return f"{gpu}{os.cpu_count()} CPUs · {th.get_num_threads()} torch threads · torch {th.__version__}"


def run_gotolocal(args: argparse.Namespace, command: str) -> None:
    """metarim against lstm on GoToLocal in each setting; writes gotolocal_<device>.csv/.md/.png."""
    rows = []
    name = f"gotolocal_{args.device.replace(':', '')}"
    for label, setting in gotolocal_settings(args):
        builders = {algo: partial(make_gotolocal_model, args, algo, **setting) for algo in ("metarim", "lstm")}
        labels = dict(setting=label, device=args.device, torch_threads=th.get_num_threads(), **setting)
        rows += measure(builders, args.rollouts, args.repeats, **labels)
        pd.DataFrame(rows).to_csv(args.out / f"{name}.csv", index=False)  # after each setting: a cut run keeps these
    runs = pd.DataFrame(rows)
    summary = summarize(runs, "setting")
    fig, ax = plt.subplots(figsize=(10, 5))
    bar_panel(ax, summary, "setting", f"{GOTOLOCAL} on {args.device}")
    fig.tight_layout()
    fig.savefig(args.out / f"{name}.png", dpi=120)
    markdown = (
        f"# Training throughput on {GOTOLOCAL} ({args.device}): MetaRIMPPO (metarim) against RecurrentPPO (lstm)\n\n"
        f"Zoo settings: 16 envs x 128 steps, batch 256 (8 minibatches per epoch; the batch grows with n_envs), 4 epochs, "
        f"lr 1e-3, MiniGridFeaturesExtractor with the mission; metarim the zoo's core, 6 modules of 16, 4 active, beside "
        f"a dense LSTM of 96, slow_max_kl 0.05 (setting core=paper: 6 modules of {UNIT_SIZE}, no dense LSTM, no "
        f"slow_max_kl), fast_span 20, "
        f"slow phase every 2 rollouts; lstm {6 * UNIT_SIZE} units. {args.rollouts} rollouts per timed run, "
        f"{args.repeats} alternating rounds after a one-rollout warm-up.\n\n"
        f"{to_markdown(summary.rename(columns=SUMMARY_COLUMNS))}\n\n"
        f"Command: `{command}` · {datetime.now().isoformat(timespec='seconds')} · {machine(args.device)}\n"
    )
    (args.out / f"{name}.md").write_text(markdown)
    print(markdown)


def make_defaults_model(args: argparse.Namespace, algo: str, env_id: str) -> BaseAlgorithm:
    """``defaults`` (MetaRIMPPO as built without options), ``before`` (the defaults before 2026-11-28's round 21: the
    paper's core of 6 x 32, no ``slow_max_kl``) or ``lstm`` (RecurrentPPO, 192 units) with the memory suite's settings."""
    env = make_vec_env(env_id, n_envs=MEMORY_N_ENVS, seed=args.seed)
    common = dict(MEMORY_PPO, seed=args.seed, device="cpu")
    if algo == "lstm":
        return RecurrentPPO("MlpLstmPolicy", env, policy_kwargs=dict(lstm_hidden_size=6 * UNIT_SIZE), **common)
    if algo == "before":
        return MetaRIMPPO("MlpPolicy", env, policy_kwargs=PAPER_CORE, slow_max_kl=None, **common)
    return MetaRIMPPO("MlpPolicy", env, **common)


def run_defaults(args: argparse.Namespace, command: str) -> None:
    """The defaults against the defaults before and RecurrentPPO on two memory tasks; writes defaults.csv/.md/.png."""
    rows = []
    for env_id in MEMORY_ENVS:
        builders = {algo: partial(make_defaults_model, args, algo, env_id) for algo in ("defaults", "before", "lstm")}
        rows += measure(builders, args.rollouts, args.repeats, env=env_id)
    runs = pd.DataFrame(rows)
    runs.to_csv(args.out / "defaults.csv", index=False)
    summary = summarize(runs, "env")
    fig, ax = plt.subplots(figsize=(8, 5))
    bar_panel(ax, summary, "env", "MetaRIMPPO's defaults on the memory suite's settings")
    fig.tight_layout()
    fig.savefig(args.out / "defaults.png", dpi=120)
    markdown = (
        "# Training throughput of MetaRIMPPO's defaults on the memory suite's settings\n\n"
        f"{MEMORY_N_ENVS} envs x {MEMORY_PPO['n_steps']} steps, batch {MEMORY_PPO['batch_size']}, "
        f'{MEMORY_PPO["n_epochs"]} epochs, lr {MEMORY_PPO["learning_rate"]}; `defaults`: `MetaRIMPPO("MlpPolicy", env)` '
        f"(6 modules of 16 beside a dense LSTM of 96, `slow_max_kl=0.05`), `before`: the defaults before 2026-11-28's "
        f"round 21 (6 modules of {UNIT_SIZE}, no dense LSTM, no `slow_max_kl`), `lstm`: RecurrentPPO with "
        f"{6 * UNIT_SIZE} units. {args.rollouts} rollouts per timed run, {args.repeats} alternating rounds after a "
        f"one-rollout warm-up.\n\n"
        f"{to_markdown(summary.rename(columns=SUMMARY_COLUMNS))}\n\n"
        f"Command: `{command}` · {datetime.now().isoformat(timespec='seconds')} · {machine('cpu')}\n"
    )
    (args.out / "defaults.md").write_text(markdown)
    print(markdown)


# The rows of budget.md, in the order a reader adds them up.
BUDGET_STAGES = (
    "total",
    "collection",
    "env steps",
    "training",
    "backward",
    "optimizer steps",
    "features extractor forward",
    "features extractor backward",
    "recurrent cores forward",
    "recurrent cores backward (and heads)",
    "recurrent cores, forward and backward",
    "everything else",
)


class StageTimer:
    """
    Wall time of the stages of a model's ``learn`` (seconds, summed over calls): the env's ``step_wait``, the features
    extractor's forward and backward, the recurrent cores' forward, every ``backward()``, the optimizers' steps,
    collection and training. Installs its timers on entering and removes them on leaving.
    """

    def __init__(self, model: BaseAlgorithm) -> None:
        self.model = model
        self.seconds: dict[str, float] = {}
        self.reached_features: float | None = None
        self.undo: list[Callable[[], None]] = []

    def add(self, stage: str, seconds: float) -> None:
        self.seconds[stage] = self.seconds.get(stage, 0.0) + seconds

    def wrap(
        self, owner: object, name: str, stage: str, on_result: Callable[[object], object] = lambda result: result
    ) -> None:
        """Time ``owner.name`` as ``stage``; its result goes through ``on_result`` (untimed)."""
        inner = getattr(owner, name)
        had_own = name in vars(owner)

        def timed(*args: object, **kwargs: object) -> object:
            start = time.perf_counter()
            result = inner(*args, **kwargs)
            self.add(stage, time.perf_counter() - start)
            return on_result(result)

        setattr(owner, name, timed)
        self.undo.append(lambda: setattr(owner, name, inner) if had_own else delattr(owner, name))

    def __enter__(self) -> "StageTimer":
        model, policy = self.model, self.model.policy
        timer = self

        class MarkFeatures(th.autograd.Function):
            """The identity; its backward notes when the gradient reaches the features."""

            @staticmethod
            def forward(ctx: object, features: th.Tensor) -> th.Tensor:
                return features.view_as(features)

            @staticmethod
            def backward(ctx: object, grad: th.Tensor) -> th.Tensor:
                timer.reached_features = time.perf_counter()
                return grad

        mark = lambda features: MarkFeatures.apply(features) if th.is_grad_enabled() else features  # noqa: E731
        self.wrap(policy.features_extractor, "forward", "features extractor forward", on_result=mark)
        if isinstance(model, MetaRIMPPO):  # the fused actor and critic cores, and the actor alone (log-prob refresh)
            self.wrap(policies, "run_rims", "recurrent cores forward")
            self.wrap(RIM, "forward", "recurrent cores forward")
        else:
            for core in (policy.lstm_actor, policy.lstm_critic):
                self.wrap(core, "forward", "recurrent cores forward")
        self.wrap(model.env, "step_wait", "env steps")
        self.wrap(model, "collect_rollouts", "collection")
        self.wrap(model, "train", "training")
        slow_optimizer = getattr(model, "slow_optimizer", None)  # MetaRIMPPO's second optimizer
        for optimizer in (policy.optimizer, *([slow_optimizer] if slow_optimizer is not None else [])):
            self.wrap(optimizer, "step", "optimizer steps")
        backward = th.Tensor.backward

        def timed_backward(tensor: th.Tensor, *args: object, **kwargs: object) -> None:
            self.reached_features = None
            start = time.perf_counter()
            backward(tensor, *args, **kwargs)
            end = time.perf_counter()
            self.add("backward", end - start)
            if self.reached_features is not None:
                self.add("features extractor backward", end - self.reached_features)

        th.Tensor.backward = timed_backward
        self.undo.append(lambda: setattr(th.Tensor, "backward", backward))
        return self

    def __exit__(self, *exc: object) -> None:
        for undo in reversed(self.undo):
            undo()


def run_budget(args: argparse.Namespace, command: str) -> None:
    """metarim and lstm in the zoo's GoToLocal setting, stage by stage; writes budget.csv and budget.md."""
    per_rollout = {}
    for algo in ("metarim", "lstm"):
        model = make_gotolocal_model(args, algo, **GOTOLOCAL_SETTING)
        model.learn(2 * model.n_envs * model.n_steps)  # warm-up: two rollouts, one slow phase
        with StageTimer(model) as timer:
            start = time.perf_counter()
            model.learn(args.rollouts * model.n_envs * model.n_steps, reset_num_timesteps=False)
            timer.add("total", time.perf_counter() - start)
        seconds = {stage: value / args.rollouts for stage, value in timer.seconds.items()}
        # Backward through the cores (and the small heads) is what the backward passes spend before the features.
        seconds.setdefault("features extractor backward", 0.0)  # an extractor without parameters has none
        seconds["recurrent cores backward (and heads)"] = seconds["backward"] - seconds["features extractor backward"]
        seconds["recurrent cores, forward and backward"] = (
            seconds["recurrent cores forward"] + seconds["recurrent cores backward (and heads)"]
        )
        seconds["everything else"] = seconds["total"] - seconds["recurrent cores, forward and backward"]
        per_rollout[algo] = seconds
    table = pd.DataFrame(per_rollout).loc[list(BUDGET_STAGES)].rename_axis("stage (s per rollout)").reset_index()
    table.to_csv(args.out / "budget.csv", index=False)
    meta, lstm = per_rollout["metarim"], per_rollout["lstm"]
    allowed = lstm["total"] / 2 - meta["everything else"]
    cores = meta["recurrent cores, forward and backward"]
    verdict = (
        f"For metarim to reach twice lstm's steps/s, a rollout would have to take {lstm['total'] / 2:.2f} s; "
        f"everything but its cores takes {meta['everything else']:.2f} s, so its cores (forward and backward) would "
        + (
            f"have to take {allowed:.2f} s instead of {cores:.2f} s: {cores / allowed:.1f}x faster."
            if allowed > 0
            else "have to take no time at all, and that would not be enough."
        )
    )
    markdown = (
        f"# Where a rollout's time goes on {GOTOLOCAL} (cpu, zoo setting: 16 envs x 128 steps, batch 256, 4 epochs)\n\n"
        f"Seconds per rollout of 2,048 steps, over {args.rollouts} rollouts after a two-rollout warm-up. Stages overlap "
        "(collection holds env steps and forward passes; training holds forward passes, backward and the optimizer "
        "steps); the cores' backward is every backward pass less the features extractor's.\n\n"
        f"{to_markdown(table)}\n\n{verdict}\n\n"
        f"Command: `{command}` · {datetime.now().isoformat(timespec='seconds')} · {machine('cpu')}\n"
    )
    (args.out / "budget.md").write_text(markdown)
    print(markdown)


def compare_devices(paths: tuple[Path, Path], out: Path, command: str) -> None:
    """devices.md: median steps/s per (setting, algo) of two gotolocal CSVs side by side, and their ratio."""
    medians = []
    for path in paths:
        runs = pd.read_csv(path)
        device = f"{runs['device'].iloc[0]} ({runs['torch_threads'].iloc[0]} threads)"
        medians.append(runs.groupby(["setting", "algo"], sort=False)["steps_per_s"].median().rename(f"{device} steps/s"))
    table = pd.concat(medians, axis=1, join="inner")
    table[f"{table.columns[1]} / {table.columns[0]}"] = table.iloc[:, 1] / table.iloc[:, 0]
    markdown = (
        f"# {GOTOLOCAL}: steps/s on two devices (medians of the runs in {paths[0].name} and {paths[1].name})\n\n"
        f"{to_markdown(table.reset_index())}\n\nCommand: `{command}`\n"
    )
    (out / "devices.md").write_text(markdown)
    print(markdown)


def main() -> None:
    args = parse_args()
    th.set_num_threads(args.torch_threads)
    args.out.mkdir(parents=True, exist_ok=True)
    command = "python " + shlex.join(sys.argv)
    if args.compare:
        compare_devices(args.compare, args.out, command)
        return
    if args.case == "gotolocal":
        run_gotolocal(args, command)
        return
    if args.case == "defaults":
        run_defaults(args, command)
        return
    if args.case == "budget":
        run_budget(args, command)
        return

    runs = run_throughput(args)
    runs.to_csv(args.out / "throughput.csv", index=False)
    summary = summarize(runs, "env")
    columns = dict(
        steps_per_s="steps/s (median)",
        collect_steps_per_s="collection steps/s",
        train_s_per_rollout="training s/rollout",
        memory_mb=f"memory MB ({'RSS growth: build + warm-up' if psutil else 'needs psutil'})",
        ratio_to_lstm="x lstm (median of per-round ratios)",
    )
    tables = [
        f"# Training throughput ({args.n_envs} envs x {args.n_steps} steps, batch {args.batch_size}, "
        f"{args.n_epochs} epochs, {args.rollouts} rollouts x {args.repeats} alternating repeats, 1 torch thread)",
        to_markdown(summary.rename(columns=columns)),
        "Memory is the process RSS growth while building the model and running its warm-up: the first model built "
        "also pays torch's one-time allocations, and later ones may reuse memory freed earlier.",
    ]
    fig, axes = plt.subplots(2 if args.scaling else 1, 1, figsize=(10, 10 if args.scaling else 5), squeeze=False)
    bar_panel(axes[0, 0], summary, "env", "Throughput per env")

    if args.scaling:
        scaling = run_scaling(args)
        scaling.to_csv(args.out / "scaling.csv", index=False)
        scaled = summarize(scaling, "setting")
        wide = scaled.pivot(index="setting", columns="algo", values="steps_per_s").reindex(scaled["setting"].unique())
        wide["metarim / lstm"] = scaled[scaled["algo"] == "metarim"].set_index("setting")["ratio_to_lstm"]
        tables += [
            f"## Scaling on {ENVS[0]}: median steps/s ({args.scaling_repeats} alternating repeats; lstm width = "
            f"num_units x {UNIT_SIZE}; top_k = min(4, num_units - 1); "
            f"a buffer of <= {args.batch_size} steps is one minibatch)",
            to_markdown(wide.reset_index()),
        ]
        bar_panel(axes[1, 0], scaled, "setting", f"Scaling on {ENVS[0]}")
    fig.tight_layout()
    fig.savefig(args.out / "throughput.png", dpi=120)

    tables.append(
        f"Command: `{command}` · {datetime.now().isoformat(timespec='seconds')} · "
        f"torch {th.__version__} · {os.cpu_count()} CPUs"
    )
    markdown = "\n\n".join(tables) + "\n"
    (args.out / "throughput.md").write_text(markdown)
    print(markdown)
    print(command)


if __name__ == "__main__":
    main()

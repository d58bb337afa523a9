"""
Training throughput of MetaRIMPPO against its baselines: steps per second, split into collection and training.
The models and the timers are those of :mod:`sb3_metarim.benchmark.throughput`.

Algorithms: ``metarim`` (MetaRIMPPO, default fast/slow settings), ``modular`` (MetaRIMPPO, ``meta=False``), ``lstm``
(RecurrentPPO with an LSTM as wide as the RIM, ``num_units * unit_size``) and ``ppo`` (feed-forward PPO, the ceiling),
on MiniGrid-Empty-5x5-v0 (``ImgObsWrapper``: a 7x7x3 Box) and CartPole-v1, with the same PPO settings and one torch
thread; the RIM is the paper's core (6 modules of 32). Per env, each algorithm is built and warmed up (one rollout),
then the repeats alternate the algorithms (A B C D A B C D ...) in this one process, each a ``learn`` of
``--rollouts`` rollouts. A callback times collection (rollout start to rollout end, returns/advantages included) and
training (rollout end to the next rollout start or the end of ``learn``: ``train()`` and logging). Ratios to lstm are
medians of per-round ratios. Keep ``--rollouts`` even (metarim's slow_interval is 2) so that every metarim repeat holds
as many slow phases. The scaling section compares metarim and lstm on MiniGrid while varying n_envs, n_steps (the
sequence length) and num_units. Writes throughput.csv and scaling.csv (raw, one row per run), throughput.md and
throughput.png under ``--out``.

``--case gotolocal`` measures the paper's benchmark instead: BabyAI-GoToLocal-v0 with the mission (the zoo's
``MissionTokenWrapper`` and ``GridIdsWrapper``, ``MiniGridFeaturesExtractor``) and the zoo's settings (16 envs x 128
steps, batch 256, 4 epochs, lr 1e-3; MetaRIMPPO with the package's default core as the zoo config trains it, 6 modules
of 16, 4 active, beside a dense LSTM of 96, ``slow_max_kl=0.05``, ``fast_span`` 20; RecurrentPPO with an LSTM of 192,
as wide), metarim against lstm alternating as above, then the ``--sweep``s, each varying one setting:
``n_envs`` (16 / 64 / 256; the batch grows with it, 8 minibatches per epoch as at 16 envs), ``vec_env`` (DummyVecEnv
against SubprocVecEnv, one process per env), ``fast_span`` (10 / 20 / 40; lstm trains on whole rollouts whatever it
is), ``num_units`` (4 / 6 / 8; modules of 16 beside a dense LSTM as wide as they are, lstm as wide as both) and
``core`` (``paper``: the paper's core, 6 modules of 32 without a dense LSTM, no ``slow_max_kl``; lstm 192 in both) and
``backward`` (``steps``: metarim's RIMs' gradient by autograd through every step instead of by span).
``--device cuda`` runs the models on the GPU. Writes gotolocal_<device>.csv (one row per timed run),
gotolocal_<device>.md and gotolocal_<device>.png; ``--compare A.csv B.csv`` writes devices.md, the steps/s of the runs
of two such files side by side (e.g. GPU against CPU).

``--case defaults`` measures what a user gets: ``MetaRIMPPO("MlpPolicy", env)`` with the package's defaults against
RecurrentPPO with an LSTM of 192, alternating as above, on two of the memory suite's tasks (position-only CartPole and
RepeatFirst from POPGym) with its settings. Writes defaults.csv, defaults.md and defaults.png.

``--case budget`` says where the time of a GoToLocal rollout goes (the zoo's setting; metarim with its RIMs' gradient
by span, as the package computes it, and through every step, and lstm; ``--rollouts`` after a warm-up), from timers
around the env's steps, the features extractor's forward and backward, the recurrent cores' forward, every
``backward()``, the optimizers' steps, collection and training, and what the cores' share would have to become for
metarim to reach twice lstm's steps/s. Writes budget.csv and budget.md.

``--case cartpole_novel`` is where a RecurrentPPO user starts: rl-zoo3's tuned RecurrentPPO entry for CartPoleNoVel-v1
(8 envs x 32 steps, batch 256, 20 epochs, an LSTM of 64), metarim with the class swapped against lstm, alternating
as above. Writes cartpole_novel.csv and cartpole_novel.md.

Run: ``python scripts/benchmark_throughput.py`` (full: long), ``python scripts/benchmark_throughput.py --quick --out
/tmp/bench_quick`` (smoke test), or e.g. ``python scripts/benchmark_throughput.py --case gotolocal --sweep core
--rollouts 2 --repeats 5 --out benchmarks/gotolocal/core``.
"""

import argparse
import os
import shlex
import sys
from functools import partial
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch as th

from sb3_metarim.benchmark.report import markdown_table
from sb3_metarim.benchmark.throughput import (
    BACKWARDS,
    BUDGET_STAGES,
    CARTPOLE_NOVEL,
    CARTPOLE_NOVEL_N_ENVS,
    CARTPOLE_NOVEL_PPO,
    CLASSIC_ALGOS,
    GOTOLOCAL,
    GOTOLOCAL_SETTING,
    MEMORY_ENVS,
    MEMORY_N_ENVS,
    MEMORY_PPO,
    UNIT_SIZE,
    budget_verdict,
    cores_matmul_time,
    make_cartpole_novel_model,
    make_classic_model,
    make_gotolocal_model,
    make_memory_model,
    measure,
    rollout_budget,
    summarize,
)

try:
    import psutil
except ImportError:  # memory is then reported as NaN
    psutil = None

ENVS = ("MiniGrid-Empty-5x5-v0", "CartPole-v1")
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
SWEEPS = {
    "n_envs": (16, 64, 256),
    "vec_env": ("dummy", "subproc"),
    "fast_span": (10, 20, 40),
    "num_units": (4, 6, 8),
    "core": ("defaults", "paper"),
    "backward": BACKWARDS,
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
        "--case",
        choices=("classic", "gotolocal", "defaults", "budget", "cartpole_novel"),
        default="classic",
        help="see the module docstring",
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


def hardware(device: str) -> str:
    """The device's name and the CPU count, for the tables."""
    gpu = f"{th.cuda.get_device_name(th.device(device))} · " if device.startswith("cuda") else ""
    return f"{gpu}{os.cpu_count()} CPUs · {th.get_num_threads()} torch threads · torch {th.__version__}"


def classic_builders(args: argparse.Namespace, algos: tuple[str, ...], env_id: str, **setting: int) -> dict:
    """The classic models of ``algos`` on ``env_id`` with the command line's PPO settings, ``setting`` overriding."""
    setting = dict(n_envs=args.n_envs, n_steps=args.n_steps, num_units=args.num_units) | setting
    ppo = dict(batch_size=args.batch_size, n_epochs=args.n_epochs, learning_rate=args.learning_rate, seed=args.seed)
    return {algo: partial(make_classic_model, algo, env_id, **setting, **ppo) for algo in algos}


def run_throughput(args: argparse.Namespace) -> pd.DataFrame:
    """All the classic algorithms on each env, alternating, with the settings from the command line."""
    rows = []
    for env_id in ENVS:
        rows += measure(classic_builders(args, CLASSIC_ALGOS, env_id), args.rollouts, args.repeats, env=env_id)
    return pd.DataFrame(rows)


def run_scaling(args: argparse.Namespace) -> pd.DataFrame:
    """metarim against lstm on MiniGrid, varying one of n_envs, n_steps, num_units at a time."""
    sweeps = {"n_envs": (1, 8, 32), "n_steps": (32, 128, 512), "num_units": (4, 8, 16)}
    rows = []
    for name, values in sweeps.items():
        for value in values[:2] if args.quick else values:
            setting = dict(n_envs=args.n_envs, n_steps=args.n_steps, num_units=args.num_units) | {name: value}
            builders = classic_builders(args, ("metarim", "lstm"), ENVS[0], **setting)
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


def run_gotolocal(args: argparse.Namespace, command: str) -> None:
    """metarim against lstm on GoToLocal in each setting; writes gotolocal_<device>.csv/.md/.png."""
    rows = []
    name = f"gotolocal_{args.device.replace(':', '')}"
    for label, setting in gotolocal_settings(args):
        builders = {
            algo: partial(make_gotolocal_model, algo, **setting, seed=args.seed, device=args.device)
            for algo in ("metarim", "lstm")
        }
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
        f"{markdown_table(summary.rename(columns=SUMMARY_COLUMNS))}\n\n"
        f"Command: `{command}` · {hardware(args.device)}\n"
    )
    (args.out / f"{name}.md").write_text(markdown)
    print(markdown)


def run_defaults(args: argparse.Namespace, command: str) -> None:
    """The defaults against RecurrentPPO on two memory tasks; writes defaults.csv/.md/.png."""
    rows = []
    for env_id in MEMORY_ENVS:
        builders = {algo: partial(make_memory_model, algo, env_id, seed=args.seed) for algo in ("defaults", "lstm")}
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
        f"(6 modules of 16 beside a dense LSTM of 96, `slow_max_kl=0.05`), `lstm`: RecurrentPPO with "
        f"{6 * UNIT_SIZE} units. {args.rollouts} rollouts per timed run, {args.repeats} alternating rounds after a "
        f"one-rollout warm-up.\n\n"
        f"{markdown_table(summary.rename(columns=SUMMARY_COLUMNS))}\n\n"
        f"Command: `{command}` · {hardware('cpu')}\n"
    )
    (args.out / "defaults.md").write_text(markdown)
    print(markdown)


def run_budget(args: argparse.Namespace, command: str) -> None:
    """metarim (its RIMs' gradient by span and through every step) and lstm in the zoo's GoToLocal setting, stage by
    stage; writes budget.csv and budget.md."""
    models = {
        f"metarim ({backward})": partial(make_gotolocal_model, "metarim", **GOTOLOCAL_SETTING | dict(backward=backward))
        for backward in BACKWARDS
    }
    models["lstm"] = partial(make_gotolocal_model, "lstm", **GOTOLOCAL_SETTING)
    per_rollout = {
        algo: rollout_budget(build(seed=args.seed, device=args.device), args.rollouts) for algo, build in models.items()
    }
    table = pd.DataFrame(per_rollout).loc[list(BUDGET_STAGES)].rename_axis("stage (s per rollout)").reset_index()
    table.to_csv(args.out / "budget.csv", index=False)
    span_model = models["metarim (span)"](seed=args.seed, device=args.device)
    span_model.learn(2 * span_model.n_envs * span_model.n_steps)
    floor = cores_matmul_time(span_model, 2)  # a fast and a slow phase; the profiler keeps every kernel's event
    markdown = (
        f"# Where a rollout's time goes on {GOTOLOCAL} (cpu, zoo setting: 16 envs x 128 steps, batch 256, 4 epochs)\n\n"
        f"Seconds per rollout of 2,048 steps, over {args.rollouts} rollouts after a two-rollout warm-up. Stages overlap "
        "(collection holds env steps and forward passes; training holds forward passes, backward and the optimizer "
        "steps); the cores' backward is every backward pass less the features extractor's. metarim (span): the RIMs' "
        "gradient by span (the package's); metarim (steps): autograd through every step.\n\n"
        f"{markdown_table(table)}\n\n{budget_verdict(per_rollout['metarim (span)'], per_rollout['lstm'])}\n\n"
        f"Under torch.profiler (over 2 rollouts; it overstates small kernels), metarim (span)'s cores took "
        f"{floor['cores']:.2f} s per rollout, of which {floor['matmul']:.2f} s in matrix products (bmm, baddbmm, mm and "
        f"the dense LSTM's fused kernels): {floor['ratio']:.1f}x their matmul floor.\n\n"
        f"Command: `{command}` · {hardware('cpu')}\n"
    )
    (args.out / "budget.md").write_text(markdown)
    print(markdown)


def run_cartpole_novel(args: argparse.Namespace, command: str) -> None:
    """metarim against lstm with rl-zoo3's tuned RecurrentPPO entry for CartPoleNoVel-v1; writes cartpole_novel.csv and
    cartpole_novel.md."""
    builders = {algo: partial(make_cartpole_novel_model, algo, seed=args.seed) for algo in ("metarim", "lstm")}
    runs = pd.DataFrame(measure(builders, args.rollouts, args.repeats, env=CARTPOLE_NOVEL))
    runs.to_csv(args.out / "cartpole_novel.csv", index=False)
    summary = summarize(runs, "env")
    ppo = CARTPOLE_NOVEL_PPO
    markdown = (
        f"# Training throughput with rl-zoo3's tuned RecurrentPPO entry for {CARTPOLE_NOVEL}, the class swapped\n\n"
        f"{CARTPOLE_NOVEL_N_ENVS} envs x {ppo['n_steps']} steps (VecNormalize), batch {ppo['batch_size']}, "
        f"{ppo['n_epochs']} epochs, an LSTM of 64 (metarim: the RIM that width gives, its default fast/slow "
        f"training); {args.rollouts} rollouts per timed run, {args.repeats} alternating rounds after a one-rollout "
        f"warm-up.\n\n{markdown_table(summary.rename(columns=SUMMARY_COLUMNS))}\n\n"
        f"Command: `{command}` · {hardware('cpu')}\n"
    )
    (args.out / "cartpole_novel.md").write_text(markdown)
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
        f"{markdown_table(table.reset_index())}\n\nCommand: `{command}`\n"
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
    if args.case == "cartpole_novel":
        run_cartpole_novel(args, command)
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
        markdown_table(summary.rename(columns=columns)),
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
            markdown_table(wide.reset_index()),
        ]
        bar_panel(axes[1, 0], scaled, "setting", f"Scaling on {ENVS[0]}")
    fig.tight_layout()
    fig.savefig(args.out / "throughput.png", dpi=120)

    tables.append(f"Command: `{command}` · torch {th.__version__} · {os.cpu_count()} CPUs")
    markdown = "\n\n".join(tables) + "\n"
    (args.out / "throughput.md").write_text(markdown)
    print(markdown)
    print(command)


if __name__ == "__main__":
    main()

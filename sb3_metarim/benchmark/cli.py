"""
``python -m sb3_metarim.benchmark``: run a suite's grid (resumable, shardable, in parallel) and aggregate it.

.. code-block:: bash

    python -m sb3_metarim.benchmark run memory --workers 2            # the whole grid, 2 processes, into runs/memory/
    python -m sb3_metarim.benchmark run memory --shard 0/4            # a quarter of it (e.g. one machine of four)
    python -m sb3_metarim.benchmark run memory --env popgym-RepeatFirstEasy-v0 --variant ppo_lstm --seeds 0 1
    python -m sb3_metarim.benchmark run paper_full --until 500000   # the first 500k steps of each run; resumable
    python -m sb3_metarim.benchmark aggregate memory                  # benchmarks/memory/: tables, summary.md, plots
    python -m sb3_metarim.benchmark list memory --shard 1/4           # what a shard would run, and what is finished

Runs write their folders (checkpoints, logs, evaluations) into a working directory, ``--runs`` (default ``runs``);
an interrupted grid resumes where it stopped when the same command runs again there, or on another machine once
that directory is copied there. ``aggregate`` merges the finished runs into the suite's committed long tables in
``--results`` (default ``benchmarks``) and computes every table and plot from those
(:mod:`sb3_metarim.benchmark.store`).

``run --until STEPS`` stops each run once it has trained that many steps (evaluated and checkpointed there): a
look at the first part of a long grid, which the same command without ``--until`` continues.

``run`` exits with 0 when every run is finished or stopped at ``--until``, 1 when one failed, 2 when none failed but
some wait for the run they fine-tune (``init_from``): rerun it once those are finished.
"""

import argparse
import dataclasses
import shlex
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path

from sb3_metarim.benchmark.runner import Checkpoint, run_safely, run_state, set_threads
from sb3_metarim.benchmark.spec import RunSpec, load_suite, parse_shard, shard

# --ray without an address: a Ray started for the call on this machine.
LOCAL_RAY = "local"


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    suite = load_suite(args.suite)
    suite.import_modules()
    runs = suite.runs(args.env, args.variant, args.seeds)
    if args.shard:
        runs = shard(runs, *parse_shard(args.shard))
    if args.command == "list":
        for spec in runs:
            state = run_state(spec, args.runs)
            print(f"{state:8} {spec.describe()}{_state_detail(spec, args.runs, state)}")
        return 0
    if args.command == "aggregate":
        from sb3_metarim.benchmark.aggregate import aggregate_suite

        command = " ".join(["python -m sb3_metarim.benchmark", *map(shlex.quote, sys.argv[1:] if argv is None else argv)])
        # --seeds widens as well as narrows: runs of seeds beyond the suite's own count too.
        seeds = suite.seeds if args.seeds is None else tuple(args.seeds)
        known = [variant.name for variant in suite.variants]
        args.candidate = args.candidate or known[0]
        for option in ("candidate", "baseline"):
            if getattr(args, option) not in known:
                raise ValueError(f"--{option} {getattr(args, option)!r}: not in the suite; known: {known}")
        suite = dataclasses.replace(suite, seeds=seeds)
        report = aggregate_suite(
            suite, args.runs, args.results, command=command, candidate=args.candidate, baseline=args.baseline
        )
        print(f"report: {report}")
        return 0
    if args.ray is not None:
        from sb3_metarim.benchmark.cluster import run_grid_on_ray  # Ray only when asked for (the `cluster` extra)

        address = None if args.ray == LOCAL_RAY else args.ray
        ended = run_grid_on_ray(runs, args.runs, address, args.num_threads, args.device, args.verbose, args.until)
        states = [_report(index, len(runs), spec, args.runs, state, error) for index, (spec, state, error) in enumerate(ended)]
        return _exit_code(states)
    return run_grid(runs, args.runs, args.workers, args.num_threads, args.device, args.verbose, args.until)


def run_grid(
    runs: list[RunSpec],
    runs_root: Path,
    workers: int,
    num_threads: int,
    device: str,
    verbose: int,
    until: int | None = None,
) -> int:
    """
    Run (or resume, or skip) every run, ``workers`` at a time, each in its own process when ``workers > 1``; with
    ``until``, each only to that many steps (:func:`~sb3_metarim.benchmark.runner.run`'s ``until``).

    :return: 0 if every run finished, 1 if one failed (the failed runs' tracebacks are printed and kept in the
        run's ``error.txt``), 2 if none failed but some wait for the run they fine-tune (``init_from``).
    """
    states = []
    if workers == 1:
        set_threads(num_threads)
        for index, spec in enumerate(runs):
            state, error = run_safely(spec, runs_root, device, verbose, until=until)
            states.append(_report(index, len(runs), spec, runs_root, state, error))
    else:
        context = get_context("spawn")  # fresh interpreters: no torch state shared with the parent
        with ProcessPoolExecutor(workers, mp_context=context, initializer=set_threads, initargs=(num_threads,)) as pool:
            futures = {pool.submit(run_safely, spec, runs_root, device, verbose, until=until): spec for spec in runs}
            for index, future in enumerate(as_completed(futures)):
                states.append(_report(index, len(runs), futures[future], runs_root, *future.result()))
    return _exit_code(states)


def _exit_code(states: list[str]) -> int:
    """:return: 1 if a run failed, else 2 if one waits for the run it fine-tunes, else 0."""
    if "failed" in states:
        return 1
    return 2 if "waiting" in states else 0


def _state_detail(spec: RunSpec, runs_root: Path, state: str) -> str:
    """What ``list`` adds to a run's state: the run a waiting one fine-tunes, how far a started one got."""
    if state == "waiting":
        return f" (waits for {spec.init_folder(runs_root)})"
    if state == "started":
        return f" (checkpoint at {Checkpoint(spec.folder(runs_root)).timesteps()} of {spec.env.n_timesteps} steps)"
    return ""


def _report(index: int, total: int, spec: RunSpec, runs_root: Path, state: str, error: str) -> str:
    detail = ""
    if state == "waiting":
        detail = f": skipped, it fine-tunes {spec.init_folder(runs_root)}, not finished yet (run that first, then rerun)"
    elif state == "stopped":
        steps = Checkpoint(spec.folder(runs_root)).timesteps()
        detail = f" at {steps} of {spec.env.n_timesteps} steps (--until): resumes without it"
    print(f"[{index + 1}/{total}] {state:10} {spec.describe()}{detail}", flush=True)
    if error:
        print(error, file=sys.stderr, flush=True)
    return state


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m sb3_metarim.benchmark", description=__doc__.strip().splitlines()[0])
    parser.add_argument("command", choices=("run", "aggregate", "list"))
    parser.add_argument("suite", help="a suite yaml file, or the name of a shipped suite (e.g. memory)")
    parser.add_argument("--runs", type=Path, default=Path("runs"), help="working directory of the runs (default: runs)")
    results_help = "aggregate: folder of the committed long tables, summaries and plots (default: benchmarks)"
    parser.add_argument("--results", type=Path, default=Path("benchmarks"), help=results_help)
    parser.add_argument("--shard", help="i/n: run every n-th run of the grid starting at i (0 <= i < n)")
    parser.add_argument("--workers", type=int, default=1, help="runs at a time, one process each (default 1)")
    parser.add_argument("--num-threads", type=int, default=1, help="torch threads per run (default 1)")
    parser.add_argument("--env", nargs="+", help="only these env ids")
    parser.add_argument("--variant", nargs="+", help="only these variants")
    seeds_help = "only these seeds (aggregate: these instead of the suite's, finished runs only)"
    parser.add_argument("--seeds", nargs="+", type=int, help=seeds_help)
    parser.add_argument("--device", default="cpu", help="torch device of the runs (default cpu)")
    candidate_help = "aggregate: the variant the verdict table checks (default: the suite's first)"
    parser.add_argument("--candidate", help=candidate_help)
    parser.add_argument("--baseline", default="ppo_lstm", help="aggregate: the variant it is checked against")
    ray_help = (
        "run: every run a task on a Ray cluster: ADDRESS ('auto', 'host:port'), or none for a Ray started for the call; "
        "--runs must then be a path every node reaches"
    )
    parser.add_argument("--ray", nargs="?", const=LOCAL_RAY, metavar="ADDRESS", help=ray_help)
    until_help = "run: stop each run once it has trained this many steps (checkpointed; rerun without it to go on)"
    parser.add_argument("--until", type=_positive_steps, metavar="STEPS", help=until_help)
    parser.add_argument("--verbose", type=int, default=0)
    return parser


def _positive_steps(text: str) -> int:
    if not text.isdigit() or int(text) == 0:
        raise argparse.ArgumentTypeError(f"{text!r}: must be a positive whole number of steps")
    return int(text)

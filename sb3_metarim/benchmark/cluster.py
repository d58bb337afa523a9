"""
A suite's grid on a Ray cluster (``python -m sb3_metarim.benchmark run SUITE --ray [ADDRESS]``; needs the ``cluster``
extra): every run is a Ray task with the CPUs of its torch threads (and a GPU with ``--device cuda``), on the cluster
at ``ADDRESS`` (``auto``: the cluster this machine belongs to, as Ray means it; ``host:port``: its head), or on a Ray
started for the call. The semantics are the local pool's (``--workers``): a finished run
is skipped, a started one resumes from its last checkpoint, a run that fine-tunes another (``init_from``) starts when
that one has finished.

Run folders go to ``--runs``, which must be a path every node reaches (a shared filesystem: NFS, a cloud
filesystem mounted at the same path): a retried task, maybe on another node, finds the run's checkpoint there. A
task whose worker process or node dies is retried by Ray (``max_retries`` times) and resumes from the run's last
checkpoint, losing at most one evaluation interval; a run that raises is reported with its traceback (kept in its
``error.txt``), not retried, and the rest of the grid goes on.

.. code-block:: bash

    ray start --head --port 6379                       # on the head node
    ray start --address HEAD_IP:6379                   # on every other node (same Python environment)
    python -m sb3_metarim.benchmark run paper --ray auto --runs /shared/runs --num-threads 1
"""

import time
from pathlib import Path
from typing import Any

import ray

from sb3_metarim.benchmark.runner import Checkpoint, run_safely, run_state
from sb3_metarim.benchmark.spec import RunSpec

# A task whose worker died is run again this many times (each time from the run's last checkpoint).
MAX_RETRIES = 3
# Seconds between two progress lines.
PROGRESS_INTERVAL = 30.0


def run_grid_on_ray(
    runs: list[RunSpec],
    runs_root: Path,
    address: str | None,
    num_threads: int,
    device: str,
    verbose: int,
    until: int | None = None,
    max_retries: int = MAX_RETRIES,
) -> list[tuple[RunSpec, str, str]]:
    """
    :param runs: The grid's runs.
    :param runs_root: Where the run folders are: a path every node reaches.
    :param address: The cluster (``ray.init``'s ``address``: ``"auto"``, ``"host:port"``), or ``None``: a Ray started
        for the call on this machine.
    :param num_threads: Torch threads per run, the CPUs each task asks for.
    :param device: The runs' torch device; ``cuda`` makes each task ask for a GPU.
    :param verbose: SB3's verbosity in the runs.
    :param until: Stop each run at this many steps (:func:`~sb3_metarim.benchmark.runner.run`'s ``until``).
    :param max_retries: How often a task whose worker died is run again.
    :return: per run, in the order they ended: the run, its state (:func:`~sb3_metarim.benchmark.runner.run`'s, or
        ``"failed"``) and its error (empty unless failed).
    """
    runs_root = Path(runs_root).resolve()
    ray.init(address=address, ignore_reinit_error=True, log_to_driver=verbose > 0)
    task = ray.remote(run_safely).options(
        num_cpus=num_threads,
        num_gpus=1 if device.startswith("cuda") else 0,
        max_retries=max_retries,
        retry_exceptions=False,
        runtime_env={"env_vars": {"OMP_NUM_THREADS": str(num_threads)}},
    )
    folders = {spec.folder(runs_root) for spec in runs}

    def submit(spec: RunSpec) -> Any:
        return task.remote(spec, runs_root, device, verbose, num_threads, until)

    # A run that fine-tunes another of this grid is submitted when that one has ended (by index: specs are unhashable).
    waiting = {index: spec.init_folder(runs_root) for index, spec in enumerate(runs) if spec.init_folder(runs_root) in folders}
    pending = {submit(spec): spec for index, spec in enumerate(runs) if index not in waiting}
    progress = Progress(runs, runs_root)
    ended: list[tuple[RunSpec, str, str]] = []
    while pending:
        done, _ = ray.wait(list(pending), num_returns=1, timeout=PROGRESS_INTERVAL)
        for ref in done:
            spec = pending.pop(ref)
            try:
                state, error = ray.get(ref)
            except ray.exceptions.RayError as failure:  # its worker died more than max_retries times
                state, error = "failed", f"{type(failure).__name__}: {failure}"
            ended.append((spec, state, error))
            for index in [index for index, folder in waiting.items() if folder == spec.folder(runs_root)]:
                del waiting[index]
                pending[submit(runs[index])] = runs[index]
        progress.report(ended, len(pending))
    return ended


class Progress:
    """
    The grid's progress line: runs finished, running and failed, and the frames per second of the whole grid, from
    the run folders (the finished runs' budgets, the others' last checkpoints).

    :param runs: The grid's runs.
    :param runs_root: Their folders' root.
    """

    def __init__(self, runs: list[RunSpec], runs_root: Path) -> None:
        self.runs, self.runs_root = runs, runs_root
        self.started_at, self.frames_at_start = time.monotonic(), self.frames()
        self.last_print = 0.0

    def frames(self) -> int:
        """:return: the frames the grid's runs hold now (finished runs' budgets, started runs' last checkpoints)."""
        total = 0
        for spec in self.runs:
            state = run_state(spec, self.runs_root)
            if state in ("done", "transfer"):
                total += spec.env.n_timesteps
            elif state == "started":
                total += Checkpoint(spec.folder(self.runs_root)).timesteps()
        return total

    def report(self, ended: list[tuple[RunSpec, str, str]], running: int) -> None:
        """Print the progress line, at most every :data:`PROGRESS_INTERVAL` seconds and when the grid ends."""
        now = time.monotonic()
        if running and now - self.last_print < PROGRESS_INTERVAL:
            return
        self.last_print = now
        failed = sum(state == "failed" for _, state, _ in ended)
        frames = self.frames()
        rate = (frames - self.frames_at_start) / max(now - self.started_at, 1e-9)
        print(
            f"[ray] {len(ended) - failed} ended, {running} running or queued, {failed} failed of {len(self.runs)}; "
            f"{frames:,} frames, {rate:,.0f} frames/s",
            flush=True,
        )

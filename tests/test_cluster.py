"""The benchmark grid on a real two-node Ray cluster on this machine (``ray start --head`` and ``ray start --address``
on 127.0.0.1): its first steps (``--until``), then the rest with one running task's worker killed with SIGKILL: the
grid completes, every evaluation row once."""

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from sb3_metarim.benchmark.runner import DONE_FILE

from .test_benchmark import tiny_suite, write_suite

RAY = str(Path(sys.executable).with_name("ray"))
BUDGET, EVAL_FREQ = 3072, 256
TIMEOUT = 600


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def ray_command(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [RAY, *args], capture_output=True, text=True, timeout=180, env=os.environ | {"RAY_USAGE_STATS_ENABLED": "0"}
    )


@pytest.fixture
def two_node_cluster():
    """A head node and a second node, one CPU each, on 127.0.0.1; stopped at the end. Skipped, saying why, where Ray
    cannot start."""
    pytest.importorskip("ray", reason="Ray is not installed (the `cluster` extra)")
    port = free_port()
    common = ["--num-cpus=1", "--node-ip-address=127.0.0.1", "--disable-usage-stats"]
    head = ray_command("start", "--head", f"--port={port}", "--include-dashboard=false", *common)
    if head.returncode != 0:
        ray_command("stop", "--force")
        pytest.skip(f"a Ray head node could not start here: {(head.stdout + head.stderr)[-1500:]}")
    try:
        second = ray_command("start", f"--address=127.0.0.1:{port}", *common)
        if second.returncode != 0:
            pytest.skip(f"a second Ray node could not start here: {(second.stdout + second.stderr)[-1500:]}")
        yield f"127.0.0.1:{port}"
    finally:
        ray_command("stop", "--force")


def two_by_two_suite() -> dict:
    """2 variants x 2 seeds on CueMemory, a few thousand steps each, evaluated (and checkpointed) every 256."""
    env = {"n_timesteps": BUDGET, "eval_freq": EVAL_FREQ, "score_range": [0.5, 1.0], "threshold": 0.9}
    return {
        "suite": "cluster",
        "seeds": [0, 1],
        "hyperparams": {"n_envs": 2, "n_steps": 32, "batch_size": 32, "n_epochs": 1},
        "envs": {"sb3_metarim/CueMemory-v0": env | {"n_eval_episodes": 2, "n_eval_envs": 2}},
        "variants": {name: tiny_suite()["variants"][name] for name in ("metarim_ppo", "ppo_lstm")},
    }


def running_task_pids() -> list[int]:
    """:return: the PIDs of Ray workers running a grid run now (Ray names such a process after its task)."""
    found = subprocess.run(["pgrep", "-f", "ray::run_safely"], capture_output=True, text=True)
    return [int(pid) for pid in found.stdout.split()]


def test_a_grid_on_two_nodes_survives_a_killed_worker(two_node_cluster, tmp_path):
    suite, runs = write_suite(tmp_path, two_by_two_suite()), tmp_path / "runs"
    command = [
        sys.executable,
        "-m",
        "sb3_metarim.benchmark",
        "run",
        str(suite),
        "--runs",
        str(runs),
        "--ray",
        two_node_cluster,
    ]
    folders = [
        runs / "cluster/sb3_metarim-CueMemory-v0" / variant / f"seed{seed}"
        for variant in ("metarim_ppo", "ppo_lstm")
        for seed in (0, 1)
    ]
    # First the grid's first 512 steps (--until): every run stops there, checkpointed, and goes on below.
    until = subprocess.run([*command, "--until", "512"], capture_output=True, text=True, timeout=TIMEOUT)
    assert until.returncode == 0, until.stdout[-3000:] + until.stderr[-3000:]
    assert len(re.findall(rf"^\[\d/4\] stopped .* at 512 of {BUDGET} steps", until.stdout, flags=re.MULTILINE)) == 4
    for folder in folders:
        assert pd.read_csv(folder / "eval.csv")["timesteps"].tolist() == [0, 256, 512], folder

    grid = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=os.environ | {"OMP_NUM_THREADS": "1"}
    )
    # Kill a running task's worker once its run has a checkpoint and is not finished.
    killed_at, deadline = None, time.monotonic() + TIMEOUT
    while killed_at is None and time.monotonic() < deadline and grid.poll() is None:
        for folder in folders:
            if (folder / "checkpoint.zip").exists() and not (folder / DONE_FILE).exists() and running_task_pids():
                killed_at = len(pd.read_csv(folder / "eval.csv"))
                for pid in running_task_pids():
                    os.kill(pid, signal.SIGKILL)
                break
        time.sleep(0.2)
    output = grid.communicate(timeout=TIMEOUT)[0]
    assert killed_at is not None, f"no run was caught mid-way (raise BUDGET):\n{output[-3000:]}"
    assert grid.returncode == 0, output[-5000:]
    expected = list(range(0, BUDGET + 1, EVAL_FREQ))
    for folder in folders:
        assert (folder / DONE_FILE).exists(), folder
        steps = pd.read_csv(folder / "eval.csv")["timesteps"].tolist()
        assert steps == expected, (folder, steps)  # each evaluation once, none lost, none twice
    assert "frames/s" in output
    print(f"killed a task's worker at {killed_at} evaluation rows; the grid's output:\n{output}")
    rerun = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT)
    assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
    assert len(re.findall(r"^\[\d/4\] done ", rerun.stdout, flags=re.MULTILINE)) == 4, rerun.stdout  # all skipped

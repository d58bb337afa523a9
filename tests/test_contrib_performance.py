"""
sb3-contrib's RecurrentPPO performance test (sb3_metarim.benchmark.contrib_performance) against MetaRIMPPO's
defaults, seeds 1 to 5, with the test's lstm_hidden_size=64 and with the default width: minutes per case, so marked
slow (``pytest -m slow tests/test_contrib_performance.py``); the sweep and its table are
``scripts/recurrent_ppo_performance.py``. In CI: the task and the script on a tiny budget.
"""

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from sb3_metarim import MetaRIMPPO
from sb3_metarim.benchmark.contrib_performance import THRESHOLD, performance_run, position_only_cartpole

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "recurrent_ppo_performance.py"


def test_the_task_shows_positions_only_for_500_steps_at_most():
    env = position_only_cartpole()
    observation, _ = env.reset(seed=0)
    assert observation.shape == (2,) and env.observation_space.contains(observation)
    assert env.spec.max_episode_steps == 500
    full = env.unwrapped.state
    assert observation.tolist() == pytest.approx([full[0], full[2]])


def test_the_script_writes_each_run_and_resumes(tmp_path):
    command = [sys.executable, str(SCRIPT), "--algos", "ppo_lstm", "--seeds", "1", "--widths", "8", "--timesteps", "1024"]
    for _ in range(2):  # the second run finds the row and trains nothing
        result = subprocess.run([*command, "--out", str(tmp_path)], capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-3000:]
    rows = pd.read_csv(tmp_path / "returns.csv")
    assert len(rows) == 1 and rows.loc[0, "mean_return"] > 0 and rows.loc[0, "passed"] == 0
    assert "| ppo_lstm | 8 | 1: " in (tmp_path / "returns.md").read_text()


def test_the_script_passes_the_algorithms_own_arguments(tmp_path):
    base = [sys.executable, str(SCRIPT), "--algos", "metarim_ppo", "--seeds", "1", "--widths", "4", "--timesteps", "256"]
    command = [*base, "--algo-kwargs", "fast_span=8", "slow_max_kl=null", "--out", str(tmp_path)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "The algorithms' arguments: `{'fast_span': 8, 'slow_max_kl': None}`." in (tmp_path / "returns.md").read_text()
    refused = [*base, "--algo-kwargs", "fast_span=0", "--out", str(tmp_path / "refused")]
    result = subprocess.run(refused, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0 and "fast_span=0" in result.stderr  # they reach the algorithm, which checks them


@pytest.mark.slow
@pytest.mark.parametrize("lstm_hidden_size", [64, None], ids=["width64", "default_width"])
@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_metarimppo_passes_sb3_contribs_performance_test(seed, lstm_hidden_size):
    assert performance_run(MetaRIMPPO, seed, lstm_hidden_size)["mean_return"] >= THRESHOLD

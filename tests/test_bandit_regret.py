"""scripts/bandit_regret.py with its tiny budget (CSV, PNG and markdown), and sb3_metarim.benchmark.regret's baselines."""

import csv
import subprocess
import sys
from pathlib import Path

import numpy as np

from sb3_metarim.benchmark.regret import tasks, thompson_regret, ucb1_regret

REPO = Path(__file__).resolve().parents[1]


def test_tiny_run_writes_csv_png_and_markdown(tmp_path):
    out = tmp_path / "regret"
    result = subprocess.run(
        [sys.executable, "scripts/bandit_regret.py", "--tiny", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Command:" in result.stdout and "bandit_regret.py --tiny" in result.stdout
    rows = list(csv.DictReader(open(out / "regret.csv")))
    assert len(rows) == 20 and float(rows[-1]["metods_ppo_mean"]) >= float(rows[0]["metods_ppo_mean"])
    assert (out / "regret.png").stat().st_size > 1000
    assert "| thompson |" in (out / "regret.md").read_text()


def test_thompson_and_ucb_regret_below_chance_on_easy_tasks():
    rng = np.random.default_rng(0)
    probabilities = tasks("easy", 50, 0)
    assert set(np.round(probabilities[:, 0], 2)) == {0.1, 0.9}
    chance = 0.4 * 100  # a random arm loses 0.4 a pull on average
    for policy in (thompson_regret, ucb1_regret):
        regret = np.mean([policy(p, 100, rng).sum() for p in probabilities])
        assert regret < chance / 3, policy.__name__

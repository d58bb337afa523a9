"""scripts/weight_drift.py: the relative change per parameter group, hand-computed and on tiny harness runs."""

import sys
from pathlib import Path

import pytest
import torch as th
import yaml

from sb3_metarim.benchmark.cli import main as benchmark

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from weight_drift import drift, main

TINY_CORE = dict(num_units=2, top_k=1, unit_size=4, input_key_size=4, input_value_size=4, comm_key_size=4, comm_value_size=4)


def test_drift_by_hand():
    initial = {
        "pi.input_attention.query.weight": th.tensor([3.0, 4.0]),  # norm 5
        "pi.cell.input_gates.weight": th.tensor([1.0, 0.0]),
        "pi.cell.hidden_gates.weight": th.tensor([0.0, 1.0]),
        "steps": th.tensor([3]),  # not a weight
    }
    trained = initial | {
        "pi.input_attention.query.weight": th.tensor([3.0, 5.0]),
        "pi.cell.input_gates.weight": th.tensor([2.0, 0.0]),
    }
    assert drift(initial, trained) == pytest.approx({"input_attention": 1 / 5, "cell": 1 / 2**0.5})


def test_frozen_attention_does_not_move_and_the_cells_do(tmp_path):
    core = {"policy_kwargs": TINY_CORE}
    suite = {
        "suite": "tiny_drift",
        "seeds": [0],
        "hyperparams": {"n_envs": 2, "n_steps": 32, "batch_size": 32, "n_epochs": 1},
        "envs": {
            "sb3_metarim/CueMemory-v0": {"n_timesteps": 128, "eval_freq": 128, "score_range": [0.5, 1.0], "threshold": 0.9}
        },
        "variants": {
            "rim_ppo": {"algo": "rim_ppo", "hyperparams": core},
            "frozen_attention": {"algo": "metarim_ppo", "hyperparams": {"slow_interval": 1000, **core}},
        },
    }
    path = tmp_path / "tiny_drift.yml"
    path.write_text(yaml.safe_dump(suite))
    assert benchmark(["run", str(path), "--out", str(tmp_path)]) == 0
    rows = main([str(path), "sb3_metarim/CueMemory-v0", "rim_ppo", "frozen_attention", "--root", str(tmp_path)])
    rows = rows.set_index("variant")
    assert rows.loc["frozen_attention", "input_attention"] == 0.0
    assert rows.loc["frozen_attention", "communication_attention"] == 0.0
    assert rows.loc["frozen_attention", "cell"] > 0.0
    assert rows.loc["rim_ppo", "input_attention"] > 0.0 and rows.loc["rim_ppo", "cell"] > 0.0

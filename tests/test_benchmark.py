"""The sample-efficiency harness: grid, shards, resume after a real kill, aggregation against hand-computed values."""

import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from sb3_metarim.benchmark import aggregate
from sb3_metarim.benchmark.cli import main
from sb3_metarim.benchmark.runner import ALGORITHMS, DONE_FILE, EVAL_COLUMNS, env_wrappers
from sb3_metarim.benchmark.spec import load_suite, parse_shard, shard, suite_from_dict

TINY_CORE = dict(num_units=2, top_k=1, unit_size=4, input_key_size=4, input_value_size=4, comm_key_size=4, comm_value_size=4)


def tiny_suite(n_timesteps: int = 512, eval_freq: int = 128, seeds=(0,), **env_extra) -> dict:
    return {
        "suite": "tiny",
        "seeds": list(seeds),
        "hyperparams": {"n_envs": 2, "n_steps": 32, "batch_size": 32, "n_epochs": 1},
        "envs": {
            "sb3_metarim/TMaze-v0": {
                "n_timesteps": n_timesteps,
                "eval_freq": eval_freq,
                "env_kwargs": {"length": 2},
                "score_range": [1.95, 4.0],
                "threshold": 3.5,
                "n_eval_episodes": 2,
                "n_eval_envs": 2,
                **env_extra,
            },
            "sb3_metarim/CueMemory-v0": {
                "n_timesteps": n_timesteps,
                "eval_freq": eval_freq,
                "score_range": [0.5, 1.0],
                "threshold": 0.9,
                "n_eval_episodes": 2,
                "n_eval_envs": 2,
                "hyperparams": {"normalize": True},
            },
        },
        "variants": {
            "metarim_ppo": {"algo": "metarim_ppo", "hyperparams": {"policy_kwargs": TINY_CORE}},
            "ppo_lstm": {
                "algo": "ppo_lstm",
                "policy": "MlpLstmPolicy",
                "hyperparams": {"policy_kwargs": {"lstm_hidden_size": 8}},
            },
            "ppo_framestack": {"algo": "ppo", "hyperparams": {"frame_stack": 2}},
        },
    }


def write_suite(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "suite.yml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_shards_partition_the_grid_exactly():
    suite = suite_from_dict(tiny_suite(seeds=(0, 1, 2)))
    runs = suite.runs()
    assert len(runs) == 2 * 3 * 3
    for count in (1, 2, 4, 7, 30):
        parts = [shard(runs, index, count) for index in range(count)]
        keys = [spec.key for part in parts for spec in part]
        assert sorted(keys) == sorted(spec.key for spec in runs)
        assert len(keys) == len(set(keys))
    assert parse_shard("1/4") == (1, 4)
    with pytest.raises(ValueError, match="shard"):
        parse_shard("4/4")
    with pytest.raises(ValueError, match="shard"):
        parse_shard("half")


def test_hyperparams_merge_suite_env_variant():
    data = tiny_suite()
    data["hyperparams"]["policy_kwargs"] = {"net_arch": [8]}
    suite = suite_from_dict(data)
    spec = next(run for run in suite.runs() if run.variant.name == "metarim_ppo" and "CueMemory" in run.env.env_id)
    assert spec.hyperparams["normalize"] is True
    assert spec.hyperparams["policy_kwargs"] == {"net_arch": [8], **TINY_CORE}
    assert spec.folder(Path("out")) == Path("out/tiny/sb3_metarim-CueMemory-v0/metarim_ppo/seed0")


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda d: d.update(sneaky=1), "unknown key 'sneaky'"),
        (lambda d: d["envs"]["sb3_metarim/TMaze-v0"].pop("threshold"), "'threshold' is required"),
        (lambda d: d["envs"]["sb3_metarim/TMaze-v0"].update(score_range=[1, 1]), "score_range"),
        (lambda d: d["envs"]["sb3_metarim/TMaze-v0"].update(eval_freq=0), "eval_freq=0"),
        (lambda d: d.update(seeds=[]), "seeds"),
        (lambda d: d["variants"]["ppo_lstm"].update(algorithm="x"), "unknown key 'algorithm'"),
    ],
)
def test_bad_suites_are_named(change, message):
    data = tiny_suite()
    change(data)
    with pytest.raises(ValueError, match=message):
        suite_from_dict(data)


def test_unknown_filter_and_suite_are_named(tmp_path):
    suite = suite_from_dict(tiny_suite())
    with pytest.raises(ValueError, match="--variant"):
        suite.runs(variants=["lstm"])
    with pytest.raises(ValueError, match="not a shipped suite"):
        load_suite(tmp_path / "missing.yml")
    assert {env.env_id for env in load_suite("memory").envs} >= {"sb3_metarim/TMaze-v0", "popgym-RepeatFirstEasy-v0"}


def test_grid_runs_every_variant_and_skips_finished_runs(tmp_path, capsys):
    path = write_suite(tmp_path, tiny_suite(n_timesteps=128, eval_freq=64))
    out = tmp_path / "out"
    assert main(["run", str(path), "--out", str(out)]) == 0
    folders = sorted(out.glob("tiny/*/*/seed0"))
    assert len(folders) == 6
    for folder in folders:
        rows = pd.read_csv(folder / "eval.csv")
        assert list(rows.columns) == list(EVAL_COLUMNS)
        assert rows["timesteps"].iloc[0] == 0 and rows["timesteps"].iloc[-1] == 128
        assert (folder / DONE_FILE).exists() and not (folder / "checkpoint.zip").exists()
        assert "versions" in (folder / "config.json").read_text()
    tmaze = pd.read_csv(out / "tiny/sb3_metarim-TMaze-v0/metarim_ppo/seed0/eval.csv")
    assert tmaze["success_rate"].between(0, 1).all()  # TMaze reports is_success
    capsys.readouterr()
    assert main(["run", str(path), "--out", str(out)]) == 0
    assert capsys.readouterr().out.count("done") == 6


def test_resume_after_kill_gives_the_same_rows_without_duplicates(tmp_path):
    budget, eval_freq = 4096, 256
    data = tiny_suite(n_timesteps=budget, eval_freq=eval_freq)
    path = write_suite(tmp_path, data)
    command = [sys.executable, "-m", "sb3_metarim.benchmark", "run", str(path), "--env", "sb3_metarim/CueMemory-v0"]
    command += ["--variant", "metarim_ppo"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    reference = tmp_path / "reference"
    subprocess.run([*command, "--out", str(reference)], check=True, env=env, capture_output=True)
    expected = pd.read_csv(reference / "tiny/sb3_metarim-CueMemory-v0/metarim_ppo/seed0/eval.csv")["timesteps"].tolist()

    out = tmp_path / "killed"
    folder = out / "tiny/sb3_metarim-CueMemory-v0/metarim_ppo/seed0"
    process = subprocess.Popen([*command, "--out", str(out)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if (folder / "eval.csv").exists() and len(pd.read_csv(folder / "eval.csv")) >= 4:
            break
        time.sleep(0.05)
    assert process.poll() is None, "the run finished before it could be killed: raise the budget"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    rows_at_kill = len(pd.read_csv(folder / "eval.csv"))
    assert (folder / "checkpoint.zip").exists() and not (folder / DONE_FILE).exists()

    subprocess.run([*command, "--out", str(out)], check=True, env=env, capture_output=True)
    resumed = pd.read_csv(folder / "eval.csv")["timesteps"].tolist()
    assert resumed == expected, f"killed at {rows_at_kill} rows"
    assert len(resumed) == len(set(resumed))
    assert (folder / DONE_FILE).exists()
    assert len(__import__("json").loads((folder / "config.json").read_text())["starts"]) == 2


def fake_results(root: Path, suite_data: dict, curves: dict) -> None:
    """Write finished runs: ``curves[(env_id, variant, seed)] = [(timesteps, return), ...]``."""
    suite = suite_from_dict(suite_data)
    for spec in suite.runs():
        folder = spec.folder(root)
        folder.mkdir(parents=True)
        rows = [dict.fromkeys(EVAL_COLUMNS, 0) | {"timesteps": t, "return_mean": r} for t, r in curves[spec.key]]
        pd.DataFrame(rows, columns=EVAL_COLUMNS).to_csv(folder / "eval.csv", index=False)
        (folder / DONE_FILE).write_text("{}")


def test_aggregate_matches_a_hand_computed_case(tmp_path):
    data = {
        "suite": "hand",
        "seeds": [0, 1, 2, 3],
        "envs": {
            "sb3_metarim/CueMemory-v0": {"n_timesteps": 200, "eval_freq": 100, "score_range": [0.0, 2.0], "threshold": 1.5}
        },
        "variants": {"a": {"algo": "metarim_ppo"}, "b": {"algo": "ppo_lstm"}},
    }
    env_id = "sb3_metarim/CueMemory-v0"
    # Variant a: final returns 1, 2, 3, 4; seed 3 reaches 1.5 at 100 steps, seeds 1, 2 at 200, seed 0 never.
    curves = {(env_id, "a", seed): [(0, 0.0), (100, 1.0 + (seed == 3)), (200, 1.0 + seed)] for seed in range(4)}
    curves |= {(env_id, "b", seed): [(0, 0.0), (100, 0.0), (200, 0.5)] for seed in range(4)}
    fake_results(tmp_path, data, curves)
    suite = suite_from_dict(data)
    report = aggregate.aggregate_suite(suite, tmp_path, command="test", candidate="a", baseline="b")
    runs = pd.read_csv(tmp_path / "hand/runs.csv").set_index(["variant", "seed"])
    # AUC of seed 1 of a: scores (return / 2) 0, 0.5, 1.0 over [0, 200] -> trapezoids (0.25 + 0.75) * 100 / 200 = 0.5.
    assert runs.loc[("a", 1), "auc"] == pytest.approx(0.5)
    assert runs.loc[("a", 3), "frames_to_threshold"] == 100
    # Never reached: censored one evaluation interval after its last evaluation.
    assert runs.loc[("a", 0), "frames_to_threshold"] == 300 and runs.loc[("a", 0), "reached"] == 0
    summary = pd.read_csv(tmp_path / "hand/summary.csv").set_index("variant")
    # IQM of 1, 2, 3, 4 = mean of the middle two = 2.5; mean frames = (300 + 200 + 200 + 100) / 4 = 200.
    assert summary.loc["a", "final_return"] == pytest.approx(2.5)
    assert summary.loc["a", "final_return_low"] <= 2.5 <= summary.loc["a", "final_return_high"]
    assert summary.loc["a", "frames_to_threshold"] == pytest.approx(200)
    assert summary.loc["a", "reached"] == 3 and summary.loc["b", "reached"] == 0
    assert summary.loc["b", "final_return"] == pytest.approx(0.5)
    assert summary.loc["b", "final_return_low"] == summary.loc["b", "final_return_high"] == pytest.approx(0.5)
    text = report.read_text()
    assert "| **total** | **1 of 1** | **1 of 1** |" in text
    assert "Command: `test`" in text
    assert (tmp_path / "hand/curves.png").stat().st_size > 0 and (tmp_path / "hand/profile.png").stat().st_size > 0


def test_iqm_interval_of_constant_values_is_exact():
    assert aggregate.iqm_interval(np.full(5, 0.7)) == pytest.approx((0.7, 0.7, 0.7))


@pytest.mark.parametrize(
    "scores, expected",
    [
        ([0.0, 0.5, 1.0, 0.7, 0.75, 1.0], True),  # two evaluations below 0.8 of the best
        ([0.0, 1.0, 0.7, 0.9, 0.7, 0.9], False),  # single dips
        ([0.0, 0.5, 0.45, 0.42, 0.5], False),  # within 20%
        ([-0.5, -0.2, -0.9, -0.9], False),  # never above chance: nothing to collapse from
        ([0.0, 0.3, 0.1, 0.1, 0.3], False),  # never learned (best below 0.5): noise near chance, not a collapse
        ([0.0, 0.5, 0.3, 0.3], True),  # learned just enough, then held well below
    ],
)
def test_collapse_is_a_drop_held_for_two_evaluations(scores, expected):
    assert aggregate.collapsed(np.array(scores)) is expected


def _summary_row(env_id, variant, final, final_ci, frames, frames_ci, reached):
    return {
        "env_id": env_id,
        "variant": variant,
        "final_return": final,
        "final_return_low": final_ci[0],
        "final_return_high": final_ci[1],
        "frames_to_threshold": frames,
        "frames_to_threshold_low": frames_ci[0],
        "frames_to_threshold_high": frames_ci[1],
        "reached": reached,
    }


def test_verdicts_qualify_by_the_cis_and_do_not_count_a_tie_at_the_budget():
    summary = pd.DataFrame(
        [
            # a: better on both, CIs separate on the return, overlapping on the frames.
            _summary_row("a", "new", 1.0, (0.9, 1.0), 20, (10, 40), 3),
            _summary_row("a", "old", 0.5, (0.4, 0.6), 30, (20, 50), 3),
            # b: worse return (CIs overlap); nobody reached the threshold: a tie at the budget.
            _summary_row("b", "new", 0.2, (0.1, 0.5), 100, (100, 100), 0),
            _summary_row("b", "old", 0.3, (0.2, 0.4), 100, (100, 100), 0),
            # c: only the candidate ran: no verdict.
            _summary_row("c", "new", 1.0, (1.0, 1.0), 10, (10, 10), 1),
        ]
    )
    verdict = aggregate.verdicts(summary, candidate="new", baseline="old").set_index("env_id")
    assert list(verdict.index) == ["a", "b"]
    assert verdict.loc["a"].to_dict() == {"final": "yes", "final_ci": "separate", "frames": "yes", "frames_ci": "overlap"}
    assert verdict.loc["b"].to_dict() == {
        "final": "no",
        "final_ci": "overlap",
        "frames": "neither reached",
        "frames_ci": "overlap",
    }
def test_env_wrapper_key_runs_meta_rl_tasks_with_metods_and_the_lstm(tmp_path):
    """``env_wrapper`` (rl-zoo3's format) wraps train and eval envs: here previous action and reward for meta-RL."""
    wrapper = [{"sb3_metarim.wrappers.PrevActionRewardWrapper": {"first_step": False}}]
    data = {
        "suite": "meta",
        "seeds": [0],
        "hyperparams": {"n_envs": 2, "n_steps": 16, "batch_size": 32, "n_epochs": 1, "env_wrapper": wrapper},
        "envs": {
            "sb3_metarim/DependentBandit-v0": {
                "n_timesteps": 32,
                "eval_freq": 32,
                "env_kwargs": {"pulls_per_episode": 8},
                "score_range": [4.0, 7.2],
                "threshold": 6.0,
                "n_eval_episodes": 2,
                "n_eval_envs": 2,
            }
        },
        "variants": {
            "metods_ppo": {
                "algo": "metods_ppo",
                "policy": "MultiInputPolicy",
                "hyperparams": {"policy_kwargs": {"num_neurons": 4}},
            },
            "ppo_lstm": {
                "algo": "ppo_lstm",
                "policy": "MultiInputLstmPolicy",
                "hyperparams": {"policy_kwargs": {"lstm_hidden_size": 8}},
            },
        },
    }
    out = tmp_path / "out"
    assert main(["run", str(write_suite(tmp_path, data)), "--out", str(out)]) == 0
    for variant in ("metods_ppo", "ppo_lstm"):
        folder = out / "meta" / "sb3_metarim-DependentBandit-v0" / variant / "seed0"
        rows = pd.read_csv(folder / "eval.csv")
        assert rows["timesteps"].iloc[-1] == 32 and rows["return_mean"].between(0, 8).all()
        with zipfile.ZipFile(folder / "model.zip") as archive:
            assert "prev_reward" in archive.read("data").decode()
    with pytest.raises(ValueError, match=r"env_wrapper=\[3\]: each item must be a class path"):
        env_wrappers([3])


def test_the_metods_suite_loads_and_names_known_algorithms():
    suite = load_suite(Path(__file__).resolve().parents[1] / "sb3_metarim" / "benchmark" / "suites" / "metods.yml")
    runs = suite.runs()
    assert {run.variant.algo for run in runs} <= set(ALGORITHMS) and len(suite.seeds) >= 3
    assert {run.env.env_id for run in runs} >= {"sb3_metarim/Harlow-v0", "sb3_metarim/MetaMaze-v0"}
    for run in runs:
        assert env_wrappers(run.hyperparams.get("env_wrapper")), run.describe()

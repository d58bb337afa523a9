"""The sample-efficiency harness: grid, shards, resume after a real kill, aggregation against hand-computed values."""

import dataclasses
import os
import re
import shutil
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

from sb3_metarim.benchmark import aggregate, runner, stats, store, training_log
from sb3_metarim.benchmark.cli import main
from sb3_metarim.benchmark.report import cell
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
    assert main(["run", str(path), "--runs", str(out)]) == 0
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
    assert main(["run", str(path), "--runs", str(out)]) == 0
    assert capsys.readouterr().out.count("done") == 6


def test_resume_after_kill_elsewhere_gives_the_same_rows_without_duplicates(tmp_path):
    budget, eval_freq = 4096, 256
    data = tiny_suite(n_timesteps=budget, eval_freq=eval_freq)
    path = write_suite(tmp_path, data)
    command = [sys.executable, "-m", "sb3_metarim.benchmark", "run", str(path), "--env", "sb3_metarim/CueMemory-v0"]
    command += ["--variant", "metarim_ppo"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    reference = tmp_path / "reference"
    subprocess.run([*command, "--runs", str(reference)], check=True, env=env, capture_output=True)
    expected = pd.read_csv(reference / "tiny/sb3_metarim-CueMemory-v0/metarim_ppo/seed0/eval.csv")["timesteps"].tolist()

    out = tmp_path / "killed"
    folder = out / "tiny/sb3_metarim-CueMemory-v0/metarim_ppo/seed0"
    process = subprocess.Popen([*command, "--runs", str(out)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
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
    # `list` says how far the interrupted run got: its checkpoint's step count, one of the evaluations'.
    listing = subprocess.run(
        [sys.executable, "-m", "sb3_metarim.benchmark", "list", *command[4:], "--runs", str(out)],
        check=True,
        env=env,
        capture_output=True,
        text=True,
    ).stdout
    at = re.fullmatch(rf"started  .*seed 0 \(checkpoint at (\d+) of {budget} steps\)\n", listing)
    assert at is not None, listing
    assert int(at.group(1)) in pd.read_csv(folder / "eval.csv")["timesteps"].tolist()

    # Resumed on "another machine": the working directory copied to another path, the same command run there.
    moved = tmp_path / "elsewhere"
    shutil.copytree(out, moved)
    shutil.rmtree(out)
    folder = moved / folder.relative_to(out)
    subprocess.run([*command, "--runs", str(moved)], check=True, env=env, capture_output=True)
    resumed = pd.read_csv(folder / "eval.csv")["timesteps"].tolist()
    assert resumed == expected, f"killed at {rows_at_kill} rows"
    assert len(resumed) == len(set(resumed))
    assert (folder / DONE_FILE).exists()
    assert len(__import__("json").loads((folder / "config.json").read_text())["starts"]) == 2


def test_until_stops_each_run_there_and_the_run_without_it_goes_on_as_if_never_stopped(tmp_path, capsys):
    path = write_suite(tmp_path, tiny_suite(n_timesteps=512, eval_freq=128))
    chosen = ["--env", "sb3_metarim/CueMemory-v0", "--variant", "metarim_ppo"]
    reference, out = tmp_path / "reference", tmp_path / "out"
    assert main(["run", str(path), *chosen, "--runs", str(reference)]) == 0
    expected = pd.read_csv(reference / "tiny/sb3_metarim-CueMemory-v0/metarim_ppo/seed0/eval.csv")
    folder = out / "tiny/sb3_metarim-CueMemory-v0/metarim_ppo/seed0"

    assert main(["run", str(path), *chosen, "--runs", str(out), "--until", "200"]) == 0
    # Two rollouts of 64 steps hold 128; the third ends at 192 and the fourth at 256, the first past 200.
    assert "stopped" in capsys.readouterr().out
    stopped = pd.read_csv(folder / "eval.csv")
    assert stopped["timesteps"].tolist() == [0, 128, 256]
    assert (folder / "checkpoint.zip").exists() and not (folder / DONE_FILE).exists()
    assert main(["run", str(path), *chosen, "--runs", str(out), "--until", "200"]) == 0
    assert "stopped    sb3_metarim/CueMemory-v0 / metarim_ppo / seed 0 at 256 of 512 steps" in capsys.readouterr().out
    assert pd.read_csv(folder / "eval.csv").equals(stopped)  # not trained again

    assert main(["run", str(path), *chosen, "--runs", str(out)]) == 0
    finished = pd.read_csv(folder / "eval.csv")
    assert (folder / DONE_FILE).exists()
    assert finished["timesteps"].tolist() == expected["timesteps"].tolist() == [0, 128, 256, 384, 512]


def test_grid_cost_reads_the_first_frames_of_the_started_runs(tmp_path):
    data = tiny_suite(n_timesteps=4096, eval_freq=128, seeds=(0, 1))
    path, runs, out = write_suite(tmp_path, data), tmp_path / "runs", tmp_path / "cost"
    chosen = ["--env", "sb3_metarim/CueMemory-v0", "--variant", "metarim_ppo", "ppo_lstm", "--seeds", "0"]
    assert main(["run", str(path), *chosen, "--runs", str(runs), "--until", "256"]) == 0
    repo = Path(__file__).resolve().parents[1]
    command = [sys.executable, "scripts/grid_cost.py", str(path), "--runs", str(runs), "--frames", "200", "--out", str(out)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=repo)
    assert result.returncode == 0, result.stderr[-3000:]
    cost = pd.read_csv(out / "cost.csv")
    assert sorted(cost["variant"]) == ["metarim_ppo", "ppo_lstm"] and set(cost["frames"]) == {256}
    for row in cost.to_dict("records"):
        evaluations = pd.read_csv(runs / f"tiny/sb3_metarim-CueMemory-v0/{row['variant']}/seed0/eval.csv")
        at = evaluations.set_index("timesteps").loc[256]
        assert row["wall_s"] == at["time_s"] and row["eval_return"] == at["return_mean"]
        assert row["frames_per_s"] == pytest.approx(256 / at["time_s"])
    report = (out / "cost.md").read_text()
    for fps in cost["frames_per_s"]:
        hours = 4096 / fps / 3600  # one run at the suite's budget; the grid: its 2 seeds
        assert f" | {cell(hours)} | {cell(2 * hours)} |\n" in report
    assert "core-hours** for the variants measured (not measured: ppo_framestack)." in report
    assert "Command: `python scripts/grid_cost.py" in report and (out / "curves.png").stat().st_size > 1000


@pytest.mark.parametrize("until", ["0", "-5", "1e5", "many"])
def test_until_must_be_a_positive_number_of_steps(tmp_path, capsys, until):
    with pytest.raises(SystemExit):
        main(["run", str(write_suite(tmp_path, tiny_suite())), "--until", until])
    assert f"argument --until: {until!r}: must be a positive whole number of steps" in capsys.readouterr().err


def fake_results(root: Path, suite_data: dict, curves: dict) -> None:
    """Write finished runs: ``curves[(env_id, variant, seed)] = [(timesteps, return), ...]``."""
    suite = suite_from_dict(suite_data)
    for spec in suite.runs():
        folder = spec.folder(root)
        folder.mkdir(parents=True)
        rows = [dict.fromkeys(EVAL_COLUMNS, 0) | {"timesteps": t, "return_mean": r} for t, r in curves[spec.key]]
        pd.DataFrame(rows, columns=EVAL_COLUMNS).to_csv(folder / "eval.csv", index=False)
        (folder / "config.json").write_text('{"versions": {"torch": "2.13.0"}, "python": "3.11"}')
        (folder / DONE_FILE).write_text(f'{{"timesteps": {curves[spec.key][-1][0]}}}')


def aggregate_cli(path: Path, tmp_path: Path, *options: str) -> int:
    """``aggregate`` of the suite at ``path``: runs in ``tmp_path/runs``, results in ``tmp_path``."""
    return main(["aggregate", str(path), "--runs", str(tmp_path / "runs"), "--results", str(tmp_path), *options])


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
    fake_results(tmp_path / "runs", data, curves)
    suite = suite_from_dict(data)
    report = aggregate.aggregate_suite(suite, tmp_path / "runs", tmp_path, command="test", candidate="a", baseline="b")
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


def test_aggregate_seeds_may_go_beyond_the_suites(tmp_path):
    # Seeds 2-3 run beyond a suite that lists 0-1: `aggregate --seeds` reads them; unfinished skipped.
    data = tiny_suite(seeds=(0, 1, 2, 3))
    curves = {spec.key: [(0, 0.0), (512, float(spec.seed))] for spec in suite_from_dict(data).runs()}
    fake_results(tmp_path / "runs", data, curves)
    (tmp_path / "runs/tiny/sb3_metarim-TMaze-v0/metarim_ppo/seed3" / DONE_FILE).unlink()
    path = write_suite(tmp_path, data | {"seeds": [0, 1]})
    assert aggregate_cli(path, tmp_path) == 0
    assert set(pd.read_csv(tmp_path / "tiny/runs.csv")["seed"]) == {0, 1}
    assert aggregate_cli(path, tmp_path, "--seeds", "0", "1", "2", "3") == 0
    runs = pd.read_csv(tmp_path / "tiny/runs.csv")
    tmaze = runs[(runs["env_id"] == "sb3_metarim/TMaze-v0") & (runs["variant"] == "metarim_ppo")]
    assert sorted(tmaze["seed"]) == [0, 1, 2]
    assert "--seeds 0 1 2 3" in (tmp_path / "tiny/summary.md").read_text()


def test_aggregate_checks_the_variant_the_cli_names(tmp_path):
    data = tiny_suite(seeds=(0,))
    fake_results(tmp_path / "runs", data, {spec.key: [(0, 0.0), (512, 1.0)] for spec in suite_from_dict(data).runs()})
    path = write_suite(tmp_path, data)
    assert aggregate_cli(path, tmp_path, "--candidate", "ppo_lstm", "--baseline", "metarim_ppo") == 0
    assert "## `ppo_lstm` against `metarim_ppo`" in (tmp_path / "tiny/summary.md").read_text()
    known = r"known: \['metarim_ppo', 'ppo_framestack', 'ppo_lstm'\]"
    with pytest.raises(ValueError, match=r"--candidate 'sticky9': not in the suite; " + known):
        aggregate_cli(path, tmp_path, "--candidate", "sticky9")


def test_aggregate_reproduces_from_the_committed_tables_alone(tmp_path, monkeypatch):
    for module in (stats, aggregate):  # fewer bootstrap draws: the same code, a tenth of the time
        monkeypatch.setattr(module, "BOOTSTRAP_REPS", 200)
    data = tiny_suite(seeds=(0, 1, 2))
    curves = {spec.key: [(0, 0.0), (256, 0.5 * spec.seed), (512, float(spec.seed))] for spec in suite_from_dict(data).runs()}
    fake_results(tmp_path / "runs", data, curves)
    path = write_suite(tmp_path, data)
    assert main(["aggregate", str(path), "--runs", str(tmp_path / "runs"), "--results", str(tmp_path / "a")]) == 0
    # Another clone: only the committed long tables, no run folder.
    (tmp_path / "b/tiny").mkdir(parents=True)
    for table in (store.EVALUATIONS_FILE, store.CONFIGS_FILE):
        shutil.copy(tmp_path / "a/tiny" / table, tmp_path / "b/tiny" / table)
    assert main(["aggregate", str(path), "--runs", str(tmp_path / "none"), "--results", str(tmp_path / "b")]) == 0
    for name in ("runs.csv", "summary.csv", store.EVALUATIONS_FILE, store.CONFIGS_FILE):
        assert (tmp_path / "a/tiny" / name).read_bytes() == (tmp_path / "b/tiny" / name).read_bytes(), name
    summaries = [(tmp_path / folder / "tiny/summary.md").read_text().split("Command:")[0] for folder in "ab"]
    assert summaries[0] == summaries[1]
    with pytest.raises(ValueError, match="no finished run"):
        main(["aggregate", str(path), "--runs", str(tmp_path / "none"), "--results", str(tmp_path / "c")])


def test_a_finished_run_folder_replaces_its_committed_rows_and_the_others_stay(tmp_path):
    data = tiny_suite(seeds=(0, 1, 2))
    suite = suite_from_dict(data)
    env_id, variant = "sb3_metarim/TMaze-v0", "metarim_ppo"
    fake_results(tmp_path / "first", data, {spec.key: [(0, 0.0), (512, 1.0)] for spec in suite.runs()})
    store.update(suite, tmp_path / "first", tmp_path / "results")
    # Later, elsewhere: seed 1 of one run again (another result), seed 2 of it unfinished.
    again = suite_from_dict(data | {"seeds": [1, 2]})
    fake_results(tmp_path / "second", data | {"seeds": [1, 2]}, {spec.key: [(0, 0.0), (512, 3.0)] for spec in again.runs()})
    for spec in again.runs():
        if spec.seed == 2:
            (spec.folder(tmp_path / "second") / DONE_FILE).unlink()
    tables = store.update(again, tmp_path / "second", tmp_path / "results")
    final = tables.evaluations[tables.evaluations["timesteps"] == 512].set_index(["env_id", "variant", "seed"])
    assert final.loc[(env_id, variant, 0), "return_mean"] == 1.0  # committed, no folder: kept
    assert final.loc[(env_id, variant, 1), "return_mean"] == 3.0  # replaced by its finished folder
    assert final.loc[(env_id, variant, 2), "return_mean"] == 1.0  # the unfinished folder does not count
    assert len(tables.evaluations) == 2 * len(suite.runs())
    assert store.read(tmp_path / "results/tiny").evaluations.shape == tables.evaluations.shape
    assert len(tables.configs) == len(suite.runs()) and set(tables.configs.columns) >= {"env_id", "variant", "seed", "done"}
    # In the grid's order; runs outside the grid (here seed 0, for the second suite) left out.
    in_grid = store.in_grid(tables.evaluations, again).drop_duplicates(store.KEYS)[store.KEYS]
    assert list(in_grid.itertuples(index=False, name=None)) == [spec.key for spec in again.runs()]


def write_progress(folder: Path, name: str, rows: list[tuple[int, float | None]]) -> None:
    """An SB3 ``progress.csv``: ``(total_timesteps, ep_rew_mean)`` rows (None: no episode ended yet), plus a loss."""
    frame = pd.DataFrame(
        {"time/total_timesteps": [t for t, _ in rows], "rollout/ep_rew_mean": [r for _, r in rows], "train/loss": 0.1}
    )
    frame.to_csv(folder / name, index=False)


def test_training_return_is_read_across_resumes(tmp_path):
    # Trained to 300, checkpointed at 200, killed, resumed from 200: the resumed log replaces the first one's 300.
    write_progress(tmp_path, "progress.csv", [(100, None), (200, 2.0), (300, 3.0)])
    write_progress(tmp_path, "progress_from200.csv", [(300, 5.0), (400, 6.0)])
    curve = training_log.training_curve(tmp_path)
    assert curve.to_dict("list") == {"timesteps": [200, 300, 400], "train_return": [2.0, 5.0, 6.0]}
    at = training_log.training_return_at(tmp_path, np.array([0.0, 250.0, 400.0, 500.0]))
    assert np.isnan(at[0]) and at[1:].tolist() == [3.5, 6.0, 6.0]
    assert np.isnan(training_log.training_return_at(tmp_path / "missing", np.array([1.0]))).all()


def test_aggregate_reports_training_returns_beside_the_evaluations(tmp_path):
    data = {
        "suite": "hand",
        "seeds": [0, 1],
        "envs": {
            "sb3_metarim/CueMemory-v0": {"n_timesteps": 200, "eval_freq": 100, "score_range": [0.0, 2.0], "threshold": 1.5}
        },
        "variants": {"a": {"algo": "metarim_ppo"}},
    }
    env_id = "sb3_metarim/CueMemory-v0"
    # Deterministic evaluations never reach 1.5; the sampling policy's training return does, in seed 1 only (at 200).
    fake_results(tmp_path / "runs", data, {(env_id, "a", seed): [(0, 0.0), (100, 0.5), (200, 1.0)] for seed in range(2)})
    for spec in suite_from_dict(data).runs():
        write_progress(spec.folder(tmp_path / "runs"), "progress.csv", [(50, 0.2), (100, 1.0), (200, 1.0 + spec.seed)])
    report = aggregate.aggregate_suite(
        suite_from_dict(data), tmp_path / "runs", tmp_path, command="test", candidate="a", baseline="b"
    )
    runs = pd.read_csv(tmp_path / "hand/runs.csv").set_index("seed")
    assert runs["reached"].tolist() == [0, 0]
    assert runs["train_reached"].tolist() == [0, 1] and runs.loc[1, "train_frames_to_threshold"] == 200
    # Training returns at the evaluation steps 100, 200 (none logged at 0): seed 0's scores 0.5, 0.5 -> AUC 0.5.
    assert runs.loc[0, "train_auc"] == pytest.approx(0.5) and runs.loc[0, "train_final_return"] == 1.0
    summary = pd.read_csv(tmp_path / "hand/summary.csv")
    assert summary.loc[0, "train_runs"] == 2 and summary.loc[0, "train_reached"] == 1
    text = report.read_text()
    assert "## Training returns (the sampling policy)" in text and "| 2 | 1.500 [1.000, 2.000] |" in text
    assert (tmp_path / "hand/training.png").stat().st_size > 0


def test_iqm_interval_of_constant_values_is_exact():
    assert stats.iqm_interval(np.full(5, 0.7)) == pytest.approx((0.7, 0.7, 0.7))


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
    wrapper = [{"sb3_metarim.common.wrappers.PrevActionRewardWrapper": {"first_step": False}}]
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
    assert main(["run", str(write_suite(tmp_path, data)), "--runs", str(out)]) == 0
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


# The harness's paper features: MiniGrid success, zero-shot transfer, fine-tuning (init_from), the paper's suites.

GRID_WRAPPERS = ["sb3_metarim.envs.minigrid.MissionTokenWrapper", "sb3_metarim.envs.minigrid.GridIdsWrapper"]
TINY_GRID_EXTRACTOR = {
    "features_extractor_class": "sb3_metarim.common.torch_layers.MiniGridFeaturesExtractor",
    "features_extractor_kwargs": {"image_features_dim": 8, "word_embedding_dim": 4, "mission_features_dim": 8},
}


def tiny_grid_suite(n_timesteps: int = 64, transfer: bool = True) -> dict:
    """GoToLocal in a 5x5 room (25 steps at most) with transfer to itself and a 6x6 room."""
    env = {
        "n_timesteps": n_timesteps,
        "eval_freq": 32,
        "score_range": [0.0, 1.0],
        "threshold": 0.8,
        "n_eval_episodes": 2,
        "n_eval_envs": 2,
    }
    if transfer:
        env["transfer_envs"] = {
            "easy": {"env_id": "BabyAI-GoToLocalS5N2-v0"},
            "harder": {"env_id": "BabyAI-GoToLocal-v0", "env_kwargs": {"room_size": 6, "num_dists": 3}},
        }
        env["transfer_episodes"] = 3
    return {
        "suite": "grid",
        "seeds": [0],
        "hyperparams": {
            "n_envs": 2,
            "n_steps": 16,
            "batch_size": 32,
            "n_epochs": 1,
            "env_wrapper": GRID_WRAPPERS,
            "policy_kwargs": TINY_GRID_EXTRACTOR,
        },
        "envs": {"BabyAI-GoToLocalS5N2-v0": env},
        "variants": {
            "metarim_ppo": {"algo": "metarim_ppo", "policy": "MultiInputPolicy", "hyperparams": {"policy_kwargs": TINY_CORE}}
        },
    }


def test_minigrid_success_is_a_positive_reward_at_termination():
    import gymnasium as gym

    from sb3_metarim.envs.minigrid import SuccessInfoWrapper

    # Empty-5x5: the agent starts at (1, 1) facing right, the goal is at (3, 3).
    env = SuccessInfoWrapper(gym.make("MiniGrid-Empty-5x5-v0"))
    env.reset(seed=0)
    forward, right = env.unwrapped.actions.forward, env.unwrapped.actions.right
    for action in (forward, forward, right, forward):
        *_, terminated, truncated, info = env.step(action)
        assert not (terminated or truncated) and "is_success" not in info
    _, reward, terminated, _, info = env.step(forward)
    assert terminated and reward == pytest.approx(1 - 0.9 * 5 / 100) and info["is_success"] is True
    # Out of time: truncated, no reward, not a success.
    env = SuccessInfoWrapper(gym.make("MiniGrid-Empty-5x5-v0", max_steps=2))
    env.reset(seed=0)
    env.step(right)
    _, reward, terminated, truncated, info = env.step(right)
    assert truncated and not terminated and reward == 0 and info["is_success"] is False


def test_transfer_is_evaluated_at_each_evaluation_and_part_of_done(tmp_path, capsys):
    data = tiny_grid_suite()
    path = write_suite(tmp_path, data)
    out = tmp_path / "out"
    assert main(["run", str(path), "--runs", str(out)]) == 0
    capsys.readouterr()
    folder = out / "grid/BabyAI-GoToLocalS5N2-v0/metarim_ppo/seed0"
    evals = pd.read_csv(folder / "eval.csv")
    assert evals["success_rate"].between(0, 1).all()  # MiniGrid's success, from SuccessInfoWrapper
    transfer = pd.read_csv(folder / "transfer.csv")
    assert list(transfer.columns) == list(runner.TRANSFER_COLUMNS)
    assert transfer["timesteps"].tolist() == [0, 0, 32, 32, 64, 64] == [t for t in evals["timesteps"] for _ in (0, 1)]
    assert transfer["level"].tolist() == ["easy", "harder"] * 3 and (transfer["episodes"] == 3).all()
    assert transfer["success_rate"].between(0, 1).all() and transfer["return_mean"].between(0, 1).all()
    # A run finished before transfer_envs was added gets its transfer from model.zip on the next run.
    (folder / "transfer.csv").write_text(",".join(runner.TRANSFER_COLUMNS) + "\n64,easy,x,0,0,0,1,3\n")
    assert main(["list", str(path), "--runs", str(out)]) == 0
    assert capsys.readouterr().out.startswith("transfer ")
    assert main(["run", str(path), "--runs", str(out)]) == 0
    assert "transfer" in capsys.readouterr().out
    again = pd.read_csv(folder / "transfer.csv")
    assert again["level"].tolist() == ["easy", "harder"] and (again["timesteps"] == 64).all()
    assert again[["return_mean", "success_rate"]].to_numpy() == pytest.approx(
        transfer.iloc[-2:][["return_mean", "success_rate"]].to_numpy()
    )
    assert main(["list", str(path), "--runs", str(out)]) == 0
    assert capsys.readouterr().out.startswith("done ")


def test_transfer_table_matches_a_hand_computed_case(tmp_path):
    data = tiny_grid_suite(transfer=True)
    data["seeds"] = [0, 1, 2, 3]
    data["variants"]["ppo_lstm"] = {"algo": "ppo_lstm", "policy": "MultiInputLstmPolicy"}
    suite = suite_from_dict(data)
    levels = {"easy": "BabyAI-GoToLocalS5N2-v0", "harder": "BabyAI-GoToLocal-v0"}
    for spec in suite.runs():
        folder = spec.folder(tmp_path / "runs")
        folder.mkdir(parents=True)
        (folder / DONE_FILE).write_text('{"timesteps": 64}')
        (folder / "config.json").write_text("{}")
        pd.DataFrame([dict.fromkeys(EVAL_COLUMNS, 0) | {"timesteps": 64, "return_mean": 0.5}]).to_csv(
            folder / "eval.csv", index=False
        )
        rows = []
        for level, env_id in levels.items():
            # An early evaluation that the table must ignore, then the last one.
            rows.append({"timesteps": 0, "level": level, "env_id": env_id, "return_mean": 9.0, "success_rate": 1.0})
            final = 0.1 * (spec.seed + 1) if spec.variant.name == "metarim_ppo" else 0.2
            success = [0.0, 0.5, 0.5, 1.0][spec.seed] if level == "easy" else 0.25
            rows.append({"timesteps": 64, "level": level, "env_id": env_id, "return_mean": final, "success_rate": success})
        pd.DataFrame(rows).reindex(columns=runner.TRANSFER_COLUMNS, fill_value=0).to_csv(folder / "transfer.csv", index=False)
    report = aggregate.aggregate_suite(suite, tmp_path / "runs", tmp_path, command="test")
    table = pd.read_csv(tmp_path / "grid/transfer.csv").set_index(["variant", "level"])
    # metarim_ppo: returns 0.1, 0.2, 0.3, 0.4 -> IQM 0.25; success on easy 0, 0.5, 0.5, 1 -> IQM 0.5.
    assert table.loc[("metarim_ppo", "easy"), "return"] == pytest.approx(0.25)
    assert table.loc[("metarim_ppo", "easy"), "success"] == pytest.approx(0.5)
    assert table.loc[("metarim_ppo", "harder"), "success"] == pytest.approx(0.25)
    assert table.loc[("ppo_lstm", "harder"), ["return", "return_low", "return_high"]].tolist() == pytest.approx([0.2] * 3)
    assert (table["runs"] == 4).all() and (table["timesteps"] == 64).all()
    text = report.read_text()
    assert "## Zero-shot transfer: trained on BabyAI-GoToLocalS5N2-v0" in text
    assert "| ppo_lstm | harder | BabyAI-GoToLocal-v0 | 4 | 0.200 [0.200, 0.200] | 0.250 [0.250, 0.250] |" in text


def fine_tune_suites(tmp_path: Path) -> tuple[Path, Path]:
    """A tiny pretraining suite on CueMemory (delay 2) and a fine-tuning one (delay 4) that starts from it."""
    env = {
        "n_timesteps": 128,
        "eval_freq": 64,
        "score_range": [0.5, 1.0],
        "threshold": 0.9,
        "n_eval_episodes": 2,
        "n_eval_envs": 2,
    }
    base = {"n_envs": 2, "n_steps": 32, "batch_size": 32, "n_epochs": 1}
    pre = {
        "suite": "pre",
        "seeds": [0],
        "hyperparams": base,
        "envs": {"sb3_metarim/CueMemory-v0": {**env, "env_kwargs": {"delay": 2}}},
        "variants": {"metarim_ppo": {"algo": "metarim_ppo", "hyperparams": {"policy_kwargs": TINY_CORE, "slow_interval": 1}}},
    }
    fine = {
        "suite": "fine",
        "seeds": [0],
        "hyperparams": {**base, "learning_rate": 0.0005},
        "envs": {"sb3_metarim/CueMemory-v0": {**env, "env_kwargs": {"delay": 4}}},
        "variants": {
            "scratch": {"algo": "metarim_ppo", "hyperparams": {"policy_kwargs": TINY_CORE}},
            "pretrained": {"algo": "metarim_ppo", "init_from": "pre/sb3_metarim-CueMemory-v0/metarim_ppo/seed{seed}"},
        },
    }
    return write_suite(tmp_path / "p", pre), write_suite(tmp_path / "f", fine)


def test_init_from_waits_then_fine_tunes_the_pretrained_model(tmp_path, capsys):
    (tmp_path / "p").mkdir()
    (tmp_path / "f").mkdir()
    pre, fine = fine_tune_suites(tmp_path)
    out = tmp_path / "out"
    pretrained = out / "fine/sb3_metarim-CueMemory-v0/pretrained/seed0"
    assert main(["list", str(fine), "--runs", str(out)]) == 0
    assert "waiting  sb3_metarim/CueMemory-v0 / pretrained / seed 0 (waits for" in capsys.readouterr().out
    assert main(["run", str(fine), "--runs", str(out)]) == 2
    printed = capsys.readouterr().out
    assert "waiting" in printed and "pre/sb3_metarim-CueMemory-v0/metarim_ppo/seed0, not finished yet" in printed
    assert not pretrained.exists() and (out / "fine/sb3_metarim-CueMemory-v0/scratch/seed0" / DONE_FILE).exists()
    assert main(["run", str(pre), "--runs", str(out)]) == 0
    assert main(["run", str(fine), "--runs", str(out)]) == 0
    assert "fine-tuned" in capsys.readouterr().out
    config = __import__("json").loads((pretrained / "config.json").read_text())
    assert config["init_from"].endswith("pre/sb3_metarim-CueMemory-v0/metarim_ppo/seed0")
    assert pd.read_csv(pretrained / "eval.csv")["timesteps"].tolist() == [0, 64, 128]  # counted from 0


def test_init_from_a_finished_run_without_its_model_fails_saying_why(tmp_path, capsys):
    """A clone holds finished runs' results but not their models (git ignores *.zip): say so, train nothing."""
    (tmp_path / "p").mkdir()
    (tmp_path / "f").mkdir()
    pre, fine = fine_tune_suites(tmp_path)
    out = tmp_path / "out"
    assert main(["run", str(pre), "--runs", str(out)]) == 0
    (out / "pre/sb3_metarim-CueMemory-v0/metarim_ppo/seed0/model.zip").unlink()
    assert main(["run", str(fine), "--runs", str(out), "--variant", "pretrained"]) == 1
    error = capsys.readouterr().err
    assert "FileNotFoundError: init_from='pre/sb3_metarim-CueMemory-v0/metarim_ppo/seed{seed}'" in error
    assert "is finished (done.json) but its model.zip is not here" in error
    assert not (out / "fine/sb3_metarim-CueMemory-v0/pretrained/seed0/eval.csv").exists()


def test_load_pretrained_keeps_weights_and_both_optimizers(tmp_path):
    import copy

    import torch as th

    from sb3_metarim.meta_rim_ppo.meta_rim_ppo import MetaRIMPPO

    (tmp_path / "p").mkdir()
    (tmp_path / "f").mkdir()
    pre, fine = fine_tune_suites(tmp_path)
    spec = next(run for run in load_suite(pre).runs())
    env = runner.make_env(spec, train=True)
    model = runner.build_model(spec, MetaRIMPPO, env, "cpu", 0)
    model.learn(128)
    optimizers = copy.deepcopy((model.policy.optimizer.state_dict(), model.slow_optimizer.state_dict()))
    weights = copy.deepcopy(model.policy.state_dict())
    model.save(tmp_path / "model.zip")
    assert optimizers[1]["state"], "the slow phase ran: its optimizer has moments"

    spec = next(run for run in load_suite(fine).runs() if run.variant.name == "pretrained")
    loaded = runner.load_pretrained(spec, MetaRIMPPO, tmp_path / "model.zip", runner.make_env(spec, train=True), "cpu", 0)
    assert loaded.num_timesteps == 0 and loaded.learning_rate == 0.0005  # the fine-tuning run's hyperparameters
    for name, tensor in weights.items():
        assert th.equal(loaded.policy.state_dict()[name], tensor), name
    for before, after in zip(
        optimizers, (loaded.policy.optimizer.state_dict(), loaded.slow_optimizer.state_dict()), strict=True
    ):
        assert before["state"].keys() == after["state"].keys()
        for index, state in before["state"].items():
            for key, value in state.items():
                assert th.equal(after["state"][index][key], value), (index, key)


@pytest.mark.parametrize("name", ["paper_full", "paper_full_curriculum"])
def test_the_full_scale_paper_suites_use_babyai_settings_and_chain(name):
    suite = load_suite(name)
    runs = suite.runs()
    babyai_ppo = dict(n_envs=64, n_steps=40, batch_size=1280, n_epochs=4, learning_rate=1e-4, gamma=0.99, gae_lambda=0.99)
    for run in runs:
        assert {key: run.hyperparams[key] for key in babyai_ppo} == babyai_ppo, run.describe()
        assert run.hyperparams["normalize_advantage"] is False
        wrappers = env_wrappers(run.hyperparams["env_wrapper"])
        assert [wrapper.__name__ for wrapper, _ in wrappers] == ["MissionTokenWrapper", "GridIdsWrapper", "ScaleReward"]
        assert wrappers[-1][1] == {"scale": 20}
        assert run.hyperparams["policy_kwargs"]["features_extractor_kwargs"] == {"mission_conditioning": "film"}
    if name == "paper_full":
        assert {run.variant.name for run in runs} == {variant.name for variant in load_suite("paper").variants}
        assert [env.env_id for env in suite.envs] == ["BabyAI-GoToLocal-v0"]
    else:
        pretrained = {(run.env.env_id, run.variant.name, run.seed) for run in load_suite("paper_full").runs()}
        chained = [run for run in runs if run.variant.init_from]
        assert {run.variant.algo for run in chained} == {"metarim_ppo", "ppo_lstm"}
        for run in chained:
            suite_name, env_id, variant, seed = run.init_folder(Path("out")).relative_to("out").parts
            assert suite_name == "paper_full" and (env_id, variant, int(seed.removeprefix("seed"))) in pretrained


@pytest.mark.parametrize("name", ["paper", "paper_curriculum", "paper_film", "paper_long"])
def test_the_paper_suites_load_and_chain(name):
    suite = load_suite(name)
    runs = suite.runs()
    assert {run.variant.algo for run in runs} <= set(ALGORITHMS) and len(suite.seeds) >= 3
    for run in runs:
        wrappers = [wrapper.__name__ for wrapper, _ in env_wrappers(run.hyperparams.get("env_wrapper"))]
        assert wrappers == ["MissionTokenWrapper", "GridIdsWrapper"], run.describe()
    if name == "paper":
        assert {run.variant.name for run in runs} == {"metarim_ppo_paper", "rim_ppo_paper", "metalstm_ppo", "ppo_lstm", "ppo"}
        assert suite.env("BabyAI-GoToLocal-v0").n_timesteps >= 400_000
        assert {"MiniGrid-Dynamic-Obstacles-8x8-v0", "MiniGrid-DoorKey-5x5-v0"} <= {env.env_id for env in suite.envs}
        levels = suite.env("BabyAI-GoToLocalS5N2-v0").transfer_envs
        assert list(levels) == ["easy", "medium", "difficult"]
        assert levels["difficult"]["env_id"] == "BabyAI-GoToLocal-v0"
    elif name in ("paper_film", "paper_long"):
        # The paper suite's GoToLocal entry with one change: the mission conditions the grid (FiLM), or 4x the budget.
        paper = load_suite("paper")
        assert [env.env_id for env in suite.envs] == ["BabyAI-GoToLocal-v0"]
        env, paper_env = suite.env("BabyAI-GoToLocal-v0"), paper.env("BabyAI-GoToLocal-v0")
        if name == "paper_long":
            assert (env.n_timesteps, env.eval_freq) == (2_000_000, 50_000)
            env = dataclasses.replace(env, n_timesteps=paper_env.n_timesteps, eval_freq=paper_env.eval_freq)
        assert env == paper_env
        paper_runs = {(run.env.env_id, run.variant.name, run.seed): run for run in paper.runs()}
        for run in runs:
            hyperparams = run.hyperparams
            if name == "paper_film":
                extractor_kwargs = hyperparams["policy_kwargs"].pop("features_extractor_kwargs")
                assert extractor_kwargs == {"mission_conditioning": "film"}
            paper_run = paper_runs[(run.env.env_id, run.variant.name, run.seed)]
            assert hyperparams == paper_run.hyperparams and run.variant == paper_run.variant
    else:
        paper = load_suite("paper")
        chained = [run for run in runs if run.variant.init_from]
        assert {run.variant.algo for run in chained} == {"metarim_ppo", "ppo_lstm"}
        for run in chained:
            source = run.init_folder(Path("out"))
            same_algo = {variant.name for variant in paper.variants if variant.algo == run.variant.algo}
            suite_name, env_id, variant = source.relative_to("out").parts[:3]
            assert (suite_name, env_id) == ("paper", "BabyAI-GoToLocal-v0") and variant in same_algo
            assert source.name == f"seed{run.seed}" and run.seed in paper.seeds
        assert {run.variant.algo for run in runs if not run.variant.init_from} == {"metarim_ppo", "ppo_lstm"}

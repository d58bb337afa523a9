"""
Faults with real processes: a tuning worker and a training run killed with SIGKILL (nothing can run in them: no
handler, no finally), then the study or the run continued. What may be lost: the killed trial's progress (it runs
again, same parameters) and the steps since the last checkpoint.
"""

import os
import signal
import subprocess
import sys
import textwrap
import time
import zipfile
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from sb3_metarim import MetaRIMPPO
from sb3_metarim.common.checkpoints import continue_learning, latest_checkpoint
from sb3_metarim.zoo.tuning import RETRY_OF_ATTR, RETRY_REASON_ATTR, WORKER_DIED, open_storage

from .test_zoo import CUE, CUE_NAME, start_train, train

TIMEOUT = 60
ENV = os.environ | {"OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}

WORKER = textwrap.dedent(
    """
    import sys, time, optuna
    from sb3_metarim.zoo.tuning import open_storage, record_failures
    url, trial_seconds, n_trials = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
    storage = open_storage(url, heartbeat_interval=1, grace_period=2)
    study = optuna.create_study(storage=storage, study_name="s", direction="maximize", load_if_exists=True)
    def objective(trial):
        x = trial.suggest_float("x", 0.0, 1.0)
        print("started", trial.number, flush=True)
        time.sleep(trial_seconds)
        return x
    study.optimize(record_failures(objective), n_trials=n_trials)
    print("done", flush=True)
    """
)


def run_worker(url: str, trial_seconds: float, n_trials: int) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", WORKER, url, str(trial_seconds), str(n_trials)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=ENV,
    )


def wait_line(process: subprocess.Popen, start: str) -> None:
    """Read ``process``'s output until a line starts with ``start``."""
    seen = []
    for line in process.stdout:
        seen.append(line)
        if line.startswith(start):
            return
    pytest.fail(f"no line {start!r} in:\n{''.join(seen)[-3000:]}")


def wait_for(condition, what: str, timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.fixture(params=["journal", "sqlite", "postgresql"])
def storage_url(request, tmp_path):
    if request.param == "journal":
        return str(tmp_path / "study.log")
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'study.db'}"
    return request.getfixturevalue("postgres_url")


def test_a_sigkilled_workers_trial_is_failed_and_run_again_with_its_parameters(storage_url):
    worker = run_worker(storage_url, trial_seconds=60, n_trials=1)
    wait_line(worker, "started 0")
    # Past the first heartbeat: Optuna's RDBStorage never takes a trial without one for dead (see the README).
    time.sleep(1.5)
    worker.send_signal(signal.SIGKILL)
    worker.wait(timeout=TIMEOUT)
    study = optuna.load_study(study_name="s", storage=open_storage(storage_url, heartbeat_interval=None))
    assert study.trials[0].state == TrialState.RUNNING  # nobody could record anything

    time.sleep(2.5)  # the grace period
    survivor = run_worker(storage_url, trial_seconds=0, n_trials=1)
    output = survivor.communicate(timeout=TIMEOUT)[0]
    assert survivor.returncode == 0, output
    trials = optuna.load_study(study_name="s", storage=open_storage(storage_url, heartbeat_interval=None)).trials
    assert [trial.state for trial in trials] == [TrialState.FAIL, TrialState.COMPLETE]
    retry = trials[1]
    assert retry.params == trials[0].params and retry.value == trials[0].params["x"]
    assert retry.user_attrs[RETRY_OF_ATTR] == 0 and retry.user_attrs[RETRY_REASON_ATTR] == WORKER_DIED


def test_a_live_workers_trial_is_not_taken_for_dead(tmp_path):
    """A trial longer than the grace period keeps its heartbeat: another worker leaves it alone."""
    url = str(tmp_path / "study.log")
    slow = run_worker(url, trial_seconds=4, n_trials=1)
    wait_line(slow, "started 0")
    time.sleep(2.5)
    other = run_worker(url, trial_seconds=0, n_trials=1)
    assert other.communicate(timeout=TIMEOUT)[0].count("\nstarted") == 1
    slow.communicate(timeout=TIMEOUT)
    trials = optuna.load_study(study_name="s", storage=open_storage(url, heartbeat_interval=None)).trials
    assert [trial.state for trial in trials] == [TrialState.COMPLETE, TrialState.COMPLETE]
    assert not any(RETRY_OF_ATTR in trial.user_attrs for trial in trials)


def test_the_cli_study_reruns_a_sigkilled_workers_trial(tmp_path):
    """sb3_metarim.zoo.train --optimize with a short grace period: kill -9 mid-trial, run again, the trial is retried."""
    options = ["--algo", "metarim_ppo", "--env", CUE, "--optimize", "--n-evaluations", "1", "--eval-episodes", "2"]
    options += ["-params", "n_envs:2", "--heartbeat-interval", "1", "--grace-period", "2"]
    worker = start_train(*options, "-n", "100000", "--n-trials", "1", cwd=tmp_path)
    storage = str(tmp_path / "logs" / "metarim_ppo" / f"{CUE_NAME}_optuna.log")

    def running():
        if not Path(storage).exists():
            return False
        try:
            study = optuna.load_study(study_name=f"metarim_ppo_{CUE}", storage=open_storage(storage, heartbeat_interval=None))
        except KeyError:  # the journal file exists before the study is written into it
            return False
        return any(trial.state == TrialState.RUNNING and trial.params for trial in study.trials)

    wait_for(running, "a running trial with its parameters sampled")
    worker.send_signal(signal.SIGKILL)
    worker.communicate(timeout=TIMEOUT)
    time.sleep(2.5)
    train(*options, "-n", "64", "--n-trials", "1", cwd=tmp_path)
    study = optuna.load_study(study_name=f"metarim_ppo_{CUE}", storage=open_storage(storage, heartbeat_interval=None))
    assert [trial.state for trial in study.trials] == [TrialState.FAIL, TrialState.COMPLETE]
    # The parameters sampled before the kill are kept (the rest, not sampled yet, are sampled by the retry).
    killed, retry = study.trials
    assert killed.params and killed.params.items() <= retry.params.items() and retry.user_attrs[RETRY_OF_ATTR] == 0


TRAINER = textwrap.dedent(
    """
    import sys
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize
    from sb3_metarim import MetaRIMPPO
    from sb3_metarim.common.checkpoints import ResumableCheckpointCallback, continue_learning, latest_checkpoint
    folder, total = sys.argv[1], int(sys.argv[2])
    env = VecNormalize(make_vec_env("sb3_metarim/CueMemory-v0", n_envs=2, seed=0))
    checkpoint = latest_checkpoint(folder)
    core = dict(num_units=4, top_k=2, unit_size=8, input_key_size=8, input_value_size=8, comm_key_size=8,
                comm_value_size=8)
    if checkpoint is None:
        model = MetaRIMPPO("MlpPolicy", env, n_steps=16, batch_size=32, n_epochs=1, slow_interval=1, seed=0,
                           policy_kwargs=core)
    else:
        model = checkpoint.load(MetaRIMPPO, env=env)
        print("resumed", model.num_timesteps, flush=True)
    continue_learning(model, total, callback=ResumableCheckpointCallback(32, folder))
    print("finished", model.num_timesteps, flush=True)
    """
)


def test_training_killed_mid_run_resumes_from_its_last_checkpoint_to_its_budget(tmp_path):
    total, interval = 100_000, 64  # a checkpoint every 32 vec-env steps = 64 timesteps
    trainer = subprocess.Popen(
        [sys.executable, "-c", TRAINER, str(tmp_path), str(total)], stdout=subprocess.PIPE, text=True, env=ENV
    )
    wait_for(lambda: (found := latest_checkpoint(tmp_path)) is not None and found.num_timesteps >= 3 * interval, "checkpoints")
    trainer.send_signal(signal.SIGKILL)
    trainer.wait(timeout=TIMEOUT)
    checkpoint = latest_checkpoint(tmp_path)
    assert checkpoint.vecnormalize is not None and checkpoint.rng is not None
    with zipfile.ZipFile(checkpoint.path) as archive:  # both optimizers are saved
        assert {"policy.optimizer.pth", "slow_optimizer.pth"} <= set(archive.namelist())

    # Resume in this process, to a small total budget: num_timesteps continues from the checkpoint.
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize

    env = VecNormalize(make_vec_env(CUE, n_envs=2, seed=0))
    model = checkpoint.load(MetaRIMPPO, env=env)
    assert model.num_timesteps == checkpoint.num_timesteps
    assert model.slow_optimizer.state_dict()["state"], "the slow optimizer's moments were restored"
    assert env.obs_rms.count > 1  # VecNormalize's statistics restored
    budget = checkpoint.num_timesteps + 2 * interval
    continue_learning(model, budget)
    assert model.num_timesteps == budget
    continue_learning(model, budget)  # spent: nothing more
    assert model.num_timesteps == budget


def test_cli_training_killed_mid_run_resumes_with_resume(tmp_path):
    options = ["--algo", "metarim_ppo", "--env", CUE, "--eval-freq", "-1", "--seed", "0", "--save-freq", "64"]
    options += ["-params", "n_envs:2", "n_steps:16", "batch_size:32", "n_epochs:1", "normalize:True"]
    worker = start_train(*options, "-n", "100000", cwd=tmp_path)
    run = tmp_path / "logs" / "metarim_ppo" / f"{CUE_NAME}_1"
    wait_for(lambda: (checkpoint := latest_checkpoint(run)) is not None and checkpoint.num_timesteps >= 192, "checkpoints")
    worker.send_signal(signal.SIGKILL)
    worker.communicate(timeout=TIMEOUT)
    killed_at = latest_checkpoint(run)
    assert killed_at.vecnormalize is not None
    monitor_lines = sum(len(path.read_text().splitlines()) for path in run.glob("*.monitor.csv"))

    budget = killed_at.num_timesteps + 64
    result = train(*options, "-n", str(budget), "--resume", cwd=tmp_path)
    assert f"Resuming {run.relative_to(tmp_path)} from {killed_at.path.name}" in result.stdout
    assert not (tmp_path / "logs" / "metarim_ppo" / f"{CUE_NAME}_2").exists()  # the same run folder
    model = MetaRIMPPO.load(run / f"{CUE_NAME}.zip")
    assert model.num_timesteps == budget
    assert sum(len(path.read_text().splitlines()) for path in run.glob("*.monitor.csv")) >= monitor_lines  # appended


def test_resume_without_checkpoints_starts_a_new_run_and_needs_save_freq(tmp_path):
    options = ["--algo", "metarim_ppo", "--env", CUE, "--eval-freq", "-1", "-params", "n_envs:2", "n_steps:16"]
    result = train(*options, "-n", "32", "--resume", cwd=tmp_path, check=False)
    assert result.returncode != 0 and "--resume with --save-freq -1" in result.stderr
    result = train(*options, "-n", "32", "--resume", "--save-freq", "32", cwd=tmp_path)
    assert "no checkpoint under" in result.stdout
    assert MetaRIMPPO.load(tmp_path / "logs" / "metarim_ppo" / f"{CUE_NAME}_1" / f"{CUE_NAME}.zip").num_timesteps == 32


def test_continue_learning_counts_to_the_budget(cue_env, tmp_path):
    model = MetaRIMPPO("MlpPolicy", cue_env, n_steps=8, batch_size=16, n_epochs=1)
    continue_learning(model, 32)
    assert model.num_timesteps == 32
    continue_learning(model, 64)
    assert model.num_timesteps == 64

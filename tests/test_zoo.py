"""
rl-zoo3 training and Optuna tuning of our algorithms, through the real CLIs (``python -m sb3_metarim.zoo.train`` /
``.enjoy`` in subprocesses), real Optuna storages (journal files, PostgreSQL) and tiny budgets.

Studies are kept small and fast with Optuna's own ``enqueue_trial``: the tests enqueue trials whose rollout
and core are small (``SMALL_TRIAL``); the other parameters are sampled as usual.
"""

import copy
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import optuna
import pytest
import yaml
from optuna.trial import TrialState
from rl_zoo3 import ALGOS
from rl_zoo3.hyperparams_opt import HYPERPARAMS_SAMPLER
from sqlalchemy.engine import make_url
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.monitor import Monitor

from sb3_metarim import GRUPPO, RIMPPO, MetaLSTMPPO, MetaRIMPPO, MetODS, MetODSConfig, MetODSPPO
from sb3_metarim.common.callbacks import TrialLogger
from sb3_metarim.common.torch_layers import MiniGridFeaturesExtractor
from sb3_metarim.cores.rim import RIM
from sb3_metarim.zoo.experiment import ZOO_CONFIGS, ZooExperimentManager, experiment_manager, make_objective, register
from sb3_metarim.zoo.tuning import (
    ERROR_ATTR,
    INTERRUPTED_ATTR,
    RETRY_OF_ATTR,
    base_policy_kwargs,
    masked_storage,
    open_storage,
    record_failures,
    sample_metarim_params,
    storage_without_password,
    write_study_report,
)

from .conftest import POSTGRES_PASSWORD

REPO = Path(__file__).resolve().parents[1]
CUE = "sb3_metarim/CueMemory-v0"
CUE_NAME = "sb3_metarim-CueMemory-v0"
DOORKEY = "MiniGrid-DoorKey-5x5-v0"
CLASSES = {"metarim_ppo": MetaRIMPPO, "rim_ppo": RIMPPO, "metalstm_ppo": MetaLSTMPPO, "gru_ppo": GRUPPO, "ppo_lstm": None}
# Enqueued in the test studies: 32-step rollouts, 4 epochs, a 4 x 16 core (keys outside an algorithm's space unused).
SMALL_TRIAL = dict(n_steps_pow=5, batch_size_pow=6, n_epochs=4, num_units=4, unit_size=16, fast_span=8, slow_interval=1)
# CueMemory from the configs' `default` entry, 2 envs, one evaluation of 2 episodes per trial, 96 steps per trial
# (3 rollouts of 32 steps per env: under a second) or, to be caught mid-trial, LONG_TRIAL steps (a few seconds).
OPTIMIZE = ["--env", CUE, "--optimize", "--n-evaluations", "1", "--eval-episodes", "2", "-params", "n_envs:2"]
SHORT_TRIAL = ["-n", "96"]
LONG_TRIAL = ["-n", "1280"]
TIMEOUT = 240


def cli(module: str, *args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    """Run ``python -m <module> <args>`` (one torch thread) in ``cwd``; with ``check``, fail on a non-zero exit."""
    command = [sys.executable, "-m", module, *args]
    result = subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT, env=os.environ | {"OMP_NUM_THREADS": "1"}
    )
    if check and result.returncode != 0:
        pytest.fail(f"{' '.join(command)} exited {result.returncode}:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}")
    return result


def train(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    return cli("sb3_metarim.zoo.train", "--num-threads", "1", "-f", "logs", *args, cwd=cwd, check=check)


def start_train(*args: str, cwd: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "sb3_metarim.zoo.train", "--num-threads", "1", "-f", "logs", *args]
    return subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def small_study(storage: str, name: str, n_trials: int) -> optuna.Study:
    """Create the study ``name`` in ``storage`` with ``n_trials`` small trials enqueued."""
    study = optuna.create_study(storage=open_storage(storage), study_name=name, direction="maximize", load_if_exists=True)
    for _ in range(n_trials):
        study.enqueue_trial(SMALL_TRIAL)
    return study


def finished(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return [trial for trial in study.get_trials() if trial.state.is_finished()]


def load_config(algo: str) -> dict:
    return yaml.safe_load((ZOO_CONFIGS / f"{algo}.yml").read_text())


def test_configs_match_across_algorithms():
    """The five configs hold the same envs and settings; they differ only in each algorithm's own keys."""
    own_keys = {"policy", "meta", "fast_span", "slow_interval", "slow_n_epochs", "slow_learning_rate", "slow_parameters"}
    core_keys = {"num_units", "top_k", "unit_size", "dense_size", "lstm_hidden_size"}
    configs = {algo: load_config(algo) for algo in CLASSES}
    envs = {algo: sorted(key for key in config if not key.startswith(".")) for algo, config in configs.items()}
    required = {"BabyAI-GoToLocal-v0", "BabyAI-PickupLoc-v0", "MiniGrid-Dynamic-Obstacles-8x8-v0", DOORKEY, "default"}
    assert required <= set(envs["metarim_ppo"]) and any("MultiRoom" in env for env in envs["metarim_ppo"])
    assert all(algo_envs == envs["metarim_ppo"] for algo_envs in envs.values())
    for env in envs["metarim_ppo"]:
        shared = []
        for config in configs.values():
            entry = {key: value for key, value in copy.deepcopy(config[env]).items() if key not in own_keys}
            core = {key: entry["policy_kwargs"].pop(key) for key in core_keys if key in entry["policy_kwargs"]}
            modules = core.get("num_units", 0) * core.get("unit_size", 0)
            width = core.get("lstm_hidden_size", modules + core.get("dense_size", 0))
            shared.append((entry, width))
        assert all(item == shared[0] for item in shared), env


@pytest.mark.parametrize("algo", list(CLASSES))
def test_every_config_entry_passes_the_checks(algo, tmp_path):
    """Every entry's keys, policy_kwargs, wrappers, callbacks and classes resolve (no env is built)."""
    for env in sorted(key for key in load_config(algo) if not key.startswith(".")):
        manager = ZooExperimentManager(None, algo, CUE if env == "default" else env, log_folder=str(tmp_path))
        hyperparams, _ = manager.read_hyperparameters()
        hyperparams, env_wrapper, callbacks, _ = manager._preprocess_hyperparams(hyperparams)
        assert manager.n_timesteps > 0 and (env_wrapper is not None) is (env != "default")
        assert [type(callback) for callback in callbacks] == ([TrialLogger] if env == DOORKEY else [])
        if env != "default":
            assert hyperparams["policy_kwargs"]["features_extractor_class"] is MiniGridFeaturesExtractor


@pytest.mark.parametrize("algo", list(CLASSES))
def test_each_algorithm_runs_a_rollout_from_its_config(algo, tmp_path):
    """The DoorKey entry (mission tokens, trials, previous action/reward, TrialLogger) with smaller rollouts."""
    small = ["-params", "n_envs:2", "n_steps:16", "batch_size:32"]
    train("--algo", algo, "--env", DOORKEY, "-n", "1", "--eval-freq", "-1", "--seed", "0", *small, cwd=tmp_path)
    run = tmp_path / "logs" / algo / f"{DOORKEY}_1"
    config = yaml.load((run / DOORKEY / "config.yml").read_text(), Loader=yaml.UnsafeLoader)
    assert {"sb3_metarim.common.wrappers.TrialWrapper": {"episodes_per_trial": 3}} in config["env_wrapper"]
    register()
    model = ALGOS[algo].load(run / f"{DOORKEY}.zip", device="cpu")
    assert model.num_timesteps == 2 * 16
    assert isinstance(model.policy.features_extractor, MiniGridFeaturesExtractor)
    assert "prev_action" in model.observation_space.spaces and "mission" in model.observation_space.spaces
    if CLASSES[algo] is not None:
        assert type(model) is CLASSES[algo]
        assert model.meta is (algo not in ("rim_ppo", "gru_ppo"))
        assert isinstance(model.policy.lstm_actor, RIM) is (algo not in ("metalstm_ppo", "gru_ppo"))
    assert (run / "learning_curve.png").is_file()


def test_train_saves_in_the_zoo_layout_then_enjoy_runs_it(tmp_path):
    small = ["-n", "256", "--eval-freq", "128", "--eval-episodes", "3", "--seed", "0", "-params", "n_envs:2", "n_steps:32"]
    result = train("--algo", "metarim_ppo", "--env", CUE, *small, cwd=tmp_path)
    run = tmp_path / "logs" / "metarim_ppo" / f"{CUE_NAME}_1"
    assert f"Loading hyperparameters from: {ZOO_CONFIGS / 'metarim_ppo.yml'}" in result.stdout
    for name in (f"{CUE_NAME}.zip", "best_model.zip", "evaluations.npz", "0.monitor.csv", f"{CUE_NAME}/config.yml"):
        assert (run / name).is_file(), name
    assert (run / "learning_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(np.load(run / "evaluations.npz")["timesteps"]) == 2

    enjoy = ["--algo", "metarim_ppo", "--env", CUE, "-f", "logs", "--no-render", "-n", "60"]
    result = cli("sb3_metarim.zoo.enjoy", *enjoy, "--num-threads", "1", cwd=tmp_path)
    assert f"Loading {Path('logs') / 'metarim_ppo' / f'{CUE_NAME}_1' / f'{CUE_NAME}.zip'}" in result.stdout
    assert "Mean reward:" in result.stdout

    cli("sb3_metarim.zoo.enjoy", "--video", *enjoy, cwd=tmp_path)
    assert len(list((run / "videos").glob("*.mp4"))) == 1


def test_optimize_killed_then_resumed_keeps_every_finished_trial(tmp_path):
    """SIGTERM mid-trial: finished trials stay, the interrupted one is recorded and run again on resume."""
    storage = str(tmp_path / "logs" / "metarim_ppo" / f"{CUE_NAME}_optuna.log")  # the embedded default
    name = f"metarim_ppo_{CUE}"
    study = small_study(storage, name, n_trials=4)
    worker = start_train("--algo", "metarim_ppo", *OPTIMIZE, *LONG_TRIAL, "--n-trials", "4", cwd=tmp_path)
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline and worker.poll() is None:
        trials = study.get_trials()
        running = [trial for trial in trials if trial.state == TrialState.RUNNING]
        # Kill once a trial has finished and another has been training for a moment.
        if finished(study) and running and time.time() - running[0].datetime_start.timestamp() > 0.5:
            break
        time.sleep(0.1)
    assert worker.poll() is None, f"the study ended before it could be killed:\n{worker.stdout.read()[-3000:]}"
    worker.send_signal(signal.SIGTERM)
    output = worker.communicate(timeout=TIMEOUT)[0]
    assert worker.returncode == 0, output[-3000:]
    before = finished(study)
    interrupted = [trial for trial in before if trial.user_attrs.get(INTERRUPTED_ATTR)]
    assert len(interrupted) == 1 and interrupted[0].state == TrialState.FAIL
    assert any(trial.state == TrialState.COMPLETE for trial in before)
    waiting = len(study.get_trials(states=(TrialState.WAITING,)))
    so_far = len(study.trials)

    # Same command, no --storage nor --study-name: the embedded default study resumes.
    result = train("--algo", "metarim_ppo", *OPTIMIZE, *SHORT_TRIAL, "--n-trials", str(waiting + 1), cwd=tmp_path)
    assert f"{so_far} trials so far" in result.stdout
    after = finished(study)
    assert len(after) == len(before) + waiting + 1
    by_number = {trial.number: trial for trial in after}
    for trial in before:  # kept as they were
        kept = by_number[trial.number]
        assert (kept.state, kept.value, kept.params) == (trial.state, trial.value, trial.params)
    retries = [trial for trial in after if trial.user_attrs.get(RETRY_OF_ATTR) == interrupted[0].number]
    assert len(retries) == 1 and retries[0].params == interrupted[0].params and retries[0].state.is_finished()
    report = (tmp_path / "logs" / "metarim_ppo" / f"{name.replace('/', '-')}_report.md").read_text()
    assert "## Best trial" in report and "interrupted" in report and f"retry of trial {interrupted[0].number}" in report
    assert (tmp_path / "logs" / "metarim_ppo" / f"{name.replace('/', '-')}_history.png").is_file()

    # rl-zoo3 ignores --trial-id 0 and replaces the config's policy_kwargs: ours loads it, merged.
    best = 0 if by_number[0].state == TrialState.COMPLETE else study.best_trial.number
    trial_id = dict(trial_id=best, storage=storage, study_name=name)
    manager = ZooExperimentManager(None, "metarim_ppo", DOORKEY, log_folder=str(tmp_path / "logs"), **trial_id)
    hyperparams, _ = manager.read_hyperparameters()
    assert (
        hyperparams["policy_kwargs"]["features_extractor_class"]
        == load_config("metarim_ppo")[DOORKEY]["policy_kwargs"]["features_extractor_class"]
    )
    assert hyperparams["policy_kwargs"]["num_units"] == by_number[best].params["num_units"] == SMALL_TRIAL["num_units"]
    assert hyperparams["learning_rate"] == by_number[best].params["learning_rate"]


def two_workers_share_a_study(algo: str, storage: str, cwd: Path) -> None:
    """Two worker processes run 2 trials each on one study: 4 trials, each recorded once."""
    name = f"two_workers_{algo}"
    study = small_study(storage, name, n_trials=4)
    shared = ["--algo", algo, *OPTIMIZE, *SHORT_TRIAL, "--n-trials", "2", "--storage", storage, "--study-name", name]
    workers = [start_train(*shared, "--seed", str(seed), cwd=cwd) for seed in (1, 2)]
    outputs = [worker.communicate(timeout=TIMEOUT)[0] for worker in workers]
    assert all(worker.returncode == 0 for worker in workers), "\n".join(output[-3000:] for output in outputs)
    trials = study.get_trials()
    assert sorted(trial.number for trial in trials) == [0, 1, 2, 3]
    assert all(trial.state in (TrialState.COMPLETE, TrialState.PRUNED) for trial in trials)
    assert len({trial._trial_id for trial in trials}) == 4
    # Each worker ran two of them (the log line of each trial it finished).
    assert [output.count("finished with value") + output.count("pruned") for output in outputs] == [2, 2]


def test_two_workers_share_a_journal_study(tmp_path):
    two_workers_share_a_study("rim_ppo", str(tmp_path / "shared_optuna.log"), tmp_path)


def test_two_workers_share_a_postgresql_study(postgres_url, tmp_path):
    # Create the schema and the study before the workers start, as the README says (concurrent creation races).
    two_workers_share_a_study("metalstm_ppo", postgres_url, tmp_path)


class NaNRewardWrapper(gym.Wrapper):
    def step(self, action):
        obs, _, terminated, truncated, info = self.env.step(action)
        return obs, float("nan"), terminated, truncated, info


def test_failed_and_nan_trials_are_recorded_and_the_study_goes_on(tmp_path):
    """The Python API: make_objective + record_failures in your own loop."""
    common = dict(n_timesteps=64, log_folder=str(tmp_path / "logs"))
    # NaN rewards: the training stops with a ValueError naming the env and step, which rl-zoo3 prunes.
    nan_env = {"n_envs": 2, "env_wrapper": "tests.test_zoo.NaNRewardWrapper"}
    nan_training = make_objective("rim_ppo", CUE, hyperparams=nan_env, **common)
    objective = make_objective("rim_ppo", CUE, hyperparams={"n_envs": 2}, **common)

    def flaky(trial: optuna.Trial) -> float:
        if trial.number == 0:
            raise RuntimeError("boom")
        if trial.number == 2:
            return float("nan")
        return (nan_training if trial.number == 1 else objective)(trial)

    study = small_study(str(tmp_path / "api.log"), "api", n_trials=4)
    study.optimize(record_failures(flaky), n_trials=4)
    states = [trial.state for trial in study.trials]
    assert states == [TrialState.FAIL, TrialState.PRUNED, TrialState.FAIL, TrialState.COMPLETE]
    assert study.trials[0].user_attrs[ERROR_ATTR] == "RuntimeError: boom"
    assert "NaN" in study.trials[2].user_attrs[ERROR_ATTR]
    report = write_study_report(study, tmp_path / "report").read_text()
    assert "needs two completed trials (1 so far)" in report and "RuntimeError: boom" in report


def test_samplers_merge_into_the_config_policy_kwargs(cue_env):
    register()
    for algo in ("metarim_ppo", "rim_ppo", "metalstm_ppo", "ppo_lstm"):
        # A RIM option in the config of an LSTM core would be an error (the core would ignore it).
        rim_only = {} if algo == "metalstm_ppo" else {"comm_heads": 2}
        base = {"num_units": 99, "ortho_init": False, **rim_only}
        trial = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0)).ask()
        with base_policy_kwargs(base):
            params = HYPERPARAMS_SAMPLER[algo](trial, 0, 2, {})
        assert params["policy_kwargs"]["ortho_init"] is False
        assert params["policy_kwargs"].get("comm_heads") == rim_only.get("comm_heads")
        assert "net_arch" in params["policy_kwargs"]
        if algo != "ppo_lstm":
            assert params["policy_kwargs"]["num_units"] == trial.params["num_units"] != 99
            assert params == sample_metarim_params(optuna.trial.FixedTrial(trial.params), algo, base)
            assert ("top_k" in params["policy_kwargs"]) is (algo != "metalstm_ppo")
            CLASSES[algo]("MlpPolicy", cue_env, **params)  # the sampled arguments build the algorithm


def test_optimize_trains_the_sampled_policy_kwargs_merged_into_the_config(tmp_path):
    """The objective's model has the config's policy_kwargs (here from -params) and the sampled ones."""
    config_policy_kwargs = {"num_units": 6, "top_k": 4, "unit_size": 32, "comm_heads": 2}
    hyperparams = {"n_envs": 2, "policy_kwargs": config_policy_kwargs}
    trials = tmp_path / "trials"
    options = dict(hyperparams=hyperparams, n_timesteps=64, optimization_log_path=str(trials))
    manager = experiment_manager("metarim_ppo", CUE, log_folder=str(tmp_path / "logs"), **options)
    manager.setup_experiment()
    study = small_study(str(tmp_path / "merge.log"), "merge", n_trials=1)
    study.optimize(manager.objective, n_trials=1)
    assert study.trials[0].state == TrialState.COMPLETE
    policy_kwargs = MetaRIMPPO.load(trials / "trial_0" / "best_model.zip", device="cpu").policy_kwargs
    assert policy_kwargs["comm_heads"] == 2 and policy_kwargs["num_units"] == SMALL_TRIAL["num_units"]
    assert policy_kwargs["top_k"] == study.trials[0].user_attrs["top_k"] and "activation_fn" in policy_kwargs


def test_unknown_algorithm_and_bad_config_keys_are_clear_errors(tmp_path):
    result = train("--algo", "metarim_ppoo", "--env", CUE, cwd=tmp_path, check=False)
    assert result.returncode != 0
    assert (
        "argument --algo: invalid choice: 'metarim_ppoo' (choose from" in result.stderr and "'metalstm_ppo'" in result.stderr
    )

    config = tmp_path / "bad.yml"
    config.write_text(yaml.safe_dump({"default": {"policy": "MlpPolicy", "n_timesteps": 100, "n_stepz": 64}}))
    result = train("--algo", "metarim_ppo", "--env", CUE, "-conf", str(config), cwd=tmp_path, check=False)
    assert result.returncode != 0
    assert "unknown key n_stepz=64 for metarim_ppo (MetaRIMPPO); allowed: " in result.stderr and " n_steps," in result.stderr

    bad_policy = {"policy_kwargs": {"num_unit": 4}}
    with pytest.raises(
        ValueError, match=r"unknown policy_kwargs key num_unit=4 for RIMActorCriticPolicy; allowed: .*num_units"
    ):
        experiment_manager("rim_ppo", CUE, hyperparams=bad_policy, n_timesteps=64, log_folder=str(tmp_path)).setup_experiment()
    with pytest.raises(ValueError, match=r"seed=3 is set by the CLI flag --seed"):
        experiment_manager(
            "rim_ppo", CUE, hyperparams={"seed": 3}, n_timesteps=64, log_folder=str(tmp_path)
        ).setup_experiment()
    with pytest.raises(ValueError, match=r"meta=True: rim_ppo trains on one timescale"):
        RIMPPO("MlpPolicy", CUE, meta=True)


def test_plot_runs_compares_algorithms_over_seeds(tmp_path):
    """scripts/plot_runs.py on Monitor logs of 2 algorithms x 2 seeds (random policies, SB3's Monitor)."""
    for algo, seeds in {"metarim_ppo": (0, 1), "ppo_lstm": (2, 3)}.items():
        for run, seed in enumerate(seeds, start=1):
            folder = tmp_path / "logs" / algo / f"{CUE_NAME}_{run}"
            env = make_vec_env(CUE, n_envs=1, seed=seed, monitor_dir=str(folder))
            env.reset()
            for _ in range(300):
                env.step(np.array([env.action_space.sample()]))
            env.close()
            assert isinstance(env.envs[0], Monitor)
    output = tmp_path / "compare.png"
    script = [sys.executable, str(REPO / "scripts" / "plot_runs.py"), "-f", str(tmp_path / "logs"), "--env", CUE]
    options = ["--algos", "metarim_ppo", "ppo_lstm", "rim_ppo", "--window", "10", "-o", str(output)]
    result = subprocess.run([*script, *options], capture_output=True, text=True, timeout=TIMEOUT)
    assert result.returncode == 0, result.stderr
    assert output.read_bytes()[:4] == b"\x89PNG"
    table = output.with_suffix(".md").read_text()
    assert "| metarim_ppo | 2 |" in table and "| ppo_lstm | 2 |" in table and "| rim_ppo |" not in table


def test_metods_ppo_runs_a_rollout_from_its_config_and_samples_its_core(tmp_path):
    """metods_ppo through the real CLI on its DependentBandit entry (previous action/reward), then its sampler."""
    env_id, small = "sb3_metarim/DependentBandit-v0", ["-params", "n_envs:2", "n_steps:16", "batch_size:32"]
    for env in sorted(key for key in load_config("metods_ppo") if not key.startswith(".")):
        manager = ZooExperimentManager(None, "metods_ppo", CUE if env == "default" else env, log_folder=str(tmp_path))
        hyperparams, _ = manager.read_hyperparameters()
        manager._preprocess_hyperparams(hyperparams)
    train("--algo", "metods_ppo", "--env", env_id, "-n", "1", "--eval-freq", "-1", "--seed", "0", *small, cwd=tmp_path)
    name = env_id.replace("/", "-")
    register()
    model = ALGOS["metods_ppo"].load(tmp_path / "logs" / "metods_ppo" / f"{name}_1" / f"{name}.zip", device="cpu")
    assert type(model) is MetODSPPO and isinstance(model.policy.lstm_actor, MetODS) and model.meta is False
    assert model.num_timesteps == 32 and "prev_reward" in model.observation_space.spaces
    trial = optuna.create_study().ask()
    params = sample_metarim_params(trial, "metods_ppo", policy_kwargs={"net_arch": [8]})
    assert set(params["policy_kwargs"]) >= {"num_neurons", "recursions", "plasticity", "write_projection", "w0", "net_arch"}
    sampled = params["policy_kwargs"]
    MetODSConfig(**{key: sampled[key] for key in MetODSConfig.option_names() if key in sampled}).validate()


def one_trial_on(storage: str, name: str, cwd: Path) -> subprocess.CompletedProcess:
    """A one-trial ``--optimize`` run of the study ``name`` in ``storage``."""
    return train(
        "--algo", "rim_ppo", *OPTIMIZE, *SHORT_TRIAL, "--n-trials", "1", "--storage", storage, "--study-name", name, cwd=cwd
    )


def files_with_the_password(folder: Path) -> list[Path]:
    """:return: the files under ``folder`` that hold the test server's password."""
    return [path for path in folder.rglob("*") if path.is_file() and POSTGRES_PASSWORD.encode() in path.read_bytes()]


@pytest.mark.parametrize("driver", ["postgresql", "postgresql+psycopg", "postgresql+psycopg2"])
def test_a_study_on_a_password_protected_server_leaves_the_password_nowhere(postgres_password_url, driver, tmp_path):
    """The URL as users write it, password inside, in each driver form: the tuning run works, and the password is in
    no line it prints and no file under the log folder (ours and rl-zoo3's: its arguments, command, pickled study)."""
    url = make_url(postgres_password_url).set(drivername=driver)
    storage, name = url.render_as_string(hide_password=False), f"secret_{driver.replace('+', '_')}"
    result = one_trial_on(storage, name, tmp_path)
    assert POSTGRES_PASSWORD not in result.stdout + result.stderr
    files = [path.name for path in (tmp_path / "logs").rglob("*")]
    assert any(file.endswith(".pkl") for file in files) and any(file.endswith("_report.md") for file in files)
    assert files_with_the_password(tmp_path / "logs") == []
    assert len(optuna.load_study(storage=storage, study_name=name).trials) == 1  # it ran on that server


def test_the_storage_url_from_an_environment_variable(postgres_password_url, tmp_path, monkeypatch):
    """``--storage env:NAME``: the URL (password included) stays out of the command line and the log folder."""
    monkeypatch.setenv("STUDY_URL", postgres_password_url)
    result = one_trial_on("env:STUDY_URL", "from_env", tmp_path)
    assert POSTGRES_PASSWORD not in result.stdout + result.stderr
    assert files_with_the_password(tmp_path / "logs") == []
    assert len(optuna.load_study(storage=postgres_password_url, study_name="from_env").trials) == 1


def test_storage_without_password(monkeypatch):
    monkeypatch.delenv("PGPASSWORD", raising=False)
    assert storage_without_password("logs/study.log") == "logs/study.log"
    assert storage_without_password("sqlite:///study.db") == "sqlite:///study.db"
    assert storage_without_password("postgresql://bench:s3cret@db:5432/studies") == "postgresql://bench@db:5432/studies"
    assert os.environ["PGPASSWORD"] == "s3cret"
    monkeypatch.setenv("STUDY_URL", "postgresql+psycopg://bench:other@db/studies")
    assert storage_without_password("env:STUDY_URL") == "postgresql+psycopg://bench@db/studies"
    assert os.environ["PGPASSWORD"] == "other"
    with pytest.raises(ValueError, match="'NO_SUCH_VARIABLE' is not set"):
        storage_without_password("env:NO_SUCH_VARIABLE")
    with pytest.raises(ValueError, match=r"mysql://bench:\*\*\*@db/studies: a password in a mysql URL") as error:
        storage_without_password("mysql://bench:s3cret@db/studies")
    assert "s3cret" not in str(error.value)
    assert masked_storage("postgresql://bench:s3cret@db/studies") == "postgresql://bench:***@db/studies"
    assert masked_storage("logs/study.log") == "logs/study.log"

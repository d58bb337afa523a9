"""
rl-zoo3 integration: our algorithms in rl-zoo3's tables, the default ``zoo_configs/<algo>.yml``, checks of a
config's keys, and the ``ExperimentManager`` that ``python -m sb3_metarim.zoo.train`` runs.

rl-zoo3 has no plugin mechanism: its CLI reads ``rl_zoo3.ALGOS`` and the sampler tables of
``rl_zoo3.hyperparams_opt`` when it runs, so :func:`register` adds our entries to them first.

=================  ==========================================================================================
``metarim_ppo``    :class:`~sb3_metarim.MetaRIMPPO`: a RIM trained fast and slow
``rim_ppo``        :class:`RIMPPO`: the RIM trained on one timescale (the "modular" baseline)
``metalstm_ppo``   :class:`MetaLSTMPPO`: an LSTM core trained fast and slow, the value function slow (ablation)
``gru_ppo``        :class:`GRUPPO`: a GRU core, on one timescale (``RecurrentPPO`` with a GRU)
``metods_ppo``     :class:`MetODSPPO`: a MetODS core (self-modifying synapses) trained on one timescale
``ppo_lstm``       rl-zoo3's own ``RecurrentPPO`` (the LSTM baseline)
=================  ==========================================================================================
"""

import argparse
import inspect
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

import optuna
from optuna.trial import TrialState
from rl_zoo3.exp_manager import ExperimentManager
from rl_zoo3.hyperparams_opt import HYPERPARAMS_CONVERTER, HYPERPARAMS_SAMPLER
from rl_zoo3.utils import ALGOS, get_class_by_name
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback, CheckpointCallback
from stable_baselines3.common.vec_env import VecEnv

from sb3_metarim.common.checkpoints import Checkpoint, ResumableCheckpointCallback, latest_checkpoint
from sb3_metarim.meta_rim_ppo.variants import (  # noqa: F401  (importable from here too)
    ALGORITHMS,
    GRUPPO,
    META_LSTM_SLOW_PARAMETERS,
    RIMPPO,
    MetaLSTMPPO,
    MetODSPPO,
)
from sb3_metarim.zoo.plots import plot_learning_curve
from sb3_metarim.zoo.tuning import (
    GRACE_PERIOD,
    HEARTBEAT_INTERVAL,
    base_policy_kwargs,
    convert_params,
    default_storage,
    default_study_name,
    fail_dead_workers_trials,
    masked_storage,
    merge_policy_kwargs,
    open_storage,
    record_failures,
    requeue_interrupted,
    rl_zoo_samplers,
    waiting_retries,
    write_study_report,
    zoo_sampler,
)

# The repository's zoo_configs/ (a checkout, an editable install), shipped in the wheel as sb3_metarim/zoo_configs.
_PACKAGE = Path(__file__).resolve().parents[1]
ZOO_CONFIGS = next(
    (path for path in (_PACKAGE.parent / "zoo_configs", _PACKAGE / "zoo_configs") if path.is_dir()), _PACKAGE / "zoo_configs"
)
# Set by rl-zoo3's CLI flags, so a config must not set them.
CLI_ARGUMENTS = {"env": "--env", "tensorboard_log": "-tb", "seed": "--seed", "verbose": "--verbose", "device": "--device"}
# Keys rl-zoo3 consumes itself (not passed to the algorithm).
ZOO_KEYS = frozenset(
    (
        *("n_timesteps", "n_envs", "normalize", "frame_stack", "env_wrapper", "vec_env_wrapper", "callback"),
        *("env_kwargs", "monitor_kwargs", "noise_type", "noise_std"),
    )
)
REQUIRED_KEYS = ("n_timesteps", "policy")
# Set by the algorithm on its policy.
POLICY_ARGUMENTS = frozenset(("observation_space", "action_space", "lr_schedule"))


ZOO_ALGOS: dict[str, type[BaseAlgorithm]] = ALGORITHMS
BASELINE = "ppo_lstm"


def register() -> None:
    """
    Add our algorithms (:data:`ZOO_ALGOS`) to rl-zoo3's ``ALGOS``, samplers and converters
    (idempotent). Our samplers, and rl-zoo3's ``ppo_lstm`` sampler, merge the sampled ``policy_kwargs`` into
    the yaml's instead of replacing them (see :func:`sb3_metarim.zoo.tuning.zoo_sampler`).
    """
    ALGOS.update(ZOO_ALGOS)
    HYPERPARAMS_SAMPLER.update(rl_zoo_samplers())
    HYPERPARAMS_CONVERTER.update(dict.fromkeys(ZOO_ALGOS, convert_params))
    if not hasattr(HYPERPARAMS_SAMPLER[BASELINE], "__wrapped__"):
        HYPERPARAMS_SAMPLER[BASELINE] = zoo_sampler(HYPERPARAMS_SAMPLER[BASELINE])


def default_config(algo: str) -> str | None:
    """
    :param algo: An rl-zoo3 algorithm name.
    :return: ``zoo_configs/<algo>.yml`` if it exists, ``None`` for rl-zoo3's algorithms without one (rl-zoo3
        then uses its own); for our algorithms a missing file is an error.
    """
    path = ZOO_CONFIGS / f"{algo}.yml"
    if path.is_file():
        return str(path)
    if algo in ZOO_ALGOS:
        raise ValueError(f"--algo {algo}: no -conf given and the default config {path} does not exist; pass -conf <yaml>")
    return None


def accepted_arguments(cls: type) -> set[str]:
    """
    :param cls: A class.
    :return: the keyword arguments its constructor takes, following ``**kwargs`` up the MRO.
    """
    names: set[str] = set()
    for klass in cls.__mro__:
        if "__init__" not in vars(klass):
            continue
        parameters = inspect.signature(klass.__init__).parameters.values()
        keywords = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        names |= {parameter.name for parameter in parameters if parameter.kind in keywords} - {"self"}
        if not any(parameter.kind == inspect.Parameter.VAR_KEYWORD for parameter in parameters):
            break
    return names


def check_hyperparameters(algo: str, hyperparams: dict[str, Any], where: str) -> None:
    """
    Raise a ``ValueError`` naming the first key that ``algo`` (or its policy, for ``policy_kwargs``) does not take.

    :param algo: The rl-zoo3 algorithm name.
    :param hyperparams: The entry after rl-zoo3's preprocessing (its own keys removed), plus ``-params``.
    :param where: Where the entry comes from, for the message.
    """
    algo_class = ALGOS[algo]
    allowed = accepted_arguments(algo_class) - set(CLI_ARGUMENTS) - {"_init_setup_model"}
    for key, value in hyperparams.items():
        if key in CLI_ARGUMENTS:
            raise ValueError(f"{where}: {key}={value!r} is set by the CLI flag {CLI_ARGUMENTS[key]}, not in the config")
        if key not in allowed | ZOO_KEYS:
            raise ValueError(
                f"{where}: unknown key {key}={value!r} for {algo} ({algo_class.__name__}); "
                f"allowed: {', '.join(sorted(allowed | ZOO_KEYS))}"
            )
    policy = hyperparams["policy"]
    if isinstance(policy, str) and policy not in algo_class.policy_aliases:
        raise ValueError(f"{where}: policy={policy!r} is not a policy of {algo}; allowed: {sorted(algo_class.policy_aliases)}")
    policy_class = algo_class.policy_aliases[policy] if isinstance(policy, str) else policy
    allowed_policy = accepted_arguments(policy_class) - POLICY_ARGUMENTS
    for key, value in hyperparams.get("policy_kwargs", {}).items():
        if key not in allowed_policy:
            raise ValueError(
                f"{where}: unknown policy_kwargs key {key}={value!r} for {policy_class.__name__}; "
                f"allowed: {', '.join(sorted(allowed_policy))}"
            )


def resolve_class_names(policy_kwargs: dict[str, Any]) -> dict[str, Any]:
    """
    :param policy_kwargs: ``policy_kwargs`` as a yaml mapping, classes given by import path
        (``features_extractor_class: sb3_metarim.common.torch_layers.MiniGridFeaturesExtractor``).
    :return: a copy where the values of ``*_class`` and ``*_fn`` keys given as dotted paths are the classes.
    """
    return {
        key: get_class_by_name(value) if key.endswith(("_class", "_fn")) and isinstance(value, str) and "." in value else value
        for key, value in policy_kwargs.items()
    }


class ZooExperimentManager(ExperimentManager):
    """
    rl-zoo3's ``ExperimentManager`` with our defaults and guards, for every algorithm (ours and rl-zoo3's):

    - the config defaults to ``zoo_configs/<algo>.yml`` when it exists (pass ``config`` by keyword, as
      rl-zoo3's CLI does);
    - ``--optimize`` and ``--trial-id`` default to an embedded journal storage under the log folder and to the
      study ``<algo>_<env>``, so rerunning a killed study resumes it;
    - a config's unknown keys and ``policy_kwargs`` keys are errors naming the key, the value and what is allowed;
      ``policy_kwargs`` may give classes by import path;
    - sampled (``--optimize``) and loaded (``--trial-id``, trial 0 included) ``policy_kwargs`` are merged into the
      config's instead of replacing them;
    - a trial that raises is recorded as failed and the study goes on; a trial interrupted by Ctrl-C/SIGTERM is
      run again when the study resumes;
    - after training, ``learning_curve.png`` in the run folder; after a study, a report (markdown + PNG) in
      ``<log_folder>/<algo>/`` instead of rl-zoo3's plotly windows (``--no-optim-plots`` skips it);
    - a study's running trials record a heartbeat: a trial whose worker died (SIGKILL, out of memory, a lost
      machine) is failed after ``grace_period`` seconds without one and run again, with the same parameters, by the
      next worker that starts a trial (journal files and database URLs alike; :func:`~sb3_metarim.zoo.tuning.open_storage`);
    - ``--save-freq`` checkpoints are written atomically with VecNormalize's statistics and the RNG states
      (:class:`~sb3_metarim.common.checkpoints.ResumableCheckpointCallback`), and ``resume=True`` (``--resume``) continues
      the latest run of ``<log_folder>/<algo>/<env>_<n>`` from its latest checkpoint, in its folder, to the budget
      ``-n`` (``num_timesteps`` continues; the Monitor files are appended to).

    :param args: As for ``ExperimentManager``.
    :param heartbeat_interval: Seconds between a running trial's heartbeats (``None``: none).
    :param grace_period: Seconds without a heartbeat before a trial is taken for dead.
    :param resume: Continue the latest run from its latest checkpoint (a new run when there is none).
    :param kwargs: As for ``ExperimentManager``.
    """

    def __init__(
        self,
        *args: Any,
        heartbeat_interval: int | None = HEARTBEAT_INTERVAL,
        grace_period: int | None = GRACE_PERIOD,
        resume: bool = False,
        **kwargs: Any,
    ) -> None:
        register()
        super().__init__(*args, **kwargs)
        self.heartbeat_interval = heartbeat_interval
        self.grace_period = grace_period
        self.resume = resume
        self.resumed_from: Checkpoint | None = None
        if not kwargs.get("config"):
            self.config = default_config(self.algo) or self.config
        if self.optimize_hyperparameters or self.trial_id is not None:
            self.storage = self.storage or default_storage(self.log_folder, self.algo, self.env_name.gym_id)
            self.study_name = self.study_name or default_study_name(self.algo, self.env_name.gym_id)
        if resume:
            self._find_run_to_resume()

    def _find_run_to_resume(self) -> None:
        """Point the run folder and ``trained_agent`` at the latest run's latest readable checkpoint, if any."""
        if self.optimize_hyperparameters:
            raise ValueError("--resume: resumes training runs; a study resumes by running the same --optimize command")
        if self.save_freq <= 0:
            raise ValueError(f"--resume with --save-freq {self.save_freq}: pass --save-freq N, so that the run checkpoints")
        runs = []
        for folder in Path(self.log_path).glob(f"{self.env_name}_*"):
            run_id = folder.name[len(str(self.env_name)) + 1 :]
            if folder.is_dir() and run_id.isdigit():
                runs.append((int(run_id), folder))
        for _, folder in sorted(runs, reverse=True):
            checkpoint = latest_checkpoint(folder)
            if checkpoint is not None:
                self.resumed_from = checkpoint
                self.save_path = str(folder)
                self.params_path = f"{self.save_path}/{self.env_name}"
                self.trained_agent = str(checkpoint.path)
                self.continue_training = True
                done = f"{checkpoint.num_timesteps} of {self.n_timesteps} steps"
                print(f"Resuming {folder} from {checkpoint.path.name} ({done})")
                return
        print(f"--resume: no checkpoint under {self.log_path}{self.env_name}_*; starting a new run")

    def create_callbacks(self) -> None:
        super().create_callbacks()
        for index, callback in enumerate(self.callbacks):
            if type(callback) is CheckpointCallback:
                self.callbacks[index] = ResumableCheckpointCallback(
                    callback.save_freq, callback.save_path, callback.name_prefix, verbose=callback.verbose
                )

    def _load_pretrained_agent(self, hyperparams: dict[str, Any], env: VecEnv) -> BaseAlgorithm:
        model = super()._load_pretrained_agent(hyperparams, env)
        if self.resumed_from is not None:
            self.resumed_from.restore(model)  # VecNormalize's statistics and the RNG states
        return model

    def learn(self, model: BaseAlgorithm) -> None:
        if self.resumed_from is None:
            return super().learn(model)
        # Continue to the budget (rl-zoo3's -i trains n_timesteps more, counting from 0): rl-zoo3's learn, with
        # model.learn(remaining, reset_num_timesteps=False).
        kwargs: dict[str, Any] = {"reset_num_timesteps": False}
        if self.log_interval > -1:
            kwargs["log_interval"] = self.log_interval
        elif self.log_interval < -1:
            kwargs["log_interval"] = None
        if self.callbacks:
            kwargs["callback"] = self.callbacks
        try:
            model.learn(max(self.n_timesteps - model.num_timesteps, 0), **kwargs)
        except KeyboardInterrupt:
            pass  # as rl-zoo3: save the model when interrupted
        finally:
            if self.callbacks:
                self.callbacks[0].on_training_end()
            try:
                model.env.close()
            except EOFError:
                pass

    def read_hyperparameters(self) -> tuple[dict[str, Any], dict[str, Any]]:
        # rl-zoo3 skips --trial-id 0 and replaces the config's policy_kwargs by the trial's: load the trial here.
        trial_id, self.trial_id = self.trial_id, None
        hyperparams, saved_hyperparams = super().read_hyperparameters()
        self.trial_id = trial_id
        if trial_id is None:
            return hyperparams, saved_hyperparams
        base = hyperparams.get("policy_kwargs")
        if isinstance(base, str):
            raise ValueError(
                f"{self.config}: policy_kwargs={base!r} is a string; write it as a mapping to merge trial {trial_id}'s into it"
            )
        trial_hyperparams = self._load_trial_hyperparameters(trial_id)
        hyperparams = {**hyperparams, **merge_policy_kwargs(trial_hyperparams, base), **(self.custom_hyperparams or {})}
        print(f"Hyperparameters of trial {trial_id} of study {self.study_name!r} merged in: {trial_hyperparams}")
        return hyperparams, dict(sorted(hyperparams.items()))

    def _load_trial_hyperparameters(self, trial_id: int) -> dict[str, Any]:
        """:return: the converted hyperparameters of trial ``trial_id`` of the study."""
        try:
            return self.load_trial(self.storage, self.study_name, trial_id)
        except IndexError as error:
            raise ValueError(
                f"--trial-id {trial_id}: study {self.study_name!r} in {masked_storage(self.storage)} has no such trial"
            ) from error

    def _preprocess_hyperparams(self, hyperparams: dict[str, Any]) -> tuple[dict[str, Any], Any, list[BaseCallback], Any]:
        where = f"{self.config} (entry for {self.env_name.gym_id})"
        if self.custom_hyperparams:
            where += f" with -params {self.custom_hyperparams}"
        for key in REQUIRED_KEYS:
            if key not in hyperparams:
                raise ValueError(f"{where}: the key {key!r} is required")
        if "slow_learning_rate" in hyperparams:  # rl-zoo3 turns "lin_<value>" into a schedule for its own keys only
            hyperparams["slow_learning_rate"] = self._preprocess_schedules(
                {"learning_rate": hyperparams["slow_learning_rate"]}
            )["learning_rate"]
        hyperparams, env_wrapper, callbacks, vec_env_wrapper = super()._preprocess_hyperparams(hyperparams)
        if "policy_kwargs" in hyperparams:
            hyperparams["policy_kwargs"] = resolve_class_names(hyperparams["policy_kwargs"])
        check_hyperparameters(self.algo, hyperparams, where)
        if self.resumed_from is not None:  # append to the run's Monitor files instead of overwriting them
            self.monitor_kwargs = {**(self.monitor_kwargs or {}), "override_existing": False}
        return hyperparams, env_wrapper, callbacks, vec_env_wrapper

    def objective(self, trial: optuna.Trial) -> float:
        with base_policy_kwargs(self._hyperparams.get("policy_kwargs")):
            return record_failures(super().objective)(trial)

    def hyperparameters_optimization(self) -> None:
        storage = open_storage(self.storage, self.heartbeat_interval, self.grace_period)
        study = optuna.create_study(storage=storage, study_name=self.study_name, direction="maximize", load_if_exists=True)
        print(f"Study {self.study_name!r} in {masked_storage(self.storage)}: {len(study.trials)} trials so far")
        fail_dead_workers_trials(study)
        requeue_interrupted(study)
        retried = waiting_retries(study)
        if retried:
            print(f"Running the interrupted trials {retried} again first")
        write_report, self.no_optim_plots = not self.no_optim_plots, True
        try:
            with studies_on(storage):
                super().hyperparameters_optimization()
        except ValueError as error:
            # rl-zoo3 ends by reading study.best_trial, which raises when no trial has completed.
            if "completed" not in str(error) or study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
                raise
            print(f"No trial of study {self.study_name!r} has completed yet (all failed, were pruned or are running)")
        if write_report:
            train_command = (
                f"python -m sb3_metarim.zoo.train --algo {self.algo} --env {self.env_name.gym_id} -conf {self.config} "
                f"--storage {masked_storage(self.storage)} --study-name {self.study_name}"
            )
            report = write_study_report(study, Path(self.log_folder) / self.algo, self.storage, train_command)
            print(f"Study report: {report}")

    def save_trained_model(self, model: BaseAlgorithm) -> None:
        super().save_trained_model(model)
        curve = plot_learning_curve(self.save_path, title=f"{self.algo} on {self.env_name.gym_id}")
        print(f"Learning curve: {curve}")


@contextmanager
def studies_on(storage: optuna.storages.BaseStorage) -> Iterator[None]:
    """While the block runs, ``optuna.create_study`` uses ``storage`` (rl-zoo3 builds its own from the URL, without
    the heartbeat)."""
    create_study = optuna.create_study

    def create_on_storage(*args: Any, **kwargs: Any) -> optuna.Study:
        return create_study(*args, **{**kwargs, "storage": storage})

    with mock.patch.object(optuna, "create_study", create_on_storage):
        yield


def experiment_manager(
    algo: str, env_id: str, config: str | None = None, log_folder: str = "logs", **kwargs: Any
) -> ZooExperimentManager:
    """
    A :class:`ZooExperimentManager` for ``--optimize`` from Python (see :func:`make_objective`).

    :param algo: The rl-zoo3 algorithm name.
    :param env_id: The environment id.
    :param config: The yaml file (``None``: the default).
    :param log_folder: rl-zoo3's log folder (``-f``).
    :param kwargs: Other ``ExperimentManager`` arguments (``n_timesteps``, ``hyperparams``, ...).
    :return: the manager; call ``setup_experiment()`` before its ``objective``.
    """
    register()  # before checking algo
    if algo not in ALGOS:
        raise ValueError(f"algo={algo!r}: unknown; allowed: {sorted(ALGOS)}")
    return ZooExperimentManager(
        argparse.Namespace(), algo, env_id, log_folder, config=config, optimize_hyperparameters=True, **kwargs
    )


def make_objective(
    algo: str,
    env_id: str,
    n_timesteps: int,
    config: str | None = None,
    hyperparams: dict[str, Any] | None = None,
    n_evaluations: int = 1,
    n_eval_episodes: int = 5,
    log_folder: str = "logs",
    seed: int = 0,
    verbose: int = 0,
) -> Callable[[optuna.Trial], float]:
    """
    The objective ``sb3_metarim.zoo.train --optimize`` runs, for your own Optuna loop: each trial samples the
    algorithm's search space merged into the config's hyperparameters, trains ``n_timesteps`` on the config's
    envs and wrappers, reports ``n_evaluations`` evaluations to the pruner and returns the last mean return.
    Failures are handled by :func:`~sb3_metarim.zoo.tuning.record_failures`.

    :param algo: One of :data:`ZOO_ALGOS` or any rl-zoo3 algorithm.
    :param env_id: A registered gymnasium id.
    :param n_timesteps: Training steps per trial.
    :param config: The yaml file (``None``: ``zoo_configs/<algo>.yml``).
    :param hyperparams: Overrides of the config's entry, as rl-zoo3's ``-params``.
    :param n_evaluations: Evaluations per trial (reported to the pruner).
    :param n_eval_episodes: Episodes per evaluation.
    :param log_folder: rl-zoo3's log folder: it makes a run folder there (the Monitor files of the env it builds
        at set-up); the trials write nothing.
    :param seed: Seed of the envs.
    :param verbose: 0 quiet, 1 rl-zoo3's messages, 2 also the trials' training logs.
    :return: the objective, ``trial -> mean evaluation return``.
    """
    manager = experiment_manager(
        algo,
        env_id,
        config=config,
        hyperparams=hyperparams,
        n_timesteps=n_timesteps,
        n_evaluations=n_evaluations,
        n_eval_episodes=n_eval_episodes,
        log_folder=log_folder,
        seed=seed,
        verbose=verbose,
    )
    manager.setup_experiment()
    return manager.objective

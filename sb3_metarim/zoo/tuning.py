"""
Optuna for MetaRIMPPO and its baselines: search spaces, samplers that merge into the yaml's ``policy_kwargs``,
what happens to a trial that fails or is interrupted, the study storages and the study report. The objective
that ``--optimize`` runs, for your own loop, is :func:`sb3_metarim.zoo.experiment.make_objective`.

.. code-block:: python

    import optuna
    from sb3_metarim.zoo.tuning import open_storage
    from sb3_metarim.zoo.experiment import make_objective

    objective = make_objective("metarim_ppo", "sb3_metarim/CueMemory-v0", n_timesteps=20_000)
    study = optuna.create_study(storage=open_storage("logs/study.log"), study_name="cue", direction="maximize",
                                load_if_exists=True)
    study.optimize(objective, n_trials=20)
"""

import inspect
import logging
import math
import os
import threading
import time
import traceback
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial, wraps
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import optuna
from matplotlib.axes import Axes
from optuna.exceptions import UpdateFinishedTrialError
from optuna.storages import BaseStorage, JournalStorage, RDBStorage
from optuna.storages._heartbeat import BaseHeartbeat
from optuna.storages.journal import JournalFileBackend, JournalFileSymlinkLock
from optuna.trial import FrozenTrial, TrialState
from rl_zoo3.hyperparams_opt import convert_onpolicy_params
from sqlalchemy.engine import URL, make_url

from sb3_metarim.cores.registry import core_option_owners

logger = logging.getLogger(__name__)

ZooSampler = Callable[[optuna.Trial, int, int, dict], dict[str, Any]]

# `--storage env:NAME`: the study's URL is in the environment variable NAME (not in the command line).
STORAGE_FROM_ENV = "env:"
# Where libpq (psycopg 2 and 3) reads a PostgreSQL password that is not in the URL.
PASSWORD_VARIABLE = "PGPASSWORD"

# Trial user attributes written by this module.
ERROR_ATTR = "error"
INTERRUPTED_ATTR = "interrupted"
RETRY_OF_ATTR = "retry_of"
RETRY_REASON_ATTR = "retry_reason"
RETRIES_ATTR = "retries"
WORKER_DIED = "its worker died (no heartbeat)"
# The heartbeat's system attribute on the journal storage (RDB storages keep their own table).
HEARTBEAT_ATTR = "sb3_metarim:heartbeat"

# A running trial's worker records a heartbeat every HEARTBEAT_INTERVAL seconds; a running trial without one for
# GRACE_PERIOD seconds is failed (its worker died: SIGKILL, the OOM killer, a lost machine) by the next worker that
# starts a trial, which enqueues its parameters again: run again within about a minute after its worker died.
HEARTBEAT_INTERVAL = 20
GRACE_PERIOD = 60
# How often a trial whose worker died is run again (a trial that kills its worker, e.g. out of memory, is not
# retried forever).
MAX_RETRIES = 2

# Raw Optuna parameters of each group, as rl-zoo3 names them where it has a name (rl-zoo3's converter reads them).
PPO_PARAMS = (
    "n_steps_pow",
    "batch_size_pow",
    "one_minus_gamma",
    "one_minus_gae_lambda",
    "learning_rate",
    "ent_coef",
    "clip_range",
    "n_epochs",
    "max_grad_norm",
    "net_arch",
    "activation_fn",
)
META_PARAMS = ("slow_learning_rate", "fast_span", "slow_interval", "slow_n_epochs", "slow_max_kl")


def suggest_ppo(trial: optuna.Trial) -> dict[str, Any]:
    """
    PPO's knobs: rl-zoo3's PPO space (same names, so rl-zoo3's converter reads them), narrowed. A RIM steps in
    Python and the slow phase backpropagates through whole rollouts, so ``n_steps`` is 32 to 512 per env
    (rl-zoo3: to 4096); ``batch_size`` 64 to 512 (rl-zoo3: 4 to 1024), ``n_epochs`` 4, 8 or 10 (rl-zoo3: 1 to 20),
    ``clip_range`` 0.1 to 0.3 (rl-zoo3: to 0.4).

    :param trial: The Optuna trial.
    :return: raw parameters (rl-zoo3's names: ``n_steps_pow``, ``one_minus_gamma``, ...).
    """
    return {
        "n_steps_pow": trial.suggest_int("n_steps_pow", 5, 9),
        "batch_size_pow": trial.suggest_int("batch_size_pow", 6, 9),
        "one_minus_gamma": trial.suggest_float("one_minus_gamma", 0.0001, 0.03, log=True),
        "one_minus_gae_lambda": trial.suggest_float("one_minus_gae_lambda", 0.0001, 0.1, log=True),
        "learning_rate": trial.suggest_float("learning_rate", 1e-5, 0.002, log=True),
        "ent_coef": trial.suggest_float("ent_coef", 1e-8, 0.1, log=True),
        "clip_range": trial.suggest_categorical("clip_range", [0.1, 0.2, 0.3]),
        "n_epochs": trial.suggest_categorical("n_epochs", [4, 8, 10]),
        "max_grad_norm": trial.suggest_float("max_grad_norm", 0.3, 2.0),
        "net_arch": trial.suggest_categorical("net_arch", ["tiny", "small", "medium"]),
        "activation_fn": trial.suggest_categorical("activation_fn", ["tanh", "relu"]),
    }


def suggest_core_width(trial: optuna.Trial) -> dict[str, Any]:
    """
    The core's size: ``num_units`` modules of ``unit_size`` (an LSTM core is ``num_units * unit_size`` wide).

    :param trial: The Optuna trial.
    :return: raw parameters.
    """
    return {
        "num_units": trial.suggest_int("num_units", 4, 8, step=2),
        "unit_size": trial.suggest_categorical("unit_size", [16, 32, 64]),
    }


def suggest_rim(trial: optuna.Trial) -> dict[str, Any]:
    """
    A RIM's size, sparsity and selection. ``top_k`` is sampled as ``inactive_units`` (1 to 3), a range that does not
    depend on ``num_units``, so TPE sees a fixed space; ``top_k = num_units - inactive_units``. ``sticky_bonus``:
    the paper's fresh selection (0), a light hold (0.1) or the default (0.3, on the memory suite a hold for the
    whole episode). ``dense_size``: no dense LSTM beside the modules (the paper's RIM), half or the default's 96.

    :param trial: The Optuna trial.
    :return: raw parameters.
    """
    return {
        **suggest_core_width(trial),
        "inactive_units": trial.suggest_int("inactive_units", 1, 3),
        "sticky_bonus": trial.suggest_categorical("sticky_bonus", [0.0, 0.1, 0.3]),
        "dense_size": trial.suggest_categorical("dense_size", [0, 48, 96]),
    }


def suggest_metods(trial: optuna.Trial) -> dict[str, Any]:
    """
    A MetODS core's size, depth and plasticity options (:class:`~sb3_metarim.cores.metods.MetODSConfig`): N from 16 to
    64 (the paper: 20 for Harlow; the buffer holds about 8 N^2 bytes per step per env), S from 1 to 4, the shape
    of the plasticity ``alpha`` (the paper's ablation), the projection of the write, and ``W0``.

    :param trial: The Optuna trial.
    :return: raw parameters.
    """
    return {
        "num_neurons": trial.suggest_categorical("num_neurons", [16, 20, 32, 48, 64]),
        "recursions": trial.suggest_int("recursions", 1, 4),
        "plasticity": trial.suggest_categorical("plasticity", ["synapse", "neuron", "scalar"]),
        "write_projection": trial.suggest_categorical("write_projection", [False, True]),
        "w0": trial.suggest_categorical("w0", ["zero", "learned"]),
    }


def suggest_meta(trial: optuna.Trial) -> dict[str, Any]:
    """
    The fast/slow knobs of ``MetaRIMPPO``; the fast learning rate is PPO's ``learning_rate``. ``slow_max_kl``:
    every slow phase kept (the paper's) or the default limit, 0.05.

    :param trial: The Optuna trial.
    :return: raw parameters.
    """
    return {
        "slow_learning_rate": trial.suggest_float("slow_learning_rate", 1e-5, 1e-3, log=True),
        "fast_span": trial.suggest_categorical("fast_span", [8, 16, 32]),
        "slow_interval": trial.suggest_categorical("slow_interval", [1, 2, 4]),
        "slow_n_epochs": trial.suggest_categorical("slow_n_epochs", [1, 2]),
        "slow_max_kl": trial.suggest_categorical("slow_max_kl", [None, 0.05]),
    }


SEARCH_SPACES: dict[str, tuple[Callable[[optuna.Trial], dict[str, Any]], ...]] = {
    "metarim_ppo": (suggest_ppo, suggest_rim, suggest_meta),
    "rim_ppo": (suggest_ppo, suggest_rim),
    "metalstm_ppo": (suggest_ppo, suggest_core_width, suggest_meta),
    "gru_ppo": (suggest_ppo, suggest_core_width),
    "metods_ppo": (suggest_ppo, suggest_metods),
}


def convert_params(params: dict[str, Any]) -> dict[str, Any]:
    """
    Raw trial parameters to constructor arguments: PPO's through rl-zoo3's ``convert_onpolicy_params``
    (``gamma``, ``n_steps``, ``policy_kwargs.net_arch``, ...), the core's into ``policy_kwargs`` (``top_k`` from
    ``inactive_units``), the fast/slow knobs as they are. rl-zoo3's ``--trial-id`` calls it too.

    :param params: ``trial.params`` of a trial sampled by :func:`sample_metarim_params`.
    :return: keyword arguments of the algorithm.
    """
    hyperparams = convert_onpolicy_params({key: params[key] for key in PPO_PARAMS})
    core_options = core_option_owners()
    core = {key: value for key, value in params.items() if key in core_options}
    if "inactive_units" in params:
        core["top_k"] = params["num_units"] - params["inactive_units"]
    hyperparams["policy_kwargs"].update(core)
    hyperparams.update({key: params[key] for key in META_PARAMS if key in params})
    return hyperparams


def sample_metarim_params(
    trial: optuna.Trial, algo: str = "metarim_ppo", policy_kwargs: dict[str, Any] | None = None
) -> dict[str, Any]:
    """
    Sample the arguments of one of our algorithms for ``trial``.

    :param trial: The Optuna trial.
    :param algo: ``"metarim_ppo"`` (PPO, RIM and fast/slow knobs), ``"rim_ppo"`` (PPO and RIM),
        ``"metalstm_ppo"`` (PPO, core width and fast/slow knobs), ``"gru_ppo"`` (PPO and core width) or
        ``"metods_ppo"`` (PPO and MetODS's N, S and plasticity options).
    :param policy_kwargs: Your fixed ``policy_kwargs`` (features extractor, ...); the sampled keys are merged
        into a copy of them, sampled values winning.
    :return: keyword arguments of the algorithm (``learning_rate``, ``n_steps``, ``policy_kwargs``, ...).
    """
    if algo not in SEARCH_SPACES:
        raise ValueError(f"algo={algo!r}: no search space; allowed: {sorted(SEARCH_SPACES)}")
    params: dict[str, Any] = {}
    for suggest in SEARCH_SPACES[algo]:
        params.update(suggest(trial))
    hyperparams = convert_params(params)
    # The values the model gets, next to the raw parameters Optuna records (as rl-zoo3's samplers do).
    for key in ("n_steps", "batch_size", "gamma", "gae_lambda"):
        trial.set_user_attr(key, hyperparams[key])
    if "top_k" in hyperparams["policy_kwargs"]:
        trial.set_user_attr("top_k", hyperparams["policy_kwargs"]["top_k"])
    return merge_policy_kwargs(hyperparams, policy_kwargs)


def merge_policy_kwargs(hyperparams: dict[str, Any], base: dict[str, Any] | None) -> dict[str, Any]:
    """
    :param hyperparams: Sampled or loaded arguments, maybe with a ``policy_kwargs``.
    :param base: The ``policy_kwargs`` they are merged into (``None``: nothing to merge).
    :return: a copy of ``hyperparams`` whose ``policy_kwargs`` is ``base`` updated with theirs.
    """
    if not base:
        return dict(hyperparams)
    return {**hyperparams, "policy_kwargs": {**base, **hyperparams.get("policy_kwargs", {})}}


# The yaml's policy_kwargs of the objective running in this thread (Optuna's n_jobs runs trials in threads).
_base_policy_kwargs = threading.local()


@contextmanager
def base_policy_kwargs(policy_kwargs: dict[str, Any] | None) -> Iterator[None]:
    """
    Make :func:`zoo_sampler`'s samplers merge into ``policy_kwargs`` while the block runs in this thread.
    rl-zoo3 calls a sampler with ``(trial, n_actions, n_envs, additional_args)`` and then *replaces* the
    yaml's ``policy_kwargs`` by the sampler's: this is how the sampler learns the yaml's.

    :param policy_kwargs: The yaml's ``policy_kwargs`` (already evaluated).
    """
    _base_policy_kwargs.value = policy_kwargs
    try:
        yield
    finally:
        _base_policy_kwargs.value = None


def zoo_sampler(sampler: ZooSampler) -> ZooSampler:
    """
    :param sampler: An rl-zoo3 sampler, ``(trial, n_actions, n_envs, additional_args) -> hyperparams``.
    :return: the same sampler, merging its ``policy_kwargs`` into those set by :func:`base_policy_kwargs`.
    """

    @wraps(sampler)
    def merging_sampler(trial: optuna.Trial, n_actions: int, n_envs: int, additional_args: dict) -> dict[str, Any]:
        return merge_policy_kwargs(
            sampler(trial, n_actions, n_envs, additional_args), getattr(_base_policy_kwargs, "value", None)
        )

    return merging_sampler


def _sample_for_zoo(trial: optuna.Trial, n_actions: int, n_envs: int, additional_args: dict, *, algo: str) -> dict[str, Any]:
    """:func:`sample_metarim_params` with rl-zoo3's sampler signature (the other arguments are unused)."""
    return sample_metarim_params(trial, algo)


def rl_zoo_samplers() -> dict[str, ZooSampler]:
    """:return: rl-zoo3 samplers (merging into the yaml's ``policy_kwargs``) for each of our algorithms."""
    return {algo: zoo_sampler(partial(_sample_for_zoo, algo=algo)) for algo in SEARCH_SPACES}


def record_failures(objective: Callable[[optuna.Trial], float]) -> Callable[[optuna.Trial], float]:
    """
    Wrap an objective so that one bad trial does not stop the study. A trial that raises is recorded as
    failed (``FAIL``, its error in the ``"error"`` user attribute, the traceback logged) and the study goes
    on; a NaN result is recorded as failed by Optuna itself; ``TrialPruned`` stays a prune. A
    ``KeyboardInterrupt`` (Ctrl-C, or SIGTERM under ``sb3_metarim.zoo.train``) still stops the study: the trial is
    marked ``"interrupted"`` and its parameters are enqueued again right away (:func:`enqueue_retry`), so the
    next worker to ask the study for a trial (the resumed study, or another worker still running) runs it again.

    :param objective: The objective, ``trial -> value``.
    :return: the wrapped objective.
    """

    @wraps(objective)
    def recorded(trial: optuna.Trial) -> float:
        try:
            value = objective(trial)
        except optuna.TrialPruned:
            raise
        except KeyboardInterrupt:
            enqueue_retry(trial)
            trial.set_user_attr(INTERRUPTED_ATTR, True)
            raise
        except Exception as error:
            logger.warning("Trial %d raised, recorded as failed:\n%s", trial.number, traceback.format_exc())
            trial.set_user_attr(ERROR_ATTR, f"{type(error).__name__}: {error}")
            return math.nan
        if math.isnan(value):
            trial.set_user_attr(ERROR_ATTR, "the objective returned NaN")
        return value

    return recorded


def enqueue_retry(trial: optuna.Trial) -> None:
    """
    Enqueue ``trial``'s parameters again, with a ``"retry_of"`` user attribute, as it is interrupted.

    Done here, by the one process that ran the trial, rather than by the workers that resume the study: two of
    those resuming at the same moment would both see the trial without a retry and both enqueue one. Optuna hands
    each waiting trial to exactly one worker (its storages switch a trial from waiting to running atomically), so
    the interrupted trial runs again exactly once. If the storage cannot be written now, :func:`requeue_interrupted`
    enqueues it when the study resumes.

    :param trial: The trial being interrupted (still running).
    """
    try:
        trial.study.enqueue_trial(trial.params, user_attrs={RETRY_OF_ATTR: trial.number})
    except Exception:
        logger.warning("Trial %d: could not enqueue its retry now:\n%s", trial.number, traceback.format_exc())


def requeue_interrupted(study: optuna.Study) -> list[int]:
    """
    Enqueue the parameters of each trial marked ``"interrupted"`` that has no retry yet (a ``"retry_of"`` trial):
    those whose retry could not be enqueued when they were interrupted (:func:`enqueue_retry`), or interrupted by
    a version of this package that left the retry to the resumed study. Trials interrupted now have their retry.

    Unlike :func:`enqueue_retry`, this runs in the resuming workers: two resuming at the same moment may both
    enqueue a retry of such a trial.

    :param study: The study being resumed.
    :return: numbers of the trials enqueued again.
    """
    trials = study.get_trials(deepcopy=False)
    retried = {trial.user_attrs[RETRY_OF_ATTR] for trial in trials if RETRY_OF_ATTR in trial.user_attrs}
    interrupted = [
        trial
        for trial in trials
        if trial.state == TrialState.FAIL and trial.user_attrs.get(INTERRUPTED_ATTR) and trial.number not in retried
    ]
    for trial in interrupted:
        study.enqueue_trial(trial.params, user_attrs={RETRY_OF_ATTR: trial.number})
    return [trial.number for trial in interrupted]


def waiting_retries(study: optuna.Study) -> list[int]:
    """:return: numbers of the interrupted trials whose retry waits to be run."""
    waiting = study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
    return sorted(trial.user_attrs[RETRY_OF_ATTR] for trial in waiting if RETRY_OF_ATTR in trial.user_attrs)


def default_storage(log_folder: str | Path, algo: str, env_id: str) -> str:
    """
    :param log_folder: rl-zoo3's log folder (``-f``).
    :param algo: The algorithm.
    :param env_id: The environment id.
    :return: the embedded default storage: an Optuna journal file ``<log_folder>/<algo>/<env>_optuna.log``
        (several processes on this machine may share it).
    """
    return str(Path(log_folder) / algo / f"{env_id.replace('/', '-')}_optuna.log")


def default_study_name(algo: str, env_id: str) -> str:
    """:return: the default study name, ``<algo>_<env>``, so a rerun of the same command resumes the same study."""
    return f"{algo}_{env_id}"


def masked_storage(storage: str) -> str:
    """
    :param storage: A journal file path or a database URL.
    :return: it as we print and write it: a database URL with its password hidden (``***``), anything else as is.
    """
    if "://" not in storage:
        return storage
    return make_url(storage).render_as_string(hide_password=True)


def storage_without_password(storage: str) -> str:
    """
    The study storage as it may be printed and written into the log folder (rl-zoo3 writes its arguments, its command
    line and the pickled study there): ``env:NAME`` is the URL in the environment variable ``NAME``; a PostgreSQL URL's
    password moves into this process's ``PGPASSWORD``, which libpq reads (psycopg 2 and 3 alike), and out of the URL.
    libpq's other ways work as they do for ``psql``: ``PGPASSWORD`` set beforehand, ``~/.pgpass``.

    :param storage: ``--storage``'s value: a journal file, a database URL, or ``env:NAME``.
    :return: the storage without a password. A ``ValueError`` names an ``env:`` variable that is not set, and a
        password in another database's URL (it would be written into the log folder).
    """
    if storage.startswith(STORAGE_FROM_ENV):
        name = storage[len(STORAGE_FROM_ENV) :]
        if not os.environ.get(name):
            raise ValueError(f"--storage {storage}: the environment variable {name!r} is not set")
        storage = os.environ[name]
    if "://" not in storage:
        return storage
    url = make_url(storage)
    if url.password is None:
        return storage
    if url.get_backend_name() != "postgresql":
        raise ValueError(
            f"--storage {masked_storage(storage)}: a password in a {url.get_backend_name()} URL would be written into "
            "the log folder; give PostgreSQL's by PGPASSWORD or ~/.pgpass, or use a journal file"
        )
    os.environ[PASSWORD_VARIABLE] = str(url.password)
    without = URL.create(url.drivername, url.username, None, url.host, url.port, url.database, url.query)
    return without.render_as_string(hide_password=False)


def open_storage(
    url: str,
    heartbeat_interval: int | None = HEARTBEAT_INTERVAL,
    grace_period: int | None = GRACE_PERIOD,
    max_retries: int = MAX_RETRIES,
) -> BaseStorage:
    """
    :param url: A journal file path ending in ``.log`` (as rl-zoo3 decides) or a database URL
        (``sqlite:///...``, ``postgresql://user@host:port/db``).
    :param heartbeat_interval: Seconds between a running trial's heartbeats (``None``: no heartbeat; a trial
        whose worker is killed then stays ``RUNNING`` for ever).
    :param grace_period: Seconds without a heartbeat after which a running trial is failed, by the next worker
        that starts a trial (``None``: twice the interval, Optuna's default).
    :param max_retries: How often a trial whose worker died is enqueued again (with the same parameters).
    :return: what ``optuna.create_study(storage=...)`` / ``optuna.load_study`` take: a database URL's
        ``RDBStorage`` with Optuna's own heartbeat, or a journal storage with the same heartbeat
        (:class:`HeartbeatJournalStorage`; Optuna's ``JournalStorage`` has none).
    """
    callback = retry_dead_worker_trial(max_retries) if heartbeat_interval is not None else None
    if heartbeat_interval is not None:
        check_heartbeat(heartbeat_interval, grace_period)
    if url.endswith(".log"):
        Path(url).parent.mkdir(parents=True, exist_ok=True)
        # An absolute path: Optuna's lock is a symlink to the journal, and a relative target resolves from the
        # link's folder, so a lock left by a killed worker is never recognised as stale (its stat fails) and every
        # other worker waits for ever. With the absolute path the lock is broken after `lock_grace` seconds.
        path = str(Path(url).resolve())
        lock_grace = max(3, min(30, grace_period or 30))
        backend = JournalFileBackend(path, lock_obj=JournalFileSymlinkLock(path, grace_period=lock_grace))
        if heartbeat_interval is None:
            return JournalStorage(backend)
        return HeartbeatJournalStorage(backend, heartbeat_interval, grace_period, callback)
    if heartbeat_interval is None:
        return RDBStorage(url)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        # Optuna 4.9 renamed failed_trial_callback (deprecated since).
        name = "heartbeat_stale_trial_callback"
        if name not in inspect.signature(RDBStorage.__init__).parameters:
            name = "failed_trial_callback"
        return RDBStorage(url, heartbeat_interval=heartbeat_interval, grace_period=grace_period, **{name: callback})


def check_heartbeat(heartbeat_interval: object, grace_period: object) -> None:
    """Raise a ``ValueError`` naming a heartbeat setting that is not a positive integer or shorter than the interval."""
    for name, value in (("heartbeat_interval", heartbeat_interval), ("grace_period", grace_period)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ValueError(f"{name}={value!r}: must be a positive integer (seconds)")
    if grace_period is not None and grace_period <= heartbeat_interval:
        raise ValueError(f"grace_period={grace_period!r}: must exceed heartbeat_interval={heartbeat_interval!r}")


class HeartbeatJournalStorage(JournalStorage, BaseHeartbeat):
    """
    Optuna's ``JournalStorage`` with the heartbeat Optuna gives only its ``RDBStorage``: while a trial runs, its
    worker appends its time to the journal every ``heartbeat_interval`` seconds (a trial system attribute); before
    each trial, a worker fails the running trials without one for ``grace_period`` seconds and calls
    ``failed_trial_callback`` on those it failed (the journal applies one state change per trial, so exactly one
    worker does). The workers' clocks must agree to within the grace period (one machine, or NTP).

    :param backend: The journal backend (``JournalFileBackend``).
    :param heartbeat_interval: Seconds between heartbeats.
    :param grace_period: Seconds without a heartbeat before a running trial is failed (``None``: twice the interval).
    :param failed_trial_callback: ``callback(study, frozen_trial)`` for each trial failed so.
    """

    def __init__(
        self,
        backend: Any,
        heartbeat_interval: int,
        grace_period: int | None = None,
        failed_trial_callback: Callable[[optuna.Study, FrozenTrial], None] | None = None,
    ) -> None:
        super().__init__(backend)
        check_heartbeat(heartbeat_interval, grace_period)
        self.heartbeat_interval = heartbeat_interval
        self.grace_period = grace_period if grace_period is not None else 2 * heartbeat_interval
        self.failed_trial_callback = failed_trial_callback

    def record_heartbeat(self, trial_id: int) -> None:
        try:
            self.set_trial_system_attr(trial_id, HEARTBEAT_ATTR, time.time())
        except UpdateFinishedTrialError:
            pass  # failed by another worker meanwhile (this one was presumed dead)

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        now = time.time()
        stale = []
        for trial in self.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,)):
            start = trial.datetime_start.timestamp() if trial.datetime_start is not None else now
            if now - trial.system_attrs.get(HEARTBEAT_ATTR, start) > self.grace_period:
                stale.append(trial._trial_id)
        return stale

    def get_heartbeat_interval(self) -> int | None:
        return self.heartbeat_interval

    def get_heartbeat_stale_trial_callback(self) -> Callable[[optuna.Study, FrozenTrial], None] | None:
        return self.failed_trial_callback


class RetryDeadWorkerTrial:
    """
    The heartbeat's failed-trial callback: enqueue the failed trial's parameters again, with the user attributes
    ``"retry_of"`` (its number, as for an interrupted trial: :func:`enqueue_retry`), ``"retry_reason"`` and
    ``"retries"``, so that the next worker to ask for a trial runs it. Optuna calls it in the one worker that
    failed the trial. A class, not a closure: rl-zoo3 pickles the study, its storage and this with it.

    :param max_retries: How often one trial's parameters are run again after their worker died.
    """

    def __init__(self, max_retries: int = MAX_RETRIES) -> None:
        self.max_retries = max_retries

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        retries = trial.user_attrs.get(RETRIES_ATTR, 0) + 1
        if retries > self.max_retries:
            logger.warning("Trial %d: its worker died, %d times with these parameters; not run again", trial.number, retries)
            return
        print(f"Trial {trial.number}: its worker died (no heartbeat); its parameters are enqueued again")
        study.enqueue_trial(
            trial.params, user_attrs={RETRY_OF_ATTR: trial.number, RETRY_REASON_ATTR: WORKER_DIED, RETRIES_ATTR: retries}
        )


def retry_dead_worker_trial(max_retries: int = MAX_RETRIES) -> RetryDeadWorkerTrial:
    """:return: :class:`RetryDeadWorkerTrial` ``(max_retries)``."""
    return RetryDeadWorkerTrial(max_retries)


def fail_dead_workers_trials(study: optuna.Study) -> None:
    """Fail the running trials whose worker died and enqueue their retries now (Optuna also does before each trial)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)


def write_study_report(study: optuna.Study, folder: str | Path, storage: str = "", train_command: str = "") -> Path:
    """
    Write ``<study>_report.md`` (trials by state, best trial, parameter importances, every trial) with
    ``<study>_history.png`` (Optuna's optimization history) and ``<study>_importances.png`` (Optuna's
    parameter importances, once two trials have completed) in ``folder``.

    :param study: The study.
    :param folder: Where to write.
    :param storage: The study's storage URL, shown in the report.
    :param train_command: The command that trains with a trial's hyperparameters, without ``--trial-id``.
    :return: the markdown file's path.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    stem = study.study_name.replace("/", "-")
    trials = study.get_trials(deepcopy=False)
    complete = [trial for trial in trials if trial.state == TrialState.COMPLETE]
    lines = [f"# Study `{study.study_name}`", "", f"Storage: `{masked_storage(storage)}`" if storage else "", ""]
    counts = {state.name: sum(trial.state == state for trial in trials) for state in TrialState}
    lines += [f"{len(trials)} trials: " + ", ".join(f"{count} {name.lower()}" for name, count in counts.items() if count), ""]

    history = _save_optuna_plot(
        optuna.visualization.matplotlib.plot_optimization_history, study, folder / f"{stem}_history.png"
    )
    lines += ["## Optimization history", "", f"![history]({history.name})" if history else "no trial to plot", ""]
    lines += _best_trial_lines(study, complete, train_command)
    lines += _importance_lines(study, complete, folder / f"{stem}_importances.png")
    lines += ["## Trials", "", "| trial | state | value | duration (s) | params | note |", "|---|---|---|---|---|---|"]
    lines += [_trial_row(trial) for trial in trials]
    path = folder / f"{stem}_report.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def _best_trial_lines(study: optuna.Study, complete: list[FrozenTrial], train_command: str) -> list[str]:
    if not complete:
        return ["## Best trial", "", "no trial has completed yet", ""]
    best = study.best_trial
    lines = ["## Best trial", "", f"Trial {best.number}: value {best.value:.4g}", "", "| parameter | value |", "|---|---|"]
    lines += [f"| {key} | {value} |" for key, value in {**best.params, **best.user_attrs}.items()]
    if train_command:
        lines += ["", "Train with these hyperparameters:", "", f"    {train_command} --trial-id {best.number}"]
    return [*lines, ""]


def _importance_lines(study: optuna.Study, complete: list[FrozenTrial], path: Path) -> list[str]:
    lines = ["## Parameter importances", ""]
    if len(complete) < 2:
        return [*lines, f"needs two completed trials ({len(complete)} so far)", ""]
    importances = optuna.importance.get_param_importances(study)
    _save_optuna_plot(optuna.visualization.matplotlib.plot_param_importances, study, path)
    lines += [f"![importances]({path.name})", "", "| parameter | importance |", "|---|---|"]
    lines += [f"| {key} | {value:.3f} |" for key, value in importances.items()]
    return [*lines, ""]


def _save_optuna_plot(plot: Callable[[optuna.Study], Axes], study: optuna.Study, path: Path) -> Path | None:
    """Save one of ``optuna.visualization.matplotlib``'s plots of ``study``; :return: its path, ``None`` if empty."""
    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        ax: Axes = plot(study)
    figure = ax.figure
    figure.set_size_inches(8, 5)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)  # Optuna draws with pyplot, which keeps its figures
    return path


def _trial_row(trial: FrozenTrial) -> str:
    value = "" if trial.value is None else f"{trial.value:.4g}"
    duration = "" if trial.duration is None else f"{trial.duration.total_seconds():.1f}"
    params = ", ".join(
        f"{key}={value:.3g}" if isinstance(value, float) else f"{key}={value}" for key, value in trial.params.items()
    )
    note = trial.user_attrs.get(ERROR_ATTR, "")
    if trial.user_attrs.get(INTERRUPTED_ATTR):
        note = "interrupted"
    if RETRY_OF_ATTR in trial.user_attrs:
        note = f"retry of trial {trial.user_attrs[RETRY_OF_ATTR]}"
        if RETRY_REASON_ATTR in trial.user_attrs:
            note += f" ({trial.user_attrs[RETRY_REASON_ATTR]})"
    return f"| {trial.number} | {trial.state.name.lower()} | {value} | {duration} | {params} | {note} |"

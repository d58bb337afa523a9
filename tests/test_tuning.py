"""Optuna bookkeeping without training: interrupted trials are run again exactly once, however many workers resume."""

import threading

import optuna
import pytest
from optuna.trial import TrialState

from sb3_metarim.zoo.tuning import INTERRUPTED_ATTR, RETRY_OF_ATTR, open_storage, record_failures, requeue_interrupted

STUDY = "resume"


def objective(trial: optuna.Trial) -> float:
    return trial.suggest_float("x", 0.0, 1.0)


def interrupted(trial: optuna.Trial) -> float:
    trial.suggest_float("x", 0.0, 1.0)
    raise KeyboardInterrupt  # Ctrl-C, or SIGTERM under sb3_metarim.zoo.train


def resume(storage: str, barrier: threading.Barrier, errors: list[BaseException]) -> None:
    """One worker resuming the study, as ZooExperimentManager does: requeue, then run one trial."""
    try:
        # Its own storage object, as a separate process would have.
        study = optuna.load_study(study_name=STUDY, storage=open_storage(storage))
        read = study.get_trials

        def read_then_wait(*args, **kwargs):
            trials = read(*args, **kwargs)
            barrier.wait(timeout=60)  # both workers have read the study before either writes to it
            return trials

        study.get_trials = read_then_wait
        requeue_interrupted(study)
        del study.get_trials
        study.optimize(record_failures(objective), n_trials=1)
    except BaseException as error:  # reported by the test
        errors.append(error)


@pytest.fixture(params=["journal", "postgresql"])
def storage(request, tmp_path):
    """The storages several workers share (SQLite is not one: Optuna's waiting-trial hand-off needs row locks)."""
    if request.param == "journal":
        return str(tmp_path / "study.log")
    return request.getfixturevalue("postgres_url")


def test_two_workers_resuming_at_once_run_the_interrupted_trial_once(storage):
    study = optuna.create_study(storage=open_storage(storage), study_name=STUDY, direction="maximize")
    with pytest.raises(KeyboardInterrupt):
        study.optimize(record_failures(interrupted), n_trials=1)
    first = study.trials[0]
    assert first.state == TrialState.FAIL and first.user_attrs[INTERRUPTED_ATTR]

    barrier, errors = threading.Barrier(2), []
    workers = [threading.Thread(target=resume, args=(storage, barrier, errors)) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert not errors, errors

    trials = study.get_trials()
    retries = [trial for trial in trials if trial.user_attrs.get(RETRY_OF_ATTR) == first.number]
    assert len(retries) == 1, f"trial {first.number} re-queued {len(retries)} times: {[t.number for t in retries]}"
    assert retries[0].state == TrialState.COMPLETE and retries[0].params == first.params
    # Each worker ran one trial: the retry, and a new one.
    assert len(trials) == 3 and all(trial.state == TrialState.COMPLETE for trial in trials[1:])


def test_a_trial_interrupted_without_its_retry_is_requeued_on_resume(tmp_path):
    """A study interrupted by an older version (no retry enqueued) still gets its retry when it resumes."""
    study = optuna.create_study(storage=open_storage(str(tmp_path / "old.log")), study_name=STUDY)
    trial = study.ask()
    trial.suggest_float("x", 0.0, 1.0)
    trial.set_user_attr(INTERRUPTED_ATTR, True)
    study.tell(trial, state=TrialState.FAIL)
    assert requeue_interrupted(study) == [0]
    assert requeue_interrupted(study) == []
    waiting = study.get_trials(states=(TrialState.WAITING,))
    assert len(waiting) == 1 and waiting[0].user_attrs[RETRY_OF_ATTR] == 0

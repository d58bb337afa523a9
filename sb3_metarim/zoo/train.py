"""
``python -m sb3_metarim.zoo.train`` (console script ``sb3-metarim-train``): rl-zoo3's train CLI, every flag
included, with ``metarim_ppo``, ``rim_ppo`` and ``metalstm_ppo`` registered next to rl-zoo3's algorithms and
:class:`~sb3_metarim.zoo.experiment.ZooExperimentManager` as its experiment manager (``zoo_configs/<algo>.yml`` without
``-conf``, an embedded study storage for ``--optimize``, learning curve and study report).

.. code-block:: bash

    python -m sb3_metarim.zoo.train --algo metarim_ppo --env BabyAI-GoToLocal-v0 --seed 0 -P
    python -m sb3_metarim.zoo.train --algo metarim_ppo --env BabyAI-GoToLocal-v0 --optimize --n-trials 20 -n 100000
    # Checkpoints every 10000 steps; after a crash or a kill, the same command with --resume continues the run.
    python -m sb3_metarim.zoo.train --algo metarim_ppo --env BabyAI-GoToLocal-v0 --save-freq 10000 --resume

``--storage`` takes a journal file, a database URL, or ``env:NAME`` (the URL in the environment variable ``NAME``);
a PostgreSQL password never reaches the log folder or the output (it moves into ``PGPASSWORD`` for libpq; ``PGPASSWORD``
and ``~/.pgpass`` work as for ``psql``).

Flags of ours, next to rl-zoo3's: ``--resume`` (continue the latest run of ``-f``'s ``<algo>/<env>_<n>`` from
its latest checkpoint to the budget ``-n``; needs ``--save-freq``), ``--heartbeat-interval`` and
``--grace-period`` (seconds; a study's trial whose worker died is run again after the grace period, 0 turns the
heartbeat off).
"""

import argparse
import signal
import sys
from functools import partial

import rl_zoo3.train

from sb3_metarim.zoo.experiment import ZooExperimentManager, register
from sb3_metarim.zoo.tuning import GRACE_PERIOD, HEARTBEAT_INTERVAL, storage_without_password


def parse_own_arguments(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    """:return: our flags, and the arguments left for rl-zoo3's parser."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--resume", action="store_true", help="continue the latest run from its latest checkpoint")
    parser.add_argument("--heartbeat-interval", type=int, default=HEARTBEAT_INTERVAL, help="seconds; 0: no heartbeat")
    parser.add_argument("--grace-period", type=int, default=GRACE_PERIOD, help="seconds without heartbeat: dead")
    return parser.parse_known_args(argv)


def without_storage_password(argv: list[str]) -> list[str]:
    """:return: ``argv`` with ``--storage``'s value through :func:`~sb3_metarim.zoo.tuning.storage_without_password`
    (rl-zoo3 writes its arguments and its command line into the log folder)."""
    argv = list(argv)
    for index, argument in enumerate(argv):
        if argument == "--storage" and index + 1 < len(argv):
            argv[index + 1] = storage_without_password(argv[index + 1])
        elif argument.startswith("--storage="):
            argv[index] = "--storage=" + storage_without_password(argument.split("=", 1)[1])
    return argv


def main() -> None:
    """Register our algorithms, then run rl-zoo3's ``train()`` on ``sys.argv`` (less our own flags, and less a
    password in ``--storage``)."""
    own, argv = parse_own_arguments(sys.argv[1:])
    sys.argv[1:] = without_storage_password(argv)
    register()
    heartbeat = own.heartbeat_interval or None
    rl_zoo3.train.ExperimentManager = partial(
        ZooExperimentManager,
        heartbeat_interval=heartbeat,
        grace_period=own.grace_period if heartbeat else None,
        resume=own.resume,
    )
    # SIGTERM (kill, a cluster's time limit) stops like Ctrl-C: rl-zoo3 saves the model or closes the study,
    # and the trial under way is recorded as interrupted, to be run again when the study resumes.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    rl_zoo3.train.train()


if __name__ == "__main__":
    main()

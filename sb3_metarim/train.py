"""
``python -m sb3_metarim.train`` (console script ``sb3-metarim-train``): rl-zoo3's train CLI, every flag
included, with ``metarim_ppo``, ``rim_ppo`` and ``metalstm_ppo`` registered next to rl-zoo3's algorithms and
:class:`~sb3_metarim.zoo.ZooExperimentManager` as its experiment manager (``zoo_configs/<algo>.yml`` without
``-conf``, an embedded study storage for ``--optimize``, learning curve and study report).

.. code-block:: bash

    python -m sb3_metarim.train --algo metarim_ppo --env BabyAI-GoToLocal-v0 --seed 0 -P
    python -m sb3_metarim.train --algo metarim_ppo --env BabyAI-GoToLocal-v0 --optimize --n-trials 20 -n 100000
"""

import signal

import rl_zoo3.train

from sb3_metarim.zoo import ZooExperimentManager, register


def main() -> None:
    """Register our algorithms, then run rl-zoo3's ``train()`` on ``sys.argv``."""
    register()
    rl_zoo3.train.ExperimentManager = ZooExperimentManager
    # SIGTERM (kill, a cluster's time limit) stops like Ctrl-C: rl-zoo3 saves the model or closes the study,
    # and the trial under way is recorded as interrupted, to be run again when the study resumes.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    rl_zoo3.train.train()


if __name__ == "__main__":
    main()

"""
``python -m sb3_metarim.zoo.enjoy`` (console script ``sb3-metarim-enjoy``): rl-zoo3's enjoy CLI (run a trained
agent, every flag included) with our algorithms registered. With ``--video`` it runs rl-zoo3's
``record_video`` instead, with that script's flags (``-o`` output folder, ``-n`` video length, ...).

.. code-block:: bash

    python -m sb3_metarim.zoo.enjoy --algo metarim_ppo --env BabyAI-GoToLocal-v0 -f logs --no-render -n 2000
    python -m sb3_metarim.zoo.enjoy --video --algo metarim_ppo --env BabyAI-GoToLocal-v0 -f logs -n 500
"""

import runpy
import sys

import rl_zoo3.enjoy

from sb3_metarim.zoo.experiment import register

VIDEO_FLAG = "--video"


def main() -> None:
    """Register our algorithms, then run rl-zoo3's ``enjoy()`` (or its ``record_video`` with ``--video``)."""
    register()
    if VIDEO_FLAG in sys.argv[1:]:
        sys.argv.remove(VIDEO_FLAG)
        runpy.run_module("rl_zoo3.record_video", run_name="__main__")
    else:
        rl_zoo3.enjoy.enjoy()


if __name__ == "__main__":
    main()

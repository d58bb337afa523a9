"""
Environments of sb3-metarim, registered with gymnasium on import, and :func:`make_meta_env`. With the ``minigrid``
package installed (``pip install "sb3-metarim[minigrid]"``) this also registers MiniGrid and BabyAI; their wrappers
are in :mod:`sb3_metarim.envs.minigrid`.
"""

import gymnasium as gym

from sb3_metarim.envs.bandit import BernoulliBanditEnv, DependentBanditEnv
from sb3_metarim.envs.cue_memory import CueMemoryEnv
from sb3_metarim.envs.harlow import HarlowEnv
from sb3_metarim.envs.meta import make_meta_env
from sb3_metarim.envs.metamaze import MetaMazeEnv
from sb3_metarim.envs.tmaze import TMazeEnv
from sb3_metarim.envs.two_step import TwoStepEnv

try:
    import sb3_metarim.envs.minigrid  # noqa: F401  (registers MiniGrid and BabyAI)
except ModuleNotFoundError as error:  # minigrid is optional
    if error.name != "minigrid":
        raise

__all__ = [
    "BernoulliBanditEnv",
    "CueMemoryEnv",
    "DependentBanditEnv",
    "HarlowEnv",
    "MetaMazeEnv",
    "TMazeEnv",
    "TwoStepEnv",
    "make_meta_env",
]

if "sb3_metarim/CueMemory-v0" not in gym.registry:
    gym.register("sb3_metarim/CueMemory-v0", entry_point=CueMemoryEnv, max_episode_steps=100)
if "sb3_metarim/BernoulliBandit-v0" not in gym.registry:
    gym.register("sb3_metarim/BernoulliBandit-v0", entry_point=BernoulliBanditEnv)
if "sb3_metarim/TMaze-v0" not in gym.registry:
    gym.register("sb3_metarim/TMaze-v0", entry_point=TMazeEnv)

# The meta-RL tasks of MetODS (Chalvidal et al. 2022) and Wang et al. (2016, 2018): each episode is one task.
for _name, _entry_point in (
    ("Harlow-v0", HarlowEnv),
    ("MetaMaze-v0", MetaMazeEnv),
    ("DependentBandit-v0", DependentBanditEnv),
    ("TwoStep-v0", TwoStepEnv),
):
    if f"sb3_metarim/{_name}" not in gym.registry:
        gym.register(f"sb3_metarim/{_name}", entry_point=_entry_point)

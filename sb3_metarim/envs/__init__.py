"""Environments of sb3-metarim, registered with gymnasium on import."""

import gymnasium as gym

from sb3_metarim.envs.bandit import BernoulliBanditEnv
from sb3_metarim.envs.cue_memory import CueMemoryEnv
from sb3_metarim.envs.minigrid import (
    GridIdsWrapper,
    MiniGridFeaturesExtractor,
    MissionTokenWrapper,
    make_meta_env,
    tokenize_mission,
)
from sb3_metarim.envs.tmaze import TMazeEnv

__all__ = [
    "BernoulliBanditEnv",
    "CueMemoryEnv",
    "GridIdsWrapper",
    "MiniGridFeaturesExtractor",
    "MissionTokenWrapper",
    "TMazeEnv",
    "make_meta_env",
    "tokenize_mission",
]

if "sb3_metarim/CueMemory-v0" not in gym.registry:
    gym.register("sb3_metarim/CueMemory-v0", entry_point=CueMemoryEnv, max_episode_steps=100)
if "sb3_metarim/BernoulliBandit-v0" not in gym.registry:
    gym.register("sb3_metarim/BernoulliBandit-v0", entry_point=BernoulliBanditEnv)
if "sb3_metarim/TMaze-v0" not in gym.registry:
    gym.register("sb3_metarim/TMaze-v0", entry_point=TMazeEnv)

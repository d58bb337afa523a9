"""Environments of sb3-metarim, registered with gymnasium on import."""

import gymnasium as gym

from sb3_metarim.envs.cue_memory import CueMemoryEnv

__all__ = ["CueMemoryEnv"]

if "sb3_metarim/CueMemory-v0" not in gym.registry:
    gym.register("sb3_metarim/CueMemory-v0", entry_point=CueMemoryEnv, max_episode_steps=100)

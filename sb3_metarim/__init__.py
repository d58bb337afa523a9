"""Modular meta-reinforcement learning for Stable-Baselines3: RIM cores trained fast and slow."""

from sb3_metarim import envs  # noqa: F401  (registers the package's gymnasium environments)
from sb3_metarim.callbacks import TrialLogger
from sb3_metarim.envs import MiniGridFeaturesExtractor, make_meta_env
from sb3_metarim.meta_rim_ppo import MetaRIMPPO
from sb3_metarim.policies import CnnPolicy, MlpPolicy, MultiInputPolicy, RIMActorCriticPolicy
from sb3_metarim.rim import RIM
from sb3_metarim.wrappers import PrevActionRewardWrapper, TrialWrapper

__all__ = [
    "RIM",
    "CnnPolicy",
    "MetaRIMPPO",
    "MiniGridFeaturesExtractor",
    "MlpPolicy",
    "MultiInputPolicy",
    "PrevActionRewardWrapper",
    "RIMActorCriticPolicy",
    "TrialLogger",
    "TrialWrapper",
    "make_meta_env",
]
__version__ = "0.1.0"

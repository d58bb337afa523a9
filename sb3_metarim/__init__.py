"""Modular meta-reinforcement learning for Stable-Baselines3: RIM cores trained fast and slow, and MetODS."""

from sb3_metarim import envs  # noqa: F401  (registers the package's gymnasium environments)
from sb3_metarim.callbacks import TrialLogger
from sb3_metarim.cores import make_core, register_core
from sb3_metarim.envs import make_meta_env
from sb3_metarim.meta_rim_ppo import MetaRIMPPO
from sb3_metarim.metods import MetODS, MetODSConfig
from sb3_metarim.policies import CnnPolicy, MlpPolicy, MultiInputPolicy, RIMActorCriticPolicy
from sb3_metarim.rim import RIM, RIMConfig
from sb3_metarim.torch_layers import MiniGridFeaturesExtractor
from sb3_metarim.variants import RIMPPO, MetaLSTMPPO, MetODSPPO
from sb3_metarim.wrappers import PrevActionRewardWrapper, TrialWrapper

__all__ = [
    "RIM",
    "RIMPPO",
    "CnnPolicy",
    "MetODS",
    "MetODSConfig",
    "MetODSPPO",
    "MetaLSTMPPO",
    "MetaRIMPPO",
    "MiniGridFeaturesExtractor",
    "MlpPolicy",
    "MultiInputPolicy",
    "PrevActionRewardWrapper",
    "RIMActorCriticPolicy",
    "RIMConfig",
    "TrialLogger",
    "TrialWrapper",
    "make_core",
    "make_meta_env",
    "register_core",
]
__version__ = "0.1.0"

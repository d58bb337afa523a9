"""Modular meta-reinforcement learning for Stable-Baselines3: RIM cores trained fast and slow, and MetODS."""

from sb3_metarim import envs  # noqa: F401  (registers the package's gymnasium environments)
from sb3_metarim.common.callbacks import TrialLogger
from sb3_metarim.common.torch_layers import MiniGridFeaturesExtractor
from sb3_metarim.common.wrappers import PrevActionRewardWrapper, TrialWrapper
from sb3_metarim.cores import RIM, MetODS, MetODSConfig, RIMConfig, make_core, register_core
from sb3_metarim.envs import make_meta_env
from sb3_metarim.meta_rim_ppo import (
    GRUPPO,
    RIMPPO,
    CnnPolicy,
    MetaLSTMPPO,
    MetaRIMPPO,
    MetODSPPO,
    MlpPolicy,
    MultiInputPolicy,
    RIMActorCriticPolicy,
)
from sb3_metarim.version import __version__

__all__ = [
    "GRUPPO",
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
    "__version__",
    "make_core",
    "make_meta_env",
    "register_core",
]

"""MetaRIMPPO (RecurrentPPO trained fast and slow), its policies and its variants."""

from sb3_metarim.meta_rim_ppo.meta_rim_ppo import MetaRIMPPO, NonFiniteLossError
from sb3_metarim.meta_rim_ppo.policies import CnnPolicy, MlpPolicy, MultiInputPolicy, RIMActorCriticPolicy
from sb3_metarim.meta_rim_ppo.variants import ALGORITHMS, GRUPPO, RIMPPO, MetaLSTMPPO, MetODSPPO

__all__ = [
    "ALGORITHMS",
    "GRUPPO",
    "RIMPPO",
    "CnnPolicy",
    "MetODSPPO",
    "MetaLSTMPPO",
    "MetaRIMPPO",
    "MlpPolicy",
    "MultiInputPolicy",
    "NonFiniteLossError",
    "RIMActorCriticPolicy",
]

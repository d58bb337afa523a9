"""Recurrent cores: the registry (``recurrent_core`` by name) and one module per core, each with its options class."""

from sb3_metarim.cores.gru import GRU, GRUConfig
from sb3_metarim.cores.lstm import LSTMConfig
from sb3_metarim.cores.metods import MetODS, MetODSConfig
from sb3_metarim.cores.registry import (
    CORE_CONFIGS,
    CORES,
    GRU_CORE,
    LSTM_CORE,
    METODS_CORE,
    RIM_CORE,
    core_config_class,
    core_config_from_policy_kwargs,
    default_slow_parameters,
    make_core,
    register_core,
)
from sb3_metarim.cores.rim import RIM, RIMConfig

__all__ = [
    "CORES",
    "CORE_CONFIGS",
    "GRU",
    "GRU_CORE",
    "LSTM_CORE",
    "METODS_CORE",
    "RIM",
    "RIM_CORE",
    "GRUConfig",
    "LSTMConfig",
    "MetODS",
    "MetODSConfig",
    "RIMConfig",
    "core_config_class",
    "core_config_from_policy_kwargs",
    "default_slow_parameters",
    "make_core",
    "register_core",
]

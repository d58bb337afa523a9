"""
MetaRIMPPO's variants for comparisons: :class:`RIMPPO`, the RIM trained on one timescale (the "modular"
baseline, rl-zoo3 name ``rim_ppo``), :class:`MetaLSTMPPO`, an LSTM core trained fast and slow (the meta-LSTM
ablation, ``metalstm_ppo``), :class:`GRUPPO`, a GRU core (``gru_ppo``, by default on one timescale: RecurrentPPO
with a GRU), and :class:`MetODSPPO`, a MetODS core (self-modifying synapses, Chalvidal et al.
2022) trained on one timescale as in its paper (``metods_ppo``). Plain SB3 algorithms: loading one needs neither
rl-zoo3 nor Optuna.
"""

from collections.abc import Sequence
from typing import Any

from stable_baselines3.common.base_class import BaseAlgorithm

from sb3_metarim.cores.lstm import LSTM_SLOW_PARAMETERS
from sb3_metarim.cores.metods import METODS_SLOW_PARAMETERS
from sb3_metarim.meta_rim_ppo.meta_rim_ppo import MetaRIMPPO

# The meta-LSTM split (the value function slow): the "lstm" core's default slow set.
META_LSTM_SLOW_PARAMETERS = LSTM_SLOW_PARAMETERS


def with_core(policy_kwargs: dict[str, Any] | None, core: str, explanation: str) -> dict[str, Any]:
    """
    :param policy_kwargs: A variant's ``policy_kwargs``.
    :param core: The core the variant is made of, ``recurrent_core``'s default there.
    :param explanation: What the variant is and what to use instead, for the error's message.
    :return: a copy of ``policy_kwargs`` with ``recurrent_core`` set; a ``ValueError`` if it names another core.
    """
    policy_kwargs = {"recurrent_core": core, **(policy_kwargs or {})}
    if policy_kwargs["recurrent_core"] != core:
        raise ValueError(f"policy_kwargs['recurrent_core']={policy_kwargs['recurrent_core']!r}: {explanation}")
    return policy_kwargs


class RIMPPO(MetaRIMPPO):
    """
    :class:`~sb3_metarim.MetaRIMPPO` with ``meta=False``: the RIM trained on one timescale, all parameters
    together as ``RecurrentPPO`` trains them (the "modular" baseline, rl-zoo3 name ``rim_ppo``).

    :param policy: As for ``MetaRIMPPO``.
    :param env: As for ``MetaRIMPPO``.
    :param meta: Must stay ``False``.
    :param kwargs: Every other ``MetaRIMPPO`` argument.
    """

    def __init__(self, policy: Any, env: Any, meta: bool = False, **kwargs: Any) -> None:
        if meta is not False:
            raise ValueError(f"meta={meta!r}: rim_ppo trains on one timescale (meta=False); use metarim_ppo for fast/slow")
        super().__init__(policy, env, meta=False, **kwargs)


class MetaLSTMPPO(MetaRIMPPO):
    """
    The meta-LSTM ablation (rl-zoo3 name ``metalstm_ppo``): :class:`~sb3_metarim.MetaRIMPPO` with an
    ``nn.LSTM`` core (``policy_kwargs["recurrent_core"] = "lstm"``, ``num_units * unit_size`` wide) trained fast
    and slow, the value function (``value_net`` and the critic's core) being the slow set.

    :param policy: As for ``MetaRIMPPO``.
    :param env: As for ``MetaRIMPPO``.
    :param slow_parameters: Patterns selecting the slow set; default the value function.
    :param policy_kwargs: As for ``MetaRIMPPO``; ``recurrent_core`` must be ``"lstm"`` (the default here).
    :param meta: Must stay ``True``.
    :param kwargs: Every other ``MetaRIMPPO`` argument.
    """

    def __init__(
        self,
        policy: Any,
        env: Any,
        slow_parameters: Sequence[str] = META_LSTM_SLOW_PARAMETERS,
        policy_kwargs: dict[str, Any] | None = None,
        meta: bool = True,
        **kwargs: Any,
    ) -> None:
        if meta is not True:
            raise ValueError(f"meta={meta!r}: metalstm_ppo trains fast and slow (meta=True); use ppo_lstm for one timescale")
        policy_kwargs = with_core(policy_kwargs, "lstm", "metalstm_ppo has an LSTM core; use metarim_ppo for a RIM")
        super().__init__(policy, env, slow_parameters=slow_parameters, policy_kwargs=policy_kwargs, meta=True, **kwargs)


class GRUPPO(MetaRIMPPO):
    """
    A GRU core (rl-zoo3 name ``gru_ppo``): :class:`~sb3_metarim.MetaRIMPPO` with
    ``policy_kwargs["recurrent_core"] = "gru"`` (:class:`~sb3_metarim.cores.gru.GRUConfig`: ``lstm_hidden_size``
    wide, ``n_lstm_layers`` stacked, ``lstm_kwargs`` for ``nn.GRU``), trained on one timescale by default, as
    ``RecurrentPPO`` trains its LSTM. With ``meta=True`` it trains fast and slow, the value function being the slow
    set (as :class:`MetaLSTMPPO`).

    :param policy: As for ``MetaRIMPPO``.
    :param env: As for ``MetaRIMPPO``.
    :param policy_kwargs: As for ``MetaRIMPPO``; ``recurrent_core`` must be ``"gru"`` (the default here).
    :param meta: ``False`` (default): one timescale; ``True``: fast and slow.
    :param kwargs: Every other ``MetaRIMPPO`` argument.
    """

    def __init__(
        self, policy: Any, env: Any, policy_kwargs: dict[str, Any] | None = None, meta: bool = False, **kwargs: Any
    ) -> None:
        policy_kwargs = with_core(
            policy_kwargs, "gru", "gru_ppo has a GRU core; use metarim_ppo for a RIM, metalstm_ppo for an LSTM"
        )
        super().__init__(policy, env, policy_kwargs=policy_kwargs, meta=meta, **kwargs)


class MetODSPPO(MetaRIMPPO):
    """
    MetODS (rl-zoo3 name ``metods_ppo``): :class:`~sb3_metarim.MetaRIMPPO` with a
    :class:`~sb3_metarim.cores.metods.MetODS` core (``policy_kwargs["recurrent_core"] = "metods"``, the default here;
    its options, :class:`~sb3_metarim.cores.metods.MetODSConfig`'s fields, in ``policy_kwargs``), trained on one
    timescale as in the paper (``meta=False``). With ``meta=True`` the slow set defaults to the plasticity
    parameters (``alpha``, ``kappa``, ``beta`` of both cores).

    :param policy: As for ``MetaRIMPPO``; use ``"MultiInputPolicy"`` with
        :class:`~sb3_metarim.common.wrappers.PrevActionRewardWrapper`'s Dict observations.
    :param env: As for ``MetaRIMPPO``.
    :param policy_kwargs: As for ``MetaRIMPPO``; ``recurrent_core`` must be ``"metods"``.
    :param meta: ``False`` (default): one timescale; ``True``: fast and slow.
    :param slow_parameters: Patterns selecting the slow set (used with ``meta=True``).
    :param kwargs: Every other ``MetaRIMPPO`` argument.
    """

    def __init__(
        self,
        policy: Any,
        env: Any,
        policy_kwargs: dict[str, Any] | None = None,
        meta: bool = False,
        slow_parameters: Sequence[str] = METODS_SLOW_PARAMETERS,
        **kwargs: Any,
    ) -> None:
        policy_kwargs = with_core(
            policy_kwargs, "metods", "metods_ppo has a MetODS core; use rim_ppo or metarim_ppo for a RIM"
        )
        super().__init__(policy, env, policy_kwargs=policy_kwargs, meta=meta, slow_parameters=slow_parameters, **kwargs)


# The package's algorithms by their rl-zoo3 names (the zoo's --algo and the benchmark suites' `algo`).
ALGORITHMS: dict[str, type[BaseAlgorithm]] = {
    "metarim_ppo": MetaRIMPPO,
    "rim_ppo": RIMPPO,
    "metalstm_ppo": MetaLSTMPPO,
    "gru_ppo": GRUPPO,
    "metods_ppo": MetODSPPO,
}

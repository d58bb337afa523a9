"""Recurrent actor-critic policies whose recurrent core is a RIM (or, for ablations, an LSTM)."""

from typing import Any

import torch as th
from gymnasium import spaces
from sb3_contrib.common.recurrent.policies import RecurrentActorCriticPolicy
from stable_baselines3.common.torch_layers import CombinedExtractor, NatureCNN
from stable_baselines3.common.type_aliases import Schedule
from torch import nn

from sb3_metarim.rim import RIM, check_rim_arguments
from sb3_metarim.validation import check_positive_int

RECURRENT_CORES = ("rim", "lstm")


class RIMActorCriticPolicy(RecurrentActorCriticPolicy):
    """
    ``RecurrentActorCriticPolicy`` with a RIM where sb3-contrib puts its ``nn.LSTM``.

    The core's state keeps the LSTM layout ``(1, batch, num_units * unit_size)``, so
    ``RecurrentPPO``'s rollout buffer and hidden-state handling work unchanged. The critic has its
    own core, as in ``RecurrentPPO`` (``enable_critic_lstm=True``); ``shared_lstm=True`` shares the
    actor's core (the critic then does not train it) and ``enable_critic_lstm=False`` gives the
    critic no memory. Every ``RecurrentActorCriticPolicy`` argument is accepted except
    ``lstm_hidden_size``: the width is ``num_units * unit_size`` for both cores.

    :param observation_space: Observation space.
    :param action_space: Action space.
    :param lr_schedule: Learning rate schedule.
    :param recurrent_core: ``"rim"`` or ``"lstm"`` (an ``nn.LSTM`` of the same width, for ablations).
    :param num_units: Number of RIM modules.
    :param top_k: Number of active modules per step.
    :param unit_size: Hidden size of each module.
    :param cell: Cell of each module, ``"lstm"`` or ``"gru"``.
    :param input_key_size: Key/query size of the input attention.
    :param input_value_size: Value size of the input attention.
    :param comm_heads: Heads of the communication attention.
    :param comm_key_size: Key/query size per communication head.
    :param comm_value_size: Value size per communication head.
    :param dropout: Dropout on the attention probabilities (keep 0 with PPO).
    :param kwargs: Arguments of ``RecurrentActorCriticPolicy`` (``net_arch``, ``n_lstm_layers``,
        ``shared_lstm``, ``enable_critic_lstm``, ``lstm_kwargs``, ...).
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        lr_schedule: Schedule,
        recurrent_core: str = "rim",
        num_units: int = 6,
        top_k: int = 4,
        unit_size: int = 32,
        cell: str = "lstm",
        input_key_size: int = 64,
        input_value_size: int = 64,
        comm_heads: int = 4,
        comm_key_size: int = 32,
        comm_value_size: int = 32,
        dropout: float = 0.0,
        **kwargs: Any,
    ) -> None:
        self.core_kwargs = dict(
            num_units=num_units,
            top_k=top_k,
            unit_size=unit_size,
            cell=cell,
            input_key_size=input_key_size,
            input_value_size=input_value_size,
            comm_heads=comm_heads,
            comm_key_size=comm_key_size,
            comm_value_size=comm_value_size,
            dropout=dropout,
        )
        check_core_arguments(recurrent_core, kwargs, self.core_kwargs)
        self.recurrent_core = recurrent_core
        super().__init__(observation_space, action_space, lr_schedule, lstm_hidden_size=num_units * unit_size, **kwargs)
        if recurrent_core == "rim":
            self.lstm_actor = RIM(self.features_dim, **self.core_kwargs)
            if self.lstm_critic is not None:
                self.lstm_critic = RIM(self.features_dim, **self.core_kwargs)
            # The parent built its optimizer over the LSTM it made: rebuild it over the RIM.
            self.optimizer = self.optimizer_class(self.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs)

    @staticmethod
    def _process_sequence(
        features: th.Tensor,
        lstm_states: tuple[th.Tensor, th.Tensor],
        episode_starts: th.Tensor,
        lstm: nn.Module,
    ) -> tuple[th.Tensor, tuple[th.Tensor, th.Tensor]]:
        """
        Run the core on padded sequences, resetting the state at episode starts.

        A RIM steps through the sequence in Python anyway, so it resets inside its own loop instead
        of sb3-contrib's second per-step loop; an ``nn.LSTM`` takes the parent's path.
        """
        if not isinstance(lstm, RIM):
            return RecurrentActorCriticPolicy._process_sequence(features, lstm_states, episode_starts, lstm)
        n_seq = lstm_states[0].shape[1]
        features_sequence = features.reshape((n_seq, -1, lstm.input_size)).swapaxes(0, 1)
        episode_starts = episode_starts.reshape((n_seq, -1)).swapaxes(0, 1)
        output, lstm_states = lstm(features_sequence, lstm_states, episode_starts)
        return th.flatten(output.transpose(0, 1), start_dim=0, end_dim=1), lstm_states

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(
            share_features_extractor=self.share_features_extractor,
            n_lstm_layers=self.lstm_actor.num_layers,
            shared_lstm=self.shared_lstm,
            enable_critic_lstm=self.enable_critic_lstm,
            lstm_kwargs=self.lstm_kwargs,
            recurrent_core=self.recurrent_core,
            **self.core_kwargs,
        )
        return data


class RIMActorCriticCnnPolicy(RIMActorCriticPolicy):
    """:class:`RIMActorCriticPolicy` with SB3's ``NatureCNN`` features extractor by default."""

    def __init__(self, *args: Any, features_extractor_class: type[nn.Module] = NatureCNN, **kwargs: Any) -> None:
        super().__init__(*args, features_extractor_class=features_extractor_class, **kwargs)


class RIMMultiInputActorCriticPolicy(RIMActorCriticPolicy):
    """:class:`RIMActorCriticPolicy` for Dict observations, with SB3's ``CombinedExtractor`` by default."""

    def __init__(self, *args: Any, features_extractor_class: type[nn.Module] = CombinedExtractor, **kwargs: Any) -> None:
        super().__init__(*args, features_extractor_class=features_extractor_class, **kwargs)


def check_core_arguments(recurrent_core: str, policy_kwargs: dict[str, Any], core_kwargs: dict[str, Any]) -> None:
    """Raise a ``ValueError`` naming the first core argument that is not allowed."""
    if recurrent_core not in RECURRENT_CORES:
        raise ValueError(f"recurrent_core={recurrent_core!r}: must be one of {RECURRENT_CORES}")
    if "lstm_hidden_size" in policy_kwargs:
        raise ValueError(
            f"lstm_hidden_size={policy_kwargs['lstm_hidden_size']!r}: not an argument of MetaRIMPPO policies; "
            "the core's width is num_units * unit_size (for an LSTM core too)"
        )
    n_layers = policy_kwargs.get("n_lstm_layers", 1)
    if recurrent_core == "rim" and n_layers != 1:
        raise ValueError(f"n_lstm_layers={n_layers!r}: a RIM core has exactly 1 layer")
    if recurrent_core == "rim":
        check_rim_arguments(**core_kwargs)
        return
    for name in ("num_units", "unit_size"):
        check_positive_int(name, core_kwargs[name])


MlpPolicy = RIMActorCriticPolicy
CnnPolicy = RIMActorCriticCnnPolicy
MultiInputPolicy = RIMMultiInputActorCriticPolicy

"""
Recurrent actor-critic policies whose recurrent core is a RIM, a MetODS layer (or, for ablations, an LSTM; see
:mod:`sb3_metarim.cores`).
"""

from typing import Any

import torch as th
from gymnasium import spaces
from sb3_contrib.common.recurrent.policies import RecurrentActorCriticPolicy
from sb3_contrib.common.recurrent.type_aliases import RNNStates
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, CombinedExtractor, NatureCNN
from stable_baselines3.common.type_aliases import Schedule
from torch import nn

from sb3_metarim.cores.registry import (
    LSTM_CORE,
    RIM_CORE,
    core_config_from_policy_kwargs,
    make_core,
    with_core_options_signature,
)
from sb3_metarim.cores.rim import fusable_rims, run_rims


class RIMActorCriticPolicy(RecurrentActorCriticPolicy):
    """
    ``RecurrentActorCriticPolicy`` with a RIM (or another registered core) where sb3-contrib puts its ``nn.LSTM``.

    The core's state keeps the LSTM layout ``(n_lstm_layers, batch, hidden_size)`` (for a RIM the output's width and
    the sticky selection's flags, ``RIMConfig.hidden_size``; ``ceil(N^2 / 2)`` for MetODS, one layer), so
    ``RecurrentPPO``'s rollout buffer and hidden-state handling work unchanged;
    the ``mlp_extractor`` (and the critic's linear layer without a critic core) reads the core's output width,
    its config's ``output_size`` (the state width for a RIM, N for MetODS). The critic has its
    own core, as in ``RecurrentPPO`` (``enable_critic_lstm=True``); ``shared_lstm=True`` shares the
    actor's core (the critic then does not train it) and ``enable_critic_lstm=False`` gives the
    critic no memory. Every ``RecurrentActorCriticPolicy`` argument is accepted; ``lstm_hidden_size`` sets the
    core's total width (:func:`~sb3_metarim.cores.registry.width_options`: the modules and the dense LSTM of a RIM,
    half each by default, any width by :meth:`~sb3_metarim.cores.rim.RIMConfig.options_for_width`'s rule, the
    ``nn.LSTM``'s width for ``"lstm"``, N for MetODS), else the core's options do.

    The core's options are the fields of its config class (:func:`~sb3_metarim.cores.core_config_class`):
    :class:`~sb3_metarim.cores.rim.RIMConfig`'s (``num_units``, ``top_k``, ``unit_size``, ``cell``, ...) for ``"rim"``,
    :class:`~sb3_metarim.cores.LSTMConfig`'s (``num_units``, ``unit_size``) for ``"lstm"``,
    :class:`~sb3_metarim.cores.metods.MetODSConfig`'s (``num_neurons``, ``recursions``, ``w0``, ...) for
    ``"metods"``, given as keyword arguments (``policy_kwargs``): the signature lists every core's, and an option
    of another core than the chosen one is an error.
    ``recurrent_core="lstm"`` keeps sb3-contrib's own ``nn.LSTM`` (exactly ``RecurrentPPO``'s, ``lstm_hidden_size``
    or ``num_units * unit_size`` wide, 192 by default, configured by ``n_lstm_layers`` and ``lstm_kwargs``); any
    other core is built by :func:`~sb3_metarim.cores.make_core`. ``n_lstm_layers`` stacks RIMs (and GRUs) as
    ``nn.LSTM`` stacks layers, and ``lstm_kwargs`` gives them what of ``nn.LSTM``'s arguments has a meaning for them
    (a RIM: ``dropout``, between layers); MetODS refuses both (``n_lstm_layers`` other than 1). A refused argument
    is a :class:`~sb3_metarim.common.validation.PolicyArgumentError`, a ``ValueError`` and, as sb3-contrib's own
    checks of the policy's arguments, an ``AssertionError``.

    :param observation_space: Observation space.
    :param action_space: Action space.
    :param lr_schedule: Learning rate schedule.
    :param recurrent_core: A core registered in :data:`sb3_metarim.cores.CORES`: ``"rim"``, ``"metods"`` or
        ``"lstm"`` (an ``nn.LSTM`` of the RIM's width, for ablations).
    :param kwargs: The core's options (its config's fields) and the arguments of
        ``RecurrentActorCriticPolicy`` (``net_arch``, ``n_lstm_layers``, ``shared_lstm``,
        ``enable_critic_lstm``, ``lstm_kwargs``, ...).
    """

    @with_core_options_signature
    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        lr_schedule: Schedule,
        recurrent_core: str = RIM_CORE,
        **kwargs: Any,
    ) -> None:
        self.core_config = core_config_from_policy_kwargs(recurrent_core, kwargs)
        self.recurrent_core = recurrent_core
        # The parent sizes the mlp_extractor (and the critic's linear layer) by lstm_hidden_size: the output width.
        super().__init__(observation_space, action_space, lr_schedule, lstm_hidden_size=self.core_config.output_size, **kwargs)
        if recurrent_core != LSTM_CORE:
            # The parent built nn.LSTMs (kept for "lstm": RecurrentPPO's core, same initialisation): replace them.
            # A core that stacks as nn.LSTM does takes the parent's n_lstm_layers and lstm_kwargs, as its config says.
            n_layers = self.lstm_hidden_state_shape[0]
            takes = self.core_config.takes_rnn_arguments
            rnn_arguments = self.core_config.rnn_arguments(n_layers, self.lstm_kwargs) if takes else {}
            self.lstm_actor = make_core(recurrent_core, self.features_dim, **self.core_kwargs, **rnn_arguments)
            if self.lstm_critic is not None:
                self.lstm_critic = make_core(recurrent_core, self.features_dim, **self.core_kwargs, **rnn_arguments)
            # predict() starts from zeros of this shape: the stored state's width, the core's hidden_size.
            self.lstm_hidden_state_shape = (self.lstm_actor.num_layers, 1, self.lstm_actor.hidden_size)
            # The parent built its optimizer over the LSTM it made: rebuild it over the new core.
            self.optimizer = self.optimizer_class(self.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs)

    def make_features_extractor(self) -> BaseFeaturesExtractor:
        """SB3's, with ``features_dim`` a Python ``int``: a MultiDiscrete observation's is a NumPy integer, which
        ``nn.LSTM`` (sb3-contrib builds one, even for ``RecurrentPPO``) refuses with a ``TypeError``."""
        extractor = super().make_features_extractor()
        extractor._features_dim = int(extractor._features_dim)
        return extractor

    @property
    def core_kwargs(self) -> dict[str, Any]:
        """The core's options as keyword arguments (the fields of :attr:`core_config`)."""
        return self.core_config.as_dict()

    @staticmethod
    def _process_sequence(
        features: th.Tensor,
        lstm_states: tuple[th.Tensor, th.Tensor],
        episode_starts: th.Tensor,
        lstm: nn.Module,
    ) -> tuple[th.Tensor, tuple[th.Tensor, th.Tensor]]:
        """
        Run the core on padded sequences, resetting the state at episode starts.

        A core with ``handles_episode_starts`` (RIM, MetODS) steps through the sequence in Python anyway, so it
        resets inside its own loop instead of sb3-contrib's second per-step loop; an ``nn.LSTM`` takes the
        parent's path.
        """
        if not getattr(lstm, "handles_episode_starts", False):
            return RecurrentActorCriticPolicy._process_sequence(features, lstm_states, episode_starts, lstm)
        n_seq = lstm_states[0].shape[1]
        output, lstm_states = lstm(to_sequences(features, n_seq), lstm_states, to_sequences(episode_starts, n_seq))
        return from_sequences(output), lstm_states

    def forward(
        self,
        obs: th.Tensor,
        lstm_states: RNNStates,
        episode_starts: th.Tensor,
        deterministic: bool = False,
    ) -> tuple[th.Tensor, th.Tensor, th.Tensor, RNNStates]:
        """
        ``RecurrentActorCriticPolicy.forward`` (collection), with the actor and critic cores in one pass when
        :meth:`fuses_cores`.

        :param obs: Observation.
        :param lstm_states: The last states of the actor and critic cores.
        :param episode_starts: Whether the observations start new episodes (the cores' states are reset).
        :param deterministic: Whether to take the most likely actions instead of sampling.
        :return: action, value, log-probability of the action and the new states.
        """
        if not self.fuses_cores():
            return super().forward(obs, lstm_states, episode_starts, deterministic)
        latent_pi, latent_vf, states = self._process_both_sequences(obs, lstm_states, episode_starts)
        values = self.value_net(latent_vf)
        distribution = self._get_action_dist_from_latent(latent_pi)
        actions = distribution.get_actions(deterministic=deterministic)
        log_prob = distribution.log_prob(actions)
        actions = actions.reshape((-1, *self.action_space.shape))
        return actions, values, log_prob, states

    def evaluate_actions(
        self, obs: th.Tensor, actions: th.Tensor, lstm_states: RNNStates, episode_starts: th.Tensor
    ) -> tuple[th.Tensor, th.Tensor, th.Tensor]:
        """
        ``RecurrentActorCriticPolicy.evaluate_actions`` (training), with the actor and critic cores in one pass when
        :meth:`fuses_cores`.

        :param obs: Observation.
        :param actions: The actions to evaluate.
        :param lstm_states: The states of the actor and critic cores at the start of each sequence.
        :param episode_starts: Whether the observations start new episodes (the cores' states are reset).
        :return: estimated value, log-likelihood of the actions and entropy of the action distribution.
        """
        if not self.fuses_cores():
            return super().evaluate_actions(obs, actions, lstm_states, episode_starts)
        latent_pi, latent_vf, _ = self._process_both_sequences(obs, lstm_states, episode_starts)
        distribution = self._get_action_dist_from_latent(latent_pi)
        log_prob = distribution.log_prob(actions)
        values = self.value_net(latent_vf)
        return values, log_prob, distribution.entropy()

    def fuses_cores(self) -> bool:
        """
        :return: whether :meth:`forward` and :meth:`evaluate_actions` run the actor and critic cores in one pass
            (:func:`~sb3_metarim.cores.rim.run_rims`: half the kernels per step, the cost of these small cores): two RIMs
            of one config (the default), without dropout in training. Otherwise (``shared_lstm``, no critic core,
            other cores) they run one after the other, as in sb3-contrib. The results and gradients are the same
            either way, except that a loss reading only one core's outputs gives the other core's parameters zero
            gradients instead of none (their weights share one graph); PPO's loss reads both.
        """
        return self.lstm_critic is not None and fusable_rims([self.lstm_actor, self.lstm_critic], self.training)

    def _process_both_sequences(
        self, obs: th.Tensor, lstm_states: RNNStates, episode_starts: th.Tensor
    ) -> tuple[th.Tensor, th.Tensor, RNNStates]:
        """
        The actor and critic cores on their padded sequences in one pass (:func:`~sb3_metarim.cores.rim.run_rims`), then
        the ``mlp_extractor``, as ``_process_sequence`` on each core would.

        :return: the actor's and the critic's latents (after the ``mlp_extractor``) and the cores' new states.
        """
        features = self.extract_features(obs)
        pi_features, vf_features = (features, features) if self.share_features_extractor else features
        n_seq = lstm_states.pi[0].shape[1]
        (output_pi, states_pi), (output_vf, states_vf) = run_rims(
            (self.lstm_actor, self.lstm_critic),
            (to_sequences(pi_features, n_seq), to_sequences(vf_features, n_seq)),
            (lstm_states.pi, lstm_states.vf),
            to_sequences(episode_starts, n_seq),
        )
        latent_pi = self.mlp_extractor.forward_actor(from_sequences(output_pi))
        latent_vf = self.mlp_extractor.forward_critic(from_sequences(output_vf))
        return latent_pi, latent_vf, RNNStates(states_pi, states_vf)

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


def to_sequences(batch: th.Tensor, n_seq: int) -> th.Tensor:
    """sb3-contrib's padded batch, sequence-major ``(n_seq * seq_len, ...)``, as ``(seq_len, n_seq, ...)``."""
    return batch.reshape((n_seq, -1, *batch.shape[1:])).swapaxes(0, 1)


def from_sequences(output: th.Tensor) -> th.Tensor:
    """A core's ``(seq_len, n_seq, size)`` output back as the padded batch ``(n_seq * seq_len, size)``."""
    return th.flatten(output.transpose(0, 1), start_dim=0, end_dim=1)


MlpPolicy = RIMActorCriticPolicy
CnnPolicy = RIMActorCriticCnnPolicy
MultiInputPolicy = RIMMultiInputActorCriticPolicy

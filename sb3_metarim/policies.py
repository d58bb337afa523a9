"""
Recurrent actor-critic policies whose recurrent core is a RIM, a MetODS layer (or, for ablations, an LSTM; see
:mod:`sb3_metarim.cores`).
"""

import inspect
import io
import math
import pathlib
from collections.abc import Callable
from dataclasses import MISSING, fields
from typing import Any

import torch as th
from gymnasium import spaces
from sb3_contrib.common.recurrent.policies import RecurrentActorCriticPolicy
from sb3_contrib.common.recurrent.type_aliases import RNNStates
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, CombinedExtractor, NatureCNN
from stable_baselines3.common.type_aliases import Schedule
from stable_baselines3.common.utils import get_device
from torch import nn

from sb3_metarim.cores import CORE_CONFIGS, CORES, LSTM_CORE, RIM_CORE, core_config_class, core_option_owners, make_core
from sb3_metarim.rim import CHANGED_DEFAULTS, RIMConfig, fusable_rims, run_rims
from sb3_metarim.validation import check_positive_int

# The cores registered when this module is imported (the registry, sb3_metarim.cores.CORES, is the reference).
RECURRENT_CORES = tuple(CORES)


def _signature_with_core_options(init: Callable[..., None]) -> Callable[..., None]:
    """
    Give ``init`` (``..., **kwargs``) a signature listing the fields of every registered core's config
    (:data:`sb3_metarim.cores.CORE_CONFIGS`: :class:`~sb3_metarim.rim.RIMConfig`'s, then
    :class:`~sb3_metarim.metods.MetODSConfig`'s, ...) as keyword arguments before ``**kwargs``, so that
    ``inspect.signature``, ``help()`` and the rl-zoo3 config checks see the cores' options (each defined once, in
    its config). A name two configs share is listed once, with the first config's default.
    """
    signature = inspect.signature(init)
    *parameters, var_keyword = signature.parameters.values()
    options: dict[str, inspect.Parameter] = {}
    # The default core's config first: a name that several cores share shows the RIM's default.
    for config in dict.fromkeys([RIMConfig, *map(core_config_class, CORE_CONFIGS)]):
        for option in fields(config):
            default = option.default if option.default is not MISSING else inspect.Parameter.empty
            parameter = inspect.Parameter(option.name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=option.type)
            options.setdefault(option.name, parameter)
    init.__signature__ = signature.replace(parameters=[*parameters, *options.values(), var_keyword])
    return init


def core_config_from_kwargs(recurrent_core: str, kwargs: dict[str, Any]) -> Any:
    """
    Pop the core options (and ``lstm_hidden_size``) out of ``kwargs`` and build the config of ``recurrent_core``.

    :param recurrent_core: A registered core.
    :param kwargs: Policy keyword arguments; the options of any registered core and ``lstm_hidden_size`` are
        removed from it.
    :return: ``core_config_class(recurrent_core)(**its options)``; an option that only other cores take is a
        ``ValueError`` naming it, its value and the options this core takes. ``lstm_hidden_size`` sets the width
        (:func:`width_options`).
    """
    config_class = core_config_class(recurrent_core)
    own = config_class.option_names()
    options = {name: kwargs.pop(name) for name in core_option_owners() if name in kwargs}
    for name, value in options.items():
        if name not in own:
            owners = core_option_owners()[name]
            raise ValueError(
                f"{name}={value!r}: an option of recurrent_core {' or '.join(map(repr, owners))}, not of "
                f"recurrent_core={recurrent_core!r}; its options: {', '.join(own)}"
            )
    if "lstm_hidden_size" in kwargs:
        options.update(width_options(recurrent_core, kwargs.pop("lstm_hidden_size"), options))
    return config_class(**options)


def width_options(recurrent_core: str, lstm_hidden_size: object, options: dict[str, Any]) -> dict[str, Any]:
    """
    ``RecurrentPPO``'s ``lstm_hidden_size`` as the core's options: the core's total width, as its config class
    reads it (``options_for_width``): for ``"rim"`` the modules and the dense LSTM together (half each by default:
    192 is 6 modules of 16 and a dense LSTM of 96), for ``"lstm"`` the ``nn.LSTM``'s width, for ``"metods"``
    ``num_neurons``. Given with the options that set the width, it must agree with them.

    :param recurrent_core: A registered core.
    :param lstm_hidden_size: The width asked for.
    :param options: The core options given.
    :return: the options that set the width.
    """
    check_positive_int("lstm_hidden_size", lstm_hidden_size)
    config_class = core_config_class(recurrent_core)
    derived = config_class.options_for_width(lstm_hidden_size, options)
    if derived is None:
        raise ValueError(
            f"lstm_hidden_size={lstm_hidden_size!r}: recurrent_core={recurrent_core!r} takes its width from its options "
            f"({', '.join(config_class.option_names())})"
        )
    return derived


class RIMActorCriticPolicy(RecurrentActorCriticPolicy):
    """
    ``RecurrentActorCriticPolicy`` with a RIM (or another registered core) where sb3-contrib puts its ``nn.LSTM``.

    The core's state keeps the LSTM layout ``(1, batch, hidden_size)`` (``num_units * unit_size`` for a RIM,
    ``ceil(N^2 / 2)`` for MetODS), so ``RecurrentPPO``'s rollout buffer and hidden-state handling work unchanged;
    the ``mlp_extractor`` (and the critic's linear layer without a critic core) reads the core's output width,
    its config's ``output_size`` (the state width for a RIM, N for MetODS). The critic has its
    own core, as in ``RecurrentPPO`` (``enable_critic_lstm=True``); ``shared_lstm=True`` shares the
    actor's core (the critic then does not train it) and ``enable_critic_lstm=False`` gives the
    critic no memory. Every ``RecurrentActorCriticPolicy`` argument is accepted; ``lstm_hidden_size`` sets the
    core's total width (:func:`width_options`: the modules and the dense LSTM of a RIM, half each by default, the
    ``nn.LSTM``'s width for ``"lstm"``, N for MetODS), else the core's options do.

    The core's options are the fields of its config class (:func:`~sb3_metarim.cores.core_config_class`):
    :class:`~sb3_metarim.rim.RIMConfig`'s (``num_units``, ``top_k``, ``unit_size``, ``cell``, ...) for ``"rim"``,
    :class:`~sb3_metarim.cores.LSTMConfig`'s (``num_units``, ``unit_size``) for ``"lstm"``,
    :class:`~sb3_metarim.metods.MetODSConfig`'s (``num_neurons``, ``recursions``, ``w0``, ...) for
    ``"metods"``, given as keyword arguments (``policy_kwargs``): the signature lists every core's, and an option
    of another core than the chosen one is an error.
    ``recurrent_core="lstm"`` keeps sb3-contrib's own ``nn.LSTM`` (exactly ``RecurrentPPO``'s, ``lstm_hidden_size``
    or ``num_units * unit_size`` wide, 192 by default, configured by ``n_lstm_layers`` and ``lstm_kwargs``); any
    other core is built by :func:`~sb3_metarim.cores.make_core`, and LSTM-only arguments
    (``lstm_kwargs``, ``n_lstm_layers`` other than 1) are errors.

    :param observation_space: Observation space.
    :param action_space: Action space.
    :param lr_schedule: Learning rate schedule.
    :param recurrent_core: A core registered in :data:`sb3_metarim.cores.CORES`: ``"rim"``, ``"metods"`` or
        ``"lstm"`` (an ``nn.LSTM`` of the RIM's width, for ablations).
    :param kwargs: The core's options (its config's fields) and the arguments of
        ``RecurrentActorCriticPolicy`` (``net_arch``, ``n_lstm_layers``, ``shared_lstm``,
        ``enable_critic_lstm``, ``lstm_kwargs``, ...).
    """

    @_signature_with_core_options
    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        lr_schedule: Schedule,
        recurrent_core: str = RIM_CORE,
        **kwargs: Any,
    ) -> None:
        self.core_config = core_config_from_kwargs(recurrent_core, kwargs)
        check_core_arguments(recurrent_core, kwargs, self.core_config)
        check_policy_arguments(kwargs)
        self.recurrent_core = recurrent_core
        # The parent sizes the mlp_extractor (and the critic's linear layer) by lstm_hidden_size: the output width.
        output_size = getattr(self.core_config, "output_size", self.core_config.hidden_size)
        super().__init__(observation_space, action_space, lr_schedule, lstm_hidden_size=output_size, **kwargs)
        if recurrent_core != LSTM_CORE:
            # The parent built nn.LSTMs (kept for "lstm": RecurrentPPO's core, same initialisation): replace them.
            self.lstm_actor = make_core(recurrent_core, self.features_dim, **self.core_kwargs)
            if self.lstm_critic is not None:
                self.lstm_critic = make_core(recurrent_core, self.features_dim, **self.core_kwargs)
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
            (:func:`~sb3_metarim.rim.run_rims`: half the kernels per step, the cost of these small cores): two RIMs
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
        The actor and critic cores on their padded sequences in one pass (:func:`~sb3_metarim.rim.run_rims`), then
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

    @classmethod
    def load(cls, path: str | pathlib.Path | io.BufferedIOBase, device: th.device | str = "auto") -> "RIMActorCriticPolicy":
        """
        SB3's ``BasePolicy.load`` (a file of ``policy.save``), for a file saved by an older version too
        (:func:`saved_policy_arguments`).

        :param path: The file.
        :param device: Where to put the policy.
        """
        device = get_device(device)
        saved = th.load(path, map_location=device, weights_only=False)
        policy = cls(**saved_policy_arguments(saved["data"]))
        policy.load_state_dict(saved["state_dict"])
        return policy.to(device)

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


def check_core_arguments(recurrent_core: str, policy_kwargs: dict[str, Any], core_config: Any) -> None:
    """Raise a ``ValueError`` naming the first core argument that is not allowed, its value and what is allowed."""
    core_config_class(recurrent_core)
    unknown = sorted(set(policy_kwargs) - RECURRENT_POLICY_ARGUMENTS)
    if unknown:
        raise ValueError(
            f"{unknown[0]}={policy_kwargs[unknown[0]]!r}: not an argument of the policy; its arguments: recurrent_core, "
            f"the core's options ({', '.join(core_config.option_names())}) and {', '.join(sorted(RECURRENT_POLICY_ARGUMENTS))}"
        )
    if policy_kwargs.get("shared_lstm") and policy_kwargs.get("enable_critic_lstm", True):
        raise ValueError(
            "shared_lstm=True with enable_critic_lstm=True: choose a shared core (shared_lstm=True, "
            "enable_critic_lstm=False), a critic core of its own (the default) or none (enable_critic_lstm=False)"
        )
    if policy_kwargs.get("shared_lstm") and not policy_kwargs.get("share_features_extractor", True):
        raise ValueError("shared_lstm=True with share_features_extractor=False: a shared core needs a shared extractor")
    lstm_kwargs = policy_kwargs.get("lstm_kwargs")
    if lstm_kwargs is not None and not isinstance(lstm_kwargs, dict):
        raise ValueError(f"lstm_kwargs={lstm_kwargs!r}: must be a dict of nn.LSTM's arguments")
    n_layers = policy_kwargs.get("n_lstm_layers", 1)
    if recurrent_core == LSTM_CORE:
        core_config.validate()
        check_positive_int("n_lstm_layers", n_layers)
        return
    if n_layers != 1:
        raise ValueError(f"n_lstm_layers={n_layers!r}: a {recurrent_core!r} core has exactly 1 layer")
    if lstm_kwargs:
        raise ValueError(
            f"lstm_kwargs={lstm_kwargs!r}: nn.LSTM's arguments, unused by recurrent_core={recurrent_core!r}; "
            f"set the core's options instead ({', '.join(core_config.option_names())}) or use recurrent_core='lstm'"
        )
    if CORE_CONFIGS[recurrent_core] is not None:  # a core registered with its own config class
        core_config.validate()


def with_changed_defaults(policy_kwargs: dict[str, Any], saved: bool) -> dict[str, Any]:
    """
    ``policy_kwargs`` with every RIM option whose default changed (:data:`~sb3_metarim.rim.CHANGED_DEFAULTS`) made
    explicit, for a RIM core: the current default for a new model, so that its saved file records it; the old
    default for a loaded model whose file lacks it, as that file predates the change. Options given are kept. With
    ``lstm_hidden_size``, a new model records the ``unit_size`` and ``dense_size`` it splits into
    (:func:`width_options`), and a saved one without them was split over the modules alone (``dense_size=0``).

    :param policy_kwargs: The algorithm's ``policy_kwargs``.
    :param saved: Whether they were read from a saved model (``load``) rather than given to a new one.
    :return: a new dict.
    """
    if policy_kwargs.get("recurrent_core", RIM_CORE) != RIM_CORE:
        return dict(policy_kwargs)
    if saved:
        defaults = dict(CHANGED_DEFAULTS)
        if "lstm_hidden_size" in policy_kwargs:
            # Before the change the width was the modules' alone, split over num_units: no dense LSTM.
            del defaults["unit_size"]
        return {**defaults, **policy_kwargs}
    defaults = {name: getattr(RIMConfig, name) for name in CHANGED_DEFAULTS}
    if "lstm_hidden_size" in policy_kwargs:
        defaults.update(width_options(RIM_CORE, policy_kwargs["lstm_hidden_size"], policy_kwargs))
    return {**defaults, **policy_kwargs}


def saved_policy_arguments(data: dict[str, Any]) -> dict[str, Any]:
    """
    The arguments a policy saved alone (``policy.save``) is rebuilt with. They hold every option of its core, but a
    file saved before an option existed or changed its default lacks it: a RIM core takes the value it was trained
    with (:func:`with_changed_defaults`); an ``"lstm"`` core saved before it had options of its own
    (:class:`~sb3_metarim.cores.LSTMConfig`) holds the RIM's too, which it never used, and drops them.

    :param data: The file's ``data`` (:meth:`RIMActorCriticPolicy._get_constructor_parameters` when it was saved).
    :return: a new dict.
    """
    if data.get("recurrent_core", RIM_CORE) != LSTM_CORE:
        return with_changed_defaults(data, saved=True)
    unused = set(RIMConfig.option_names()) - set(core_config_class(LSTM_CORE).option_names())
    return {name: value for name, value in data.items() if name not in unused}


def check_policy_arguments(policy_kwargs: dict[str, Any]) -> None:
    """Raise a ``ValueError`` naming the first ``ActorCriticPolicy`` argument of a wrong type or out of range."""
    for name in BOOL_ARGUMENTS:
        # SB3 saves the gSDE-only ones as None without gSDE.
        none_ok = name in ("full_std", "use_expln", "squash_output")
        if name in policy_kwargs and not (isinstance(policy_kwargs[name], bool) or (none_ok and policy_kwargs[name] is None)):
            raise ValueError(f"{name}={policy_kwargs[name]!r}: must be True or False")
    if policy_kwargs.get("squash_output") and not policy_kwargs.get("use_sde"):
        raise ValueError("squash_output=True: only with gSDE (use_sde=True)")
    for name in ("features_extractor_kwargs", "optimizer_kwargs", "lstm_kwargs"):
        if policy_kwargs.get(name) is not None and not isinstance(policy_kwargs[name], dict):
            raise ValueError(f"{name}={policy_kwargs[name]!r}: must be a dict of keyword arguments or None")
    for name, base in (
        ("activation_fn", nn.Module),
        ("optimizer_class", th.optim.Optimizer),
        ("features_extractor_class", BaseFeaturesExtractor),
    ):
        value = policy_kwargs.get(name, base)
        if not (isinstance(value, type) and issubclass(value, base)):
            raise ValueError(f"{name}={value!r}: must be a subclass of {base.__module__}.{base.__qualname__}")
    log_std_init = policy_kwargs.get("log_std_init", 0.0)
    if isinstance(log_std_init, bool) or not isinstance(log_std_init, (int, float)) or not math.isfinite(log_std_init):
        raise ValueError(f"log_std_init={log_std_init!r}: must be a finite number")
    net_arch = policy_kwargs.get("net_arch")
    layers = list(net_arch.values()) if isinstance(net_arch, dict) else [net_arch]
    if isinstance(net_arch, dict) and not set(net_arch) <= {"pi", "vf"}:
        raise ValueError(f"net_arch={net_arch!r}: a dict takes the keys 'pi' and 'vf' (lists of layer sizes)")
    for sizes in layers:
        if sizes is None and not isinstance(net_arch, dict):
            continue
        if not isinstance(sizes, (list, tuple)) or not all(
            isinstance(size, int) and not isinstance(size, bool) and size > 0 for size in sizes
        ):
            raise ValueError(
                f"net_arch={net_arch!r}: must be a list of positive layer sizes, or a dict of them for 'pi' and 'vf'"
            )


BOOL_ARGUMENTS = (
    "ortho_init",
    "use_sde",
    "full_std",
    "use_expln",
    "squash_output",
    "share_features_extractor",
    "normalize_images",
    "shared_lstm",
    "enable_critic_lstm",
)

# What RecurrentActorCriticPolicy takes besides the spaces and the schedule (lstm_hidden_size is turned into the
# core's options before the check).
RECURRENT_POLICY_ARGUMENTS = frozenset(inspect.signature(RecurrentActorCriticPolicy.__init__).parameters) - {
    "self",
    "observation_space",
    "action_space",
    "lr_schedule",
    "lstm_hidden_size",
}


MlpPolicy = RIMActorCriticPolicy
CnnPolicy = RIMActorCriticCnnPolicy
MultiInputPolicy = RIMMultiInputActorCriticPolicy
